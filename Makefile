# Sluice: the two commands are `make run` and `make test`.
CARGO  ?= cargo
PYTHON ?= python3
VENV   := .venv
PLUGIN_CRATES := static-keys header-auth oidc time-window local-kms s3-target hostile hostile-authorizer hostile-target
CONFIG ?= sluice.toml

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
WASM_OUT   := $(TARGET_DIR)/wasm32-wasip2/plugin

.PHONY: run build test-build plugins test test-rust test-python venv tools js bench bench-plugins bench-policy bench-replication bench-peers fmt lint clean

## Build and serve S3 on 127.0.0.1:9000 with data in ./data (root credentials printed on first start)
run: build plugins
	$(TARGET_DIR)/debug/sluice serve --config $(CONFIG)

build:
	$(CARGO) build --bins

## The shipped plugins into plugins/dist/, the test fixtures into tests/plugins/dist/ (wasm32-wasip2)
plugins:
	@command -v rustup >/dev/null && rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
	$(CARGO) build --target wasm32-wasip2 --profile plugin $(PLUGIN_CRATES:%=-p %)
	mkdir -p plugins/dist tests/plugins/dist
	cp $(WASM_OUT)/static_keys.wasm $(WASM_OUT)/header_auth.wasm $(WASM_OUT)/oidc.wasm $(WASM_OUT)/time_window.wasm $(WASM_OUT)/local_kms.wasm $(WASM_OUT)/s3_target.wasm plugins/dist/
	cp $(WASM_OUT)/hostile.wasm $(WASM_OUT)/hostile_authorizer.wasm $(WASM_OUT)/hostile_target.wasm tests/plugins/dist/

## Install what the tests need (Python venv with boto3, awscli, s3cmd; rclone) and run every test
test: venv tools js test-build plugins test-rust test-python

# `cargo test` builds the server binary too (the integration tests run it), with the features its
# dev-dependencies add to shared crates (hyper, rustls, hashbrown, ...). A separate `cargo build`
# without them compiled wasmtime, cranelift, cedar and axum a second time: ~12 of CI's minutes.
# So the tests, Rust and Python, use the binary that `cargo test` builds.
test-build:
	$(CARGO) test --no-run

test-rust: plugins
	$(CARGO) test

# The Python tests run the binary in this target dir (also under a custom CARGO_TARGET_DIR),
# unless TEST_SLUICE_BIN names another.
test-python: venv tools js test-build plugins
	TEST_SLUICE_BIN="$${TEST_SLUICE_BIN:-$(abspath $(TARGET_DIR))/debug/sluice}" $(VENV)/bin/python -m pytest tests/python -q -p no:cacheprovider

## rclone, restic and s3fs for the end-to-end tests: the Debian packages, installed when missing (as
## root, or with sudo)
TOOLS := rclone restic s3fs
tools:
	@missing=$$(for t in $(TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	[ -z "$$missing" ] || { $(call apt_install,$$missing); }

# Shell commands installing the Debian packages $(1), as root or through sudo.
apt_install = SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	{ $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1) >/dev/null; } \
	|| { echo "could not install $(1): apt-get install $(1)" >&2; exit 1; }

venv: $(VENV)/.installed

## The AWS SDK for JavaScript v3 for tests/python/test_js_sdk.py: npm ci from the pinned lock file
js: tests/js/node_modules/.installed

tests/js/node_modules/.installed: tests/js/package-lock.json
	@command -v npm >/dev/null || { $(call apt_install,nodejs npm); }
	cd tests/js && npm ci --silent --no-audit --no-fund
	touch $@

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

## Load benchmark against a fresh release-built server; figures go to bench/README.md
bench:
	$(CARGO) build --release --bins
	bash bench/run.sh

## Replication throughput and lag between two release-built servers; table into bench/replication.md
bench-replication: venv plugins
	$(CARGO) build --release --bins
	TEST_SLUICE_BIN=$(TARGET_DIR)/release/sluice $(VENV)/bin/python bench/replication.py

## Sluice against Garage (fsync on and off) and s3s-fs, with the disk and loopback ceilings; into bench/peers.md and bench/README.md
## (measured: ~55 min with the tools built, ~65 since the page cache settles before each large round; on a fresh machine the release build and `cargo install` of garage and s3s-fs add ~40 min first)
bench-peers:
	$(CARGO) build --release --bins
	$(PYTHON) bench/peers.py

## Plugin call overhead (criterion, host/benches/plugins.rs); p50/p99 table into bench/plugins.md
bench-plugins: plugins
	$(CARGO) bench --bench plugins -- --warm-up-time 1 --measurement-time 3 | tee $(TARGET_DIR)/bench-plugins.txt
	{ echo "## Plugin calls (criterion bench \`plugins\`, single calls, release build)"; echo; \
	  grep '^|' $(TARGET_DIR)/bench-plugins.txt; } > bench/plugins.md

## Authorization cost (criterion, host/benches/policy.rs); p50/p99 table into bench/policy.md
bench-policy:
	$(CARGO) bench --bench policy -- --warm-up-time 1 --measurement-time 3 | tee $(TARGET_DIR)/bench-policy.txt
	{ echo "## Authorization (criterion bench \`policy\`, one decision incl. entities and context, release build)"; echo; \
	  grep -E '^(\||> )' $(TARGET_DIR)/bench-policy.txt; } > bench/policy.md

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip2 $(PLUGIN_CRATES:%=-p %) -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV)
