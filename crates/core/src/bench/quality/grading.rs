//! Grade dispatch: a stored answer to its grader, stored with its grade in one write;
//! answers an older build left ungraded, and rescoring with the current graders.

use super::sql::run_sql;
use super::*;

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

/// A grade as stored, by the current graders' version.
fn stored_score(test_id: String, g: Grade) -> StoredScore {
    StoredScore {
        test_id,
        score: g.score,
        detail: Some(g.detail),
        grader_version: i64::from(GRADER_VERSION),
    }
}

/// A stored answer as the graders take it; one that cannot be read is graded as empty.
pub(super) fn stored_answer(r: &StoredResult) -> TestAnswer {
    serde_json::from_str(&r.answer_json).unwrap_or_else(|e| {
        tracing::warn!(test = %r.test_id, error = %e, "a stored answer cannot be read; grading it as empty");
        TestAnswer {
            error: Some(format!("stored answer unreadable: {e}")),
            ..TestAnswer::default()
        }
    })
}

impl Core {
    pub(super) async fn store_and_grade(
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
                &stored_score(test.id.clone(), g),
                &history::now(),
            )
            .await?;
        Ok(())
    }

    /// Grades the stored answers of `run_id` that have none (see
    /// [`crate::history::Database::ungraded_results`]).
    pub(super) async fn grade_ungraded(&self, run_id: i64, suite: &Suite) -> Result<()> {
        let ungraded = self.db().ungraded_results(run_id).await?;
        self.grade_stored(run_id, suite, ungraded).await
    }

    /// Grades `results` (stored answers of `run_id`) with the current graders and
    /// `suite`'s parameters, and stores each grade; a test `suite` lacks is left alone.
    async fn grade_stored(
        &self,
        run_id: i64,
        suite: &Suite,
        results: Vec<StoredResult>,
    ) -> Result<()> {
        let now = history::now();
        for r in results {
            let Some(test) = suite.tests.iter().find(|t| t.id == r.test_id) else {
                continue;
            };
            let g = grade(test, Outcome::parse(&r.outcome), &stored_answer(&r)).await;
            self.db()
                .set_score(run_id, &stored_score(r.test_id, g), &now)
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
        let results = self.db().results(run_id).await?;
        self.grade_stored(run_id, suite, results).await?;
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
