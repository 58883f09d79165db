//! kindling-core: every capability of Kindling, with no GUI or terminal code.
//!
//! Each binary builds one [`Core`] (paths, settings, database, events) and passes it
//! in; nothing reads globals. Long work reports [`events::Event`]s and takes a
//! cancellation token. Errors carry a stable [`ErrorCode`] and a message that says
//! what happened and what to do next.

pub mod awake;
pub mod bench;
pub mod catalog;
pub mod chat_format;
pub mod cleanup;
pub mod download;
pub mod error;
pub mod events;
pub mod front;
pub mod gguf;
pub mod gpu_check;
pub mod hardware;
pub mod history;
pub mod kinds;
pub mod pages;
pub mod paths;
pub mod peers;
pub mod recommend;
pub mod runtime;
pub mod server;
pub mod settings;
pub mod showdown;
pub mod store;
pub mod units;
pub mod words;

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
    /// A machine to plan for instead of this one (see [`Core::assume_hardware`]).
    assumed_hardware: std::sync::RwLock<Option<HardwareProfile>>,
    /// The doors apps reach the servers people use by.
    front: front::Front,
}

/// Where a front door listens: every interface with network access on, else loopback.
fn door_host(network: &Option<(PathBuf, String)>) -> &'static str {
    if network.is_some() {
        "0.0.0.0"
    } else {
        "127.0.0.1"
    }
}

/// The front door's listener on `host:port` (a free port when `None`), and its port; a
/// busy port is said as such (`second`: the second server's).
fn bind_door(host: &str, port: Option<u16>, second: bool) -> Result<(std::net::TcpListener, u16)> {
    let port = server::port_or_free(port)?;
    let listener = std::net::TcpListener::bind((host, port))
        .map_err(|_| server::ServerError::PortInUse { port, second })?;
    Ok((listener, port))
}

/// Who a front door lets in, from the settings and the network key (`None`: loopback).
fn door_policy(settings: &Settings, network: Option<(PathBuf, String)>) -> front::Policy {
    front::Policy {
        key: network.map(|(_, key)| key),
        allowed_origin: settings
            .cors_origin
            .as_deref()
            .and_then(|o| server::access::parse_origin(o).ok().flatten()),
        end_bad_answers: settings.end_bad_answers,
    }
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
    /// Main memory's speed as last measured here (bytes/s), so a profile written on one
    /// Mac plans speeds for it on another.
    #[serde(default)]
    pub memory_bandwidth_bytes_per_second: Option<f64>,
}

impl Core {
    /// Opens Kindling's state under `paths` (creating it on first use), and stops any
    /// llama-server whose Kindling is gone (never one whose owner still runs: see
    /// [`server::owners`]).
    pub async fn open(paths: Paths) -> Result<Core> {
        paths.ensure().map_err(|source| Error::Io {
            path: paths.home().to_path_buf(),
            source,
        })?;
        let settings = Settings::load(&paths.settings())?;
        let settings = move_key_out_of_settings(&paths, settings)?;
        let db = Database::open(&paths.database()).await?;
        server::owners::reap_orphans(&paths.servers());
        let events = Events::new();
        let front = front::Front::new(db.clone(), events.clone());
        Ok(Core {
            paths,
            settings: std::sync::RwLock::new(settings),
            db,
            events,
            front,
            download_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                store::pull::MAX_CONCURRENT,
            )),
            assumed_hardware: std::sync::RwLock::new(None),
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The front door of the servers people use: what it serves, and the evidence of
    /// answers that went wrong.
    pub fn front(&self) -> &front::Front {
        &self.front
    }
    /// The catalog: the built-in one, with the families of `catalog.toml` in Kindling's
    /// home added when that file exists. Additions that do not read are left out (and
    /// logged), never allowed to hide the built-in catalog.
    pub fn catalog(&self) -> catalog::Catalog {
        let builtin = catalog::Catalog::builtin();
        let path = self.paths.catalog_additions();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return builtin;
        };
        match builtin.clone().with_additions(&text) {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(path = %path.display(), "catalog additions left out: {why}");
                builtin
            }
        }
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

