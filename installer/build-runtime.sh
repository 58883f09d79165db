#!/usr/bin/env bash
# Builds llama-server and llama-bench from the pinned llama.cpp source
# (installer/runtime.toml) for this machine's target, into .runtime/built/, with a
# manifest (runtime.json) beside the binary. `make runtime` runs it. Idempotent: a
# finished build of the same pin is kept.
#
# Targets and their flags (one place):
#   linux-x86_64   Vulkan + every CPU variant chosen at run time (GGML_NATIVE would die
#                  with "Illegal instruction" on machines unlike the builder)
#   macos-x86_64   Vulkan over MoltenVK >= 1.4.2, Metal off, deployment target 13.3
#   macos-arm64    Metal, library embedded
# Only linux-x86_64 can be built here; the macOS flags are what the release workflow
# passes (they are printed with --print-flags TARGET).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/.runtime/build"
out="$root/.runtime/built"
say() { printf '==> %s\n' "$*"; }
pin() { python3 -c "import tomllib,sys; d=tomllib.load(open('$root/installer/runtime.toml','rb')); print(eval('d'+sys.argv[1]))" "$1"; }

common_flags=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=ON)
flags_for() {
  case "$1" in
    linux-x86_64) echo "${common_flags[*]} -DGGML_VULKAN=ON -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_RPATH=\$ORIGIN -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" ;;
    macos-x86_64) echo "${common_flags[*]} -DGGML_VULKAN=ON -DGGML_METAL=OFF -DGGML_OPENMP=OFF -DCMAKE_OSX_DEPLOYMENT_TARGET=13.3 -DCMAKE_OSX_ARCHITECTURES=x86_64 -DCMAKE_INSTALL_RPATH=@executable_path -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" ;;
    macos-arm64) echo "${common_flags[*]} -DGGML_METAL=ON -DGGML_METAL_EMBED_LIBRARY=ON -DCMAKE_OSX_DEPLOYMENT_TARGET=13.3 -DCMAKE_OSX_ARCHITECTURES=arm64 -DCMAKE_INSTALL_RPATH=@executable_path -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" ;;
    *) echo "unknown target $1" >&2; return 1 ;;
  esac
}
if [ "${1:-}" = "--print-flags" ]; then flags_for "$2"; exit 0; fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=linux-x86_64 ;;
  *) say "This script builds the Linux runtime; the macOS ones are built by .github/workflows (flags: $0 --print-flags macos-x86_64)."; exit 1 ;;
esac
version="$(pin "['source']['version']")"
build="$(pin "['source']['build']")"
stamp="$out/runtime.json"
if [ -x "$out/llama-server" ] && grep -q "\"llama_cpp_build\": $build" "$stamp" 2>/dev/null; then
  say "Already built: $out/llama-server (llama.cpp b$build)"; exit 0
fi

# 1. Build tools from Debian (cmake; glslc and SPIR-V headers for the Vulkan shaders).
missing=()
for p in cmake glslc spirv-headers build-essential; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  say "Installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. The pinned source, from the registry, checked against its sha256.
mkdir -p "$work"
sdist="$work/$(pin "['source']['file']")"
fetch() { # url dest sha256
  if [ ! -f "$2" ] || ! echo "$3  $2" | sha256sum -c --quiet - 2>/dev/null; then
    say "Fetching $(basename "$2")"
    curl -fsSL --retry 3 -o "$2.tmp" "$1"
    echo "$3  $2.tmp" | sha256sum -c --quiet - || { say "$(basename "$2") does not match its pinned sha256"; rm -f "$2.tmp"; exit 1; }
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
echo "$(pin "['source']['sha256']")  $sdist" | sha256sum -c --quiet -
src="$work/src-$version"
if [ ! -f "$src/llama.cpp/CMakeLists.txt" ]; then
  say "Unpacking llama.cpp b$build"
  rm -rf "$src" && mkdir -p "$src"
  tar xzf "$sdist" -C "$src" --strip-components=1
  # No git metadata in an sdist: record the pinned build instead of letting cmake find
  # Kindling's own repository around it.
  sed -i "s/^set(BUILD_NUMBER 0)/set(BUILD_NUMBER $build)/" "$src/llama.cpp/cmake/build-info.cmake"
fi

# 3. Vulkan headers new enough for ggml-vulkan (unpacked here, not installed).
sdk="$work/vulkan-headers"
if [ ! -f "$sdk/usr/include/vulkan/vulkan.hpp" ]; then
  fetch "$(pin "['linux']['vulkan_headers']['url']")" "$work/libvulkan-dev.deb" "$(pin "['linux']['vulkan_headers']['sha256']")"
  rm -rf "$sdk" && dpkg-deb -x "$work/libvulkan-dev.deb" "$sdk"
fi
loader="$(ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null || true)"
[ -n "$loader" ] || { say "The Vulkan loader (Debian's libvulkan1) is missing: apt-get install libvulkan1"; exit 1; }

# 4. Configure and build (GIT_CEILING_DIRECTORIES keeps cmake from reading Kindling's git).
say "Building llama-server and llama-bench for $target (a long step: about 15 minutes on 2 cores)"
start=$(date +%s)
# shellcheck disable=SC2046
GIT_CEILING_DIRECTORIES="$work" cmake -S "$src/llama.cpp" -B "$work/cmake-$target" $(flags_for "$target") \
  -DVulkan_INCLUDE_DIR="$sdk/usr/include" -DVulkan_LIBRARY="$loader" >"$work/configure.log" 2>&1 \
  || { tail -30 "$work/configure.log"; exit 1; }
GIT_CEILING_DIRECTORIES="$work" cmake --build "$work/cmake-$target" --target llama-server llama-bench -j "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; exit 1; }
took=$(( $(date +%s) - start ))

# 5. The runtime: binaries and their libraries side by side (RUNPATH $ORIGIN), and a
#    manifest saying what it is.
rm -rf "$out" && mkdir -p "$out"
cp "$work/cmake-$target/bin/llama-server" "$work/cmake-$target/bin/llama-bench" "$out/"
cp -P "$work/cmake-$target"/bin/*.so* "$out/" 2>/dev/null || true
find "$work/cmake-$target" -name '*.so*' \( -path '*/bin/*' -o -path '*/src/*' -o -path '*/ggml/src/*' \) -exec cp -P {} "$out/" \; 2>/dev/null || true
backends="$(cd "$out" && ls libggml-*.so 2>/dev/null | sed 's/libggml-\(.*\)\.so/\1/' | grep -v '^base$' | paste -sd, -)"
cat > "$stamp" <<JSON
{
  "llama_cpp_build": $build,
  "llama_cpp_commit": "$(pin "['source']['commit']")",
  "source": "$(pin "['source']['registry']") $(pin "['source']['package']")==$version",
  "target": "$target",
  "backends": "$backends",
  "moltenvk": null,
  "build_seconds": $took
}
JSON
"$out/llama-server" --version 2>&1 | tail -2
say "Built in ${took}s: $out/llama-server (backends: $backends)"
