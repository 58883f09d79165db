//! The front door: Kindling's own listener on the port the owner's apps use. llama-server
//! runs behind it on a loopback port only Kindling knows, with a key only Kindling holds,
//! so nothing reaches a model without passing here. The door
//! - decides who may call ([`gate`]): the `Host` and `Origin` of loopback mode, the key of
//!   network mode;
//! - puts both models people use behind one address: `/v1/models` lists them and a
//!   request naming either goes to it ([`Front::route_for`]); an unknown name gets an
//!   OpenAI-shaped 404 naming the models there are;
//! - watches what it serves ([`watch`]): an answer that turns into a loop or special
//!   tokens is counted, kept as evidence the owner may save, and (a setting, on by
//!   default) ended with an explicit error;
//! - counts requests, tokens and time to first token per model per day (SQLite; no
//!   content is stored).
//!
//! Streams pass through frame by frame, unbuffered.

mod door;
pub mod gate;
pub mod overhead;
pub mod watch;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::mpsc;

pub use door::Door;
pub use gate::Policy;

use crate::bench::degenerate::Degeneracy;
use crate::events::{Event, Events};
use crate::history::Database;

/// Evidence of this many bad answers is kept in memory for the owner to save.
const EVIDENCE_KEPT: usize = 20;

/// Which of the two servers people use a door or a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Served,
    Second,
}

/// A model behind the door.
#[derive(Debug, Clone)]
pub struct Route {
    /// The name apps use for it: the model file's name without `.gguf`.
    pub id: String,
    /// Other names it answers to (its file name, path, and display name), lowercase.
    pub names: Vec<String>,
    pub backend: SocketAddr,
    /// The key llama-server behind the door requires (only Kindling holds it).
    pub key: String,
    /// What an evidence file says about the server: its arguments and runtime build.
    pub args: Vec<String>,
    pub build: String,
    pub model_path: PathBuf,
}

impl Route {
    /// A route to the server for `model` (named `display` when it has a name of its own).
    pub fn new(
        model: &Path,
        display: Option<&str>,
        backend: SocketAddr,
        key: String,
        args: Vec<String>,
        build: String,
    ) -> Route {
        let id = model_id(model);
        let mut names = vec![
            id.to_lowercase(),
            model.to_string_lossy().to_lowercase(),
            model
                .file_name()
                .map(|f| f.to_string_lossy().to_lowercase())
                .unwrap_or_default(),
        ];
        names.extend(display.map(str::to_lowercase));
        names.retain(|n| !n.is_empty());
        Route {
            id,
            names,
            backend,
            key,
            args,
            build,
            model_path: model.to_path_buf(),
        }
    }

    fn answers_to(&self, name: &str) -> bool {
        let name = name.trim().to_lowercase();
        self.names.contains(&name)
    }
}

/// Today, as the usage figures are kept by: the local date (`2026-12-04`).
pub fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

/// The name apps use for a model: its file's name without `.gguf`.
pub fn model_id(model: &Path) -> String {
    model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.display().to_string())
}

/// One bad answer, as the owner can save it to attach to a bug report.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The bad answer's number in the history (`served_faults`).
    pub id: i64,
    pub at: String,
    pub kindling_version: String,
    pub model: String,
    pub model_file: PathBuf,
    pub runtime_build: String,
    pub server_args: Vec<String>,
    pub endpoint: String,
    /// The request as the app sent it (JSON when it was JSON).
    pub request: serde_json::Value,
    pub request_bytes: u64,
    pub kind: String,
    pub detail: String,
    /// Pieces of answer received when it was noticed.
    pub at_piece: usize,
    /// Whether Kindling ended the answer (the setting) or let it run on.
    pub ended: bool,
    /// The last bytes of the stream as the server sent them.
    pub stream_tail: String,
}

/// What one answer adds to the usage figures (and, when it went wrong, to the faults).
#[derive(Debug)]
struct Served {
    model: String,
    seen: watch::Seen,
    fault: Option<Evidence>,
}

struct Shared {
    routes: RwLock<Vec<(Slot, Arc<Route>)>>,
    sink: mpsc::UnboundedSender<Served>,
    evidence: Mutex<VecDeque<Evidence>>,
}

/// The doors of one Kindling, and the models behind them.
#[derive(Clone)]
pub struct Front {
    shared: Arc<Shared>,
}

