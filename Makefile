# The two commands a new user needs (see README.md):
#   make bench   set up, build, and benchmark this machine on the sample model
#   make test    set up and run every check CI runs
.PHONY: setup build bench test lint fmt

setup:
	@bash installer/setup-dev.sh

build: setup
	cargo build --release -p kindling-cli

bench: build
	./target/release/kindling bench

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: setup lint
	cargo test --workspace

fmt:
	cargo fmt --all
