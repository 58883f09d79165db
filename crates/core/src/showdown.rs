//! "Find the best model for this Mac": the overnight showdown. A few candidates from the
//! recommender (the best fit for the goal, other quants of its family, its nearest
//! neighbours), each downloaded when not already on disk, measured with the quality suite
//! (thinking on and off where the template toggles it), as one persistent job: every step
//! is stored as it happens (`history::showdowns`), so the job resumes where it stopped and
//! a finished test is never run twice. The report ranks what was measured by score per GB
//! among the candidates that meet the goal's speed floor. The CLI and the app run the same
//! job.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bench::quality::{QualityReport, QualityRequest};
use crate::history::{self, EntryStatus, NewEntry, StoredShowdown};
use crate::recommend::{Goal, CONVERSATIONAL_TPS};
use crate::store::PullRequest;
use crate::{Core, Error, Result};

/// How many candidates a proposal has at most.
pub const MAX_CANDIDATES: usize = 5;

/// A candidate as proposed, before the owner starts the showdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Contender {
    pub label: String,
    /// The catalog entry (`family:quant`), to download it.
    pub catalog_id: Option<String>,
    /// Where it already is on disk (Kindling's, Ollama's, the HF cache's, LM Studio's).
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub path: Option<PathBuf>,
    pub bytes: u64,
    /// Thinking on/off, for templates that toggle it.
    pub think: Option<bool>,
    /// Measuring time from this machine's measured (or predicted) speed; 0 when unknown.
    pub estimated_seconds: f64,
}

/// What starting a showdown would take.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Proposal {
    pub goal: Goal,
    pub contenders: Vec<Contender>,
    /// Other models that fit, which the owner may add.
    pub more: Vec<Contender>,
    /// Bytes to download (candidates not on disk).
    pub download_bytes: u64,
    /// Free space in Kindling's models folder.
    pub free_bytes: u64,
}

/// One measured candidate in the morning report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Ranked {
    pub label: String,
    pub run_id: i64,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub path: PathBuf,
    pub think: Option<bool>,
    pub score: f64,
    pub score_per_gb: f64,
    pub bytes: u64,
    pub gen_per_second: Option<f64>,
    /// Fast enough for the goal (conversation: 10 tokens/s or more).
    pub meets_goal: bool,
    /// `Vulkan` or `CPU`.
    pub backend: Option<String>,
    pub categories: Vec<crate::bench::quality::CategoryScore>,
}

/// The morning report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ShowdownReport {
    pub showdown: StoredShowdown,
    /// Best first: those meeting the goal by score per GB, then the rest.
    pub ranked: Vec<Ranked>,
    /// What to do, in one sentence.
    pub verdict: String,
    /// The files of the other candidates (each once; never the winner's): what a cleanup
    /// plan would offer to remove, after the owner's second click.
    #[cfg_attr(feature = "ts", ts(type = "Array<string>"))]
    pub losers: Vec<PathBuf>,
}

/// The losers' cleanup: what removing each loser's model would do, shown before anything
/// is removed (the owner's second click applies it).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LosersCleanup {
    pub removals: Vec<crate::store::inventory::Removal>,
    /// Disk space the removals give back.
    pub bytes: u64,
    /// Losers left alone, and why ("the menu-bar server uses it").
    pub kept: Vec<String>,
}

/// Tokens the suite asks for at most (its answers), for the duration estimate.
fn suite_tokens(quick: bool) -> f64 {
    crate::bench::suite::Suite::core()
        .select(quick)
        .iter()
        .map(|t| f64::from(t.max_tokens) * t.turns.len().max(1) as f64)
        .sum()
}

