#!/usr/bin/env bash
# `make icons`: every icon from the one source image, icons/kindling.svg.
#   src-tauri/icons/         the app icon set (PNG sizes, .icns for macOS, .ico), by the
#                            Tauri CLI
#   src-tauri/icons/tray-*   menu-bar icons, one per server state, as macOS template
#                            images: black on transparent (macOS tints them for light and
#                            dark menu bars), 44 px (22 pt at 2x)
#     stopped   the flame's outline
#     starting  the outline with the core lit
#     running   the whole flame
#     failed    the outline, struck through
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/icons/kindling.svg"
out="$root/src-tauri/icons"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
tauri="$root/ui/node_modules/.bin/tauri"
"$tauri" icon "$src" -o "$tmp/set" >/dev/null 2>&1
cp "$tmp/set/32x32.png" "$tmp/set/128x128.png" "$tmp/set/128x128@2x.png" "$tmp/set/icon.png" \
  "$tmp/set/icon.icns" "$tmp/set/icon.ico" "$out/"

flame="$(sed -n 's/.*id="flame" d="\([^"]*\)".*/\1/p' "$src")"
core="$(sed -n 's/.*id="core" d="\([^"]*\)".*/\1/p' "$src")"
tray() { # name, body
  cat > "$tmp/$1.svg" <<SVG
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" width="44" height="44">$2</svg>
SVG
  "$tauri" icon "$tmp/$1.svg" -o "$tmp/$1" --png 44 >/dev/null 2>&1
  cp "$tmp/$1/44x44.png" "$out/tray-$1.png"
}
outline="<path d=\"$flame\" fill=\"none\" stroke=\"#000\" stroke-width=\"40\" stroke-linejoin=\"round\"/>"
tray stopped "$outline"
tray starting "$outline<path d=\"$core\" fill=\"#000\"/>"
tray running "<path d=\"$flame\" fill=\"#000\"/>"
tray failed "$outline<path d=\"M70 470 L442 60\" stroke=\"#000\" stroke-width=\"44\"/>"
echo "Icons written to $out"
