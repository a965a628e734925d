#!/bin/sh
# capacity.sh - transactional capacity (issue 13 item 8, Schedule III A.8):
# deactivate, then activate again, 5 % of a base of CARDS cards, from the
# API call to the EMM on air within the granted EMM bandwidth. By hand, not
# in CI (minutes). SQLite, one head-end:
#   1. a base of CARDS cards in SQL (one subscriber and one package,
#      i mod 32, per card), as bench/sms_scale.sh builds it;
#   2. prime: `castellan headend` at 65535 kbit/s into a MUX sink (a small
#      EMMG<=>MUX server in this script that grants what is asked and reads
#      the serial and sequence number of every card record of every EMM
#      section) until the sink has seen every card once: every card has a
#      sequence number on air (what the viewer's box holds);
#   3. the head-end again at EMM_KBPS (the grant under test), and once its
#      first EMM is on air the sink takes that baseline;
#   4. deactivate: every STEP-th card (5 % for STEP 20) loses its package
#      through POST /api/v1/subscriptions/bulk calls of BULK items, one
#      after the other, as a billing system would send them; the sink
#      counts the target cards whose record with a sequence number above
#      the baseline has reached it (their new EMM, on air), and when 50 %,
#      90 % and 100 % of them had;
#   5. activate: the same cards get their package back (a new baseline
#      first), measured the same way;
# then prints this run's tables (markdown) and writes them to RESULTS.run,
# to fold into RESULTS by hand (RESULTS keeps the method and the analysis).
# The sink decides "on air" from the bytes the MUX received, not from the
# head-end's counters.
#
# Usage: bench/capacity.sh [CARDS [RESULTS]]  (default 10000000 and
#   bench/RESULTS-capacity.md)
# Environment: BUILD (build dir, default build; configured and built if the
#   binary is missing), EMM_KBPS (grant under test, default 2000), STEP (20),
#   BULK (items per bulk call, default 4000: the head-end reads at most
#   10,000 change rows per 200 ms poll, more at once restart its cycle
#   instead, docs/headend.md), PHASE_TIMEOUT (s, default 3600), KEEP.
# Needs python3, curl, jq, sqlite3, bc.
set -eu
CARDS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${2:-$ROOT/bench/RESULTS-capacity.md}
BUILD=${BUILD:-build}
CLI=$ROOT/$BUILD/src/cli/castellan
EMM_KBPS=${EMM_KBPS:-2000}
STEP=${STEP:-20}
BULK=${BULK:-4000}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-3600}
FIRST=2100000000
TARGETS=$((CARDS / STEP))

for t in python3 curl jq sqlite3 bc; do command -v $t >/dev/null || { echo "capacity: $t is needed" >&2; exit 1; }; done
if [ ! -x "$CLI" ]; then
	[ -f "$ROOT/$BUILD/build.ninja" ] || meson setup "$ROOT/$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
	ninja -C "$ROOT/$BUILD" -j2 src/cli/castellan >/dev/null
fi
W=$(mktemp -d /tmp/castellan-capacity-XXXXXX)
SERVER=""
SINK=""
cleanup() {
	for p in $SERVER $SINK; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT INT TERM
now() { date +%s.%N; }
el() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }
step() { echo "| $1 | $2 |" >>"$W/steps"; echo "capacity: $1: $2 s" >&2; }

