#!/usr/bin/env bash
# run_csv_changed.sh: a CSV file joey could not read whole is unknown, not gone. A file
# rewritten in place while joey loads it (truncated at a line end: no bad row to see)
# ended early without an error, and the users after the cut were deleted (exit 0); a
# *.csv of a directory that cannot be stat()ed (a symlink whose target is gone) was
# skipped without a word, and its users deleted (exit 0). Both runs now fail and
# delete nobody; once the files are whole again a run converges.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
mkdir -p "$TMP/cfg" "$TMP/data/parts" "$TMP/elsewhere"
N=300000
python3 - "$TMP/data/users.csv" "$N" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,email\n")
    for i in range(1, int(sys.argv[2]) + 1):
        f.write("%d,u%d@example.com\n" % (i, i))
EOF
cp "$TMP/data/users.csv" "$TMP/whole.csv"
config() { # config FILE: the users project reading FILE (a CSV file or a directory)
  cat > "$TMP/cfg/config.json" <<CFG
[
 {"class":"App","id":"files","type":"csv","options":{"file":"$1"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"csv-import-table","appId":"files","modelId":"users","options":{},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email"},"options":{"maxDeletePercent":100}}
]
CFG
}
J="--config $TMP/cfg"
no_delete() { # no_delete NAME MARK
  SINCE=$2 sim_check "$1: no /users/delete" 'not [q for q in reqs if q["path"] == "/users/delete"]'
}

# ---- a file rewritten in place while it is loaded ----
config data/users.csv
run run $J; expect_rc 0 "first run"
sim_check "first run: every user" "len(users) == $N"
# joey is stopped once it has read the first block of the file, the file is cut at the
# line end nearest its middle, and joey goes on
M=$(sim_mark)
set +e
python3 - "$JOEY" "$TMP/cfg" "$TMP/data/users.csv" >"$TMP/out" 2>"$TMP/err" <<'EOF'
import os, signal, subprocess, sys, time
joey, cfg, path = sys.argv[1], sys.argv[2], os.path.realpath(sys.argv[3])
data = open(path, "rb").read()
cut = data.index(b"\n", len(data) // 2) + 1
p = subprocess.Popen([joey, "run", "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
cutting = True
while cutting and p.poll() is None:
    for fd in os.listdir("/proc/%d/fd" % p.pid) if os.path.isdir("/proc/%d/fd" % p.pid) else []:
        try:
            if os.readlink("/proc/%d/fd/%s" % (p.pid, fd)) != path:
                continue
            pos = int(open("/proc/%d/fdinfo/%s" % (p.pid, fd)).read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if pos == 0:
            continue
        os.kill(p.pid, signal.SIGSTOP)
        pos = int(open("/proc/%d/fdinfo/%s" % (p.pid, fd)).read().split()[1])
        if pos < cut:
            os.truncate(path, cut)
            print("cut at %d, read %d" % (cut, pos), file=sys.stderr)
        os.kill(p.pid, signal.SIGCONT)
        cutting = False
        break
    time.sleep(0.0005)
out, err = p.communicate()
sys.stdout.write(out.decode())
sys.stderr.write(err.decode())
sys.exit(p.returncode)
EOF
RC=$?
set -e
OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
if grep -q '^cut at' <<<"$ERR"; then
  expect_rc 1 "file cut while read: the run fails"
  expect_out 'changed while it was read' "file cut while read: says so"
  no_delete "file cut while read" "$M"
  sim_check "file cut while read: every user still in Braze" "len(users) == $N"
else
  bad "file cut while read: joey read the file before it could be cut"
fi
cp "$TMP/whole.csv" "$TMP/data/users.csv"
run run $J; expect_rc 0 "file whole again"
expect_out 'deleted 0,' "file whole again: nothing deleted"

# ---- a directory whose part cannot be stat()ed ----
head -n 101 "$TMP/whole.csv" >"$TMP/data/parts/a.csv"
{ head -n 1 "$TMP/whole.csv"; sed -n '102,201p' "$TMP/whole.csv"; } >"$TMP/elsewhere/b.csv"
ln -s "$TMP/elsewhere/b.csv" "$TMP/data/parts/b.csv"
config data/parts
run run $J; expect_rc 0 "parts: first run"
expect_out "deleted $((N - 200))," "parts: the users of no part deleted"
M=$(sim_mark)
mv "$TMP/elsewhere" "$TMP/elsewhere.gone"
run run $J; expect_rc 1 "part's target gone: the run fails"
expect_out 'cannot read CSV file .*b.csv' "part's target gone: names the file"
no_delete "part's target gone" "$M"
sim_check "part's target gone: its users still in Braze" 'len(users) == 200'
mv "$TMP/elsewhere.gone" "$TMP/elsewhere"
run run $J; expect_rc 0 "part back"
expect_out 'deleted 0,' "part back: nothing deleted"
rm "$TMP/data/parts/b.csv"
run run $J; expect_rc 0 "part removed"
expect_out 'deleted 100,' "part removed: its users deleted"
finish
