//! The quality runner: the suite against a served model, one test at a time, each raw
//! answer saved with its grade in one write (the raw answer stays, to rescore).
//! Resumable (completed tests are skipped), tolerant of slow models (deadlines derived
//! from this machine's measured speed), and of crashes (the server is restarted; three
//! in a row end the run with the reason).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::chat::{self, ChatAnswer, Ending};
use super::graders::{self, Grade, Grader, Response, GRADER_VERSION};
use super::runner::guarded;
use super::speed::SpeedOptions;
use std::collections::HashMap;

use super::outcome::Outcome;
use super::speed;
use super::suite::{needle_prompt, Suite, TestCase, CATEGORIES};
use super::tools;
use crate::events::{BenchPhase, Event};
use crate::history::{self, RunStatus, StoredResult, StoredScore};
use crate::server::{Server, ServerError};
use crate::{Core, Error, Result};

mod context;
mod grading;
mod report;
mod sql;
mod turns;

pub use grading::grade;
pub use report::summarize;
pub use turns::{context_needed, deadline, run_test};

/// What to run.
#[derive(Debug, Clone)]
pub struct QualityRequest {
    pub model: PathBuf,
    pub quick: bool,
    /// Thinking on/off for templates that toggle it; `None` leaves the template's default.
    pub think: Option<bool>,
    /// Continue this interrupted run instead of starting a new one.
    pub resume: Option<i64>,
    /// The suite; `None` is the one built in.
    pub suite: Option<Suite>,
}

/// Stored with the run so it can be resumed and rescored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunConfig {
    pub model: PathBuf,
    pub quick: bool,
    pub think: Option<bool>,
    pub suite_id: String,
    pub suite_version: u32,
    /// Asked to settle a showdown's tie: the full suite, carrying the quick run's answers
    /// and speed. Its score is judged beside its rival's only; it neither recommends nor
    /// calibrates (its figures repeat the quick run's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tie_break: bool,
}

/// Everything stored about one test's answer (raw; scores are derived from it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TestAnswer {
    pub conversation: Vec<Value>,
    /// The last model reply, which is graded.
    pub last: Option<ChatAnswer>,
    pub tools_used: Vec<String>,
    pub error: Option<String>,
    pub elapsed_ms: f64,
    /// A degenerate answer with GPU layers is tried once more on the CPU alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_retry: Option<CpuRetry>,
}

