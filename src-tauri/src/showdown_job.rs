//! "Find the best model for this Mac" in the app: the core's showdown (the same job
//! `kindling showdown` runs) in the background, one at a time and never beside a
//! benchmark. Every step is stored as it happens, so a showdown the app did not finish
//! (quit, crash, reboot) resumes at the next launch; one the owner stopped does not.

use kindling_core::recommend::Goal;
use kindling_core::showdown::{Contender, ShowdownReport};
use kindling_core::{Cancel, Error, ErrorCode, ErrorReport};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_notification::NotificationExt;

use crate::dto::ShowdownStatus;
use crate::state::AppState;

fn busy(what: &str) -> ErrorReport {
    ErrorReport {
        code: ErrorCode::Busy,
        hint: None,
        message: format!("{what} Wait for it to finish, or stop it first."),
    }
}

/// Sent when a showdown's job ends (finished, stopped or failed); payload: its id.
pub const ENDED_EVENT: &str = "kindling://showdown-ended";

/// Stores a showdown over `contenders` and starts it; returns its id.
pub async fn start(
    app: &AppHandle,
    goal: Goal,
    quick: bool,
    contenders: &[Contender],
) -> Result<i64, ErrorReport> {
    if contenders.is_empty() {
        return Err(ErrorReport {
            code: ErrorCode::QueueInvalid,
            hint: None,
            message: "Choose at least one model to compare; add one from the list.".into(),
        });
    }
    let state = app.state::<AppState>();
    // Checked before the showdown is stored: one stored but not started would start by
    // itself at the next launch.
    if state.bench.lock().expect("lock").is_some() {
        return Err(busy("A benchmark is running."));
    }
    if state.showdown.lock().expect("lock").is_some() {
        return Err(busy("A showdown is already running."));
    }
    let id = state
        .core
        .showdown_start(goal, quick, contenders)
        .await
        .map_err(|e| e.to_report())?;
    run(app, id)?;
    Ok(id)
}

/// Continues showdown `id`, which the owner stopped ("Continue the showdown").
pub async fn continue_stopped(app: &AppHandle, id: i64) -> Result<(), ErrorReport> {
    let state = app.state::<AppState>();
    state
        .core
        .db()
        .reopen_showdown(id)
        .await
        .map_err(|e| Error::from(e).to_report())?;
    run(app, id)
}

/// Continues the showdown a quit or a crash left unfinished, if there is one.
pub async fn resume_unfinished(app: &AppHandle) {
    let state = app.state::<AppState>();
    match state.core.db().unfinished_showdown().await {
        Ok(Some(id)) => {
            tracing::info!(id, "resuming the showdown left unfinished");
            if let Err(e) = run(app, id) {
                tracing::warn!(error = %e.message, "the unfinished showdown did not resume");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not look for an unfinished showdown"),
    }
}

/// Runs showdown `id` (new or resumed) in the background.
fn run(app: &AppHandle, id: i64) -> Result<(), ErrorReport> {
    let state = app.state::<AppState>();
    if state.bench.lock().expect("lock").is_some() {
        return Err(busy("A benchmark is running."));
    }
    let cancel = {
        let mut slot = state.showdown.lock().expect("lock");
        if slot.is_some() {
            return Err(busy("A showdown is already running."));
        }
        let c = Cancel::new();
        *slot = Some((id, c.clone()));
        c
    };
    *state.showdown_error.lock().expect("lock") = None;
    *state.bench_progress.lock().expect("lock") = None;
    crate::tray::refresh(app);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let outcome =
            crate::server_control::set_aside(&app, state.core.showdown_run(id, &cancel)).await;
        // Quit is not Stop: a showdown the app quit in the middle of resumes at launch.
        let stopped_by_owner = matches!(outcome, Err(Error::Cancelled)) && !state.is_quitting();
        if stopped_by_owner {
            // Stopped on purpose: what was measured stays, and it does not resume.
            if let Err(e) = state.core.showdown_stopped_by_owner(id).await {
                tracing::warn!(error = %e, "could not mark the showdown stopped");
            }
        }
        match &outcome {
            Ok(report) => ended(&app, "The showdown finished", &report.verdict),
            Err(Error::Cancelled) => {}
            Err(e) => {
                let report = e.to_report();
                ended(&app, "The showdown stopped", &report.message);
                *state.showdown_error.lock().expect("lock") = Some(report);
            }
        }
        state.showdown.lock().expect("lock").take();
        crate::tray::refresh(&app);
        if let Err(e) = app.emit(ENDED_EVENT, id) {
            tracing::warn!(error = %e, "could not tell the window the showdown ended");
        }
        tracing::info!(id, ok = outcome.is_ok(), "showdown ended");
    });
    Ok(())
}

/// Tells the owner when the window is closed (the morning after, say).
fn ended(app: &AppHandle, title: &str, body: &str) {
    if !crate::window::is_visible(app) {
        let _ = app.notification().builder().title(title).body(body).show();
    }
}

/// Stops the running showdown (what it measured is kept); `false` when none runs.
pub fn stop(app: &AppHandle) -> bool {
    let state = app.state::<AppState>();
    let slot = state.showdown.lock().expect("lock");
    slot.as_ref().map(|(_, c)| c.cancel()).is_some()
}

/// The id of the running showdown, if one runs.
pub fn running(app: &AppHandle) -> Option<i64> {
    let state = app.state::<AppState>();
    let slot = state.showdown.lock().expect("lock");
    slot.as_ref().map(|(id, _)| *id)
}

/// The running showdown (or the newest one) as far as it got, with the test in progress.
pub async fn status(app: &AppHandle) -> Result<ShowdownStatus, ErrorReport> {
    let state = app.state::<AppState>();
    let running = running(app);
    let id = match running {
        Some(id) => Some(id),
        None => state
            .core
            .db()
            .latest_showdown()
            .await
            .map_err(|e| Error::from(e).to_report())?,
    };
    let report: Option<ShowdownReport> = match id {
        Some(id) => Some(
            state
                .core
                .showdown_report(id)
                .await
                .map_err(|e| e.to_report())?,
        ),
        None => None,
    };
    let progress = state.bench_progress.lock().expect("lock").clone();
    let error = state.showdown_error.lock().expect("lock").clone();
    Ok(ShowdownStatus {
        running: running.is_some(),
        progress: progress.filter(|_| running.is_some()),
        report,
        error,
    })
}

/// The tray's line while a showdown runs.
pub fn tray_line(app: &AppHandle) -> Option<String> {
    running(app).map(|_| format!("Finding {}…", kindling_core::words::best_model_here()))
}
