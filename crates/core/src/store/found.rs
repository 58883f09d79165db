//! Models already on disk, used where they are (no second copy): Ollama's store, the
//! Hugging Face cache, LM Studio's models folder, and folders the user adds.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{hf_cache, ollama};

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    pub ollama: Option<PathBuf>,
    pub huggingface: Option<PathBuf>,
    pub lmstudio: Vec<PathBuf>,
    pub folders: Vec<PathBuf>,
}

impl Roots {
    /// The usual places on this machine, plus the user's own folders.
    pub fn standard(folders: Vec<PathBuf>) -> Roots {
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        Roots {
            ollama: ollama::default_root(),
            huggingface: hf_cache::default_root(),
            lmstudio: home
                .map(|h| {
                    vec![
                        h.join(".lmstudio/models"),
                        h.join(".cache/lm-studio/models"),
                    ]
                })
                .unwrap_or_default(),
            folders,
        }
    }
}

/// A GGUF model another tool (or the user) keeps.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FoundModel {
    /// `ollama`, `huggingface`, `lmstudio` or `folder`.
    pub source: String,
    /// How that tool names it (`llama3.2:latest`, `org/name/file.gguf`, …).
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Known without hashing when the store names files by content.
    pub sha256: Option<String>,
}

fn is_gguf(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Every model under `roots`.
pub fn scan(roots: &Roots) -> Vec<FoundModel> {
    let mut out = Vec::new();
    if let Some(root) = &roots.ollama {
        for m in ollama::read_manifests(root).manifests {
            let Some(layer) = m.model_layer() else {
                continue;
            };
            let Some(path) = ollama::blob_path(root, &layer.digest) else {
                continue;
            };
            let Ok(meta) = path.symlink_metadata() else {
                continue;
            };
            if meta.file_type().is_file() {
                out.push(FoundModel {
                    source: "ollama".into(),
                    name: m.name.clone(),
                    sha256: layer.digest.strip_prefix("sha256:").map(str::to_string),
                    path,
                    bytes: meta.len(),
                });
            }
        }
    }
    if let Some(root) = &roots.huggingface {
        for repo in hf_cache::scan(root) {
            let attached = repo.attached();
            for (rev, files) in &repo.snapshots {
                // One copy per blob: prefer a revision a ref points to.
                if !attached.is_empty() && !attached.contains(rev.as_str()) {
                    continue;
                }
                for (file, blob) in files {
                    if !is_gguf(Path::new(file)) {
                        continue;
                    }
                    let Some(bytes) = repo.blobs.get(blob) else {
                        continue;
                    };
                    let sha = (blob.len() == 64 && blob.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| blob.clone());
                    out.push(FoundModel {
                        source: "huggingface".into(),
                        name: format!("{}/{file}", repo.id),
                        path: repo.dir.join("blobs").join(blob),
                        bytes: *bytes,
                        sha256: sha,
                    });
                }
            }
        }
    }
    for (source, dirs) in [("lmstudio", &roots.lmstudio), ("folder", &roots.folders)] {
        for dir in dirs {
            walk_ggufs(dir, dir, 0, &mut |path, bytes| {
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned();
                out.push(FoundModel {
                    source: source.into(),
                    name,
                    path: path.to_path_buf(),
                    bytes,
                    sha256: None,
                })
            });
        }
    }
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// GGUF files under `dir` (a file given directly counts too), not following symlinked
/// folders, at most 6 levels deep.
fn walk_ggufs(root: &Path, dir: &Path, depth: u32, f: &mut impl FnMut(&Path, u64)) {
    if depth == 0 && root.is_file() {
        if is_gguf(root) {
            f(root, std::fs::metadata(root).map(|m| m.len()).unwrap_or(0));
        }
        return;
    }
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            walk_ggufs(root, &p, depth + 1, f);
        } else if (ft.is_file() || ft.is_symlink()) && is_gguf(&p) {
            if let Ok(m) = std::fs::metadata(&p) {
                if m.is_file() {
                    f(&p, m.len());
                }
            }
        }
    }
}
