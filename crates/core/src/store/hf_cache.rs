//! The Hugging Face hub cache, read-only: `models--org--name/{blobs,snapshots,refs}`,
//! where snapshot files are symlinks into `blobs/`. Links are resolved by name, never
//! followed, so nothing outside a repository folder is ever reached.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn default_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".cache/huggingface/hub"))
}

/// One cached repository.
#[derive(Debug, Default)]
pub struct Repo {
    pub dir: PathBuf,
    /// `org/name`
    pub id: String,
    /// ref name → revision
    pub refs: BTreeMap<String, String>,
    /// revision → (path in the repo → blob name it links to)
    pub snapshots: BTreeMap<String, BTreeMap<String, String>>,
    /// blob name → size (regular files only; `.incomplete` included)
    pub blobs: BTreeMap<String, u64>,
    /// Snapshot links that could not be read or do not lead into this repository's
    /// blobs: with any of these, nothing here can be called unused.
    pub unreadable: Vec<PathBuf>,
}

impl Repo {
    /// Revisions some ref points to.
    pub fn attached(&self) -> BTreeSet<&str> {
        self.refs.values().map(String::as_str).collect()
    }
}

/// Resolves a snapshot symlink target by name to a blob in this repository, if it is one.
fn blob_of(link_dir_depth: usize, target: &Path) -> Option<String> {
    // A snapshot file at snapshots/<rev>/<a>/<b> links "../../../blobs/<hash>": it must
    // climb exactly to the repository folder, then into blobs/, with nothing else.
    let comps: Vec<Component> = target.components().collect();
    let ups = comps
        .iter()
        .take_while(|c| matches!(c, Component::ParentDir))
        .count();
    match &comps[ups..] {
        [Component::Normal(b), Component::Normal(name)]
            if ups == link_dir_depth && *b == "blobs" =>
        {
            Some(name.to_string_lossy().into_owned())
        }
        _ => None,
    }
}

fn walk_snapshot(
    dir: &Path,
    rel: &str,
    depth: usize,
    out: &mut BTreeMap<String, String>,
    unreadable: &mut Vec<PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        unreadable.push(dir.to_path_buf());
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if ft.is_symlink() {
            match std::fs::read_link(e.path())
                .ok()
                .and_then(|t| blob_of(depth, &t))
            {
                Some(blob) => {
                    out.insert(rel_name, blob);
                }
                None => unreadable.push(e.path()),
            }
        } else if ft.is_dir() {
            walk_snapshot(&e.path(), &rel_name, depth + 1, out, unreadable);
        }
    }
}

/// Reads every `models--*` repository under `root`.
pub fn scan(root: &Path) -> Vec<Repo> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut repos = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("models--") else {
            continue;
        };
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        let mut repo = Repo {
            id: id.replacen("--", "/", 1),
            ..Repo::default()
        };
        if let Ok(refs) = std::fs::read_dir(dir.join("refs")) {
            for r in refs.flatten() {
                if r.file_type().is_ok_and(|t| t.is_file()) {
                    if let Ok(rev) = std::fs::read_to_string(r.path()) {
                        repo.refs.insert(
                            r.file_name().to_string_lossy().into_owned(),
                            rev.trim().to_string(),
                        );
                    }
                }
            }
        }
        if let Ok(snaps) = std::fs::read_dir(dir.join("snapshots")) {
            for s in snaps.flatten() {
                if !s.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let mut files = BTreeMap::new();
                walk_snapshot(&s.path(), "", 2, &mut files, &mut repo.unreadable);
                repo.snapshots
                    .insert(s.file_name().to_string_lossy().into_owned(), files);
            }
        }
        let not_link = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
        if !not_link(&dir.join("blobs"))
            || dir.join("snapshots").exists() && !not_link(&dir.join("snapshots"))
        {
            // A repository whose folders are links elsewhere is not ours to judge.
            continue;
        }
        if let Ok(blobs) = std::fs::read_dir(dir.join("blobs")) {
            for b in blobs.flatten() {
                if let Ok(m) = b.path().symlink_metadata() {
                    if m.file_type().is_file() {
                        repo.blobs
                            .insert(b.file_name().to_string_lossy().into_owned(), m.len());
                    }
                }
            }
        }
        repo.dir = dir;
        repos.push(repo);
    }
    repos.sort_by(|a, b| a.id.cmp(&b.id));
    repos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_only_into_this_repos_blobs() {
        assert_eq!(blob_of(2, Path::new("../../blobs/abc")), Some("abc".into()));
        assert_eq!(
            blob_of(3, Path::new("../../../blobs/abc")),
            Some("abc".into())
        );
        assert_eq!(blob_of(2, Path::new("../../../blobs/abc")), None);
        assert_eq!(blob_of(2, Path::new("/etc/passwd")), None);
        assert_eq!(blob_of(2, Path::new("../../blobs/../../x")), None);
        assert_eq!(blob_of(2, Path::new("../../other/abc")), None);
    }
}
