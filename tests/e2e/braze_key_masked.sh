#!/usr/bin/env bash
# braze_key_masked.sh: a Braze that quotes the API key in its answers (braze-sim
# --echo-key: the message of every error answer and the type of every per-object
# error) never gets the key onto stdout, stderr, the log, the error ledger or the
# state store: joey masks it in every text it takes from a response (docs/security.md,
# "Secrets").
set -e
source "$(dirname "$0")/lib.bash"
GOOD="good-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
WRONG="wrong-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
sim_start --echo-key --api-key "$GOOD"
users_db "$TMP/data.db" 100 n
users_config "$TMP/cfg/config.json" "$SIM_URL" '${BRAZE_KEY}' n
J="--config $TMP/cfg --timeout 2"
STATE="$TMP/.joey/state.db"
# nowhere: the key is in no output of the last command, and not in the state store
nowhere() { # nowhere KEY NAME
  expect_no "$1" "$2: not on stdout or stderr"
  if state_exists "$STATE" && state_contains "$STATE" "$1"; then bad "$2: the key is in the state store"; else ok "$2: not in the state store"; fi
}

# the simulator really echoes (or this test proves nothing)
ECHO=$(curl -s -X POST -H "Authorization: Bearer $WRONG" -H 'Content-Type: application/json' "$SIM_URL/users/track" -d '{}')
if grep -qF "$WRONG" <<<"$ECHO"; then ok "braze-sim --echo-key quotes the key it was sent"; else bad "braze-sim does not echo: $ECHO"; fi

# 401: Braze's text is shown (with -v, every retry and log line too), the key is not
export BRAZE_KEY="$WRONG"
run run $J -v; expect_rc 1 "wrong key: run fails"
expect_out 'Braze rejected the API key' "wrong key: the error says so"
expect_out 'Invalid API key: unknown key' "wrong key: Braze's message is shown"
expect_out '\*\*\*\*' "wrong key: the key is masked in Braze's message"
nowhere "$WRONG" "wrong key (run -v)"
run run $J --json; expect_rc 1 "wrong key: run --json fails"
nowhere "$WRONG" "wrong key (run --json)"
run validate --config "$TMP/cfg" --check-apps; expect_rc 1 "wrong key: validate --check-apps fails"
expect_err 'Invalid API key' "wrong key: validate shows Braze's message"
nowhere "$WRONG" "wrong key (validate --check-apps)"

# 5xx past the retry budget: every row's error (ledger, last_error) quotes Braze's message
export BRAZE_KEY="$GOOD"
sim_post /_sim/faults '[{"endpoint":"track","status":500,"count":40}]'
run run $J -v; expect_rc 1 "5xx storm: run fails"
expect_out 'failed 100' "5xx storm: every row failed"
expect_err 'Internal Server Error' "5xx storm: the retries are logged with Braze's message"
nowhere "$GOOD" "5xx storm (run -v)"
run status --config "$TMP/cfg"; expect_out 'Internal Server Error' "5xx storm: status shows the last error"
nowhere "$GOOD" "5xx storm (status)"
sim_post /_sim/faults '{"action":"clear"}'

# a per-object error type
sim_post /_sim/faults '{"action":"row_error","external_id":"7","type":"EMAIL_BAD_FORMAT"}'
run run $J -v; expect_rc 1 "row error: run reports failure"
expect_out 'failed 1' "row error: one row failed"
run status --config "$TMP/cfg" --record 7; expect_out 'EMAIL_BAD_FORMAT' "row error: the type is recorded"
nowhere "$GOOD" "row error (status --record)"
sim_post /_sim/faults '{"action":"clear"}'
run run $J; expect_rc 0 "next run converges"
finish
