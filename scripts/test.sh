#!/usr/bin/env bash
# test.sh: build joey with AddressSanitizer + UBSan and run every test
# (unit tests, declarative cases, end-to-end CLI tests, fault injection, and each fuzz
# target for FUZZ_SECONDS when clang has libFuzzer) through CTest.
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/step.sh

# A step that fails before the tests run still ends with the summary line CI reads.
give_up() { echo "0 passed, $((1 + $(wc -w <<<"${JOEY_CI_FAILED:-}"))) failed"; exit 1; }

bash scripts/deps.sh || give_up

# The fuzz targets (tests/fuzz) run FUZZ_SECONDS each (default 10; 0 skips them) as
# CTest tests of build-test. They need clang and libFuzzer and are built in build-fuzz.
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
fuzz_build=""
fuzz_note=""
if [ "$FUZZ_SECONDS" = 0 ]; then
  fuzz_note="test.sh: skipped: fuzz targets (FUZZ_SECONDS=0)"
elif probe=$(mktemp -d) && printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$probe/p.c" &&
     clang -fsanitize=fuzzer,address "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  step_run "configure the fuzz build (cmake, clang)" build-fuzz/logs/configure.log \
    "run: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DJOEY_FUZZ=ON to see the whole output" \
    cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DJOEY_FUZZ=ON -DJOEY_WERROR=OFF \
    -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS="-O1 -g" || give_up
  step_run "build the fuzz targets (ninja)" build-fuzz/logs/build.log \
    "run: ninja -C build-fuzz fuzz_all to see the whole error" \
    ninja -C build-fuzz fuzz_all || give_up
  fuzz_build=$PWD/build-fuzz
else
  fuzz_note="test.sh: skipped: fuzz targets (clang with libFuzzer not found; apt-get install clang libclang-rt-14-dev)"
fi
[ -z "$fuzz_note" ] || echo "$fuzz_note" >&2
rm -rf "${probe:-}"

# JOEY_FAULTS: the fault-injection hooks (tests/e2e/faults_inject.sh); never in release.
step_run "configure the test build (cmake)" build-test/logs/configure.log \
  "run: cmake -S . -B build-test -G Ninja -DJOEY_SANITIZE=ON -DJOEY_FAULTS=ON to see the whole output" \
  cmake -S . -B build-test -G Ninja -DJOEY_SANITIZE=ON -DJOEY_FAULTS=ON -DCMAKE_BUILD_TYPE=Debug \
  -DJOEY_FUZZ_BUILD="$fuzz_build" -DJOEY_FUZZ_SECONDS="$FUZZ_SECONDS" || give_up
step_run "build joey and the tests with ASan/UBSan (ninja)" build-test/logs/build.log \
  "run: ninja -C build-test to see the whole error" \
  ninja -C build-test || give_up

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

# A ClickHouse server (Debian's clickhouse-server) for the ClickHouse sources, when the
# block above did not start the servers (a developer's own JOEY_PG_URL): in CI a missing
# one fails the clickhouse tests, elsewhere they are skipped with a message.
if [ -z "${JOEY_CLICKHOUSE_URL:-}" ] && [ -z "${JOEY_TEST_SERVERS_DIR:-}" ]; then
  if servers=$(JOEY_TEST_SERVERS=clickhouse-optional bash scripts/test-servers.sh start); then
    eval "$servers"
    trap 'bash scripts/test-servers.sh stop >/dev/null 2>&1' EXIT
  else
    echo "test.sh: could not start a ClickHouse server; its tests will be skipped (or fail in CI)" >&2
  fi
fi

log=$(mktemp)
ctest --test-dir build-test --output-on-failure -j"$(nproc)" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$log")
failed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Timeout|Exception)' "$log")
rm -f "$log"
[ -z "$fuzz_note" ] || echo "$fuzz_note"
# JOEY_CI_FAILED: steps .ci/run ran before this (the demo, the build matrix) that failed;
# each counts as a failed test, so the summary line CI reads cannot hide them.
for f in ${JOEY_CI_FAILED:-}; do
  echo "test.sh: failed before the tests: $f"
  failed=$((failed + 1))
done
echo "${passed} passed, ${failed} failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
