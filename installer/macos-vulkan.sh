#!/usr/bin/env bash
# The Intel Mac build's Vulkan: the loader and headers built on the runner for the floor in
# installer/runtime.toml, and MoltenVK from the Khronos release, each checked against its
# pin there. Writes KINDLING_VULKAN_PREFIX, KINDLING_MOLTENVK_DIR and
# KINDLING_MOLTENVK_VERSION to $GITHUB_ENV for build-runtime.sh. Runs on a Mac only (the
# release workflow's Intel leg); glslc and SPIRV-Headers come from Homebrew, build-time only
# (Homebrew's shaderc keeps its own SPIRV-Headers private, and ggml-vulkan's CMake needs
# find_package(SPIRV-Headers)).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pin() { python3 -c "import tomllib,sys; d=tomllib.load(open('$root/installer/runtime.toml','rb')); print(eval('d'+sys.argv[1]))" "$1"; }
tmp="${RUNNER_TEMP:?run by the release workflow}"
floor="$(pin "['macos']['x86_64']['minimum']")"
tag="$(pin "['macos']['x86_64']['vulkan_loader_tag']")"
prefix="$tmp/vulkan"

brew install shaderc spirv-headers

checkout() { # URL TAG COMMIT DEST
  git clone --quiet --depth 1 --branch "$2" "$1" "$4"
  local got; got="$(git -C "$4" rev-parse HEAD)"
  [ "$got" = "$3" ] || { echo "::error::$1 $2 is $got, not the pinned $3"; exit 1; }
}
checkout https://github.com/KhronosGroup/Vulkan-Headers.git "$tag" "$(pin "['macos']['x86_64']['vulkan_headers_commit']")" "$tmp/headers"
cmake -S "$tmp/headers" -B "$tmp/headers/build" -DCMAKE_INSTALL_PREFIX="$prefix"
cmake --install "$tmp/headers/build"
checkout https://github.com/KhronosGroup/Vulkan-Loader.git "$tag" "$(pin "['macos']['x86_64']['vulkan_loader_commit']")" "$tmp/loader"
cmake -S "$tmp/loader" -B "$tmp/loader/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_OSX_DEPLOYMENT_TARGET="$floor" \
  -DCMAKE_OSX_ARCHITECTURES=x86_64 -DCMAKE_INSTALL_PREFIX="$prefix"
cmake --build "$tmp/loader/build" -j "$(sysctl -n hw.ncpu)"
cmake --install "$tmp/loader/build"

version="$(pin "['macos']['x86_64']['moltenvk']")"
want="$(pin "['macos']['x86_64']['moltenvk_sha256']")"
tarball="$tmp/MoltenVK-macos.tar"
curl -fsSL --retry 3 -o "$tarball" "https://github.com/KhronosGroup/MoltenVK/releases/download/v$version/MoltenVK-macos.tar"
got="$(shasum -a 256 "$tarball" | cut -d' ' -f1)"
if [ -z "$want" ]; then
  echo "::warning::MoltenVK-macos.tar $version is not pinned yet: its sha256 is $got. Put it in installer/runtime.toml (moltenvk_sha256)."
elif [ "$got" != "$want" ]; then
  echo "::error::MoltenVK-macos.tar $version has sha256 $got, not the pinned $want"; exit 1
fi
tar -xf "$tarball" -C "$tmp"
mvk="$(find "$tmp/MoltenVK" -path '*/dynamic/dylib/macOS/libMoltenVK.dylib' -type f -print -quit)"
[ -n "$mvk" ] && file -b "$mvk" | grep -q 'dynamically linked shared library' \
  || { echo "::error::no MoltenVK dylib at dynamic/dylib/macOS in the release tarball"; exit 1; }
{
  echo "KINDLING_VULKAN_PREFIX=$prefix"
  echo "KINDLING_MOLTENVK_DIR=$(dirname "$mvk")"
  echo "KINDLING_MOLTENVK_VERSION=$version"
} >> "${GITHUB_ENV:?run by the release workflow}"
