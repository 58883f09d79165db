//! Hugging Face cache: blobs no snapshot links to, `.incomplete` downloads, and
//! revisions no ref points to (with the blobs only they use).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{file_meta, note_hash, old_enough, Plan, PlanItem, Reason};
use crate::store::hf_cache;

pub(super) fn scan(
    root: &Path,
    now: SystemTime,
    plan: &mut Plan,
    hashes: &mut BTreeMap<String, (u64, Vec<PathBuf>)>,
) {
    for repo in hf_cache::scan(root) {
        // Fail closed, as the Ollama scan does: a link Kindling cannot follow may be the
        // one that keeps a blob in use.
        if let Some(link) = repo.unreadable.first() {
            plan.warnings.push(format!(
                "Left the Hugging Face download {} alone: Kindling could not tell where {} \
                 points{}, so it cannot know which of its files are still in use.",
                repo.id,
                link.display(),
                match repo.unreadable.len() {
                    1 => String::new(),
                    n => format!(" (nor {} other links)", n - 1),
                }
            ));
            continue;
        }
        let attached = repo.attached();
        // With no refs at all we cannot tell old from current: leave snapshots alone.
        let judge_revisions = !repo.refs.is_empty();
        let mut live: BTreeSet<&str> = BTreeSet::new();
        let mut detached_only: BTreeSet<&str> = BTreeSet::new();
        for (rev, files) in &repo.snapshots {
            let keep = !judge_revisions || attached.contains(rev.as_str());
            for blob in files.values() {
                if keep {
                    live.insert(blob);
                } else {
                    detached_only.insert(blob);
                }
            }
            if !keep {
                plan.items.push(PlanItem {
                    path: repo.dir.join("snapshots").join(rev),
                    root: root.to_path_buf(),
                    bytes: 0,
                    reason: Reason::HfDetachedRevision,
                    is_dir: true,
                });
            }
        }
        for (blob, bytes) in &repo.blobs {
            let path = repo.dir.join("blobs").join(blob);
            let Some(meta) = file_meta(&path) else {
                continue;
            };
            if blob.ends_with(".incomplete") {
                if old_enough(&meta, now) {
                    plan.items.push(PlanItem {
                        path,
                        root: root.to_path_buf(),
                        bytes: *bytes,
                        reason: Reason::HfIncomplete,
                        is_dir: false,
                    });
                }
                continue;
            }
            if live.contains(blob.as_str()) {
                if blob.len() == 64 {
                    note_hash(hashes, blob, *bytes, path);
                }
                continue;
            }
            let reason = if detached_only.contains(blob.as_str()) {
                Reason::HfDetachedRevision
            } else {
                Reason::HfOrphanBlob
            };
            if old_enough(&meta, now) {
                plan.items.push(PlanItem {
                    path,
                    root: root.to_path_buf(),
                    bytes: *bytes,
                    reason,
                    is_dir: false,
                });
            }
        }
    }
}
