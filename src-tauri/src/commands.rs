//! The webview's only way into Kindling: each command is a few lines calling one core
//! function (or the shared desktop path the tray also uses). Errors cross as
//! `{code, message}` ([`ErrorReport`]). `COMMANDS` in build.rs lists them for the
//! capability file, and a test checks the UI's calls against that list.

use std::path::PathBuf;

use kindling_core::cleanup::{Applied, ApplyMode, Reason};
use kindling_core::download::{hf, Control};
use kindling_core::history::{RunDetail, RunSummary};
use kindling_core::recommend::machine::{MachineFile, Recommendation};
use kindling_core::recommend::Goal;
use kindling_core::showdown::{Contender, LosersCleanup, Proposal};
use kindling_core::store::inventory::{InstalledModel, Inventory};
use kindling_core::store::{PullRequest, Pulled};
use kindling_core::{Cancel, Detection, ErrorCode, ErrorReport, Settings};

use crate::dialogs::{self, Ask};
use kindling_core::server::access;
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_clipboard_manager::ClipboardExt;
use tauri_plugin_opener::OpenerExt;

use crate::dto::{
    AppInfo, BenchStatus, CleanupView, MachineChoice, ReasonText, Rescored, ServedView,
    ServerStatus, ShowdownStatus,
};
use crate::state::AppState;
use crate::{bench_job, server_control};

type Reply<T> = Result<T, ErrorReport>;

pub(crate) fn report(e: impl Into<kindling_core::Error>) -> ErrorReport {
    e.into().to_report()
}

pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        app_info,
        detect,
        recommendation,
        machine_profiles,
        pick_machine_file,
        save_machine_profile,
        gpu_checks,
        gpu_checks_forget,
        cli_install,
        bench_start,
        bench_cancel,
        bench_status,
        showdown_proposal,
        showdown_start,
        showdown_status,
        showdown_stop,
        showdown_continue,
        showdown_use,
        showdown_cleanup,
        runs,
        run_detail,
        run_answers,
        rescore_run,
        export_run,
        open_run_page,
        open_showdown_page,
        import_run,
        models,
        servable_models,
        pull_model,
        pull_control,
        remove_model,
        add_model_folder,
        cleanup_plan,
        cleanup_apply,
        server_status,
        server_start,
        server_stop,
        second_status,
        second_start,
        second_stop,
        copy_api_address,
        served_usage,
        save_served_evidence,
        judge_runs,
        crate::other_macs::peers,
        crate::other_macs::nearby_macs,
        crate::other_macs::pair_with,
        crate::other_macs::unpair,
        crate::other_macs::share_start,
        crate::other_macs::share_stop,
        crate::other_macs::share_status,
        crate::other_macs::serve_with_plan,
        crate::other_macs::serve_with,
        crate::other_macs::serve_without,
        crate::other_macs::serve_alone,
        open_chat,
        settings_get,
        settings_set,
        set_network_access,
        set_hf_token,
        set_start_at_login,
        close_window,
        quit,
    ]
}

#[tauri::command]
pub fn app_info(app: AppHandle, state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        home: state.core.paths().home().display().to_string(),
        since_launch_ms: state.started.elapsed().as_secs_f64() * 1e3,
        start_at_login: app.autolaunch().is_enabled().unwrap_or(false),
        grader_version: kindling_core::bench::graders::GRADER_VERSION,
        machine: kindling_core::words::MACHINE.into(),
    }
}

#[tauri::command]
pub async fn detect(state: State<'_, AppState>) -> Reply<Detection> {
    Ok(state.core.detect().await)
}

/// The recommendation for this Mac, or — "plan for another Mac" — for `machine`: a
/// profile Kindling ships (by name) or one written on that Mac (a file).
#[tauri::command]
pub async fn recommendation(
    state: State<'_, AppState>,
    goal: Option<Goal>,
    machine: Option<String>,
) -> Reply<Recommendation> {
    let goal = goal.unwrap_or(state.core.settings().goal);
    match machine {
        Some(m) => {
            let file = MachineFile::find(&m).map_err(report)?;
            Ok(state.core.recommend_for(&file, goal))
        }
        None => state.core.recommend(goal).await.map_err(report),
    }
}

