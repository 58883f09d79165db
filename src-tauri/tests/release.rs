//! The macOS release's bookkeeping, run here on Linux with the very scripts the release
//! workflow runs on the Macs and the publishing job (`.github/workflows/release.yml`):
//! the signing decision from the secrets, the tag against the app's version, the assets'
//! names and `latest.json`, and the Mach-O check against recorded `otool` outputs of real
//! binaries (`installer/fixtures/macho`, sources in its SOURCES.md). What only a Mac can
//! run (the build, codesign, the bundled runtime) is not here.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    support::repo()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `installer/release.py ARGS` in the repository.
fn release(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join("installer/release.py"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn app_version() -> String {
    let conf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("src-tauri/tauri.conf.json")).unwrap(),
    )
    .unwrap();
    conf["version"].as_str().unwrap().to_string()
}

/// The updater signature carries the app's version: a tag that names another one would
/// ship an update every installed copy refuses, and is offered again every day.
#[test]
fn the_tag_must_name_the_apps_one_version() {
    let version = app_version();
    let ok = release(&["version", &format!("v{version}")]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), version);
    let no_tag = release(&["version"]);
    assert!(
        no_tag.status.success(),
        "a dispatch run has no tag: {}",
        text(&no_tag)
    );
    let wrong = release(&["version", "v99.0.0"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong).contains("does not name the app's version"),
        "{}",
        text(&wrong)
    );
}

/// `bash -c 'source macos-signing.sh; signing_setup; ...'` with exactly `env`; returns
/// whether it succeeded and what it printed (the mode, identity, hardened flag and the
/// APPLE_* variables left for Tauri).
fn signing(env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "source installer/macos-signing.sh && signing_setup && \
             echo \"mode=$signing_mode identity=[$signing_identity] hardened=$signing_hardened\" && \
             (env | grep '^APPLE_' | cut -d= -f1 | sort | tr '\\n' ' '; echo)",
        )
        .current_dir(repo())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// Unset secrets reach the job as empty variables, and Tauri signs (and notarizes) by
/// their presence: the first ad-hoc run failed importing an empty certificate.
#[test]
fn empty_secrets_mean_ad_hoc_and_a_half_set_group_is_refused() {
    let empty: Vec<(&str, &str)> = [
        "APPLE_CERTIFICATE",
        "APPLE_CERTIFICATE_PASSWORD",
        "APPLE_SIGNING_IDENTITY",
        "APPLE_ID",
        "APPLE_PASSWORD",
        "APPLE_TEAM_ID",
        "APPLE_API_KEY",
        "APPLE_API_ISSUER",
        "APPLE_API_KEY_P8_BASE64",
    ]
    .into_iter()
    .map(|v| (v, ""))
    .collect();
    let (ok, out) = signing(&empty);
    assert!(ok, "{out}");
    assert!(
        out.contains("mode=ad-hoc identity=[-] hardened=false"),
        "{out}"
    );
    assert!(
        !out.contains("APPLE_"),
        "no empty APPLE_* variable is left for Tauri: {out}"
    );

    let (ok, out) = signing(&[
        ("APPLE_CERTIFICATE", "MIIC..."),
        ("APPLE_SIGNING_IDENTITY", ""),
    ]);
    assert!(!ok, "a certificate alone is refused: {out}");
    assert!(
        out.contains("APPLE_CERTIFICATE_PASSWORD APPLE_SIGNING_IDENTITY missing"),
        "{out}"
    );

    let (ok, out) = signing(&[
        ("APPLE_ID", "me@example.com"),
        ("APPLE_PASSWORD", "p"),
        ("APPLE_TEAM_ID", "ABCDE12345"),
    ]);
    assert!(!ok, "notarizing an unsigned app is refused: {out}");
    assert!(out.contains("Notarization needs a signed app"), "{out}");
}

