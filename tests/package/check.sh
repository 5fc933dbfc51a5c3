#!/usr/bin/env bash
# check.sh: build the Debian package and prove it on this machine: lintian, install,
# the installed joey (version, man pages, bash completion, systemd units, user and
# directories), the bundled demo synced by the INSTALLED /usr/bin/joey into the Braze
# simulator, then remove (config and state kept) and purge (gone).
#
#   apt-get install -y $(bash tests/package/check.sh --deps)   # as root, once
#   bash tests/package/check.sh                                 # as root
#
# For CI on a throwaway Debian bookworm machine, after the normal build and tests: it
# installs and purges the joey package, so it refuses to run where joey is already
# installed. Each step prints its name; a failing one prints its last output lines and
# the check exits 1. The simulator listens on 127.0.0.1 only and is killed at exit.
set -uo pipefail

# ---- Packages this check needs beyond the build's (cmake, gcc, the -dev libraries,
# ---- sqlite3, curl, python3: see .ci/run). systemd only provides systemd-analyze
# ---- (the units are verified when it is there); it does not need to be running.
PACKAGE_CHECK_DEPS="debhelper dpkg-dev help2man lintian man-db adduser python3 sqlite3 curl systemd"

if [ "${1-}" = --deps ]; then
	echo "$PACKAGE_CHECK_DEPS"
	exit 0
fi

