//! "Use another Mac" in the Server screen: the paired Macs, pairing by the code another
//! Mac shows, and lending this one. Thin: each command calls one core function (the same
//! the `kindling pair`, `peers`, `unpair` and `share` commands use).

use kindling_core::peers::nearby::Nearby;
use kindling_core::peers::on_ask::{OnAsk, STOP_UNUSED_AFTER};
use kindling_core::peers::plan::Plan;
use kindling_core::peers::share::{DoorKey, Helper, ShareOptions, Users, DEAD_AFTER, HEARTBEAT};
use kindling_core::peers::status::PeerStatus;
use kindling_core::peers::{this_mac_name, PeerError, DEFAULT_SHARE_PORT};
use kindling_core::ErrorReport;
use serde::Serialize;
use tauri::State;

use crate::commands::report;
use crate::dto::{ServerStatus, WithPlan};
use crate::server_control::Choice;
use crate::state::AppState;

type Reply<T> = Result<T, ErrorReport>;

/// This Mac, lending: what the other Mac's owner types there.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Lending {
    /// The pairing code shown (good for one try, for ten minutes).
    pub code: String,
    /// This Mac's address as the other Mac types it (only needed from another network
    /// when `announced`).
    pub address: String,
    /// This Mac is announced on the local network (Bonjour): a Mac there finds it by the
    /// code alone.
    pub announced: bool,
    /// The most memory a share of a model may take here.
    pub memory_bytes: u64,
    /// Its GPU when lent, else the processor does the work.
    pub gpu: Option<String>,
    /// It lends only while plugged in.
    pub plugged_in_only: bool,
    /// It lends only while its lid is open.
    pub lid_open_only: bool,
}

/// The Mac lending now, with what it shows.
pub struct Lent {
    pub helper: Helper,
    pub view: Lending,
}

/// The paired Macs, each asked what it lends now.
#[tauri::command]
pub async fn peers(state: State<'_, AppState>) -> Reply<Vec<PeerStatus>> {
    state
        .core
        .peer_statuses(&this_mac_name(None))
        .await
        .map_err(report)
}

/// The Macs heard on the local network now (a couple of seconds of listening), each
/// marked when paired already.
#[tauri::command]
pub async fn nearby_macs(state: State<'_, AppState>) -> Reply<Vec<Nearby>> {
    state.core.nearby_macs().await.map_err(report)
}

/// Pairs with the Mac showing `code` at `address`, or (`address` empty) with the one on
/// the local network that shows a code now; its name.
#[tauri::command]
pub async fn pair_with(state: State<'_, AppState>, code: String, address: String) -> Reply<String> {
    let peer = state
        .core
        .pair_with_code(&code, Some(&address), &this_mac_name(None))
        .await
        .map_err(report)?;
    Ok(peer.name)
}

/// Forgets a paired Mac: neither can reach the other any more, and the server is no
/// longer served with it.
#[tauri::command]
pub fn unpair(state: State<'_, AppState>, name: String) -> Reply<String> {
    let peer = state
        .core
        .book()
        .remove(&name)
        .map_err(|e| report(PeerError::from(e)))?;
    crate::server_control::forget_with(&state.core, &peer.name);
    Ok(peer.name)
}

/// Lends this Mac to the Macs it paired with (as much memory as Settings allow, half by
/// default; its GPU unless Settings say not; its own model server), and shows a code for
/// one more to pair. Again while lending: a new code.
#[tauri::command]
pub async fn share_start(app: tauri::AppHandle, state: State<'_, AppState>) -> Reply<Lending> {
    let mut lent = state.lending.lock().await;
    if let Some(l) = lent.as_mut() {
        l.view.code = l.helper.show_code();
        return Ok(l.view.clone());
    }
    let core = &state.core;
    let ram = core.detect().await.hardware.ram_total_bytes;
    let opts = ShareOptions {
        host: std::net::IpAddr::from([0, 0, 0, 0]),
        port: DEFAULT_SHARE_PORT,
        memory_bytes: core.settings().lend_memory(ram),
        use_gpu: core.settings().lend_gpu,
        cache_limit_bytes: 20_000_000_000,
        heartbeat: HEARTBEAT,
        dead_after: DEAD_AFTER,
        serve_port: Some(core.settings().port),
        lend_when: core.settings().lend_when(),
        // While the menu-bar server serves nothing, a paired Mac may ask for a model
        // this Mac has (route first).
        on_ask: Some(OnAsk(std::sync::Arc::new(crate::on_ask::AppStarts {
            app: app.clone(),
        }))),
        stop_unused_after: STOP_UNUSED_AFTER,
        door_key: Some(DoorKey({
            let core = state.core.clone();
            std::sync::Arc::new(move || core.network_key())
        })),
    };
    let when = opts.lend_when;
    let name = this_mac_name(None);
    let lender = core.lender(&name, &opts).await.map_err(report)?;
    let offer = lender.offer.clone();
    let helper = Helper::open(
        core.identity().map_err(report)?,
        core.book(),
        lender,
        opts,
        core.paths(),
    )
    .await
    .map_err(report)?;
    let view = Lending {
        code: helper.show_code(),
        address: helper.reach_hint(),
        announced: helper.announced(),
        memory_bytes: offer.memory_bytes,
        gpu: offer.gpu,
        plugged_in_only: when.plugged_in,
        lid_open_only: when.lid_open,
    };
    // The tray follows who uses this Mac, as they come and go.
    let mut users = helper.users();
    let tray_app = app.clone();
    tauri::async_runtime::spawn(async move {
        while users.changed().await.is_ok() {
            crate::tray::refresh(&tray_app);
        }
    });
    *lent = Some(Lent {
        helper,
        view: view.clone(),
    });
    crate::tray::refresh(&app);
    Ok(view)
}

