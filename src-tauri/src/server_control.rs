//! Starting and stopping the servers people use: the menu-bar server, and a second one
//! beside it (a large model on the processor, on its own port). One code path for the
//! tray and the window's Server screen (the end-to-end tests drive it through the window).

use std::path::PathBuf;
use std::sync::Arc;

use kindling_core::peers::pool::{self, Planned, Watch};
use kindling_core::peers::relay::Relay;
use kindling_core::peers::this_mac_name;
use kindling_core::server::{Server, ServerState};
use kindling_core::{Cancel, ErrorCode, ErrorReport};
use tauri::{AppHandle, Manager};

use crate::dto::{LostMac, MacShare, ServerStatus};
use crate::state::{AppState, ServerSlot};

/// What a server is started with: the model, and the paired Macs holding shares of it.
#[derive(Debug, Clone)]
pub struct Choice {
    pub model: PathBuf,
    /// The paired Macs to serve it with (none: this Mac alone). A model that fits this
    /// Mac is never split, even so.
    pub with: Vec<String>,
    /// The most of this Mac's memory the model may take when served with them (`None`:
    /// all but what the system and other apps keep).
    pub local_memory: Option<u64>,
    /// The paired Mac that asked this one to serve the model (route first): it stops
    /// once no Mac has used it for a while. `None`: the owner chose it.
    pub asked_by: Option<String>,
}

impl Choice {
    /// The plan for it now (each Mac it names reached first), with this Mac as it dials
    /// them.
    pub async fn plan(
        &self,
        core: &kindling_core::Core,
    ) -> kindling_core::Result<(kindling_core::peers::relay::Caller, Planned)> {
        let me = core.caller(&this_mac_name(None))?;
        let planned = core
            .plan_with(&self.model, &self.with, self.local_memory, &me)
            .await?;
        Ok((me, planned))
    }

    /// `model` with the paired Macs the owner last chose to serve with (Settings'
    /// `serve_with`; none: alone).
    pub fn remembered(model: PathBuf, settings: &kindling_core::Settings) -> Choice {
        Choice {
            model,
            with: settings.serve_with.clone(),
            local_memory: Some(settings.serve_with_local_memory_bytes).filter(|&b| b > 0),
            asked_by: None,
        }
    }

    /// `model` on this Mac alone.
    pub fn alone(model: PathBuf) -> Choice {
        Choice {
            model,
            with: Vec::new(),
            local_memory: None,
            asked_by: None,
        }
    }
}

/// A server the user started.
pub struct Running {
    /// The llama-server here; `None` while this Mac's apps are routed to a paired Mac
    /// that serves the model (the pool's plan routes).
    pub server: Option<Arc<Server>>,
    /// Tells this start from a later one (a watcher must not stop its successor).
    serial: u64,
    pub model_name: String,
    pub model_path: PathBuf,
    /// What it was started with (started again so after a benchmark, or a change of
    /// how it may be reached).
    pub choice: Choice,
    /// Served with other Macs: the plan, and one link per Mac holding a share.
    pub pool: Option<Pool>,
    /// Stops the task that watches for a crash (before a requested stop).
    watcher: Cancel,
}

/// A model served with paired Macs: split over them, or routed whole to one.
pub struct Pool {
    pub planned: Planned,
    /// One link per Mac holding a share; routed, the one link to the Mac serving it.
    pub relays: Arc<Vec<Relay>>,
    /// Split: the speed measured once it was ready (tokens/s), beside the plan's.
    pub measured: Arc<std::sync::Mutex<Option<f64>>>,
}

/// What a start made: a server here (with the links of its split, if split), or a
/// route to the paired Mac serving the model. (Made once per start and taken apart at
/// once: its size does not matter.)
#[allow(clippy::large_enum_variant)]
enum Started {
    Here(Server, kindling_core::store::RegisteredModel, Option<Pool>),
    Routed(Pool),
}

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A paired Mac stopped answering and the model it held a share of was stopped: what
/// the screens say, and what "Serve without it" starts.
pub struct Lost {
    pub view: LostMac,
    pub left: Choice,
}

/// Which of the two servers people use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The menu-bar server: the everyday model, where Kindling plans it (the GPU).
    Served,
    /// The second model, on the processor only.
    Second,
}

