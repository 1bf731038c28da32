# The two set-up commands: `make demo` runs the main job, `make check` runs
# every test. Both install missing Debian packages first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_JOBS  ?= 1
SHARED     ?= $(abspath ../shared)
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo check format format-check unit asan bench stress \
	fuzz fuzz-build clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DFS_SHARED_DIR=$(SHARED) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/fieldsync demo --data $(SHARED)/data/crm_deals $(DEMO_ARGS)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check: deps
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
	@echo "format: ok"

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFS_SANITIZE=ON \
	    -DFS_SHARED_DIR=$(SHARED) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

check: format-check build asan
	@scripts/install-prism.sh $(ASAN_BUILD)/tools/prism >/dev/null
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j 2

bench: build
	$(BUILD)/fsbench --fieldsync $(BUILD)/fieldsync --crmsim $(BUILD)/crmsim \
	    --data $(SHARED)/data/crm_deals

# The libFuzzer targets (clang), each run FUZZ_SECONDS, FUZZ_JOBS at a time;
# FUZZ_TARGETS picks some (docs/FUZZING.md).
fuzz-build: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DFS_FUZZ=ON -DFS_SHARED_DIR=$(SHARED) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) --target fuzz -j $(JOBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) \
	    scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TARGETS)

# Many seeds and kills of the convergence and crash scenarios for every
# CRM, runs started for STRESS_SECONDS (900); docs/TESTING.md.
stress: build
	@BUILD=$(BUILD) SHARED=$(SHARED) scripts/stress.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
