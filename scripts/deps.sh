#!/usr/bin/env bash
# deps.sh: install the Debian packages joey needs to build and test (idempotent).
# Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail

PACKAGES=(cmake ninja-build pkg-config gcc make sqlite3 libsqlite3-dev libjansson-dev
          libxxhash-dev libcmocka-dev libcurl4-openssl-dev libmicrohttpd-dev libsodium-dev curl python3
          libpq-dev libmariadb-dev postgresql mariadb-server
          clickhouse-server clickhouse-client   # ClickHouse sources (scripts/test-servers.sh)
          libssl-dev zlib1g-dev            # Snowflake/BigQuery JWTs (OpenSSL); warehouse-fake's gzip
          python3-psycopg2 python3-pymysql   # tests/diff on PostgreSQL and MariaDB sources
          clang libclang-rt-14-dev    # clang + libFuzzer: the fuzz targets (tests/fuzz)
          ccache                      # scripts/build-matrix.sh
          openssl)                    # test certificates (e2e/alerts' SMTP server, e2e/serve_auth)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
source "$(dirname "$0")/step.sh"
log=${TMPDIR:-/tmp}/joey-deps
step_run "apt-get update" "$log.update.log" "run: ${SUDO:+$SUDO }apt-get update to see the whole output" \
  $SUDO apt-get update -qq || exit 1
step_run "apt-get install ${missing[*]}" "$log.install.log" \
  "run: ${SUDO:+$SUDO }apt-get install --no-install-recommends ${missing[*]} to see the whole output" \
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || exit 1