/// The machine profiles Kindling ships, to plan for another Mac.
#[tauri::command]
pub fn machine_profiles() -> Vec<MachineChoice> {
    kindling_core::recommend::machine::SHIPPED_MACHINES
        .iter()
        .map(|(name, text)| {
            let file = MachineFile::parse(text).expect("the shipped profiles are checked");
            MachineChoice {
                name: (*name).into(),
                summary: kindling_core::recommend::machine::profile(&file.hardware, None).2,
            }
        })
        .collect()
}

/// Asks for a machine profile file (written by `kindling detect --json` on that Mac).
#[tauri::command]
pub async fn pick_machine_file(app: AppHandle) -> Option<String> {
    dialogs::ask(&app, Ask::PickFile, |d| {
        d.add_filter("Machine profile", &["json"])
    })
    .await
    .map(|p| p.display().to_string())
}

/// The first-use GPU checks' verdicts (Home names the kinds of model kept off the GPU).
#[tauri::command]
pub async fn gpu_checks(
    state: State<'_, AppState>,
) -> Reply<Vec<kindling_core::history::GpuCheck>> {
    state.core.gpu_checks().await.map_err(report)
}

/// "Install the kindling command": links the command the app carries into the owner's
/// PATH; the sentence says where and what to do next.
#[tauri::command]
pub fn cli_install() -> Reply<String> {
    let command = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("kindling")))
        .unwrap_or_default();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = std::env::var("PATH").unwrap_or_default();
    crate::cli_link::install(&command, &home, &path)
        .map(|l| l.sentence())
        .map_err(|message| ErrorReport {
            code: ErrorCode::Io,
            hint: None,
            message,
        })
}

/// "Check the graphics card again": forgets every verdict; returns how many.
#[tauri::command]
pub async fn gpu_checks_forget(state: State<'_, AppState>) -> Reply<u64> {
    state.core.forget_gpu_checks().await.map_err(report)
}

#[tauri::command]
pub fn bench_start(app: AppHandle, model: Option<PathBuf>, quality: bool) -> Reply<()> {
    bench_job::start(&app, model, quality)
}

#[tauri::command]
pub fn bench_cancel(app: AppHandle) -> bool {
    bench_job::cancel(&app)
}

#[tauri::command]
pub fn bench_status(app: AppHandle) -> BenchStatus {
    bench_job::status(&app)
}

/// Every answer of a quality run, with the grader's verdict (History's run detail).
/// The candidates Kindling proposes for a showdown (goal: the one in Settings unless given).
#[tauri::command]
pub async fn showdown_proposal(
    state: State<'_, AppState>,
    goal: Option<Goal>,
    quick: bool,
) -> Reply<Proposal> {
    let goal = goal.unwrap_or(state.core.settings().goal);
    state
        .core
        .showdown_proposal(goal, quick)
        .await
        .map_err(report)
}

/// Starts a showdown over the candidates the owner kept; returns its id.
#[tauri::command]
pub async fn showdown_start(
    app: AppHandle,
    goal: Goal,
    quick: bool,
    contenders: Vec<Contender>,
) -> Reply<i64> {
    crate::showdown_job::start(&app, goal, quick, &contenders).await
}

#[tauri::command]
pub async fn showdown_status(app: AppHandle) -> Reply<ShowdownStatus> {
    crate::showdown_job::status(&app).await
}

/// Stops the running showdown (what it measured is kept); `false` when none runs.
#[tauri::command]
pub fn showdown_stop(app: AppHandle) -> bool {
    crate::showdown_job::stop(&app)
}

