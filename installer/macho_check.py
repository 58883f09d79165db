#!/usr/bin/env python3
"""Checks Mach-O files the way an owner's Mac will meet them: every library they link is
inside the app (@rpath/, @executable_path/, @loader_path/) or the system's (/usr/lib/,
/System/), never a build machine's path (/opt/homebrew, /usr/local, $RUNNER_TEMP,
/Users/runner, which exist on the runner and so load fine in CI); and none needs a macOS
newer than the floor.

  macho_check.py FLOOR FILE...         on a Mac: asks otool about each file
  macho_check.py --recorded FLOOR DIR  reads recorded outputs: DIR/NAME.otool-L.txt and
                                       DIR/NAME.otool-l.txt (either may be missing)

Prints one ::error:: line per problem and exits 1 if there is any. otool runs to the end
of its output (no pipe to a reader that stops early: under pipefail that killed the old
check silently on long outputs).
"""

import pathlib
import subprocess
import sys

ALLOWED = ("@rpath/", "@executable_path/", "@loader_path/", "/usr/lib/", "/System/")


def linked(otool_L):
    """The install names `otool -L` lists (the first line names the file itself)."""
    names = []
    for line in otool_L.splitlines()[1:]:
        line = line.strip()
        if line:
            names.append(line.split(" (compatibility version")[0].strip())
    return names


def outside(names):
    return [n for n in names if not n.startswith(ALLOWED)]


def minimum_macos(otool_l):
    """The oldest macOS a file runs on: LC_BUILD_VERSION's `minos`, or
    LC_VERSION_MIN_MACOSX's `version`. Other commands' `version` fields (a tool's in
    LC_BUILD_VERSION, LC_SOURCE_VERSION's, a dylib's current version) mean nothing here."""
    command = None
    for line in otool_l.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "cmd":
            command = words[1]
        elif command == "LC_BUILD_VERSION" and words[0] == "minos":
            return words[1]
        elif command == "LC_VERSION_MIN_MACOSX" and words[0] == "version":
            return words[1]
    return None


def version_tuple(v):
    return tuple(int(p) for p in v.split("."))


def newer(version, floor):
    a, b = version_tuple(version), version_tuple(floor)
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) > b + (0,) * (width - len(b))


def problems(name, floor, otool_L=None, otool_l=None):
    found = []
    if otool_L is not None:
        for lib in outside(linked(otool_L)):
            found.append(f"{name} links {lib}, which an owner's Mac does not have (only the app's own libraries and the system's may be linked)")
    if otool_l is not None:
        minos = minimum_macos(otool_l)
        if minos is None:
            found.append(f"{name} says no minimum macOS version")
        elif newer(minos, floor):
            found.append(f"{name} needs macOS {minos}, newer than this build's floor {floor}")
    return found


def otool(flag, path):
    out = subprocess.run(["otool", flag, str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"::error::otool {flag} {path} failed: {out.stderr.strip()}")
    return out.stdout


def main(argv):
    if len(argv) == 3 and argv[0] == "--recorded":
        floor, folder = argv[1], pathlib.Path(argv[2])
        names = sorted({p.name.split(".otool-")[0] for p in folder.glob("*.otool-*.txt")})
        report = []
        for name in names:
            read = lambda kind: (folder / f"{name}.otool-{kind}.txt").read_text() if (folder / f"{name}.otool-{kind}.txt").exists() else None
            report += problems(name, floor, read("L"), read("l"))
    elif len(argv) >= 2 and not argv[0].startswith("-"):
        floor = argv[0]
        report = []
        for path in argv[1:]:
            report += problems(path, floor, otool("-L", path), otool("-l", path))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in report:
        print(f"::error::{p}")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