impl Which {
    fn slot(self, state: &AppState) -> &ServerSlot {
        match self {
            Which::Served => &state.server,
            Which::Second => &state.second,
        }
    }
}

/// Starts the chosen model (or the preferred one) unless the menu-bar server already runs,
/// with the paired Macs the owner last chose to serve with (Stop and Start, the tray's
/// item, a relaunch: all serve it as before).
pub async fn start(app: &AppHandle, model: Option<PathBuf>) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    refuse_while_measuring(&state)?;
    if state.server.running.lock().await.is_none() {
        let model = state.model_or_preferred(model, "serve").await?;
        start_remembered(app, Choice::remembered(model, &state.core.settings())).await?;
    }
    Ok(status(app).await)
}

/// Starts `choice`, the owner's standing one. A model that fits this Mac where it runs
/// fast starts here without asking any Mac (it would not be split, and a Mac asleep must
/// not keep it from starting); one that does not is served with the Macs, and when they
/// cannot serve it the error says how to serve it here alone.
async fn start_remembered(app: &AppHandle, choice: Choice) -> Result<(), ErrorReport> {
    if choice.with.is_empty() {
        return start_in(app, Which::Served, choice).await;
    }
    let core = app.state::<AppState>().core.clone();
    let here = Choice {
        with: Vec::new(),
        ..choice.clone()
    };
    // Known not to fit here alone only when planned: a file that cannot be planned is
    // started with the Macs all the same, and its own error says what is wrong with it.
    let fits_here = match here.plan(&core).await {
        Ok((_, p)) => Some(matches!(
            p.plan,
            kindling_core::peers::plan::Plan::Alone { .. }
        )),
        Err(_) => None,
    };
    if fits_here == Some(true) {
        return start_in(app, Which::Served, Choice::alone(choice.model)).await;
    }
    let macs = kindling_core::words::and_list(&choice.with);
    start_in(app, Which::Served, choice).await.map_err(|mut e| {
        if fits_here == Some(false) {
            e.message.push_str(&format!(
                " You chose to serve this model with {macs}; it does not fit this {machine} alone where it runs fast. To serve it here by itself (slower), choose \"Serve on this {machine} alone\" in Kindling's Server screen.",
                machine = kindling_core::words::MACHINE
            ));
        }
        e
    })
}

/// Serves `choice` as the menu-bar server: with the paired Macs it names, split as
/// planned (alone when the model fits here). A server running with another choice is
/// stopped first, and serves again when this one cannot start: nothing is lost. The
/// owner's choice (not a Mac's request) is remembered for the next start.
pub async fn start_with(app: &AppHandle, choice: Choice) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    refuse_while_measuring(&state)?;
    let before = pause(app, Which::Served).await;
    let remember = choice.asked_by.is_none().then(|| choice.clone());
    if let Err(mut e) = start_in(app, Which::Served, choice).await {
        if let Some(before) = before {
            match start_in(app, Which::Served, before).await {
                Ok(()) => e.message.push_str(" The model served before serves again."),
                Err(again) => {
                    tracing::warn!(error = %again.message, "could not serve again what served before")
                }
            }
        }
        return Err(e);
    }
    if let Some(choice) = remember {
        remember_with(&state.core, &choice.with, choice.local_memory);
    }
    Ok(status(app).await)
}

/// Keeps the Macs the menu-bar server is served with for its next start.
fn remember_with(core: &kindling_core::Core, with: &[String], local_memory: Option<u64>) {
    let kept = core.update_settings(|s| {
        s.serve_with = with.to_vec();
        s.serve_with_local_memory_bytes = if with.is_empty() {
            0
        } else {
            local_memory.unwrap_or(0)
        };
    });
    if let Err(e) = kept {
        tracing::warn!(error = %e, "could not remember the Macs the server is served with");
    }
}

/// Serves the model on this Mac alone from now on (what "Serve on this Mac alone" does):
/// forgets the Macs it was served with and starts it here, in place of what runs.
pub async fn start_alone(app: &AppHandle) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    let running = state
        .server
        .running
        .lock()
        .await
        .as_ref()
        .map(|r| r.choice.model.clone());
    let lost = state.server.lost_left().map(|left| left.model);
    let model = state.model_or_preferred(running.or(lost), "serve").await?;
    start_with(app, Choice::alone(model)).await
}

