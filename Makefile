# Bureau: one command to run it, one to test everything (what CI runs), one to benchmark.

CARGO ?= cargo
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: run test deps lint unit e2e image qemu bench clean

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
	python3 scripts/layout-check.py
	node --check web-admin/app.js

unit:
	$(CARGO) test --workspace

e2e: image
	$(CARGO) build -p bureau
	$(PY) -m pytest -q tests

## The appliance disk (root; cached in /var/cache/bureau-image): target/image/bureau.{img,img.xz,qcow2}.
image:
	$(CARGO) build --release -p bureau
	image/build.sh

## Boot the image in QEMU, ports + 20000 on localhost (docs/IMAGE.md).
qemu: image
	qemu/run.sh

## Benchmarks (release build); results go in docs/BENCHMARKS.md by hand.
bench:
	bench/run.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV)
