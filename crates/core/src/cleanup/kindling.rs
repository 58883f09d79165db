//! Kindling's own models folder: partial downloads nobody is resuming, and files the
//! database does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{file_meta, note_hash, old_enough, Plan, PlanItem, Reason};

/// Kindling's models folder and what its database says about it.
#[derive(Debug, Clone, Default)]
pub struct KindlingStore {
    pub root: PathBuf,
    /// Registered model files, with their sha256 when known.
    pub known: BTreeMap<PathBuf, Option<String>>,
    /// Final paths of downloads that are active or paused (their `.part` files stay).
    pub wanted_partials: BTreeSet<PathBuf>,
}

fn walk(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&e.path(), depth + 1, out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

/// Every file of the RPC tensor cache not touched within the hour (a Mac may be loading
/// from it now): removing one only makes that model's next load send it again.
pub(super) fn scan_rpc_cache(root: &Path, now: SystemTime, plan: &mut Plan) {
    let mut files = Vec::new();
    walk(root, 0, &mut files);
    for path in files {
        let Some(meta) = file_meta(&path) else {
            continue;
        };
        if !old_enough(&meta, now) {
            continue;
        }
        plan.items.push(PlanItem {
            path,
            root: root.to_path_buf(),
            bytes: meta.len(),
            reason: Reason::KindlingRpcCache,
            is_dir: false,
        });
    }
}

pub(super) fn scan(
    store: &KindlingStore,
    now: SystemTime,
    plan: &mut Plan,
    hashes: &mut BTreeMap<String, (u64, Vec<PathBuf>)>,
) {
    let mut files = Vec::new();
    walk(&store.root, 0, &mut files);
    for path in files {
        let Some(meta) = file_meta(&path) else {
            continue;
        };
        if let Some(known) = store.known.get(&path) {
            if let Some(sha) = known {
                note_hash(hashes, sha, meta.len(), path.clone());
            }
            continue;
        }
        if !old_enough(&meta, now) {
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let reason = match name.strip_suffix(".part") {
            Some(final_name) => {
                if store
                    .wanted_partials
                    .contains(&path.with_file_name(final_name))
                {
                    continue;
                }
                Reason::KindlingPartial
            }
            None => Reason::KindlingUnknownFile,
        };
        plan.items.push(PlanItem {
            path,
            root: store.root.clone(),
            bytes: meta.len(),
            reason,
            is_dir: false,
        });
    }
}
