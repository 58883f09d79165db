//! A tie at the top of a quick showdown, settled. Ten quick tests cannot tell two
//! candidates apart by less than about twenty points, so when the paired judgement calls
//! the would-be winner and its better-scored rival alike, both answer the rest of the full
//! suite (each in a run of its own that carries its quick run's answers and speed: answers
//! are greedy, so asking again would only repeat them) and the pair is judged again on
//! every test. Everyone is still *ranked* on the quick tests they all answered; the full
//! runs only judge the pair. Not settled, and said: two files with the same bytes (they
//! cannot answer differently), and a pair whose predicted time is over the owner's
//! allowance (`Settings::tie_minutes`). "Another seed" is not offered: temperature 0
//! repeats itself. Every step is stored, so a stopped night resumes the settling.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{judge, Ranked};
use crate::bench::quality::{QualityRequest, RunConfig};
use crate::recommend::Goal;
use crate::{Core, Error, Result};

/// What became of a tie at the top of a showdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TieOutcome {
    /// The pair's showdown entries: the would-be winner, then its rival.
    pub entries: Vec<i64>,
    pub settled: Settle,
}

/// How a tie was (or was not) settled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Settle {
    /// Both answered the full suite; their entries' `full_run_id` runs judge them.
    Measured { tests: u32, seconds: f64 },
    /// The two files hold the same bytes: no measurement can tell them apart.
    SameContent,
    /// Answering the rest of the suite would take both longer than the night allows.
    TooLong {
        predicted_seconds: f64,
        allowed_seconds: f64,
    },
    /// A full-suite run could not finish (the reason); the quick judgement stands.
    Failed { why: String },
}

/// What settling found, for the verdict: the pair (their quick runs), how it ended, and
/// the pair judged on every test of their full-suite runs when both finished.
#[derive(Debug, Clone)]
pub struct Settled {
    pub runs: (i64, i64),
    pub settle: Settle,
    pub judged: Option<crate::bench::paired::Judgement>,
}

/// The would-be winner (the first of `ranked`, when it meets the goal) and the rival the
/// verdict weighs it against: the best-scored of the others that meet the goal (any, for
/// the patient goal). Pure.
pub fn rival(ranked: &[Ranked], goal: Goal) -> Option<(&Ranked, &Ranked)> {
    let best = ranked.first().filter(|b| b.meets_goal)?;
    let other = ranked
        .iter()
        .skip(1)
        .filter(|r| r.meets_goal || goal == Goal::Patient)
        .max_by(|a, b| a.score.total_cmp(&b.score))?;
    Some((best, other))
}

/// Seconds for both to answer `tokens` more at their measured speeds (unknown speed:
/// infinitely long, never started blind). Pure.
pub fn settle_seconds(tokens: f64, speeds: [Option<f64>; 2]) -> f64 {
    speeds
        .iter()
        .map(|s| match s {
            Some(tps) if *tps > 0.0 => tokens / tps,
            _ => f64::INFINITY,
        })
        .sum()
}

/// Whether two files hold the same bytes (compared chunk by chunk after their sizes);
/// the same file under two names (a link, `/var` and `/private/var`) is the same.
pub fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    if crate::cleanup::canonical(a) == crate::cleanup::canonical(b) {
        return Ok(true);
    }
    if std::fs::metadata(a)?.len() != std::fs::metadata(b)?.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match f.read(&mut buf[at..])? {
            0 => break,
            n => at += n,
        }
    }
    Ok(at)
}

/// The sentence the verdict adds about the tie between `best` and `rival` (the verdict's
/// own clause already judges them on the full suite when it was measured). Pure.
pub fn sentence(settled: &Settle, best: &str, rival: &str) -> String {
    match settled {
        Settle::Measured { tests, seconds } => format!(
            "{best} and {rival} tied on the quick tests, so both answered the full suite ({tests} tests; {} more) and were judged on it.",
            crate::units::format_duration(*seconds),
        ),
        Settle::SameContent => format!(
            "{best} and {rival} are the same file's bytes, so no further test could tell them apart."
        ),
        Settle::TooLong {
            predicted_seconds,
            allowed_seconds,
        } => format!(
            "They tied on the quick tests; settling it on the full suite would take both about {}, more than the {} a night allows it (Settings), so it stays a tie.",
            crate::units::format_duration(*predicted_seconds),
            crate::units::format_duration(*allowed_seconds)
        ),
        Settle::Failed { why } => format!(
            "They tied on the quick tests; settling it on the full suite failed ({why}), so it stays a tie."
        ),
    }
}

