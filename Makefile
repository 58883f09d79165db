# The two commands a new user needs (see README.md):
#   make bench   set up, build, and benchmark this machine on the sample model
#   make test    set up and run every check CI runs
.PHONY: setup build bench test lint fmt
SHELL := bash

setup:
	@bash installer/setup-dev.sh

build: setup
	cargo build --release -p kindling-cli

bench: build
	./target/release/kindling bench

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The last line totals every test binary (cargo's own last line is the doc tests').
test: setup lint
	@mkdir -p target
	set -o pipefail; cargo test --workspace 2>&1 | tee target/test-output.log
	@awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i; if ($$(i+1) ~ /^ignored/) s += $$i } } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.log

fmt:
	cargo fmt --all
