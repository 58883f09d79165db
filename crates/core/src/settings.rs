//! User settings: defaults, then the TOML file, then the environment.
//! Every field has a default and unknown fields are kept when the file is rewritten,
//! so a newer Kindling's settings survive an older one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Port the local API listens on unless the user picks another.
pub const DEFAULT_PORT: u16 = 11480;
/// Port of the second server (a large model on the processor) unless the user picks another.
pub const DEFAULT_SECOND_PORT: u16 = DEFAULT_PORT + 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct Settings {
    /// An explicit llama-server binary; wins over every other place Kindling looks.
    pub llama_server: Option<PathBuf>,
    /// Port for `serve` and the tray's server.
    pub port: u16,
    /// Context size the server is started with.
    pub ctx_size: u32,
    /// Layers to offload to the GPU; `None` lets Kindling decide (all when a GPU is usable).
    pub gpu_layers: Option<u32>,
    /// Threads for generation; `None` uses the physical core count.
    pub threads: Option<u32>,
    /// Extra folders (or files) holding GGUF models to use in place.
    pub model_folders: Vec<PathBuf>,
    /// Listen on every network interface (other devices may connect) instead of only
    /// this computer. Off by default; on, the server requires the key Kindling keeps in
    /// a file of its own ([`crate::Paths::api_key`]), never in this file.
    pub allow_network: bool,
    /// The one web origin (e.g. `https://app.example`) allowed to call the server from
    /// a browser, for owners who need one; `None`: only pages on this computer.
    pub cors_origin: Option<String>,
    /// What recommendations optimise for.
    pub goal: crate::recommend::Goal,
    /// The model the menu-bar server starts; `None` uses the recommended installed model.
    pub server_model: Option<PathBuf>,
    /// Minutes without a request after which the menu-bar server frees the model's memory
    /// (it loads it again on the next request); 0 keeps it loaded.
    pub sleep_after_minutes: u32,
    /// The model the second server runs on the processor beside the menu-bar one;
    /// `None` until the owner picks one.
    pub second_model: Option<PathBuf>,
    /// Port of the second server.
    pub second_port: u16,
    /// End a served answer that turns into garbage (a loop, special tokens) with an error
    /// instead of letting it run to its length limit. It is counted either way.
    pub end_bad_answers: bool,
    /// Minutes a night may spend settling a tie at the top of a quick showdown (both
    /// candidates answer the rest of the full suite); a tie that would take longer is
    /// left a tie, and the verdict says so. 0 never settles.
    pub tie_minutes: u32,
    /// Lend this Mac to paired Macs on battery too (by default only while plugged in).
    pub lend_on_battery: bool,
    /// Lend this Mac only while its lid is open.
    pub lend_lid_open_only: bool,
    /// The most memory a share of a model may take on this Mac when it lends itself,
    /// in bytes; 0: half of its memory.
    pub lend_memory_bytes: u64,
    /// Lend its GPU too (else only its processor and main memory).
    pub lend_gpu: bool,
    /// The paired Macs the menu-bar server is served with, as the owner last chose in
    /// "Use another Mac" (split or routed when the model does not fit here; empty: this
    /// Mac alone). Kept so that the next start, after a Stop or a relaunch, is the same.
    pub serve_with: Vec<String>,
    /// With `serve_with`: the most of this Mac's memory the model may take, in bytes;
    /// 0: all but what the system and other apps keep.
    pub serve_with_local_memory_bytes: u64,
    /// Fields this version does not know, kept verbatim.
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub extra: toml::Table,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            llama_server: None,
            port: DEFAULT_PORT,
            ctx_size: 4096,
            gpu_layers: None,
            threads: None,
            model_folders: Vec::new(),
            allow_network: false,
            cors_origin: None,
            goal: crate::recommend::Goal::Conversational,
            server_model: None,
            sleep_after_minutes: 30,
            second_model: None,
            second_port: DEFAULT_SECOND_PORT,
            end_bad_answers: true,
            tie_minutes: 120,
            lend_on_battery: false,
            lend_lid_open_only: false,
            lend_memory_bytes: 0,
            lend_gpu: true,
            serve_with: Vec::new(),
            serve_with_local_memory_bytes: 0,
            extra: toml::Table::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "Kindling could not read its settings at {path}: {source}. Check the file's permissions."
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The settings file {path} is not valid: {message}. Fix that line, or delete the file to go back to the defaults.")]
    Invalid { path: PathBuf, message: String },
    #[error("Kindling could not save its settings to {path}: {source}. Check free disk space and permissions.")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Settings {
    /// When this Mac lends itself, as its owner set it.
    pub fn lend_when(&self) -> crate::hardware::power::LendWhen {
        crate::hardware::power::LendWhen {
            plugged_in: !self.lend_on_battery,
            lid_open: self.lend_lid_open_only,
        }
    }

    /// The most memory this Mac lends a share of a model, with `ram` bytes in all: the
    /// owner's limit, else half of it.
    pub fn lend_memory(&self, ram: u64) -> u64 {
        match self.lend_memory_bytes {
            0 => ram / 2,
            limit => limit.min(ram),
        }
    }

    /// Reads settings from `path`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Settings::parse(&text).map_err(|message| SettingsError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the TOML text of a settings file.
    pub fn parse(text: &str) -> Result<Settings, String> {
        // The whole report, not only its last line: it quotes the line at fault, so
        // the owner sees which setting is wrong ("port = …", not just "invalid type").
        toml::from_str(text).map_err(|e| e.to_string().trim().to_string())
    }

    /// Writes settings atomically (temp file, then rename), so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write_err = |source| SettingsError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self).expect("settings always serialize to TOML");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README gave Ollama's port (11434) as the server's address.
    #[test]
    fn the_readme_gives_the_servers_real_address() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("the README is in the checkout");
        let address = format!("http://127.0.0.1:{DEFAULT_PORT}/v1");
        assert!(readme.contains(&address), "README names {address}");
        let other = regex_free_ports(&readme);
        assert!(
            other.iter().all(|p| *p == DEFAULT_PORT),
            "every http://127.0.0.1:PORT/v1 in the README is the default port: {other:?}"
        );
    }

    /// The ports of every `http://127.0.0.1:PORT/v1` in `text`.
    fn regex_free_ports(text: &str) -> Vec<u16> {
        text.split("http://127.0.0.1:")
            .skip(1)
            .filter_map(|rest| {
                let (port, tail) = rest.split_once('/')?;
                tail.starts_with("v1").then(|| port.parse().ok())?
            })
            .collect()
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Settings::parse("").unwrap(), Settings::default());
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let s = Settings::parse("port = 9000\nfuture_option = \"keep me\"\n").unwrap();
        assert_eq!(s.port, 9000);
        let text = toml::to_string(&s).unwrap();
        assert!(text.contains("future_option = \"keep me\""), "{text}");
    }

    #[test]
    fn a_bad_value_names_the_field() {
        let err = Settings::parse("ctx_size = 4096\nport = \"eighty\"").unwrap_err();
        assert!(err.contains("port = \"eighty\""), "names the line: {err}");
        assert!(err.contains("line 2"), "says where: {err}");
    }

    #[test]
    fn save_then_load_is_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        let s = Settings {
            llama_server: Some("/opt/llama-server".into()),
            gpu_layers: Some(12),
            ..Settings::default()
        };
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
    }

    #[test]
    fn missing_file_is_defaults_but_a_corrupt_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        std::fs::write(&path, "port = [").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(matches!(err, SettingsError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("delete the file"), "{err}");
    }
}
