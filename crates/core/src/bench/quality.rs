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
    pub grader_version: u32,
    pub expected_seconds: Option<f64>,
    pub tests: Vec<TestLine>,
}

/// How long one request may take: twice what this machine's measured speed predicts,
/// plus a margin, within a floor and a cap.
pub fn deadline(
    prompt_tokens: u64,
    max_tokens: u32,
    prompt_per_second: f64,
    gen_per_second: f64,
) -> Duration {
    let expected = prompt_tokens as f64 / prompt_per_second.max(0.1)
        + f64::from(max_tokens) / gen_per_second.max(0.01);
    Duration::from_secs_f64((2.0 * expected + 15.0).clamp(30.0, 4.0 * 3600.0))
}

fn estimate_tokens(messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| m.to_string().len() as u64 / 4 + 4)
        .sum()
}

/// Tokens of context `test` needs: what it sends (system prompt, prompt or every turn),
/// counted by the server's tokenizer, and room for each answer it asks for.
pub async fn context_needed(
    http: &reqwest::Client,
    base: &str,
    system: Option<&str>,
    test: &TestCase,
) -> std::result::Result<u64, ServerError> {
    let mut text = system.unwrap_or_default().to_string();
    match (&test.prompt, &test.needle) {
        (Some(p), _) => text.push_str(p),
        (None, Some(n)) => text.push_str(&needle_prompt(n)),
        (None, None) => text.push_str(&test.turns.join("\n")),
    }
    let answers = if test.turns.is_empty() {
        test.agent.as_ref().map_or(1, |a| a.max_steps.max(1))
    } else {
        test.turns.len() as u32
    };
    // The chat template's own tokens: a few per message.
    let template = 16 * (u64::from(answers) + 1);
    Ok(speed::count_tokens(http, base, &text).await?
        + u64::from(answers) * u64::from(test.max_tokens)
        + template)
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// Runs one test against `base` (the OpenAI API of a server).
pub async fn run_test(
    http: &reqwest::Client,
    base: &str,
    system: Option<&str>,
    test: &TestCase,
    think: Option<bool>,
    speed: (f64, f64),
) -> std::result::Result<(Outcome, TestAnswer), ServerError> {
    let started = Instant::now();
    let mut conv: Vec<Value> = system
        .map(|s| json!({"role": "system", "content": s}))
        .into_iter()
        .collect();
    let specs: Vec<Value> = test.tools.iter().filter_map(|t| tools::spec(t)).collect();
    let mut answer = TestAnswer::default();
    let ask = |conv: &Vec<Value>, tools: &[Value]| {
        let limit = deadline(estimate_tokens(conv), test.max_tokens, speed.0, speed.1);
        let conv = conv.clone();
        let tools = tools.to_vec();
        async move { chat::complete(http, base, &conv, &tools, test.max_tokens, think, limit).await }
    };
    let ended_badly = |a: &ChatAnswer| !matches!(a.ending, Ending::Finished);

    if !test.turns.is_empty() {
        for turn in &test.turns {
            conv.push(user(turn));
            let a = ask(&conv, &[]).await?;
            conv.push(json!({"role": "assistant", "content": a.content}));
            let stop = ended_badly(&a);
            answer.last = Some(a);
            if stop {
                break;
            }
        }
    } else {
        let prompt = match (&test.prompt, &test.needle) {
            (Some(p), _) => p.clone(),
            (None, Some(n)) => needle_prompt(n),
            (None, None) => String::new(),
        };
        conv.push(user(&prompt));
        let steps = test.agent.as_ref().map_or(1, |a| a.max_steps.max(1));
        for step in 1..=steps {
            let a = ask(&conv, &specs).await?;
            let calls = a.tool_calls.clone();
            let stop = ended_badly(&a) || calls.is_empty() || test.agent.is_none() || step == steps;
            if test.agent.is_some() && !calls.is_empty() && !ended_badly(&a) {
                conv.push(json!({
                    "role": "assistant",
                    "content": a.content,
                    "tool_calls": calls.iter().map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})).collect::<Vec<_>>(),
                }));
                for c in &calls {
                    answer.tools_used.push(c.name.clone());
                    let result = if test.tools.contains(&c.name) {
                        tools::execute(&c.name, &c.args())
                    } else {
                        format!("error: no tool named {}", c.name)
                    };
                    conv.push(json!({"role": "tool", "tool_call_id": c.id, "content": result}));
                }
            } else {
                conv.push(json!({"role": "assistant", "content": a.content}));
            }
            answer.last = Some(a);
            if stop {
                break;
            }
        }
    }
    answer.conversation = conv;
    answer.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let outcome = match answer.last.as_ref().map(|a| &a.ending) {
        Some(Ending::Degenerate(_)) => Outcome::Degenerate,
        Some(Ending::Timeout { .. }) => Outcome::Timeout,
        _ => Outcome::Answered,
    };
    Ok((outcome, answer))
}