impl Core {
    /// Proposes the candidates for `goal`: the recommender's best that fit (different
    /// quants of the best family first, then its nearest neighbours), on disk where
    /// Kindling has them.
    pub async fn showdown_proposal(&self, goal: Goal, quick: bool) -> Result<Proposal> {
        let rec = self.recommend(goal).await?;
        let catalog = self.catalog();
        let fitting: Vec<&crate::recommend::Candidate> =
            rec.candidates.iter().filter(|c| c.meets(goal)).collect();
        let Some(best) = fitting.first() else {
            return Ok(Proposal {
                goal,
                contenders: vec![],
                more: vec![],
                download_bytes: 0,
                free_bytes: 0,
            });
        };
        let mut chosen: Vec<&crate::recommend::Candidate> = vec![best];
        chosen.extend(
            fitting
                .iter()
                .filter(|c| c.name == best.name && c.id != best.id)
                .take(2),
        );
        for c in &fitting {
            if chosen.len() >= MAX_CANDIDATES {
                break;
            }
            if !chosen.iter().any(|x| x.id == c.id) {
                chosen.push(c);
            }
        }
        let mut contenders = Vec::new();
        for c in &chosen {
            contenders.extend(self.contenders_of(c, &catalog, quick).await?);
        }
        let mut more = Vec::new();
        for c in fitting
            .iter()
            .filter(|c| !chosen.iter().any(|x| x.id == c.id))
        {
            more.extend(self.contenders_of(c, &catalog, quick).await?);
        }
        let listed: Vec<Contender> = contenders.iter().chain(&more).cloned().collect();
        more.extend(self.models_on_disk_not_in(&listed, &catalog).await?);
        let mut downloads: Vec<(&str, u64)> = contenders
            .iter()
            .filter(|c| c.path.is_none())
            .filter_map(|c| c.catalog_id.as_deref().map(|id| (id, c.bytes)))
            .collect();
        downloads.sort();
        downloads.dedup();
        Ok(Proposal {
            goal,
            download_bytes: downloads.iter().map(|d| d.1).sum(),
            free_bytes: crate::download::disk::available_bytes(&self.paths().models()).unwrap_or(0),
            contenders,
            more,
        })
    }

    /// The owner's models on disk that `listed` does not already name (an Ollama library
    /// model, a file from a folder): candidates to add by hand, used where they are. Their
    /// time is the listed ones' estimates scaled by size (generation reads the whole
    /// model per token, so time grows with it).
    async fn models_on_disk_not_in(
        &self,
        listed: &[Contender],
        catalog: &crate::catalog::Catalog,
    ) -> Result<Vec<Contender>> {
        let mut per_byte: Vec<f64> = listed
            .iter()
            .filter(|c| c.estimated_seconds > 0.0 && c.bytes > 0)
            .map(|c| c.estimated_seconds / c.bytes as f64)
            .collect();
        per_byte.sort_by(f64::total_cmp);
        let seconds_per_byte = per_byte.get(per_byte.len() / 2).copied().unwrap_or(0.0);
        let mut out: Vec<Contender> = Vec::new();
        for m in self.db().models().await? {
            let path = PathBuf::from(&m.path);
            let file = catalog.file_name_of(&path, m.sha256.as_deref());
            let known = listed.iter().chain(&out).any(|c| {
                c.path.as_deref() == Some(path.as_path())
                    || c.catalog_id
                        .as_deref()
                        .and_then(|id| catalog.find(id))
                        .is_some_and(|(_, v)| v.file.eq_ignore_ascii_case(&file))
            });
            if known || !path.is_file() {
                continue;
            }
            let Ok(info) = crate::gguf::inspect(&path) else {
                continue;
            };
            let name = info.name.clone().unwrap_or_else(|| file.clone());
            out.push(Contender {
                label: match &info.file_type {
                    Some(q) if !name.contains(q.as_str()) => format!("{name} {q}"),
                    _ => name,
                },
                catalog_id: None,
                bytes: info.file_size,
                path: Some(path),
                think: None,
                estimated_seconds: seconds_per_byte * info.file_size as f64,
            });
        }
        Ok(out)
    }

