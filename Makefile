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

# make soak [SEEDS=N] [STEPS=K] [SOURCE=all] [SEED=1]: the randomized differential test
# (tests/diff) over N seeds per source type, with the joey and braze-sim of $(SOAK_BUILD).
SEEDS ?= 50
STEPS ?= 12
SOURCE ?= all
SEED ?= 1
SOAK_BUILD ?= build-diff
.PHONY: soak
soak:
	cmake -S . -B $(SOAK_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	ninja -C $(SOAK_BUILD) joey braze-sim
	JOEY_BIN=$(SOAK_BUILD)/joey BRAZE_SIM_BIN=$(SOAK_BUILD)/braze-sim /usr/bin/python3 tests/diff/run.py \
	  --seed $(SEED) --seeds $(SEEDS) --steps $(STEPS) --source $(SOURCE)
