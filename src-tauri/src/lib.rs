//! kindling-desktop: the menu-bar app. Every capability lives in kindling-core; this
//! crate owns only what a desktop adds: the tray, the window's life, commands that
//! forward to the core, and core events forwarded to the webview.

pub mod bench_job;
pub mod cli_link;
pub mod command_names;
pub mod commands;
mod dialogs;
pub mod dto;
pub mod on_ask;
pub mod other_macs;
pub mod server_control;
pub mod showdown_job;
pub mod state;
pub mod tray;
pub mod updates;
pub mod window;

use std::sync::Arc;

use kindling_core::{Core, Paths};
use tauri::{Emitter, Manager, RunEvent};

use state::AppState;

/// The one event name the UI listens to; the payload is a [`kindling_core::Event`].
pub const EVENT: &str = "kindling://event";

/// Asks the window to show a screen (payload: its id, e.g. `"models"`).
pub const NAVIGATE_EVENT: &str = "kindling://navigate";

/// Started at login (autostart): stay in the menu bar, open no window.
pub const TRAY_ONLY_ARG: &str = "--tray";

pub fn run() {
    let paths = Paths::from_env();
    init_logging(&paths);
    // GTK's own widgets need no OpenGL, and initialising it loads Mesa and LLVM into
    // the app's process (~30 MB it would keep while in the menu bar). WebKit renders
    // pages in its own processes either way.
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        std::env::set_var("GDK_GL", "disable");
    }
    let started = std::time::Instant::now();
    let open_window = !std::env::args().any(|a| a == TRAY_ONLY_ARG);

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show(app);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![TRAY_ONLY_ARG]),
        ))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_updater::Builder::new().build())
        .invoke_handler(commands::handler())
        .setup(move |app| {
            let core = tauri::async_runtime::block_on(Core::open(paths.clone()))
                .map_err(|e| e.to_string())?;
            app.manage(AppState::new(Arc::new(core), started));
            forward_events(app.handle());
            tray::build(app.handle())?;
            updates::check_daily(app.handle());
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                showdown_job::resume_unfinished(&handle).await;
            });
            if open_window {
                window::show(app.handle());
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("Kindling's window system could not start");

    app.run(|app, event| match event {
        // Closing the window destroys its webview (freeing its memory); the app stays
        // in the menu bar until the user picks Quit.
        RunEvent::ExitRequested { api, code, .. } if code.is_none() => {
            api.prevent_exit();
            window::closed(app);
        }
        RunEvent::Exit => {
            tauri::async_runtime::block_on(server_control::stop_all(app));
        }
        _ => {}
    });
}

/// Quit Kindling (the tray's Quit and the window's): the servers stop, then the app exits.
pub async fn quit(app: &tauri::AppHandle) {
    server_control::stop_all(app).await;
    app.exit(0);
}

/// A desktop app has no terminal: it logs to `logs/desktop.log` in Kindling's home
/// (`KINDLING_LOG` sets the level, e.g. `info` or `kindling_desktop=debug`).
fn init_logging(paths: &Paths) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINDLING_LOG")
        .unwrap_or_else(|_| "warn".into());
    let file = std::fs::create_dir_all(paths.logs()).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.logs().join("desktop.log"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match file {
        Ok(f) => builder.with_writer(std::sync::Mutex::new(f)).init(),
        Err(_) => builder.with_writer(std::io::stderr).init(),
    }
}

/// Core events go to the webview as they are, and server states to the tray.
fn forward_events(app: &tauri::AppHandle) {
    let state = app.state::<AppState>();
    let mut rx = state.core.events().subscribe();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    // Remembered first: the tray reads the state back.
                    app.state::<AppState>().remember(&event);
                    match &event {
                        kindling_core::Event::ServerState { server, .. } => {
                            use kindling_core::server::Purpose;
                            if matches!(server.purpose, Purpose::Serving | Purpose::Second) {
                                tray::refresh(&app);
                            }
                        }
                        // The tray counts today's bad answers.
                        kindling_core::Event::AnswerWentWrong { .. } => tray::refresh(&app),
                        _ => {}
                    }
                    let _ = app.emit(EVENT, &event);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
