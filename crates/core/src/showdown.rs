//! "Find the best model for this Mac": the overnight showdown. A few candidates from the
//! recommender (the best fit for the goal, other quants of its family, its nearest
//! neighbours), each downloaded when not already on disk, measured with the quality suite
//! (thinking on and off where the template toggles it), as one persistent job: every step
//! is stored as it happens (`history::showdowns`), so the job resumes where it stopped and
//! a finished test is never run twice. The report ranks what was measured by score per GB
//! among the candidates that meet the goal's speed floor. The CLI and the app run the same
//! job.

pub mod page;
pub mod tie;

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
    /// Disk to keep free beyond the file while it downloads (the download refuses to
    /// start without it); 0 when it is on disk.
    #[serde(default)]
    pub download_margin: u64,
}

impl Contender {
    /// A candidate on disk at `path`, or to download when `path` is `None`.
    pub fn new(
        label: String,
        catalog_id: Option<String>,
        path: Option<PathBuf>,
        bytes: u64,
    ) -> Self {
        Contender {
            download_margin: if path.is_none() {
                crate::download::resume::free_space_margin(bytes)
            } else {
                0
            },
            label,
            catalog_id,
            path,
            bytes,
            think: None,
            estimated_seconds: 0.0,
        }
    }
}

/// The free disk a showdown over `contenders` needs: its downloads run one after another,
/// and each needs its own margin on top of what the earlier ones already took. Pure.
pub fn disk_needed(contenders: &[Contender]) -> u64 {
    let mut seen: Vec<&str> = Vec::new();
    let mut taken = 0u64;
    let mut needed = 0u64;
    for c in contenders.iter().filter(|c| c.path.is_none()) {
        let Some(id) = c.catalog_id.as_deref() else {
            continue;
        };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        taken = taken.saturating_add(c.bytes);
        needed = needed.max(taken.saturating_add(c.download_margin));
    }
    needed
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
    /// Fast enough for the goal (conversation: 10 tokens/s or more), or measured while
    /// the machine was busy: a speed taken under load never rules a candidate out.
    pub meets_goal: bool,
    /// Cores other programs kept busy while its speed was measured, when they made the
    /// machine busy even after waiting for quiet.
    pub measured_busy: Option<f64>,
    /// `Vulkan` or `CPU`.
    pub backend: Option<crate::kinds::RanOn>,
    pub categories: Vec<crate::bench::quality::CategoryScore>,
    /// Each test's score, to compare candidates test by test.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub tests: Vec<crate::bench::paired::TestScore>,
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
    /// Whether the night picked a winner (the first of `ranked`): none when no candidate
    /// meets the goal or most could not be measured.
    pub decided: bool,
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
            let label = match &info.file_type {
                Some(q) if !name.contains(q.as_str()) => format!("{name} {q}"),
                _ => name,
            };
            out.push(Contender {
                estimated_seconds: seconds_per_byte * info.file_size as f64,
                ..Contender::new(label, None, Some(path), info.file_size)
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
                think,
                estimated_seconds: tps.map_or(0.0, |t| suite_tokens(quick) / t.max(0.1)),
                ..Contender::new(
                    match think {
                        Some(true) => format!("{} {} (thinking on)", c.name, c.quant),
                        Some(false) => format!("{} {} (thinking off)", c.name, c.quant),
                        None => format!("{} {}", c.name, c.quant),
                    },
                    catalog.find(&c.id).map(|_| c.id.clone()),
                    path.clone(),
                    (c.size_gb * 1e9) as u64,
                )
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
        let needed = disk_needed(contenders);
        if needed > 0 {
            let free =
                crate::download::disk::available_bytes(&self.paths().models()).unwrap_or(u64::MAX);
            if free < needed {
                return Err(crate::download::DownloadError::DiskFull {
                    file: "the showdown's downloads".into(),
                    needed,
                    free,
                }
                .into());
            }
        }
        let entries: Vec<NewEntry> = contenders
            .iter()
            .map(|c| NewEntry {
                label: c.label.clone(),
                catalog_id: c.catalog_id.clone(),
                // One form, resolved once: a relative path, a home or models folder
                // behind a symlink, or macOS's /var -> /private/var would otherwise name
                // the same file differently when the showdown resumes elsewhere.
                model_path: c.path.as_ref().map(|p| {
                    crate::cleanup::canonical(&std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                        .display()
                        .to_string()
                }),
                think: c.think,
            })
            .collect();
        Ok(self
            .db()
            .create_showdown(goal, quick, &entries, &history::now())
            .await?)
    }

    /// Runs (or resumes) showdown `id` to the end: each entry not done is downloaded if
    /// needed and measured; an interrupted measurement continues where it stopped (the
    /// entry keeps its run's id from the moment the run is created). A candidate that
    /// cannot be had or measured is marked failed, with the reason, and the night goes on.
    /// Cancelling leaves the showdown, and a partial download, to resume later. One
    /// process runs a showdown at a time: another Kindling's live claim is refused with
    /// `busy`.
    pub async fn showdown_run(&self, id: i64, cancel: &crate::Cancel) -> Result<ShowdownReport> {
        let me = crate::server::owners::ProcessId::current().ok_or_else(|| Error::System {
            what: "find its own process",
            source: std::io::Error::other("this process is not in the process table"),
        })?;
        if let Some(holder) = self.db().claim_showdown(id, me).await? {
            return Err(Error::Busy {
                what: format!(
                    "Another Kindling (process {}) is running this showdown now, and it goes on there. Follow it in that window or Terminal, or stop it there and continue it here.",
                    holder.pid
                ),
            });
        }
        let result = self.showdown_entries(id, cancel).await;
        if let Err(e) = self.db().release_showdown(id, me).await {
            tracing::warn!(error = %e, "could not give the showdown up");
        }
        result?;
        self.showdown_report(id).await
    }

    /// The owner stopped showdown `id` (Stop in the app, Ctrl-C in Terminal): what was
    /// measured is kept, and it waits to be continued — it does not resume by itself at
    /// the next launch, as one interrupted by a quit, a crash or a closed Terminal does.
    pub async fn showdown_stopped_by_owner(&self, id: i64) -> Result<()> {
        Ok(self
            .db()
            .finish_showdown(id, crate::kinds::ShowdownState::Cancelled, &history::now())
            .await?)
    }

    /// Continues showdown `id` (one the owner stopped, or one still running): its status
    /// goes back to running, then it runs as [`Core::showdown_run`] does.
    pub async fn showdown_continue(
        &self,
        id: i64,
        cancel: &crate::Cancel,
    ) -> Result<ShowdownReport> {
        if self.db().showdown(id).await?.status == crate::kinds::ShowdownState::Completed {
            return self.showdown_report(id).await;
        }
        self.db().reopen_showdown(id).await?;
        self.showdown_run(id, cancel).await
    }

    async fn showdown_entries(&self, id: i64, cancel: &crate::Cancel) -> Result<()> {
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
            let path = match self.entry_file(entry, cancel).await? {
                Ok(path) => path,
                Err(why) => {
                    self.fail_entry(entry.id, &why).await?;
                    continue;
                }
            };
            let path_s = path.display().to_string();
            let run_id = match entry.run_id {
                Some(run_id) => run_id,
                None => {
                    let begun = self
                        .begin_quality_run(&QualityRequest {
                            model: path.clone(),
                            quick: sd.quick,
                            think: entry.think,
                            resume: None,
                            suite: None,
                        })
                        .await;
                    match begun {
                        Ok(run_id) => run_id,
                        Err(e) => {
                            self.fail_entry(entry.id, &e.to_string()).await?;
                            continue;
                        }
                    }
                }
            };
            self.db()
                .set_entry(
                    entry.id,
                    EntryStatus::Measuring,
                    Some(&path_s),
                    Some(run_id),
                    None,
                )
                .await?;
            let measured = self
                .bench_quality(
                    QualityRequest {
                        model: path,
                        quick: sd.quick,
                        think: entry.think,
                        resume: Some(run_id),
                        suite: None,
                    },
                    cancel,
                )
                .await;
            match measured {
                Ok(_) => {
                    self.db()
                        .set_entry(entry.id, EntryStatus::Done, None, None, None)
                        .await?
                }
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => self.fail_entry(entry.id, &e.to_string()).await?,
            }
        }
        self.settle_tie(id, cancel).await?;
        self.db()
            .finish_showdown(id, crate::kinds::ShowdownState::Completed, &history::now())
            .await?;
        Ok(())
    }

    /// The entry's model file: on disk, or downloaded now (verified; resumed if partial).
    /// `Ok(Err(why))` fails this entry alone; a stop pauses the download, keeping what
    /// arrived for the resume.
    async fn entry_file(
        &self,
        entry: &history::ShowdownEntry,
        cancel: &crate::Cancel,
    ) -> Result<std::result::Result<PathBuf, String>> {
        if let Some(p) = entry
            .model_path
            .as_deref()
            .filter(|p| Path::new(p).is_file())
        {
            return Ok(Ok(PathBuf::from(p)));
        }
        let Some(catalog_id) = entry.catalog_id.as_deref() else {
            return Ok(Err(match &entry.model_path {
                Some(p) => format!("its file {p} is gone and it is not in Kindling's catalog"),
                None => "it has no file and is not in Kindling's catalog".into(),
            }));
        };
        let request = match PullRequest::from_catalog(&self.catalog(), catalog_id) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        self.db()
            .set_entry(entry.id, EntryStatus::Downloading, None, None, None)
            .await?;
        let control = crate::download::Control {
            pause: cancel.child_token(),
            ..crate::download::Control::default()
        };
        match self.pull(&request, &control).await {
            Ok(p) => Ok(Ok(crate::cleanup::canonical(&p.path))),
            Err(e)
                if matches!(
                    e.code(),
                    crate::ErrorCode::Cancelled | crate::ErrorCode::Paused
                ) || cancel.is_cancelled() =>
            {
                Err(Error::Cancelled)
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// The cleanup plan for showdown `id`'s losers (every measured candidate's file but the
    /// winner's); with `apply`, carries it out and returns what was done. Never planned:
    /// a file a live server serves (the app's or the CLI's), the menu-bar and second
    /// models' settings, the model the menu-bar server would pick by itself; refused
    /// while the showdown still runs, and empty when it picked no winner.
    pub async fn showdown_cleanup(&self, id: i64, apply: bool) -> Result<LosersCleanup> {
        let report = self.showdown_report(id).await?;
        if report.showdown.status == crate::kinds::ShowdownState::Running {
            return Err(Error::Busy {
                what: "The showdown is still running, so its losers are not known yet. Clean up when it has finished.".into(),
            });
        }
        let in_use = self.models_in_use().await?;
        let models = self.db().models().await?;
        let mut out = LosersCleanup {
            removals: Vec::new(),
            bytes: 0,
            kept: Vec::new(),
        };
        for loser in &report.losers {
            let name = loser.display();
            let canonical = crate::cleanup::canonical(loser);
            if let Some((_, why)) = in_use.iter().find(|(p, _)| *p == canonical) {
                out.kept.push(format!("{name}: kept, {why}"));
                continue;
            }
            let Some(m) = models
                .iter()
                .find(|m| crate::cleanup::canonical(Path::new(&m.path)) == canonical)
            else {
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

    /// The model files in use or chosen, each with why (canonical paths): what a cleanup
    /// must leave alone.
    async fn models_in_use(&self) -> Result<Vec<(PathBuf, &'static str)>> {
        let settings = self.settings();
        let mut out: Vec<(PathBuf, &'static str)> =
            crate::server::owners::models_in_use(&self.paths().servers())
                .into_iter()
                .map(|p| (p, "a running model server uses it"))
                .collect();
        if let Some(p) = &settings.server_model {
            out.push((p.clone(), "the menu-bar server is set to use it"));
        }
        if let Some(p) = &settings.second_model {
            out.push((p.clone(), "the second model server is set to use it"));
        }
        if settings.server_model.is_none() {
            if let Some(p) = self.preferred_model().await? {
                out.push((p, "the menu-bar server would serve it"));
            }
        }
        Ok(out
            .into_iter()
            .map(|(p, why)| (crate::cleanup::canonical(&p), why))
            .collect())
    }

    /// What settling showdown `sd`'s tie found: the pair judged again on the tests of
    /// their full-suite runs, once both finished.
    async fn settled(&self, sd: &StoredShowdown) -> Result<Option<tie::Settled>> {
        let Some(t) = &sd.tie else {
            return Ok(None);
        };
        let entry = |id: i64| sd.entries.iter().find(|e| e.id == id);
        let (Some(a), Some(b)) = (
            t.entries.first().and_then(|id| entry(*id)),
            t.entries.get(1).and_then(|id| entry(*id)),
        ) else {
            return Ok(None);
        };
        let (Some(run_a), Some(run_b)) = (a.run_id, b.run_id) else {
            return Ok(None);
        };
        let mut judged = None;
        if let (tie::Settle::Measured { .. }, Some(fa), Some(fb)) =
            (&t.settled, a.full_run_id, b.full_run_id)
        {
            let tests = |r: QualityReport| -> Vec<crate::bench::paired::TestScore> {
                r.tests.iter().map(Into::into).collect()
            };
            let ta = tests(self.quality_report(fa, None).await?);
            let tb = tests(self.quality_report(fb, None).await?);
            judged = crate::bench::paired::paired(&ta, &tb);
        }
        Ok(Some(tie::Settled {
            runs: (run_a, run_b),
            settle: t.settled.clone(),
            judged,
        }))
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
                meets_goal: showdown.goal.allows(gen) || report.measured_busy.is_some(),
                measured_busy: report.measured_busy,
                backend,
                categories: report.categories,
                tests: report.tests.iter().map(Into::into).collect(),
            });
        }
        rank(&mut ranked);
        let failed = showdown
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Failed)
            .count();
        let settled = self.settled(&showdown).await?;
        let verdict = verdict(&ranked, showdown.goal, failed, settled.as_ref());
        // No winner (none meets the goal, or most candidates could not be measured)
        // means no losers: nothing is offered for the Trash on a night that decided
        // nothing.
        let winner = winner_of(&ranked, failed).map(|r| r.path.clone());
        let mut losers: Vec<PathBuf> = ranked
            .iter()
            .map(|r| r.path.clone())
            .filter(|p| winner.as_ref().is_some_and(|w| w != p))
            .collect();
        losers.sort();
        losers.dedup();
        Ok(ShowdownReport {
            decided: winner.is_some(),
            showdown,
            ranked,
            verdict,
            losers,
        })
    }
}

/// Those meeting the goal first, by score per GB (so of two that answered alike the
/// smaller file wins); then the rest. Pure.
pub fn rank(ranked: &mut [Ranked]) {
    ranked.sort_by(|a, b| {
        b.meets_goal
            .cmp(&a.meets_goal)
            .then(b.score_per_gb.total_cmp(&a.score_per_gb))
    });
}

impl ShowdownReport {
    /// The candidate to use, if the night picked one.
    pub fn winner(&self) -> Option<&Ranked> {
        let failed = self
            .showdown
            .entries
            .iter()
            .filter(|e| e.status == EntryStatus::Failed)
            .count();
        winner_of(&self.ranked, failed)
    }
}

/// The first of `ranked` (ranked already) when it meets the goal and most candidates
/// were measured. Pure.
fn winner_of(ranked: &[Ranked], failed: usize) -> Option<&Ranked> {
    ranked
        .first()
        .filter(|r| r.meets_goal && !most_failed(ranked.len(), failed))
}

/// Whether more candidates failed than were measured: then the night picks no winner
/// from what was left (the survivors may be the broken ones). Pure.
pub fn most_failed(measured: usize, failed: usize) -> bool {
    failed > measured
}

/// "Use Gemma 4 E4B Q4_K_M: it answered as well as Q8_0 and is 40% smaller." `failed`
/// candidates could not be had or measured; `settled` is what settling a tie at the top
/// found (see [`tie`]). Pure.
pub fn verdict(
    ranked: &[Ranked],
    goal: Goal,
    failed: usize,
    settled: Option<&tie::Settled>,
) -> String {
    let total = ranked.len() + failed;
    if most_failed(ranked.len(), failed) {
        return format!(
            "Only {} of {total} candidates could be measured ({failed} failed), so Kindling picks no winner from what was left. See why each one failed below, fix that, and run the showdown again.",
            ranked.len()
        );
    }
    let mut sentence = verdict_of_measured(ranked, goal, settled);
    let busy: Vec<&str> = ranked
        .iter()
        .filter(|r| r.measured_busy.is_some())
        .map(|r| r.label.as_str())
        .collect();
    if !busy.is_empty() {
        sentence.push_str(&format!(
            " The speed of {} was measured while other programs kept the machine busy, so it did not rule anything out; run the showdown again on a quiet machine to be sure.",
            busy.join(", ")
        ));
    }
    if failed == 0 || ranked.is_empty() {
        return sentence;
    }
    format!("{sentence} ({failed} of {total} candidates could not be measured; see why below.)")
}

fn verdict_of_measured(ranked: &[Ranked], goal: Goal, settled: Option<&tie::Settled>) -> String {
    let Some(best) = ranked.first() else {
        return "Nothing was measured yet.".into();
    };
    if !best.meets_goal {
        return format!(
            "No candidate reached {CONVERSATIONAL_TPS:.0} tokens/s here; for chat pick a smaller model, or choose the patient goal."
        );
    }
    // The settling applies to this very pair only (a rescore may have changed the top).
    let settled = tie::rival(ranked, goal)
        .and_then(|(b, o)| settled.filter(|s| s.runs == (b.run_id, o.run_id)));
    let judged = tie::rival(ranked, goal).map(|(_, o)| {
        let j = settled
            .and_then(|s| s.judged.clone())
            .unwrap_or_else(|| judge(best, o));
        (o, j)
    });
    let main = match judged {
        Some((o, j)) if j.better() == Some(false) => format!(
            "Use {}: the best score per GB ({:.0}% in {:.1} GB); {} but is {:.0}% bigger.",
            best.label,
            best.score * 100.0,
            best.bytes as f64 / 1e9,
            j.sentence(&best.label, &o.label)
                .replacen(&format!(" than {}", best.label), "", 1),
            (o.bytes as f64 / best.bytes.max(1) as f64 - 1.0) * 100.0
        ),
        Some((o, j)) if j.better().is_none() && o.bytes > best.bytes => format!(
            "Use {}: it answered as well as {} ({}) and is {:.0}% smaller.",
            best.label,
            o.label,
            j.tie_clause(),
            (1.0 - best.bytes as f64 / o.bytes.max(1) as f64) * 100.0
        ),
        // Judged test by test (not from totals alone): say how, whatever the sizes.
        Some((o, j)) if !best.tests.is_empty() || settled.is_some() => match j.better() {
            None => format!(
                "Use {}: it answered as well as {} ({}), with the better score per GB.",
                best.label,
                o.label,
                j.tie_clause()
            ),
            _ => format!(
                "Use {}: {}, with the better score per GB.",
                best.label,
                j.sentence(&best.label, &o.label)
                    .replacen(&best.label, "it", 1)
            ),
        },
        _ => format!(
            "Use {}: it scored {:.0}%, the best score per GB of those measured.",
            best.label,
            best.score * 100.0
        ),
    };
    match (settled, tie::rival(ranked, goal)) {
        (Some(s), Some((_, o))) => {
            format!("{main} {}", tie::sentence(&s.settle, &best.label, &o.label))
        }
        _ => main,
    }
}

/// Whether `a` and `b` answered alike: test by test when both runs' tests are known,
/// else from their totals. Pure.
pub fn judge(a: &Ranked, b: &Ranked) -> crate::bench::paired::Judgement {
    crate::bench::paired::paired(&a.tests, &b.tests).unwrap_or_else(|| {
        let n = a.tests.len().max(b.tests.len());
        crate::bench::paired::from_totals(a.score, b.score, u32::try_from(n).unwrap_or(u32::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::paired::TestScore;

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
            measured_busy: None,
            backend: Some(crate::kinds::RanOn::Cpu),
            categories: vec![],
            tests: vec![],
        }
    }

    /// A candidate measured with recorded per-test scores (its score as the report
    /// computes it: the mean of the category means).
    fn measured(label: &str, tests: Vec<TestScore>, gb: f64) -> Ranked {
        let mut cats: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
        for t in &tests {
            cats.entry(&t.category).or_default().push(t.score);
        }
        let score = cats
            .values()
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
            .sum::<f64>()
            / cats.len() as f64;
        Ranked {
            tests,
            ..ranked(label, score, gb, 30.0)
        }
    }

    fn recorded(json: &str) -> Vec<TestScore> {
        serde_json::from_str(json).unwrap()
    }

    /// The bigger model's 8 points came from one test of ten; the fixed two-point margin
    /// called it a finding ("big scored higher (14%) but is 200% bigger").
    #[test]
    fn a_gap_the_tests_cannot_tell_is_called_a_tie_and_a_real_one_is_not() {
        let small = measured(
            "small",
            recorded(include_str!(
                "../tests/fixtures/scores/sample-quick-gemma.json"
            )),
            0.1,
        );
        let chatml = recorded(include_str!(
            "../tests/fixtures/scores/sample-quick-chatml.json"
        ));
        let mut r = vec![measured("big", chatml.clone(), 0.3), small.clone()];
        rank(&mut r);
        assert_eq!(r[0].label, "small");
        assert_eq!(
            verdict(&r, Goal::Conversational, 0, None),
            "Use small: it answered as well as big (difference 8 points, within what 10 tests can tell) and is 67% smaller."
        );
        let perfect = chatml
            .into_iter()
            .map(|t| TestScore { score: 1.0, ..t })
            .collect();
        let mut r = vec![measured("huge", perfect, 3.0), small];
        rank(&mut r);
        assert_eq!(
            verdict(&r, Goal::Conversational, 0, None),
            "Use small: the best score per GB (5% in 0.1 GB); huge answered better (95 points, 99% sure) but is 2900% bigger."
        );
    }

    /// Ten quick tests called the pair alike; the full suite (here: the bigger one
    /// answering every test right) decides, and the verdict says how it was reached. A
    /// settling that belongs to another pair (the top changed on a rescore) is not used.
    #[test]
    fn a_settled_tie_is_judged_on_the_full_suite_and_says_so() {
        let quick_small = recorded(include_str!(
            "../tests/fixtures/scores/sample-quick-gemma.json"
        ));
        let chatml = recorded(include_str!(
            "../tests/fixtures/scores/sample-quick-chatml.json"
        ));
        let small = Ranked {
            run_id: 1,
            ..measured("small", quick_small.clone(), 0.1)
        };
        let big = Ranked {
            run_id: 2,
            ..measured("big", chatml.clone(), 0.3)
        };
        let mut r = vec![big, small];
        rank(&mut r);
        let perfect: Vec<TestScore> = chatml
            .into_iter()
            .map(|t| TestScore { score: 1.0, ..t })
            .collect();
        let settled = tie::Settled {
            runs: (1, 2),
            settle: tie::Settle::Measured {
                tests: 38,
                seconds: 150.0,
            },
            judged: crate::bench::paired::paired(&quick_small, &perfect),
        };
        assert_eq!(
            verdict(&r, Goal::Conversational, 0, Some(&settled)),
            "Use small: the best score per GB (5% in 0.1 GB); big answered better (95 points, 99% sure) but is 200% bigger. small and big tied on the quick tests, so both answered the full suite (38 tests; 3 min more) and were judged on it."
        );
        let elsewhere = tie::Settled {
            runs: (7, 8),
            ..settled
        };
        assert!(verdict(&r, Goal::Conversational, 0, Some(&elsewhere))
            .starts_with("Use small: it answered as well as big"));
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
        let v = verdict(&r, Goal::Conversational, 0, None);
        assert_eq!(
            v,
            "Use tiny Q4_K_M: it answered as well as tiny Q8_0 (difference 0 points, within what 1 test can tell) and is 13% smaller."
        );
    }

    /// A night where three of four candidates failed recommended the broken Q2_K, the only
    /// one measured ("Use Gemma 3 270m Q2_K: it scored 5%").
    #[test]
    fn a_night_where_most_candidates_failed_picks_no_winner() {
        let r = vec![ranked("tiny Q2_K", 0.05, 0.23, 35.0)];
        let v = verdict(&r, Goal::Conversational, 3, None);
        assert!(
            v.starts_with("Only 1 of 4 candidates could be measured (3 failed)")
                && !v.contains("Use "),
            "{v}"
        );
        assert!(most_failed(1, 3) && !most_failed(2, 2) && !most_failed(3, 0));
        let two = vec![
            ranked("tiny Q4_K_M", 0.14, 0.26, 32.0),
            ranked("tiny Q2_K", 0.05, 0.23, 35.0),
        ];
        let v = verdict(&two, Goal::Conversational, 1, None);
        assert!(
            v.starts_with("Use tiny Q4_K_M")
                && v.ends_with("(1 of 3 candidates could not be measured; see why below.)"),
            "{v}"
        );
    }

    /// The plan compared the downloads' sum with the free disk, but each download also
    /// keeps a margin free (2%, at least 100 MB) and refuses to start without it.
    #[test]
    fn the_disk_a_showdown_needs_counts_each_downloads_margin() {
        let get =
            |id: &str, gb: f64| Contender::new(id.into(), Some(id.into()), None, (gb * 1e9) as u64);
        let on_disk = Contender::new("here".into(), None, Some("/m/a.gguf".into()), 9_000_000_000);
        assert_eq!(disk_needed(std::slice::from_ref(&on_disk)), 0);
        let q4 = get("f:Q4", 5.0);
        let q8 = get("f:Q8", 9.0);
        let mut thinking = q4.clone();
        thinking.think = Some(true);
        // 5 + 9 GB downloaded, and the second keeps 180 MB (2% of 9 GB) free on top.
        assert_eq!(
            disk_needed(&[q4.clone(), thinking, on_disk, q8.clone()]),
            14_000_000_000 + 180_000_000
        );
        // A small file still keeps 100 MB.
        assert_eq!(disk_needed(&[get("tiny", 0.25)]), 350_000_000);
    }

    /// Q3_K_M and Q4_K_M measured at 9.2 and 6.6 tokens/s while another process kept
    /// both cores busy (this machine runs them at ~66) were ruled out, and the night
    /// recommended the 8% Q8_0.
    #[test]
    fn a_speed_measured_under_load_rules_nothing_out_and_is_named() {
        let busy = |label: &str, score: f64, gb: f64, tps: f64| Ranked {
            meets_goal: true,
            measured_busy: Some(1.9),
            ..ranked(label, score, gb, tps)
        };
        let mut r = vec![
            ranked("tiny Q8_0", 0.08, 0.30, 30.0),
            busy("tiny Q4_K_M", 0.135, 0.26, 6.6),
        ];
        rank(&mut r);
        assert_eq!(r[0].label, "tiny Q4_K_M");
        let v = verdict(&r, Goal::Conversational, 0, None);
        assert!(v.starts_with("Use tiny Q4_K_M"), "{v}");
        assert!(
            v.contains(
                "The speed of tiny Q4_K_M was measured while other programs kept the machine busy"
            ),
            "{v}"
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
        let v = verdict(&r, Goal::Conversational, 0, None);
        assert!(v.starts_with("Use small: it scored 60%"), "{v}");
        let mut slow = vec![ranked("big", 0.9, 18.0, 1.1)];
        rank(&mut slow);
        assert!(verdict(&slow, Goal::Conversational, 0, None).starts_with("No candidate reached"));
        assert_eq!(
            verdict(&[], Goal::Patient, 0, None),
            "Nothing was measured yet."
        );
    }
}
