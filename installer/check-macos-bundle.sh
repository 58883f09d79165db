#!/usr/bin/env bash
# Checks a built Kindling.app the way an owner's Mac will meet it (the release workflow
# runs it on each macOS runner): every Mach-O inside links nothing from Homebrew or
# /usr/local and needs macOS 13.3 at most; the signature verifies; the bundled
# llama-server runs and lists its devices; and `kindling bench` measures the sample model
# with that llama-server (on the processor: hosted runners have no usable GPU).
set -euo pipefail
app="${1:?usage: check-macos-bundle.sh PATH/Kindling.app}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
floor="13.3"
fail=0
say() { printf '==> %s\n' "$*"; }
bad() { printf '::error::%s\n' "$*"; fail=1; }

# 1. Linkage and minimum OS of every Mach-O file.
while IFS= read -r f; do
  file -b "$f" | grep -q 'Mach-O' || continue
  if otool -L "$f" | awk 'NR > 1 { print $1 }' | grep -E '^(/opt/homebrew|/usr/local)/'; then
    bad "$f links a library outside the app and the system (above)"
  fi
  minos="$(otool -l "$f" | awk '/LC_BUILD_VERSION/ { b = 1 } b && $1 == "minos" { print $2; exit }
                              /LC_VERSION_MIN_MACOSX/ { v = 1 } v && $1 == "version" { print $2; exit }')"
  if [ -z "$minos" ]; then bad "$f has no minimum macOS version"
  elif [ "$(printf '%s\n%s\n' "$minos" "$floor" | sort -V | tail -1)" != "$floor" ]; then
    bad "$f needs macOS $minos, newer than $floor"
  fi
done < <(find "$app" -type f)
say "Linkage and minimum macOS checked"

# 2. The signature (ad hoc or the owner's identity).
codesign --verify --deep --strict --verbose=2 "$app" || bad "codesign --verify failed"

# 3. The bundled runtime runs.
server="$app/Contents/MacOS/llama-server"
icd="$app/Contents/Resources/MoltenVK_icd.json"
run_server() { if [ -f "$icd" ]; then VK_DRIVER_FILES="$icd" "$server" "$@"; else "$server" "$@"; fi; }
run_server --version || bad "llama-server --version failed"
run_server --list-devices || bad "llama-server --list-devices failed"

# 4. A benchmark through Kindling, with that runtime, of the sample model.
model="$RUNNER_TEMP/gemma-3-270m-q4_k_m.gguf"
bash "$root/installer/sample-model.sh" "$RUNNER_TEMP/sample" "$model"
(cd "$root" && cargo build --release -p kindling-cli)
KINDLING_HOME="$RUNNER_TEMP/kindling-home" KINDLING_LLAMA_SERVER="$server" \
  "$root/target/release/kindling" bench --model "$model" --reps 2 || bad "kindling bench failed"

[ "$fail" -eq 0 ] && say "All checks passed: $app"
exit "$fail"
