#!/usr/bin/env bash
# `make package`: the desktop app bundled with the llama-server built from the pinned
# source (installer/build-runtime.sh) — the runtime the tests use. On Linux a .deb; on
# macOS (the release workflow) the .app and .dmg.
#
# Layout inside the .deb:
#   /usr/bin/kindling-desktop    the app
#   /usr/bin/llama-server        the runtime, as the app's Tauri sidecar (externalBin)
#   /usr/lib/kindling/           its libraries, ggml backends and runtime.json
#                                (llama-server's RUNPATH has $ORIGIN/../lib/kindling; the
#                                app starts it in that folder, where ggml finds backends)
# Inside the .app: Contents/MacOS/llama-server (the sidecar), its dylibs in
# Contents/Frameworks (bundle.macOS.frameworks: so they are signed), and for Intel Macs
# Resources/MoltenVK_icd.json, which the app hands to the server as VK_DRIVER_FILES.
# Prints the bundle's path last.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '==> %s\n' "$*" >&2; }

bash "$root/installer/build-runtime.sh" >&2
built="$root/.runtime/built"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
stage="$target_dir/package"
lib="$stage/lib"
rm -rf "$stage" && mkdir -p "$lib"

# 1. The sidecar, under the name Tauri wants (it strips the target triple when bundling).
triple="$(rustc -vV | sed -n 's/^host: //p')"
mkdir -p "$root/src-tauri/binaries"
cp "$built/llama-server" "$root/src-tauri/binaries/llama-server-$triple"

# 2. Its libraries: what it needs from the build (by the name it asks for, links followed),
#    every ggml backend (loaded by file name at run time), and the manifest.
case "$(uname -s)" in
  Darwin) needed() { otool -L "$1" | awk 'NR > 1 { print $1 }' | sed -n 's|^@rpath/||p'; } ;;
  *) needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; } ;;
esac
stage_lib() {
  local name="$1"
  [ -e "$lib/$name" ] && return 0
  [ -e "$built/$name" ] || return 0 # a system library (libc, libstdc++, libgomp; Linux's libvulkan)
  cp -L "$built/$name" "$lib/$name"
  local dep
  for dep in $(needed "$built/$name"); do stage_lib "$dep"; done
}
for dep in $(needed "$built/llama-server"); do stage_lib "$dep"; done
for backend in "$built"/libggml-cpu-*.so "$built"/libggml-vulkan.so "$built"/libMoltenVK.dylib; do
  if [ -e "$backend" ]; then stage_lib "$(basename "$backend")"; fi
done
cp "$built/runtime.json" "$lib/"
say "Runtime staged: $(ls "$lib" | wc -l) files, $(du -sh "$lib" | cut -f1)"

# 3. The bundle: the committed config plus what only a package needs (the sidecar, its
#    libraries, the system packages they use). A config of its own, so that a plain
#    `cargo build` of the app never needs a built runtime.
overlay="$stage/tauri.package.json"
if [ "$(uname -s)" = Darwin ]; then
  bundles="app,dmg"
  frameworks="$(ls "$lib"/*.dylib | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')"
  resources="{}"
  if [ -e "$lib/libMoltenVK.dylib" ]; then
    cat > "$stage/MoltenVK_icd.json" <<ICD
{ "file_format_version": "1.0.0",
  "ICD": { "library_path": "../Frameworks/libMoltenVK.dylib", "api_version": "1.4.0", "is_portability_driver": true } }
ICD
    resources="{\"$stage/MoltenVK_icd.json\": \"MoltenVK_icd.json\"}"
  fi
  # Signed with the owner's identity when the environment has one; else ad hoc, with the
  # hardened runtime off (dyld refuses an ad-hoc app's own dylibs with it on).
  if [ -n "${APPLE_SIGNING_IDENTITY:-}" ]; then identity="$APPLE_SIGNING_IDENTITY"; hardened=true
  else identity="-"; hardened=false; say "No signing identity in the environment: signing ad hoc"; fi
  # Updates: the release workflow passes the public key and the manifest's address
  # (the private key signs the update archives: TAURI_SIGNING_PRIVATE_KEY). Without
  # them the app says it does not update itself.
  updater="false"; plugins="{}"
  if [ -n "${KINDLING_UPDATER_PUBKEY:-}" ] && [ -n "${KINDLING_UPDATE_URL:-}" ] && [ -n "${TAURI_SIGNING_PRIVATE_KEY:-}" ]; then
    updater="true"
    plugins="{\"updater\": {\"pubkey\": \"$KINDLING_UPDATER_PUBKEY\", \"endpoints\": [\"$KINDLING_UPDATE_URL\"], \"requireSignedVersion\": true}}"
  else
    say "No updater key and address in the environment: this build will not update itself"
  fi
  cat > "$overlay" <<JSON
{
  "plugins": $plugins,
  "bundle": {
    "createUpdaterArtifacts": $updater,
    "externalBin": ["binaries/llama-server"],
    "resources": $resources,
    "macOS": {
      "frameworks": $frameworks,
      "minimumSystemVersion": "13.3",
      "signingIdentity": "$identity",
      "hardenedRuntime": $hardened
    }
  }
}
JSON
else
  bundles="deb"
  cat > "$overlay" <<JSON
{
  "bundle": {
    "externalBin": ["binaries/llama-server"],
    "linux": {
      "deb": {
        "depends": ["libvulkan1", "libgomp1"],
        "files": { "/usr/lib/kindling": "$lib/" }
      }
    }
  }
}
JSON
fi
tauri="$root/ui/node_modules/.bin/tauri"
[ -x "$tauri" ] || { say "The Tauri CLI is missing: run make setup-desktop"; exit 1; }
say "Building the release app and its bundle (a long step the first time: about 10 minutes on 2 cores)"
start=$(date +%s)
(cd "$root/src-tauri" && "$tauri" build --ci --bundles "$bundles" --config "$overlay") >&2
# tauri build leaves the sidecar, without its libraries, beside target/release/kindling,
# where it cannot start; the bundle has its own copy.
rm -f "$target_dir/release/llama-server"
case "$bundles" in
  deb) made="$(ls -t "$target_dir"/release/bundle/deb/*.deb | head -1)" ;;
  *) made="$(ls -t "$target_dir"/release/bundle/dmg/*.dmg | head -1)" ;;
esac
say "Built in $(( $(date +%s) - start ))s: $made ($(du -h "$made" | cut -f1))"
echo "$made"