    /// A recommended model as showdown candidates: one, or thinking off and on for a
    /// template that toggles it.
    async fn contenders_of(
        &self,
        c: &crate::recommend::Candidate,
        catalog: &crate::catalog::Catalog,
        quick: bool,
    ) -> Result<Vec<Contender>> {
        let toggles = catalog
            .find(&c.id)
            .is_some_and(|(f, _)| f.thinking != "none");
        let path = self.installed_file(&c.file).await?;
        let tps = c.measured_tps.or(c.predicted_tps);
        let thinks: Vec<Option<bool>> = if toggles {
            vec![Some(false), Some(true)]
        } else {
            vec![None]
        };
        Ok(thinks
            .into_iter()
            .map(|think| Contender {
                label: match think {
                    Some(true) => format!("{} {} (thinking on)", c.name, c.quant),
                    Some(false) => format!("{} {} (thinking off)", c.name, c.quant),
                    None => format!("{} {}", c.name, c.quant),
                },
                catalog_id: catalog.find(&c.id).map(|_| c.id.clone()),
                path: path.clone(),
                bytes: (c.size_gb * 1e9) as u64,
                think,
                estimated_seconds: tps.map_or(0.0, |t| suite_tokens(quick) / t.max(0.1)),
            })
            .collect())
    }

    /// Stores a showdown over `contenders`; run it with [`Core::showdown_run`].
    pub async fn showdown_start(
        &self,
        goal: Goal,
        quick: bool,
        contenders: &[Contender],
    ) -> Result<i64> {
        let entries: Vec<NewEntry> = contenders
            .iter()
            .map(|c| NewEntry {
                label: c.label.clone(),
                catalog_id: c.catalog_id.clone(),
                model_path: c.path.as_ref().map(|p| p.display().to_string()),
                think: c.think,
            })
            .collect();
        Ok(self
            .db()
            .create_showdown(goal, quick, &entries, &history::now())
            .await?)
    }

    /// Runs (or resumes) showdown `id` to the end: each entry not done is downloaded if
    /// needed and measured; an interrupted measurement continues where it stopped. A
    /// candidate that cannot be had or measured is marked failed, with the reason, and the
    /// night goes on. Cancelling leaves the showdown to resume later.
    pub async fn showdown_run(&self, id: i64, cancel: &crate::Cancel) -> Result<ShowdownReport> {
        let sd = self.db().showdown(id).await?;
        let _awake = crate::awake::keep_awake("Kindling is finding the best model for this Mac");
        for entry in sd
            .entries
            .iter()
            .filter(|e| !matches!(e.status, EntryStatus::Done | EntryStatus::Failed))
        {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            // The file: on disk, or downloaded now (verified; resumed if partial).
            let path = match entry
                .model_path
                .as_deref()
                .filter(|p| Path::new(p).is_file())
            {
                Some(p) => PathBuf::from(p),
                None => {
                    let Some(catalog_id) = entry.catalog_id.as_deref() else {
                        self.fail_entry(
                            entry.id,
                            "its file is gone and it is not in Kindling's catalog",
                        )
                        .await?;
                        continue;
                    };
                    self.db()
                        .set_entry(entry.id, EntryStatus::Downloading, None, None, None)
                        .await?;
                    let control = crate::download::Control {
                        cancel: cancel.child_token(),
                        ..crate::download::Control::default()
                    };
                    match self
                        .pull(
                            &PullRequest::from_catalog(&self.catalog(), catalog_id)?,
                            &control,
                        )
                        .await
                    {
                        Ok(p) => p.path,
                        Err(e)
                            if e.code() == crate::ErrorCode::Cancelled || cancel.is_cancelled() =>
                        {
                            return Err(Error::Cancelled)
                        }
                        Err(e) => {
                            self.fail_entry(entry.id, &e.to_string()).await?;
                            continue;
                        }
                    }
                }
            };
            let path_s = path.display().to_string();
            self.db()
                .set_entry(entry.id, EntryStatus::Measuring, Some(&path_s), None, None)
                .await?;
            let resume = self
                .db()
                .resumable_quality_run(&path_s, entry.think, &sd.created_at)
                .await?;
            let measured = self
                .bench_quality(
                    QualityRequest {
                        model: path,
                        quick: sd.quick,
                        think: entry.think,
                        resume,
                        suite: None,
                    },
                    cancel,
                )
                .await;
            match measured {
                Ok(report) => {
                    self.db()
                        .set_entry(entry.id, EntryStatus::Done, None, Some(report.run_id), None)
                        .await?
                }
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => self.fail_entry(entry.id, &e.to_string()).await?,
            }
        }
        self.db()
            .finish_showdown(id, "completed", &history::now())
            .await?;
        self.showdown_report(id).await
    }

