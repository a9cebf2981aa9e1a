# Bureau: one command to run it, one to test everything (what CI runs), one to benchmark.

CARGO ?= cargo
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: run test deps lint unit e2e bench clean

## Run Bureau in development: 127.0.0.1, ports + 10000, data in ./bureau-data.
run:
	$(CARGO) run -p bureau -- serve --dev

## Everything CI checks: installs what the tests need, then format, lint, unit and e2e tests.
test: deps lint unit e2e

deps:
	scripts/test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

e2e:
	$(CARGO) build -p bureau
	$(PY) -m pytest -q tests

## Benchmarks (release build); results go in docs/BENCHMARKS.md by hand.
bench:
	bench/run.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV)
