#!/bin/sh
# sms_scale.sh - the SMS and the head-end at scale (issue 3 item 10), by
# hand, not in CI (minutes to hours per run). For each backend (SQLite, then
# a throw-away PostgreSQL server, as tests/sms do):
#   1. builds a base of CARDS cards straight in SQL (one transaction; on
#      PostgreSQL the keys are added after the rows, as the migrations
#      define them, then VACUUM ANALYZE);
#   2. starts a real `castellan web serve` on it and drives it with wrk
#      (GET /api.php, REST GET card, REST 10 % writes) with random serials:
#      req/s, p50/p99, the server's peak RSS (VmHWM);
#   3. starts `castellan headend` on the same base with its EMMG feeding a
#      MUX sink (a small EMMG<=>MUX server in this script that grants what
#      is asked and counts the sections), waits for two whole carousel
#      cycles (the first gives every card a new sequence number: what a key
#      rotation costs; the second re-sends unchanged cards), records the
#      times, the cycle figures and the process memory (VmRSS/VmHWM), stops
#      it, starts it again (sequence numbers loaded from the store) and
#      records the time to its first EMM;
# then a CSV import of IMPORT_ROWS rows through `castellan sms import`.
# Every step's wall time goes into the results too (markdown tables).
#
# Usage: bench/sms_scale.sh [CARDS [RESULTS]]   (default 10000000 and
#   bench/RESULTS-sms-scale.md)
# Environment: BUILD (build dir, default build-bench: configured release and
#   built here if the binary is missing, as bench/run.sh does),
#   HTTP_THREADS (default 2), CONNS (wrk connections, a list: "32 64"),
#   WRK_THREADS (1: the client's one thread keeps a core for the server),
#   DURATION (wrk -d, 20s), IMPORT_ROWS (1000000, 0 = skip),
#   BACKENDS ("sqlite postgresql"), HEADEND (1; 0 = skip the head-end step),
#   EMM_KBPS (EMM bandwidth the head-end asks, default and maximum 65535),
#   HE_TIMEOUT (seconds to wait for each head-end phase, default
#   600 + CARDS / 1000), KEEP (keep the work directory), SMS_POOL and
#   SMS_REFRESH (bench/sms_scale.lua's request pool).
# Installs wrk and jq with apt-get if missing; needs python3 (the MUX sink).
set -eu
CARDS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${2:-$ROOT/bench/RESULTS-sms-scale.md}
BUILD=${BUILD:-build-bench}
CLI=$ROOT/$BUILD/src/cli/castellan
HTTP_THREADS=${HTTP_THREADS:-2}
CONNS=${CONNS:-32 64}
WRK_THREADS=${WRK_THREADS:-1}
DURATION=${DURATION:-20s}
IMPORT_ROWS=${IMPORT_ROWS:-1000000}
BACKENDS=${BACKENDS:-sqlite postgresql}
HEADEND=${HEADEND:-1}
EMM_KBPS=${EMM_KBPS:-65535}
HE_TIMEOUT=${HE_TIMEOUT:-$((600 + CARDS / 1000))}
LUA=$ROOT/bench/sms_scale.lua
FIRST=2100000000
PGPORT=55499

command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
command -v jq >/dev/null || apt-get install -y jq >/dev/null
command -v python3 >/dev/null || { echo "python3 is needed (the MUX sink)" >&2; exit 1; }
if [ ! -x "$CLI" ]; then
	[ -f "$ROOT/$BUILD/build.ninja" ] || meson setup "$ROOT/$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
	ninja -C "$ROOT/$BUILD" -j2 src/cli/castellan >/dev/null
fi
W=$(mktemp -d /tmp/castellan-scale-XXXXXX)
SERVER=""
SINK=""
PGBIN=""
cleanup() {
	for p in $SERVER $SINK; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	[ -n "$PGBIN" ] && runas "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT INT TERM
runas() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
el() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }
mb() { echo "$1" | awk '{printf "%.0f MB", $1 / 1024}'; } # kB -> MB
vm() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; } # PID VmRSS -> kB
step() { echo "| $1 | $2 | $3 |" >>"$W/steps"; echo "step: $1 $2: $3 s" >&2; } # BACKEND WHAT SECONDS
pg() { psql -q -X -h "$W/pg" -p $PGPORT -U castellan -d postgres -v ON_ERROR_STOP=1 "$@"; }

