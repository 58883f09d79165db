//! Shapes only the desktop needs; everything else crosses as the core's own types.
//! TypeScript types for all of them are generated (see `tests/bindings.rs`).

use kindling_core::bench::{QualityReport, SpeedReport};
use kindling_core::cleanup::{Plan, Reason};
use kindling_core::server::ServerState;
use kindling_core::{ErrorReport, Event};
use serde::Serialize;
use ts_rs::TS;

/// The menu-bar server as the Server screen shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ServerStatus {
    pub state: ServerState,
    pub model_name: Option<String>,
    pub model_path: Option<String>,
    /// `http://127.0.0.1:PORT/v1`
    pub api_url: Option<String>,
    /// llama-server's own chat page.
    pub chat_url: Option<String>,
    pub port: Option<u16>,
    pub gpu_layers: Option<u32>,
    pub ctx_size: Option<u32>,
    /// "Allow other devices on my network" is on (what the owner chose; a running
    /// server is restarted when it changes).
    pub network: bool,
    /// Whether the running server listens beyond this computer (what it does).
    pub listening_on_network: bool,
    /// The web origin the running server lets browsers call it from ("localhost":
    /// pages on this computer only).
    pub cors_origins: Option<String>,
    /// What answers other devices even without the key, as one sentence.
    pub open_without_key: String,
    /// The key other devices must send, shown while network access is on.
    pub api_key: Option<String>,
    pub log_tail: Vec<String>,
    /// Answers the front door saw go wrong today (the tray says so).
    pub went_wrong_today: u32,
    /// Each Mac's share of a model served with other Macs (empty when served alone).
    pub shares: Vec<MacShare>,
    /// The paired Mac this Mac's apps are sent to, which serves the model itself.
    pub routed_to: Option<String>,
    /// The paired Mac that asked this one to serve the model (it stops once no Mac has
    /// used it for a while); `None` when the owner chose it.
    pub started_for: Option<String>,
    /// Split: the speed the plan predicted, tokens/s.
    pub predicted_tok_s: Option<f64>,
    /// Split: the speed measured once it served, tokens/s (`None` until measured).
    pub measured_tok_s: Option<f64>,
    /// The Mac that stopped answering and took the model down with it, until the next start.
    pub lost: Option<LostMac>,
    /// The paired Macs the owner chose to serve the model with ("Use another Mac"): each
    /// start serves it with them when it does not fit here. Empty: this Mac alone.
    pub serves_with: Vec<String>,
}

/// One Mac's share of a model served with other Macs, and whether it answers now.
#[derive(Debug, Clone, Serialize, TS)]
pub struct MacShare {
    /// "This Mac", or the paired Mac's name.
    pub who: String,
    pub layers: u32,
    /// The memory it takes there at most.
    #[ts(type = "number")]
    pub bytes: u64,
    /// Its link answers (always, for this Mac).
    pub answering: bool,
}

/// A paired Mac that stopped answering while it held a share of the served model.
#[derive(Debug, Clone, Serialize, TS)]
pub struct LostMac {
    pub name: String,
    /// What happened and what to do, as a sentence.
    pub message: String,
    /// The model can be served again without it (the Macs left can hold it).
    pub can_serve_without: bool,
}

/// A plan to serve a model with paired Macs, as the owner sees it before starting.
#[derive(Debug, Clone, Serialize, TS)]
pub struct WithPlan {
    /// The plan in words, a line each (what `kindling serve --with --plan` prints).
    pub lines: Vec<String>,
    /// Together the Macs can hold it.
    pub fits: bool,
    /// It is split (else it fits this Mac alone, or is routed).
    pub split: bool,
    /// This Mac's apps are sent to the paired Mac that serves it already (nothing split).
    pub routed: bool,
}

