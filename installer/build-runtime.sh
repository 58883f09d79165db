#!/usr/bin/env bash
# Builds llama-server, ggml-rpc-server (a helper Mac's half of a split model), llama-bench and
# llama-quantize (for the tests) from the pinned llama.cpp source
# (installer/runtime.toml) for this machine's target, into .runtime/built/, with a
# manifest (runtime.json) beside the binary. `make runtime` runs it. Idempotent: a
# finished build of the same pin is kept.
#
# Targets and their flags (one place):
#   linux-x86_64   Vulkan + every CPU variant chosen at run time (GGML_NATIVE would die
#                  with "Illegal instruction" on machines unlike the builder)
#   macos-x86_64   Vulkan over MoltenVK >= 1.4.2, Metal off, from macOS 12.0 (the
#                  floor in installer/runtime.toml: every Intel Mac with AMD graphics
#                  that macOS 12 or 13 still runs)
#   macos-arm64    Metal, library embedded, from macOS 13.3
# The macOS targets are built by the release workflow (.github/workflows/release.yml) on
# macOS runners; it provides, for macos-x86_64, the Vulkan loader built for the floor
# (KINDLING_VULKAN_PREFIX: include/ and lib/libvulkan.1.dylib, built for the same floor) and MoltenVK from the
# Khronos release (KINDLING_MOLTENVK_DIR: libMoltenVK.dylib; KINDLING_MOLTENVK_VERSION).
# Only linux-x86_64 can be built and tested on Linux; --print-flags TARGET prints any
# target's flags.
#
# --quick (what `make bench` needs, on Linux): when the full runtime is not built yet,
# llama-server alone from the same pin, for this machine's processor only (native CPU
# code, no Vulkan, no chat page) into .runtime/quick/ — minutes instead of the full
# build's ten. The full build (`make runtime`, `make test`, `make package`) replaces it:
# setup-dev.sh links .runtime/bin/llama-server to the full runtime whenever it exists
# and removes the quick one, so the two never drift apart.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/.runtime/build"
out="$root/.runtime/built"
quick=false
[ "${1:-}" = "--quick" ] && quick=true
say() { printf '==> %s\n' "$*"; }
pin() { python3 -c "import tomllib,sys; d=tomllib.load(open('$root/installer/runtime.toml','rb')); print(eval('d'+sys.argv[1]))" "$1"; }

# The server's chat page is built from its source with npm (the registry), never
# downloaded prebuilt from Hugging Face (LLAMA_USE_PREBUILT_UI).
# No OpenSSL: the server needs no TLS (Kindling downloads models itself), and with it on
# (the pin's default) every build links the build machine's libssl — on the macOS runners
# Homebrew's, by absolute path, which an owner's Mac does not have ("Library not loaded:
# /usr/local/opt/openssl@3/lib/libssl.3.dylib"); on Linux an undeclared libssl3.
common_flags=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=ON
  -DLLAMA_BUILD_UI=ON -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_RPC=ON)
# The oldest macOS each Mac build runs on (installer/runtime.toml [macos]).
floor_of() { pin "['macos']['${1#macos-}']['minimum']"; }
flags_for() {
  case "$1" in
    linux-x86_64) echo "${common_flags[*]} -DGGML_VULKAN=ON -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_RPATH=\$ORIGIN;\$ORIGIN/../lib/kindling -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" ;;
    macos-x86_64) echo "${common_flags[*]} -DGGML_VULKAN=ON -DGGML_METAL=OFF -DGGML_OPENMP=OFF -DCMAKE_OSX_DEPLOYMENT_TARGET=$(floor_of macos-x86_64) -DCMAKE_OSX_ARCHITECTURES=x86_64 -DCMAKE_INSTALL_RPATH=@executable_path;@executable_path/../Frameworks -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" ;;
    macos-arm64) echo "${common_flags[*]} -DGGML_METAL=ON -DGGML_METAL_EMBED_LIBRARY=ON -DGGML_OPENMP=OFF -DCMAKE_OSX_DEPLOYMENT_TARGET=$(floor_of macos-arm64) -DCMAKE_OSX_ARCHITECTURES=arm64 -DCMAKE_INSTALL_RPATH=@executable_path;@executable_path/../Frameworks -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" ;;
    *) echo "unknown target $1" >&2; return 1 ;;
  esac
}
# This machine only: its own processor's instructions (GGML_NATIVE), one CPU backend;
# without AMX (see the AMX variant below; GCC needs each AMX part turned off by name).
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
quick_flags="-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_VULKAN=OFF -DGGML_BACKEND_DL=OFF -DCMAKE_INSTALL_RPATH=\$ORIGIN -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON"
if [ "${1:-}" = "--print-flags" ]; then flags_for "$2"; exit 0; fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=linux-x86_64 ;;
  Darwin-x86_64) target=macos-x86_64 ;;
  Darwin-arm64) target=macos-arm64 ;;
  *) say "Kindling has no runtime target for $(uname -sm)."; exit 1 ;;