/// Continues showdown `id`, which the owner stopped: what was measured is kept.
#[tauri::command]
pub async fn showdown_continue(app: AppHandle, id: i64) -> Reply<()> {
    crate::showdown_job::continue_stopped(&app, id).await
}

/// Makes showdown `id`'s winner the model the menu-bar server serves (restarting a
/// running server with it).
#[tauri::command]
pub async fn showdown_use(app: AppHandle, id: i64) -> Reply<ServerStatus> {
    let state = tauri::Manager::state::<AppState>(&app);
    let sd = state.core.showdown_report(id).await.map_err(report)?;
    let Some(winner) = sd.winner() else {
        return Err(ErrorReport {
            code: ErrorCode::ModelNotFound,
            hint: None,
            message: format!("This showdown has no winner to use. {}", sd.verdict),
        });
    };
    if !winner.path.is_file() {
        return Err(ErrorReport {
            code: ErrorCode::ModelNotFound,
            hint: None,
            message: format!(
                "{} is no longer at {} (it was moved or removed), so the server was left as it \
                 was. Get it again on Models, or start a new showdown.",
                winner.label,
                winner.path.display()
            ),
        });
    }
    let path = winner.path.clone();
    // Checked before anything is saved: a winner that does not fit beside the second
    // model would be the setting the next start fails on.
    if let Some(second) = state.second.config().await {
        state
            .core
            .check_beside_second(&path, &second)
            .await
            .map_err(report)?;
    }
    state
        .core
        .update_settings(|s| s.server_model = Some(path.clone()))
        .map_err(report)?;
    server_control::restart_with(&app, path).await
}

/// The losers' cleanup plan of showdown `id`; with `apply`, carries it out.
#[tauri::command]
pub async fn showdown_cleanup(
    state: State<'_, AppState>,
    id: i64,
    apply: bool,
) -> Reply<LosersCleanup> {
    state.core.showdown_cleanup(id, apply).await.map_err(report)
}

#[tauri::command]
pub async fn run_answers(
    state: State<'_, AppState>,
    id: i64,
) -> Reply<Vec<kindling_core::bench::answers::AnswerView>> {
    state.core.run_answers(id).await.map_err(report)
}

/// Re-grades a quality run's stored answers with this version's graders; the score
/// before and after.
#[tauri::command]
pub async fn rescore_run(state: State<'_, AppState>, id: i64) -> Reply<Rescored> {
    let before = state
        .core
        .db()
        .run_detail(id)
        .await
        .map_err(report)?
        .run
        .result
        .and_then(|r| r.score());
    let after = state.core.rescore(id, None).await.map_err(report)?;
    Ok(Rescored {
        before,
        after: after.score,
        grader_version: after.grader_version,
    })
}

#[tauri::command]
pub async fn runs(state: State<'_, AppState>) -> Reply<Vec<RunSummary>> {
    state.core.db().list_runs(10_000).await.map_err(report)
}

#[tauri::command]
pub async fn run_detail(state: State<'_, AppState>, id: i64) -> Reply<RunDetail> {
    state.core.db().run_detail(id).await.map_err(report)
}

/// Whether quality runs `a` and `b` answered alike, test by test (the sentence the
/// showdown and `kindling history compare` use); `None` when either is not a quality
/// run or they share no test.
#[tauri::command]
pub async fn judge_runs(state: State<'_, AppState>, a: i64, b: i64) -> Reply<Option<String>> {
    Ok(state
        .core
        .judge_runs(a, b)
        .await
        .map(|j| j.sentence(&format!("Run {a}"), &format!("run {b}"))))
}

