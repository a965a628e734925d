#!/bin/sh
# sms_scale.sh - the SMS HTTP APIs at scale (issue 3 item 10), by hand, not
# in CI (minutes per run): builds a base of CARDS cards straight in SQL (one
# transaction), starts a real `castellan web serve` on it, and drives it with
# wrk (GET /api.php, REST GET card, REST 10 % writes) with random serials;
# records req/s, p50/p99 and the server's peak RSS (VmHWM) in RESULTS;
# then the same on PostgreSQL (a throw-away server, as tests/sms do), and a
# CSV import of IMPORT_ROWS rows through `castellan sms import`.
#
# Usage: bench/sms_scale.sh [CARDS [RESULTS]]
# Environment: BUILD (build dir, default build), HTTP_THREADS (default 2),
#   CONNS (wrk connections, 64), WRK_THREADS (2), DURATION (wrk -d, 20s),
#   IMPORT_ROWS (1000000, 0 = skip), BACKENDS ("sqlite postgresql").
# Installs wrk with apt-get if it is missing.
set -eu
CARDS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${2:-$ROOT/bench/RESULTS-sms-scale.md}
BUILD=${BUILD:-build}
CLI=$ROOT/$BUILD/src/cli/castellan
HTTP_THREADS=${HTTP_THREADS:-2}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
DURATION=${DURATION:-20s}
IMPORT_ROWS=${IMPORT_ROWS:-1000000}
BACKENDS=${BACKENDS:-sqlite postgresql}
LUA=$ROOT/bench/sms_scale.lua
FIRST=2100000000

command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
[ -x "$CLI" ] || { echo "build $CLI first (ninja -C $BUILD)" >&2; exit 1; }
W=$(mktemp -d /tmp/castellan-scale-XXXXXX)
SERVER=""
PGBIN=""
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
	[ -n "$PGBIN" ] && runas "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT INT TERM
runas() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
el() { echo "$2 - $1" | bc; }

# The base in SQL: one subscriber per card, package (i mod 32) subscribed.
gen_sql() {
	cat <<SQL
BEGIN;
INSERT INTO subscribers (id, name, info) SELECT i, 'Subscriber ' || i, 'Street ' || (i % 977) || ', Town' FROM $1;
INSERT INTO cards (serial, chip_id, state, pair, subscriber_id, start_time, finish_time, created_ms, updated_ms)
  SELECT $FIRST + i, 'C' || i, 0, 0, i, 1700000000, 1800000000, 0, 0 FROM $1;
INSERT INTO subscriptions (card, package, start_time, finish_time)
  SELECT $FIRST + i, i % 32, 1700000000, 1800000000 FROM $1;
COMMIT;
SQL
}

# wrk MODE -> "req/s p50 p99 errors"
run_wrk() {
	SMS_MODE=$1 SMS_KEY=$KEY SMS_CARDS=$CARDS SMS_FIRST=$FIRST wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" \
		--latency -s "$LUA" "http://127.0.0.1:$PORT" >"$W/wrk.txt" 2>&1 || true
	awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
	     /Non-2xx/ {e=e "non-2xx:" $NF ","} /Socket errors/ {e=e "socket:" $4 $5 $6 $7 $8 $9 ","} END {printf "%s %s %s %s\n", r, p50, p99, (e==""?"0":e)}' "$W/wrk.txt"
}

