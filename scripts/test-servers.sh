#!/usr/bin/env bash
# test-servers.sh: throwaway PostgreSQL, MariaDB and ClickHouse servers on 127.0.0.1 for the tests.
#
#   eval "$(scripts/test-servers.sh start)"   # prints export JOEY_PG_URL=...; JOEY_MYSQL_URL=...;
#                                             # JOEY_CLICKHOUSE_URL=...
#   ... run the tests ...
#   scripts/test-servers.sh stop              # uses $JOEY_TEST_SERVERS_DIR (or pass the dir)
#
# Installs nothing (postgresql, mariadb-server and clickhouse-server come from
# scripts/deps.sh). As root PostgreSQL and MariaDB run as the postgres / mysql users and
# ClickHouse as root with a private config (warehouses.md 5.4); otherwise as the current
# user. Each gets free ports and a data directory under /tmp that `stop` removes. Progress
# goes to stderr, only the export lines to stdout. JOEY_TEST_SERVERS=pg, =mysql or
# =clickhouse (comma-separated) starts only those. By default all three start, and a
# missing clickhouse-server is only a message (no JOEY_CLICKHOUSE_URL: the ClickHouse
# tests skip, or fail when CI=true).
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
WHICH=${JOEY_TEST_SERVERS:-pg,mysql,clickhouse-optional}
PW=joey-test-pw

