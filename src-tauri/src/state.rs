//! What the app holds while it runs: the core, the menu-bar server, the running
//! benchmark's cancel switch, and the latest progress (for a window opened mid-run).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kindling_core::download::Control;
use kindling_core::server::{Purpose, ServerState};
use kindling_core::{Cancel, Core, ErrorCode, ErrorReport, Event};

use crate::dto::BenchFinished;
use crate::server_control::Running;

/// One server people use: the menu-bar server, or the second one beside it.
pub struct ServerSlot {
    /// The server; the async lock also serialises start and stop.
    pub running: tokio::sync::Mutex<Option<Running>>,
    /// Cancels a start still in progress.
    pub starting: Mutex<Option<Cancel>>,
    /// The last state it reported (what the tray and Server screen show).
    pub state: Mutex<ServerState>,
    /// The paired Mac that stopped answering while it held a share, until the next start.
    pub lost: Mutex<Option<crate::server_control::Lost>>,
}

impl ServerSlot {
    fn new() -> Self {
        ServerSlot {
            running: tokio::sync::Mutex::new(None),
            starting: Mutex::new(None),
            state: Mutex::new(ServerState::Stopped),
            lost: Mutex::new(None),
        }
    }

    /// What serves without the Mac that stopped answering ("Serve without it"), while a
    /// loss is shown.
    pub fn lost_left(&self) -> Option<crate::server_control::Choice> {
        self.lost
            .lock()
            .expect("lock")
            .as_ref()
            .map(|l| l.left.clone())
    }

    pub fn state(&self) -> ServerState {
        self.state.lock().expect("lock").clone()
    }

    /// The running server's configuration, if one runs.
    pub async fn config(&self) -> Option<kindling_core::server::ServerConfig> {
        self.running
            .lock()
            .await
            .as_ref()
            .and_then(|r| r.server.as_ref().map(|s| s.config().clone()))
    }

    /// Running, or on its way (a window closing then keeps the app as it is).
    pub fn busy(&self) -> bool {
        self.running.try_lock().map_or(true, |s| s.is_some())
            || self.starting.lock().expect("lock").is_some()
    }
}

pub struct AppState {
    pub core: Arc<Core>,
    /// The menu-bar server. Other servers' states (a benchmark's) are not kept here.
    pub server: ServerSlot,
    /// The second server: a large model on the processor, on its own port.
    pub second: ServerSlot,
    /// Cancels the benchmark that is running, if one is.
    pub bench: Mutex<Option<Cancel>>,
    /// The running benchmark's latest progress.
    pub bench_progress: Mutex<Option<Event>>,
    /// How the last benchmark ended.
    pub bench_last: Mutex<Option<BenchFinished>>,
    /// The running showdown's id, and what stops it.
    pub showdown: Mutex<Option<(i64, Cancel)>>,
    /// Why the last showdown stopped, when it failed.
    pub showdown_error: Mutex<Option<ErrorReport>>,
    /// Downloads in flight, by catalog id.
    pub downloads: Mutex<HashMap<String, Control>>,
    /// A newer version a check found, offered in the menu bar until installed.
    pub update: Mutex<Option<tauri_plugin_updater::Update>>,
    /// When the process started (for launch-to-interactive timing).
    pub started: Instant,
    /// Set on the way out (Quit, an update's restart): a job cancelled then was not
    /// stopped by the owner, so a showdown resumes at the next launch, and no server
    /// set aside for a job comes back.
    pub quitting: std::sync::atomic::AtomicBool,
    /// This Mac lending itself to its paired Macs ("Use another Mac"), while it does.
    pub lending: tokio::sync::Mutex<Option<crate::other_macs::Lent>>,
}

impl AppState {
    pub fn new(core: Arc<Core>, started: Instant) -> Self {
        AppState {
            core,
            server: ServerSlot::new(),
            second: ServerSlot::new(),
            bench: Mutex::new(None),
            bench_progress: Mutex::new(None),
            bench_last: Mutex::new(None),
            showdown: Mutex::new(None),
            showdown_error: Mutex::new(None),
            downloads: Mutex::new(HashMap::new()),
            update: Mutex::new(None),
            started,
            quitting: std::sync::atomic::AtomicBool::new(false),
            lending: tokio::sync::Mutex::new(None),
        }
    }

    /// Keeps what a window opened later needs to catch up.
    pub fn remember(&self, event: &Event) {
        match event {
            // Only the server people use: a benchmark's own server starting and
            // stopping says nothing about the menu-bar server.
            Event::ServerState { server, state } if server.purpose == Purpose::Serving => {
                *self.server.state.lock().expect("lock") = state.clone();
            }
            Event::ServerState { server, state } if server.purpose == Purpose::Second => {
                *self.second.state.lock().expect("lock") = state.clone();
            }
            Event::ServerState { .. } => {}
            Event::BenchProgress { .. } => {
                *self.bench_progress.lock().expect("lock") = Some(event.clone());
            }
            // Counted in the history; the tray and the Server screen read it there.
            Event::Download { .. } | Event::AnswerWentWrong { .. } => {}
        }
    }

    /// Whether the app is on its way out.
    pub fn is_quitting(&self) -> bool {
        self.quitting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `model`, or the preferred one (see `Core::preferred_model`); with none, an error
    /// that says how to get one. `to` names the job: "serve", "measure".
    pub async fn model_or_preferred(
        &self,
        model: Option<PathBuf>,
        to: &str,
    ) -> Result<PathBuf, ErrorReport> {
        if let Some(m) = model {
            return Ok(m);
        }
        self.core
            .preferred_model()
            .await
            .map_err(|e| e.to_report())?
            .ok_or_else(|| ErrorReport {
                code: ErrorCode::ModelNotFound,
                hint: None,
                message: format!(
                    "There is no model to {to} yet. Open Kindling and choose Models to get \
                     the one recommended for this {}.",
                    kindling_core::words::MACHINE
                ),
            })
    }
}
