#!/usr/bin/env bash
# check-banned.sh - refuse unsafe libc calls in our C sources (curl's habit),
# unchecked big-endian loads, number parses without an end pointer, and
# sources over 1,500 lines that do not say why.
# sprintf/strcpy/strcat/gets overflow; atoi/atol/sscanf hide parse errors.
set -u
cd "$(dirname "$0")/.."
banned='\b(sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|atoll|sscanf|strtok)[[:space:]]*\('
hits=$(grep -rnE "$banned" --include='*.c' --include='*.h' src tests fuzz bench 2>/dev/null | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|//|/\*)' | grep -v 'check-banned: allow')
if [ -n "$hits" ]; then
	echo "banned function calls:"
	echo "$hits"
	exit 1
fi
echo "check-banned: no banned calls"

# Outside bytes are read through lib/cursor.h only: no unchecked big-endian
# load (the old be16/be32 of cursor.h) in the product, fuzz targets or
# benchmarks (tests have testutil.h's tu_be16/tu_be32 for their own bytes).
loads=$(grep -rnE '(^|[^_[:alnum:]])be(16|32|64)[[:space:]]*\(' --include='*.c' --include='*.h' src fuzz bench 2>/dev/null |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|//|/\*)')
if [ -n "$loads" ]; then
	echo "unchecked big-endian loads (use cur_u16/cur_u16_at, lib/cursor.h):"
	echo "$loads"
	exit 1
fi
echo "check-banned: no unchecked big-endian loads"

# Numbers are parsed strictly (lib/util.h parse_u64/parse_s64/parse_dec_s64):
# a strto* call that throws its end pointer away accepts "12abc", " 7" and "".
loose=$(grep -rnE '\bstrto(l|ul|ll|ull|d|f|ld|imax|umax)[[:space:]]*\([^;]*,[[:space:]]*NULL[[:space:]]*[,)]' \
	--include='*.c' --include='*.h' src tests fuzz bench 2>/dev/null | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|//|/\*)')
if [ -n "$loose" ]; then
	echo "number parses without an end pointer (use parse_u64/parse_s64, lib/util.h):"
	echo "$loose"
	exit 1
fi
echo "check-banned: no loose number parses"

# One job per file: a source over SRC_LINES_MAX lines states why at its top
# (a "long file:" line in its first 20), or is split by concern.
SRC_LINES_MAX=1500
long=$(for f in src/*/*.c src/*/*.h; do
	n=$(wc -l < "$f")
	if [ "$n" -gt "$SRC_LINES_MAX" ] && ! head -n 20 "$f" | grep -q 'long file:'; then
		echo "$f: $n lines"
	fi
done)
if [ -n "$long" ]; then
	echo "sources over $SRC_LINES_MAX lines without a 'long file:' reason at the top:"
	echo "$long"
	exit 1
fi
echo "check-banned: no source over $SRC_LINES_MAX lines without a reason"

# A clone must stand alone: nothing in the tree may read files outside it
# (test data lives in tests/data/).
# (the pattern is assembled so this file does not name what it looks for)
sib=shared
outside=$(git ls-files 2>/dev/null | grep -vE '^tests/data/' |
	xargs grep -nE "\\.\\./${sib}/|CASTELLAN_${sib^^}" 2>/dev/null)
if [ -n "$outside" ]; then
	echo "paths outside the tree:"
	echo "$outside"
	exit 1
fi
echo "check-banned: no paths outside the tree"