/// The same test again with `-ngl 0`, after garbage with GPU layers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuRetry {
    pub outcome: Outcome,
    /// The CPU answered sensibly where the GPU did not: the GPU backend is at fault.
    pub backend_at_fault: bool,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CategoryScore {
    pub category: String,
    pub score: f64,
    pub tests: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Counts {
    pub answered: usize,
    pub degenerate: usize,
    pub timeout: usize,
    pub crash: usize,
    pub error: usize,
    /// Needed more context than fits this machine: not run, not scored.
    #[serde(default)]
    pub skipped: usize,
    /// Degenerate with GPU layers but fine on the CPU.
    #[serde(default)]
    pub backend_faults: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TestLine {
    pub id: String,
    pub category: String,
    pub outcome: Outcome,
    pub score: f64,
    pub detail: String,
}

impl From<&TestLine> for crate::bench::paired::TestScore {
    fn from(t: &TestLine) -> Self {
        crate::bench::paired::TestScore {
            id: t.id.clone(),
            category: t.category.clone(),
            score: t.score,
        }
    }
}

/// The report of a quality run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct QualityReport {
    pub run_id: i64,
    pub config: RunConfig,
    pub model_bytes: u64,
    pub categories: Vec<CategoryScore>,
    /// Mean of the answer-quality categories, 0–1. Speed is reported beside it, not in it:
    /// slow but right is a valid answer here.
    pub score: f64,
    /// Score in percent ÷ model file size in GB.
    pub score_per_gb: f64,
    pub gen_per_second: Option<f64>,
    pub prompt_per_second: Option<f64>,
    /// Generation speed ÷ the speed the weights' memory allows (see
    /// [`super::limit`]); calibrates predictions like a speed run's.
    #[serde(default)]
    pub fraction_of_limit: Option<f64>,
    pub counts: Counts,
    /// Cores other programs kept busy while the speed was measured, when that made the
    /// machine busy even after waiting: the speed is shown, never used to rule the model
    /// out or to calibrate predictions.
    #[serde(default)]
    pub measured_busy: Option<f64>,
    pub grader_version: u32,
    pub expected_seconds: Option<f64>,
    pub tests: Vec<TestLine>,
}

pub(super) const CRASHES_IN_A_ROW: u32 = 3;

impl Core {
    /// Runs (or resumes) the quality suite on a model and stores every answer.
    pub async fn bench_quality(
        &self,
        req: QualityRequest,
        cancel: &CancellationToken,
    ) -> Result<QualityReport> {
        self.bench_quality_on(req, None, cancel).await
    }

    /// [`Core::bench_quality`] on `loaded`, a server already running `req.model` (from
    /// [`Core::bench_speed_keeping_server`]), so the model is loaded once; it is stopped
    /// when the run ends. With `None`, the run starts its own.
    pub async fn bench_quality_on(
        &self,
        req: QualityRequest,
        loaded: Option<Server>,
        cancel: &CancellationToken,
    ) -> Result<QualityReport> {
        let suite = req.suite.clone().unwrap_or_else(Suite::core);
        let runtime = self.locate_runtime()?;
        let info = runtime.info().await?;
        let (run_id, config) = match req.resume {
            Some(id) => {
                let cfg = self.quality_run_config(id).await?;
                let detail = self.db().run_detail(id).await?;
                if detail.run.status == RunStatus::Completed {
                    return self.quality_report(id, Some(&suite)).await;
                }
                self.db().reopen_run(id).await?;
                self.grade_ungraded(id, &suite).await?;
                (id, cfg)
            }
            None => {
                let id = self
                    .create_quality_run(&req, &suite, loaded.as_ref(), &runtime, &info)
                    .await?;
                let cfg = self.quality_run_config(id).await?;
                (id, cfg)
            }
        };
        let result = self
            .quality_inner(run_id, &config, &suite, loaded, cancel)
            .await;
        match result {
            Ok(report) => {
                self.db()
                    .complete_run(run_id, &report, &history::now())
                    .await?;
                Ok(report)
            }
            Err((e, tail)) => {
                let status = if matches!(e, Error::Cancelled) {
                    RunStatus::Interrupted
                } else {
                    RunStatus::Failed
                };
                let msg = if status == RunStatus::Interrupted {
                    format!("{e} The run can be continued where it stopped.")
                } else {
                    e.to_string()
                };
                if let Err(db) = self
                    .db()
                    .finish_run(
                        run_id,
                        status,
                        Some((e.code().as_str(), &msg)),
                        None,
                        tail.as_deref(),
                        &history::now(),
                    )
                    .await
                {
                    tracing::error!(error = %db, "could not record how the run ended");
                }
                Err(e)
            }
        }
    }

    /// Stores a new quality run of `req.model`, not started: a job that must know the
    /// run before it measures (the showdown keeps it on its entry, and resumes it by id)
    /// then runs it with `resume: Some(id)`.
    pub async fn begin_quality_run(&self, req: &QualityRequest) -> Result<i64> {
        let suite = req.suite.clone().unwrap_or_else(Suite::core);
        let runtime = self.locate_runtime()?;
        let info = runtime.info().await?;
        self.create_quality_run(req, &suite, None, &runtime, &info)
            .await
    }

    pub(super) async fn quality_run_config(&self, id: i64) -> Result<RunConfig> {
        Ok(self
            .db()
            .run_config(id)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(crate::history::HistoryError::RunNotFound(id))?)
    }

    pub(super) async fn create_quality_run(
        &self,
        req: &QualityRequest,
        suite: &Suite,
        loaded: Option<&Server>,
        runtime: &crate::runtime::Runtime,
        info: &crate::runtime::RuntimeInfo,
    ) -> Result<i64> {
        let registered = crate::store::register(self.db(), &req.model).await?;
        let hw = self.machine_now(info).await;
        let cfg = RunConfig {
            model: registered.path.clone(),
            quick: req.quick,
            think: req.think,
            suite_id: suite.suite.id.clone(),
            suite_version: suite.suite.version,
            tie_break: false,
        };
        // What the server will be started with; the exact arguments (its port too)
        // replace these once it runs.
        let args = match loaded {
            Some(server) => server.config().to_args(),
            None => self.launch_config(&registered, &hw, 0).0.to_args(),
        };
        let id = self
            .begin_run(super::runner::RunStart {
                kind: super::RunKind::Quality,
                model_id: registered.id,
                runtime,
                info,
                hardware: &hw,
                bandwidth: None,
                server_args: &args,
            })
            .await?;
        self.db()
            .set_run_config(id, &serde_json::to_value(&cfg).expect("serializes"))
            .await?;
        Ok(id)
    }

    pub(super) async fn start_for_quality(
        &self,
        model: &std::path::Path,
        context: Option<u32>,
        cancel: &CancellationToken,
    ) -> Result<Server> {
        Ok(self
            .start_server_sized(model, None, context, cancel)
            .await?
            .0)
    }

    async fn quality_inner(
        &self,
        run_id: i64,
        config: &RunConfig,
        suite: &Suite,
        loaded: Option<Server>,
        cancel: &CancellationToken,
    ) -> std::result::Result<QualityReport, (Error, Option<Vec<String>>)> {
        let plain = |e: Error| (e, None);
        let progress = |step: u32, total: u32, message: String| {
            self.events().emit(Event::BenchProgress {
                run_id,
                tokens_per_second: None,
                phase: BenchPhase::Testing,
                step,
                total,
                message,
            })
        };
        let tests = suite.select(config.quick);
        let done: std::collections::HashSet<String> = self
            .db()
            .results(run_id)
            .await
            .map_err(|e| plain(e.into()))?
            .into_iter()
            .map(|r| r.test_id)
            .collect();

        let server = match loaded {
            Some(server) if server.config().model == config.model => server,
            other => {
                if let Some(s) = other {
                    s.stop().await;
                }
                self.events().emit(Event::BenchProgress {
                    run_id,
                    tokens_per_second: None,
                    phase: BenchPhase::Starting,
                    step: 1,
                    total: 1,
                    message: "Starting the model server".into(),
                });
                self.start_for_quality(&config.model, None, cancel)
                    .await
                    .map_err(plain)?
            }
        };

        self.db()
            .set_run_server_args(run_id, &server.config().to_args())
            .await
            .map_err(|e| plain(e.into()))?;

        // Performance: the speed benchmark, folded in (once per run).
        let mut speed = (
            self.db()
                .measurement_values(run_id, "prompt_per_second")
                .await
                .map_err(|e| plain(e.into()))?,
            self.db()
                .measurement_values(run_id, "gen_per_second")
                .await
                .map_err(|e| plain(e.into()))?,
        );
        if speed.1.is_empty() {
            let opts = SpeedOptions {
                prompt_tokens: 256,
                gen_tokens: 64,
                repetitions: 2,
                max_repetitions: 4,
                warmup: true,
            };
            match self.measure(run_id, &server, &opts, cancel).await {
                Ok(samples) => {
                    self.store_limit(run_id, &config.model, &server)
                        .await
                        .map_err(plain)?;
                    speed = (
                        samples.iter().map(|s| s.prompt_per_second).collect(),
                        samples.iter().map(|s| s.predicted_per_second).collect(),
                    );
                }
                Err(e) => {
                    let tail = server.log_tail();
                    server.stop().await;
                    return Err((e, Some(tail)));
                }
            }
        }
        let median = |v: &[f64]| super::stats::Stat::of(v).map(|s| s.median);
        let pp_tg = (
            median(&speed.0).unwrap_or(50.0),
            median(&speed.1).unwrap_or(5.0),
        );
        let expected: f64 = tests
            .iter()
            .map(|t| {
                let steps = t
                    .agent
                    .as_ref()
                    .map_or(1.0, |a| f64::from(a.max_steps) / 2.0)
                    * (t.turns.len().max(1) as f64);
                (600.0 / pp_tg.0 + f64::from(t.max_tokens) / pp_tg.1) * steps
            })
            .sum();

        let pending: Vec<&TestCase> = tests
            .iter()
            .copied()
            .filter(|t| !done.contains(&t.id))
            .collect();
        let (mut server, needs, too_long) = match self
            .size_context(
                run_id,
                &config.model,
                server,
                suite.suite.system.as_deref(),
                &pending,
                cancel,
            )
            .await
        {
            Ok(v) => v,
            Err(e) => return Err((e, None)),
        };
        let context = server.config().ctx_size;
        let http = crate::server::http_client();
        let gpu_by_default = !self.detect().await.hardware.vulkan_devices.is_empty();
        let total = tests.len() as u32;
        let mut crashes = 0;
        let mut left = expected;
        for (i, test) in tests.iter().enumerate() {
            if done.contains(&test.id) {
                continue;
            }
            let need = needs.get(&test.id).copied().unwrap_or(0);
            if need > u64::from(context) {
                // Never an error, never dropped: recorded, shown, left out of the score.
                let answer = TestAnswer {
                    error: Some(format!(
                        "needs {} tokens of context; {too_long}",
                        crate::units::format_tokens(need),
                    )),
                    ..TestAnswer::default()
                };
                self.store_and_grade(run_id, test, Outcome::Skipped, &answer)
                    .await
                    .map_err(plain)?;
                continue;
            }
            progress(
                i as u32 + 1,
                total,
                format!(
                    "{} · {:.1} tokens/s · about {} left",
                    test.id,
                    pp_tg.1,
                    crate::units::format_duration(left)
                ),
            );
            let base = server.base_url();
            let outcome = guarded(
                &server,
                cancel,
                run_test(
                    &http,
                    &base,
                    suite.suite.system.as_deref(),
                    test,
                    config.think,
                    pp_tg,
                ),
            )
            .await;
            let (outcome, answer) = match outcome {
                Ok(v) => {
                    crashes = 0;
                    v
                }
                Err(Error::Cancelled) => {
                    server.stop().await;
                    return Err((Error::Cancelled, None));
                }
                Err(Error::Server(e))
                    if matches!(
                        e,
                        ServerError::Crashed { .. }
                            | ServerError::Exited { .. }
                            | ServerError::OutOfMemory { .. }
                    ) =>
                {
                    crashes += 1;
                    let tail = server.log_tail();
                    let answer = TestAnswer {
                        error: Some(e.to_string()),
                        ..TestAnswer::default()
                    };
                    self.store_and_grade(run_id, test, Outcome::Crash, &answer)
                        .await
                        .map_err(plain)?;
                    if crashes >= CRASHES_IN_A_ROW {
                        return Err((Error::Server(e), Some(tail)));
                    }
                    server.stop().await;
                    server = self
                        .start_for_quality(&config.model, Some(context), cancel)
                        .await
                        .map_err(plain)?;
                    continue;
                }
                Err(e) => {
                    let answer = TestAnswer {
                        error: Some(e.to_string()),
                        ..TestAnswer::default()
                    };
                    (Outcome::Error, answer)
                }
            };
            let mut answer = answer;
            let on_gpu = server.config().gpu_layers.map_or(gpu_by_default, |n| n > 0);
            if outcome == Outcome::Degenerate && on_gpu {
                // Garbage with GPU layers: once more on the CPU alone, to tell a broken
                // backend from a model that rambles.
                progress(
                    i as u32 + 1,
                    total,
                    format!(
                        "{} · garbage on the GPU; trying once on the processor",
                        test.id
                    ),
                );
                server.stop().await;
                let cpu = self
                    .start_server_sized(&config.model, Some(0), Some(context), cancel)
                    .await
                    .map_err(plain)?
                    .0;
                let retry = guarded(
                    &cpu,
                    cancel,
                    run_test(
                        &http,
                        &cpu.base_url(),
                        suite.suite.system.as_deref(),
                        test,
                        config.think,
                        pp_tg,
                    ),
                )
                .await;
                cpu.stop().await;
                if let Ok((o, a)) = retry {
                    answer.cpu_retry = Some(CpuRetry {
                        backend_at_fault: o == Outcome::Answered,
                        outcome: o,
                        content: a.last.map(|l| l.content).unwrap_or_default(),
                    });
                }
                server = self
                    .start_for_quality(&config.model, Some(context), cancel)
                    .await
                    .map_err(plain)?;
            }
            left -= answer.elapsed_ms / 1e3;
            self.store_and_grade(run_id, test, outcome, &answer)
                .await
                .map_err(plain)?;
        }
        server.stop().await;
        self.quality_report(run_id, Some(suite))
            .await
            .map(|mut r| {
                r.expected_seconds = Some(expected);
                r
            })
            .map_err(plain)
    }
}
