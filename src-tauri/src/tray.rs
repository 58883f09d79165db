//! The menu-bar icon: its picture says the server's state; its menu starts and stops
//! the server, copies the API address, opens chat, benchmarks, opens the window, quits.

use kindling_core::peers::share::{using_line, Users};
use kindling_core::server::ServerState;
use kindling_core::words::MACHINE;
use tauri::image::Image;
use tauri::menu::{Menu, MenuBuilder, MenuEvent, MenuItemBuilder};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Wry};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tauri_plugin_notification::NotificationExt;
use tauri_plugin_opener::OpenerExt;

use crate::dto::ServerStatus;
use crate::server_control::Which;
use crate::{bench_job, server_control, window};

const ID: &str = "kindling";

pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let status = ServerStatus::default();
    TrayIconBuilder::with_id(ID)
        .icon(icon(&status.state))
        // Black-on-clear images that macOS tints for light and dark menu bars.
        .icon_as_template(cfg!(target_os = "macos"))
        .tooltip(tooltip(&status))
        .menu(&menu(app, &status, &status, None)?)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu)
        .build(app)?;
    Ok(())
}

/// Redraws the icon and menu from what the app holds now.
pub fn refresh(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let status = server_control::status(&app).await;
        let second = server_control::second_status(&app).await;
        let lending = crate::other_macs::users_now(&app).await;
        let Some(tray) = app.tray_by_id(ID) else {
            return;
        };
        let _ = tray.set_icon(Some(icon(&status.state)));
        let _ = tray.set_icon_as_template(cfg!(target_os = "macos"));
        let _ = tray.set_tooltip(Some(tooltip(&status)));
        if let Ok(m) = menu(&app, &status, &second, lending.as_ref()) {
            let _ = tray.set_menu(Some(m));
        }
    });
}

/// "Kindling — running gemma-3-270m"
pub fn tooltip(s: &ServerStatus) -> String {
    let what = match &s.state {
        ServerState::Stopped => match &s.lost {
            Some(lost) => format!("server stopped: {} stopped answering", lost.name),
            None => "server stopped".to_string(),
        },
        ServerState::Starting { .. } => "server starting…".to_string(),
        ServerState::Ready { asleep: true, .. } => format!(
            "{} asleep (memory freed; it wakes on the next request)",
            s.model_name.as_deref().unwrap_or("the model")
        ),
        ServerState::Ready { .. } => {
            format!("serving {}", s.model_name.as_deref().unwrap_or("a model"))
        }
        ServerState::Stopping => "server stopping…".to_string(),
        ServerState::Failed { .. } => "server failed — open Kindling for why".to_string(),
    };
    format!("Kindling — {what}")
}

fn icon(state: &ServerState) -> Image<'static> {
    let bytes: &'static [u8] = match state {
        ServerState::Stopped | ServerState::Stopping => include_bytes!("../icons/tray-stopped.png"),
        ServerState::Starting { .. } => include_bytes!("../icons/tray-starting.png"),
        ServerState::Ready { .. } => include_bytes!("../icons/tray-running.png"),
        ServerState::Failed { .. } => include_bytes!("../icons/tray-failed.png"),
    };
    Image::from_bytes(bytes).expect("tray icons are valid PNGs")
}

/// The menu-bar server's part of the menu, under the tooltip line: `(id, text)`, with no
/// id for a line that only says something. While a model loads it says so, and the one
/// item cancels the start by name (a second click on "Start server" used to cancel it
/// without a word).
pub fn served_entries(s: &ServerStatus) -> Vec<(Option<&'static str>, String)> {
    let mut entries = state_entries(s);
    if matches!(s.state, ServerState::Ready { .. }) {
        entries.extend(share_entries(s));
        if let Some(mac) = &s.routed_to {
            entries.push((None, format!("Answered by {mac}, which serves it")));
        }
        if let Some(mac) = &s.started_for {
            entries.push((None, format!("Started for {mac}, which asked for it")));
        }
    }
    if let Some(lost) = &s.lost {
        entries.push((
            Some("open-server"),
            format!(
                "{} stopped answering: the model stopped — see what to do",
                lost.name
            ),
        ));
    }
    if s.went_wrong_today > 0 {
        entries.push((
            Some("open-server"),
            format!(
                "{} went wrong today — see why",
                kindling_core::words::count(s.went_wrong_today.into(), "answer", "answers")
            ),
        ));
    }
    entries
}

/// A model served with other Macs: each Mac's share, and whether it answers.
fn share_entries(s: &ServerStatus) -> Vec<(Option<&'static str>, String)> {
    s.shares
        .iter()
        .map(|m| {
            let state = if m.answering {
                ""
            } else {
                " — not answering"
            };
            (
                None,
                format!(
                    "{}: {} ({}){state}",
                    m.who,
                    kindling_core::words::count(m.layers.into(), "layer", "layers"),
                    kindling_core::units::format_bytes(m.bytes)
                ),
            )
        })
        .collect()
}

