#!/usr/bin/env bash
# build-matrix.sh: compile joey (library, joey, braze-sim, unit tests) with gcc and clang,
# each at Debug (-O0) and Release (-O2), all with -Werror: optimisation levels and
# compilers warn about different things, and the demo's release build and the test
# build's unoptimised one must not be the only ones that ever run. Build only, no tests.
#
#   bash scripts/build-matrix.sh [CONFIG...]     CONFIG: gcc-Debug gcc-Release clang-Debug clang-Release
#
# Build directories: $JOEY_MATRIX_DIR/<compiler>-<type> (default build-matrix/), logs
# beside them. ccache, when installed, makes a rebuild of unchanged files free.
# Prints one line per configuration and exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/step.sh

dir=${JOEY_MATRIX_DIR:-build-matrix}
jobs=${JOEY_MATRIX_JOBS:-$(nproc)}
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(gcc-Debug gcc-Release clang-Debug clang-Release)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)

failed=()
start=$SECONDS
for c in "${configs[@]}"; do
	cc=${c%%-*} type=${c#*-}
	case "$cc/$type" in
	gcc/Debug | gcc/Release | clang/Debug | clang/Release) ;;
	*) echo "build-matrix.sh: unknown configuration \"$c\" (gcc|clang)-(Debug|Release)" >&2; exit 2 ;;
	esac
	if ! command -v "$cc" >/dev/null; then
		echo "build-matrix.sh: $c: $cc not found (apt-get install $cc)" >&2
		failed+=("$c")
		continue
	fi
	b=$dir/$c t0=$SECONDS
	# Release as the demo builds it (RelWithDebInfo is -O2 -g -DNDEBUG), without -g.
	step_run "$c: configure" "$dir/$c.configure.log" "run: cmake -S . -B $b to see the whole output" \
		cmake -S . -B "$b" -G Ninja -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE="$type" \
		-DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DJOEY_WERROR=ON -DJOEY_SANITIZE=OFF -DJOEY_FUZZ=OFF \
		"${launcher[@]}" &&
		step_run "$c: build" "$dir/$c.build.log" "run: ninja -C $b to see every error (warnings are errors: -Werror)" \
			ninja -C "$b" -j"$jobs"
	if [ $? -eq 0 ]; then
		echo "build-matrix.sh: $c: ok ($((SECONDS - t0)) s)"
	else
		failed+=("$c")
	fi
done
echo "build-matrix.sh: ${#configs[@]} configurations, ${#failed[@]} failed${failed:+: ${failed[*]}} ($((SECONDS - start)) s)"
[ ${#failed[@]} -eq 0 ]