cd "$(dirname "$0")/../.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/joey-package-check.XXXXXX")
# servers started by steps (which run in subshells) leave their pids in $work/*.pid
cleanup() {
	local f
	for f in "$work"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

log=$work/step.log
step_no=0
# step NAME CMD...: run CMD with its output in a log; on failure show the log's tail.
step() {
	local name=$1
	shift
	step_no=$((step_no + 1))
	printf '== %d. %s\n' "$step_no" "$name"
	# in a subshell with set -e: any failing command (or `... || fail`) ends the step
	(set -e; "$@") >"$log" 2>&1
	local rc=$?
	if [ "$rc" != 0 ]; then
		echo "check.sh: step failed: $name (exit $rc)" >&2
		tail -n 30 "$log" | sed 's/^/  | /' >&2
		exit 1
	fi
	[ -n "${VERBOSE-}" ] && sed 's/^/  | /' "$log"
	return 0
}
fail() { echo "$*"; return 1; }

version=$(sed -nE 's/^project\(joey VERSION ([0-9][0-9A-Za-z.+~]*)[ )].*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
deb=dist/joey_${version}_${arch}.deb

preflight() {
	[ "$(id -u)" = 0 ] || fail "run as root: the check installs and purges the package"
	if dpkg-query -W -f='${Status}' joey 2>/dev/null | grep -qv 'not-installed'; then
		fail "the joey package is already on this machine ($(dpkg-query -W -f='${Status}' joey)): this check installs and purges it; run it on a throwaway machine"
	fi
	for p in $PACKAGE_CHECK_DEPS; do
		[ "$p" = systemd ] && continue
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			fail "missing package $p: apt-get install -y \$(bash tests/package/check.sh --deps)"
	done
}
step "preflight: root, joey not installed, tools present" preflight

step "build the package (scripts/package.sh)" bash scripts/package.sh
step "the package exists: $deb" test -s "$deb"

run_lintian() {
	# errors fail; warnings are shown (the kept ones are overridden with a reason in
	# packaging/debian/joey.lintian-overrides)
	lintian --fail-on error --display-level '>=warning' "$deb"
}
step "lintian: no errors" run_lintian
sed 's/^/  | /' "$log" | grep -v 'running with root privileges' || true

install_deb() {
	dpkg -i "$deb" || { DEBIAN_FRONTEND=noninteractive apt-get install -f -y -q && dpkg -s joey; }
}
step "install it (dpkg -i)" install_deb

check_version() {
	local out want
	out=$(/usr/bin/joey --version)
	echo "$out"
	# the commit the package build saw (HEAD may have moved since in a shared checkout)
	want=$(sed -n 's/^#define JOEY_COMMIT "\(.*\)"$/\1/p' "${JOEY_PKG_BUILD_DIR:-build-pkg}/generated/joey_commit.h")
	[ "$out" = "joey $version (commit $want)" ] || fail "want: joey $version (commit $want)"
	if git -c safe.directory="$root" -C "$root" rev-parse HEAD >/dev/null 2>&1; then
		git -c safe.directory="$root" -C "$root" cat-file -e "$want^{commit}" ||
			fail "commit $want is not in this repository"
	else
		[ "$want" = unknown ] || fail "not a git checkout: want commit unknown"
	fi
}
step "joey --version names the version and the commit" check_version
sed 's/^/  | /' "$log"

check_man() {
	local c
	man -w joey && man -w joey-run && man -w 5 joey-config || return 1
	for c in validate plan status serve state worker; do man -w "joey-$c" || return 1; done
	# the pages render, and say what --help says
	MANWIDTH=80 man joey-run 2>&1 | grep -q -- '--destination' || fail "joey-run(1) lacks --destination"
	MANWIDTH=80 man 5 joey-config 2>&1 | grep -q 'Grouparoo' || fail "joey-config(5) does not render"
}
step "man pages: joey(1), joey-<command>(1), joey-config(5)" check_man

check_completion() {
	local f=/usr/share/bash-completion/completions/joey
	test -f "$f" || fail "no $f"
	mkdir -p "$work/comp" && cp -R /usr/share/joey/examples/demo/config "$work/comp/config"
	(cd "$work/comp" && bash -c '
		source /usr/share/bash-completion/completions/joey
		complete -p joey
		c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _joey joey; echo "$* -> ${COMPREPLY[*]}"; }
		[ "$(c joey r)" = "joey r -> run" ] || { c joey r; exit 1; }
		c joey r
		c joey run --destination braze_s | grep -q " -> braze_sync$" || { c joey run --destination braze_s; exit 1; }
		c joey run --destination braze_s
		c joey plan --de | grep -q -- "--destination" || { c joey plan --de; exit 1; }
		c joey plan --de
		c joey state m | grep -q "migrate" || { c joey state m; exit 1; }')
}
step "bash completion: joey r<TAB> -> run, --destination <TAB> -> config ids" check_completion
sed 's/^/  | /' "$log"

check_units() {
	local u
	for u in joey.service joey-worker@.service; do test -f "/lib/systemd/system/$u" || fail "no /lib/systemd/system/$u"; done
	if ! command -v systemd-analyze >/dev/null; then
		echo "systemd-analyze not installed: skipping 'systemd-analyze verify'"
		return 0
	fi
	# a template is verified through an instance
	cp /lib/systemd/system/joey-worker@.service "$work/joey-worker@1.service"
	systemd-analyze verify /lib/systemd/system/joey.service "$work/joey-worker@1.service"
}
step "systemd units (systemd-analyze verify)" check_units
sed 's/^/  | /' "$log"

check_user() {
	getent passwd joey || fail "no joey user"
	getent group joey || fail "no joey group"
	[ "$(getent passwd joey | cut -d: -f6)" = /var/lib/joey ] || fail "joey's home is not /var/lib/joey"
	test -d /etc/joey && test -f /etc/joey/models/users.json || fail "/etc/joey lacks the demo config"
	[ "$(stat -c '%U:%G %a' /etc/joey)" = "root:joey 2775" ] || fail "/etc/joey is $(stat -c '%U:%G %a' /etc/joey)"
	[ "$(stat -c '%U:%G' /var/lib/joey)" = "joey:joey" ] || fail "/var/lib/joey is $(stat -c '%U:%G' /var/lib/joey)"
	[ "$(stat -c '%a' /etc/default/joey)" = 600 ] || fail "/etc/default/joey is not 0600"
	# the config the service gets is valid as installed, read as the joey user
	runuser -u joey -- env JOEY_CONFIG=/etc/joey JOEY_STATE=/var/lib/joey/state.db \
		JOEY_SECRETS_FILE=/var/lib/joey/secrets.json /usr/bin/joey validate
}
step "the joey user, /etc/joey (demo config, valid), /var/lib/joey" check_user

# ---- the bundled demo, as scripts/demo.sh runs it, with the installed joey: the
# ---- shipped config copied beside its SQLite warehouse (demo.db in the directory
# ---- holding the config directory), the simulator on a free port.
sim=${JOEY_SIM:-$root/build-pkg/braze-sim}
demo=$work/demo
start_sim() {
	test -x "$sim" || fail "no simulator at $sim (scripts/package.sh builds it)"
	"$sim" --port 0 --port-file "$work/sim.port" --api-key demo-key --max-lifetime 120 --quiet \
		>"$work/sim.log" 2>&1 &
	echo $! >"$work/sim.pid"
	for _ in $(seq 100); do
		[ -s "$work/sim.port" ] && curl -sf "http://127.0.0.1:$(cat "$work/sim.port")/_sim/health" && return 0
		sleep 0.1
	done
	cat "$work/sim.log"
	fail "the simulator did not start"
}
step "start the Braze simulator on 127.0.0.1" start_sim
port=$(cat "$work/sim.port")

setup_demo() {
	mkdir -p "$demo"
	cp -R /usr/share/joey/examples/demo/config "$demo/config"
	sqlite3 "$demo/demo.db" </usr/share/joey/examples/demo/demo.sql
	# the demo's Braze app names the simulator's usual port
	grep -rl '127.0.0.1:4710' "$demo/config" | xargs -r sed -i "s/127\.0\.0\.1:4710/127.0.0.1:$port/g"
	grep -rq "127.0.0.1:$port" "$demo/config" || fail "no Braze app pointing at 127.0.0.1:4710 in the demo config"
}
step "copy the shipped demo (config + demo.sql -> demo.db)" setup_demo

export GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY=demo-key
step "installed joey validate" /usr/bin/joey validate --config "$demo/config"
step "installed joey plan" /usr/bin/joey plan --config "$demo/config"
step "installed joey run (every record confirmed)" /usr/bin/joey run --config "$demo/config"
sed 's/^/  | /' "$log" | tail -n 8

check_sim() {
	curl -sf "http://127.0.0.1:$port/_sim/users" | python3 -c '
import json, sys
users = json.load(sys.stdin)["users"]
print("the simulator holds %d users" % len(users))
sys.exit(0 if users else 1)'
}
step "the simulator holds the synced users" check_sim
sed 's/^/  | /' "$log"
step "installed joey status" /usr/bin/joey status --config "$demo/config" --limit 2

# ---- the service's command as joey.service runs it (user, environment, /etc/joey as
# ---- installed, its Braze app pointed at the simulator): starts, serves /healthz,
# ---- reloads on SIGHUP, syncs on its schedule, stops on SIGTERM with 0.
check_serve() {
	sed -i "s/127\.0\.0\.1:4710/127.0.0.1:$port/g" /etc/joey/apps/braze.json
	curl -sf -X POST "http://127.0.0.1:$port/_sim/reset" >/dev/null 2>&1 || true
	# setpriv execs joey itself (runuser would stay its parent and take the signals)
	setpriv --reuid=joey --regid=joey --init-groups -- env JOEY_CONFIG=/etc/joey \
		JOEY_STATE=/var/lib/joey/state.db JOEY_SECRETS_FILE=/var/lib/joey/secrets.json \
		GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY=demo-key \
		/usr/bin/joey serve --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
	local serve_pid=$! url="" rc
	echo "$serve_pid" >"$work/serve.pid"
	for _ in $(seq 100); do
		url=$(sed -n 's|.*listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$work/serve.log")
		[ -n "$url" ] && curl -sf "${url}healthz" && break
		sleep 0.1
	done
	[ -n "$url" ] || { cat "$work/serve.log"; fail "joey serve did not start"; }
	echo
	kill -HUP "$serve_pid"
	for _ in $(seq 50); do grep -q 'config reloaded' "$work/serve.log" && break; sleep 0.1; done
	grep -q 'config reloaded' "$work/serve.log" || { cat "$work/serve.log"; fail "no reload on SIGHUP"; }
	# nothing is readable without an account, also on loopback
	local anon
	anon=$(curl -s -o /dev/null -w '%{http_code}' "${url}api/v1/models")
	for _ in $(seq 100); do runuser -u joey -- env JOEY_CONFIG=/etc/joey JOEY_STATE=/var/lib/joey/state.db \
		/usr/bin/joey status --json 2>/dev/null | grep -q '"success"' && break; sleep 0.2; done
	kill -TERM "$serve_pid"
	rc=0
	wait "$serve_pid" || rc=$?
	rm -f "$work/serve.pid"
	cat "$work/serve.log"
	[ "$rc" = 0 ] || fail "joey serve exited $rc on SIGTERM"
	ls -l /var/lib/joey/accounts.db /var/lib/joey/state.db
	[ "$(stat -c %a /var/lib/joey/accounts.db)" = 600 ] || fail "accounts.db is not 0600"
	grep -q '/#setup=' "$work/serve.log" || fail "no one-time setup link at the first start"
	[ "$anon" = 401 ] || fail "an anonymous read answered $anon, not 401"
}
step "joey serve as joey.service runs it: /healthz, SIGHUP reload, scheduled sync, SIGTERM" check_serve
sed 's/^/  | /' "$log" | tail -n 12

# ---- remove keeps config and state; purge deletes them
mark_state() {
	# state the service would have written
	runuser -u joey -- sh -c 'echo check > /var/lib/joey/check-marker'
}
step "leave a file in /var/lib/joey" mark_state
step "remove (dpkg -r joey)" dpkg -r joey
check_removed() {
	test ! -e /usr/bin/joey || fail "/usr/bin/joey still there"
	test -f /etc/joey/models/users.json || fail "the config /etc/joey is gone"
	test -f /var/lib/joey/check-marker || fail "the state /var/lib/joey is gone"
	test -f /etc/default/joey || fail "the conffile /etc/default/joey is gone"
	dpkg-query -W -f='${Status}\n' joey | grep -q config-files || fail "joey is not in state config-files"
}
step "after remove: binary gone, config and state kept" check_removed

step "purge (dpkg -P joey)" dpkg -P joey
check_purged() {
	local p
	for p in /etc/joey /var/lib/joey /etc/default/joey /usr/share/joey /usr/share/doc/joey; do
		test ! -e "$p" || fail "$p is still there"
	done
	dpkg-query -W -f='${Status}\n' joey 2>/dev/null | grep -q 'ok installed' && fail "joey still installed"
	# the system user is kept on purge (Debian's advice: its uid may still own files),
	# with no login shell
	getent passwd joey | grep -q ':/usr/sbin/nologin$' || fail "the joey user changed: $(getent passwd joey)"
	return 0
}
step "after purge: /etc/joey and /var/lib/joey gone (the system user stays, as Debian advises)" check_purged

echo "check.sh: all $step_no steps passed ($deb)"