fn state_entries(s: &ServerStatus) -> Vec<(Option<&'static str>, String)> {
    match &s.state {
        ServerState::Ready { .. } => vec![
            (Some("toggle"), "Stop server".into()),
            (
                None,
                format!("Model: {}", s.model_name.as_deref().unwrap_or("?")),
            ),
            (None, s.api_url.clone().unwrap_or_default()),
            (Some("copy"), "Copy API address".into()),
            (Some("chat"), "Open chat".into()),
        ],
        ServerState::Starting { .. } => vec![(Some("toggle"), "Cancel starting the server".into())],
        ServerState::Stopping => vec![],
        ServerState::Stopped | ServerState::Failed { .. } => {
            vec![(Some("toggle"), "Start server".into())]
        }
    }
}

/// The second server's part of the menu: `(id, text)`, with no id for a line that
/// only says something. Empty while no second model was ever chosen.
pub fn second_entries(s: &ServerStatus) -> Vec<(Option<&'static str>, String)> {
    let name = s.model_name.clone().or_else(|| {
        s.model_path
            .as_deref()
            .map(|p| server_control::file_name(std::path::Path::new(p)))
    });
    let Some(name) = name else {
        return Vec::new();
    };
    match &s.state {
        ServerState::Ready { asleep, .. } => vec![
            (
                None,
                format!(
                    "Second model: {name}, on the processor{}",
                    if *asleep { " (asleep)" } else { "" }
                ),
            ),
            (None, s.api_url.clone().unwrap_or_default()),
            (Some("second-copy"), "Copy second model's address".into()),
            (Some("second-toggle"), "Stop second model".into()),
        ],
        ServerState::Starting { .. } => vec![
            (None, format!("Second model: {name}, starting…")),
            (
                Some("second-toggle"),
                "Cancel starting the second model".into(),
            ),
        ],
        ServerState::Stopping => vec![(None, format!("Second model: {name}, stopping…"))],
        ServerState::Failed { .. } => vec![
            (
                None,
                "Second model stopped with an error — open Kindling for why".into(),
            ),
            (
                Some("second-toggle"),
                format!("Start second model ({name})"),
            ),
        ],
        ServerState::Stopped => vec![(
            Some("second-toggle"),
            format!("Start second model ({name})"),
        )],
    }
}

/// This Mac lending itself: a line that says so (it opens the Server screen), then one
/// per paired Mac using it now. Empty while it does not lend.
pub fn lending_entries(users: Option<&Users>) -> Vec<(Option<&'static str>, String)> {
    let Some(users) = users else {
        return Vec::new();
    };
    let mut entries = vec![(
        Some("open-server"),
        if users.is_empty() {
            format!("Lending this {MACHINE}: no other Mac uses it now")
        } else {
            format!("Lending this {MACHINE} to:")
        },
    )];
    entries.extend(
        users
            .iter()
            .map(|(name, using)| (None, format!("  {}", using_line(name, using)))),
    );
    entries
}

fn menu(
    app: &AppHandle,
    s: &ServerStatus,
    second: &ServerStatus,
    lending: Option<&Users>,
) -> tauri::Result<Menu<Wry>> {
    let label = |id: &str, text: &str| MenuItemBuilder::with_id(id, text).build(app);
    let note = |text: &str| MenuItemBuilder::new(text).enabled(false).build(app);
    let mut m = MenuBuilder::new(app).item(&note(&tooltip(s))?);
    let second = second_entries(second);
    let separator = (!second.is_empty()).then_some((None, String::new()));
    let lent = lending_entries(lending);
    let lent_separator = (!lent.is_empty()).then_some((None, String::new()));
    for (id, text) in served_entries(s)
        .into_iter()
        .chain(separator)
        .chain(second)
        .chain(lent_separator)
        .chain(lent)
    {
        m = match (id, text.is_empty()) {
            (Some(id), _) => m.item(&label(id, &text)?),
            (None, true) => m.separator(),
            (None, false) => m.item(&note(&text)?),
        };
    }
    m = m.separator();
    if let Some(line) = crate::showdown_job::tray_line(app) {
        m = m.item(&label("showdown", &line)?);
    }
    m = m
        .item(&label("bench", &kindling_core::words::benchmark_mine())?)
        .item(&label("open", "Open Kindling")?)
        .separator();
    m = match crate::updates::pending(app) {
        Some(version) => m.item(&label(
            "install",
            &format!("Install Kindling {version} and restart"),
        )?),
        None => m.item(&label("updates", "Check for updates…")?),
    };
    m.item(&label("quit", "Quit Kindling")?).build()
}

