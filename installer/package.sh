#!/usr/bin/env bash
# `make package`: the desktop app bundled with the llama-server built from the pinned
# source (installer/build-runtime.sh) — the runtime the tests use. On Linux a .deb; on
# macOS (the release workflow) the .app and .dmg.
#
# Layout inside the .deb:
#   /usr/bin/kindling-desktop    the app
#   /usr/bin/kindling            the command (the README's CLI), a sidecar too
#   /usr/bin/llama-server        the runtime, as the app's Tauri sidecar (externalBin)
#   /usr/bin/ggml-rpc-server     the runtime's half of a model split with another Mac (a
#                                sidecar too: Kindling finds it beside llama-server)
#   /usr/lib/kindling/           its libraries, ggml backends and runtime.json
#                                (llama-server's RUNPATH has $ORIGIN/../lib/kindling; the
#                                app starts it in that folder, where ggml finds backends)
# Inside the .app: Contents/MacOS/llama-server, ggml-rpc-server and kindling (sidecars),
# the runtime's dylibs in Contents/Frameworks (bundle.macOS.frameworks: so they are
# signed), Resources/runtime.json (what the runtime is: MoltenVK's version retires the
# workarounds it fixed), and for Intel Macs Resources/MoltenVK_icd.json, which the app
# hands to the server as VK_DRIVER_FILES.
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

# 1. The sidecars, under the names Tauri wants (it strips the target triple when
#    bundling): llama-server, ggml-rpc-server (what a Mac lends another), and the
#    `kindling` command from the same core as the app (the README's CLI section works on
#    an installed Kindling too).
triple="$(rustc -vV | sed -n 's/^host: //p')"
mkdir -p "$root/src-tauri/binaries"
for bin in llama-server ggml-rpc-server; do
  cp "$built/$bin" "$root/src-tauri/binaries/$bin-$triple"
done
say "Building the kindling command"
(cd "$root" && cargo build --release --locked -p kindling-cli) >&2
cp "$target_dir/release/kindling" "$root/src-tauri/binaries/kindling-$triple"

# 2. Its libraries: what it needs from the build (by the name it asks for, links followed),
#    every ggml backend (loaded by file name at run time; the RPC one is what `--rpc`
#    needs to reach another Mac), and the manifest.
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
for bin in llama-server ggml-rpc-server; do
  for dep in $(needed "$built/$bin"); do stage_lib "$dep"; done
done
for backend in "$built"/libggml-cpu-*.so "$built"/libggml-vulkan.so "$built"/libggml-rpc.so \
  "$built"/libggml-rpc.dylib "$built"/libMoltenVK.dylib; do
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
  if [ -e "$lib/libMoltenVK.dylib" ]; then
    cat > "$stage/MoltenVK_icd.json" <<ICD
{ "file_format_version": "1.0.0",
  "ICD": { "library_path": "../Frameworks/libMoltenVK.dylib", "api_version": "1.4.0", "is_portability_driver": true } }
ICD
  fi
  # Signed with the owner's identity when the environment has one; else ad hoc, with the
  # hardened runtime off (dyld refuses an ad-hoc app's own dylibs with it on). Empty
  # secrets are unset and half-set groups refused there (see the script).
  # shellcheck source=installer/macos-signing.sh
  . "$root/installer/macos-signing.sh"
  signing_setup || exit 1
  say "Signing: $signing_mode"
  # The oldest macOS this build runs on: the runtime's, from the flags it was built with.
  floor="$(sed -n 's/.*-DCMAKE_OSX_DEPLOYMENT_TARGET=\([0-9.]*\).*/\1/p' "$built/.flags")"
  [ -n "$floor" ] || { say "The runtime's flags name no deployment target"; exit 1; }
else
  bundles="deb"
  signing_identity="" signing_hardened=false floor=""
fi
# Updates: the release workflow passes the public key and the manifest's address (the
# private key signs the update archives: TAURI_SIGNING_PRIVATE_KEY). Without them the
# app says it does not update itself.
if [ -z "${KINDLING_UPDATER_PUBKEY:-}" ] || [ -z "${KINDLING_UPDATE_URL:-}" ] || [ -z "${TAURI_SIGNING_PRIVATE_KEY:-}" ]; then
  say "No updater key and address in the environment: this build will not update itself"
  unset KINDLING_UPDATER_PUBKEY TAURI_SIGNING_PRIVATE_KEY
fi
# The overlay, written with a JSON library (installer/tauri_overlay.py, which make test
# runs for both systems).
IDENTITY="$signing_identity" HARDENED="$signing_hardened" FLOOR="$floor" \
  python3 "$root/installer/tauri_overlay.py" "$(uname -s)" "$lib" "$stage" > "$overlay"
tauri="$root/ui/node_modules/.bin/tauri"
[ -x "$tauri" ] || { say "The Tauri CLI is missing: run make setup-desktop"; exit 1; }
say "Building the release app and its bundle (a long step the first time: about 10 minutes on 2 cores)"
start=$(date +%s)
(cd "$root/src-tauri" && "$tauri" build --ci --bundles "$bundles" --config "$overlay") >&2
# tauri build leaves the sidecars, without their libraries, beside target/release/kindling,
# where they cannot start; the bundle has its own copies.
rm -f "$target_dir/release/llama-server" "$target_dir/release/ggml-rpc-server"
case "$bundles" in
  deb) made="$(ls -t "$target_dir"/release/bundle/deb/*.deb | head -1)" ;;
  *) made="$(ls -t "$target_dir"/release/bundle/dmg/*.dmg | head -1)" ;;
esac
say "Built in $(( $(date +%s) - start ))s: $made ($(du -h "$made" | cut -f1))"
echo "$made"
