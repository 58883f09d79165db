//! The window's life: created on demand, destroyed on close (its webview's memory goes
//! with it), so an app left in the menu bar stays small.

use tauri::{AppHandle, Manager, WebviewWindowBuilder};

pub const MAIN: &str = "main";

/// Shows the window, creating it if it was closed.
pub fn show(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let Some(config) = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .cloned()
    else {
        tracing::error!("no window named {MAIN} in tauri.conf.json");
        return;
    };
    if let Err(e) = WebviewWindowBuilder::from_config(app, &config).and_then(|b| b.build()) {
        tracing::error!(error = %e, "could not open the window");
    }
}

pub fn is_visible(app: &AppHandle) -> bool {
    app.get_webview_window(MAIN)
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(false)
}

/// Closes the window as its close button does.
pub fn close(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.close();
    }
}

/// The window has closed and the app stays in the menu bar. On Linux, WebKitGTK keeps
/// its libraries and network process alive after the last webview goes (~80 MB); when
/// nothing is running (no server, benchmark or download), Kindling restarts itself in
/// the menu bar only, which gives that memory back. Otherwise it stays as it is.
pub fn closed(app: &AppHandle) {
    #[cfg(target_os = "linux")]
    {
        let state = app.state::<crate::state::AppState>();
        let busy = state.server.busy()
            || state.second.busy()
            || state.bench.lock().expect("lock").is_some()
            || !state.downloads.lock().expect("lock").is_empty();
        if busy {
            return;
        }
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        tracing::info!("window closed while idle: restarting in the menu bar only");
        // Only returns if the exec failed; then Kindling simply stays as it is.
        let e = std::process::Command::new(exe)
            .arg(crate::TRAY_ONLY_ARG)
            .exec();
        tracing::warn!(error = %e, "could not restart in the menu bar only");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}