# The base in SQL: one subscriber per card, package (i mod 32) subscribed.
gen_sql() {
	cat <<SQL
INSERT INTO subscribers (id, name, info) SELECT i, 'Subscriber ' || i, 'Street ' || (i % 977) || ', Town' FROM $1;
INSERT INTO cards (serial, chip_id, state, pair, subscriber_id, start_time, finish_time, created_ms, updated_ms)
  SELECT $FIRST + i, 'C' || i, 0, 0, i, 1700000000, 1800000000, 0, 0 FROM $1;
INSERT INTO subscriptions (card, package, start_time, finish_time)
  SELECT $FIRST + i, i % 32, 1700000000, 1800000000 FROM $1;
SQL
}

# PostgreSQL: one transaction that takes the keys and indexes of the three
# bulk tables off (their definitions kept), loads the rows in key order, and
# puts the same definitions back (one sorted index build and one join per
# foreign key instead of 10M index inserts and 20M per-row checks). The
# tables were created by the migrations (sms init) and are emptied first
# with TRUNCATE, so with wal_level=minimal the rows skip the WAL.
pg_build() {
	{
		echo "BEGIN;"
		echo "SET LOCAL maintenance_work_mem = '1GB';"
		cat <<'SQL'
CREATE TEMP TABLE bench_defs ON COMMIT DROP AS
  SELECT 1 AS ord, c.conrelid::regclass::text AS tbl, c.conname AS name, c.contype AS kind,
         pg_get_constraintdef(c.oid) AS def
    FROM pg_constraint c
   WHERE c.conrelid IN ('subscribers'::regclass, 'cards'::regclass, 'subscriptions'::regclass)
     AND c.contype IN ('p', 'u', 'f')
  UNION ALL
  SELECT 0, i.indrelid::regclass::text, x.relname, 'i', pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
   WHERE i.indrelid IN ('subscribers'::regclass, 'cards'::regclass, 'subscriptions'::regclass)
     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
DO $$ DECLARE d record; BEGIN
  FOR d IN SELECT * FROM bench_defs ORDER BY (kind = 'f') DESC, ord LOOP
    IF d.kind = 'i' THEN EXECUTE format('DROP INDEX %I', d.name);
    ELSE EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', d.tbl, d.name); END IF;
  END LOOP; END $$;
TRUNCATE subscriptions, cards, subscribers;
SQL
		gen_sql "generate_series(1, $CARDS) AS g(i)"
		cat <<'SQL'
DO $$ DECLARE d record; BEGIN
  FOR d IN SELECT * FROM bench_defs ORDER BY (kind = 'f'), ord LOOP
    IF d.kind = 'i' THEN EXECUTE d.def;
    ELSE EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', d.tbl, d.name, d.def); END IF;
  END LOOP; END $$;
SQL
		echo "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), $CARDS);"
		echo "COMMIT;"
	} | pg >/dev/null
}

# wrk MODE -> "req/s p50 p99 errors"
run_wrk() { # MODE CONNECTIONS
	SMS_MODE=$1 SMS_KEY=$KEY SMS_CARDS=$CARDS SMS_FIRST=$FIRST wrk -t"$WRK_THREADS" -c"$2" -d"$DURATION" \
		--latency -s "$LUA" "http://127.0.0.1:$PORT" >"$W/wrk.txt" 2>&1 || true
	awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
	     /Non-2xx/ {e=e "non-2xx:" $NF ","} /Socket errors/ {e=e "socket:" $4 $5 $6 $7 $8 $9 ","} END {printf "%s %s %s %s\n", r, p50, p99, (e==""?"0":e)}' "$W/wrk.txt"
}