wait_file() { # FILE PID: until FILE is non-empty (60 s), or PID died
	i=0
	while [ ! -s "$1" ] && [ $i -lt 600 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1; i=$((i + 1))
	done
	[ -s "$1" ]
}

# The MUX sink: EMMG<=>MUX (ETSI TS 103 197) far enough for the head-end's
# EMMG (answers echo the request: the grant is what was asked); every
# data_provision section is parsed: unique EMM 0x82 (serial at 6, seq at
# 14) and group EMM 0x83 (ncards at 14, records serial u64 | seq u32 |
# nonce 12 | ct_len u16 | ct | tag 16 from 15; docs/emm-format.md).
# argv: portfile statfile CARDS FIRST STEP. SIGUSR1 = take the baseline
# (every card's last sequence number) and start counting targets.
cat >"$W/sink.py" <<'PY'
import array, os, signal, socket, struct, sys, threading, time
ANSWER = {0x0011: 0x0013, 0x0111: 0x0113, 0x0114: 0x0115, 0x0117: 0x0118}
N, FIRST, STEP = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
K = N // STEP
last = array.array("I", bytes(4 * (N + 1)))
st = {"seen": 0, "all_seen": 0.0, "records": 0, "sections": 0, "bytes": 0, "first": 0.0,
      "mark": 0.0, "done": 0, "p50": 0.0, "p90": 0.0, "p100": 0.0, "last_done": 0.0, "others_new": 0}
base = None
done = None
lock = threading.Lock()

def put(path, text):
    with open(path + ".tmp", "w") as o:
        o.write(text)
    os.replace(path + ".tmp", path)

def record(serial, seq, t):
    i = serial - FIRST
    if i <= 0 or i > N:
        return
    old = last[i]
    if old == 0:
        st["seen"] += 1
        if st["seen"] == N:
            st["all_seen"] = t
    last[i] = seq
    if base is None or seq <= base[i]:
        return
    if i % STEP:
        st["others_new"] += 1
        return
    if not done[i]:
        done[i] = 1
        st["done"] += 1
        st["last_done"] = t
        for q, key in ((K // 2, "p50"), (K * 9 // 10, "p90"), (K, "p100")):
            if st["done"] == q:
                st[key] = t

def provision(body, n):
    t = time.time()
    if not st["first"]:
        st["first"] = t
    i = 0
    while i + 4 <= n:
        typ, ln = struct.unpack_from(">HH", body, i)
        if typ == 0x0005:
            st["bytes"] += ln
            j, end = i + 4, i + 4 + ln
            while j + 3 <= end:
                slen = ((body[j + 1] & 0x0F) << 8) | body[j + 2]
                st["sections"] += 1
                with lock:
                    if body[j] == 0x82 and j + 18 <= end:
                        serial, seq = struct.unpack_from(">QI", body, j + 6)
                        st["records"] += 1
                        record(serial, seq, t)
                    elif body[j] == 0x83 and j + 15 <= end:
                        k, r = body[j + 14], j + 15
                        for _ in range(k):
                            if r + 42 > end:
                                break
                            serial, seq = struct.unpack_from(">QI", body, r)
                            ctl = struct.unpack_from(">H", body, r + 24)[0]
                            st["records"] += 1
                            record(serial, seq, t)
                            r += 26 + ctl + 16
                j += 3 + slen
        i += 4 + ln

def serve(c):
    f = c.makefile("rb", buffering=1 << 20)
    while True:
        h = f.read(5)
        if len(h) < 5:
            return
        ver, typ, n = struct.unpack(">BHH", h)
        body = f.read(n)
        if len(body) < n:
            return
        if typ in ANSWER:
            c.sendall(struct.pack(">BHH", ver, ANSWER[typ], n) + body)
        elif typ == 0x0211:
            provision(body, n)
        elif typ == 0x0014:
            return

def accept(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=lambda: (serve(c), c.close()), daemon=True).start()

def mark(*_):
    global base, done
    with lock:
        base = array.array("I", last)
        done = bytearray(N + 1)
        for k in ("done", "p50", "p90", "p100", "last_done", "others_new"):
            st[k] = 0
        st["mark"] = time.time()

def stop(*_):
    raise KeyboardInterrupt

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGUSR1, mark)
put(sys.argv[1], "port=%d\n" % s.getsockname()[1])
threading.Thread(target=accept, args=(s,), daemon=True).start()
line = lambda: " ".join("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v) for k, v in st.items()) + "\n"
try:
    while True:
        time.sleep(0.5)
        put(sys.argv[2], line())
except KeyboardInterrupt:
    pass
put(sys.argv[2], line())
PY

sink() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p; s/^$1=\([0-9.]*\).*/\1/p" "$W/sinkstat" 2>/dev/null | head -1; }

he_start() { # KBPS TAG
	rm -f "$W/he-ready"
	HE_T0=$(now)
	"$CLI" headend --data-dir "$W/he" --keystore "$W/ks" --passphrase-file "$W/pass" --db "sqlite:$W/sms.db" \
		--http 127.0.0.1:0 --ecmg off --mux "127.0.0.1:$(sed -n 's/^port=//p' "$W/sinkport")" \
		--emm-kbps "$1" --ready-file "$W/he-ready" --admin-key-file "$W/he-key" \
		--status-every 10 >"$W/headend-$2.log" 2>&1 &
	SERVER=$!
	wait_file "$W/he-ready" $SERVER || { cat "$W/headend-$2.log" >&2; exit 1; }
	HE_PORT=$(sed -n 's/^http=\([0-9]*\).*/\1/p' "$W/he-ready")
}

he_stop() {
	kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

# until the sink's counter KEY is at least VALUE (or a time KEY is set, VALUE 0)
wait_sink() { # KEY VALUE WHAT
	t0=$(now)
	while :; do
		v=$(sink "$1")
		if [ -n "$v" ] && [ "$(echo "$v > $2" | bc)" = 1 ]; then return 0; fi
		kill -0 "$SERVER" 2>/dev/null || { echo "capacity: head-end died waiting for $3" >&2; tail -5 "$W"/headend-*.log >&2; return 1; }
		[ "$(echo "$(now) - $t0 > $PHASE_TIMEOUT" | bc)" = 1 ] && { echo "capacity: timeout waiting for $3" >&2; return 1; }
		sleep 0.5
	done
}

# The bulk bodies of a phase: TARGETS cards in calls of BULK items.
bodies() { # unsubscribe|subscribe DIR
	mkdir -p "$2"
	awk -v n="$CARDS" -v step="$STEP" -v first="$FIRST" -v bulk="$BULK" -v op="$1" -v dir="$2" 'BEGIN {
		f = ""; k = 0; c = 0
		for (i = step; i <= n; i += step) {
			if (k == 0) { c++; f = sprintf("%s/%06d.json", dir, c); printf "{\"%s\":[", op > f }
			if (op == "unsubscribe") item = sprintf("{\"serial_no\":\"%.0f\",\"package\":%d}", first + i, i % 32)
			else item = sprintf("{\"serial_no\":\"%.0f\",\"package\":%d,\"start\":1700000000,\"finish\":1800000000}", first + i, i % 32)
			printf "%s%s", (k ? "," : ""), item > f
			k++
			if (k == bulk || i + step > n) { printf "]}" > f; close(f); k = 0 }
		}
	}'
}

phase() { # NAME unsubscribe|subscribe
	bodies "$2" "$W/$1"
	calls=$(ls "$W/$1" | wc -l)
	kill -USR1 "$SINK"
	sleep 1.2 # the sink writes its state every 0.5 s: a fresh mark
	resync0=$(curl -s -m 5 -H "X-API-Key: $KEY" "http://127.0.0.1:$HE_PORT/api/v1/status" | jq -r '[.nodes[].status.changes.resyncs] | add // 0')
	t_api0=$(now)
	errors=0
	worst=0
	for b in "$W/$1"/*.json; do
		c0=$(now)
		code=$(curl -s -o "$W/answer" -w '%{http_code}' -m 120 -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
			-X POST --data-binary @"$b" "http://127.0.0.1:$HE_PORT/api/v1/subscriptions/bulk")
		d=$(echo "$(now) - $c0" | bc)
		[ "$(echo "$d > $worst" | bc)" = 1 ] && worst=$d
		[ "$code" = 200 ] || { errors=$((errors + 1)); echo "capacity: bulk call $b: HTTP $code $(head -c 200 "$W/answer")" >&2; }
	done
	t_api1=$(now)
	wait_sink p100 0 "$1: every target card's new EMM on air" || true
	sleep 2.5 # the status is published every 2 s
	stj=$(curl -s -m 5 -H "X-API-Key: $KEY" "http://127.0.0.1:$HE_PORT/api/v1/status")
	resync1=$(echo "$stj" | jq -r '[.nodes[].status.changes.resyncs] | add // 0')
	mk=$(sink mark); p50=$(sink p50); p90=$(sink p90); p100=$(sink p100); dn=$(sink done); oth=$(sink others_new)
	if [ "$p100" = 0.000 ] || [ -z "$p100" ]; then p100txt="not reached ($dn of $TARGETS)"; else p100txt=$(el "$t_api0" "$p100"); fi
	echo "| $1 | $TARGETS | $calls x $BULK | $errors | $(el "$t_api0" "$t_api1") | $(printf '%.2f' "$worst") |" \
		"$(el "$t_api0" "$p50") | $(el "$t_api0" "$p90") | $p100txt | $(echo "$TARGETS / ($p100 - $t_api0)" | bc 2>/dev/null || echo -) |" \
		"$((resync1 - resync0)) | $oth |" >>"$W/phases"
	echo "capacity: $1: API $(el "$t_api0" "$t_api1") s, all on air $p100txt s after the first call" >&2
	: "$mk"
}

# ---- the run --------------------------------------------------------------
echo "capacity-bench-passphrase-0123456789" >"$W/pass"; chmod 600 "$W/pass"
: >"$W/steps"; : >"$W/phases"
"$CLI" keys init --out "$W/ks" --ca-system-id 0x4ADC --passphrase-file "$W/pass" >/dev/null
KEY=$("$CLI" sms --db "sqlite:$W/sms.db" init --admin bench 2>/dev/null | grep -Eo '[A-Za-z0-9_-]{32,}' | tail -1)
t0=$(now)
{
	echo "BEGIN;"
	N="(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $CARDS) SELECT i FROM n)"
	cat <<SQL
INSERT INTO subscribers (id, name, info) SELECT i, 'Subscriber ' || i, 'Street ' || (i % 977) || ', Town' FROM $N;
INSERT INTO cards (serial, chip_id, state, pair, subscriber_id, start_time, finish_time, created_ms, updated_ms)
  SELECT $FIRST + i, 'C' || i, 0, 0, i, 1700000000, 1800000000, 0, 0 FROM $N;
INSERT INTO subscriptions (card, package, start_time, finish_time)
  SELECT $FIRST + i, i % 32, 1700000000, 1800000000 FROM $N;
SQL
	echo "COMMIT;"
} | sqlite3 "$W/sms.db"
step "base of $CARDS cards in SQL" "$(el "$t0" "$(now)")"

python3 "$W/sink.py" "$W/sinkport" "$W/sinkstat" "$CARDS" "$FIRST" "$STEP" &
SINK=$!
wait_file "$W/sinkport" $SINK || { echo "capacity: the MUX sink did not start" >&2; exit 1; }
mkdir -p "$W/he"
t0=$(now)
he_start 65535 prime
wait_sink all_seen 0 "every card on air once" || exit 1
he_stop
step "prime: every card's EMM on air once at 65535 kbit/s" "$(el "$t0" "$(now)")"

t0=$(now)
he_start "$EMM_KBPS" run
first0=$(sink records)
wait_sink records "$first0" "the first EMM at $EMM_KBPS kbit/s" || exit 1
step "head-end restart at $EMM_KBPS kbit/s to its first EMM" "$(el "$t0" "$(now)")"
phase deactivate unsubscribe
phase activate subscribe
he_stop

{
	echo "# Transactional capacity: 5 % of the base, API call to EMM on air (bench/capacity.sh)"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores shared with other work (load average $(cut -d' ' -f1-3 /proc/loadavg) at the end),"
	echo "$(free -g | awk '/Mem:/ {print $2}') GiB, build \`$BUILD\` ($(jq -r '.[] | select(.name == "buildtype") | .value' "$ROOT/$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null)), SQLite."
	echo "Base: $CARDS cards (one package each); targets: every ${STEP}th card, $TARGETS cards."
	echo "Granted EMM bandwidth: $EMM_KBPS kbit/s (the head-end's carousel paces its EMMs to it; the MUX"
	echo "sink grants what is asked). Times in s from the first API call; \"on air\" = the MUX sink received a"
	echo "record for the card with a sequence number above the one it held before the phase."
	echo
	echo "| phase | cards | bulk calls x items | failed calls | API calls done s | slowest call s | 50 % on air s | 90 % on air s | 100 % on air s | cards/s end to end | cycle restarts | other cards' new EMMs |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	cat "$W/phases"
	echo
	echo "| step | s |"
	echo "|---|---|"
	cat "$W/steps"
} >"$W/results.md"
cat "$W/results.md"
if [ -n "$RESULTS" ]; then
	cp "$W/results.md" "$RESULTS.run"
	echo "capacity: this run's tables are in $RESULTS.run (fold them into $RESULTS)" >&2
fi