impl Front {
    /// Usage and bad answers go to `db`; each bad answer is announced on `events`.
    pub fn new(db: Database, events: Events) -> Front {
        let (sink, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            routes: RwLock::new(Vec::new()),
            sink,
            evidence: Mutex::new(VecDeque::new()),
        });
        tokio::spawn(record(rx, db, events, Arc::downgrade(&shared)));
        Front { shared }
    }

    /// Opens a door on `listener` for the model `route` leads to; `slot` says whose it
    /// is. The route stays reachable (from every door, by name) until the door closes.
    pub fn open(
        &self,
        listener: std::net::TcpListener,
        slot: Slot,
        route: Route,
        policy: Policy,
    ) -> std::io::Result<Door> {
        let route = Arc::new(route);
        {
            let mut routes = self.shared.routes.write().expect("routes lock");
            routes.retain(|(s, _)| *s != slot);
            routes.push((slot, route.clone()));
            // The menu-bar model first: `/v1/models` lists it first.
            routes.sort_by_key(|(s, _)| *s == Slot::Second);
        }
        Door::open(self.clone(), listener, slot, route, policy)
    }

    /// Takes `route` off every door (not a newer one put in its slot since).
    fn close(&self, slot: Slot, route: &Arc<Route>) {
        self.shared
            .routes
            .write()
            .expect("routes lock")
            .retain(|(s, r)| !(*s == slot && Arc::ptr_eq(r, route)));
    }

    /// The models behind the doors, the menu-bar one first.
    pub fn routes(&self) -> Vec<Arc<Route>> {
        self.shared
            .routes
            .read()
            .expect("routes lock")
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The route for a request naming `model` (`None`: the door's own model).
    fn route_for(&self, slot: Slot, model: Option<&str>) -> Option<Arc<Route>> {
        let routes = self.shared.routes.read().expect("routes lock");
        match model {
            Some(name) => routes.iter().find(|(_, r)| r.answers_to(name)),
            None => routes.iter().find(|(s, _)| *s == slot),
        }
        .map(|(_, r)| r.clone())
    }

    fn served(&self, s: Served) {
        let _ = self.shared.sink.send(s);
    }

    /// The bad answers whose evidence is still here to save (the newest last).
    pub fn evidence(&self) -> Vec<Evidence> {
        self.shared
            .evidence
            .lock()
            .expect("evidence lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Writes the evidence of bad answer `id` to `path` (one JSON file).
    pub fn save_evidence(&self, id: i64, path: &Path) -> crate::Result<()> {
        let e = self
            .evidence()
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| crate::Error::NotKept {
                what: format!(
                    "Kindling no longer holds the evidence of bad answer {id}: it keeps the last {EVIDENCE_KEPT} while it runs, and none from before it started. Save it soon after the answer goes wrong."
                ),
            })?;
        let io = |source| crate::Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = serde_json::to_string_pretty(&e).expect("evidence serializes");
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))).map_err(io)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// Writes what the doors served to the history, one answer at a time, off the path of
/// the answers themselves.
async fn record(
    mut rx: mpsc::UnboundedReceiver<Served>,
    db: Database,
    events: Events,
    shared: std::sync::Weak<Shared>,
) {
    while let Some(s) = rx.recv().await {
        let day = today();
        if let Err(e) = db.add_served(&day, &s.model, &s.seen).await {
            tracing::warn!(error = %e, "could not count a served answer");
        }
        let Some(mut evidence) = s.fault else {
            continue;
        };
        match db.add_served_fault(&day, &evidence).await {
            Ok((id, today)) => {
                evidence.id = id;
                tracing::warn!(
                    model = %evidence.model, kind = %evidence.kind, detail = %evidence.detail,
                    request_bytes = evidence.request_bytes, build = %evidence.runtime_build,
                    "an answer went wrong"
                );
                events.emit(Event::AnswerWentWrong {
                    id,
                    model: evidence.model.clone(),
                    kind: evidence.kind.clone(),
                    detail: evidence.detail.clone(),
                    today,
                });
                if let Some(shared) = shared.upgrade() {
                    let mut kept = shared.evidence.lock().expect("evidence lock");
                    kept.push_back(evidence);
                    while kept.len() > EVIDENCE_KEPT {
                        kept.pop_front();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not record a bad answer"),
        }
    }
}

/// What an ended answer's error says.
fn ended_message(d: &Degeneracy) -> String {
    let what = match d.kind.as_str() {
        "special_tokens" => "the model started sending special tokens instead of words",
        "repetition" => "the model started repeating itself",
        _ => "the model's answer went wrong",
    };
    format!(
        "Kindling ended this answer: {what} ({}). Some models do this on some GPUs; try again, or another model. Kindling keeps the evidence on its Server screen to attach to a bug report.",
        d.evidence
    )
}