/// Forgets `name` among the Macs the server is served with (it was unpaired).
pub fn forget_with(core: &kindling_core::Core, name: &str) {
    let settings = core.settings();
    let left = pool::without(&settings.serve_with, name);
    if left.len() != settings.serve_with.len() {
        remember_with(
            core,
            &left,
            Some(settings.serve_with_local_memory_bytes).filter(|&b| b > 0),
        );
    }
}

/// Serves the model again without the Mac that stopped answering (what the Server
/// screen offers after a loss).
pub async fn start_without_lost(app: &AppHandle) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    let left = state.server.lost_left().ok_or_else(|| ErrorReport {
            code: ErrorCode::ServerNotRunning,
            hint: None,
            message: "No Mac stopped answering: there is nothing to serve without. Start the server as usual.".into(),
        })?;
    start_with(app, left).await
}

/// Starts the second server with `model` (or the one chosen before) beside the menu-bar
/// server, and remembers the choice; refused when the two do not fit in memory together.
pub async fn start_second(
    app: &AppHandle,
    model: Option<PathBuf>,
) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    refuse_while_measuring(&state)?;
    if state.second.running.lock().await.is_none() {
        let model = model
            .or_else(|| state.core.settings().second_model)
            .ok_or_else(|| ErrorReport {
                code: ErrorCode::ModelNotFound,
                hint: None,
                message: "No second model is chosen yet. Open Kindling, choose Server, and \
                          pick the model to run on the processor beside the first."
                    .into(),
            })?;
        start_in(app, Which::Second, Choice::alone(model.clone())).await?;
        let remembered = state
            .core
            .update_settings(|s| s.second_model = Some(model))
            .map_err(|e| e.to_report());
        if let Err(e) = remembered {
            tracing::warn!(error = %e.message, "could not remember the second model");
        }
    }
    Ok(second_status(app).await)
}

/// A benchmark or a showdown has the machine to itself: a server started beside it
/// would slow its measurements (and they feed this Mac's calibration).
fn refuse_while_measuring(state: &AppState) -> Result<(), ErrorReport> {
    let job = if state.bench.lock().expect("lock").is_some() {
        "a benchmark"
    } else if state.showdown.lock().expect("lock").is_some() {
        "the search for the best model"
    } else {
        return Ok(());
    };
    Err(ErrorReport {
        code: ErrorCode::Busy,
        hint: None,
        message: format!(
            "Kindling is running {job}, which needs this computer to itself. The servers that were running come back by themselves when it ends; start this one then, or stop {job} first."
        ),
    })
}