/// Keeps a newer version for the menu bar's "Install" item and says so once.
pub fn offer_update(app: &AppHandle, update: tauri_plugin_updater::Update) {
    let state = app.state::<crate::state::AppState>();
    let text = crate::updates::available(&update);
    let first = state.update.lock().expect("lock").replace(update).is_none();
    if first {
        notify(app, "An update to Kindling is ready", &text);
    }
    refresh(app);
}

/// "Check for updates…": says what it found.
async fn check_for_updates(app: &AppHandle) {
    let current = app.package_info().version.to_string();
    let found = match crate::updates::updater(app) {
        Ok(u) => crate::updates::check(&u, &current).await,
        Err(p) => Err(p),
    };
    match found {
        Ok(crate::updates::Found::Newer(update)) => offer_update(app, *update),
        Ok(newest) => notify(
            app,
            "Kindling is up to date",
            &crate::updates::summary(&newest),
        ),
        Err(p) => notify(app, "Kindling could not check for updates", &p.0),
    }
}

/// "Install Kindling N and restart": downloads it, checks its signature, installs it
/// (the runtime inside comes with it), stops the server and restarts.
async fn install_update(app: &AppHandle) {
    let Some(update) = app
        .state::<crate::state::AppState>()
        .update
        .lock()
        .expect("lock")
        .clone()
    else {
        return;
    };
    let installed = match crate::updates::download(&update).await {
        Ok(bytes) => update
            .install(bytes)
            .map_err(|e| crate::updates::explain(&e)),
        Err(p) => Err(p),
    };
    match installed {
        Ok(()) => {
            server_control::stop_all(app).await;
            app.restart();
        }
        Err(p) => notify(app, "The update was not installed", &p.0),
    }
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    let app = app.clone();
    match event.id().as_ref() {
        id @ ("toggle" | "second-toggle") => {
            let which = if id == "toggle" {
                Which::Served
            } else {
                Which::Second
            };
            tauri::async_runtime::spawn(async move {
                if let Err(e) = server_control::toggle(&app, which).await {
                    let (title, screen) = match which {
                        Which::Served => ("The server did not start", "models"),
                        Which::Second => ("The second model did not start", "server"),
                    };
                    notify(&app, title, &e.message);
                    if e.code == kindling_core::ErrorCode::ModelNotFound {
                        // Nothing installed (or no second model chosen): where to get one.
                        window::show(&app);
                        let _ = app.emit(crate::NAVIGATE_EVENT, screen);
                    }
                }
            });
        }
        id @ ("copy" | "second-copy") => {
            let which = if id == "copy" {
                Which::Served
            } else {
                Which::Second
            };
            tauri::async_runtime::spawn(async move {
                if let Some(url) = server_control::status_of(&app, which).await.api_url {
                    let _ = app.clipboard().write_text(url);
                }
            });
        }
        "chat" => {
            tauri::async_runtime::spawn(async move {
                if let Some(url) = server_control::status(&app).await.chat_url {
                    let _ = app.opener().open_url(url, None::<&str>);
                }
            });
        }
        "bench" => {
            window::show(&app);
            if let Err(e) = bench_job::start(&app, None, true) {
                notify(&app, "Benchmark", &e.message);
            }
        }
        "open" => window::show(&app),
        "open-server" => {
            window::show(&app);
            let _ = app.emit(crate::NAVIGATE_EVENT, "server");
        }
        "showdown" => {
            window::show(&app);
            let _ = app.emit(crate::NAVIGATE_EVENT, "showdown");
        }
        "updates" => {
            tauri::async_runtime::spawn(async move { check_for_updates(&app).await });
        }
        "install" => {
            tauri::async_runtime::spawn(async move { install_update(&app).await });
        }
        "quit" => {
            tauri::async_runtime::spawn(async move { crate::quit(&app).await });
        }
        _ => {}
    }
}