/// Asks where to save, then writes the run's versioned JSON; `None` when the user
/// cancelled the dialog.
#[tauri::command]
pub async fn export_run(
    app: AppHandle,
    state: State<'_, AppState>,
    id: i64,
) -> Reply<Option<String>> {
    let doc = state.core.db().export_run(id).await.map_err(report)?;
    let Some(path) = dialogs::ask(&app, Ask::SaveFile, |d| {
        d.set_file_name(format!("kindling-run-{id}.json"))
            .add_filter("Kindling run", &["json"])
    })
    .await
    else {
        return Ok(None);
    };
    let text = serde_json::to_string_pretty(&doc).expect("an export serializes");
    tokio::fs::write(&path, text)
        .await
        .map_err(|source| report(io_error(&path, source)))?;
    Ok(Some(path.display().to_string()))
}

/// A page written for the owner, and whether the browser was asked to open it.
#[derive(Debug, serde::Serialize, ts_rs::TS)]
pub struct PageShown {
    pub path: String,
    pub opened: bool,
}

/// Writes run `id` as one self-contained web page (every prompt, answer and grader's
/// reason; the speed with its spread) and opens it in the browser.
#[tauri::command]
pub async fn open_run_page(
    app: AppHandle,
    state: State<'_, AppState>,
    id: i64,
) -> Reply<PageShown> {
    let doc = state.core.db().export_run(id).await.map_err(report)?;
    show_page(
        &app,
        &state,
        &format!("kindling-run-{id}.html"),
        &kindling_core::history::page::html(&doc),
    )
}

/// Writes showdown `id` (its verdict, ranking and every run behind it) as one web page
/// and opens it in the browser.
#[tauri::command]
pub async fn open_showdown_page(
    app: AppHandle,
    state: State<'_, AppState>,
    id: i64,
) -> Reply<PageShown> {
    let x = state.core.showdown_export(id).await.map_err(report)?;
    show_page(
        &app,
        &state,
        &format!("kindling-showdown-{id}.html"),
        &kindling_core::showdown::page::html(&x),
    )
}

/// The page goes to Downloads (else Kindling's `pages/`), then to the browser; a machine
/// without one still has the file, and the app says where.
fn show_page(app: &AppHandle, state: &AppState, name: &str, text: &str) -> Reply<PageShown> {
    let downloads = tauri::Manager::path(app).download_dir().ok();
    let path = state
        .core
        .save_page(downloads.as_deref(), name, text)
        .map_err(report)?;
    let opened = app
        .opener()
        .open_path(path.display().to_string(), None::<&str>)
        .is_ok();
    Ok(PageShown {
        path: path.display().to_string(),
        opened,
    })
}

/// What the servers answered: use per model per day (a week), today's bad answers, and
/// which of them this Kindling can still save the evidence of.
#[tauri::command]
pub async fn served_usage(state: State<'_, AppState>) -> Reply<ServedView> {
    let db = state.core.db();
    let days = db.served_days(7).await.map_err(report)?;
    let went_wrong = db
        .served_faults(&kindling_core::front::today())
        .await
        .map_err(report)?;
    let evidence = state.core.front().evidence().iter().map(|e| e.id).collect();
    Ok(ServedView {
        days,
        went_wrong,
        evidence,
    })
}

/// Asks where to save, then writes the evidence of bad answer `id` (the request, the end
/// of the stream, the server's arguments and build) to attach to a bug report; `None`
/// when the owner cancelled the dialog.
#[tauri::command]
pub async fn save_served_evidence(
    app: AppHandle,
    state: State<'_, AppState>,
    id: i64,
) -> Reply<Option<String>> {
    let Some(path) = dialogs::ask(&app, Ask::SaveFile, |d| {
        d.set_file_name(format!("kindling-bad-answer-{id}.json"))
            .add_filter("Kindling evidence", &["json"])
    })
    .await
    else {
        return Ok(None);
    };
    state
        .core
        .front()
        .save_evidence(id, &path)
        .map_err(report)?;
    Ok(Some(path.display().to_string()))
}

