# Aegis top-level commands. Every target bootstraps first (idempotent), so the
# commands work as written on a machine with none of the dependencies.
#
#   make chaos   the main job: simulation chaos + real-process chaos on a budget
#   make test    build, ctest (unit, property, sim, stress, mutant, corpus, lint),
#                the same ctest suites (fewer property cases) and the bad-input
#                pytest under ASan+UBSan, a subset under ThreadSanitizer, each
#                libFuzzer target for 20 s, then the pytest suites via tox
#   make fuzz    each libFuzzer target for FUZZ_SECONDS (docs/HARDENING.md)
#   make bench   benchmarks side by side with their peers, bench-results.json
#   make build   release build only (benchmarks are built by make bench)

JOBS ?= 2
BUILD := build/release
TSAN_BUILD := build/tsan
# Built and run under ThreadSanitizer in `make test` (docs/HARDENING.md: the subset and its timings):
# the ring (unit + stress), the offloader over real ZeroMQ, aegis-core as a process, the simulator's world.
TSAN_TARGETS ?= ring_buffer_stress_test ring_buffer_test offloader_test core_process_test sim_world_test aegis-core
TSAN_TESTS ?= ^(RingBuffer|Offloader\.|CoreProcess\.|World\.)
# libzmq is not instrumented: scripts/tsan.supp says why its reports are false positives.
TSAN_ENV = TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/scripts/tsan.supp"
# Built and run under ASan+UBSan in `make test` (docs/HARDENING.md: what runs, the case counts, the
# timings). Every ctest suite but pytest (tox) and the -O0 simulator copy: the build is `all` without
# aegis-sim-debug, aegis-core-mutant-no-rewind and the benchmarks, and any gtest binary left unbuilt
# fails the run (its ctest placeholder *_NOT_BUILT) instead of being skipped.
ASAN_BUILD := build/asan
ASAN_LABELS ?= unit|property|corpus|sim|mutant|stress
ASAN_EXCLUDE ?= ^sim_debug_release_same_hash_
# The embedded interpreter of --bridge python lives until exit: scripts/lsan.supp says why its memory is not a leak.
ASAN_ENV = ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  LSAN_OPTIONS="suppressions=$(CURDIR)/scripts/lsan.supp print_suppressions=0"
# Seconds each libFuzzer target runs in `make test` (test-fuzz) and in `make fuzz`.
FUZZ_TEST_SECONDS ?= 20
FUZZ_SECONDS ?= 300
SIM_BUDGET ?= 60s
REAL_BUDGET ?= 60s
CHAOS_OUT ?= chaos-out

.PHONY: all bootstrap build test test-ctest test-tsan test-asan test-fuzz test-py fuzz bench chaos clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

test: build
	$(MAKE) --no-print-directory test-ctest test-tsan test-asan test-fuzz test-py

test-ctest:
	ctest --preset release -j $(JOBS) --label-exclude pytest --timeout 600

test-tsan:
	@cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TARGETS)
	$(TSAN_ENV) ctest --preset tsan -j $(JOBS) -R '$(TSAN_TESTS)' --timeout 600
	AEGIS_CORE_BIN=$(CURDIR)/$(TSAN_BUILD)/src/aegis-core AEGIS_REQUIRE_CORE=1 $(TSAN_ENV) \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider pytests/test_kill_restart.py

test-asan:
	@cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS) --target $$(bash scripts/asan_targets.sh $(ASAN_BUILD))
	$(ASAN_ENV) ctest --preset asan -j $(JOBS) -L '$(ASAN_LABELS)' -E '$(ASAN_EXCLUDE)' --timeout 600
	@! ctest --preset asan -N | grep '_NOT_BUILT' || { echo "test-asan: gtest binaries above are not built"; exit 1; }
	AEGIS_CORE_BIN=$(CURDIR)/$(ASAN_BUILD)/src/aegis-core AEGIS_REQUIRE_CORE=1 ASAN_OPTIONS="detect_leaks=1" \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider pytests/test_bad_input.py

test-fuzz:
	bash scripts/fuzz.sh $(FUZZ_TEST_SECONDS)

fuzz: bootstrap
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

test-py:
	AEGIS_CORE_BIN=$(CURDIR)/$(BUILD)/src/aegis-core AEGIS_MUTANT_CORE_BIN=$(CURDIR)/$(BUILD)/src/aegis-core-mutant-no-rewind \
	  AEGIS_REQUIRE_CORE=1 tox -e py

bench: build
	cmake --build --preset release -j $(JOBS) --target benchmarks
	rm -f $(BUILD)/bench-results.json
	bash scripts/run_benchmarks.sh $(BUILD)

# Builds only what it runs, so a fresh clone gets to the chaos quickly;
# scripts/make_chaos.sh prints the summary and fails when either run failed.
chaos: bootstrap
	@cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target aegis-sim aegis-core
	@bash scripts/make_chaos.sh $(BUILD) $(SIM_BUDGET) $(REAL_BUDGET) $(CHAOS_OUT) $(JOBS)

clean:
	rm -rf build .tox $(CHAOS_OUT)
