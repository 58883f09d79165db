//! How one quality test ended, as the run records it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The model answered; the grader scores it.
    Answered,
    /// It looped or streamed garbage and was stopped early.
    Degenerate,
    /// No answer within the deadline this machine's speed sets.
    Timeout,
    /// The server died during the test.
    Crash,
    /// The request failed for another reason.
    Error,
    /// Not run: the test needs more context than fits this machine. Left out of the score.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Degenerate => "degenerate",
            Outcome::Timeout => "timeout",
            Outcome::Crash => "crash",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }

    /// The stored name; anything unknown reads as an error.
    pub fn parse(s: &str) -> Outcome {
        match s {
            "answered" => Outcome::Answered,
            "degenerate" => Outcome::Degenerate,
            "timeout" => Outcome::Timeout,
            "crash" => Outcome::Crash,
            "skipped" => Outcome::Skipped,
            _ => Outcome::Error,
        }
    }

    /// Whether the test counts toward the score (a skipped test does not).
    pub fn scored(self) -> bool {
        self != Outcome::Skipped
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