/// Writes this Mac's profile (what `kindling detect --json` prints, with its measured
/// memory speed) where the owner chooses, to plan for this Mac from another one.
#[tauri::command]
pub async fn save_machine_profile(
    app: AppHandle,
    state: State<'_, AppState>,
) -> Reply<Option<String>> {
    // Measures memory speed first when it never was, so the profile carries it.
    state.core.machine_profile().await.map_err(report)?;
    let detection = state.core.detect().await;
    let Some(path) = dialogs::ask(&app, Ask::SaveFile, |d| {
        d.set_file_name("kindling-machine.json")
            .add_filter("Machine profile", &["json"])
    })
    .await
    else {
        return Ok(None);
    };
    let text = serde_json::to_string_pretty(&detection).expect("a detection serializes");
    tokio::fs::write(&path, text)
        .await
        .map_err(|source| report(io_error(&path, source)))?;
    Ok(Some(path.display().to_string()))
}

/// Asks for a run file, then imports it; returns the new run's id.
#[tauri::command]
pub async fn import_run(app: AppHandle, state: State<'_, AppState>) -> Reply<Option<i64>> {
    let Some(path) = dialogs::ask(&app, Ask::PickFile, |d| {
        d.add_filter("Kindling run", &["json"])
    })
    .await
    else {
        return Ok(None);
    };
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| report(io_error(&path, source)))?;
    let doc = serde_json::from_str(&text).map_err(|e| ErrorReport {
        code: ErrorCode::Database,
        hint: None,
        message: format!(
            "{} is not a Kindling run file ({e}). Export the run again from Kindling.",
            path.display()
        ),
    })?;
    let now = kindling_core::history::now();
    state
        .core
        .db()
        .import_run(&doc, &now)
        .await
        .map(Some)
        .map_err(report)
}

#[tauri::command]
pub async fn models(state: State<'_, AppState>) -> Reply<Inventory> {
    let core = &state.core;
    core.inventory(&core.model_roots()).await.map_err(report)
}

/// Every model a server can start with (the second model's choices).
#[tauri::command]
pub async fn servable_models(state: State<'_, AppState>) -> Reply<Vec<InstalledModel>> {
    state.core.servable_models().await.map_err(report)
}

/// Downloads a catalog model (`family:quant`); progress arrives as `download` events.
#[tauri::command]
pub async fn pull_model(state: State<'_, AppState>, id: String) -> Reply<Pulled> {
    let request = PullRequest::from_catalog(&state.core.catalog(), &id).map_err(report)?;
    let control = Control {
        pause: Cancel::new(),
        cancel: Cancel::new(),
    };
    state
        .downloads
        .lock()
        .expect("lock")
        .insert(id.clone(), control.clone());
    let pulled = state.core.pull(&request, &control).await;
    state.downloads.lock().expect("lock").remove(&id);
    pulled.map_err(report)
}

/// Pauses (`pause: true`; the partial file is kept) or cancels a download.
#[tauri::command]
pub fn pull_control(state: State<'_, AppState>, id: String, pause: bool) -> bool {
    let downloads = state.downloads.lock().expect("lock");
    let Some(c) = downloads.get(&id) else {
        return false;
    };
    if pause {
        c.pause.cancel()
    } else {
        c.cancel.cancel()
    }
    true
}

/// With `apply: false`, says what removing would do; with `apply: true`, does it.
#[tauri::command]
pub async fn remove_model(state: State<'_, AppState>, id: i64, apply: bool) -> Reply<String> {
    state.core.remove_model(id, apply).await.map_err(report)
}

/// Asks for a folder of GGUF models and uses it in place.
#[tauri::command]
pub async fn add_model_folder(app: AppHandle, state: State<'_, AppState>) -> Reply<Option<String>> {
    let Some(dir) = dialogs::ask(&app, Ask::PickFolder, |d| d).await else {
        return Ok(None);
    };
    let added = state.core.add_model_folder(&dir).map_err(report)?;
    Ok(Some(added.display().to_string()))
}