pub(crate) async fn start_in(
    app: &AppHandle,
    which: Which,
    choice: Choice,
) -> Result<(), ErrorReport> {
    let model = choice.model.clone();
    let state = app.state::<AppState>();
    let core = state.core.clone();
    // Both slots' locks are taken in one order, the menu-bar server's first: a start of
    // each at once, each holding its own lock and waiting for the other's, would hang
    // both, and Quit after them.
    let served_lock = state.server.running.lock().await;
    let second_lock = state.second.running.lock().await;
    let (mut running, other) = match which {
        Which::Served => {
            let other = second_lock.as_ref().and_then(Running::config);
            drop(second_lock);
            (served_lock, other)
        }
        Which::Second => {
            let other = served_lock.as_ref().and_then(Running::config);
            drop(served_lock);
            (second_lock, other)
        }
    };
    let slot = which.slot(&state);
    if running.is_some() {
        return Ok(());
    }
    let cancel = Cancel::new();
    *slot.starting.lock().expect("lock") = Some(cancel.clone());
    slot.lost.lock().expect("lock").take();
    let settings = core.settings();
    let started = match which {
        Which::Served if !choice.with.is_empty() => {
            serve_pooled(&core, &choice, settings.port, &cancel).await
        }
        Which::Served => {
            // The second one runs on the processor: refused here when both cannot fit.
            let fits = match &other {
                Some(c) => core.check_beside_second(&model, c).await,
                None => Ok(()),
            };
            match fits {
                Ok(()) => core
                    .start_serving(&model, Some(settings.port), &cancel)
                    .await
                    .map(|(server, registered)| Started::Here(server, registered, None)),
                Err(e) => Err(e),
            }
        }
        Which::Second => core
            .start_second(&model, Some(settings.second_port), other.as_ref(), &cancel)
            .await
            .map(|(server, registered)| Started::Here(server, registered, None)),
    }
    .map_err(|e| e.to_report());
    slot.starting.lock().expect("lock").take();
    let (server, model_name, model_path, pool) = match started? {
        Started::Here(server, registered, pool) => (
            Some(Arc::new(server)),
            registered
                .info
                .name
                .clone()
                .unwrap_or_else(|| file_name(&registered.path)),
            registered.path,
            pool,
        ),
        Started::Routed(pool) => {
            // No server here reports its state: the route is ready once it listens.
            *slot.state.lock().expect("lock") = ServerState::Ready {
                port: settings.port,
                asleep: false,
            };
            let name = kindling_core::gguf::inspect(&model)
                .ok()
                .and_then(|i| i.name)
                .unwrap_or_else(|| file_name(&model));
            (None, name, model.clone(), Some(pool))
        }
    };
    if let (Some(server), Some(pool)) = (&server, &pool) {
        if pool.planned.predicted_tok_s().is_some() {
            tauri::async_runtime::spawn(measure(
                app.clone(),
                server.clone(),
                pool.measured.clone(),
            ));
        }
    }
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let watcher = Cancel::new();
    let relays = pool
        .as_ref()
        .map_or_else(|| Arc::new(Vec::new()), |p: &Pool| p.relays.clone());
    tauri::async_runtime::spawn(watch(
        app.clone(),
        which,
        serial,
        server.clone(),
        relays,
        watcher.clone(),
    ));
    *running = Some(Running {
        server,
        serial,
        model_name,
        model_path,
        choice,
        pool,
        watcher,
    });
    Ok(())
}

impl Running {
    /// The server's configuration, when one runs here.
    fn config(&self) -> Option<kindling_core::server::ServerConfig> {
        self.server.as_ref().map(|s| s.config().clone())
    }

    /// Stops what runs: the server here, then its links to other Macs.
    async fn stop(&self) {
        if let Some(server) = &self.server {
            server.stop().await;
        }
        for relay in self.pool.iter().flat_map(|p| p.relays.iter()) {
            relay.stop();
        }
    }
}

/// Serves `choice.model` with the paired Macs it names, as planned now: routed whole to
/// the one that serves it already when it does not fit here (route first), else split
/// over them, or alone when it fits here.
async fn serve_pooled(
    core: &kindling_core::Core,
    choice: &Choice,
    port: u16,
    cancel: &Cancel,
) -> kindling_core::Result<Started> {
    let (me, planned) = choice.plan(core).await?;
    if let Some(relay) = core
        .route(&choice.model, &planned, port, &me, Watch::default())
        .await?
    {
        return Ok(Started::Routed(Pool {
            planned,
            relays: Arc::new(vec![relay]),
            measured: Default::default(),
        }));
    }
    let pooled = core
        .serve_pooled(
            &choice.model,
            Some(port),
            planned,
            &me,
            Watch::default(),
            cancel,
        )
        .await?;
    let pool = Pool {
        planned: pooled.planned,
        relays: Arc::new(pooled.relays),
        measured: Default::default(),
    };
    Ok(Started::Here(pooled.server, pooled.registered, Some(pool)))
}

/// Stops the menu-bar server (or a start in progress); harmless when none runs.
pub async fn stop(app: &AppHandle) -> ServerStatus {
    stop_in(app, Which::Served).await;
    status(app).await
}

/// Stops the second server (or its start); harmless when none runs.
pub async fn stop_second(app: &AppHandle) -> ServerStatus {
    stop_in(app, Which::Second).await;
    second_status(app).await
}

