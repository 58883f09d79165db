//! Updates of the app, and of the runtime inside it (one bundle, one update), through
//! tauri-plugin-updater: a signed manifest at the release's address, checked on "Check
//! for updates…" in the menu bar and once a day. The public key and the address are put
//! in the app's config by the release workflow; a build without them (from source) says
//! it does not update itself. An update is offered only when it is newer than this
//! version, its artifact's signature matches the key, and the version it was signed for
//! is the version announced (so an old, validly signed release cannot pass as new).

use std::time::Duration;

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_updater::{Update, Updater, UpdaterExt};

/// How often a running Kindling looks for a new version.
pub const DAILY: Duration = Duration::from_secs(24 * 3600);

/// What a check found.
pub enum Found {
    /// This is the newest version.
    Newest { current: String },
    /// A newer version, ready to be downloaded and checked.
    Newer(Box<Update>),
}

/// Why an update could not be checked or used, in the owner's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem(pub String);

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Words for what the updater said.
pub fn explain(e: &tauri_plugin_updater::Error) -> Problem {
    use tauri_plugin_updater::Error as E;
    let text = match e {
        E::EmptyEndpoints => "This copy of Kindling was not built to update itself (it has no update address). New versions are on the project's Releases page.".to_string(),
        E::Minisign(_) | E::Base64(_) | E::SignatureUtf8(_) | E::SignedVersionMismatch { .. } | E::MissingSignedVersion => format!(
            "The update did not pass Kindling's signature check ({e}), so it was refused and nothing was changed. Try again later; if this keeps happening, download Kindling again from the project's Releases page."
        ),
        E::Reqwest(_) | E::Network(_) => format!(
            "Kindling could not reach the update server ({e}). Check the internet connection and try again later."
        ),
        _ => format!("The update check did not work ({e}). Try again later."),
    };
    Problem(text)
}

/// The updater as the app's config describes it.
pub fn updater<R: Runtime>(app: &AppHandle<R>) -> Result<Updater, Problem> {
    app.updater().map_err(|e| explain(&e))
}

/// Asks the update address whether a newer version exists.
pub async fn check(updater: &Updater, current: &str) -> Result<Found, Problem> {
    match updater.check().await {
        Ok(Some(update)) => Ok(Found::Newer(Box::new(update))),
        Ok(None) => Ok(Found::Newest {
            current: current.to_string(),
        }),
        Err(e) => Err(explain(&e)),
    }
}

/// Downloads an update and checks its signature; the bytes are safe to install.
pub async fn download(update: &Update) -> Result<Vec<u8>, Problem> {
    update
        .download(|_, _| {}, || {})
        .await
        .map_err(|e| explain(&e))
}

/// The sentence a check ends with.
pub fn summary(found: &Found) -> String {
    match found {
        Found::Newest { current } => format!("You have the newest Kindling ({current})."),
        Found::Newer(u) => available(u),
    }
}

/// The sentence that offers `update`.
pub fn available(update: &Update) -> String {
    format!(
        "Kindling {} is available (you have {}). Choose \"Install Kindling {} and restart\" in the menu bar.",
        update.version, update.current_version, update.version
    )
}

/// Checks once a day while the app runs (and shortly after it starts); a newer version
/// is kept for the menu bar's "Install Kindling N and restart" and announced once.
pub fn check_daily(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        loop {
            let current = app.package_info().version.to_string();
            match updater(&app) {
                Ok(u) => match check(&u, &current).await {
                    Ok(Found::Newer(update)) => crate::tray::offer_update(&app, *update),
                    Ok(Found::Newest { .. }) => {}
                    Err(p) => tracing::info!("daily update check: {p}"),
                },
                // A build without an update address: nothing to check, ever.
                Err(p) => {
                    tracing::info!("no update checks: {p}");
                    return;
                }
            }
            tokio::time::sleep(DAILY).await;
        }
    });
}

/// The pending update, if a check found one.
pub fn pending<R: Runtime>(app: &AppHandle<R>) -> Option<String> {
    app.try_state::<crate::state::AppState>()?
        .update
        .lock()
        .expect("lock")
        .as_ref()
        .map(|u| u.version.clone())
}
