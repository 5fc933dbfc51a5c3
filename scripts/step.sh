# step.sh: run one step of a script with its output in a log file, and when it fails
# say which step, show the end of its output and what to do. Sourced by scripts/*.sh.
#
#   step_run NAME LOG HINT CMD [ARG...]
#
# Runs CMD with stdout and stderr in LOG (its directory is created). Returns CMD's exit
# status; on failure prints to stderr the step's name, the last $JOEY_STEP_LINES
# (default 30) lines of LOG and HINT (e.g. "run: ninja -C build to see the whole error").
# Safe under `set -e`: the caller decides what a failure means (`step_run ... || exit 1`).

step_run() {
	local name=$1 log=$2 hint=$3
	shift 3
	mkdir -p "$(dirname "$log")"
	"$@" >"$log" 2>&1 && return 0
	local rc=$?
	local lines=${JOEY_STEP_LINES:-30}
	{
		printf '\n%s: step failed: %s (exit %d)\n' "${0##*/}" "$name" "$rc"
		printf -- '--- last %d lines of %s ---\n' "$lines" "$log"
		tail -n "$lines" "$log"
		printf -- '---\n'
		printf 'the whole output: %s\n' "$log"
		[ -z "$hint" ] || printf 'hint: %s\n' "$hint"
	} >&2
	return "$rc"
}
