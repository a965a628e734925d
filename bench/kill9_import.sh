#!/bin/sh
# kill9_import.sh - the long run of tests/faults/test_kill9.py (issue 12
# item 14): a CSV import of ROWS rows (default 1,000,000) killed with
# SIGKILL at POINTS moments spread over its duration, on SQLite and
# PostgreSQL; after each kill the rows are all there or none and the audit
# chain verifies. Prints the test's lines; exit 0 when every check held.
#   bench/kill9_import.sh [ROWS [POINTS]]
cd "$(dirname "$0")/.." || exit 1
CASTELLAN_BIN=${CASTELLAN_BIN:-build/src/cli/castellan} KILL9_ROWS=${1:-1000000} KILL9_POINTS=${2:-5} \
	KILL9_ONLY=csv exec python3 tests/faults/test_kill9.py
