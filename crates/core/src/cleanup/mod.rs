//! Reclaiming disk: scanners find what can go (orphaned blobs, partial downloads,
//! detached revisions) with sizes and reasons — a [`Plan`]. Applying is a second,
//! explicit step that re-scans, re-checks each file just before removing it, moves it to
//! the Trash unless permanent deletion was asked for, and never touches anything outside
//! a scanned root or behind a symlink.

mod apply;
mod hf;
mod kindling;
mod ollama;
mod saved;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use apply::{apply, Applied, ApplyMode};

/// Files younger than this are never reclaimed: another program may be writing them.
pub const MIN_AGE: Duration = Duration::from_secs(3600);

/// Why something can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An Ollama blob no manifest references.
    OllamaOrphanBlob,
    /// An unfinished Ollama download.
    OllamaPartial,
    /// A Hugging Face blob no snapshot links to.
    HfOrphanBlob,
    /// An unfinished Hugging Face download.
    HfIncomplete,
    /// A Hugging Face revision no ref points to, and the blobs only it uses.
    HfDetachedRevision,
    /// A partial download Kindling abandoned.
    KindlingPartial,
    /// A file in Kindling's models folder that its database does not know.
    KindlingUnknownFile,
    /// Parts of another Mac's model this Mac kept while lending it memory (llama.cpp's
    /// RPC tensor cache): they only make that model load faster next time.
    KindlingRpcCache,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::OllamaOrphanBlob,
        Reason::OllamaPartial,
        Reason::HfOrphanBlob,
        Reason::HfIncomplete,
        Reason::HfDetachedRevision,
        Reason::KindlingPartial,
        Reason::KindlingUnknownFile,
        Reason::KindlingRpcCache,
    ];

    /// In plain words.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::OllamaOrphanBlob => "Ollama data no installed model uses",
            Reason::OllamaPartial => "unfinished Ollama download",
            Reason::HfOrphanBlob => "Hugging Face file no download uses",
            Reason::HfIncomplete => "unfinished Hugging Face download",
            Reason::HfDetachedRevision => "old Hugging Face revision nothing points to",
            Reason::KindlingPartial => "unfinished Kindling download nobody is resuming",
            Reason::KindlingUnknownFile => "file in Kindling's models folder it does not know",
            Reason::KindlingRpcCache => {
                "parts of another Mac's model kept to load it faster next time"
            }
        }
    }
}

/// One thing that can be removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PlanItem {
    pub path: PathBuf,
    /// The scanned root it lies under (checked again before removal).
    pub root: PathBuf,
    pub bytes: u64,
    pub reason: Reason,
    pub is_dir: bool,
}

/// The same content stored twice (reported, never removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Duplicate {
    pub sha256: String,
    pub bytes: u64,
    pub paths: Vec<PathBuf>,
}

/// What a cleanup would do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Plan {
    pub version: u32,
    pub items: Vec<PlanItem>,
    pub duplicates: Vec<Duplicate>,
    /// Stores left alone, and why (e.g. an Ollama manifest that does not parse).
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn total_bytes(&self) -> u64 {
        self.items.iter().map(|i| i.bytes).sum()
    }
    /// Bytes per reason, for a summary.
    pub fn by_reason(&self) -> BTreeMap<Reason, (usize, u64)> {
        let mut m = BTreeMap::new();
        for i in &self.items {
            let e = m.entry(i.reason).or_insert((0, 0));
            e.0 += 1;
            e.1 += i.bytes;
        }
        m
    }
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    pub ollama: Option<PathBuf>,
    pub huggingface: Option<PathBuf>,
    /// Kindling's own models folder, with the files its database knows and the partial
    /// downloads still wanted (active or paused).
    pub kindling: Option<kindling::KindlingStore>,
    /// The tensors this Mac keeps for the Macs it lends memory to.
    pub rpc_cache: Option<PathBuf>,
}

pub use kindling::KindlingStore;

/// The one form paths are compared in: fully resolved (`/var` → `/private/var` on
/// macOS; a models folder linked to an external disk → that disk). A path that does not
/// exist (yet) keeps its resolved folder and its own name.
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => canonical(dir).join(name),
        _ => path.to_path_buf(),
    }
}

impl Stores {
    /// The same stores with every root and path in [`canonical`] form.
    pub fn canonical(self) -> Stores {
        Stores {
            ollama: self.ollama.as_deref().map(canonical),
            huggingface: self.huggingface.as_deref().map(canonical),
            kindling: self.kindling.map(|k| KindlingStore {
                root: canonical(&k.root),
                known: k
                    .known
                    .into_iter()
                    .map(|(p, sha)| (canonical(&p), sha))
                    .collect(),
                wanted_partials: k.wanted_partials.iter().map(|p| canonical(p)).collect(),
            }),
            rpc_cache: self.rpc_cache.as_deref().map(canonical),
        }
    }
}

/// Builds the plan. `now` decides what is old enough to touch. Paths are compared in
/// one form ([`canonical`]) whatever form the caller gave them in.
pub fn scan(stores: &Stores, now: SystemTime) -> Plan {
    let stores = &stores.clone().canonical();
    let mut plan = Plan {
        version: 1,
        ..Plan::default()
    };
    let mut hashes: BTreeMap<String, (u64, Vec<PathBuf>)> = BTreeMap::new();
    if let Some(root) = &stores.ollama {
        ollama::scan(root, now, &mut plan, &mut hashes);
    }
    if let Some(root) = &stores.huggingface {
        hf::scan(root, now, &mut plan, &mut hashes);
    }
    if let Some(k) = &stores.kindling {
        kindling::scan(k, now, &mut plan, &mut hashes);
    }
    if let Some(root) = &stores.rpc_cache {
        kindling::scan_rpc_cache(root, now, &mut plan);
    }
    plan.duplicates = hashes
        .into_iter()
        .filter(|(_, (_, paths))| paths.len() > 1)
        .map(|(sha256, (bytes, paths))| Duplicate {
            sha256,
            bytes,
            paths,
        })
        .collect();
    plan.items
        .sort_by(|a, b| (a.reason, &a.path).cmp(&(b.reason, &b.path)));
    plan
}

/// Regular-file metadata without following a symlink; `None` for links and the rest.
fn file_meta(path: &Path) -> Option<std::fs::Metadata> {
    path.symlink_metadata()
        .ok()
        .filter(|m| m.file_type().is_file())
}

fn old_enough(meta: &std::fs::Metadata, now: SystemTime) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age >= MIN_AGE)
}

fn note_hash(
    hashes: &mut BTreeMap<String, (u64, Vec<PathBuf>)>,
    sha: &str,
    bytes: u64,
    path: PathBuf,
) {
    let e = hashes
        .entry(sha.to_ascii_lowercase())
        .or_insert((bytes, Vec::new()));
    if !e.1.contains(&path) {
        e.1.push(path);
    }
}
