# Makefile: shortcuts only. The build is CMake + Ninja; see README.md.
#   make build                   developer build in build/ (-Werror)
#   make test                    bash scripts/test.sh (ASan/UBSan, every test, as CI)
#   make fuzz [FUZZ_SECONDS=N]   build the libFuzzer targets with clang in build-fuzz/ and
#                                run each for N seconds (default 60) on a scratch copy of
#                                its corpus; non-zero exit on any crash
FUZZ_SECONDS ?= 60
FUZZ_BUILD ?= build-fuzz

.PHONY: all build test fuzz fuzz-build
all: build

build:
	cmake -S . -B build -G Ninja
	ninja -C build

test:
	bash scripts/test.sh

# -Werror off: clang warns about things gcc's developer build does not; that build is
# the warnings gate. -O1 -g keeps assertions and readable stacks.
fuzz-build:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_C_COMPILER=clang -DJOEY_FUZZ=ON \
	  -DJOEY_WERROR=OFF -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS="-O1 -g"
	ninja -C $(FUZZ_BUILD) fuzz_all

fuzz: fuzz-build
	bash tests/fuzz/run_all.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)
