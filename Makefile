# Aegis top-level commands. Every target bootstraps first (idempotent), so the
# commands work as written on a machine with none of the dependencies.
#
#   make chaos   the main job: simulation chaos + real-process chaos on a budget
#   make test    build, ctest (unit, property, sim, stress, mutant, corpus),
#                stress under ThreadSanitizer, a subset under ASan+UBSan, each
#                libFuzzer target for 20 s, then the pytest suites via tox
#   make fuzz    each libFuzzer target for FUZZ_SECONDS (docs/HARDENING.md)
#   make bench   benchmarks side by side with their peers, bench-results.json
#   make build   release build only

JOBS ?= 2
BUILD := build/release
TSAN_BUILD := build/tsan
# Tests built and run under ThreadSanitizer in `make test` (label stress).
TSAN_TARGETS ?= ring_buffer_stress_test
# Built and run under ASan+UBSan in `make test` (docs/HARDENING.md: the subset, its timings, and why
# the simulator is not in it: Debian's Boost.Context fibers cannot be annotated for ASan).
ASAN_BUILD := build/asan
ASAN_TARGETS ?= protocol_test protocol_vectors_test offloader_test core_test ring_buffer_test core_process_test aegis-core
ASAN_TESTS ?= ^(Protocol\.|ProtocolVectors\.|Offloader\.|Duration\.|LatencyHistogram\.|Ledger\.|PaymentStream\.|CoreProcess\.|RingBuffer)
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
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --preset tsan -L stress --timeout 600

test-asan:
	@cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS) --target $(ASAN_TARGETS)
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  ctest --preset asan -j $(JOBS) -R '$(ASAN_TESTS)' --timeout 600
	AEGIS_CORE_BIN=$(CURDIR)/$(ASAN_BUILD)/src/aegis-core AEGIS_REQUIRE_CORE=1 ASAN_OPTIONS="detect_leaks=1" \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider pytests/test_bad_input.py -k "not sim"

test-fuzz:
	bash scripts/fuzz.sh $(FUZZ_TEST_SECONDS)

fuzz: bootstrap
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

test-py:
	AEGIS_CORE_BIN=$(CURDIR)/$(BUILD)/src/aegis-core AEGIS_MUTANT_CORE_BIN=$(CURDIR)/$(BUILD)/src/aegis-core-mutant-no-rewind \
	  AEGIS_REQUIRE_CORE=1 tox -e py

bench: build
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