    /// Adds a folder (or a single file) of GGUF models to use in place. A single file
    /// must be a model: one that is not is refused with the reason, not remembered.
    pub fn add_model_folder(&self, path: &Path) -> Result<PathBuf> {
        let path = std::fs::canonicalize(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if path.is_file() {
            gguf::inspect(&path)?;
        }
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
        let hardware = self.hardware(devices).await;
        Detection {
            hardware,
            runtime,
            runtime_info: info,
            runtime_problem: problem,
            memory_bandwidth_bytes_per_second: self.db().latest_bandwidth().await.ok().flatten(),
        }
    }

    /// This machine's hardware with `devices` from the runtime, or the assumed one.
    pub async fn hardware(&self, devices: Vec<hardware::vulkan::VulkanDevice>) -> HardwareProfile {
        if let Some(hw) = self.assumed_hardware.read().expect("lock").clone() {
            return hw;
        }
        tokio::task::spawn_blocking(move || hardware::detect(devices))
            .await
            .expect("hardware detection does not panic")
    }

    /// Plans every server as if on `hardware` (a profile recorded on another machine):
    /// what `kindling recommend --machine` and the tests of known-issue fixes use.
    pub fn assume_hardware(&self, hardware: HardwareProfile) {
        *self.assumed_hardware.write().expect("lock") = Some(hardware);
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

    /// How Kindling starts `model` here: the settings, then the placement the fit
    /// estimator chose and every known-issue fix that applies
    /// ([`recommend::launch::plan`]). Every server Kindling starts is configured here.
    pub fn launch_config(
        &self,
        model: &store::RegisteredModel,
        hardware: &HardwareProfile,
        port: u16,
    ) -> (ServerConfig, recommend::launch::LaunchPlan) {
        self.launch_config_for(model, hardware, port, None)
    }

    /// [`Core::launch_config`] with `context` tokens instead of the settings'.
    pub fn launch_config_for(
        &self,
        model: &store::RegisteredModel,
        hardware: &HardwareProfile,
        port: u16,
        context: Option<u32>,
    ) -> (ServerConfig, recommend::launch::LaunchPlan) {
        let mut c = self.server_config(&model.path, port);
        if let Some(n) = context {
            c.ctx_size = n;
        }
        // Bandwidth does not decide placement, so none is asked for.
        let (machine, backend, _) = recommend::machine::profile(hardware, None);
        let manifest = self
            .locate_runtime()
            .ok()
            .and_then(|r| runtime::read_manifest(&r.path));
        let backend = backend.with_runtime(manifest.as_ref());
        let catalog = self.catalog();
        let family = catalog
            .by_sha256(&model.sha256)
            .or_else(|| {
                model
                    .path
                    .file_name()
                    .and_then(|f| catalog.by_file(&f.to_string_lossy()))
            })
            .map(|(f, _)| f);
        let plan = recommend::launch::plan(
            &catalog,
            family,
            &model.info,
            &machine,
            &backend,
            u64::from(c.ctx_size),
            c.gpu_layers,
        );
        c.gpu_layers = plan.gpu_layers;
        if plan.flash_attention_off {
            c.flash_attention = server::FlashAttention::Off;
        }
        if let Some(format) = &plan.chat_format {
            match format.install(&self.paths.chat_formats()) {
                Ok(arg) => c.chat_template = Some(arg),
                // Without the file the server would refuse to start; asked in ChatML it
                // still answers, and the run's arguments show it was.
                Err(e) => tracing::warn!("could not write the {} chat format: {e}", format.label()),
            }
        }
        for note in &plan.notes {
            tracing::info!(model = %model.path.display(), "{note}");
        }
        (c, plan)
    }

    /// The settings' part of a server configuration (no placement, no fixes: use
    /// [`Core::launch_config`] to start a server).
    fn server_config(&self, model: &Path, port: u16) -> ServerConfig {
        let mut c = ServerConfig::new(model, port);
        let s = self.settings();
        c.ctx_size = s.ctx_size;
        c.threads = s.threads;
        c.gpu_layers = s.gpu_layers;
        c.cors_origins = server::access::cors_origins(s.cors_origin.as_deref());
        c
    }

    /// Turns "allow other devices on my network" on (with a new key, kept in a file
    /// only this user can read) or off (the key is forgotten). A running server keeps
    /// what it was started with until it is started again.
    pub fn set_network_access(&self, allow: bool) -> Result<Settings> {
        let path = self.paths.api_key();
        if allow {
            let key = server::access::new_key().map_err(|source| Error::System {
                what: "make a random key",
                source,
            })?;
            server::access::write_key(&path, &key)?;
        } else {
            server::access::remove_key(&path)?;
        }
        self.update_settings(|s| s.allow_network = allow)
    }

    /// The key other devices must send, when network access is on.
    pub fn network_key(&self) -> Option<String> {
        self.settings()
            .allow_network
            .then(|| server::access::load_key(&self.paths.api_key()).ok())
            .flatten()
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
        self.launch_layers(model, port, gpu_layers, None, cancel)
            .await
    }

    /// [`Core::start_server_with`] on a free port, with `context` tokens instead of the
    /// settings' (a quality test that needs more); placement is planned for that context.
    pub async fn start_server_sized(
        &self,
        model: &Path,
        gpu_layers: Option<u32>,
        context: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        self.launch_layers(model, None, gpu_layers, context, cancel)
            .await
    }

    async fn launch_layers(
        &self,
        model: &Path,
        port: Option<u16>,
        gpu_layers: Option<u32>,
        context: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        self.launch_sized(model, port, context, cancel, |c| {
            if gpu_layers.is_some() {
                c.gpu_layers = gpu_layers;
            }
        })
        .await
    }

    /// The most context (tokens, up to `wanted`) `model` can have here, and whether the
    /// model's own maximum is what limits it (else this machine's memory, by the fit
    /// estimator).
    pub async fn context_fit(&self, model: &Path, wanted: u64) -> Result<(u64, bool)> {
        let info = gguf::inspect(model)?;
        let shape = recommend::fit::ModelShape::from_gguf(&info);
        let (machine, _, _) = self.machine_profile().await?;
        let f = recommend::fit::fit(&shape, &machine, wanted);
        let fits = if f.fits { f.context.min(wanted) } else { 0 };
        Ok((
            fits,
            fits >= shape.max_context && shape.max_context < wanted,
        ))
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
        self.serve_as(model, port, None, server::Purpose::Serving, None, cancel)
            .await
    }

    /// Starts a second server people use beside the one `served` describes (the running
    /// server's configuration, `None` when none runs): on the processor only (`--device
    /// none`, so the GPU stays the first one's), on `port`, with the most context that
    /// fits. Refused, before anything starts, when the two do not fit in memory together.
    pub async fn start_second(
        &self,
        model: &Path,
        port: Option<u16>,
        served: Option<&ServerConfig>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        let fit = self.fit_beside(model, served, true).await?;
        if !fit.fits {
            return Err(pair_refused(model, fit, true)?);
        }
        let context = u32::try_from(fit.context).unwrap_or(u32::MAX);
        self.serve_as(
            model,
            port,
            Some(context),
            server::Purpose::Second,
            None,
            cancel,
        )
        .await
    }

    /// Refuses `model` as the menu-bar server while the second server (`second`, its
    /// configuration) runs, when the two do not fit in memory together.
    pub async fn check_beside_second(&self, model: &Path, second: &ServerConfig) -> Result<()> {
        let fit = self.fit_beside(model, Some(second), false).await?;
        if fit.fits {
            return Ok(());
        }
        Err(pair_refused(model, fit, false)?)
    }

    /// Where `model` would run beside the server `running` describes (`None`: alone), and
    /// with how much context: as the second model (on the processor) when `as_second`,
    /// else as the menu-bar one. See [`recommend::fit::fit_beside`].
    pub async fn fit_beside(
        &self,
        model: &Path,
        running: Option<&ServerConfig>,
        as_second: bool,
    ) -> Result<recommend::fit::Fit> {
        use recommend::fit::ModelShape;
        let shape = ModelShape::from_gguf(&gguf::inspect(model)?);
        let (machine, _, _) = recommend::machine::profile(&self.detect().await.hardware, None);
        let running = match running {
            Some(c) => Some((
                ModelShape::from_gguf(&gguf::inspect(&c.model)?),
                if c.cpu_only { Some(0) } else { c.gpu_layers },
                u64::from(c.ctx_size),
            )),
            None => None,
        };
        Ok(recommend::fit::fit_beside(
            &shape,
            &machine,
            u64::from(self.settings().ctx_size),
            running.as_ref().map(|(m, l, c)| (m, *l, *c)),
            as_second,
        ))
    }

    /// A server people use: the settings' network access and idle sleep; `Second`
    /// runs on the processor only, with `context` tokens. Apps reach it through the
    /// front door on `port` (see [`front`]); llama-server listens behind it on loopback.
    async fn serve_as(
        &self,
        model: &Path,
        port: Option<u16>,
        context: Option<u32>,
        purpose: server::Purpose,
        split: Option<server::Split>,
        cancel: &CancellationToken,
    ) -> Result<(Server, store::RegisteredModel)> {
        let settings = self.settings();
        let network = self.door_network()?;
        let second = purpose == server::Purpose::Second;
        let host = door_host(&network);
        // The door's port is taken first: a busy one is said before any model loads.
        let (listener, port) = bind_door(host, port, second)?;
        let system = |what| move |source| Error::System { what, source };
        let behind = server::Behind {
            port: server::free_port().map_err(system("find a free port on this computer"))?,
            key: server::access::new_key().map_err(system("make a random key"))?,
            alias: front::model_id(model),
        };
        let sleep_after = settings.sleep_after_minutes;
        let owner_key_file = network.as_ref().map(|(path, _)| path.clone());
        let (server, registered) = self
            .launch_sized(model, Some(port), context, cancel, |c| {
                c.purpose = purpose;
                c.sleep_idle_seconds = (sleep_after > 0).then(|| sleep_after.saturating_mul(60));
                if second {
                    c.cpu_only = true;
                    // Also what the GPU check reads: nothing on the GPU, nothing to check.
                    c.gpu_layers = Some(0);
                }
                c.host = host.into();
                c.split = split;
                c.api_key_file = owner_key_file;
                c.behind = Some(behind.clone());
            })
            .await?;
        let build = self
            .locate_runtime()
            .ok()
            .and_then(|r| runtime::read_manifest(&r.path))
            .map(|m| format!("b{} ({})", m.llama_cpp_build, m.target))
            .unwrap_or_else(|| "unknown".into());
        let route = front::Route::new(
            &registered.path,
            registered.info.name.as_deref(),
            std::net::SocketAddr::from(([127, 0, 0, 1], behind.port)),
            behind.key,
            server.config().to_args(),
            build,
        );
        let policy = door_policy(&settings, network);
        let slot = if second {
            front::Slot::Second
        } else {
            front::Slot::Served
        };
        let door = self
            .front
            .open(listener, slot, route, policy)
            .map_err(system("open Kindling's port for apps"))?;
        server.keep_door(door);
        Ok((server, registered))
    }

    /// The owner's key file and key when network access is on (a missing or weak key
    /// refused before anything listens on the network); `None`: loopback only.
    fn door_network(&self) -> Result<Option<(PathBuf, String)>> {
        if !self.settings().allow_network {
            return Ok(None);
        }
        let path = self.paths.api_key();
        let key = server::access::load_key(&path)?;
        Ok(Some((path, key)))
    }

    /// Opens the front door on `port` (0: any free one) for a model a paired Mac serves,
    /// reached at `backend` (the relay carrying requests there): this Mac's apps and, with
    /// network access on, its other devices (with the owner's key) use the one address as
    /// for a model served here; the door judges, watches and counts as it does for one.
    /// `key`: what the paired Mac's own door asks (empty when it asks nothing).
    pub fn open_routed_door(
        &self,
        model: &Path,
        port: u16,
        backend: std::net::SocketAddr,
        answered_by: &str,
        key: String,
    ) -> Result<front::Door> {
        let network = self.door_network()?;
        let (listener, _) = bind_door(door_host(&network), Some(port), false)?;
        let route = front::Route::new(
            model,
            None,
            backend,
            key,
            vec![format!("routed to {answered_by}")],
            "that Mac's".into(),
        );
        let policy = door_policy(&self.settings(), network);
        self.front
            .open(listener, front::Slot::Served, route, policy)
            .map_err(|source| Error::System {
                what: "open Kindling's port for apps",
                source,
            })
    }

    async fn launch_sized(
        &self,
        model: &Path,
        port: Option<u16>,
        context: Option<u32>,
        cancel: &CancellationToken,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Result<(Server, store::RegisteredModel)> {
        let runtime = self.locate_runtime()?;
        let registered = store::register(&self.db, model).await?;
        let port = server::port_or_free(port)?;
        // A runtime that cannot list its devices still runs on the processor; the start
        // itself then says what is wrong.
        let info = runtime.info().await.ok();
        let devices = info.as_ref().map(|i| i.devices.clone()).unwrap_or_default();
        let hardware = self.hardware(devices).await;
        let (mut config, _) = self.launch_config_for(&registered, &hardware, port, context);
        adjust(&mut config);
        if let Some(info) = &info {
            self.apply_gpu_check(&runtime, info, &registered, &hardware, &mut config, cancel)
                .await?;
        }
        let server = self
            .supervise(&runtime, config, registered.info.file_size, cancel)
            .await?;
        Ok((server, registered))
    }

    /// Starts llama-server under supervision: this home's owner records, this Core's events,
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
            Some(&self.paths.servers()),
            cancel,
        )
        .await
    }
}

/// The refusal of `model` beside a running server, with what to do: the second model's
/// (`as_second`) or the menu-bar one's.
fn pair_refused(model: &Path, fit: recommend::fit::Fit, as_second: bool) -> Result<Error> {
    let name = gguf::inspect(model)?.name.unwrap_or_else(|| {
        model.file_name().map_or_else(
            || model.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        )
    });
    Ok(Error::PairDoesNotFit {
        model: name,
        why: fit.why,
        advice: if as_second {
            "Stop the server's model first, or pick a smaller second model."
        } else {
            "Stop the second model first, or serve a smaller model."
        },
    })
}

/// Settings files from before the key had a file of its own hold it in plain text,
/// readable by every user: move it to the key file (0600) and out of settings.toml.
fn move_key_out_of_settings(paths: &Paths, mut settings: Settings) -> Result<Settings> {
    let Some(old) = settings.extra.remove("api_key") else {
        return Ok(settings);
    };
    if let Some(key) = old.as_str() {
        if settings.allow_network && key.len() >= server::access::MIN_KEY_LEN {
            server::access::write_key(&paths.api_key(), key)?;
        }
    }
    settings.save(&paths.settings())?;
    Ok(settings)
}
