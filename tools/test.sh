#!/usr/bin/env bash
# test.sh - every check Castellan has, in one command:
#   1. banned-function check, layer check (tools/check-layers.py)
#   2. the cmocka suites (build/)
#   3. the same suites under AddressSanitizer + UndefinedBehaviorSanitizer
#   4. every libFuzzer target for FUZZ_SECONDS (default 20) on its corpus
#   5. every --option named in the docs exists in that command's --help
#   6. the Debian package: built from a clean copy, contents and units checked
#      (tools/check-package.sh; skipped, said so, without dpkg-buildpackage)
#   7. the end-to-end demo (tests/e2e/castellan-demo; its results in build/demo-summary.json)
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0
failed=0
failures=()

note_fail() { failed=$((failed + 1)); failures+=("$1"); }

# Count cmocka results of one meson build's test log.
count_suite() {
	local dir=$1 label=$2 p f mf
	p=$(grep -hoE '\[  PASSED  \] [0-9]+ test' "$dir/meson-logs/testlog.txt" | awk '{s+=$4} END {print s+0}')
	f=$(grep -hoE '\[  FAILED  \] [0-9]+ test' "$dir/meson-logs/testlog.txt" | awk '{s+=$4} END {print s+0}')
	# meson's own summary counts the tests that crashed, timed out or are
	# not cmocka (python, shell, fuzz replays)
	mf=$(grep -hE '^(Fail|Timeout|Unexpected Pass):' "$dir/meson-logs/testlog.txt" 2>/dev/null | awk '{s+=$NF} END {print s+0}')
	[ "$f" -lt "$mf" ] && f=$mf
	# the fuzz corpus replays (fuzz/replay.c) are plain tests, one each
	p=$((p + $(grep -cE '^ *[0-9]+/[0-9]+ .*fuzz_replay_[a-z0-9_]+ +OK ' "$dir/test-output.txt" 2>/dev/null || true)))
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -gt 0 ] && failures+=("$label: $f failed")
	echo "== $label: $p passed, $f failed"
}

echo "== banned functions"
if tools/check-banned.sh; then passed=$((passed + 1)); else note_fail "banned functions"; fi

echo "== layers (src/layers.txt: no include cycle, no upward include)"
if tools/check-layers.py && tools/check-layers.py selftest; then passed=$((passed + 1)); else note_fail "layers"; fi

echo "== build + unit tests"
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
if ninja -C build >/dev/null; then
	meson test -C build --print-errorlogs --num-processes 2 >build/test-output.txt 2>&1
	tail -n 15 build/test-output.txt
	count_suite build "unit"
else
	note_fail "build"
fi

echo "== ASan+UBSan build + unit tests"
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	--buildtype=debug >/dev/null
if ninja -C build-asan >/dev/null; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
		>build-asan/test-output.txt 2>&1
	tail -n 15 build-asan/test-output.txt
	count_suite build-asan "asan+ubsan"
else
	note_fail "asan build"
fi

echo "== fuzz targets (${FUZZ_SECONDS}s each)"
if command -v clang >/dev/null; then
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link -Db_lundef=false >/dev/null
	if ninja -C build-fuzz >/dev/null; then
		mkdir -p fuzz/artifacts
		for t in build-fuzz/fuzz/fuzz_*; do
			[ -f "$t" ] && [ -x "$t" ] || continue
			name=$(basename "$t"); name=${name#fuzz_}
			corpus="fuzz/corpus/$name"
			work=$(mktemp -d)
			[ -d "$corpus" ] && cp -r "$corpus/." "$work/" 2>/dev/null
			if "$t" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
				-artifact_prefix=fuzz/artifacts/ "$work" >"build-fuzz/$name.log" 2>&1; then
				echo "fuzz $name: ok ($(grep -oE 'stat::number_of_executed_units: [0-9]+' "build-fuzz/$name.log" | awk '{print $2}') runs)"
				passed=$((passed + 1))
			else
				tail -n 30 "build-fuzz/$name.log"
				note_fail "fuzz $name"
			fi
			rm -rf "$work"
		done
	else
		note_fail "fuzz build"
	fi
else
	echo "clang not found: fuzz targets skipped"
fi

echo "== docs name only options that exist"
bad_doc=$(mktemp --suffix=.md)
printf 'Run `castellan headend --no-such-option`.\n' >"$bad_doc"
if ! tools/check-doc-options.py build/src/cli/castellan "$bad_doc" >/dev/null; then
	# the checker catches a planted bad option; now the real docs
	if tools/check-doc-options.py build/src/cli/castellan; then passed=$((passed + 1)); else note_fail "docs options"; fi
else
	note_fail "docs options: the checker missed a planted bad option"
fi
rm -f "$bad_doc"

echo "== Debian package"
tools/check-package.sh >build/package-output.txt 2>&1
pkg_rc=$?
if [ $pkg_rc -eq 77 ]; then
	cat build/package-output.txt
	echo "Debian package: SKIPPED (dpkg-buildpackage / debhelper not installed: tools/bootstrap.sh)"
elif [ $pkg_rc -eq 0 ]; then
	tail -n 1 build/package-output.txt
	passed=$((passed + 1))
else
	grep -E '^(FAIL|check-package)' build/package-output.txt
	note_fail "Debian package (build/package-output.txt)"
fi

echo "== end-to-end demo"
if build/tests/e2e/castellan-demo --summary-json build/demo-summary.json >build/demo-output.txt 2>&1; then
	cat build/demo-output.txt
	passed=$((passed + 1))
else
	cat build/demo-output.txt
	note_fail "demo"
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