log() { echo "test-servers: $*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

as_user() { # as_user USER cmd...
	local u=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$u" -- "$@"
	else
		"$@"
	fi
}

start_pg() {
	local dir=$1 port
	[ -x "$PGBIN/initdb" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
	port=$(free_port)
	mkdir -p "$dir/pg"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir/pg"
	echo "$PW" >"$dir/pg.pw"
	chmod 644 "$dir/pg.pw"
	as_user postgres "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -E UTF8 --locale=C \
		--auth-local=trust --auth-host=scram-sha-256 >"$dir/pg-initdb.log" 2>&1 ||
		{ cat "$dir/pg-initdb.log" >&2; die "initdb failed"; }
	as_user postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 \
		-o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
		{ cat "$dir/pg/server.log" >&2; die "postgres did not start"; }
	as_user postgres "$PGBIN/psql" -h "$dir/pg" -p "$port" -U postgres -d postgres -qAt \
		-v ON_ERROR_STOP=1 -c "CREATE ROLE joey LOGIN CREATEDB PASSWORD '$PW'" \
		-c "CREATE DATABASE joey OWNER joey" \
		-c "CREATE DATABASE joey_latin1 OWNER joey ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >&2
	echo "$port" >"$dir/pg.port"
	log "postgres on 127.0.0.1:$port ($dir/pg)"
	echo "export JOEY_PG_URL=postgresql://joey:$PW@127.0.0.1:$port/joey"
}

start_mysql() {
	local dir=$1 port mysqld installdb client
	mysqld=$(command -v mariadbd || ls /usr/sbin/mariadbd 2>/dev/null || true)
	installdb=$(command -v mariadb-install-db || true)
	client=$(command -v mariadb || command -v mysql || true)
	[ -n "$mysqld" ] && [ -n "$installdb" ] || die "MariaDB server not found (apt-get install mariadb-server)"
	port=$(free_port)
	mkdir -p "$dir/my"
	local user=()
	if [ "$(id -u)" = 0 ]; then
		chown mysql: "$dir/my"
		user=(--user=mysql)
	fi
	"$installdb" --no-defaults --datadir="$dir/my/data" "${user[@]}" --skip-test-db \
		--auth-root-authentication-method=normal >"$dir/my-install.log" 2>&1 ||
		{ cat "$dir/my-install.log" >&2; die "mariadb-install-db failed"; }
	"$mysqld" --no-defaults --datadir="$dir/my/data" --port="$port" --bind-address=127.0.0.1 \
		--socket="$dir/my/sock" --pid-file="$dir/my/pid" "${user[@]}" \
		--skip-log-bin --innodb-flush-log-at-trx-commit=0 --log-error="$dir/my/server.log" \
		>/dev/null 2>&1 &
	for _ in $(seq 1 120); do
		[ -S "$dir/my/sock" ] && "$client" --no-defaults -S "$dir/my/sock" -u root -e 'SELECT 1' \
			>/dev/null 2>&1 && break
		sleep 0.25
	done
	"$client" --no-defaults -S "$dir/my/sock" -u root -e "
		CREATE USER 'joey'@'127.0.0.1' IDENTIFIED BY '$PW';
		CREATE USER 'joey'@'localhost' IDENTIFIED BY '$PW';
		CREATE DATABASE joey CHARACTER SET utf8mb4;
		GRANT ALL ON joey.* TO 'joey'@'127.0.0.1';
		GRANT ALL ON joey.* TO 'joey'@'localhost';
		GRANT ALL ON \`joey\\_case\\_%\`.* TO 'joey'@'127.0.0.1';
		GRANT ALL ON \`joey\\_case\\_%\`.* TO 'joey'@'localhost';" ||
		{ cat "$dir/my/server.log" >&2; die "mariadb did not start"; }
	echo "$port" >"$dir/my.port"
	log "mariadb on 127.0.0.1:$port ($dir/my)"
	echo "export JOEY_MYSQL_URL=mysql://joey:$PW@127.0.0.1:$port/joey"
}

# ClickHouse (Debian's 18.16 or newer): HTTP and native ports on 127.0.0.1, database joey,
# users joey (password $PW), joey_ro (profile readonly=1) and joey_limited (max_block_size
# 1000, max_result_rows 5000 with result_overflow_mode=throw: wide enough rows make the
# server fail after it sent the first 1 MiB, an error in the middle of a 200 answer),
# joey_cutting (the same limits with result/read_overflow_mode=break, which joey overrides
# to throw) and joey_ro_cutting (readonly=1 with result_overflow_mode=break: refused).
start_clickhouse() {
	local dir=$1 optional=$2 port tport d bin
	bin=$(command -v clickhouse-server || true)
	[ -n "$bin" ] || bin=/usr/sbin/clickhouse-server
	if [ ! -x "$bin" ]; then
		if [ "$optional" = 1 ]; then
			# the other servers still start; with CI=true the ClickHouse tests then fail
			log "clickhouse-server not installed: no ClickHouse server (apt-get install clickhouse-server)"
			return 0
		fi
		die "clickhouse-server not found (apt-get install clickhouse-server)"
	fi
	port=$(free_port)
	tport=$(free_port)
	d=$dir/ch
	mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/log"
	cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/log/server.log</log><errorlog>$d/log/err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$port</http_port>
  <tcp_port>$tport</tcp_port>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
EOF
	cat >"$d/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default/>
    <ro><readonly>1</readonly></ro>
    <limited><max_result_rows>5000</max_result_rows><result_overflow_mode>throw</result_overflow_mode><max_block_size>1000</max_block_size></limited>
    <cutting><max_result_rows>5000</max_result_rows><result_overflow_mode>break</result_overflow_mode><max_rows_to_read>100000</max_rows_to_read><read_overflow_mode>break</read_overflow_mode><max_block_size>1000</max_block_size></cutting>
    <ro_cutting><readonly>1</readonly><max_result_rows>5000</max_result_rows><result_overflow_mode>break</result_overflow_mode><max_block_size>1000</max_block_size></ro_cutting>
  </profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <joey><password>$PW</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></joey>
    <joey_ro><password>$PW</password><networks><ip>127.0.0.1</ip></networks><profile>ro</profile><quota>default</quota></joey_ro>
    <joey_limited><password>$PW</password><networks><ip>127.0.0.1</ip></networks><profile>limited</profile><quota>default</quota></joey_limited>
    <joey_cutting><password>$PW</password><networks><ip>127.0.0.1</ip></networks><profile>cutting</profile><quota>default</quota></joey_cutting>
    <joey_ro_cutting><password>$PW</password><networks><ip>127.0.0.1</ip></networks><profile>ro_cutting</profile><quota>default</quota></joey_ro_cutting>
  </users>
  <quotas><default/></quotas>
</yandex>
EOF
	"$bin" --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 &
	echo $! >"$d/pid"
	local ok=0
	for _ in $(seq 1 100); do
		if curl -sf "http://127.0.0.1:$port/ping" >/dev/null 2>&1; then
			ok=1
			break
		fi
		kill -0 "$(cat "$d/pid")" 2>/dev/null || break
		sleep 0.1
	done
	if [ $ok = 0 ]; then
		cat "$d/log/err.log" "$d/log/stdout.log" >&2 2>/dev/null || true
		die "clickhouse-server did not start"
	fi
	curl -sf -u "joey:$PW" "http://127.0.0.1:$port/" --data-binary 'CREATE DATABASE IF NOT EXISTS joey' >&2 ||
		die "clickhouse: cannot create database joey"
	echo "$port" >"$d/port"
	log "clickhouse on 127.0.0.1:$port ($d)"
	echo "export JOEY_CLICKHOUSE_URL=http://joey:$PW@127.0.0.1:$port/joey"
}

cmd_start() {
	local dir
	dir=$(mktemp -d /tmp/joey-servers.XXXXXX)
	chmod 755 "$dir"
	echo "export JOEY_TEST_SERVERS_DIR=$dir"
	case ",$WHICH," in *,pg,*) start_pg "$dir" ;; esac
	case ",$WHICH," in *,mysql,*) start_mysql "$dir" ;; esac
	case ",$WHICH," in
	*,clickhouse,*) start_clickhouse "$dir" 0 ;;
	*,clickhouse-optional,*) start_clickhouse "$dir" 1 ;;
	esac
}

cmd_stop() {
	local dir=${1:-${JOEY_TEST_SERVERS_DIR:-}}
	[ -n "$dir" ] && [ -d "$dir" ] || die "no server directory (set JOEY_TEST_SERVERS_DIR)"
	case $dir in /tmp/joey-servers.*) ;; *) die "refusing to remove $dir" ;; esac
	if [ -f "$dir/pg/data/postmaster.pid" ]; then
		as_user postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -f "$dir/my/pid" ]; then
		local pid
		pid=$(cat "$dir/my/pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	if [ -f "$dir/ch/pid" ]; then
		local cpid
		cpid=$(cat "$dir/ch/pid")
		kill "$cpid" 2>/dev/null || true
		for _ in $(seq 1 40); do
			kill -0 "$cpid" 2>/dev/null || break
			sleep 0.25
		done
		kill -9 "$cpid" 2>/dev/null || true
	fi
	rm -rf "$dir"
	log "stopped and removed $dir"
}

case ${1:-} in
start) cmd_start ;;
stop) shift; cmd_stop "$@" ;;
*) echo "usage: $0 start|stop [dir]" >&2; exit 2 ;;
esac