esac
[ "$target" = linux-x86_64 ] || quick=false # a Mac builds the runtime it ships
sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }
cpus() { nproc 2>/dev/null || sysctl -n hw.ncpu; }
version="$(pin "['source']['version']")"
build="$(pin "['source']['build']")"
stamp="$out/runtime.json"
flags="$(flags_for "$target")"
if [ -x "$out/llama-server" ] && [ -x "$out/ggml-rpc-server" ] && [ -x "$out/llama-quantize" ] && grep -q "\"llama_cpp_build\": $build" "$stamp" 2>/dev/null \
  && [ "$(cat "$out/.flags" 2>/dev/null)" = "$flags" ] && [ ! -e "$out/libggml-cpu-sapphirerapids.so" ]; then
  say "Already built: $out/llama-server (llama.cpp b$build)"; exit 0
fi
targets=(llama-server ggml-rpc-server llama-bench llama-quantize)
extra=()
builddir="$work/cmake-$target"
if $quick; then
  out="$root/.runtime/quick"
  stamp="$out/runtime.json"
  flags="$quick_flags"
  extra=("-DCMAKE_C_FLAGS=$no_amx" "-DCMAKE_CXX_FLAGS=$no_amx")
  if [ -x "$out/llama-server" ] && grep -q "\"llama_cpp_build\": $build" "$stamp" 2>/dev/null \
    && [ "$(cat "$out/.flags" 2>/dev/null)" = "$flags ${extra[*]}" ]; then
    say "Already built for this machine: $out/llama-server (llama.cpp b$build)"; exit 0
  fi
  targets=(llama-server)
  builddir="$work/cmake-$target-quick"
fi

# 1. Build tools from Debian (cmake; glslc and SPIR-V headers for the Vulkan shaders).
#    (On macOS the workflow installs its own.)
missing=()
[ "$target" = linux-x86_64 ] || missing=(skip)
for p in cmake glslc spirv-headers build-essential; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$target" = linux-x86_64 ] && [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  say "Installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. The pinned source, from the registry, checked against its sha256.
mkdir -p "$work"
sdist="$work/$(pin "['source']['file']")"
fetch() { # url dest sha256
  if [ ! -f "$2" ] || [ "$(sha256 "$2")" != "$3" ]; then
    say "Fetching $(basename "$2")"
    curl -fsSL --retry 3 -o "$2.tmp" "$1"
    [ "$(sha256 "$2.tmp")" = "$3" ] || { say "$(basename "$2") does not match its pinned sha256"; rm -f "$2.tmp"; exit 1; }
    mv "$2.tmp" "$2"
  fi
}
if [ ! -f "$sdist" ]; then
  url="$(python3 - "$(pin "['source']['package']")" "$(pin "['source']['file']")" <<'PY'
import json, sys, urllib.request
pkg, file = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"https://pypi.org/simple/{pkg}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(req, timeout=60))["files"]
print(next(f["url"] for f in files if f["filename"] == file))
PY
)"
  fetch "$url" "$sdist" "$(pin "['source']['sha256']")"
fi
[ "$(sha256 "$sdist")" = "$(pin "['source']['sha256']")" ] || { say "$sdist does not match its pinned sha256"; exit 1; }
src="$work/src-$version"
if [ ! -f "$src/llama.cpp/CMakeLists.txt" ]; then
  say "Unpacking llama.cpp b$build"
  rm -rf "$src" && mkdir -p "$src"
  tar xzf "$sdist" -C "$src" --strip-components=1
  # No git metadata in an sdist: record the pinned build instead of letting cmake find
  # Kindling's own repository around it.
  info="$src/llama.cpp/cmake/build-info.cmake"
  sed "s/^set(BUILD_NUMBER 0)/set(BUILD_NUMBER $build)/" "$info" > "$info.new" && mv "$info.new" "$info"
fi

