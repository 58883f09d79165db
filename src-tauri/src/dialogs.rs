//! Native file dialogs, awaited without holding an async worker: the dialog runs on the
//! UI thread and answers through a channel (the `blocking_*` forms would park a tokio
//! worker for as long as the owner looks at the dialog).

use std::path::PathBuf;

use tauri::AppHandle;
use tauri_plugin_dialog::{DialogExt, FileDialogBuilder, FilePath};

/// What a dialog asks for.
pub enum Ask {
    SaveFile,
    PickFile,
    PickFolder,
}

/// Opens the dialog `configure` describes; `None` when the owner cancelled it.
pub async fn ask(
    app: &AppHandle,
    what: Ask,
    configure: impl FnOnce(FileDialogBuilder<tauri::Wry>) -> FileDialogBuilder<tauri::Wry>,
) -> Option<PathBuf> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Option<FilePath>>();
    let done = move |p: Option<FilePath>| {
        let _ = tx.send(p);
    };
    let dialog = configure(app.dialog().file());
    match what {
        Ask::SaveFile => dialog.save_file(done),
        Ask::PickFile => dialog.pick_file(done),
        Ask::PickFolder => dialog.pick_folder(done),
    }
    rx.await.ok().flatten().and_then(|p| p.into_path().ok())
}