wait_file() { # FILE PID: until FILE is non-empty (60 s), or PID died
	i=0
	while [ ! -s "$1" ] && [ $i -lt 600 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1; i=$((i + 1))
	done
	[ -s "$1" ]
}

serve_and_measure() { # BACKEND DB_URI
	mkdir -p "$W/data-$1"
	t0=$(now)
	"$CLI" web --data "$W/data-$1" serve --db "$2" --http 127.0.0.1:0 --ready-file "$W/ready-$1" \
		--admin-password-file "$W/pw" --http-threads "$HTTP_THREADS" >"$W/serve-$1.log" 2>&1 &
	SERVER=$!
	wait_file "$W/ready-$1" $SERVER || { cat "$W/serve-$1.log" >&2; exit 1; }
	PORT=$(sed -n 's/^http=//p' "$W/ready-$1")
	for conns in $CONNS; do
		for mode in getapi rest write; do
			set -- "$1" "$2" $(run_wrk $mode "$conns")
			echo "| $1 | $CARDS | $mode | $HTTP_THREADS | $conns | $3 | $4 | $5 | $6 |" >>"$W/rows"
			echo "$1 $mode -c$conns: $3 req/s p50 $4 p99 $5 errors $6" >&2
			set -- "$1" "$2"
		done
	done
	HWM=$(vm $SERVER VmHWM)
	echo "| $1 | server peak RSS (VmHWM) after the runs: $HWM kB |" >>"$W/mem"
	kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
	step "$1" "web serve + wrk runs" "$(el $t0 $(now))"
}

# ---- the head-end ---------------------------------------------------------

# The MUX: EMMG<=>MUX (ETSI TS 103 197) just far enough for the head-end's
# EMMG: channel_setup, stream_setup, stream_close_request and
# stream_BW_request are answered with their status/response/allocation
# echoing the request's parameters (the grant is what was asked);
# data_provision sections are counted and dropped. Writes "port=N" to
# argv[1] once listening, counters to argv[2] every second: when the first
# section came, and when the count reached 1x, 2x and 3x argv[3] (the cards
# in the base: the ends of the carousel's first cycles, as long as no card
# changes meanwhile).
cat >"$W/sink.py" <<'PY'
import os, signal, socket, struct, sys, threading, time
ANSWER = {0x0011: 0x0013, 0x0111: 0x0113, 0x0114: 0x0115, 0x0117: 0x0118}
N = int(sys.argv[3])
st = {"sections": 0, "records": 0, "bytes": 0, "first": 0.0, "msgs": 0}
marks = [0.0, 0.0, 0.0]

def put(path, text):
    with open(path + ".tmp", "w") as o:
        o.write(text)
    os.replace(path + ".tmp", path)

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
        st["msgs"] += 1
        if typ in ANSWER:
            c.sendall(struct.pack(">BHH", ver, ANSWER[typ], n) + body)
        elif typ == 0x0211:  # data_provision: count the sections of each datagram
            if not st["first"]:
                st["first"] = time.time()
            i = 0
            while i + 4 <= n:
                t, ln = struct.unpack_from(">HH", body, i)
                if t == 0x0005:
                    st["bytes"] += ln
                    j, end = i + 4, i + 4 + ln
                    while j + 3 <= end:
                        # a group EMM (table 0x83) carries ncards records (byte 14)
                        st["records"] += body[j + 14] if body[j] == 0x83 and j + 15 <= end else 1
                        j += 3 + (((body[j + 1] & 0x0F) << 8) | body[j + 2])
                        st["sections"] += 1
                    k = st["records"] // N
                    if 1 <= k <= 3 and not marks[k - 1]:
                        marks[k - 1] = time.time()
                i += 4 + ln
        elif typ == 0x0014:  # channel_close
            return

def accept(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=lambda: (serve(c), c.close()), daemon=True).start()

def stop(*_):
    raise KeyboardInterrupt

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4)
signal.signal(signal.SIGTERM, stop)
put(sys.argv[1], "port=%d\n" % s.getsockname()[1])
threading.Thread(target=accept, args=(s,), daemon=True).start()
line = lambda: "first=%.3f c1=%.3f c2=%.3f c3=%.3f sections=%d records=%d bytes=%d msgs=%d\n" % (
    st["first"], marks[0], marks[1], marks[2], st["sections"], st["records"], st["bytes"], st["msgs"])
try:
    while True:
        time.sleep(1)
        put(sys.argv[2], line())
except KeyboardInterrupt:
    pass
put(sys.argv[2], line())
PY

# Counters of this head-end from GET /api/v1/status (published every 2 s),
# only once published after START_MS: "cycles cards emms last_cycle_ms
# cycle_emms_per_s sched_pending" or nothing.
he_status() { # HTTP_PORT KEY START_MS
	curl -s -m 5 -H "X-API-Key: $2" "http://127.0.0.1:$1/api/v1/status" 2>/dev/null |
		jq -r --argjson t "$3" '.nodes[] | select(.updated_ms >= $t) | .status |
		  [.emmg.carousel.cycles, .emmg.carousel.cards, .emmg.carousel.emms, .emmg.carousel.last_cycle_ms,
		   (.emmg.carousel.cycle_emms_per_s | floor), .scheduler.pending] | @tsv' 2>/dev/null | head -1
}

