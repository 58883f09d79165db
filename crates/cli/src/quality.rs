//! `kindling bench --quality`, `--resume`, `--queue`, and `kindling rescore`.

use std::path::{Path, PathBuf};

use kindling_core::bench::quality::{QualityReport, QualityRequest};
use kindling_core::events::{BenchPhase, Event};
use kindling_core::{Cancel, Core, Result};

use crate::format;

/// Prints benchmark progress to stderr (nothing when `quiet`, e.g. with --json).
pub fn progress_printer(core: &Core, quiet: bool) -> tokio::task::JoinHandle<()> {
    let mut events = core.events().subscribe();
    tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if let Event::BenchProgress {
                phase,
                step,
                total,
                message,
                ..
            } = ev
            {
                if quiet || phase == BenchPhase::Done {
                    continue;
                }
                if total > 1 {
                    eprintln!("  [{step}/{total}] {message}");
                } else {
                    eprintln!("  {message}…");
                }
            }
        }
    })
}

pub async fn run(
    core: &Core,
    model: PathBuf,
    quick: bool,
    think: Option<bool>,
    resume: Option<i64>,
    json: bool,
    cancel: &Cancel,
) -> Result<()> {
    if resume.is_none() && !json {
        if let Some(r) = core.db().list_runs(20).await?.into_iter().find(|r| {
            r.kind == kindling_core::bench::RunKind::Quality
                && r.status == kindling_core::history::RunStatus::Interrupted
        }) {
            eprintln!("Note: quality run {} was interrupted. Continue it with: kindling bench --quality --resume {}", r.id, r.id);
        }
    }
    if !json {
        eprintln!("Measuring answer quality{} — keep Kindling open; you can stop with Ctrl-C and resume later.", if quick { " (quick)" } else { "" });
    }
    let printer = progress_printer(core, json);
    let _awake = kindling_core::awake::keep_awake("Kindling is measuring a model");
    let report = core
        .bench_quality(
            QualityRequest {
                model,
                quick,
                think,
                resume,
                suite: None,
            },
            cancel,
        )
        .await;
    printer.abort();
    let report = report?;
    show(&report, json);
    Ok(())
}

/// The report as JSON or in plain words.
fn show(report: &QualityReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("serializes")
        );
    } else {
        print_report(report);
    }
}

pub fn print_report(r: &QualityReport) {
    println!();
    println!(
        "Kindling quality benchmark — run {} ({} suite v{}{})",
        r.run_id,
        r.config.suite_id,
        r.config.suite_version,
        if r.config.quick { ", quick" } else { "" }
    );
    format::row(
        "Model",
        &format!(
            "{} ({})",
            r.config.model.display(),
            format::bytes(r.model_bytes)
        ),
    );
    println!();
    for c in &r.categories {
        format::row(
            &c.category.replace('_', " "),
            &format!("{:>5.1}%  ({} tests)", c.score * 100.0, c.tests),
        );
    }
    if let (Some(tg), Some(pp)) = (r.gen_per_second, r.prompt_per_second) {
        format::row(
            "performance",
            &format!("{tg:.1} tokens/s generating, {pp:.0} tokens/s reading"),
        );
    }
    println!();
    format::row("Score", &format!("{:.1}%", r.score * 100.0));
    format::row(
        "Score per GB",
        &format!("{:.1} (score % ÷ file size in GB)", r.score_per_gb),
    );
    if let Some(others) = r.measured_busy {
        format::row(
            "Busy machine",
            &kindling_core::bench::quiet::busy_sentence(others),
        );
    }
    let c = &r.counts;
    if c.degenerate + c.timeout + c.crash + c.error > 0 {
        format::row(
            "Problems",
            &format!(
                "{} garbage answers stopped early, {} timeouts, {} crashes, {} errors",
                c.degenerate, c.timeout, c.crash, c.error
            ),
        );
    }
    println!();
    println!(
        "Saved as run {}. Rescore it after a grader update with: kindling rescore {}",
        r.run_id, r.run_id
    );
}

pub async fn rescore(core: &Core, run: i64, json: bool) -> Result<()> {
    let report = core.rescore(run, None).await?;
    show(&report, json);
    Ok(())
}

#[derive(serde::Deserialize)]
struct Queue {
    job: Vec<Job>,
}

#[derive(serde::Deserialize)]
struct Job {
    model: PathBuf,
    #[serde(default)]
    quick: bool,
    think: Option<bool>,
}

pub async fn run_queue(core: &Core, file: &Path, json: bool, cancel: &Cancel) -> Result<()> {
    let text = std::fs::read_to_string(file).map_err(|source| kindling_core::Error::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let queue: Queue = toml::from_str(&text).map_err(|e| kindling_core::Error::QueueInvalid {
        path: file.to_path_buf(),
        detail: e.to_string(),
    })?;
    let awake = kindling_core::awake::keep_awake("Kindling is running a benchmark queue");
    if !json && !awake.active() {
        eprintln!(
            "Note: Kindling could not keep this computer awake; make sure it does not sleep."
        );
    }
    let mut done = Vec::new();
    for (i, job) in queue.job.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        if !json {
            eprintln!(
                "Job {} of {}: {}",
                i + 1,
                queue.job.len(),
                job.model.display()
            );
        }
        let printer = progress_printer(core, json);
        let r = core
            .bench_quality(
                QualityRequest {
                    model: job.model.clone(),
                    quick: job.quick,
                    think: job.think,
                    resume: None,
                    suite: None,
                },
                cancel,
            )
            .await;
        printer.abort();
        done.push((job.model.clone(), r.map_err(|e| e.to_string())));
    }
    if json {
        let v: Vec<_> = done
            .iter()
            .map(|(m, r)| match r {
                Ok(rep) => serde_json::json!({"model": m, "report": rep}),
                Err(e) => serde_json::json!({"model": m, "error": e}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        return Ok(());
    }
    println!(
        "Queue finished: {} of {} jobs",
        done.iter().filter(|d| d.1.is_ok()).count(),
        queue.job.len()
    );
    for (m, r) in &done {
        match r {
            Ok(rep) => println!(
                "  run {:>4}  {:>5.1}%  {:>6.1}/GB  {}",
                rep.run_id,
                rep.score * 100.0,
                rep.score_per_gb,
                m.display()
            ),
            Err(e) => println!("  failed          {}: {e}", m.display()),
        }
    }
    Ok(())
}
