//! One typed result per kind of run, from the core to the CLI and the screen: what a run
//! measured is decoded here, once, and never picked out of raw JSON elsewhere.

use serde::{Deserialize, Serialize};

use super::quality::QualityReport;
use super::speed::SpeedSummary;
use super::tune::TuneReport;

pub use crate::kinds::RunKind;

/// The figures of a finished run, by kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunResult {
    Speed(SpeedSummary),
    Quality(QualityReport),
    Tune(TuneReport),
}

impl RunResult {
    /// Decodes a stored summary of a run of `kind`; `None` when it cannot be read (a
    /// summary from an older Kindling missing a field that has no default).
    pub fn decode(kind: RunKind, json: &str) -> Option<RunResult> {
        match kind {
            RunKind::Speed => serde_json::from_str(json).ok().map(RunResult::Speed),
            RunKind::Quality => serde_json::from_str(json).ok().map(RunResult::Quality),
            RunKind::Tune => serde_json::from_str(json).ok().map(RunResult::Tune),
        }
    }

    /// Median generation speed, tokens/s (a tune run's best setting).
    pub fn gen_per_second(&self) -> Option<f64> {
        match self {
            RunResult::Speed(s) => Some(s.gen_per_second.median),
            RunResult::Quality(q) => q.gen_per_second,
            RunResult::Tune(t) => Some(t.best.gen_per_second),
        }
    }

    /// Median prompt speed, tokens/s.
    pub fn prompt_per_second(&self) -> Option<f64> {
        match self {
            RunResult::Speed(s) => Some(s.prompt_per_second.median),
            RunResult::Quality(q) => q.prompt_per_second,
            RunResult::Tune(_) => None,
        }
    }

    /// A run that settled a showdown's tie: it repeats the quick run's speed and answers,
    /// so it neither recommends nor calibrates.
    pub fn is_tie_break(&self) -> bool {
        matches!(self, RunResult::Quality(q) if q.config.tie_break)
    }

    /// Score in percent ÷ the model's size in GB (quality runs only).
    pub fn score_per_gb(&self) -> Option<f64> {
        match self {
            RunResult::Quality(q) => Some(q.score_per_gb),
            _ => None,
        }
    }

    /// One category's score, 0–1 (quality runs only).
    pub fn category(&self, name: &str) -> Option<f64> {
        match self {
            RunResult::Quality(q) => q
                .categories
                .iter()
                .find(|c| c.category == name)
                .map(|c| c.score),
            _ => None,
        }
    }

    /// The quality score, 0–1 (quality runs only).
    pub fn score(&self) -> Option<f64> {
        match self {
            RunResult::Quality(q) => Some(q.score),
            _ => None,
        }
    }

    /// Measured generation speed ÷ what the weights' memory allows.
    pub fn fraction_of_limit(&self) -> Option<f64> {
        match self {
            RunResult::Speed(s) => s.fraction_of_limit,
            RunResult::Quality(q) => q.fraction_of_limit,
            RunResult::Tune(_) => None,
        }
    }
}