impl Core {
    /// Looks at the top of finished quick showdown `id` and settles a tie there (see the
    /// module). Resumes a settling a stop interrupted; does nothing once it is decided.
    pub(super) async fn settle_tie(&self, id: i64, cancel: &crate::Cancel) -> Result<()> {
        let sd = self.db().showdown(id).await?;
        if !sd.quick || sd.tie.is_some() {
            return Ok(());
        }
        let report = self.showdown_report(id).await?;
        if !report.decided {
            return Ok(());
        }
        let Some((best, other)) = rival(&report.ranked, sd.goal) else {
            return Ok(());
        };
        if judge(best, other).better().is_some() {
            return Ok(());
        }
        let entry_of = |r: &Ranked| sd.entries.iter().find(|e| e.run_id == Some(r.run_id));
        let (Some(eb), Some(eo)) = (entry_of(best), entry_of(other)) else {
            return Ok(());
        };
        let pair = [(eb, best), (eo, other)];
        let entries = vec![eb.id, eo.id];
        let keep = |settled: Settle| {
            let outcome = TieOutcome {
                entries: entries.clone(),
                settled,
            };
            async move { self.db().set_tie(id, &outcome).await }
        };
        let suite = crate::bench::suite::Suite::core();
        let tests = suite.select(false).len() as u32;
        if pair.iter().all(|(e, _)| e.full_run_id.is_none()) {
            let same = same_content(&best.path, &other.path).map_err(|source| Error::Io {
                path: other.path.clone(),
                source,
            })?;
            if same {
                return Ok(keep(Settle::SameContent).await?);
            }
            let predicted = settle_seconds(
                super::suite_tokens(false) - super::suite_tokens(true),
                [best.gen_per_second, other.gen_per_second],
            );
            let allowed = f64::from(self.settings().tie_minutes) * 60.0;
            if predicted > allowed {
                return Ok(keep(Settle::TooLong {
                    predicted_seconds: if predicted.is_finite() {
                        predicted
                    } else {
                        0.0
                    },
                    allowed_seconds: allowed,
                })
                .await?);
            }
        }
        let started = std::time::Instant::now();
        for (entry, ranked) in pair {
            let request = |resume| QualityRequest {
                model: ranked.path.clone(),
                quick: false,
                think: entry.think,
                resume,
                suite: None,
            };
            let full = match entry.full_run_id {
                Some(full) => full,
                None => {
                    let full = self.begin_quality_run(&request(None)).await?;
                    self.db().set_full_run(entry.id, full).await?;
                    full
                }
            };
            // Both idempotent, so a stop between any two of these steps resumes whole.
            self.mark_tie_break(full).await?;
            self.db().carry_answers(ranked.run_id, full).await?;
            match self.bench_quality(request(Some(full)), cancel).await {
                Ok(_) => {}
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => return Ok(keep(Settle::Failed { why: e.to_string() }).await?),
            }
        }
        Ok(keep(Settle::Measured {
            tests,
            seconds: started.elapsed().as_secs_f64(),
        })
        .await?)
    }

    /// Marks run `id` as a tie's full-suite run (it then neither recommends nor calibrates).
    async fn mark_tie_break(&self, id: i64) -> Result<()> {
        let mut config: RunConfig = self
            .db()
            .run_config(id)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(crate::history::HistoryError::RunNotFound(id))?;
        config.tie_break = true;
        self.db()
            .set_run_config(id, &serde_json::to_value(&config).expect("serializes"))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_takes_both_at_their_own_speed_and_never_starts_blind() {
        assert_eq!(settle_seconds(600.0, [Some(60.0), Some(30.0)]), 30.0);
        assert!(settle_seconds(600.0, [Some(60.0), None]).is_infinite());
        assert!(settle_seconds(600.0, [Some(0.0), Some(1.0)]).is_infinite());
    }

    #[test]
    fn the_same_bytes_under_two_names_are_the_same_and_one_byte_differs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.gguf");
        let b = dir.path().join("b.gguf");
        let c = dir.path().join("c.gguf");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&a, &bytes).unwrap();
        std::fs::write(&b, &bytes).unwrap();
        let mut other = bytes.clone();
        other[2_500_000] ^= 1;
        std::fs::write(&c, &other).unwrap();
        assert!(same_content(&a, &b).unwrap());
        assert!(same_content(&a, &a).unwrap());
        assert!(!same_content(&a, &c).unwrap());
        std::fs::write(&c, &bytes[..10]).unwrap();
        assert!(!same_content(&a, &c).unwrap());
    }

    #[test]
    fn each_way_a_tie_ends_is_said() {
        let too_long = sentence(
            &Settle::TooLong {
                predicted_seconds: 3.0 * 3600.0,
                allowed_seconds: 2.0 * 3600.0,
            },
            "A",
            "B",
        );
        assert_eq!(
            too_long,
            "They tied on the quick tests; settling it on the full suite would take both about 3 h, more than the 2 h a night allows it (Settings), so it stays a tie."
        );
        assert!(sentence(&Settle::SameContent, "A", "B")
            .starts_with("A and B are the same file's bytes"));
    }
}