serve_and_measure() { # BACKEND DB_URI
	mkdir -p "$W/data-$1"
	"$CLI" web --data "$W/data-$1" serve --db "$2" --http 127.0.0.1:0 --ready-file "$W/ready-$1" \
		--admin-password-file "$W/pw" --http-threads "$HTTP_THREADS" >"$W/serve-$1.log" 2>&1 &
	SERVER=$!
	i=0
	while [ ! -s "$W/ready-$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	PORT=$(sed -n 's/^http=//p' "$W/ready-$1")
	for mode in getapi rest write; do
		set -- "$1" "$2" $(run_wrk $mode)
		echo "| $1 | $CARDS | $mode | $HTTP_THREADS | $CONNS | $3 | $4 | $5 | $6 |" >>"$W/rows"
		echo "$1 $mode: $3 req/s p50 $4 p99 $5 errors $6" >&2
		set -- "$1" "$2"
	done
	HWM=$(awk '/VmHWM/ {print $2, $3}' /proc/$SERVER/status)
	echo "| $1 | server peak RSS (VmHWM) after the runs: $HWM |" >>"$W/mem"
	kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

echo "bench-password-0123456789" >"$W/pw"
: >"$W/rows"; : >"$W/mem"; : >"$W/build"
for be in $BACKENDS; do
	if [ "$be" = sqlite ]; then
		URI="sqlite:$W/sms.db"
	else
		PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
		mkdir -p "$W/pg"; [ "$(id -u)" = 0 ] && chown postgres "$W" "$W/pg"
		runas "$PGBIN/initdb" -D "$W/pg/data" -A trust -U castellan -E UTF8 --no-sync >/dev/null
		runas "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -t 60 \
			-o "-p 55499 -k $W/pg -c listen_addresses='' -c shared_buffers=512MB" start >/dev/null
		URI="postgres:host=$W/pg port=55499 dbname=postgres user=castellan"
	fi
	KEY=$("$CLI" sms --db "$URI" init --admin bench 2>/dev/null | grep -Eo '[A-Za-z0-9_-]{32,}' | tail -1)
	t0=$(now)
	if [ "$be" = sqlite ]; then
		gen_sql "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $CARDS) SELECT i FROM n)" |
			sqlite3 "$W/sms.db"
	else
		gen_sql "generate_series(1, $CARDS) AS g(i)" |
			psql -q -h "$W/pg" -p 55499 -U castellan -d postgres -v ON_ERROR_STOP=1 >/dev/null
		psql -q -h "$W/pg" -p 55499 -U castellan -d postgres -c "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), $CARDS)" -c "VACUUM ANALYZE" >/dev/null
	fi
	t1=$(now)
	echo "| $be | $CARDS cards built in SQL in $(el $t0 $t1) s |" >>"$W/build"
	echo "$be: $CARDS cards in $(el $t0 $t1) s" >&2
	serve_and_measure "$be" "$URI"
	if [ "$be" = postgresql ]; then
		runas "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null; PGBIN=""
	fi
done

IMPORT=""
if [ "$IMPORT_ROWS" -gt 0 ]; then
	awk -v n="$IMPORT_ROWS" 'BEGIN { printf "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state\r\n";
		for (i = 0; i < n; i++) printf "%d,Subscriber %d,\"Street %d, Town\",%08X,%d,1700000000,1800000000,%08X,active\r\n",
			3100000000 + i, i, i % 977, (i * 7) % 256, i % 2, i }' >"$W/import.csv"
	"$CLI" sms --db "$W/import.db" init >/dev/null
	t0=$(now)
	"$CLI" sms --db "$W/import.db" import "$W/import.csv" >/dev/null
	t1=$(now)
	IMPORT="CSV import of $IMPORT_ROWS new cards (SQLite, one transaction): $(el $t0 $t1) s wall, $(echo "$IMPORT_ROWS / ($t1 - $t0)" | bc) rows/s"
fi

{
	echo "# SMS HTTP APIs at scale (bench/sms_scale.sh)"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r); wrk -t$WRK_THREADS -c$CONNS -d$DURATION on the same"
	echo "machine (the client takes CPU from the server); server: castellan web serve --http-threads $HTTP_THREADS."
	echo
	echo "| backend | cards | workload | HTTP threads | connections | req/s | p50 | p99 | errors |"
	echo "|---|---|---|---|---|---|---|---|---|"
	cat "$W/rows"
	echo
	echo "workloads: getapi = GET /api.php?api_key&serial_no (random card); rest = GET /api/v1/cards/S;"
	echo "write = rest with 10 % POST /api/v1/subscriptions (random card and package)."
	echo
	cat "$W/build"
	cat "$W/mem"
	echo
	[ -n "$IMPORT" ] && echo "$IMPORT"
} >"$RESULTS"
cat "$RESULTS"
