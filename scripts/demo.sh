#!/usr/bin/env bash
# demo.sh: install dependencies, build joey, and run it on the bundled demo
# (examples/demo: a SQLite warehouse and a Grouparoo-format config with three Braze
# destinations, one per sync mode).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build joey >/dev/null

demo=examples/demo
rm -f "$demo/demo.db"
sqlite3 "$demo/demo.db" < "$demo/demo.sql"
export GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY=${GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY:-demo-key}

echo "== joey validate --config $demo/config"
./build/joey validate --config "$demo/config"
echo
echo "== joey plan --config $demo/config --details"
./build/joey plan --config "$demo/config" --details
