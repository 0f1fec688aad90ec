# The suite's documented interface: `make up` runs it locally, `make test` runs the tests.
VENV ?= .venv
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: up test setup soak clean

setup:
	@./scripts/setup.sh

up: setup
	@exec $(VENV)/bin/charging-suite up $(SUITE_ARGS)

# Two pytest workers (pytest-xdist): most tests wait on the real processes they start, so two keep both cores
# busy. --dist loadfile keeps a module's tests on one worker, so a stack a module-scoped fixture starts is
# started once. TEST_WORKERS=0 runs everything in one process, as plain `pytest FILE` does.
TEST_WORKERS ?= 2
test:
	@./scripts/setup.sh --test
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Minutes of the whole suite under a busy scenario (not part of `make test`); SOAK_MINUTES=5 by default.
soak: setup
	$(VENV)/bin/python -m pytest -m soak -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache

# Benchmarks (not part of `make test`): prints figures and ratios, writes benchmarks/results.md.
.PHONY: bench
bench: setup
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)
