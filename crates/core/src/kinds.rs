//! The value types `bench`, `history`, `recommend` and `showdown` all speak, in one module
//! that depends on nothing of theirs: what kind a run is, how it ended, where a showdown
//! and its candidates stand, what the owner wants, what a run ran on. Enums end to end:
//! each is stored by a fixed name, and a name this build does not know (written by a newer
//! Kindling) is refused with [`Unknown`], never read as some default — an older build
//! would otherwise take a finished step for one still to do, and redo (or trash) work.

use serde::{Deserialize, Serialize};

/// A stored name this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this Kindling does not know the {what} \"{value}\" (a newer Kindling wrote it); update Kindling")]
pub struct Unknown {
    pub what: &'static str,
    pub value: String,
}

/// `as_str`, `parse` (refusing unknown names), `ALL` and `Display` for an enum stored by
/// name: one table per type, so the names are written once.
macro_rules! stored_names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stored (and serialized) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value a stored name stands for.
            pub fn parse(s: &str) -> Result<$ty, Unknown> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(Unknown { what: $what, value: s.to_string() }),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What a run measured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Speed,
    Quality,
    Tune,
}
stored_names!(RunKind, "kind of run", { Speed => "speed", Quality => "quality", Tune => "tune" });

/// How a run stands: created `running` before any work, and always ending in one of the
/// other three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Interrupted,
}
stored_names!(RunStatus, "run status", {
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Interrupted => "interrupted",
});

/// Where one showdown candidate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    Pending,
    Downloading,
    Measuring,
    Done,
    Failed,
}
stored_names!(EntryStatus, "showdown candidate status", {
    Pending => "pending",
    Downloading => "downloading",
    Measuring => "measuring",
    Done => "done",
    Failed => "failed",
});

/// Where a showdown stands: `running` until every candidate is done or failed (a quit or
/// a crash leaves it so, and it resumes), `cancelled` when the owner stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ShowdownState {
    Running,
    Completed,
    Cancelled,
}
stored_names!(ShowdownState, "showdown status", {
    Running => "running",
    Completed => "completed",
    Cancelled => "cancelled",
});

/// What the owner wants of a model.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Chat: at least [`CONVERSATIONAL_TPS`] predicted.
    Conversational,
    /// Any speed; correctness first (overnight work).
    Patient,
}
stored_names!(Goal, "goal", { Conversational => "conversational", Patient => "patient" });

/// Tokens per second a chat needs.
pub const CONVERSATIONAL_TPS: f64 = 10.0;

impl Goal {
    /// Whether a model generating at `tokens_per_second` (unknown: `None`) is fast enough.
    pub fn allows(self, tokens_per_second: Option<f64>) -> bool {
        self == Goal::Patient || tokens_per_second.unwrap_or(0.0) >= CONVERSATIONAL_TPS
    }
}

/// What a run's model ran on, as the History and the showdown's report say it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum RanOn {
    #[serde(rename = "CPU")]
    Cpu,
    #[serde(rename = "Vulkan")]
    Vulkan,
}
stored_names!(RanOn, "processor", { Cpu => "CPU", Vulkan => "Vulkan" });

#[cfg(test)]
mod tests {
    use super::*;

    /// Each stored name is its serialized name, read back to itself; an unknown one is
    /// refused (it read as `Pending` or `Running`, so an older build redid finished work).
    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        fn check<T>(all: &[T], name: fn(T) -> &'static str, parse: fn(&str) -> Result<T, Unknown>)
        where
            T: Copy + PartialEq + std::fmt::Debug + Serialize,
        {
            assert!(!all.is_empty());
            for v in all.iter().copied() {
                assert_eq!(serde_json::to_value(v).unwrap(), name(v), "{v:?}");
                assert_eq!(parse(name(v)), Ok(v));
            }
            assert!(parse("archived").is_err());
        }
        check(RunKind::ALL, RunKind::as_str, RunKind::parse);
        check(RunStatus::ALL, RunStatus::as_str, RunStatus::parse);
        check(EntryStatus::ALL, EntryStatus::as_str, EntryStatus::parse);
        check(
            ShowdownState::ALL,
            ShowdownState::as_str,
            ShowdownState::parse,
        );
        check(Goal::ALL, Goal::as_str, Goal::parse);
        check(RanOn::ALL, RanOn::as_str, RanOn::parse);
        let e = EntryStatus::parse("verifying").unwrap_err();
        assert_eq!(
            e.to_string(),
            "this Kindling does not know the showdown candidate status \"verifying\" (a newer Kindling wrote it); update Kindling"
        );
    }
}