#[tauri::command]
pub async fn cleanup_plan(state: State<'_, AppState>) -> Reply<CleanupView> {
    let (id, plan) = state.core.cleanup_plan().await.map_err(report)?;
    let reasons = Reason::ALL
        .iter()
        .map(|&reason| ReasonText {
            reason,
            text: reason.describe().into(),
        })
        .collect();
    Ok(CleanupView { id, plan, reasons })
}

/// Moves the chosen items of plan `id` to the Trash (all of them when `paths` is empty).
#[tauri::command]
pub async fn cleanup_apply(
    state: State<'_, AppState>,
    id: String,
    paths: Vec<PathBuf>,
) -> Reply<Applied> {
    state
        .core
        .cleanup_apply(&id, &paths, ApplyMode::Trash)
        .await
        .map_err(report)
}

#[tauri::command]
pub async fn server_status(app: AppHandle) -> ServerStatus {
    server_control::status(&app).await
}

#[tauri::command]
pub async fn server_start(app: AppHandle, model: Option<PathBuf>) -> Reply<ServerStatus> {
    server_control::start(&app, model).await
}

#[tauri::command]
pub async fn server_stop(app: AppHandle) -> ServerStatus {
    server_control::stop(&app).await
}

#[tauri::command]
pub async fn second_status(app: AppHandle) -> ServerStatus {
    server_control::second_status(&app).await
}

/// Starts the second model (on the processor, its own port) beside the menu-bar one.
#[tauri::command]
pub async fn second_start(app: AppHandle, model: Option<PathBuf>) -> Reply<ServerStatus> {
    server_control::start_second(&app, model).await
}

#[tauri::command]
pub async fn second_stop(app: AppHandle) -> ServerStatus {
    server_control::stop_second(&app).await
}

#[tauri::command]
pub async fn copy_api_address(app: AppHandle) -> bool {
    match server_control::status(&app).await.api_url {
        Some(url) => app.clipboard().write_text(url).is_ok(),
        None => false,
    }
}

#[tauri::command]
pub async fn open_chat(app: AppHandle) -> bool {
    match server_control::status(&app).await.chat_url {
        Some(url) => app.opener().open_url(url, None::<&str>).is_ok(),
        None => false,
    }
}

#[tauri::command]
pub fn settings_get(state: State<'_, AppState>) -> Settings {
    state.core.settings()
}

/// The settings the Settings screen edits; fields left out stay as they are.
#[derive(Debug, serde::Deserialize, ts_rs::TS)]
pub struct SettingsChange {
    pub port: Option<u16>,
    /// The second model's port.
    #[serde(default)]
    pub second_port: Option<u16>,
    pub goal: Option<Goal>,
    pub server_model: Option<PathBuf>,
    /// The one web site allowed to use the server from a browser ("" clears it).
    #[serde(default)]
    pub cors_origin: Option<String>,
    /// Minutes idle before the menu-bar server frees the model's memory (0: never).
    #[serde(default)]
    pub sleep_after_minutes: Option<u32>,
    /// End a served answer that turns into garbage with an error (else it runs on).
    #[serde(default)]
    pub end_bad_answers: Option<bool>,
    /// Minutes a showdown may spend settling a tie at the top (0: never).
    #[serde(default)]
    pub tie_minutes: Option<u32>,
    /// Lend this Mac on battery too (from the next time it starts lending).
    #[serde(default)]
    pub lend_on_battery: Option<bool>,
    /// Lend this Mac only while its lid is open (from the next time it starts lending).
    #[serde(default)]
    pub lend_lid_open_only: Option<bool>,
    /// The most memory a share may take here when lending, bytes (0: half of it).
    #[serde(default)]
    pub lend_memory_bytes: Option<u64>,
    /// Lend the GPU too (from the next time it starts lending).
    #[serde(default)]
    pub lend_gpu: Option<bool>,
}

