#!/usr/bin/env bash
# gen.sh: write joey's man pages into OUTDIR, generated from the binary's own help so
# they cannot drift from it: joey(1) from `joey --help`, joey-CMD(1) from
# `joey CMD --help` (help2man; each page's NAME line is the command's summary in
# `joey --help`), joey-config(5) from docs/config.md (md2man.py).
#   packaging/man/gen.sh JOEY VERSION OUTDIR
# Dates come from SOURCE_DATE_EPOCH when set (reproducible builds).
set -euo pipefail
joey=$(realpath "$1") version=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# `joey --help` lists the commands as "  NAME  SUMMARY" under "commands:"
commands=$("$joey" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }')
[ -n "$commands" ] || { echo "gen.sh: no commands in '$joey --help'" >&2; exit 1; }
see_also="joey(1)"
for c in $commands; do see_also="$see_also, joey-$c(1)"; done
see_also="$see_also, joey-config(5)"

# help2man reads `PROG --help`: a wrapper per command runs `joey CMD --help` and only
# reshapes its usage lines the way help2man parses them ("Usage:", one line per form,
# further forms as "  or: ..."). The text itself is the binary's.
wrap() { # NAME ARGS...
	local name=$1
	shift
	cat >"$tmp/$name" <<WRAP
#!/bin/sh
"$joey" $* "\$@" | awk '
	NR == 1 && /^usage:/ { sub(/^usage:/, "Usage:"); line = \$0; inusage = 1; next }
	inusage && /^ +\\[/ { sub(/^ +/, " "); line = line \$0; next }
	inusage && /^ +joey / { print line; sub(/^ +/, "  or: "); line = \$0; next }
	inusage { print line; inusage = 0 }
	{ print }
	END { if (inusage) print line }'
WRAP
	chmod +x "$tmp/$name"
}

see() { # the SEE ALSO list without the page itself
	local self=$1
	printf '%s\n' "$see_also" | sed -E "s/(^|, )$self\\(1\\)//; s/^, //" |
		sed -E 's/([a-z-]+)\(([0-9])\)/.BR \1 (\2)/g; s/, /,\n/g'
}

h2m() { # NAME SUMMARY INCLUDE
	help2man --no-info --no-discard-stderr --version-string="$version" --source="joey $version" \
		--manual="joey manual" --name="$2" --include="$3" --output="$out/$1.$4" --section="$4" "$tmp/$1"
}

# joey(1): the overview, with the environment and files every command shares
wrap joey
{
	printf '[ENVIRONMENT]\n'
	printf '.TP\n.B JOEY_CONFIG\nthe config directory when \\fB\\-\\-config\\fR is not given (default ./config)\n'
	printf '.TP\n.B JOEY_STATE_URL\\fR, \\fBJOEY_STATE\nthe state store when \\fB\\-\\-state\\fR is not given: a postgresql:// URL or an SQLite file (default .joey/state.db beside the config directory)\n'
	printf '.TP\n.B JOEY_SECRETS_FILE\nthe secrets file (default secrets.json beside the state store), see \\fBjoey-config\\fR(5)\n'
	printf '.TP\n.B JOEY_API_TOKEN\nthe API token of \\fBjoey serve\\fR\n'
	printf '[FILES]\n'
	printf '.TP\n.I /etc/joey\nthe config directory of the packaged service (\\fBjoey.service\\fR)\n'
	printf '.TP\n.I /var/lib/joey\nits state store, secrets file and API token\n'
	printf '.TP\n.I /etc/default/joey\nenvironment of the services (secrets, JOEY_STATE_URL)\n'
	printf '.TP\n.I /usr/share/joey/examples/demo\nthe demo: a SQLite warehouse (demo.sql) and its config\n'
	printf '[SEE ALSO]\n'
	see joey
} >"$tmp/joey.h2m"
h2m joey "keep Braze in sync with your database (reverse ETL)" "$tmp/joey.h2m" 1

for c in $commands; do
	summary=$("$joey" --help | awk -v c="$c" '/^commands:/ { on = 1; next } on && $1 == c { $1 = ""; sub(/^ +/, ""); print; exit }')
	wrap "joey-$c" "$c"
	{ printf '[SEE ALSO]\n'; see "joey-$c"; } >"$tmp/joey-$c.h2m"
	h2m "joey-$c" "$summary" "$tmp/joey-$c.h2m" 1
done

python3 "$here/md2man.py" --name joey-config --section 5 --version "$version" \
	--summary "the config directory joey reads (Grouparoo config-as-code)" \
	--see-also "$(printf '%s\n' "$see_also" | sed -E 's/(, )?joey-config\(5\)//')" \
	"$root/docs/config.md" >"$out/joey-config.5"