    /// The cleanup plan for showdown `id`'s losers (every measured candidate's file but the
    /// winner's, never the file the menu-bar server is set to use); with `apply`, carries
    /// it out and returns what was done.
    pub async fn showdown_cleanup(&self, id: i64, apply: bool) -> Result<LosersCleanup> {
        let report = self.showdown_report(id).await?;
        let served = self
            .settings()
            .server_model
            .map(|p| crate::cleanup::canonical(&p));
        let models = self.db().models().await?;
        let mut out = LosersCleanup {
            removals: Vec::new(),
            bytes: 0,
            kept: Vec::new(),
        };
        for loser in &report.losers {
            let name = loser.display();
            if served.as_ref() == Some(&crate::cleanup::canonical(loser)) {
                out.kept.push(format!(
                    "{name}: kept, the menu-bar server is set to use it"
                ));
                continue;
            }
            let Some(m) = models.iter().find(|m| Path::new(&m.path) == loser) else {
                out.kept
                    .push(format!("{name}: kept, Kindling does not manage that file"));
                continue;
            };
            let removal = self.removal(m.id).await?;
            if apply {
                self.apply_removal(&removal).await?;
            }
            out.bytes += removal.bytes;
            out.removals.push(removal);
        }
        Ok(out)
    }

    async fn fail_entry(&self, entry_id: i64, why: &str) -> Result<()> {
        Ok(self
            .db()
            .set_entry(entry_id, EntryStatus::Failed, None, None, Some(why))
            .await?)
    }

    /// The morning report of showdown `id` (so far, while it runs).
    pub async fn showdown_report(&self, id: i64) -> Result<ShowdownReport> {
        let showdown = self.db().showdown(id).await?;
        let mut ranked = Vec::new();
        for e in &showdown.entries {
            let Some(run_id) = e.run_id.filter(|_| e.status == EntryStatus::Done) else {
                continue;
            };
            let report: QualityReport = self.quality_report(run_id, None).await?;
            let backend = self.db().run_detail(run_id).await?.run.backend;
            let gen = report.gen_per_second;
            ranked.push(Ranked {
                label: e.label.clone(),
                run_id,
                path: report.config.model.clone(),
                think: e.think,
                score: report.score,
                score_per_gb: report.score_per_gb,
                bytes: report.model_bytes,
                gen_per_second: gen,
                meets_goal: showdown.goal.allows(gen),
                backend,
                categories: report.categories,
            });
        }
        rank(&mut ranked);
        let verdict = verdict(&ranked, showdown.goal);
        let winner = ranked
            .first()
            .filter(|r| r.meets_goal)
            .map(|r| r.path.clone());
        let mut losers: Vec<PathBuf> = ranked
            .iter()
            .map(|r| r.path.clone())
            .filter(|p| Some(p) != winner.as_ref())
            .collect();
        losers.sort();
        losers.dedup();
        Ok(ShowdownReport {
            showdown,
            ranked,
            verdict,
            losers,
        })
    }
}