# Start the sink and a head-end on DB_URI; sets HE, SINK, HE_T0, HE_PORT.
he_start() { # BACKEND DB_URI TAG
	rm -f "$W/sinkport" "$W/sinkstat" "$W/he-ready"
	python3 "$W/sink.py" "$W/sinkport" "$W/sinkstat" "$CARDS" &
	SINK=$!
	wait_file "$W/sinkport" $SINK || { echo "MUX sink did not start" >&2; exit 1; }
	mkdir -p "$W/he-$1"
	HE_T0=$(now)
	HE_T0_MS=$(echo "$HE_T0" | awk '{printf "%.0f", $1 * 1000}')
	"$CLI" headend --data-dir "$W/he-$1" --keystore "$W/ks" --passphrase-file "$W/pass" --db "$2" \
		--http 127.0.0.1:0 --ecmg off --mux "127.0.0.1:$(sed -n 's/^port=//p' "$W/sinkport")" \
		--emm-kbps "$EMM_KBPS" --ready-file "$W/he-ready" --admin-key-file "$W/he-key-$1" \
		--status-every 10 >"$W/headend-$1-$3.log" 2>&1 &
	SERVER=$!
	wait_file "$W/he-ready" $SERVER || { cat "$W/headend-$1-$3.log" >&2; exit 1; }
	HE_READY=$(now)
	HE_PORT=$(sed -n 's/^http=\([0-9]*\).*/\1/p' "$W/he-ready")
}

he_stop() { # -> HE_STOP_S
	t=$(now)
	kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
	HE_STOP_S=$(el $t $(now))
	kill "$SINK"; wait "$SINK" 2>/dev/null || true; SINK=""
}

sink_get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$W/sinkstat" 2>/dev/null; } # c1 c2 c3 sections
sink_first() { sed -n 's/^first=\([0-9.]*\).*/\1/p' "$W/sinkstat" 2>/dev/null; }

# Poll until the sink's mark (first, c1, c2) is set; fails after HE_TIMEOUT s
# from the head-end's start or if it died.
he_wait_sink() { # MARK LOG
	while :; do
		if [ "$1" = first ]; then m=$(sink_first); else m=$(sink_get "$1"); fi
		[ -n "$m" ] && [ "$m" != 0.000 ] && return 0
		kill -0 "$SERVER" 2>/dev/null || { echo "head-end died" >&2; tail -5 "$2" >&2; return 1; }
		[ "$(echo "$(now) - $HE_T0 > $HE_TIMEOUT" | bc)" = 1 ] && { echo "head-end: timeout waiting for $1" >&2; return 1; }
		if [ "$1" = first ]; then sleep 0.2; else sleep 1; fi
	done
}

headend_measure() { # BACKEND DB_URI
	t0=$(now)
	he_start "$1" "$2" cold
	log=$W/headend-$1-cold.log
	rss0=$(vm $SERVER VmRSS); anon0=$(vm $SERVER RssAnon)
	he_wait_sink c1 "$log" || return 1
	rss1=$(vm $SERVER VmRSS); hwm1=$(vm $SERVER VmHWM); anon1=$(vm $SERVER RssAnon)
	sleep 2.5 # the status is published every 2 s
	st1=$(he_status "$HE_PORT" "$KEY" "$HE_T0_MS")
	he_wait_sink c2 "$log" || return 1
	sleep 2.5
	st2=$(he_status "$HE_PORT" "$KEY" "$HE_T0_MS")
	rss2=$(vm $SERVER VmRSS); hwm2=$(vm $SERVER VmHWM); anon2=$(vm $SERVER RssAnon)
	he_stop
	f=$(sink_first); c1=$(sink_get c1); c2=$(sink_get c2); sec=$(sink_get sections)
	d1=$(echo "$c1 - $f" | bc); d2=$(echo "$c2 - $c1" | bc)
	# status fields: 1 cycles 2 cards 3 emms 4 last_cycle_ms 5 EMM/s 6 scheduler pending
	echo "| $1 | $CARDS | $EMM_KBPS | $(el $HE_T0 $HE_READY) | $(el $HE_T0 $f) | $(el $HE_T0 $c1) |" \
		"$(printf '%.1f' $d1) | $(echo "$CARDS / $d1" | bc) | $(printf '%.1f' $d2) | $(echo "$CARDS / $d2" | bc) |" \
		"$(echo "$st2" | cut -f4) | $HE_STOP_S | $sec |" >>"$W/he"
	echo "| $1 | $CARDS | $(mb $rss0) ($(mb $anon0)) | $(mb $rss1) ($(mb $anon1)) / $(mb $hwm1) |" \
		"$(mb $rss2) ($(mb $anon2)) / $(mb $hwm2) |" \
		"$(echo "($anon1 - $anon0) * 1024 / $CARDS" | bc) / $(echo "($anon2 - $anon0) * 1024 / $CARDS" | bc) |" \
		"$(echo "$st2" | cut -f2) |" \
		"$(echo "$st1" | cut -f6) ($(echo "$st1" | cut -f1) cycles) / $(echo "$st2" | cut -f6) ($(echo "$st2" | cut -f1) cycles) |" >>"$W/hemem"
	echo "$1 head-end: cycle 1 $d1 s, cycle 2 $d2 s, RSS ready $(mb $rss0), after cycle 1 $(mb $rss1), 2 $(mb $rss2)" >&2
	step "$1" "head-end: start, 2 cycles, stop" "$(el $t0 $(now))"
	# again, with every card's sequence number in the store
	t0=$(now)
	he_start "$1" "$2" warm
	he_wait_sink first "$W/headend-$1-warm.log" || return 1
	f=$(sink_first); rss=$(vm $SERVER VmRSS); hwm=$(vm $SERVER VmHWM); anon=$(vm $SERVER RssAnon)
	he_stop
	echo "| $1 | $CARDS | $(el $HE_T0 $HE_READY) | $(el $HE_T0 $f) | $(mb $rss) ($(mb $anon)) / $(mb $hwm) |" >>"$W/herestart"
	step "$1" "head-end restart to its first EMM" "$(el $t0 $(now))"
}

