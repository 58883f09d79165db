#!/usr/bin/env python3
"""The release workflow's bookkeeping, out of the YAML so that `make test` runs it on Linux.

  release.py version [TAG]
      The app's one version (src-tauri/tauri.conf.json, which must equal the workspace
      Cargo.toml's). With TAG (`v0.2.0`, a pushed tag), fails unless TAG names that very
      version: the updater signature carries the app's version and every installed copy
      refuses an update announced under another one.
  release.py stage TARGET BUNDLE_DIR OUT_DIR
      After `tauri build` on a Mac: copies the .dmg (and, when the updater keys made one,
      the update archive and its signature) into OUT_DIR under the names the README
      uses: Kindling-TARGET.dmg, Kindling-TARGET.app.tar.gz(.sig). Fails without a .dmg.
  release.py publish DIST OUT_DIR TAG REPOSITORY
      On the publishing job: finds what each macOS job staged, wherever the artifact
      download put it (upload-artifact roots an artifact at its paths' common ancestor),
      copies the assets flat into OUT_DIR, writes latest.json when every target has a
      signed update archive, and prints the files to release, one per line. Fails when a
      target's .dmg is missing.

Python's standard library only (3.9+: the macOS runners' and Debian's).
"""

import json
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = {"macos-x86_64": "darwin-x86_64", "macos-arm64": "darwin-aarch64"}


class Refused(Exception):
    """A condition the release must not go past; the message says what to fix."""


def app_version(root=ROOT):
    conf = json.loads((root / "src-tauri" / "tauri.conf.json").read_text())["version"]
    cargo = None
    section = None
    for line in (root / "Cargo.toml").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[workspace.package]" and line.startswith("version"):
            cargo = line.split("=", 1)[1].strip().strip('"')
    if cargo != conf:
        raise Refused(
            f"src-tauri/tauri.conf.json says {conf} but Cargo.toml's [workspace.package] says "
            f"{cargo}: make them the same version."
        )
    return conf


def check_tag(tag, root=ROOT):
    version = app_version(root)
    if tag and tag.lstrip("v") != version:
        raise Refused(
            f"The tag {tag} does not name the app's version {version}: every installed Kindling "
            f"would refuse this update (its signature carries {version}). Set the version in "
            f"src-tauri/tauri.conf.json and Cargo.toml to {tag.lstrip('v')}, or tag v{version}."
        )
    return version


def asset_name(target, suffix):
    if target not in TARGETS:
        raise Refused(f"Unknown target {target}; expected one of {', '.join(TARGETS)}.")
    return f"Kindling-{target}{suffix}"


def stage(target, bundle_dir, out_dir):
    bundle_dir, out_dir = pathlib.Path(bundle_dir), pathlib.Path(out_dir)
    dmgs = sorted(bundle_dir.glob("dmg/*.dmg"))
    if len(dmgs) != 1:
        raise Refused(f"Expected one .dmg in {bundle_dir}/dmg, found {len(dmgs)}: {dmgs}")
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = [shutil.copyfile(dmgs[0], out_dir / asset_name(target, ".dmg"))]
    archives = sorted(bundle_dir.glob("macos/*.app.tar.gz"))
    if archives:
        sig = pathlib.Path(str(archives[0]) + ".sig")
        if not sig.is_file():
            raise Refused(f"{archives[0]} has no signature beside it ({sig.name}).")
        staged.append(shutil.copyfile(archives[0], out_dir / asset_name(target, ".app.tar.gz")))
        staged.append(shutil.copyfile(sig, out_dir / asset_name(target, ".app.tar.gz.sig")))
    return [str(p) for p in staged]


def publish(dist, out_dir, tag, repository):
    dist, out_dir = pathlib.Path(dist), pathlib.Path(out_dir)
    version = check_tag(tag)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, platforms, missing = [], {}, []
    for target, platform in TARGETS.items():
        found = {
            suffix: sorted(dist.rglob(asset_name(target, suffix)))
            for suffix in (".dmg", ".app.tar.gz", ".app.tar.gz.sig")
        }
        if not found[".dmg"]:
            missing.append(target)
            continue
        for suffix in (".dmg", ".app.tar.gz"):
            if found[suffix]:
                dest = out_dir / asset_name(target, suffix)
                shutil.copyfile(found[suffix][0], dest)
                files.append(str(dest))
        if found[".app.tar.gz"] and found[".app.tar.gz.sig"]:
            platforms[platform] = {
                "signature": found[".app.tar.gz.sig"][0].read_text().strip(),
                "url": f"https://github.com/{repository}/releases/download/{tag}/"
                + asset_name(target, ".app.tar.gz"),
            }
    if missing:
        raise Refused(
            f"No .dmg for {', '.join(missing)} under {dist}: that build failed or uploaded "
            f"nothing; nothing is released."
        )
    if len(platforms) == len(TARGETS):
        manifest = out_dir / "latest.json"
        manifest.write_text(
            json.dumps({"version": version, "notes": f"Kindling {tag}", "platforms": platforms})
        )
        files.append(str(manifest))
    elif platforms:
        raise Refused(
            f"Only {', '.join(platforms)} has a signed update archive: an update manifest for "
            f"some Macs only would leave the others on 'no update for this Mac'. Check the "
            f"updater secrets of the build that made none."
        )
    else:
        print("No updater keys in these builds: no latest.json (they do not update themselves).", file=sys.stderr)
    return files


def main(argv):
    try:
        if argv[:1] == ["version"] and len(argv) <= 2:
            print(check_tag(argv[1] if len(argv) == 2 else ""))
        elif argv[:1] == ["stage"] and len(argv) == 4:
            print("\n".join(stage(*argv[1:])))
        elif argv[:1] == ["publish"] and len(argv) == 5:
            print("\n".join(publish(*argv[1:])))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Refused as e:
        print(f"::error::{e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
