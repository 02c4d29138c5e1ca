# Aegis top-level commands. Every target bootstraps first (idempotent), so the
# commands work as written on a machine with none of the dependencies.
#
#   make chaos   the main job: simulation chaos + real-process chaos on a budget
#   make test    build, ctest (unit, property, sim, stress, mutant, corpus),
#                stress under ThreadSanitizer, then the pytest suites via tox
#   make bench   benchmarks side by side with their peers, bench-results.json
#   make build   release build only

JOBS ?= 2
BUILD := build/release
TSAN_BUILD := build/tsan
# Tests built and run under ThreadSanitizer in `make test` (label stress).
TSAN_TARGETS ?= ring_buffer_stress_test
SIM_BUDGET ?= 60s
REAL_BUDGET ?= 60s
CHAOS_OUT ?= chaos-out

.PHONY: all bootstrap build test test-ctest test-tsan test-py bench chaos clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

test: build
	$(MAKE) --no-print-directory test-ctest test-tsan test-py

test-ctest:
	ctest --preset release -j $(JOBS) --label-exclude pytest --timeout 600

test-tsan:
	@cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TARGETS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --preset tsan -L stress --timeout 600

test-py:
	AEGIS_CORE_BIN=$(CURDIR)/$(BUILD)/src/aegis-core AEGIS_REQUIRE_CORE=1 tox -e py

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