#[tauri::command]
pub fn settings_set(state: State<'_, AppState>, change: SettingsChange) -> Reply<Settings> {
    let refuse = |message: String| ErrorReport {
        code: ErrorCode::Settings,
        hint: None,
        message,
    };
    if let Some(p) = [change.port, change.second_port]
        .into_iter()
        .flatten()
        .find(|p| *p < 1024)
    {
        return Err(refuse(format!(
            "Port {p} is reserved for the system. Choose a port between 1024 and 65535; \
             the setting was not changed."
        )));
    }
    let current = state.core.settings();
    if change.port.unwrap_or(current.port) == change.second_port.unwrap_or(current.second_port) {
        return Err(refuse(
            "The server and the second model cannot share a port. Choose two different \
             ports; the setting was not changed."
                .into(),
        ));
    }
    let origin = match change.cors_origin.as_deref().map(access::parse_origin) {
        Some(Err(why)) => {
            return Err(ErrorReport {
                code: ErrorCode::Settings,
                hint: None,
                message: format!("{why}. The setting was not changed."),
            })
        }
        Some(Ok(o)) => Some(o),
        None => None,
    };
    state
        .core
        .update_settings(|s| {
            if let Some(o) = origin {
                s.cors_origin = o;
            }
            if let Some(p) = change.port {
                s.port = p;
            }
            if let Some(p) = change.second_port {
                s.second_port = p;
            }
            if let Some(g) = change.goal {
                s.goal = g;
            }
            if let Some(m) = change.tie_minutes {
                s.tie_minutes = m;
            }
            if let Some(b) = change.lend_on_battery {
                s.lend_on_battery = b;
            }
            if let Some(l) = change.lend_lid_open_only {
                s.lend_lid_open_only = l;
            }
            if let Some(m) = change.lend_memory_bytes {
                s.lend_memory_bytes = m;
            }
            if let Some(g) = change.lend_gpu {
                s.lend_gpu = g;
            }
            if let Some(m) = change.sleep_after_minutes {
                s.sleep_after_minutes = m;
            }
            if let Some(e) = change.end_bad_answers {
                s.end_bad_answers = e;
            }
            if let Some(m) = change.server_model {
                s.server_model = Some(m).filter(|m| !m.as_os_str().is_empty());
            }
        })
        .map_err(report)
}

/// Turns "allow other devices on my network" on (with a new API key) or off, and
/// restarts the running servers (both, when a second runs) so that what they do is what
/// the switch says.
#[tauri::command]
pub async fn set_network_access(app: AppHandle, allow: bool) -> Reply<ServerStatus> {
    let state = tauri::Manager::state::<AppState>(&app);
    state.core.set_network_access(allow).map_err(report)?;
    crate::server_control::restart_running(&app).await
}

/// Saves the Hugging Face token in the keychain (`None` forgets it).
#[tauri::command]
pub fn set_hf_token(token: Option<String>) -> Reply<()> {
    let token = token.filter(|t| !t.trim().is_empty());
    hf::set_token(token.as_deref()).map_err(report)
}

#[tauri::command]
pub fn set_start_at_login(app: AppHandle, on: bool) -> Reply<bool> {
    let launcher = app.autolaunch();
    let done = if on {
        launcher.enable()
    } else {
        launcher.disable()
    };
    done.map_err(|e| ErrorReport {
        code: ErrorCode::Settings,
        hint: None,
        message: format!("Kindling could not change whether it starts at login: {e}."),
    })?;
    Ok(on)
}

fn io_error(path: &std::path::Path, source: std::io::Error) -> kindling_core::Error {
    kindling_core::Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Cmd-W / Ctrl-W: closes the window (its webview is destroyed; the app stays in the
/// menu bar).
#[tauri::command]
pub fn close_window(app: AppHandle) {
    crate::window::close(&app);
}

/// "Quit Kindling" in the window: what the menu bar's Quit does (the served model's
/// server stops first).
#[tauri::command]
pub async fn quit(app: AppHandle) {
    crate::quit(&app).await;
}