/// Who uses this Mac now, while it lends (`None` while it does not): the tray's section.
pub async fn users_now(app: &tauri::AppHandle) -> Option<Users> {
    use tauri::Manager;
    let state = app.state::<AppState>();
    let lent = state.lending.lock().await;
    lent.as_ref().map(|l| l.helper.users().borrow().clone())
}

/// Stops lending this Mac (its RPC server stops; the pairings are kept).
#[tauri::command]
pub async fn share_stop(app: tauri::AppHandle) -> Reply<bool> {
    Ok(stop_lending(&app).await)
}

/// Stops lending, telling each Mac using this one why ("its owner stopped lending it")
/// and stopping a model started for one; `false` when it did not lend.
pub async fn stop_lending(app: &tauri::AppHandle) -> bool {
    use tauri::Manager;
    let state = app.state::<AppState>();
    let lent = state.lending.lock().await.take();
    let Some(l) = lent else {
        return false;
    };
    l.helper.stop().await;
    drop(l);
    crate::tray::refresh(app);
    true
}

/// Whether this Mac lends itself now, and what it shows.
#[tauri::command]
pub async fn share_status(state: State<'_, AppState>) -> Reply<Option<Lending>> {
    Ok(state.lending.lock().await.as_ref().map(|l| l.view.clone()))
}

/// `with`'s plan for `model` (or the one the server would serve): each Mac's share and
/// the speed to expect, before starting. `local_memory`: the most of this Mac's memory
/// the model may take ("12GB"; empty: all but what the system keeps).
#[tauri::command]
pub async fn serve_with_plan(
    state: State<'_, AppState>,
    model: Option<std::path::PathBuf>,
    with: Vec<String>,
    local_memory: Option<String>,
) -> Reply<WithPlan> {
    let choice = choice(&state, model, with, local_memory).await?;
    let (_, planned) = choice.plan(&state.core).await.map_err(report)?;
    let routed = planned.route.is_some();
    Ok(WithPlan {
        lines: planned.lines(&crate::server_control::file_name(&choice.model)),
        fits: routed || !matches!(planned.plan, Plan::TooBig { .. }),
        split: !routed && matches!(planned.plan, Plan::Split { .. }),
        routed,
    })
}

/// Serves `model` (or the one the server would serve) with the paired Macs `with`, as
/// [`serve_with_plan`] planned: the menu-bar server, its address unchanged.
#[tauri::command]
pub async fn serve_with(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    model: Option<std::path::PathBuf>,
    with: Vec<String>,
    local_memory: Option<String>,
) -> Reply<ServerStatus> {
    let choice = choice(&state, model, with, local_memory).await?;
    crate::server_control::start_with(&app, choice).await
}

/// Serves the model again without the Mac that stopped answering.
#[tauri::command]
pub async fn serve_without(app: tauri::AppHandle) -> Reply<ServerStatus> {
    crate::server_control::start_without_lost(&app).await
}

/// Serves the model on this Mac alone from now on: the Macs it was served with are
/// forgotten (they stay paired), and it starts here in place of what runs.
#[tauri::command]
pub async fn serve_alone(app: tauri::AppHandle) -> Reply<ServerStatus> {
    crate::server_control::start_alone(&app).await
}

async fn choice(
    state: &AppState,
    model: Option<std::path::PathBuf>,
    with: Vec<String>,
    local_memory: Option<String>,
) -> Reply<Choice> {
    let local_memory = match local_memory.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(kindling_core::units::parse_bytes(text).map_err(|why| {
            ErrorReport {
                code: kindling_core::ErrorCode::Settings,
                hint: None,
                message: format!(
                    "\"{text}\" is not an amount of memory ({why}). Type it like 12GB or 800MB, or leave it empty to let the model use all this Mac can give."
                ),
            }
        })?),
    };
    Ok(Choice {
        model: state.model_or_preferred(model, "serve").await?,
        with,
        local_memory,
        asked_by: None,
    })
}