/// Everything this app runs stops (Quit, installing an update, the app's exit): a running
/// benchmark or showdown (as interrupted, not stopped by the owner), both servers, and any
/// other server this process started.
pub async fn stop_all(app: &AppHandle) {
    let state = app.state::<AppState>();
    state
        .quitting
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The Macs using this one are told why it goes ("its owner stopped lending it"),
    // not left with a link that broke.
    crate::other_macs::stop_lending(app).await;
    // A benchmark or a showdown stops its own server in order and records where it
    // stopped (the showdown resumes at the next launch); give it a moment to.
    let jobs: Vec<kindling_core::Cancel> = [
        state.bench.lock().expect("lock").clone(),
        state
            .showdown
            .lock()
            .expect("lock")
            .as_ref()
            .map(|(_, c)| c.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    for job in &jobs {
        job.cancel();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (state.bench.lock().expect("lock").is_some()
        || state.showdown.lock().expect("lock").is_some())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop_in(app, Which::Second).await;
    stop_in(app, Which::Served).await;
    // Whatever is left that this process started (a job that did not end in time): macOS
    // has no pdeathsig to take it down with the app.
    let left = kindling_core::server::owners::stop_own(&state.core.paths().servers());
    if !left.is_empty() {
        tracing::warn!(?left, "stopped servers left running on the way out");
    }
}

pub(crate) async fn stop_in(app: &AppHandle, which: Which) {
    let state = app.state::<AppState>();
    let slot = which.slot(&state);
    if let Some(c) = slot.starting.lock().expect("lock").take() {
        c.cancel();
    }
    let running = slot.running.lock().await.take();
    if let Some(r) = running {
        r.watcher.cancel();
        r.stop().await;
        if r.server.is_none() {
            *slot.state.lock().expect("lock") = ServerState::Stopped;
        }
    }
}

/// Stops one server for work that needs the machine to itself; returns what it served,
/// to start again after. `None` when none ran.
async fn pause(app: &AppHandle, which: Which) -> Option<Choice> {
    let state = app.state::<AppState>();
    let model = which
        .slot(&state)
        .running
        .lock()
        .await
        .as_ref()
        .map(|r| r.choice.clone())?;
    tracing::info!(
        ?which,
        "stopping a server while other work needs the machine"
    );
    stop_in(app, which).await;
    Some(model)
}

/// Stops both servers; returns what they served `(menu-bar, second)`.
async fn pause_both(app: &AppHandle) -> (Option<Choice>, Option<Choice>) {
    let second = pause(app, Which::Second).await;
    (pause(app, Which::Served).await, second)
}

/// Starts again what [`pause_both`] stopped: the menu-bar server first (the second's fit
/// is planned beside it). The first error, if any, after trying both.
async fn resume(
    app: &AppHandle,
    paused: (Option<Choice>, Option<Choice>),
) -> Result<(), ErrorReport> {
    let mut first_error = None;
    for (which, choice) in [(Which::Served, paused.0), (Which::Second, paused.1)] {
        if let Some(choice) = choice {
            if let Err(e) = start_in(app, which, choice).await {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs `work` with both servers stopped (a benchmark or a showdown needs the machine
/// to itself, and an 8 GB Mac cannot hold two copies of a model), then starts them again
/// with the models they served.
pub async fn set_aside<T>(app: &AppHandle, work: impl std::future::Future<Output = T>) -> T {
    let paused = pause_both(app).await;
    let out = work.await;
    if app.state::<AppState>().is_quitting() {
        return out;
    }
    if let Err(e) = resume(app, paused).await {
        tracing::warn!(error = %e.message, "could not start a server again after the work it stepped aside for");
    }
    out
}

/// Starts the running servers again so that what the screens say is what they do (after
/// a change of how they may be reached). Harmless when none runs.
pub async fn restart_running(app: &AppHandle) -> Result<ServerStatus, ErrorReport> {
    let paused = pause_both(app).await;
    resume(app, paused).await?;
    Ok(status(app).await)
}

/// Starts the running menu-bar server again with `model` (a new served model). Harmless
/// when none runs.
pub async fn restart_with(app: &AppHandle, model: PathBuf) -> Result<ServerStatus, ErrorReport> {
    match pause(app, Which::Served).await {
        Some(_) => start(app, Some(model)).await,
        None => Ok(status(app).await),
    }
}

/// Starts `which` (with the model chosen for it) or stops it, as the tray's items do.
pub async fn toggle(app: &AppHandle, which: Which) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    if is_active(&which.slot(&state).state()) {
        stop_in(app, which).await;
        return Ok(status_of(app, which).await);
    }
    match which {
        Which::Served => start(app, None).await,
        Which::Second => start_second(app, None).await,
    }
}

/// What the tray and the Server screen show of the menu-bar server.
pub async fn status(app: &AppHandle) -> ServerStatus {
    status_of(app, Which::Served).await
}

/// What the tray and the Server screen show of the second server.
pub async fn second_status(app: &AppHandle) -> ServerStatus {
    status_of(app, Which::Second).await
}

pub async fn status_of(app: &AppHandle, which: Which) -> ServerStatus {
    let state = app.state::<AppState>();
    let settings = state.core.settings();
    let slot = which.slot(&state);
    // A start holds the slot's lock while the model loads (seconds to minutes): what is
    // known is said now, never after the load (the tray kept "Start server" meanwhile).
    let running = slot.running.try_lock().ok();
    let mut state_now = slot.state();
    if running.is_none() && slot.starting.lock().expect("lock").is_some() && !is_active(&state_now)
    {
        state_now = ServerState::Starting {
            port: match which {
                Which::Served => settings.port,
                Which::Second => settings.second_port,
            },
        };
    }
    let mut s = ServerStatus {
        state: state_now,
        network: settings.allow_network,
        api_key: state.core.network_key(),
        ..ServerStatus::default()
    };
    if which == Which::Second {
        s.model_path = settings.second_model.map(|p| p.display().to_string());
    } else {
        s.serves_with = settings.serve_with.clone();
        let today = kindling_core::front::today();
        s.went_wrong_today = match state.core.db().served_faults(&today).await {
            Ok(f) => u32::try_from(f.len()).unwrap_or(u32::MAX),
            Err(e) => {
                tracing::warn!(error = %e, "could not count today's bad answers");
                0
            }
        };
    }
    if let Some(r) = running.as_ref().and_then(|g| g.as_ref()) {
        let local = format!("http://127.0.0.1:{}", settings.port);
        s.model_name = Some(r.model_name.clone());
        s.model_path = Some(r.model_path.display().to_string());
        s.api_url = Some(format!("{local}/v1"));
        s.chat_url = Some(format!("{local}/"));
        s.started_for = r.choice.asked_by.clone();
        // Routed, the door in front of the relay is what listens.
        s.listening_on_network = r
            .pool
            .iter()
            .flat_map(|p| p.relays.iter())
            .filter_map(Relay::door_addr)
            .any(|a| !a.ip().is_loopback());
        s.routed_to = r
            .pool
            .as_ref()
            .and_then(|p| p.planned.routed())
            .map(|reached| reached.peer.name.clone());
        s.port = Some(settings.port);
    }
    if let Some((r, server)) = running
        .as_ref()
        .and_then(|g| g.as_ref())
        .and_then(|r| Some((r, r.server.as_ref()?)))
    {
        let c = server.config();
        let local = format!("http://127.0.0.1:{}", c.port);
        s.model_name = Some(r.model_name.clone());
        s.model_path = Some(r.model_path.display().to_string());
        s.api_url = Some(format!("{local}/v1"));
        s.chat_url = Some(format!("{local}/"));
        s.port = Some(c.port);
        s.gpu_layers = c.gpu_layers;
        s.ctx_size = Some(c.ctx_size);
        s.listening_on_network = c.host != "127.0.0.1";
        s.cors_origins = Some(c.cors_origins.clone());
        s.log_tail = server.log_tail();
        s.shares = r.pool.as_ref().map(shares).unwrap_or_default();
        if let Some(p) = &r.pool {
            s.predicted_tok_s = p.planned.predicted_tok_s();
            s.measured_tok_s = *p.measured.lock().expect("lock");
        }
    }
    s.lost = slot
        .lost
        .lock()
        .expect("lock")
        .as_ref()
        .map(|l| l.view.clone());
    s
}

/// Each Mac's share of a pooled model, and whether its link answers now.
fn shares(pool: &Pool) -> Vec<MacShare> {
    use kindling_core::peers::plan::{Place, Plan};
    let Plan::Split { shares, .. } = &pool.planned.plan else {
        return Vec::new();
    };
    shares
        .iter()
        .filter(|s| s.layers > 0 || s.place == Place::Processor)
        .map(|s| {
            let other_mac = matches!(s.place, Place::Helper { .. });
            MacShare {
                who: s.who.clone(),
                layers: s.layers,
                bytes: s.bytes,
                answering: !other_mac
                    || pool
                        .relays
                        .iter()
                        .any(|r| r.peer == s.who && r.lost_now().is_none()),
            }
        })
        .collect()
}

/// Whether a server is running or on its way (the tray's toggles read this).
pub fn is_active(state: &ServerState) -> bool {
    matches!(
        state,
        ServerState::Starting { .. } | ServerState::Ready { .. }
    )
}

/// Waits for a crash (the core reports it as a `Failed` state) or, for a model served
/// with other Macs, for one of them to stop answering: the server is stopped then (a
/// llama-server with a dead helper hangs or aborts), the owner told which Mac it was,
/// and the slot freed.
async fn watch(
    app: AppHandle,
    which: Which,
    serial: u64,
    server: Option<Arc<Server>>,
    relays: Arc<Vec<Relay>>,
    stop: Cancel,
) {
    let died = async {
        match &server {
            Some(s) => s.died().await,
            None => std::future::pending().await,
        }
    };
    let lost = tokio::select! {
        _ = died => {
            // A helper that went away takes the server with it: say which Mac.
            if relays.is_empty() {
                None
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                pool::lost_now(&relays)
            }
        }
        lost = pool::first_lost(&relays) => Some(lost),
        _ = stop.cancelled() => return,
    };
    let state = app.state::<AppState>();
    let slot = which.slot(&state);
    let mut running = slot.running.lock().await;
    if !running.as_ref().is_some_and(|r| r.serial == serial) {
        return;
    }
    let Some(r) = running.take() else { return };
    r.stop().await;
    if r.server.is_none() {
        *slot.state.lock().expect("lock") = ServerState::Stopped;
    }
    drop(running);
    if let Some(lost) = lost {
        use kindling_core::peers::PeerError;
        let name = match &lost {
            PeerError::Lost { name, .. } | PeerError::RouteLost { name, .. } => name.clone(),
            _ => String::new(),
        };
        let left = Choice {
            with: pool::without(&r.choice.with, &name),
            ..r.choice.clone()
        };
        let can_serve_without = can_serve(&state.core, &left).await;
        let what_next = if can_serve_without {
            format!("The Macs left can hold it: choose \"Serve without {name}\" in Kindling's Server screen.")
        } else {
            format!("Without {name} the model does not fit: when {name} is back, serve it again.")
        };
        let message = format!("{lost} {what_next}");
        tracing::warn!(%message, "a Mac holding a share of the served model stopped answering");
        crate::tray::notify(&app, &format!("{name} stopped answering"), &message);
        *slot.lost.lock().expect("lock") = Some(Lost {
            view: LostMac {
                name,
                message,
                can_serve_without,
            },
            left,
        });
    }
    crate::tray::refresh(&app);
}

/// Measures a split model's speed once it serves (a few seconds), for the Server screen
/// to show beside the plan's prediction.
async fn measure(app: AppHandle, server: Arc<Server>, into: Arc<std::sync::Mutex<Option<f64>>>) {
    let core = app.state::<AppState>().core.clone();
    match core.measure_served(&server).await {
        Ok(tok_s) => *into.lock().expect("lock") = Some(tok_s),
        Err(e) => tracing::warn!(error = %e, "could not measure the split model's speed"),
    }
}

/// Whether `choice` can be served as planned now (the Macs it names can be reached, and
/// together they hold it).
async fn can_serve(core: &kindling_core::Core, choice: &Choice) -> bool {
    match choice.plan(core).await {
        Ok((_, planned)) => !matches!(
            planned.plan,
            kindling_core::peers::plan::Plan::TooBig { .. }
        ),
        Err(_) => false,
    }
}

/// A file's name, for a model that has none of its own.
pub fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}
