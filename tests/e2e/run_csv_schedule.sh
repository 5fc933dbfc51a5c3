#!/usr/bin/env bash
# run_csv_schedule.sh: a Grouparoo CSV schedule. Grouparoo's CSV plugin had no schedule
# options (every run read the whole file), so its configs' CSV schedules name no column;
# joey required options.column of every CSV schedule, and a Grouparoo CSV config did not
# load. A CSV schedule without a column is now not incremental: every run reads every
# row, deletions included. With a column it reads incrementally as before, and asking for
# an incremental schedule without one is an error naming the option.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
printf 'id,email,updated_at\n1,a@example.com,1\n2,b@example.com,1\n' > "$TMP/users.csv"
config() { # config SCHEDULE_EXTRA OPTIONS
  mkdir -p "$TMP/cfg"
  cat > "$TMP/cfg/config.json" <<CFG
[
 {"class":"App","id":"csv","type":"csv","options":{"file":"users.csv"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"csv-import-table","appId":"csv","modelId":"users","options":{},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"s","sourceId":"src","recurring":true,"recurringFrequency":3600000,$1"options":$2},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email"},"options":{"maxDeletePercent":100}}
]
CFG
}
J="--config $TMP/cfg --state $TMP/state.db"

config "" "{}"
run validate --config "$TMP/cfg"; expect_rc 0 "a Grouparoo CSV schedule (no column) is valid"
run run $J; expect_rc 0 "first run"
expect_no 'incremental since' "first run is not incremental"
sim_check "first run: both users" 'sorted(users) == ["1","2"]'
printf 'id,email,updated_at\n1,a@example.com,1\n' > "$TMP/users.csv"
run plan $J; expect_rc 0 "plan after a row was deleted"
expect_no 'incremental since' "the schedule is not incremental: plan reads every row"
expect_out '^  delete +1' "plan: the deleted row would be deleted"
run run $J; expect_rc 0 "run after a row was deleted"
expect_out 'deleted 1,' "the deleted row is deleted in Braze"
sim_check "Braze has user 1 only" 'sorted(users) == ["1"]'

config '"incremental":true,' "{}"
run validate --config "$TMP/cfg"; expect_rc 1 "incremental without a column"
expect_out 'options.column: missing required option "column"' "the error names the option"

config "" '{"column":"updated_at"}'
run validate --config "$TMP/cfg"; expect_rc 0 "a CSV schedule with a column is valid"
rm -f "$TMP"/state.db*
run run $J; expect_rc 0 "a run with a column"
run run $J; expect_rc 0 "the next run"
expect_out 'model "users": incremental since' "with a column the schedule is incremental (as before)"
finish