/// Runs a SELECT in a fresh in-memory SQLite holding the test's table, rows as text.
async fn run_sql(setup: &str, query: &str) -> std::result::Result<Vec<Vec<String>>, String> {
    use sqlx::Row;
    if query.contains(';') {
        return Err("only one statement is allowed".into());
    }
    let (setup, query) = (setup.to_string(), query.to_string());
    let work = async move {
        // A one-connection pool, not a bare connection: `&mut SqliteConnection` as an
        // executor is not `Send` for every lifetime (sqlx #1636); `&Pool` is.
        let c = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(&setup)
            .execute(&c)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::query(&query)
            .fetch_all(&c)
            .await
            .map_err(|e| e.to_string())?;
        let text = rows
            .iter()
            .take(1000)
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<i64, _>(i)
                            .map(|v| v.to_string())
                            .or_else(|_| r.try_get::<f64, _>(i).map(|v| format!("{v:?}")))
                            .or_else(|_| r.try_get::<String, _>(i))
                            .unwrap_or_else(|_| "NULL".into())
                    })
                    .collect()
            })
            .collect();
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .map_err(|_| "the query ran too long".to_string())?
}

/// Grades a stored answer with the current graders.
pub async fn grade(test: &TestCase, outcome: Outcome, answer: &TestAnswer) -> Grade {
    if outcome != Outcome::Answered {
        let why = match answer.last.as_ref().map(|a| &a.ending) {
            Some(Ending::Degenerate(d)) => {
                format!("degenerate output ({}: {})", d.kind, d.evidence)
            }
            Some(Ending::Timeout { after_ms }) => format!("no answer within {} s", after_ms / 1000),
            _ => answer
                .error
                .clone()
                .unwrap_or_else(|| outcome.as_str().to_string()),
        };
        return Grade {
            score: 0.0,
            detail: why,
        };
    }
    let last = answer.last.clone().unwrap_or_else(|| ChatAnswer {
        content: String::new(),
        reasoning: String::new(),
        tool_calls: vec![],
        finish_reason: None,
        timings: None,
        pieces: 0,
        ending: Ending::Finished,
        elapsed_ms: 0.0,
    });
    if let Grader::Sql { setup, expected } = &test.grader {
        return match graders::sql_of(&last.content) {
            None => Grade {
                score: 0.0,
                detail: "no SELECT query in the answer".into(),
            },
            Some(q) => graders::grade_sql_rows(run_sql(setup, &q).await, expected),
        };
    }
    let calls: Vec<(String, Value)> = last
        .tool_calls
        .iter()
        .map(|c| (c.name.clone(), c.args()))
        .collect();
    graders::grade_guarded(
        &test.grader,
        &Response {
            content: &last.content,
            tool_calls: &calls,
            tools_used: &answer.tools_used,
        },
    )
}

