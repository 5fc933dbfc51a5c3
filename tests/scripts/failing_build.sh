#!/usr/bin/env bash
# failing_build.sh: a build that fails makes scripts/demo.sh say which step failed, show
# the compiler's error and what to run, and exit non-zero (it used to exit 1 silently).
# Works on a scratch copy of the source tree with an #error in one file.
#   JOEY_SRC: the source tree (default: two levels up)
set -u
src=${JOEY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/joey-failing-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

tar -C "$src" --exclude='./build*' --exclude=node_modules --exclude=.git -cf - \
  CMakeLists.txt cmake src tests bench scripts examples | tar -C "$tmp" -xf -
printf '#error joey: broken on purpose\n' >>"$tmp/src/base/arena.c"
printf '#!/bin/sh\nexit 0\n' >"$tmp/scripts/deps.sh" # the packages are there: this test builds

bash "$tmp/scripts/demo.sh" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -ne 0 ] || bad "demo.sh exited 0 with a broken build"
grep -q 'demo.sh: step failed: build joey and the Braze simulator' "$tmp/err" || bad "the failing step is not named"
grep -q 'arena.c.*error: #error joey: broken on purpose' "$tmp/err" || bad "the compiler's error is not shown"
grep -q 'hint: run: ninja -C build joey braze-sim' "$tmp/err" || bad "no hint what to run"
[ -s "$tmp/build/logs/build.log" ] || bad "no build log"
if [ "$fails" -ne 0 ]; then
  echo "--- demo.sh stdout"; cat "$tmp/out"; echo "--- demo.sh stderr"; cat "$tmp/err"
  exit 1
fi
echo "ok: demo.sh names the failed build step, shows the error and a hint (exit $rc)"