# ---- the run --------------------------------------------------------------

echo "bench-password-0123456789" >"$W/pw"
(umask 077 && echo "bench-passphrase-0123456789" >"$W/pass")
: >"$W/rows"; : >"$W/mem"; : >"$W/build"; : >"$W/steps"; : >"$W/he"; : >"$W/hemem"; : >"$W/herestart"
[ "$HEADEND" = 0 ] || "$CLI" keys init --out "$W/ks" --ca-system-id 0x4ADC --passphrase-file "$W/pass" >/dev/null
for be in $BACKENDS; do
	t0=$(now)
	if [ "$be" = sqlite ]; then
		URI="sqlite:$W/sms.db"
	else
		PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
		mkdir -p "$W/pg"; [ "$(id -u)" = 0 ] && chown postgres "$W" "$W/pg"
		runas "$PGBIN/initdb" -D "$W/pg/data" -A trust -U castellan -E UTF8 --no-sync >/dev/null
		# wal_level=minimal: the bulk rows into tables truncated in the same
		# transaction skip the WAL; larger WAL between checkpoints
		runas "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/server.log" -w -t 60 \
			-o "-p $PGPORT -k $W/pg -c listen_addresses='' -c shared_buffers=512MB -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=8GB -c checkpoint_timeout=30min" \
			start >/dev/null
		URI="postgres:host=$W/pg port=$PGPORT dbname=postgres user=castellan"
		step "$be" "initdb + start" "$(el $t0 $(now))"
	fi
	KEY=$("$CLI" sms --db "$URI" init --admin bench 2>/dev/null | grep -Eo '[A-Za-z0-9_-]{32,}' | tail -1)
	t0=$(now)
	if [ "$be" = sqlite ]; then
		{ echo "BEGIN;"; gen_sql "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $CARDS) SELECT i FROM n)"; echo "COMMIT;"; } |
			sqlite3 "$W/sms.db"
		t1=$(now)
		SIZE="$(du -m "$W/sms.db" | cut -f1) MB"
		echo "| $be | $CARDS cards built in SQL in $(el $t0 $t1) s, database $SIZE |" >>"$W/build"
		step "$be" "base in SQL (one transaction)" "$(el $t0 $t1)"
	else
		pg_build
		t1=$(now)
		step "$be" "base in SQL (one transaction, keys after the rows)" "$(el $t0 $t1)"
		pg -c "VACUUM ANALYZE" >/dev/null
		t2=$(now)
		step "$be" "VACUUM ANALYZE" "$(el $t1 $t2)"
		SIZE=$(pg -At -c "SELECT pg_database_size('postgres') / 1048576")
		echo "| $be | $CARDS cards built in SQL in $(el $t0 $t1) s + VACUUM ANALYZE $(el $t1 $t2) s, database $SIZE MB |" >>"$W/build"
	fi
	echo "$be: $CARDS cards in $(el $t0 $t1) s" >&2
	serve_and_measure "$be" "$URI"
	[ "$HEADEND" = 0 ] || headend_measure "$be" "$URI" || echo "| $be | $CARDS | head-end step FAILED (see the log) |" >>"$W/he"
	if [ "$be" = postgresql ]; then
		runas "$PGBIN/pg_ctl" -D "$W/pg/data" -m fast -w stop >/dev/null; PGBIN=""
	fi
