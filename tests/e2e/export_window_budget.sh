#!/usr/bin/env bash
# export_window_budget.sh: joey spends Braze's fixed rate windows (src/dest/ratelimit.h)
# against the simulator's enforcement: at a small limit (40 /users/track per second,
# the app's rateLimits saying so) runs of 100 requests cross several windows; Braze
# never counts more than 95% of the limit in one window and never answers 429, also
# for a run that starts right after another has spent the window, and with
# X-RateLimit-Reset given as seconds left. Asserted on the simulator's counts, never on
# wall time.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

sim_start --latency-ms 100 --rate track=40/1 --log-keep 0
D=$TMP/p
mkdir -p "$D/config"
users_db "$D/data.db" 7500
users_config "$D/config/config.json" "$SIM_URL" test-key
sed -i 's#"restEndpoint":"'"$SIM_URL"'"#&,"rateLimits":"track=40/1"#' "$D/config/config.json"
grep -q '"rateLimits":"track=40/1"' "$D/config/config.json" || { echo "config edit failed"; exit 1; }
stat_of() { curl -s "$SIM_URL/_sim/stats" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

run run --config "$D/config" --state "$D/a.db" --json
expect_rc 0 "100 requests at 40 per second"
[ "$(stat_of 's["track"]["requests"]')" = 100 ] && ok "Braze accepted the 100 requests" || bad "Braze accepted $(stat_of 's["track"]["requests"]')"
[ "$(stat_of 's["rate_limited"]')" = 0 ] && ok "no 429" || bad "$(stat_of 's["rate_limited"]') 429s"
peak=$(stat_of 's["rate_window_peak"]["track"]')
[ "$peak" -le 38 ] && ok "no window over 95% of the limit (most in one: $peak)" || bad "a window counted $peak of 40"

# right after: the window the first run spent may still be open; the probe fits in it
sqlite3 "$D/data.db" "UPDATE users SET email = 'x' || email"
run run --config "$D/config" --state "$D/a.db" --json
expect_rc 0 "a second run right after the first"
[ "$(stat_of 's["rate_limited"]')" = 0 ] && ok "back to back: no 429" || bad "back to back: $(stat_of 's["rate_limited"]') 429s"
peak=$(stat_of 's["rate_window_peak"]["track"]')
[ "$peak" -le 39 ] && ok "back to back: no window over the probe's headroom (most in one: $peak)" || bad "back to back: a window counted $peak of 40"

# X-RateLimit-Reset as seconds left (whole seconds, later than the real end)
curl -s -X POST "$SIM_URL/_sim/reset" >/dev/null
curl -s -X POST -H 'Content-Type: application/json' "$SIM_URL/_sim/config" -d '{"rate_reset":"delta"}' >/dev/null
run run --config "$D/config" --state "$D/b.db" --json
expect_rc 0 "Reset in seconds left"
[ "$(stat_of 's["rate_limited"]')" = 0 ] && ok "delta reset: no 429" || bad "delta reset: $(stat_of 's["rate_limited"]') 429s"
peak=$(stat_of 's["rate_window_peak"]["track"]')
[ "$peak" -le 38 ] && ok "delta reset: no window over 95% (most in one: $peak)" || bad "delta reset: a window counted $peak of 40"
finish
