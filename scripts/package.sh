#!/usr/bin/env bash
# package.sh: build the Debian package dist/joey_<version>_<arch>.deb.
#
#   bash scripts/package.sh          # needs: cmake ninja-build pkg-config gcc, the -dev
#                                    # libraries of scripts/deps.sh, debhelper dpkg-dev
#                                    # help2man python3 (tests/package/check.sh installs them)
#
# joey is built in build-pkg/ (JOEY_PKG_BUILD_DIR) at -O2 with Debian's hardening
# flags (dpkg-buildflags), installed into a staging copy of packaging/debian, and
# debhelper assembles the package there: stripping, man pages (generated from
# `joey --help` by packaging/man/gen.sh), systemd units and maintainer scripts,
# Depends from the linked libraries (dpkg-shlibdeps). The version is CMake's
# PROJECT_VERSION; the binary names the commit it was built from (joey --version).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${JOEY_PKG_BUILD_DIR:-build-pkg}

version=$(sed -nE 's/^project\(joey VERSION ([0-9][0-9A-Za-z.+~]*)[ )].*/\1/p' CMakeLists.txt)
[ -n "$version" ] || { echo "package.sh: no 'project(joey VERSION x.y.z ...)' in CMakeLists.txt" >&2; exit 1; }
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

# Debian's build flags: -O2 -g, fortify, stack protector, PIE, RELRO and BIND_NOW.
# No -Werror here: a newer compiler's new warning must not stop a release build.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
echo "package.sh: building joey $version in $build/"
mkdir -p "$build"
blog=$build/package-build.log
{ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	-DJOEY_WERROR=OFF -DJOEY_SANITIZE=OFF -DJOEY_FAULTS=OFF \
	-DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" &&
	ninja -C "$build" -j"${JOBS:-$(nproc)}" joey braze-sim; } >"$blog" 2>&1 || {
	tail -n 40 "$blog" >&2
	echo "package.sh: the build failed (whole log: $blog)" >&2
	exit 1
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/joey-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
src=$stage/joey-$version
mkdir -p "$src"
cp -R packaging/debian "$src/debian"
tmp=$src/staged # not debian/tmp: dh_prep empties that

# debian/copyright: the header and the license text of LICENSE (from "Permission ...")
{
	cat packaging/debian/copyright.in
	sed -n '/^Permission/,$p' LICENSE | sed -e 's/^$/./' -e 's/^/ /'
} >"$src/debian/copyright"
rm "$src/debian/copyright.in"

# The changelog must name this version; when CMakeLists.txt moved on without a
# changelog entry, add one (and say so: a release should write its own).
top=$(dpkg-parsechangelog -l "$src/debian/changelog" -SVersion)
if [ "$top" != "$version" ]; then
	echo "package.sh: warning: packaging/debian/changelog is at $top, CMakeLists.txt at $version: adding an entry" >&2
	maint=$(sed -n 's/^Maintainer: //p' packaging/debian/control)
	{
		printf 'joey (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n\n' \
			"$version" "$version" "$maint" "$(date -R)"
		cat packaging/debian/changelog
	} >"$src/debian/changelog"
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$src/debian/changelog" -STimestamp)}

# What debian/joey.install picks up (dh_install --sourcedir=staged)
DESTDIR=$tmp cmake --install "$build" >/dev/null
install -D -m 0644 -t "$tmp/lib/systemd/system" packaging/systemd/joey.service packaging/systemd/joey-worker@.service
install -D -m 0644 packaging/joey.default "$tmp/etc/default/joey"
demo=$tmp/usr/share/joey/examples/demo
mkdir -p "$demo"
cp -R examples/demo/config "$demo/config"
cp examples/demo/demo.sql "$demo/demo.sql"
# the demo warehouse itself, for the demo config postinst puts in /etc/joey
python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(open(sys.argv[2]).read())' \
	"$demo/demo.db" examples/demo/demo.sql
find "$demo" -name '.*' -prune -exec rm -rf {} + # a .joey/ state from a local run
find "$demo" -type d -exec chmod 0755 {} + && find "$demo" -type f -exec chmod 0644 {} +

# docs (debian/joey.docs) and man pages (debian/joey.manpages)
mkdir -p "$src/docs"
cp README.md "$src/"
cp docs/config.md docs/api.md docs/scaling.md docs/security.md "$src/docs/"
bash packaging/man/gen.sh "$build/joey" "$version" "$src/man"

# Rules-Requires-Root: no: debhelper builds the .deb as root:root without fakeroot
(cd "$src" && debian/rules binary >"$stage/dh.log" 2>&1) || {
	tail -n 40 "$stage/dh.log" >&2
	echo "package.sh: debian/rules binary failed" >&2
	exit 1
}
mkdir -p dist
deb=dist/joey_${version}_${arch}.deb
mv "$stage/joey_${version}_${arch}.deb" "$deb"
echo "package.sh: wrote $root/$deb ($(dpkg-deb -f "$deb" Depends))"
