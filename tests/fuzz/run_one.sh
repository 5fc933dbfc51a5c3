#!/usr/bin/env bash
# run_one.sh: run one libFuzzer target for a while on a scratch copy of its seed corpus.
#   tests/fuzz/run_one.sh BUILD/tests/fuzz/fuzz_NAME [SECONDS]
# SECONDS defaults to $FUZZ_SECONDS, else 60. The checked-in corpus
# (tests/fuzz/corpus/NAME) is copied to a temporary directory that receives what the
# fuzzer finds, so it is never modified. A crash, leak, timeout or sanitizer report
# leaves its input in BUILD/tests/fuzz/artifacts/ and ends with a non-zero status.
# Prints one line: "fuzz_NAME: N executions in S s (C corpus units): ok|FAILED".
set -uo pipefail
bin=${1:?usage: run_one.sh FUZZ_BINARY [SECONDS]}
secs=${2:-${FUZZ_SECONDS:-60}}
name=$(basename "$bin")
here=$(cd "$(dirname "$0")" && pwd)
seeds="$here/corpus/${name#fuzz_}"
[ -x "$bin" ] || { echo "$name: no such fuzz binary: $bin" >&2; exit 2; }
[ -d "$seeds" ] || { echo "$name: no seed corpus at $seeds" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/joeyfuzz.$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus" "$(dirname "$bin")/artifacts"
cp -R "$seeds/." "$scratch/corpus/"

start=$(date +%s)
"$bin" "$scratch/corpus" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 \
  -print_final_stats=1 -artifact_prefix="$(dirname "$bin")/artifacts/$name-" \
  >"$scratch/log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/log" | tail -1)
units=$(find "$scratch/corpus" -type f | wc -l)
if [ "$rc" -eq 0 ] && ! grep -qE '^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error:' "$scratch/log"; then
  echo "$name: ${execs:-0} executions in ${elapsed} s (${units} corpus units): ok"
  exit 0
fi
tail -n 80 "$scratch/log"
echo "$name: ${execs:-?} executions in ${elapsed} s (${units} corpus units): FAILED (exit $rc; input in $(dirname "$bin")/artifacts/)"
exit $(( rc ? rc : 1 ))