pub fn notify(app: &AppHandle, title: &str, body: &str) {
    let _ = app.notification().builder().title(title).body(body).show();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(state: ServerState, running: bool) -> ServerStatus {
        ServerStatus {
            state,
            model_name: running.then(|| "Qwen3 32B".into()),
            model_path: Some("/Users/me/models/qwen3-32b-Q4_K_M.gguf".into()),
            api_url: running.then(|| "http://127.0.0.1:11481/v1".into()),
            ..ServerStatus::default()
        }
    }

    #[test]
    fn todays_bad_answers_are_counted_in_the_menu_and_lead_to_the_server_screen() {
        let mut s = ServerStatus {
            state: ServerState::Ready {
                port: 11480,
                asleep: false,
            },
            ..ServerStatus::default()
        };
        assert!(!served_entries(&s)
            .iter()
            .any(|(id, _)| *id == Some("open-server")));
        s.went_wrong_today = 2;
        let line = served_entries(&s)
            .into_iter()
            .find(|(id, _)| *id == Some("open-server"))
            .expect("a line for today's bad answers");
        assert_eq!(line.1, "2 answers went wrong today — see why");
        s.went_wrong_today = 1;
        s.state = ServerState::Stopped;
        assert!(served_entries(&s)
            .iter()
            .any(|(_, t)| t == "1 answer went wrong today — see why"));
    }

    #[test]
    fn a_model_split_over_macs_shows_each_share_and_never_runs_over_a_lost_one() {
        use crate::dto::{LostMac, MacShare};
        let share = |who: &str, layers, answering| MacShare {
            who: who.into(),
            layers,
            bytes: 60_000_000,
            answering,
        };
        let mut s = ServerStatus {
            state: ServerState::Ready {
                port: 11480,
                asleep: false,
            },
            model_name: Some("Gemma 3 270M".into()),
            shares: vec![share("This Mac", 7, true), share("Attic Mac", 11, true)],
            ..ServerStatus::default()
        };
        let lines: Vec<String> = served_entries(&s).into_iter().map(|(_, t)| t).collect();
        assert!(
            lines.contains(&"This Mac: 7 layers (60 MB)".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"Attic Mac: 11 layers (60 MB)".to_string()),
            "{lines:?}"
        );
        s.shares[1].answering = false;
        let lines: Vec<String> = served_entries(&s).into_iter().map(|(_, t)| t).collect();
        assert!(
            lines.contains(&"Attic Mac: 11 layers (60 MB) — not answering".to_string()),
            "{lines:?}"
        );
        // Stopped after the loss: no shares, no "Stop server", the loss said and led to
        // the Server screen.
        s.state = ServerState::Stopped;
        s.lost = Some(LostMac {
            name: "Attic Mac".into(),
            message: "Attic Mac stopped answering …".into(),
            can_serve_without: true,
        });
        let entries = served_entries(&s);
        assert_eq!(
            entries,
            [
                (Some("toggle"), "Start server".to_string()),
                (
                    Some("open-server"),
                    "Attic Mac stopped answering: the model stopped — see what to do".to_string()
                ),
            ]
        );
    }

    fn texts(s: &ServerStatus) -> Vec<String> {
        second_entries(s).into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn the_second_model_has_its_own_section_with_its_address_and_state() {
        let ready = texts(&second(
            ServerState::Ready {
                port: 11481,
                asleep: false,
            },
            true,
        ));
        assert_eq!(
            ready,
            [
                "Second model: Qwen3 32B, on the processor",
                "http://127.0.0.1:11481/v1",
                "Copy second model's address",
                "Stop second model",
            ]
        );
        let stopped = texts(&second(ServerState::Stopped, false));
        assert_eq!(
            stopped,
            ["Start second model (qwen3-32b-Q4_K_M.gguf)"],
            "offered again by its file's name"
        );
        let failed = texts(&second(
            ServerState::Failed {
                code: kindling_core::ErrorCode::ServerCrashed,
                message: "crashed".into(),
            },
            false,
        ));
        assert!(failed[0].contains("open Kindling for why"), "{failed:?}");
    }

    #[test]
    fn a_loading_server_says_starting_and_its_item_cancels_by_name() {
        let starting = ServerStatus {
            state: ServerState::Starting { port: 11480 },
            ..ServerStatus::default()
        };
        assert_eq!(tooltip(&starting), "Kindling — server starting…");
        let items: Vec<String> = served_entries(&starting)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(items, ["Cancel starting the server"]);
        assert!(served_entries(&ServerStatus {
            state: ServerState::Stopping,
            ..ServerStatus::default()
        })
        .is_empty());
        let second_starting = texts(&second(ServerState::Starting { port: 11481 }, false));
        assert_eq!(
            second_starting,
            [
                "Second model: qwen3-32b-Q4_K_M.gguf, starting…",
                "Cancel starting the second model"
            ]
        );
    }

    #[test]
    fn lending_has_its_section_with_each_mac_using_it() {
        assert!(
            lending_entries(None).is_empty(),
            "no section while not lending"
        );
        let mut users = Users::new();
        let idle = lending_entries(Some(&users));
        assert_eq!(
            idle,
            [(
                Some("open-server"),
                format!("Lending this {MACHINE}: no other Mac uses it now")
            )]
        );
        users.insert(
            "Studio iMac".into(),
            kindling_core::peers::share::Use {
                memory: 1,
                model_server: 0,
            },
        );
        let busy: Vec<String> = lending_entries(Some(&users))
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(
            busy,
            [
                format!("Lending this {MACHINE} to:"),
                "  Studio iMac is using this Mac's memory (a share of a model)".to_string()
            ]
        );
    }

    #[test]
    fn no_section_until_a_second_model_is_chosen() {
        assert!(second_entries(&ServerStatus::default()).is_empty());
    }
}
