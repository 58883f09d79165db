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