#[test]
fn an_api_key_secret_becomes_the_file_tauri_wants() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "-----BEGIN PRIVATE KEY-----\nMIGTAgEA\n-----END PRIVATE KEY-----\n";
    let encoded = {
        let out = Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(key.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (ok, out) = signing(&[
        ("APPLE_CERTIFICATE", "MIIC..."),
        ("APPLE_CERTIFICATE_PASSWORD", "pw"),
        (
            "APPLE_SIGNING_IDENTITY",
            "Developer ID Application: Kindling (ABCDE12345)",
        ),
        ("APPLE_API_KEY", "KEY123"),
        ("APPLE_API_ISSUER", "69a6de7e-0000-0000-0000-000000000000"),
        ("APPLE_API_KEY_P8_BASE64", &encoded),
        ("APPLE_ID", ""),
        ("APPLE_PASSWORD", ""),
        ("APPLE_TEAM_ID", ""),
        ("RUNNER_TEMP", tmp.path().to_str().unwrap()),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("mode=notarized identity=[Developer ID Application: Kindling (ABCDE12345)] hardened=true"),
        "{out}"
    );
    assert!(
        out.contains("APPLE_API_KEY_PATH")
            && !out.contains("APPLE_ID ")
            && !out.contains("APPLE_API_KEY_P8_BASE64"),
        "the key's path is handed on, the empty Apple ID triple and the key's text are not: {out}"
    );
    let written = tmp.path().join("AuthKey_KEY123.p8");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), key);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A fake `target/release/bundle` as `tauri build` leaves it on a Mac.
fn bundle(dir: &Path, dmg: &str, updater: bool) {
    std::fs::create_dir_all(dir.join("dmg")).unwrap();
    std::fs::write(dir.join("dmg").join(dmg), b"dmg bytes").unwrap();
    if updater {
        std::fs::create_dir_all(dir.join("macos")).unwrap();
        std::fs::write(dir.join("macos/Kindling.app.tar.gz"), b"archive").unwrap();
        std::fs::write(
            dir.join("macos/Kindling.app.tar.gz.sig"),
            format!("sig of {dmg}\n"),
        )
        .unwrap();
    }
}

/// upload-artifact roots a several-path artifact at their common ancestor, so the .dmg
/// arrived as dist/<artifact>/dmg/*.dmg and the publish glob dist/*/*.dmg never matched.
#[test]
fn the_assets_get_the_readmes_names_and_latest_json_covers_every_mac() {
    let t = tempfile::tempdir().unwrap();
    let version = app_version();
    let tag = format!("v{version}");
    for (target, dmg) in [
        ("macos-x86_64", format!("Kindling_{version}_x64.dmg")),
        ("macos-arm64", format!("Kindling_{version}_aarch64.dmg")),
    ] {
        let built = t.path().join(target).join("bundle");
        bundle(&built, &dmg, true);
        // What download-artifact lays out: one folder per artifact.
        let dist = t.path().join("dist").join(format!("Kindling-{target}"));
        let out = release(&[
            "stage",
            target,
            built.to_str().unwrap(),
            dist.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let out_dir = t.path().join("release");
    let out = release(&[
        "publish",
        t.path().join("dist").to_str().unwrap(),
        out_dir.to_str().unwrap(),
        &tag,
        "kindling/kindling",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            Path::new(l)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        files,
        [
            "Kindling-macos-x86_64.dmg",
            "Kindling-macos-x86_64.app.tar.gz",
            "Kindling-macos-arm64.dmg",
            "Kindling-macos-arm64.app.tar.gz",
            "latest.json"
        ]
    );
    for dmg in &files[..1] {
        assert!(readme.contains(dmg.as_str()), "the README names {dmg}");
    }
    assert!(readme.contains("Kindling-macos-arm64.dmg"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("latest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["version"], version.as_str());
    assert_eq!(
        manifest["platforms"]["darwin-x86_64"]["url"],
        format!("https://github.com/kindling/kindling/releases/download/{tag}/Kindling-macos-x86_64.app.tar.gz").as_str()
    );
    assert_eq!(
        manifest["platforms"]["darwin-aarch64"]["signature"],
        format!("sig of Kindling_{version}_aarch64.dmg").as_str()
    );

    // A leg that failed uploads nothing: nothing is released.
    std::fs::remove_dir_all(t.path().join("dist/Kindling-macos-arm64")).unwrap();
    let out = release(&[
        "publish",
        t.path().join("dist").to_str().unwrap(),
        t.path().join("again").to_str().unwrap(),
        &tag,
        "kindling/kindling",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("No .dmg for macos-arm64"),
        "{}",
        text(&out)
    );

    // A build without a .dmg fails where it is made.
    let out = release(&[
        "stage",
        "macos-arm64",
        t.path().join("nothing").to_str().unwrap(),
        t.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// Builds without the updater keys publish no half manifest.
#[test]
fn builds_without_updater_keys_publish_no_manifest() {
    let t = tempfile::tempdir().unwrap();
    let version = app_version();
    for target in ["macos-x86_64", "macos-arm64"] {
        let built = t.path().join(target);
        bundle(&built, "Kindling.dmg", false);
        let out = release(&[
            "stage",
            target,
            built.to_str().unwrap(),
            t.path().join("dist").join(target).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = release(&[
        "publish",
        t.path().join("dist").to_str().unwrap(),
        t.path().join("out").to_str().unwrap(),
        &format!("v{version}"),
        "kindling/kindling",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!t.path().join("out/latest.json").exists());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

/// The bundle check, on recorded outputs of real binaries: a library linked by a build
/// machine's path is refused, and only the load command that says so gives the oldest
/// macOS (a `version` line of LC_SOURCE_VERSION once read as "needs macOS 1230.1").
#[test]
fn the_mach_o_check_reads_real_otool_outputs() {
    let fixtures = repo().join("installer/fixtures/macho");
    let check = |floor: &str| {
        Command::new("python3")
            .arg(repo().join("installer/macho_check.py"))
            .args(["--recorded", floor])
            .arg(&fixtures)
            .output()
            .unwrap()
    };
    let intel = check("12.0");
    assert_eq!(intel.status.code(), Some(1));
    let errors: Vec<String> = String::from_utf8_lossy(&intel.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("cmsis-csolution needs macOS 12.6, newer than this build's floor 12.0"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("srcml-libsrcml links /usr/local/lib/libsrcml.dylib"),
        "{errors:?}"
    );
    let arm = check("13.3");
    let errors = String::from_utf8_lossy(&arm.stdout).into_owned();
    assert!(
        !errors.contains("needs macOS") && errors.contains("/usr/local/lib/libsrcml.dylib"),
        "12.6 runs on a 13.3 floor; /usr/lib libraries are the system's: {errors}"
    );
}

/// The runtime the packages carry links no OpenSSL (the macOS builds linked Homebrew's
/// by absolute path; the .deb needed an undeclared libssl3).
#[test]
fn the_runtime_links_no_openssl() {
    let built = repo().join(".runtime/built");
    let libs: Vec<PathBuf> = std::fs::read_dir(&built)
        .expect("the runtime is built: make runtime")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".so") || n == "llama-server")
        })
        .collect();
    assert!(libs.len() > 3, "{libs:?}");
    for lib in &libs {
        let out = Command::new("readelf").arg("-d").arg(lib).output().unwrap();
        let dynamic = String::from_utf8_lossy(&out.stdout);
        assert!(
            !dynamic.contains("libssl") && !dynamic.contains("libcrypto"),
            "{} needs OpenSSL:\n{dynamic}",
            lib.display()
        );
    }
}

/// The overlay `make package` builds the Mac bundle with, made here as on the runner: the
/// runtime's manifest goes to Resources (the app read a MoltenVK it could not see), the
/// floor is the Intel build's, the kindling command rides along, a key secret saved with
/// a trailing newline stays a valid value, and without keys the app does not update.
#[test]
fn the_mac_overlay_carries_the_manifest_the_floor_and_the_command() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for f in ["libllama.0.dylib", "libMoltenVK.dylib", "runtime.json"] {
        std::fs::write(lib.join(f), b"").unwrap();
    }
    std::fs::write(t.path().join("MoltenVK_icd.json"), b"{}").unwrap();
    let overlay = |env: &[(&str, &str)], system: &str| -> serde_json::Value {
        let out = Command::new("python3")
            .arg(repo().join("installer/tauri_overlay.py"))
            .args([system, lib.to_str().unwrap(), t.path().to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mac = overlay(
        &[
            ("FLOOR", "12.0"),
            ("IDENTITY", "-"),
            ("HARDENED", "false"),
            ("KINDLING_UPDATER_PUBKEY", "dW50cnVzdGVkIGNvbW1lbnQ=\n"),
            ("KINDLING_UPDATE_URL", "https://example.invalid/latest.json"),
        ],
        "Darwin",
    );
    let bundle = &mac["bundle"];
    assert_eq!(bundle["macOS"]["minimumSystemVersion"], "12.0");
    assert_eq!(bundle["macOS"]["signingIdentity"], "-");
    assert_eq!(bundle["macOS"]["hardenedRuntime"], false);
    assert_eq!(
        bundle["externalBin"],
        serde_json::json!([
            "binaries/llama-server",
            "binaries/ggml-rpc-server",
            "binaries/kindling"
        ])
    );
    let resources = bundle["resources"].as_object().unwrap();
    let names: Vec<&str> = resources.values().map(|v| v.as_str().unwrap()).collect();
    assert!(
        names.contains(&"runtime.json") && names.contains(&"MoltenVK_icd.json"),
        "{names:?}"
    );
    assert_eq!(bundle["macOS"]["frameworks"].as_array().unwrap().len(), 2);
    assert_eq!(
        mac["plugins"]["updater"]["pubkey"], "dW50cnVzdGVkIGNvbW1lbnQ=",
        "the trailing newline is gone"
    );
    let no_keys = overlay(
        &[("FLOOR", "13.3"), ("IDENTITY", "-"), ("HARDENED", "false")],
        "Darwin",
    );
    assert_eq!(no_keys["bundle"]["createUpdaterArtifacts"], false);
    assert_eq!(no_keys["plugins"], serde_json::json!({}));
    let deb = overlay(&[], "Linux");
    assert_eq!(
        deb["bundle"]["linux"]["deb"]["depends"],
        serde_json::json!(["libvulkan1", "libgomp1"])
    );
    assert_eq!(
        deb["bundle"]["shortDescription"],
        "Run AI models on the computer you already have"
    );
}