impl Default for ServerStatus {
    fn default() -> Self {
        ServerStatus {
            state: ServerState::Stopped,
            model_name: None,
            model_path: None,
            api_url: None,
            chat_url: None,
            port: None,
            gpu_layers: None,
            ctx_size: None,
            network: false,
            listening_on_network: false,
            cors_origins: None,
            open_without_key: kindling_core::server::access::open_without_key_sentence(),
            api_key: None,
            log_tail: Vec::new(),
            went_wrong_today: 0,
            shares: Vec::new(),
            routed_to: None,
            started_for: None,
            predicted_tok_s: None,
            measured_tok_s: None,
            lost: None,
            serves_with: Vec::new(),
        }
    }
}

/// What the servers answered, as the Server screen shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ServedView {
    /// Requests and tokens per model per day, the newest day first.
    pub days: Vec<kindling_core::history::ServedDay>,
    /// Today's answers that went wrong, the newest first.
    pub went_wrong: Vec<kindling_core::history::ServedFault>,
    /// Which of them this Kindling still holds the evidence of (to save).
    #[ts(type = "Array<number>")]
    pub evidence: Vec<i64>,
}

/// A finished "Benchmark my Mac".
#[derive(Debug, Clone, Serialize, TS)]
pub struct BenchResult {
    pub report: SpeedReport,
    /// "gemma-3-270m Q4_K_M answers at about 22 words per second here — fast enough to chat"
    pub headline: String,
    /// What bounds the speed here, and how close the run came, in one sentence (from the
    /// same words `kindling bench` prints).
    pub limit: Option<String>,
    /// The quick answer-quality check, when it was asked for and finished.
    pub quality: Option<QualityReport>,
    /// Why the quality check did not finish (the speed result is kept either way).
    pub quality_error: Option<ErrorReport>,
}

/// How a benchmark ended: a result or an error.
#[derive(Debug, Clone, Serialize, TS)]
pub struct BenchFinished {
    pub result: Option<BenchResult>,
    pub error: Option<ErrorReport>,
}

/// What the Home screen needs to catch up with a benchmark started elsewhere (the tray).
#[derive(Debug, Clone, Serialize, TS)]
pub struct BenchStatus {
    pub running: bool,
    /// The latest `bench_progress` event of the running benchmark.
    pub progress: Option<Event>,
    pub last: Option<BenchFinished>,
}

/// A cleanup plan with its id (to apply it) and the reasons in plain words.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CleanupView {
    pub id: String,
    pub plan: Plan,
    pub reasons: Vec<ReasonText>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ReasonText {
    pub reason: Reason,
    pub text: String,
}

/// A rescored quality run: its score under the graders it was graded with, and now.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Rescored {
    pub before: Option<f64>,
    pub after: f64,
    /// The graders' version now.
    pub grader_version: u32,
}

/// A machine profile Kindling ships, to plan for another Mac.
#[derive(Debug, Clone, Serialize, TS)]
pub struct MachineChoice {
    /// What the recommendation command takes: `imac-2017-radeon-pro-575`.
    pub name: String,
    /// "iMac Retina 5K 27-inch, 2017 · AMD Radeon Pro 575 (MoltenVK) 4.3 GB · 34 GB RAM"
    pub summary: String,
}

/// How long the app took to become usable (for the launch-time figure).
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub version: String,
    pub home: String,
    /// Milliseconds from process start to this call (the UI calls it once it is interactive).
    pub since_launch_ms: f64,
    pub start_at_login: bool,
    /// The quality graders' version: runs scored by an older one can be rescored.
    pub grader_version: u32,
    /// What this machine is called on screen: "Mac", or "computer" off macOS.
    pub machine: String,
}

/// The showdown as the Showdown screen shows it: the running one, or else the newest.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ShowdownStatus {
    pub running: bool,
    /// The test in progress, while it runs.
    pub progress: Option<Event>,
    /// What it measured so far (`None`: no showdown yet).
    pub report: Option<kindling_core::showdown::ShowdownReport>,
    /// Why the last one stopped, when it failed.
    pub error: Option<ErrorReport>,
}
