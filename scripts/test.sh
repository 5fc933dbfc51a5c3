#!/usr/bin/env bash
# test.sh: build joey with AddressSanitizer + UBSan and run every test
# (unit tests, declarative cases, end-to-end CLI tests) through CTest.
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh || exit 1
cmake -S . -B build-test -G Ninja -DJOEY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null || exit 1
ninja -C build-test || exit 1

# Real PostgreSQL and MariaDB servers on 127.0.0.1 for the source tests (throwaway data
# directories, stopped at exit); a developer's own servers are used when JOEY_PG_URL is set.
if [ -z "${JOEY_PG_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  if servers=$(bash scripts/test-servers.sh start); then
    eval "$servers"
    trap 'bash scripts/test-servers.sh stop >/dev/null 2>&1' EXIT
  else
    echo "test.sh: could not start the test database servers; their tests will be skipped" >&2
  fi
fi

log=$(mktemp)
ctest --test-dir build-test --output-on-failure -j"$(nproc)" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$log")
failed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Timeout|Exception)' "$log")
rm -f "$log"
echo "${passed} passed, ${failed} failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
