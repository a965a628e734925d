#!/usr/bin/env bash
# fuzz-long.sh - run every libFuzzer target for a long time and write down
# what each did: executions, coverage (libFuzzer's cov: edges and ft:
# features), corpus size, crashes. Results go to fuzz/RESULTS-long.md.
#
#   tools/fuzz-long.sh [SECONDS_PER_TARGET] [TARGET...]   (default 3600, every target)
#
# Needs clang (the build-fuzz tree is made as tools/test.sh makes it). Each
# target starts from its seed corpus (fuzz/corpus/NAME) in a work folder; new
# inputs stay there (the seeds are not changed). A crash is saved under
# fuzz/artifacts/; to keep it as a regression test copy it into
# fuzz/corpus/NAME/ (replayed by every `meson test`, fuzz/replay.c) once fixed.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3600}
shift || true
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
	-Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link -Db_lundef=false >/dev/null
ninja -C build-fuzz >/dev/null || { echo "fuzz-long: build failed"; exit 1; }
mkdir -p fuzz/artifacts
out=fuzz/RESULTS-long.md
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for t in build-fuzz/fuzz/fuzz_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue # not the fuzz_NAME.p object folders
		n=$(basename "$t"); targets+=("${n#fuzz_}")
	done
fi
{
	echo "# Long fuzzing runs"
	echo
	echo "$(date -u +%Y-%m-%d), $(uname -m), $(nproc) cores, ${SECS} s per target (tools/fuzz-long.sh)."
	echo "Coverage is libFuzzer's: cov = edges, ft = features, at the end of the run."
	echo
	echo "| target | seconds | executions | exec/s | cov | ft | corpus (start -> end) | crashes |"
	echo "|---|---|---|---|---|---|---|---|"
} >"$out.tmp"
fails=0
for name in "${targets[@]}"; do
	bin=build-fuzz/fuzz/fuzz_$name
	work=$(mktemp -d)
	[ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
	start=$(find "$work" -type f | wc -l)
	log=build-fuzz/$name.long.log
	"$bin" -max_total_time="$SECS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="fuzz/artifacts/$name-" "$work" >"$log" 2>&1
	rc=$?
	end=$(find "$work" -type f | wc -l)
	execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$log" | awk '{print $2}')
	rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | awk '{print $2}')
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
	ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
	crashes=0
	if [ $rc -ne 0 ]; then
		crashes=$(grep -cE '^==[0-9]+==ERROR|deadly signal|SUMMARY: (Address|Undefined)' "$log")
		[ "$crashes" -eq 0 ] && crashes=1
		fails=$((fails + 1))
	fi
	echo "| $name | $SECS | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $start -> $end | $crashes |" >>"$out.tmp"
	echo "fuzz-long $name: ${execs:-?} runs, cov ${cov:-?}, crashes $crashes"
	rm -rf "$work"
done
mv "$out.tmp" "$out"
echo "fuzz-long: results in $out"
[ "$fails" -eq 0 ]
