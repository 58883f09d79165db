//! Why a score is what it is: every test of a quality run with what was asked, the model's
//! whole answer (its thinking apart), the tools it called, the grader's verdict and reason,
//! the time it took, and whether it was stopped as garbage, timed out, or retried on the
//! processor. Read from what is stored; nothing is asked of a server.

use serde::Serialize;

use super::chat::Ending;
use super::outcome::Outcome;
use super::quality::TestAnswer;
use super::suite::{needle_prompt, Suite};
use crate::{Core, Result};

/// One test of a run, for the run detail view.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AnswerView {
    pub test_id: String,
    pub category: String,
    pub outcome: Outcome,
    /// 0–1, from the grader.
    pub score: f64,
    /// The grader's reason for the score.
    pub verdict: String,
    /// What the test asked (every turn of a conversation; a long needle prompt is cut).
    pub asked: Vec<String>,
    /// The model's final answer, whole.
    pub answer: String,
    /// Its thinking, apart from the answer.
    pub thinking: String,
    /// Tools it called, in order: `name(arguments)`.
    pub tool_calls: Vec<String>,
    pub elapsed_ms: f64,
    /// "stopped early: …", "no answer within 120 s", or a request error.
    pub ended: Option<String>,
    /// What the processor answered when the GPU's answer was garbage.
    pub cpu_retry: Option<String>,
}

/// Longest prompt text shown whole.
const SHOWN_PROMPT: usize = 2000;

impl Core {
    /// Every answer of quality run `run_id`, in the order the tests ran.
    pub async fn run_answers(&self, run_id: i64) -> Result<Vec<AnswerView>> {
        let suite = Suite::core();
        let results = self.db().results(run_id).await?;
        let scores = self.db().scores(run_id).await?;
        Ok(results
            .into_iter()
            .map(|r| {
                let stored: TestAnswer = serde_json::from_str(&r.answer_json).unwrap_or_default();
                let score = scores.iter().find(|s| s.test_id == r.test_id);
                let test = suite.tests.iter().find(|t| t.id == r.test_id);
                let asked: Vec<String> = match test {
                    Some(t) if !t.turns.is_empty() => t.turns.clone(),
                    Some(t) => vec![match (&t.prompt, &t.needle) {
                        (Some(p), _) => p.clone(),
                        (None, Some(n)) => {
                            let p = needle_prompt(n);
                            if p.len() > SHOWN_PROMPT {
                                format!(
                                    "{}… ({} characters in all)",
                                    p.chars().take(SHOWN_PROMPT).collect::<String>(),
                                    p.len()
                                )
                            } else {
                                p
                            }
                        }
                        _ => String::new(),
                    }],
                    None => vec![],
                };
                let last = stored.last.as_ref();
                let ended = match last.map(|a| &a.ending) {
                    Some(Ending::Degenerate(d)) => {
                        Some(format!("stopped early: {} ({})", d.kind, d.evidence))
                    }
                    Some(Ending::Timeout { after_ms }) => {
                        Some(format!("no answer within {} s", after_ms / 1000))
                    }
                    _ => stored.error.clone(),
                };
                AnswerView {
                    category: r.category,
                    outcome: Outcome::parse(&r.outcome),
                    score: score.map_or(0.0, |s| s.score),
                    verdict: score.and_then(|s| s.detail.clone()).unwrap_or_default(),
                    asked,
                    answer: last.map(|a| a.content.clone()).unwrap_or_default(),
                    thinking: last.map(|a| a.reasoning.clone()).unwrap_or_default(),
                    tool_calls: last
                        .map(|a| {
                            a.tool_calls
                                .iter()
                                .map(|c| format!("{}({})", c.name, c.arguments))
                                .collect()
                        })
                        .unwrap_or_default(),
                    elapsed_ms: stored.elapsed_ms,
                    ended,
                    cpu_retry: stored.cpu_retry.as_ref().map(|c| {
                        format!(
                            "on the processor: {} — {}",
                            c.outcome,
                            c.content.chars().take(300).collect::<String>()
                        )
                    }),
                    test_id: r.test_id,
                }
            })
            .collect())
    }
}
