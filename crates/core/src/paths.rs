//! Where Kindling keeps its state: one home folder holding the database, settings,
//! downloaded models and logs. `KINDLING_HOME` redirects all of it (tests use a temp dir).

use std::path::{Path, PathBuf};

/// The folders and files Kindling owns.
#[derive(Debug, Clone)]
pub struct Paths {
    home: PathBuf,
}

impl Paths {
    /// Paths under an explicit home folder.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Paths { home: home.into() }
    }

    /// `KINDLING_HOME` when set, otherwise the platform's per-user data folder
    /// (`~/Library/Application Support/Kindling` on macOS, `~/.local/share/kindling` on Linux).
    pub fn from_env() -> Self {
        if let Some(home) = std::env::var_os("KINDLING_HOME").filter(|v| !v.is_empty()) {
            return Paths::new(home);
        }
        let home = directories::ProjectDirs::from("app", "Kindling", "Kindling")
            .map(|d| d.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".kindling"));
        Paths::new(home)
    }

    pub fn home(&self) -> &Path {
        &self.home
    }
    /// The history database (SQLite).
    pub fn database(&self) -> PathBuf {
        self.home.join("kindling.db")
    }
    /// User settings (TOML).
    pub fn settings(&self) -> PathBuf {
        self.home.join("settings.toml")
    }
    /// Catalog additions (families the built-in catalog lacks; see
    /// `Catalog::with_additions`).
    pub fn catalog_additions(&self) -> PathBuf {
        self.home.join("catalog.toml")
    }
    /// Models Kindling downloaded itself.
    pub fn models(&self) -> PathBuf {
        self.home.join("models")
    }
    /// Server logs kept after a run, for "what went wrong".
    pub fn logs(&self) -> PathBuf {
        self.home.join("logs")
    }
    /// One record per llama-server a Kindling of this home started, naming the process
    /// that owns it (see [`crate::server::owners`]).
    pub fn servers(&self) -> PathBuf {
        self.home.join("servers")
    }

    /// The chat formats Kindling asks template-less models in, written at launch
    /// (see [`crate::chat_format`]).
    pub fn chat_formats(&self) -> PathBuf {
        self.home.join("chat-formats")
    }

    /// The key other devices send when network access is on (mode 0600).
    pub fn api_key(&self) -> PathBuf {
        self.home.join("api-key")
    }

    /// This Mac's key for the Macs it pairs with (see [`crate::peers::identity`]).
    pub fn peer_key(&self) -> PathBuf {
        self.home.join("peer-key")
    }
    /// The Macs this one paired with (see [`crate::peers::book`]).
    pub fn peers(&self) -> PathBuf {
        self.home.join("peers.json")
    }
    /// The tensors a helper keeps for the Macs it lends memory to (llama.cpp's RPC
    /// cache), bounded by Kindling (see [`crate::peers::share`]).
    pub fn rpc_cache(&self) -> PathBuf {
        self.home.join("rpc-cache")
    }

    /// Creates the home folder and its subfolders.
    pub fn ensure(&self) -> std::io::Result<()> {
        for dir in [
            self.home.clone(),
            self.models(),
            self.logs(),
            self.servers(),
        ] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` readable by its owner only, atomically (temp file, fsync,
/// rename): a crash leaves the old file or the new one, never half of one. tempfile
/// creates with mode 0600 on Unix, so the content is never readable by others, not even
/// for the moment before the rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
