#!/usr/bin/env python3
"""The Tauri config overlay `make package` (installer/package.sh) builds the bundle with:
what only a package needs, on top of the committed src-tauri/tauri.conf.json.

  tauri_overlay.py Darwin|Linux LIB STAGE > overlay.json

LIB holds the runtime's libraries and runtime.json; STAGE may hold MoltenVK_icd.json.
From the environment: IDENTITY ("-" for ad hoc), HARDENED (true/false) and FLOOR (the
oldest macOS) on a Mac; KINDLING_UPDATER_PUBKEY and KINDLING_UPDATE_URL for updates.
Written with a JSON library: a secret with a trailing newline or a quote stays a value.
`make test` runs it for both systems (src-tauri/tests/release.rs).
"""

import glob
import json
import os
import sys


def overlay(system, lib, stage, env):
    bundle = {
        "externalBin": ["binaries/llama-server", "binaries/ggml-rpc-server", "binaries/kindling"]
    }
    out = {"bundle": bundle}
    if system == "Darwin":
        resources = {os.path.join(lib, "runtime.json"): "runtime.json"}
        icd = os.path.join(stage, "MoltenVK_icd.json")
        if os.path.exists(icd):
            resources[icd] = "MoltenVK_icd.json"
        bundle["resources"] = resources
        bundle["macOS"] = {
            "frameworks": sorted(glob.glob(os.path.join(lib, "*.dylib"))),
            "minimumSystemVersion": env["FLOOR"],
            "signingIdentity": env["IDENTITY"],
            "hardenedRuntime": env.get("HARDENED") == "true",
        }
        pubkey = env.get("KINDLING_UPDATER_PUBKEY", "").strip()
        url = env.get("KINDLING_UPDATE_URL", "").strip()
        updates = bool(pubkey and url)
        bundle["createUpdaterArtifacts"] = updates
        out["plugins"] = (
            {"updater": {"pubkey": pubkey, "endpoints": [url], "requireSignedVersion": True}}
            if updates
            else {}
        )
    else:
        # The app is the same on Linux, but a Linux machine is no Mac.
        bundle["shortDescription"] = "Run AI models on the computer you already have"
        bundle["linux"] = {
            "deb": {
                # No libssl: the runtime is built without OpenSSL (Kindling downloads
                # models itself; llama-server needs no TLS).
                "depends": ["libvulkan1", "libgomp1"],
                "files": {"/usr/lib/kindling": lib.rstrip("/") + "/"},
            }
        }
    return out


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    json.dump(overlay(sys.argv[1], sys.argv[2], sys.argv[3], os.environ), sys.stdout, indent=2)
    print()
