#!/usr/bin/env bash
# demo.sh: install dependencies, build joey, and run its main job on the bundled demo:
# examples/demo (a SQLite warehouse and a Grouparoo-format config with one Braze
# destination per sync mode) synced into the bundled Braze simulator on 127.0.0.1:4710.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/step.sh
# Any other failing command names itself too (set -e would exit without a word).
trap 'echo "demo.sh: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

bash scripts/deps.sh
# Each step's output goes to build/logs/; a failing step shows its last lines.
step_run "configure the build (cmake)" build/logs/configure.log \
  "run: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo to see the whole output" \
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
step_run "build joey and the Braze simulator (ninja)" build/logs/build.log \
  "run: ninja -C build joey braze-sim to see the whole error" \
  ninja -C build joey braze-sim || exit 1

demo=examples/demo
work=$(mktemp -d "${TMPDIR:-/tmp}/joey-demo.XXXXXX")
sim_pid=""
trap '[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$demo/config" "$work/config"
sqlite3 "$work/demo.db" < "$demo/demo.sql"
export GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY=${GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY:-demo-key}

./build/braze-sim --port 4710 --api-key "$GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY" --max-lifetime 300 --quiet \
  >build/logs/braze-sim.log 2>&1 &
sim_pid=$!
up=""
for _ in $(seq 50); do curl -sf http://127.0.0.1:4710/_sim/health >/dev/null 2>&1 && up=1 && break; sleep 0.1; done
if [ -z "$up" ]; then
  { echo "demo.sh: step failed: start the Braze simulator on 127.0.0.1:4710"
    tail -n 30 build/logs/braze-sim.log
    echo "hint: is port 4710 taken? (ss -ltnp 'sport = :4710')"; } >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "joey validate: the Grouparoo config is read as it is"
./build/joey validate --config "$work/config"
step "joey plan: what would be sent (nothing is sent)"
./build/joey plan --config "$work/config"
step "joey run: sync into the Braze simulator"
./build/joey run --config "$work/config"
step "the simulator now holds these users"
curl -s http://127.0.0.1:4710/_sim/users | python3 -c '
import json, sys
for u in json.load(sys.stdin)["users"]:
    ca = u.get("custom_attributes", {})
    subs = [s["subscription_state"] for s in u.get("subscription_groups", [])]
    print("  %-3s %-22s %-10s ltv=%-7s groups=%s subscriptions=%s" % (u["external_id"], u.get("email", "-"),
          u.get("first_name", "-"), ca.get("lifetime_value", "-"), ca.get("groups", []), subs))'
step "a purchase lands in the warehouse; joey sends only what changed"
sqlite3 "$work/demo.db" "INSERT INTO purchases (user_id, item, amount, purchased_at) VALUES (2, 'bombe', 500, '2026-11-24T10:00:00Z')"
./build/joey plan --config "$work/config" --details --destination braze_sync | sed -n '1,20p'
./build/joey run --config "$work/config"
step "joey status"
./build/joey status --config "$work/config" --limit 2
