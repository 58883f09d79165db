//! Ollama: blobs no manifest references, and unfinished downloads. Nothing at all
//! when any manifest fails to parse (it might reference anything) — as Ollama itself.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{file_meta, note_hash, old_enough, Plan, PlanItem, Reason};
use crate::store::ollama as store;

pub(super) fn scan(
    root: &Path,
    now: SystemTime,
    plan: &mut Plan,
    hashes: &mut BTreeMap<String, (u64, Vec<PathBuf>)>,
) {
    let manifests = store::read_manifests(root);
    let broken = !manifests.broken.is_empty();
    if broken {
        for (path, why) in &manifests.broken {
            plan.warnings.push(format!(
                "Ollama's store was left alone: the manifest {} cannot be read ({why}). Fix or remove it in Ollama, then scan again.",
                path.display()
            ));
        }
    }
    let referenced: HashSet<String> = manifests
        .manifests
        .iter()
        .flat_map(|m| m.digests().map(|d| d.replacen(':', "-", 1)))
        .collect();
    let blobs = root.join("blobs");
    if blobs
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        plan.warnings.push(format!(
            "{} is a link to another place; Kindling does not clean outside the folder it scans.",
            blobs.display()
        ));
        return;
    }
    let Ok(entries) = std::fs::read_dir(&blobs) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(meta) = file_meta(&e.path()) else {
            continue;
        };
        if let Some(hex) = store::blob_hex(&name) {
            if referenced.contains(&name) {
                note_hash(hashes, hex, meta.len(), e.path());
                continue;
            }
            if !broken && old_enough(&meta, now) {
                plan.items.push(PlanItem {
                    path: e.path(),
                    root: root.to_path_buf(),
                    bytes: meta.len(),
                    reason: Reason::OllamaOrphanBlob,
                    is_dir: false,
                });
            }
        } else if store::is_partial_name(&name) && !broken && old_enough(&meta, now) {
            plan.items.push(PlanItem {
                path: e.path(),
                root: root.to_path_buf(),
                bytes: meta.len(),
                reason: Reason::OllamaPartial,
                is_dir: false,
            });
        }
    }
}