# 3. Vulkan: headers new enough for ggml-vulkan and the loader to link against.
$quick || command -v npm >/dev/null 2>&1 || { say "npm is missing (the server's chat page is built with it): install Node.js 20 or newer"; exit 1; }
vulkan=()
$quick || case "$target" in
  linux-x86_64)
    # Debian 13's headers, unpacked here, not installed; Debian 12's loader.
    sdk="$work/vulkan-headers"
    if [ ! -f "$sdk/usr/include/vulkan/vulkan.hpp" ]; then
      fetch "$(pin "['linux']['vulkan_headers']['url']")" "$work/libvulkan-dev.deb" "$(pin "['linux']['vulkan_headers']['sha256']")"
      rm -rf "$sdk" && dpkg-deb -x "$work/libvulkan-dev.deb" "$sdk"
    fi
    loader="$(ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null || true)"
    [ -n "$loader" ] || { say "The Vulkan loader (Debian's libvulkan1) is missing: apt-get install libvulkan1"; exit 1; }
    vulkan=(-DVulkan_INCLUDE_DIR="$sdk/usr/include" -DVulkan_LIBRARY="$loader") ;;
  macos-x86_64)
    : "${KINDLING_VULKAN_PREFIX:?the Vulkan loader and headers built for the floor in runtime.toml (installer/macos-vulkan.sh)}"
    : "${KINDLING_MOLTENVK_DIR:?MoltenVK from the Khronos release (see the release workflow)}"
    vulkan=(-DVulkan_INCLUDE_DIR="$KINDLING_VULKAN_PREFIX/include" -DVulkan_LIBRARY="$KINDLING_VULKAN_PREFIX/lib/libvulkan.1.dylib") ;;
esac

# 4. Configure and build (GIT_CEILING_DIRECTORIES keeps cmake from reading Kindling's git).
if $quick; then
  say "Building llama-server for this machine's processor (a few minutes; the full runtime comes with make test)"
else
  say "Building ${targets[*]} for $target (a long step: about 10 minutes on 2 cores)"
fi
start=$(date +%s)
# shellcheck disable=SC2046
GIT_CEILING_DIRECTORIES="$work" cmake -S "$src/llama.cpp" -B "$builddir" $flags \
  ${vulkan[@]+"${vulkan[@]}"} ${extra[@]+"${extra[@]}"} >"$work/configure.log" 2>&1 \
  || { tail -30 "$work/configure.log"; exit 1; }
GIT_CEILING_DIRECTORIES="$work" cmake --build "$builddir" --target "${targets[@]}" -j "$(cpus)" >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; exit 1; }
took=$(( $(date +%s) - start ))

# 5. The runtime: binaries and their libraries side by side (RUNPATH $ORIGIN, or
#    @executable_path), and a manifest saying what it is.
rm -rf "$out" && mkdir -p "$out"
# llama-quantize is for the tests (the showdown's quant ladder of the sample model); the
# package ships only llama-server.
for t in "${targets[@]}"; do cp "$builddir/bin/$t" "$out/"; done
find "$builddir" \( -name '*.so*' -o -name '*.dylib' \) \( -path '*/bin/*' -o -path '*/src/*' -o -path '*/ggml/src/*' \) -exec cp -P {} "$out/" \; 2>/dev/null || true
# The AMX variant is left out: on virtual machines that report AMX but do not enable it
# (this project's CI kind, seen in dmesg as "invalid opcode ... tilezero" in
# libggml-cpu-sapphirerapids.so) ggml picks it and every server dies with SIGILL. No
# Mac has AMX, so no owner loses anything; ggml takes the next variant the CPU runs.
rm -f "$out/libggml-cpu-sapphirerapids.so"
moltenvk=null
if [ "$target" = macos-x86_64 ]; then
  # The loader and MoltenVK travel with the runtime; the driver manifest names the
  # library beside it (the app bundle's copy names ../Frameworks; see package.sh).
  cp "$KINDLING_VULKAN_PREFIX/lib/libvulkan.1.dylib" "$KINDLING_MOLTENVK_DIR/libMoltenVK.dylib" "$out/"
  cat > "$out/MoltenVK_icd.json" <<ICD
{ "file_format_version": "1.0.0",
  "ICD": { "library_path": "./libMoltenVK.dylib", "api_version": "1.4.0", "is_portability_driver": true } }
ICD
  moltenvk="\"${KINDLING_MOLTENVK_VERSION:-unknown}\""
fi
case "$target" in
  linux-*)
    if $quick; then backends="cpu-native"; target="linux-x86_64-this-machine"
    else backends="$(cd "$out" && ls libggml-*.so 2>/dev/null | sed 's/libggml-\(.*\)\.so/\1/' | grep -v '^base$' | paste -sd, -)"; fi ;;
  macos-x86_64) backends="cpu,vulkan" ;;
  macos-arm64) backends="cpu,metal" ;;
esac
cat > "$stamp" <<JSON
{
  "llama_cpp_build": $build,
  "llama_cpp_commit": "$(pin "['source']['commit']")",
  "source": "$(pin "['source']['registry']") $(pin "['source']['package']")==$version",
  "target": "$target",
  "backends": "$backends",
  "moltenvk": $moltenvk,
  "build_seconds": $took
}
JSON
echo "$flags${extra[*]:+ ${extra[*]}}" > "$out/.flags"
"$out/llama-server" --version 2>&1 | tail -2
say "Built in ${took}s: $out/llama-server (backends: $backends)"
