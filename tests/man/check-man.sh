#!/bin/sh
# check-man.sh BIN MANDIR - every command has its man page, named for it,
# and every --option of its --help is in the page (the page is the help's
# text); man renders each without a warning.
set -u
bin=$1 dir=$2 bad=0
cmds="castellan $("$bin" help | awk '/^  [a-z]/ && $1 != "help" { print $1 }')"
n=0
for c in $cmds; do
	if [ "$c" = castellan ]; then page=castellan; help=$("$bin" help); else page="castellan-$c"; help=$("$bin" "$c" --help); fi
	f="$dir/$page.1"
	if [ ! -s "$f" ]; then echo "FAIL: no $f"; bad=$((bad + 1)); continue; fi
	grep -q "^$page \\\\- " "$f" || { echo "FAIL: $f: NAME is not $page"; bad=$((bad + 1)); }
	for o in $(printf '%s\n' "$help" | grep -oE '(^|[^a-z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*--//' | sort -u); do
		esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
		grep -q -- "\\\\-\\\\-$esc" "$f" || { echo "FAIL: $f: --$o of --help missing"; bad=$((bad + 1)); }
	done
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null | head -3)
	[ -z "$w" ] || { echo "FAIL: $f: man warns: $w"; bad=$((bad + 1)); }
	n=$((n + 1))
done
echo "check-man: $n pages, $bad problems"
[ "$bad" -eq 0 ] && [ "$n" -gt 10 ]
