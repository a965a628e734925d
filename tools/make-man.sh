#!/bin/sh
# make-man.sh BIN CMD OUT - the man page of `castellan CMD` (CMD "castellan":
# the command list) made from its --help by help2man, so a page says what
# --help says (one text). The NAME line is the command's summary from
# `castellan help`. The date is SOURCE_DATE_EPOCH's when set (reproducible).
set -eu
bin=$1 cmd=$2 out=$3
if [ "$cmd" = castellan ]; then
	page=castellan
	name="an open, securely replaceable Conditional Access System"
	help_opt="help"
else
	page="castellan-$cmd"
	name=$("$bin" help | awk -v c="$cmd" '$1 == c { $1 = ""; sub(/^ +/, ""); print; exit }')
	help_opt="$cmd --help"
fi
[ -n "$name" ] || { echo "make-man.sh: no summary for $cmd in 'castellan help'" >&2; exit 1; }
up=$(printf '%s' "$page" | tr 'a-z' 'A-Z')
help2man --no-info --no-discard-stderr --section=1 --source=Castellan --manual="Castellan" \
	--name="$name" --help-option="$help_opt" --version-option=--version "$bin" >"$out.tmp"
# the page is castellan-CMD, not castellan
sed -e "s/^\.TH CASTELLAN /.TH $up /" -e "/^\.SH NAME/{n;s/^castellan \\\\- /$page \\\\- /}" "$out.tmp" >"$out"
rm -f "$out.tmp"
grep -q "^$page \\\\- " "$out" || { echo "make-man.sh: $out has no NAME line for $page" >&2; exit 1; }
