#!/usr/bin/env bash
# Checks a built Kindling.app the way an owner's Mac will meet it (the release workflow
# runs it on each macOS runner, before anything is uploaded):
#   1. every Mach-O inside links only the app's own libraries and the system's, and needs
#      no macOS newer than the target's floor (installer/runtime.toml) — macho_check.py,
#      which make test runs against recorded otool outputs;
#   2. the signature verifies;
#   3. Resources/runtime.json is there and says what the app carries (on Intel, the pinned
#      MoltenVK: the app retires the workarounds that version fixed);
#   4. the bundled llama-server runs, and on Intel the Vulkan loader really loads
#      MoltenVK (ggml swallows a failed registration, so --list-devices alone passes
#      without it): the loader's own log must show the bundled driver loaded;
#   5. the bundled `kindling` command measures the sample model with the bundled
#      llama-server, on the processor (a hosted runner's GPU comes and goes).
set -euo pipefail
target="${1:?usage: check-macos-bundle.sh macos-x86_64|macos-arm64 PATH/Kindling.app}"
app="${2:?usage: check-macos-bundle.sh macos-x86_64|macos-arm64 PATH/Kindling.app}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pin() { python3 -c "import tomllib,sys; d=tomllib.load(open('$root/installer/runtime.toml','rb')); print(eval('d'+sys.argv[1]))" "$1"; }
floor="$(pin "['macos']['${target#macos-}']['minimum']")"
fail=0
say() { printf '==> %s\n' "$*"; }
bad() { printf '::error::%s\n' "$*"; fail=1; }

# 1. Linkage and minimum OS of every Mach-O file.
machos=()
while IFS= read -r f; do
  if file -b "$f" | grep -q 'Mach-O'; then machos+=("$f"); fi
done < <(find "$app" -type f)
[ ${#machos[@]} -gt 0 ] || bad "no Mach-O file in $app"
python3 "$root/installer/macho_check.py" "$floor" "${machos[@]}" || fail=1
say "Linkage and minimum macOS ($floor) of ${#machos[@]} Mach-O files checked"

# 2. The signature (ad hoc or the owner's identity).
codesign --verify --deep --strict --verbose=2 "$app" || bad "codesign --verify failed"

# 3. What the runtime is, where the app reads it.
manifest="$app/Contents/Resources/runtime.json"
if [ ! -f "$manifest" ]; then
  bad "Contents/Resources/runtime.json is missing: the app cannot tell which MoltenVK it carries"
elif [ "$target" = macos-x86_64 ]; then
  want="$(pin "['macos']['x86_64']['moltenvk']")"
  got="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["moltenvk"])' "$manifest")"
  [ "$got" = "$want" ] || bad "runtime.json says MoltenVK $got, not the pinned $want"
fi

# 4. The bundled runtime runs; on Intel, the Vulkan loader loads the bundled MoltenVK.
server="$app/Contents/MacOS/llama-server"
icd="$app/Contents/Resources/MoltenVK_icd.json"
"$server" --version || bad "llama-server --version failed"
if [ "$target" = macos-x86_64 ]; then
  [ -f "$icd" ] || bad "Contents/Resources/MoltenVK_icd.json is missing"
  log="$(VK_LOADER_DEBUG=driver VK_DRIVER_FILES="$icd" "$server" --list-devices 2>&1 || true)"
  printf '%s\n' "$log" | tail -40
  if ! printf '%s\n' "$log" | grep -q 'Frameworks/libMoltenVK.dylib'; then
    bad "the Vulkan loader never loaded Contents/Frameworks/libMoltenVK.dylib (see its log above)"
  fi
else
  "$server" --list-devices || bad "llama-server --list-devices failed"
fi
# What this Mac lends another (two Macs, one model): beside llama-server, where Kindling
# looks for it, and it runs with the bundled libraries.
"$app/Contents/MacOS/ggml-rpc-server" --help >/dev/null 2>&1 \
  || bad "Contents/MacOS/ggml-rpc-server is missing or does not run"

# The owner is asked before Kindling looks for other Macs on the network (macOS 15+):
# the question needs its sentence and the Bonjour service in Info.plist (src-tauri/Info.plist,
# merged by the bundler).
plist="$app/Contents/Info.plist"
for key in NSLocalNetworkUsageDescription NSBonjourServices; do
  /usr/libexec/PlistBuddy -c "Print :$key" "$plist" >/dev/null 2>&1 \
    || bad "Contents/Info.plist has no $key (src-tauri/Info.plist was not merged)"
done

# 5. The bundled command, with the bundled runtime, measures the sample model on the
#    processor (GGML_VK_VISIBLE_DEVICES set but empty: ggml uses no Vulkan device).
cli="$app/Contents/MacOS/kindling"
model="$RUNNER_TEMP/gemma-3-270m-q4_k_m.gguf"
bash "$root/installer/sample-model.sh" "$RUNNER_TEMP/sample" "$model"
"$cli" --help >/dev/null || bad "the bundled kindling command does not run"
KINDLING_HOME="$RUNNER_TEMP/kindling-home" GGML_VK_VISIBLE_DEVICES="" \
  "$cli" bench --model "$model" --reps 2 --no-bandwidth || bad "kindling bench with the bundled runtime failed"

[ "$fail" -eq 0 ] && say "All checks passed: $app"
exit "$fail"
