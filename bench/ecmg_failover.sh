#!/usr/bin/env bash
# ecmg_failover.sh - kill -9 the main ECMG while a scrambler runs with a
# backup, and count the crypto-periods the box could not descramble.
#
#   bench/ecmg_failover.sh [RUNS] [COPIES]    (default 5 runs, 6 copies of the test TS)
#   KEEP=DIR keeps the logs and output of every run that lost a crypto-period
#
# Each run: two `castellan ecmg` (main and backup, the same keystore) on
# loopback; `castellan scramble --realtime` over COPIES copies of
# tests/data/ts-clear-2svc.ts (about 1.6 s each) with both services behind
# `--ecmg MAIN,BACKUP` and 1 s crypto-periods; the main ECMG is killed with
# SIGKILL at a random moment in the middle third; then a cardless box
# (`castellan stb --entitlement`) descrambles the output and every
# elementary-stream packet is compared with the clear input
# (bench/ts_es_compare.py): a crypto-period is lost if any of its packets
# differs. Appends a table to bench/RESULTS-faults.md.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
COPIES=${2:-6}
B=${CASTELLAN_BIN:-build/src/cli/castellan}
[ -x "$B" ] || { echo "ecmg_failover: build first ($B)"; exit 1; }
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 "$COPIES"); do cat tests/data/ts-clear-2svc.ts; done >"$W/in.ts"
printf 'ecmg failover bench passphrase\n' >"$W/pass"
chmod 600 "$W/pass"
"$B" keys init --out "$W/ks" --ca-system-id 0x4ADC --passphrase-file "$W/pass" >/dev/null 2>&1 || exit 1
now=$(date +%s)
# the box's grant from the SMS (provision issues only what the SMS holds)
"$B" sms --db "$W/sms.db" card add 2100000001 >/dev/null 2>&1 || exit 1
"$B" sms --db "$W/sms.db" subscribe 2100000001 --packages 0 --start $((now - 86400)) \
	--finish $((now + 86400)) >/dev/null 2>&1 || exit 1
"$B" provision --db "$W/sms.db" --keystore "$W/ks" --passphrase-file "$W/pass" --card 2100000001 \
	--out "$W/ent" >/dev/null 2>&1 || exit 1

wait_port() { # port: until something listens (bounded, 20 s)
	for _ in $(seq 1 200); do
		ss -ltn 2>/dev/null | grep -q ":$1 " && return 0
		sleep 0.1
	done
	return 1
}

rows=""
lost_total=0
cps_total=0
for run in $(seq 1 "$RUNS"); do
	# two free ports (asked of the kernel), so no other ECMG answers on them
	read -r p1 p2 <<<"$(python3 -c 'import socket
s=[socket.socket() for _ in (0, 1)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
	"$B" ecmg --keystore "$W/ks" --passphrase-file "$W/pass" --listen 127.0.0.1:$p1 >"$W/main.log" 2>&1 &
	mp=$!
	"$B" ecmg --keystore "$W/ks" --passphrase-file "$W/pass" --listen 127.0.0.1:$p2 >"$W/backup.log" 2>&1 &
	bp=$!
	wait_port $p1 && wait_port $p2 && kill -0 $mp 2>/dev/null && kill -0 $bp 2>/dev/null ||
		{ echo "ecmg_failover: the ECMGs did not start"; cat "$W/main.log" "$W/backup.log"; exit 1; }
	dur_ms=$((COPIES * 1600))
	kill_ms=$((dur_ms / 3 + RANDOM % (dur_ms / 3)))
	(sleep "$(printf '%d.%03d' $((kill_ms / 1000)) $((kill_ms % 1000)))"; kill -9 $mp 2>/dev/null) &
	killer=$!
	"$B" scramble --input "$W/in.ts" --output "$W/out.ts" --service 101:ac=00000001 --service 102:ac=00000001 \
		--ecmg 127.0.0.1:$p1,127.0.0.1:$p2 --super-cas-id 0x4ADC0001 --cp-duration 1 --realtime \
		--stats-json "$W/stats.json" >"$W/scr.log" 2>&1
	src=$?
	wait $killer 2>/dev/null
	kill $bp 2>/dev/null
	wait $mp $bp 2>/dev/null
	"$B" stb --input "$W/out.ts" --output "$W/box.ts" --entitlement "$W/ent" >"$W/stb.log" 2>&1
	# per crypto-period: split the output by the packets' scrambling parity
	# flips on PID 0x100 and compare each stretch with the clear input
	read -r cps lost differ <<<"$(python3 - "$W/in.ts" "$W/out.ts" "$W/box.ts" <<'PY'
import sys
def pk(p):
    d = open(p, 'rb').read()
    return [d[i:i + 188] for i in range(0, len(d) - 187, 188)]
clear, scr, box = pk(sys.argv[1]), pk(sys.argv[2]), pk(sys.argv[3])
pids = (0x100, 0x101, 0x102, 0x103)
pid = lambda p: ((p[1] & 0x1F) << 8) | p[2]
ci = {q: [p for p in clear if pid(p) == q] for q in pids}
cnt = {q: 0 for q in pids}
cp, last, lost, differ, bad_cp = 0, None, 0, 0, set()
for s, b in zip(scr, box):
    q = pid(s)
    if q not in pids:
        continue
    par = s[3] >> 6
    if par in (2, 3) and par != last:
        cp, last = cp + 1, par
    i = cnt[q]; cnt[q] += 1
    if i < len(ci[q]) and b != ci[q][i]:
        differ += 1
        bad_cp.add(cp)
print(cp, len(bad_cp), differ)
PY
)"
	fo=$(python3 -c "import json;d=json.load(open('$W/stats.json'));c=d['cas'][0];print(c['failovers'], c['on_backup'], d['pkts_withheld'], d['clear_pkts_failure'])" 2>/dev/null)
	if [ "$lost" -gt 0 ] && [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP/run$run" && cp "$W"/*.log "$W/out.ts" "$W/stats.json" "$KEEP/run$run/"
	fi
	rows+="| $run | $kill_ms | $src | $cps | $lost | $differ | $fo |"$'\n'
	lost_total=$((lost_total + lost)); cps_total=$((cps_total + cps))
	echo "run $run: main killed at ${kill_ms} ms; scramble exit $src; ${cps} CPs, ${lost} lost (${differ} ES packets differ); failovers/on_backup/withheld/clear: $fo"
done
{
	echo
	echo "## ECMG failover: kill -9 of the main ECMG (bench/ecmg_failover.sh)"
	echo
	echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null), $(nproc) cores. $COPIES copies of"
	echo "tests/data/ts-clear-2svc.ts scrambled in real time (services 101 and 102, CP 1 s) with"
	echo "\`--ecmg MAIN,BACKUP\`; the main ECMG is SIGKILLed in the middle third; a cardless box"
	echo "descrambles the output and every ES packet is compared with the clear input."
	echo
	echo "| run | kill at ms | scramble exit | CPs | CPs lost | ES packets differing | failovers, on backup, withheld, left clear |"
	echo "|---|---|---|---|---|---|---|"
	printf '%s' "$rows"
	echo
	echo "**Lost crypto-periods: $lost_total of $cps_total.**"
} >>bench/RESULTS-faults.md
echo "ecmg_failover: $lost_total of $cps_total crypto-periods lost (bench/RESULTS-faults.md)"
[ "$lost_total" -eq 0 ]
