# Sluice: the two commands are `make run` and `make test`.
CARGO  ?= cargo
PYTHON ?= python3
VENV   := .venv
CONFIG ?= sluice.toml

.PHONY: run build test test-rust test-python venv bench fmt lint clean

## Build and serve S3 on 127.0.0.1:9000 with data in ./data (root credentials printed on first start)
run: build
	./target/debug/sluice serve --config $(CONFIG)

build:
	$(CARGO) build --workspace --bins

## Install what the tests need (Python venv with boto3 + awscli) and run every test
test: venv build test-rust test-python

test-rust:
	$(CARGO) test --workspace

test-python: venv build
	$(VENV)/bin/python -m pytest tests/python -q -p no:cacheprovider

venv: $(VENV)/.installed

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

## Load benchmark against a fresh release-built server; figures go to bench/README.md
bench:
	$(CARGO) build --release --workspace --bins
	bash bench/run.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV)
