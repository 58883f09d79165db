//! Applying a plan: re-scan, re-check each item just before removing it, and remove
//! only what is still reclaimable, inside its root, and not behind a symlink.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use super::{scan, Plan, PlanItem, Stores};

/// Where removed files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyMode {
    /// The system Trash: the user can put things back.
    Trash,
    /// Gone for good (opt-in).
    Delete,
}

/// What applying did.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Applied {
    pub removed: Vec<PlanItem>,
    /// Items left in place, with why.
    pub skipped: Vec<(PlanItem, String)>,
    pub bytes: u64,
}

/// Whether `path`'s folder really lies inside `root` (no symlinked folder on the way).
fn inside(root: &Path, path: &Path) -> bool {
    let (Ok(root), Some(parent)) = (root.canonicalize(), path.parent()) else {
        return false;
    };
    parent.canonicalize().is_ok_and(|p| p.starts_with(&root))
}

/// Removes what `plan` lists and is still reclaimable now.
pub fn apply(plan: &Plan, stores: &Stores, mode: ApplyMode, now: SystemTime) -> Applied {
    let fresh = scan(stores, now);
    let still: HashMap<&Path, &PlanItem> =
        fresh.items.iter().map(|i| (i.path.as_path(), i)).collect();
    let mut out = Applied::default();
    for item in &plan.items {
        let skip = |why: &str| (item.clone(), why.to_string());
        let Some(now_item) = still.get(item.path.as_path()) else {
            out.skipped.push(skip(
                "no longer safe to remove: it is in use again, changed, or already gone",
            ));
            continue;
        };
        if now_item.bytes != item.bytes || now_item.reason != item.reason {
            out.skipped
                .push(skip("it changed since the plan was made; scan again"));
            continue;
        }
        let Ok(meta) = item.path.symlink_metadata() else {
            out.skipped.push(skip("already gone"));
            continue;
        };
        if meta.file_type().is_symlink() || meta.is_dir() != item.is_dir {
            out.skipped
                .push(skip("not the kind of file the plan said; left alone"));
            continue;
        }
        // The root of the fresh scan, never the one written in the plan: a plan file
        // edited to name "/" as its root must not widen what may be removed.
        if !inside(&now_item.root, &item.path) {
            out.skipped
                .push(skip("outside the folder that was scanned; left alone"));
            continue;
        }
        let result = match mode {
            ApplyMode::Trash => trash::delete(&item.path)
                .map_err(|e| format!("could not move it to the Trash ({e}); it was left in place")),
            ApplyMode::Delete if item.is_dir => {
                std::fs::remove_dir_all(&item.path).map_err(|e| e.to_string())
            }
            ApplyMode::Delete => std::fs::remove_file(&item.path).map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => {
                out.bytes += item.bytes;
                out.removed.push(item.clone());
            }
            Err(why) => out.skipped.push(skip(&why)),
        }
    }
    out
}
