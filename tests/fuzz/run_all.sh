#!/usr/bin/env bash
# run_all.sh: run every fuzz target of a fuzz build in turn (tests/fuzz/run_one.sh),
# then print a summary; exits non-zero if any target failed.
#   tests/fuzz/run_all.sh [BUILD_DIR [SECONDS]]   (defaults: build-fuzz, $FUZZ_SECONDS or 60)
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
secs=${2:-${FUZZ_SECONDS:-60}}
shopt -s nullglob
bins=("$build"/tests/fuzz/fuzz_*)
[ ${#bins[@]} -gt 0 ] || { echo "run_all.sh: no fuzz targets in $build/tests/fuzz (build them first)" >&2; exit 2; }
ok=0 failed=0 total=0 lines=()
for bin in "${bins[@]}"; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  line=$(bash tests/fuzz/run_one.sh "$bin" "$secs" | tee /dev/stderr | tail -n 1)
  rc=${PIPESTATUS[0]}
  lines+=("$line")
  execs=$(sed -n 's/^fuzz_[a-z0-9_]*: \([0-9]*\) executions.*/\1/p' <<<"$line")
  total=$((total + ${execs:-0}))
  if [ "$rc" -eq 0 ]; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
done
echo
echo "fuzz summary (${secs} s per target):"
printf '  %s\n' "${lines[@]}"
echo "fuzz: $((ok + failed)) targets, $ok ok, $failed failed, $total executions"
[ "$failed" -eq 0 ]
