#!/usr/bin/env bash
# export_window.sh: the window of /users/track requests in flight follows Braze's
# latency (src/dest/window.h). At 400 ms a fixed 32 in flight is 80 requests/s; joey
# grows its window from the latency it measures so that the rate limit, not the
# window, bounds it. Asserted on what `joey run --json` reports (window.peak, the
# largest number actually in flight), never on wall time; --concurrency stays a bound;
# 503s halve the window (window.decreases). The latency is long enough that a process
# starved of CPU (ctest -j3 on 2 cores) still builds more than 100 requests within one
# round trip: at 200 ms such a run had only 83 in flight, its payloads not its window
# being the limit.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

# 22,500 users: 300 requests of 75
sim_start --latency-ms 400 --rate track=3000/3 --log-keep 0
D=$TMP/p
mkdir -p "$D/config"
users_db "$D/data.db" 22500
users_config "$D/config/config.json" "$SIM_URL" test-key
win() { # win EXPR: true if EXPR holds for the run's "window" (w) and "counts" (c)
  printf '%s' "$OUT" | python3 -c "
import json, sys
d = json.load(sys.stdin)['destinations'][0]; w = d['window']; c = d['counts']
sys.exit(0 if ($1) else 1)"
}
check() { if win "$2"; then ok "$1"; else bad "$1 ($2; window: $(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["destinations"][0]["window"])'))"; fi; }

run run --config "$D/config" --state "$D/a.db" --json
expect_rc 0 "first sync at 400 ms"
check "every user created" "c['created'] == 22500 and c['failed'] == 0"
# the first answer gives the latency: need = 0.95 requests/ms x ~400 ms x 1.25 > 400
check "the window grew past a fixed 32 to carry the rate at 400 ms" "w['peak'] > 300 and w['inflight_peak'] > 100"
check "and stayed within its bounds" "w['peak'] <= w['max'] <= 1024 and w['inflight_peak'] <= w['peak']"
check "the latency it measured" "350 <= w['latency_ms'] < 5000"
check "no 429, no decrease" "d['throttled'] == 0 and w['decreases'] == 0"
sim_check "Braze saw no 429" 'stats["rate_limited"] == 0'

# --concurrency is an upper bound
curl -s -X POST "$SIM_URL/_sim/reset" >/dev/null
run run --config "$D/config" --state "$D/b.db" --json --concurrency 16
expect_rc 0 "first sync with --concurrency 16"
check "--concurrency 16: never more than 16 in flight" "w['max'] == 16 and w['peak'] <= 16 and w['inflight_peak'] <= 16 and c['created'] == 22500"

# 503s: the window is halved (once per round trip), the batches retried and confirmed
curl -s -X POST "$SIM_URL/_sim/reset" >/dev/null
curl -s -X POST "$SIM_URL/_sim/faults" -d '{"endpoint":"track","status":503,"count":3}' >/dev/null
sqlite3 "$D/data.db" "DELETE FROM users WHERE id > 3000"
run run --config "$D/config" --state "$D/c.db" --json
expect_rc 0 "first sync with 503s"
check "503s halve the window" "w['decreases'] >= 1 and d['retries'] >= 3 and c['created'] == 3000 and c['failed'] == 0"

# --concurrency beyond the hard maximum is refused
run run --config "$D/config" --state "$D/d.db" --concurrency 5000
expect_rc 2 "--concurrency 5000 is refused"
expect_err "--concurrency" "--concurrency 5000: the message names the option"
finish
