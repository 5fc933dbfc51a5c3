#!/usr/bin/env bash
# bench/sim.sh: CPU the Braze simulator spends per /users/track request of 75 users.
#   bash bench/sim.sh [REQUESTS] [SIM_BINARY...]
# REQUESTS (default 4000) requests of 75 joey-shaped attribute objects (10 fields, the
# VIP group on every 7th user; tests/fakes/bench.c) go to each simulator binary given
# (default: this tree's, built into build-bench), 8 at a time, with the rate limit out
# of the way and the request log on (its default, as in the e2e tests). Two passes: the
# first creates REQUESTS x 75 users, the second updates them. Prints the simulator's
# CPU (user + system, from /proc) per request for each pass, the lowest of REPEAT
# tries (default 3: other processes on the machine only ever add); target <= 0.2 ms.
# Compare two builds side by side:
#   bash bench/sim.sh 4000 /tmp/base/build-bench/braze-sim build-bench/braze-sim
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=${1:-4000}
shift || true
OUT=bench/out/sim
rm -rf "$OUT" && mkdir -p "$OUT"

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-bench braze-sim braze-sim-bench >/dev/null
BENCH=build-bench/braze-sim-bench
SIMS=("$@")
[ ${#SIMS[@]} -gt 0 ] || SIMS=(build-bench/braze-sim)
TCK=$(getconf CLK_TCK)

SIMPID=""
trap '[ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null' EXIT
cpu_ticks() { # utime + stime of a process, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

printf "%-44s %14s %14s %10s\n" "simulator ($REQ requests x 75 users)" "create ms/req" "update ms/req" "RSS MiB"
REPEAT=${REPEAT:-3}
for sim in "${SIMS[@]}"; do
  best_c="" best_u=""
  for _ in $(seq "$REPEAT"); do
    rm -f "$OUT/port"
    "$sim" --port 0 --port-file "$OUT/port" --quiet --max-lifetime 900 --rate track=100000000/3 >/dev/null &
    SIMPID=$!
    for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.05; done
    url="http://127.0.0.1:$(cat "$OUT/port")"
    users=$((REQ * 75))
    res=()
    for pass in create update; do
      t0=$(cpu_ticks $SIMPID)
      "$BENCH" "$url" "$REQ" 8 75 "$users" > "$OUT/$pass.out"
      t1=$(cpu_ticks $SIMPID)
      res+=("$(echo "($t1 - $t0) * 1000 / $TCK / $REQ" | bc -l)")
    done
    rss=$(awk '/VmRSS/ { print $2 / 1024 }' "/proc/$SIMPID/status")
    n=$(curl -s "$url/_sim/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')
    [ "$n" = "$users" ] || { echo "$sim: expected $users users, the simulator has $n"; exit 1; }
    kill $SIMPID; wait $SIMPID 2>/dev/null || true; SIMPID=""
    [ -z "$best_c" ] || [ "$(echo "${res[0]} < $best_c" | bc -l)" = 1 ] && best_c=${res[0]}
    [ -z "$best_u" ] || [ "$(echo "${res[1]} < $best_u" | bc -l)" = 1 ] && best_u=${res[1]}
  done
  printf "%-44s %14.3f %14.3f %10.0f\n" "$sim" "$best_c" "$best_u" "$rss"
done
