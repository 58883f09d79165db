//! Benchmarks: the speed benchmark (prompt and generation speed, time to first token,
//! load time, peak memory) and the statistics it reports.

pub mod answers;
pub mod chat;
pub mod degenerate;
pub mod graders;
pub mod limit;
pub mod outcome;
pub mod paired;
pub mod quiet;
pub mod result;
pub mod speed;
pub mod stats;
pub mod suite;
pub mod tools;
pub mod tune;
pub mod verdict;

pub use speed::{SpeedOptions, SpeedSample, SpeedSummary};
pub use stats::Stat;
pub use verdict::{headline, verdict};
pub mod quality;
pub mod runner;
pub use outcome::Outcome;
pub use quality::{QualityReport, QualityRequest};
pub use result::{RunKind, RunResult};
pub use runner::{SpeedReport, SpeedRequest};