/// Builds the report from the scores. Pure.
pub fn summarize(
    run_id: i64,
    config: RunConfig,
    model_bytes: u64,
    tests: &[&TestCase],
    lines: Vec<TestLine>,
    speed: Option<(f64, f64)>,
    backend_faults: usize,
) -> QualityReport {
    let mut categories = Vec::new();
    for c in CATEGORIES {
        let scores: Vec<f64> = lines
            .iter()
            .filter(|l| l.category == *c && l.outcome.scored())
            .map(|l| l.score)
            .collect();
        if tests.iter().any(|t| t.category == *c) && !scores.is_empty() {
            categories.push(CategoryScore {
                category: c.to_string(),
                score: scores.iter().sum::<f64>() / scores.len() as f64,
                tests: scores.len(),
            });
        }
    }
    let score = if categories.is_empty() {
        0.0
    } else {
        categories.iter().map(|c| c.score).sum::<f64>() / categories.len() as f64
    };
    let mut counts = Counts {
        backend_faults,
        ..Counts::default()
    };
    for l in &lines {
        match l.outcome {
            Outcome::Answered => counts.answered += 1,
            Outcome::Degenerate => counts.degenerate += 1,
            Outcome::Timeout => counts.timeout += 1,
            Outcome::Crash => counts.crash += 1,
            Outcome::Error => counts.error += 1,
            Outcome::Skipped => counts.skipped += 1,
        }
    }
    QualityReport {
        run_id,
        config,
        model_bytes,
        // Unknown size (no file, no record): no figure rather than a huge one.
        score_per_gb: if model_bytes == 0 {
            0.0
        } else {
            score * 100.0 / (model_bytes as f64 / 1e9)
        },
        categories,
        score,
        prompt_per_second: speed.map(|s| s.0),
        gen_per_second: speed.map(|s| s.1),
        fraction_of_limit: None,
        counts,
        grader_version: GRADER_VERSION,
        expected_seconds: None,
        tests: lines,
    }
}

const CRASHES_IN_A_ROW: u32 = 3;

/// A stored answer as the graders take it; one that cannot be read is graded as empty.
fn stored_answer(r: &StoredResult) -> TestAnswer {
    serde_json::from_str(&r.answer_json).unwrap_or_else(|e| {
        tracing::warn!(test = %r.test_id, error = %e, "a stored answer cannot be read; grading it as empty");
        TestAnswer {
            error: Some(format!("stored answer unreadable: {e}")),
            ..TestAnswer::default()
        }
    })
}

