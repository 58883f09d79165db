//! Progress as values: long work reports [`Event`]s on a channel; the CLI turns them
//! into progress lines, the desktop shell into Tauri events. Same events, same order.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::server::{ServerRef, ServerState};

/// Something a front end may want to show while work goes on.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A supervised server moved to a new state.
    ServerState {
        server: ServerRef,
        state: ServerState,
    },
    /// A benchmark moved on.
    BenchProgress {
        run_id: i64,
        phase: BenchPhase,
        /// 1-based step within the phase, and how many steps it has.
        step: u32,
        total: u32,
        message: String,
        /// The latest measured generation speed, tokens/s, while measuring.
        #[serde(default)]
        tokens_per_second: Option<f64>,
    },
    /// A download moved on.
    Download {
        file: String,
        state: crate::download::DownloadState,
        bytes: u64,
        total: u64,
        bytes_per_second: f64,
        eta_seconds: Option<f64>,
    },
    /// An answer the front door served went wrong (a loop, special tokens); its
    /// evidence is kept while Kindling runs (see [`crate::front::Front::save_evidence`]).
    AnswerWentWrong {
        /// The bad answer's number, to save its evidence by.
        id: i64,
        model: String,
        kind: String,
        detail: String,
        /// Answers that went wrong today, this one included.
        today: u32,
    },
}

/// The phases of a speed benchmark, in order.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum BenchPhase {
    Hardware,
    Bandwidth,
    Starting,
    Warmup,
    Measuring,
    /// Quality tests, one step per test.
    Testing,
    Stopping,
    Done,
}

/// The sending side of the event channel; cheap to clone. Sending never blocks and
/// never fails: with nobody listening, events are dropped.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(256);
        Events { tx }
    }
    pub fn emit(&self, event: Event) {
        let _ = self.tx.send(event);
    }
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}
