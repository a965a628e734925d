-- sms_scale.lua - wrk script for bench/sms_scale.sh: random card serials
-- against the SMS HTTP APIs. Environment: SMS_MODE = getapi (GET /api.php),
-- rest (GET /api/v1/cards/S) or write (POST /api/v1/subscriptions: 1 in
-- SMS_WRITE_PCT requests, default 10 %, the rest REST GET card); SMS_KEY
-- (the API key), SMS_CARDS (cards in the base), SMS_FIRST (first serial).
--
-- Each wrk thread builds a table of SMS_POOL (default 8192) random requests
-- in init() and cycles through it, so the client spends its CPU on HTTP, not
-- on Lua string formatting: client and server share the same 2 cores.
-- Every SMS_REFRESH-th request (default 8; 0 = never) replaces its slot with
-- a new random request first: the cards asked for keep changing (a fixed
-- pool of 2 x 8192 cards out of 10M would stay in the server's caches),
-- at an eighth of the formatting cost.
local mode = os.getenv("SMS_MODE") or "getapi"
local key = os.getenv("SMS_KEY") or ""
local cards = tonumber(os.getenv("SMS_CARDS") or "1000000")
local first = tonumber(os.getenv("SMS_FIRST") or "2100000000")
local wpct = tonumber(os.getenv("SMS_WRITE_PCT") or "10")
local pool = tonumber(os.getenv("SMS_POOL") or "8192")
local refresh = tonumber(os.getenv("SMS_REFRESH") or "8")
local non200 = 0
local reqs = {}
local n = 0

function setup(thread)
   thread:set("id", math.random(1, 1000000))
end

local function serial()
   return first + math.random(1, cards)
end

local function make()
   if mode == "getapi" then
      return wrk.format("GET", "/api.php?api_key=" .. key .. "&serial_no=" .. serial())
   end
   local hd = { ["X-API-Key"] = key }
   if mode == "write" and math.random(1, 100) <= wpct then
      hd["Content-Type"] = "application/json"
      local body = string.format('{"serial_no":"%d","package":%d,"start":1700000000,"finish":1800000000}',
                                 serial(), math.random(0, 31))
      return wrk.format("POST", "/api/v1/subscriptions", hd, body)
   end
   return wrk.format("GET", "/api/v1/cards/" .. serial(), hd)
end

function init(args)
   math.randomseed(os.time() + id)
   for i = 1, pool do
      reqs[i] = make()
   end
end

request = function()
   n = n % pool + 1
   if refresh > 0 and n % refresh == 0 then
      reqs[n] = make()
   end
   return reqs[n]
end

response = function(status, headers, body)
   if status ~= 200 and status ~= 201 then
      non200 = non200 + 1
      if non200 <= 3 then
         io.stderr:write("sms_scale.lua: status " .. status .. ": " .. string.sub(body, 1, 120) .. "\n")
      end
   end
end