done

IMPORT=""
if [ "$IMPORT_ROWS" -gt 0 ]; then
	awk -v n="$IMPORT_ROWS" 'BEGIN { printf "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state\r\n";
		for (i = 0; i < n; i++) printf "%.0f,Subscriber %d,\"Street %d, Town\",%08X,%d,1700000000,1800000000,%08X,active\r\n",
			3100000000 + i, i, i % 977, (i * 7) % 256, i % 2, i }' >"$W/import.csv"
	"$CLI" sms --db "$W/import.db" init >/dev/null
	t0=$(now)
	if "$CLI" sms --db "$W/import.db" import "$W/import.csv" >"$W/import.log" 2>&1; then
		t1=$(now)
		IMPORT="CSV import of $IMPORT_ROWS new cards (SQLite, one transaction): $(el $t0 $t1) s wall, $(echo "$IMPORT_ROWS / ($t1 - $t0)" | bc) rows/s"
	else
		t1=$(now)
		IMPORT="CSV import of $IMPORT_ROWS new cards FAILED: $(tail -1 "$W/import.log")"
	fi
	step sqlite "CSV import of $IMPORT_ROWS rows" "$(el $t0 $t1)"
fi

{
	echo "# SMS HTTP APIs and head-end at scale (bench/sms_scale.sh)"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
	echo "wrk -t$WRK_THREADS -c (each of: $CONNS) -d$DURATION on the same machine (the client takes CPU from the server);"
	echo "server: castellan web serve --http-threads $HTTP_THREADS."
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
	if [ -s "$W/he" ]; then
		echo
		echo "## Head-end (castellan headend) on the same base"
		echo
		echo "\`castellan headend --ecmg off --mux SINK --emm-kbps $EMM_KBPS\` after the wrk runs; SINK is the script's"
		echo "EMMG<=>MUX sink (grants what is asked, counts sections and the card records in them: a group"
		echo "EMM 0x83 carries many). Times from the process start, as the sink saw them: cycle 1 (first EMM"
		echo "to the cards-th record) gives every card a new"
		echo "sequence number, committed to the store first (what a key rotation costs: regenerating the"
		echo "whole base); cycle 2 re-sends unchanged cards (a small base waits 1 s between cycles). At"
		echo "$EMM_KBPS kbit/s the bandwidth alone allows $(echo "$EMM_KBPS * 1000 / 8 / 188" | bc) one-packet EMMs/s."
		echo
		echo "| backend | cards | kbit/s | ready s | first EMM s | cycle 1 done s | cycle 1 s | EMM/s | cycle 2 s | EMM/s | carousel's last cycle ms | stop s | sections at the sink |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
		cat "$W/he"
		echo
		echo "Memory of the head-end process: VmRSS (RssAnon: heap, without the SQLite file pages it maps,"
		echo "no mmap since the SMS store stopped mapping it) / VmHWM. Bytes per card = RssAnon growth since ready / cards (includes the"
		echo "SQLite page caches, up to 64 MB per store connection; a PostgreSQL server's memory is its own)."
		echo
		echo "| backend | cards | VmRSS (anon) ready | VmRSS (anon) / VmHWM after cycle 1 | after cycle 2 | anon bytes per card after cycle 1 / 2 | cards in the carousel | scheduler events pending |"
		echo "|---|---|---|---|---|---|---|---|"
		cat "$W/hemem"
		echo
		echo "Restart on the same store (every card's sequence number loaded before the first EMM):"
		echo
		echo "| backend | cards | ready s | first EMM s | VmRSS (anon) / VmHWM then |"
		echo "|---|---|---|---|---|"
		cat "$W/herestart"
	fi
	echo
	echo "## Steps (wall time)"
	echo
	echo "| backend | step | s |"
	echo "|---|---|---|"
	cat "$W/steps"
	echo
	[ -n "$IMPORT" ] && echo "$IMPORT"
} >"$RESULTS"
cat "$RESULTS"
