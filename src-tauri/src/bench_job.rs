//! "Benchmark my Mac": one speed benchmark at a time, cancellable, keeping the machine
//! awake, with a notification when it ends while the window is closed.

use std::path::PathBuf;

use kindling_core::bench::{headline, QualityRequest, SpeedOptions, SpeedRequest};
use kindling_core::{Cancel, ErrorCode, ErrorReport};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_notification::NotificationExt;

use crate::dto::{BenchFinished, BenchResult, BenchStatus};
use crate::state::AppState;

/// The event that carries a finished benchmark's [`BenchFinished`].
pub const FINISHED_EVENT: &str = "kindling://bench-finished";

/// Starts the benchmark on `model` (default: the preferred model) in the background;
/// progress arrives as core events and the end as [`FINISHED_EVENT`].
pub fn start(app: &AppHandle, model: Option<PathBuf>, quality: bool) -> Result<(), ErrorReport> {
    let state = app.state::<AppState>();
    if crate::showdown_job::running(app).is_some() {
        return Err(ErrorReport {
            code: ErrorCode::Busy,
            hint: None,
            message: format!(
                "Kindling is finding {}. Benchmark when the showdown has finished, or stop it first.",
                kindling_core::words::best_model_here()
            ),
        });
    }
    let cancel = {
        let mut slot = state.bench.lock().expect("lock");
        if slot.is_some() {
            return Err(ErrorReport {
                code: ErrorCode::Busy,
                hint: None,
                message: "A benchmark is already running. Wait for it to finish, or cancel it \
                          first."
                    .into(),
            });
        }
        let c = Cancel::new();
        *slot = Some(c.clone());
        c
    };
    *state.bench_progress.lock().expect("lock") = None;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let outcome =
            crate::server_control::set_aside(&app, measure(&state, model, quality, &cancel)).await;
        tracing::info!(ok = outcome.is_ok(), "benchmark ended");
        if !crate::window::is_visible(&app) {
            let (title, body) = match &outcome {
                Ok(r) => ("Benchmark finished", r.headline.clone()),
                Err(e) => ("Benchmark stopped", e.message.clone()),
            };
            let _ = app.notification().builder().title(title).body(body).show();
        }
        let finished = match outcome {
            Ok(r) => BenchFinished {
                result: Some(r),
                error: None,
            },
            Err(e) => BenchFinished {
                result: None,
                error: Some(e),
            },
        };
        *state.bench_last.lock().expect("lock") = Some(finished.clone());
        state.bench.lock().expect("lock").take();
        if let Err(e) = app.emit(FINISHED_EVENT, &finished) {
            tracing::warn!(error = %e, "could not tell the window the benchmark ended");
        }
        tracing::info!("benchmark result sent");
    });
    Ok(())
}

/// Whether a benchmark runs, its latest progress, and the last one's outcome.
pub fn status(app: &AppHandle) -> BenchStatus {
    let state = app.state::<AppState>();
    let running = state.bench.lock().expect("lock").is_some();
    let progress = state.bench_progress.lock().expect("lock").clone();
    let last = state.bench_last.lock().expect("lock").clone();
    BenchStatus {
        running,
        progress: progress.filter(|_| running),
        last,
    }
}

/// Cancels the running benchmark; `false` when none runs.
pub fn cancel(app: &AppHandle) -> bool {
    let state = app.state::<AppState>();
    let slot = state.bench.lock().expect("lock");
    slot.as_ref().map(Cancel::cancel).is_some()
}

async fn measure(
    state: &AppState,
    model: Option<PathBuf>,
    quality: bool,
    cancel: &Cancel,
) -> Result<BenchResult, ErrorReport> {
    let core = &state.core;
    let model = state.model_or_preferred(model, "measure").await?;
    let _awake = kindling_core::awake::keep_awake("Kindling is benchmarking this computer");
    let speed = core
        .bench_speed_keeping_server(
            SpeedRequest {
                model,
                options: SpeedOptions::default(),
                port: None,
                probe_bandwidth: true,
            },
            cancel,
        )
        .await
        .map_err(|e| e.to_report())?;
    let (report, loaded) = speed;
    let name = report.model_name.clone().unwrap_or_else(|| {
        report
            .model_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let headline = headline(
        &name,
        report.quant.as_deref(),
        report.summary.gen_per_second.median,
    );
    // Then the quick answer-quality suite on the model already loaded (the speed result
    // is already saved; a failure or cancel here is reported beside it, not instead).
    let (quality, quality_error) = if quality {
        let request = QualityRequest {
            model: report.model_path.clone(),
            quick: true,
            think: None,
            resume: None,
            suite: None,
        };
        match core.bench_quality_on(request, Some(loaded), cancel).await {
            Ok(q) => (Some(q), None),
            Err(e) => (None, Some(e.to_report())),
        }
    } else {
        loaded.stop().await;
        (None, None)
    };
    let limit = report.summary.limit.as_ref().map(|l| {
        l.sentence(
            report.summary.gen_per_second.median,
            report.summary.effective_bandwidth_bytes_per_second,
        )
    });
    Ok(BenchResult {
        report,
        headline,
        limit,
        quality,
        quality_error,
    })
}