/// The measurement holding the speed limit a quality run's server ran under.
const LIMIT_PER_SECOND: &str = "limit_per_second";

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

    async fn quality_run_config(&self, id: i64) -> Result<RunConfig> {
        Ok(self
            .db()
            .run_config(id)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(crate::history::HistoryError::RunNotFound(id))?)
    }

    async fn create_quality_run(
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

    async fn start_for_quality(
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

    /// Sizes the server's context for the tests still to run: the context the longest
    /// needs when the fit estimator says this machine has room for it, else what fits.
    /// Returns the server (restarted when resized), each test's need, and what a test
    /// that needs more is told.
    async fn size_context(
        &self,
        run_id: i64,
        model: &std::path::Path,
        mut server: Server,
        system: Option<&str>,
        pending: &[&TestCase],
        cancel: &CancellationToken,
    ) -> Result<(Server, HashMap<String, u64>, String)> {
        let http = crate::server::http_client();
        let mut needs = HashMap::new();
        for t in pending {
            let need = guarded(
                &server,
                cancel,
                context_needed(&http, &server.base_url(), system, t),
            )
            .await?;
            needs.insert(t.id.clone(), need);
        }
        let have = u64::from(server.config().ctx_size);
        let most = needs.values().copied().max().unwrap_or(0);
        let limit = |fits: u64, by_model: bool| {
            let n = crate::units::format_tokens(fits);
            if by_model {
                format!("this model takes at most {n}")
            } else {
                format!("this Mac fits {n}")
            }
        };
        if most <= have {
            return Ok((server, needs, limit(have, false)));
        }
        let (fits, by_model) = self.context_fit(model, most).await?;
        // Room for every test when it fits; else as much as fits, for the ones that do.
        let target = if fits >= most {
            most.div_ceil(1024) * 1024
        } else {
            fits / 1024 * 1024
        };
        if target > have {
            server.stop().await;
            server = self
                .start_for_quality(model, Some(target as u32), cancel)
                .await?;
            self.db()
                .set_run_server_args(run_id, &server.config().to_args())
                .await?;
        }
        let fits = fits.max(have);
        let words = limit(fits, by_model);
        Ok((server, needs, words))
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

    async fn store_and_grade(
        &self,
        run_id: i64,
        test: &TestCase,
        outcome: Outcome,
        answer: &TestAnswer,
    ) -> Result<()> {
        let g = grade(test, outcome, answer).await;
        self.db()
            .add_graded_result(
                run_id,
                &StoredResult {
                    test_id: test.id.clone(),
                    category: test.category.clone(),
                    outcome: outcome.as_str().into(),
                    answer_json: serde_json::to_string(answer).expect("serializes"),
                },
                &StoredScore {
                    test_id: test.id.clone(),
                    score: g.score,
                    detail: Some(g.detail),
                    grader_version: i64::from(GRADER_VERSION),
                },
                &history::now(),
            )
            .await?;
        Ok(())
    }

    /// Grades the stored answers of `run_id` that have none (see
    /// [`crate::history::Database::ungraded_results`]).
    async fn grade_ungraded(&self, run_id: i64, suite: &Suite) -> Result<()> {
        let now = history::now();
        for r in self.db().ungraded_results(run_id).await? {
            let Some(test) = suite.tests.iter().find(|t| t.id == r.test_id) else {
                continue;
            };
            let g = grade(test, Outcome::parse(&r.outcome), &stored_answer(&r)).await;
            self.db()
                .set_score(
                    run_id,
                    &StoredScore {
                        test_id: r.test_id,
                        score: g.score,
                        detail: Some(g.detail),
                        grader_version: i64::from(GRADER_VERSION),
                    },
                    &now,
                )
                .await?;
        }
        Ok(())
    }

    /// The report of a quality run from what is stored.
    pub async fn quality_report(
        &self,
        run_id: i64,
        suite: Option<&Suite>,
    ) -> Result<QualityReport> {
        let config: RunConfig = self
            .db()
            .run_config(run_id)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(crate::history::HistoryError::RunNotFound(run_id))?;
        let core_suite;
        let suite = match suite {
            Some(s) => s,
            None => {
                core_suite = Suite::core();
                &core_suite
            }
        };
        let tests = suite.select(config.quick);
        let results = self.db().results(run_id).await?;
        let scores = self.db().scores(run_id).await?;
        let lines = results
            .iter()
            .map(|r| {
                let s = scores.iter().find(|s| s.test_id == r.test_id);
                TestLine {
                    id: r.test_id.clone(),
                    category: r.category.clone(),
                    outcome: Outcome::parse(&r.outcome),
                    score: s.map_or(0.0, |s| s.score),
                    detail: s.and_then(|s| s.detail.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let pp = self
            .db()
            .measurement_values(run_id, "prompt_per_second")
            .await?;
        let tg = self
            .db()
            .measurement_values(run_id, "gen_per_second")
            .await?;
        let median = |v: &[f64]| super::stats::Stat::of(v).map(|s| s.median);
        let speed = median(&pp).zip(median(&tg));
        let limit = self
            .db()
            .measurement_values(run_id, LIMIT_PER_SECOND)
            .await?;
        let fraction_of_limit = median(&tg)
            .zip(limit.first().copied())
            .filter(|(_, l)| *l > 0.0)
            .map(|(g, l)| g / l);
        // The file as it is now; if it is gone, the size recorded with the run.
        let model_bytes = match std::fs::metadata(&config.model) {
            Ok(m) => m.len(),
            Err(_) => self.db().run_model_bytes(run_id).await?.unwrap_or(0),
        };
        let backend_faults = results
            .iter()
            .filter_map(|r| {
                serde_json::from_str::<TestAnswer>(&r.answer_json)
                    .ok()?
                    .cpu_retry
            })
            .filter(|c| c.backend_at_fault)
            .count();
        let mut report = summarize(
            run_id,
            config,
            model_bytes,
            &tests,
            lines,
            speed,
            backend_faults,
        );
        report.fraction_of_limit = fraction_of_limit;
        Ok(report)
    }

    /// Keeps, with a quality run, the speed limit its server ran under (as a
    /// measurement, so a resumed or rescored run still has it).
    async fn store_limit(
        &self,
        run_id: i64,
        model: &std::path::Path,
        server: &Server,
    ) -> Result<()> {
        let info = crate::gguf::inspect(model)?;
        let hw = self.detect().await.hardware;
        let limit = self.run_limit(&hw, &info, server.config(), None).await;
        if let Some(l) = limit.limit_per_second {
            self.db()
                .add_measurements(
                    run_id,
                    &[crate::history::Measurement {
                        name: LIMIT_PER_SECOND.into(),
                        repetition: None,
                        value: l,
                        unit: "tok/s".into(),
                    }],
                )
                .await?;
        }
        Ok(())
    }

    /// Re-grades a run's stored answers with the current graders (and `suite`'s
    /// parameters, default the built-in suite). No request reaches any server.
    pub async fn rescore(&self, run_id: i64, suite: Option<&Suite>) -> Result<QualityReport> {
        let core_suite;
        let suite = match suite {
            Some(s) => s,
            None => {
                core_suite = Suite::core();
                &core_suite
            }
        };
        let now = history::now();
        for r in self.db().results(run_id).await? {
            let Some(test) = suite.tests.iter().find(|t| t.id == r.test_id) else {
                continue;
            };
            let g = grade(test, Outcome::parse(&r.outcome), &stored_answer(&r)).await;
            self.db()
                .set_score(
                    run_id,
                    &StoredScore {
                        test_id: r.test_id,
                        score: g.score,
                        detail: Some(g.detail),
                        grader_version: i64::from(GRADER_VERSION),
                    },
                    &now,
                )
                .await?;
        }
        let report = self.quality_report(run_id, Some(suite)).await?;
        let detail = self.db().run_detail(run_id).await?;
        if detail.run.status == RunStatus::Completed {
            self.db()
                .complete_run(
                    run_id,
                    &report,
                    detail.run.finished_at.as_deref().unwrap_or(&now),
                )
                .await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_measured_speed() {
        let fast = deadline(500, 256, 5000.0, 300.0);
        let slow = deadline(500, 256, 20.0, 1.0);
        assert_eq!(fast, Duration::from_secs(30), "floor");
        assert!(
            slow > Duration::from_secs(500),
            "a 1 tok/s model gets the time it needs: {slow:?}"
        );
        assert_eq!(
            deadline(1_000_000, 100_000, 0.0, 0.0),
            Duration::from_secs(4 * 3600),
            "cap"
        );
    }

    #[test]
    fn summary_means_categories_not_tests() {
        let suite = Suite::core();
        let tests = suite.select(false);
        let line = |id: &str, cat: &str, score: f64, outcome: Outcome| TestLine {
            id: id.into(),
            category: cat.into(),
            outcome,
            score,
            detail: String::new(),
        };
        let lines = vec![
            line("a", "reasoning", 1.0, Outcome::Answered),
            line("b", "reasoning", 1.0, Outcome::Answered),
            line("c", "reasoning", 1.0, Outcome::Answered),
            line("d", "coding", 0.0, Outcome::Degenerate),
        ];
        let cfg = RunConfig {
            model: "m".into(),
            quick: false,
            think: None,
            suite_id: "core".into(),
            suite_version: 1,
        };
        let r = summarize(1, cfg, 2_000_000_000, &tests, lines, Some((100.0, 10.0)), 0);
        assert_eq!(r.categories.len(), 2);
        assert_eq!(r.score, 0.5);
        assert_eq!(r.score_per_gb, 25.0);
        assert_eq!(r.counts.degenerate, 1);
        assert_eq!(r.counts.answered, 3);
    }
}
