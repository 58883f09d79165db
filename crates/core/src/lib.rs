//! kindling-core: every capability of Kindling, with no GUI or terminal code.
//!
//! Each binary builds one [`Core`] (paths, settings, database, events) and passes it
//! in; nothing reads globals. Long work reports [`events::Event`]s and takes a
//! cancellation token. Errors carry a stable [`ErrorCode`] and a message that says
//! what happened and what to do next.

pub mod awake;
pub mod bench;
pub mod catalog;
pub mod cleanup;
pub mod download;
pub mod error;
pub mod events;
pub mod gguf;
pub mod hardware;
pub mod history;
pub mod paths;
pub mod recommend;
pub mod runtime;
pub mod server;
pub mod settings;
pub mod store;
pub mod units;

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use error::{Error, ErrorCode, ErrorReport, Result};
pub use events::{Event, Events};
pub use paths::Paths;
pub use settings::Settings;
pub use tokio_util::sync::CancellationToken as Cancel;

use hardware::HardwareProfile;
use history::Database;
use runtime::{Locator, Runtime, RuntimeInfo};
use server::{Server, ServerConfig};

/// The handle every front end holds.
pub struct Core {
    paths: Paths,
    settings: std::sync::RwLock<Settings>,
    db: Database,
    events: Events,
    download_slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// What `kindling detect` shows: the machine, and the runtime if one was found.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Detection {
    pub hardware: HardwareProfile,
    pub runtime: Option<Runtime>,
    pub runtime_info: Option<RuntimeInfo>,
    /// Why no runtime could be used, when none could.
    pub runtime_problem: Option<ErrorReport>,
}

impl Core {
    /// Opens Kindling's state under `paths` (creating it on first use), and stops any
    /// llama-server that a crashed Kindling left running.
    pub async fn open(paths: Paths) -> Result<Core> {
        paths.ensure().map_err(|source| Error::Io {
            path: paths.home().to_path_buf(),
            source,
        })?;
        let settings = Settings::load(&paths.settings())?;
        let db = Database::open(&paths.database()).await?;
        server::process::reap_stale(&paths.server_pid());
        Ok(Core {
            paths,
            settings: std::sync::RwLock::new(settings),
            db,
            events: Events::new(),
            download_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                store::pull::MAX_CONCURRENT,
            )),
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }
    /// The current settings (a copy).
    pub fn settings(&self) -> Settings {
        self.settings.read().expect("settings lock").clone()
    }

    /// Changes the settings and saves them (atomically) before the change is used.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) -> Result<Settings> {
        let mut current = self.settings.write().expect("settings lock");
        let mut next = current.clone();
        change(&mut next);
        next.save(&self.paths.settings())?;
        *current = next.clone();
        Ok(next)
    }

    /// Adds a folder (or a single file) of GGUF models to use in place.
    pub fn add_model_folder(&self, path: &Path) -> Result<PathBuf> {
        let path = std::fs::canonicalize(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let p = path.clone();
        self.update_settings(move |s| {
            if !s.model_folders.contains(&p) {
                s.model_folders.push(p);
            }
        })?;
        Ok(path)
    }
    pub fn db(&self) -> &Database {
        &self.db
    }
    pub fn events(&self) -> &Events {
        &self.events
    }
    /// Limits how many downloads run at once.
    pub fn download_slots(&self) -> &tokio::sync::Semaphore {
        &self.download_slots
    }

    /// Finds llama-server (see [`runtime`] for the order).
    pub fn locate_runtime(&self) -> std::result::Result<Runtime, runtime::RuntimeError> {
        Locator::from_process(self.settings().llama_server).locate()
    }

    /// Detects the machine and asks the runtime for its version and devices.
    pub async fn detect(&self) -> Detection {
        let (runtime, info, problem) = match self.locate_runtime() {
            Ok(rt) => match rt.info().await {
                Ok(info) => (Some(rt), Some(info), None),
                Err(e) => (Some(rt), None, Some(Error::from(e).to_report())),
            },
            Err(e) => (None, None, Some(Error::from(e).to_report())),
        };
        let devices = info.as_ref().map(|i| i.devices.clone()).unwrap_or_default();
        let hardware = tokio::task::spawn_blocking(move || hardware::detect(devices))
            .await
            .expect("hardware detection does not panic");
        Detection {
            hardware,
            runtime,
            runtime_info: info,
            runtime_problem: problem,
        }
    }

    /// Models to use when the user names none, best first.
    pub fn default_models(&self) -> Vec<PathBuf> {
        let mut hints: Vec<PathBuf> = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .into_iter()
            .collect();
        hints.extend(std::env::current_dir().ok());
        store::default_models(&self.paths.models(), &hints)
    }

    /// The server configuration the settings call for.
    pub fn server_config(&self, model: &Path, port: u16) -> ServerConfig {
        let mut c = ServerConfig::new(model, port);
        let s = self.settings();
        c.ctx_size = s.ctx_size;
        c.threads = s.threads;
        c.gpu_layers = s.gpu_layers;
        c
    }

    /// Checks and registers `model`, then starts llama-server with it on `port` (a free
    /// one when `None`) and waits until it is ready.
    pub async fn start_server(
        &self,
        model: &Path,
        port: Option<u16>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        self.start_server_with(model, port, None, cancel).await
    }

    /// [`Core::start_server`] with the GPU layer count forced (e.g. `Some(0)`: CPU only).
    pub async fn start_server_with(
        &self,
        model: &Path,
        port: Option<u16>,
        gpu_layers: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        self.launch(model, port, cancel, |c| {
            if gpu_layers.is_some() {
                c.gpu_layers = gpu_layers;
            }
        })
        .await
    }

    /// Starts the server people and apps use (the menu bar's): like
    /// [`Core::start_server`], and listening on the network with the API key when the
    /// settings allow other devices.
    pub async fn start_serving(
        &self,
        model: &Path,
        port: Option<u16>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        let s = self.settings();
        self.launch(model, port, cancel, |c| {
            if let (true, Some(key)) = (s.allow_network, s.api_key) {
                c.host = "0.0.0.0".into();
                c.api_key = Some(key);
            }
        })
        .await
    }

    async fn launch(
        &self,
        model: &Path,
        port: Option<u16>,
        cancel: &CancellationToken,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Result<(Server, store::RegisteredModel)> {
        let runtime = self.locate_runtime()?;
        let registered = store::register(&self.db, model).await?;
        let port = match port {
            Some(p) => p,
            None => server::free_port().map_err(|source| Error::Io {
                path: "127.0.0.1".into(),
                source,
            })?,
        };
        let mut config = self.server_config(&registered.path, port);
        adjust(&mut config);
        let server = self
            .supervise(&runtime, config, registered.info.file_size, cancel)
            .await?;
        Ok((server, registered))
    }

    /// Starts llama-server under supervision: this home's pid file, this Core's events,
    /// a readiness deadline sized for a model of `model_bytes`.
    pub async fn supervise(
        &self,
        runtime: &Runtime,
        config: ServerConfig,
        model_bytes: u64,
        cancel: &CancellationToken,
    ) -> Result<Server> {
        Server::start(
            runtime,
            config,
            server::supervisor::ready_deadline(model_bytes),
            &self.events,
            Some(self.paths.server_pid()),
            cancel,
        )
        .await
    }
}
