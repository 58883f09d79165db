//! Reports: a run's answers summarized by category, its score per GB, and the speed
//! limit its server ran under.

use super::*;

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
        measured_busy: None,
        grader_version: GRADER_VERSION,
        expected_seconds: None,
        tests: lines,
    }
}

/// The measurement holding the speed limit a quality run's server ran under.
pub(super) const LIMIT_PER_SECOND: &str = "limit_per_second";

impl Core {
    /// Whether quality runs `a` and `b` answered alike, test by test over the tests both
    /// answered; `None` when either is not a quality run or they share no test.
    pub async fn judge_runs(&self, a: i64, b: i64) -> Option<crate::bench::paired::Judgement> {
        let scores = |r: QualityReport| -> Vec<crate::bench::paired::TestScore> {
            r.tests.iter().map(Into::into).collect()
        };
        let first = scores(self.quality_report(a, None).await.ok()?);
        let second = scores(self.quality_report(b, None).await.ok()?);
        crate::bench::paired::paired(&first, &second)
    }

    /// The report of a quality run from what is stored.
    pub async fn quality_report(
        &self,
        run_id: i64,
        suite: Option<&Suite>,
    ) -> Result<QualityReport> {
        let config = self.quality_run_config(run_id).await?;
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
        let median = |v: &[f64]| super::super::stats::Stat::of(v).map(|s| s.median);
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
        report.measured_busy = self.db().measured_busy(run_id).await?;
        report.fraction_of_limit = fraction_of_limit.filter(|_| report.measured_busy.is_none());
        Ok(report)
    }

    /// Keeps, with a quality run, the speed limit its server ran under (as a
    /// measurement, so a resumed or rescored run still has it).
    pub(super) async fn store_limit(
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
            tie_break: false,
        };
        let r = summarize(1, cfg, 2_000_000_000, &tests, lines, Some((100.0, 10.0)), 0);
        assert_eq!(r.categories.len(), 2);
        assert_eq!(r.score, 0.5);
        assert_eq!(r.score_per_gb, 25.0);
        assert_eq!(r.counts.degenerate, 1);
        assert_eq!(r.counts.answered, 3);
    }
}
