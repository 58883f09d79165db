//! Starting and stopping the menu-bar server: one code path for the tray's toggle and
//! the window's Server screen (the end-to-end tests drive it through the window).

use std::path::PathBuf;
use std::sync::Arc;

use kindling_core::server::{Server, ServerState};
use kindling_core::{Cancel, ErrorReport};
use tauri::{AppHandle, Manager};

use crate::dto::ServerStatus;
use crate::state::AppState;

/// The server the user started.
pub struct Running {
    pub server: Arc<Server>,
    pub model_name: String,
    pub model_path: PathBuf,
    /// Stops the task that watches for a crash (before a requested stop).
    watcher: Cancel,
}

/// Starts the chosen model (or the preferred one) unless a server already runs.
pub async fn start(app: &AppHandle, model: Option<PathBuf>) -> Result<ServerStatus, ErrorReport> {
    let state = app.state::<AppState>();
    let core = state.core.clone();
    let cancel = Cancel::new();
    let mut slot = state.server.lock().await;
    if slot.is_none() {
        let model = state.model_or_preferred(model, "serve").await?;
        *state.server_starting.lock().expect("lock") = Some(cancel.clone());
        let started = core
            .start_serving(&model, Some(core.settings().port), &cancel)
            .await
            .map_err(|e| e.to_report());
        state.server_starting.lock().expect("lock").take();
        let (server, registered) = started?;
        let server = Arc::new(server);
        let watcher = Cancel::new();
        tauri::async_runtime::spawn(watch(app.clone(), server.clone(), watcher.clone()));
        *slot = Some(Running {
            server,
            model_name: registered
                .info
                .name
                .clone()
                .unwrap_or_else(|| file_name(&registered.path)),
            model_path: registered.path,
            watcher,
        });
    }
    drop(slot);
    Ok(status(app).await)
}

/// Stops the server (or a start in progress); harmless when none runs.
pub async fn stop(app: &AppHandle) -> ServerStatus {
    let state = app.state::<AppState>();
    if let Some(c) = state.server_starting.lock().expect("lock").take() {
        c.cancel();
    }
    let running = state.server.lock().await.take();
    if let Some(r) = running {
        r.watcher.cancel();
        r.server.stop().await;
    }
    status(app).await
}

/// Stops the menu-bar server for work that needs the machine to itself (a benchmark);
/// returns the model it served, to start again after. `None` when none ran.
pub async fn pause(app: &AppHandle) -> Option<PathBuf> {
    let state = app.state::<AppState>();
    let model = state
        .server
        .lock()
        .await
        .as_ref()
        .map(|r| r.model_path.clone())?;
    tracing::info!("stopping the server while a benchmark or showdown runs");
    stop(app).await;
    Some(model)
}

/// Runs `work` with the menu-bar server stopped (a benchmark or a showdown needs the
/// machine to itself, and an 8 GB Mac cannot hold two copies of a model), then starts it
/// again with the model it served.
pub async fn set_aside<T>(app: &AppHandle, work: impl std::future::Future<Output = T>) -> T {
    let paused = pause(app).await;
    let out = work.await;
    if let Some(model) = paused {
        if let Err(e) = start(app, Some(model)).await {
            tracing::warn!(error = %e.message, "could not start the server again after the work it stepped aside for");
        }
    }
    out
}

/// Starts the running server again — with `model`, or the one it served — so that what
/// the screens say is what it does (after a change of how it may be reached, or of the
/// served model). Harmless when none runs.
pub async fn restart_if_running(
    app: &AppHandle,
    model: Option<PathBuf>,
) -> Result<ServerStatus, ErrorReport> {
    match pause(app).await {
        Some(served) => start(app, Some(model.unwrap_or(served))).await,
        None => Ok(status(app).await),
    }
}

/// What the tray and the Server screen show.
pub async fn status(app: &AppHandle) -> ServerStatus {
    let state = app.state::<AppState>();
    let settings = state.core.settings();
    let slot = state.server.lock().await;
    let mut s = ServerStatus {
        state: state.server_state(),
        network: settings.allow_network,
        api_key: state.core.network_key(),
        ..ServerStatus::default()
    };
    if let Some(r) = slot.as_ref() {
        let c = r.server.config();
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
        s.log_tail = r.server.log_tail();
    }
    s
}

/// Whether the server is running or on its way (the tray's toggle reads this).
pub fn is_active(state: &ServerState) -> bool {
    matches!(
        state,
        ServerState::Starting { .. } | ServerState::Ready { .. }
    )
}

/// Waits for a crash; the core reports it as a `Failed` state, and the slot is freed.
async fn watch(app: AppHandle, server: Arc<Server>, stop: Cancel) {
    tokio::select! {
        _ = server.died() => {
            let state = app.state::<AppState>();
            let mut slot = state.server.lock().await;
            if slot.as_ref().is_some_and(|r| Arc::ptr_eq(&r.server, &server)) {
                slot.take();
            }
        }
        _ = stop.cancelled() => {}
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}