/// Those meeting the goal first, by score per GB (scores within two points tie, as the
/// recommender counts them, and the smaller file wins); then the rest. Pure.
pub fn rank(ranked: &mut [Ranked]) {
    ranked.sort_by(|a, b| {
        b.meets_goal
            .cmp(&a.meets_goal)
            .then(b.score_per_gb.total_cmp(&a.score_per_gb))
    });
}

/// "Use Gemma 4 E4B Q4_K_M: it answered as well as Q8_0 and is 40% smaller." Pure.
pub fn verdict(ranked: &[Ranked], goal: Goal) -> String {
    let Some(best) = ranked.first() else {
        return "Nothing was measured yet.".into();
    };
    if !best.meets_goal {
        return format!(
            "No candidate reached {CONVERSATIONAL_TPS:.0} tokens/s here; for chat pick a smaller model, or choose the patient goal."
        );
    }
    let better_scored = ranked
        .iter()
        .skip(1)
        .filter(|r| r.meets_goal || goal == Goal::Patient)
        .max_by(|a, b| a.score.total_cmp(&b.score));
    match better_scored {
        Some(o) if o.score > best.score + 0.02 => format!(
            "Use {}: the best score per GB ({:.0}% in {:.1} GB); {} scored higher ({:.0}%) but is {:.0}% bigger.",
            best.label,
            best.score * 100.0,
            best.bytes as f64 / 1e9,
            o.label,
            o.score * 100.0,
            (o.bytes as f64 / best.bytes.max(1) as f64 - 1.0) * 100.0
        ),
        Some(o) if o.bytes > best.bytes => format!(
            "Use {}: it answered as well as {} and is {:.0}% smaller.",
            best.label,
            o.label,
            (1.0 - best.bytes as f64 / o.bytes.max(1) as f64) * 100.0
        ),
        _ => format!(
            "Use {}: it scored {:.0}%, the best score per GB of those measured.",
            best.label,
            best.score * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(label: &str, score: f64, gb: f64, tps: f64) -> Ranked {
        Ranked {
            label: label.into(),
            run_id: 1,
            path: PathBuf::from(format!("/m/{label}.gguf")),
            think: None,
            score,
            score_per_gb: score * 100.0 / gb,
            bytes: (gb * 1e9) as u64,
            gen_per_second: Some(tps),
            meets_goal: tps >= CONVERSATIONAL_TPS,
            backend: Some("CPU".into()),
            categories: vec![],
        }
    }

    #[test]
    fn the_smaller_quant_that_answers_as_well_wins_and_says_why() {
        // The ladder, as measured: Q2_K 5%, Q3_K_M 15%, Q4_K_M 14%, Q8_0 14%.
        let mut r = vec![
            ranked("tiny Q8_0", 0.14, 0.30, 30.0),
            ranked("tiny Q2_K", 0.05, 0.23, 35.0),
            ranked("tiny Q4_K_M", 0.14, 0.26, 32.0),
        ];
        rank(&mut r);
        let order: Vec<&str> = r.iter().map(|x| x.label.as_str()).collect();
        assert_eq!(order, ["tiny Q4_K_M", "tiny Q8_0", "tiny Q2_K"]);
        let v = verdict(&r, Goal::Conversational);
        assert_eq!(
            v,
            "Use tiny Q4_K_M: it answered as well as tiny Q8_0 and is 13% smaller."
        );
    }

    #[test]
    fn too_slow_for_chat_is_ranked_last_and_said() {
        let mut r = vec![
            ranked("big", 0.9, 18.0, 1.1),
            ranked("small", 0.6, 3.0, 37.0),
        ];
        rank(&mut r);
        assert_eq!(r[0].label, "small");
        let v = verdict(&r, Goal::Conversational);
        assert!(v.starts_with("Use small: it scored 60%"), "{v}");
        let mut slow = vec![ranked("big", 0.9, 18.0, 1.1)];
        rank(&mut slow);
        assert!(verdict(&slow, Goal::Conversational).starts_with("No candidate reached"));
        assert_eq!(verdict(&[], Goal::Patient), "Nothing was measured yet.");
    }
}
