# The two commands a new user needs (see README.md):
#   make bench   set up, build, and benchmark this machine on the sample model
#   make test    set up and run every check CI runs
.PHONY: setup setup-desktop build bench bench-front bench-split ui test lint fmt app desktop-figures runtime bench-runtime package icons
SHELL := bash

setup:
	@bash installer/setup-dev.sh

setup-desktop:
	@bash installer/setup-dev.sh --desktop

build: setup
	cargo build --release -p kindling-cli

bench: build
	./target/release/kindling bench

# What Kindling's front door costs an app: the same streamed answer straight from
# llama-server and through the door, 5 each in turns (medians; sample model).
bench-front: build
	./target/release/kindling bench-front

# A model split with a second "Mac" (a helper Kindling on 127.0.0.2) over loopback and an
# emulated 1 Gbit/s link at 0, 1 and 5 ms: predicted and measured speed, load times. It
# needs the full runtime (ggml-rpc-server), not the quick one `make bench` builds.
bench-split: runtime setup
	cargo bench -p kindling-cli --bench split

# The desktop UI, built into ui/dist (the app embeds it at compile time).
ui: setup-desktop
	cd ui && npm run build

lint: ui
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd ui && npm run check
	cd ui && node scripts/lint-workflows.mjs

# The Linux .deb: the release app with the runtime inside
# (target/release/bundle/deb/Kindling_<version>_amd64.deb).
package: setup-desktop
	@bash installer/package.sh

# Every icon, from the one source image icons/kindling.svg (the outputs are committed).
icons: setup-desktop
	@bash installer/icons.sh

# The last line totals every test binary (cargo's own last line is the doc tests')
# and the UI's unit tests. The end-to-end journey installs the .deb `package` built.
# A cold run gains nothing from incremental caches, and they double the disk it needs.
test: export CARGO_INCREMENTAL := 0
test: setup-desktop lint package
	@mkdir -p target
	set -o pipefail; (cd ui && npx vitest run) 2>&1 | tee target/test-output.log
	set -o pipefail; cargo test --workspace 2>&1 | tee -a target/test-output.log
	@awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed/) p += $$i; if ($$(i+1) ~ /^failed/) f += $$i; if ($$(i+1) ~ /^ignored/) s += $$i } } /^ +Tests +[0-9]+ passed/ { p += $$2 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.log

# Run the desktop app from the checkout (the window opens; it stays in the menu bar).
app: ui
	cargo run -p kindling-desktop

# Memory (PSS) and launch-to-interactive figures of the release app, under Xvfb.
desktop-figures: ui
	cargo bench -p kindling-desktop --bench desktop

fmt:
	cargo fmt --all

# llama-server and llama-bench built from the pinned llama.cpp source (installer/runtime.toml)
# into .runtime/built/ (about 10 minutes on 2 cores). `make setup` runs it: the tests use
# the runtime the package ships.
runtime:
	@bash installer/build-runtime.sh

# The built runtime through `kindling bench` against llama-bench from the same source.
bench-runtime: runtime build
	@bash installer/bench-runtime.sh
