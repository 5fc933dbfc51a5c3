#!/usr/bin/env bash
# core_dumps.sh: joey serve, worker and run hold the Braze key and the database
# passwords in memory for as long as they run, so none of them may leave a core dump
# (RLIMIT_CORE 0) or be readable by ptrace or /proc/<pid>/mem (not dumpable), unless
# JOEY_ALLOW_CORE=1 asks for it (docs/security.md, "Secrets").
#
# Seen from outside: /proc/<pid>/limits gives the core limit; a process that is not
# dumpable has its /proc/<pid> files owned by root. That needs the process to run as
# another user than root: as root, this script runs joey as nobody (setpriv).
set -e
source "$(dirname "$0")/lib.bash"

ulimit -c "$(ulimit -H -c)" # what a careless operator has: cores allowed
# a sanitizer build: AddressSanitizer sets the core limit to 0 itself unless told not to
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}disable_coredump=0"
if [ "$(ulimit -c)" = 0 ]; then
  echo "skipped: the hard core limit is 0 here"; echo "0 passed, 0 failed"; exit 0
fi

# A project nobody can read and write (the test's TMP is root's and 0700)
P=$(mktemp -d "${TMPDIR:-/tmp}/joeycore.XXXXXX")
trap 'e2e_cleanup; rm -rf "$P"' EXIT
users_db "$P/data.db" 1
users_config "$P/config/config.json" "http://127.0.0.1:9" '${CORE_BRAZE_KEY}'
AS=()
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$P"; chown -R 65534:65534 "$P"
  AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
export CORE_BRAZE_KEY=core-test-key

# check_process NAME PID EXPECT: EXPECT is "protected" or "allowed"
check_process() {
  local name=$1 pid=$2 want=$3 limit owner uid
  limit=$(awk '/^Max core file size/ {print $5}' "/proc/$pid/limits")
  owner=$(stat -c %u "/proc/$pid/status")
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  if [ "$uid" = 0 ]; then bad "$name: runs as root, cannot observe dumpable"; return; fi
  if [ "$want" = protected ]; then
    if [ "$limit" = 0 ]; then ok "$name: core file size limit 0"; else bad "$name: core limit is $limit"; fi
    if [ "$owner" = 0 ]; then ok "$name: not dumpable (/proc/$pid owned by root)"; else bad "$name: dumpable (/proc/$pid owned by $owner)"; fi
  else
    if [ "$limit" != 0 ]; then ok "$name: JOEY_ALLOW_CORE=1 keeps the core limit ($limit)"; else bad "$name: JOEY_ALLOW_CORE=1: core limit 0"; fi
    if [ "$owner" = "$uid" ]; then ok "$name: JOEY_ALLOW_CORE=1 keeps it dumpable"; else bad "$name: JOEY_ALLOW_CORE=1 but not dumpable"; fi
  fi
}

# start_serve LOG [ENV...]: joey serve in the background; SERVE_PID once it listens
start_serve() {
  local log=$1; shift
  env "$@" "${AS[@]}" "$JOEY" serve --config "$P/config" --state "$P/.joey/state.db" --listen 127.0.0.1:0 >"$log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  # the joey process itself (setpriv execs it: same pid)
}
stop_serve() { kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; }

RC=0; OUT=""; ERR=""
start_serve "$TMP/serve.log"
if grep -q "listening on" "$TMP/serve.log"; then
  check_process "joey serve" "$SERVE_PID" protected
else
  ERR=$(cat "$TMP/serve.log"); bad "joey serve did not start"
fi
stop_serve

start_serve "$TMP/serve2.log" JOEY_ALLOW_CORE=1
if grep -q "listening on" "$TMP/serve2.log"; then
  check_process "joey serve" "$SERVE_PID" allowed
else
  ERR=$(cat "$TMP/serve2.log"); bad "joey serve (JOEY_ALLOW_CORE=1) did not start"
fi
stop_serve

# joey run: caught while it waits for a slow Braze
sim_start --latency-ms 3000 --api-key core-test-key
sed -i "s|http://127.0.0.1:9|$SIM_URL|" "$P/config/config.json"
"${AS[@]}" "$JOEY" run --config "$P/config" --state "$P/.joey/state.db" >"$TMP/run.log" 2>&1 &
RUN_PID=$!
sleep 1
if kill -0 "$RUN_PID" 2>/dev/null; then
  check_process "joey run" "$RUN_PID" protected
else
  ERR=$(cat "$TMP/run.log"); bad "joey run ended before it could be looked at"
fi
wait "$RUN_PID" || true

# joey validate --check-apps: caught while it asks the slow Braze whether the key works
"${AS[@]}" "$JOEY" validate --check-apps --config "$P/config" >"$TMP/validate.log" 2>&1 &
V_PID=$!
sleep 1
if kill -0 "$V_PID" 2>/dev/null; then
  check_process "joey validate --check-apps" "$V_PID" protected
else
  ERR=$(cat "$TMP/validate.log"); bad "joey validate --check-apps ended before it could be looked at"
fi
wait "$V_PID" || true

# joey worker: needs a PostgreSQL state store
if [ -n "${JOEY_PG_URL:-}" ]; then
  SCHEMA="e2e_core_$$_$RANDOM"
  case $JOEY_PG_URL in *\?*) URL="$JOEY_PG_URL&schema=$SCHEMA" ;; *) URL="$JOEY_PG_URL?schema=$SCHEMA" ;; esac
  "${AS[@]}" "$JOEY" worker --config "$P/config" --state "$URL" >"$TMP/worker.log" 2>&1 &
  W_PID=$!
  for _ in $(seq 1 100); do grep -q "started" "$TMP/worker.log" 2>/dev/null && break; sleep 0.1; done
  if kill -0 "$W_PID" 2>/dev/null; then
    check_process "joey worker" "$W_PID" protected
  else
    ERR=$(cat "$TMP/worker.log"); bad "joey worker did not start"
  fi
  kill -TERM "$W_PID" 2>/dev/null || true; wait "$W_PID" 2>/dev/null || true
  psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
else
  echo "skipped: joey worker (JOEY_PG_URL is not set)"
fi
finish
