//! `kindling showdown`: find the best model for this machine — the candidates measured
//! one after another with the quality suite, as one job that resumes where it stopped.

use std::path::PathBuf;

use kindling_core::showdown::{Contender, ShowdownReport};
use kindling_core::{Cancel, Core, Result};

use crate::format;

#[derive(clap::Args)]
pub struct Args {
    /// The candidates: .gguf files or catalog ids (`gemma4-e4b:Q4_K_M`). Without any, the
    /// recommender's candidates for the goal.
    models: Vec<String>,
    /// The ~10-test quick suite instead of the whole one.
    #[arg(long)]
    quick: bool,
    /// What the model is for (conversation needs about 10 tokens/s).
    #[arg(long, value_enum, default_value = "conversational")]
    goal: crate::recommend::GoalArg,
    /// Continue the showdown that was stopped (the newest one not finished: stopped with
    /// Ctrl-C or in the app, or cut short by a quit, a crash or a closed Terminal).
    #[arg(long, conflicts_with = "models")]
    resume: bool,
    /// Show what removing the newest showdown's losers would do (every measured
    /// candidate's file but the winner's); nothing is removed without --apply.
    #[arg(long, conflicts_with_all = ["models", "resume"])]
    cleanup: bool,
    /// With --cleanup: remove them (Kindling's own downloads go to the Trash).
    #[arg(long, requires = "cleanup")]
    apply: bool,
    /// Print the ranking as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(
    core: &Core,
    args: Args,
    cancel: &Cancel,
    stopped_by: &std::sync::OnceLock<crate::StoppedBy>,
) -> Result<()> {
    if args.cleanup {
        return cleanup(core, args.apply).await;
    }
    let goal = args.goal.into();
    let waiting = if args.resume {
        core.db().continuable_showdown().await?
    } else {
        core.db().unfinished_showdown().await?
    };
    let id = match (args.resume, waiting) {
        (true, Some(id)) => id,
        (true, None) => {
            println!("No showdown is waiting to be continued.");
            return Ok(());
        }
        (false, waiting) => {
            if let (Some(w), false) = (waiting, args.json) {
                eprintln!("Note: showdown {w} was stopped before it finished. Continue it with: kindling showdown --resume");
            }
            let contenders = if args.models.is_empty() {
                core.showdown_proposal(goal, args.quick).await?.contenders
            } else {
                args.models
                    .iter()
                    .map(|m| contender(core, m))
                    .collect::<Result<Vec<_>>>()?
            };
            if contenders.is_empty() {
                println!("No model fits this machine for that goal; try --goal patient.");
                return Ok(());
            }
            if !args.json {
                eprintln!("Showdown of {} candidates:", contenders.len());
                for c in &contenders {
                    eprintln!(
                        "  {}  ({}{})",
                        c.label,
                        format::bytes(c.bytes),
                        if c.path.is_some() {
                            ", on disk"
                        } else {
                            ", to download"
                        }
                    );
                }
            }
            core.showdown_start(goal, args.quick, &contenders).await?
        }
    };
    let printer = crate::quality::progress_printer(core, args.json);
    let report = core.showdown_continue(id, cancel).await;
    printer.abort();
    let report = match report {
        Err(kindling_core::Error::Cancelled) => {
            // Ctrl-C is Stop, as in the app: it waits to be continued. A closed Terminal
            // or a shutdown is not the owner's choice: the app continues it by itself.
            if stopped_by.get() == Some(&crate::StoppedBy::Owner) {
                core.showdown_stopped_by_owner(id).await?;
                eprintln!(
                    "Stopped. Nothing measured or downloaded is lost, and it waits for you: continue with `kindling showdown --resume`, or with Continue in Kindling's Best model screen."
                );
            } else {
                eprintln!(
                    "Interrupted. Nothing measured or downloaded is lost: Kindling continues it by itself when it opens, or continue now with `kindling showdown --resume`."
                );
            }
            return Err(kindling_core::Error::Cancelled);
        }
        other => other?,
    };
    show(&report, args.json);
    Ok(())
}

/// A candidate named on the command line: a file, or a catalog id.
fn contender(core: &Core, m: &str) -> Result<Contender> {
    let path = PathBuf::from(m);
    if path.is_file() {
        let info = kindling_core::gguf::inspect(&path)?;
        let label = format!(
            "{} {}",
            info.name.clone().unwrap_or_else(|| m.to_string()),
            info.file_type.clone().unwrap_or_default()
        );
        return Ok(Contender::new(
            label.trim().to_string(),
            None,
            Some(path),
            info.file_size,
        ));
    }
    let catalog = core.catalog();
    let (f, v) = catalog
        .find(m)
        .ok_or_else(|| kindling_core::gguf::GgufError::NotFound { path: path.clone() })?;
    Ok(Contender::new(
        format!("{} {}", f.name, v.quant),
        Some(m.to_string()),
        None,
        v.bytes(),
    ))
}

fn show(r: &ShowdownReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).expect("serializes"));
        return;
    }
    println!();
    println!("Showdown {} — the morning report", r.showdown.id);
    println!(
        "{:<4} {:<40} {:>7} {:>9} {:>8} {:>9}  ON",
        "", "MODEL", "SCORE", "SCORE/GB", "SIZE", "TOKENS/S"
    );
    for (i, x) in r.ranked.iter().enumerate() {
        println!(
            "{:<4} {:<40} {:>6.0}% {:>9.1} {:>8} {:>9}  {}{}",
            i + 1,
            x.label.chars().take(40).collect::<String>(),
            x.score * 100.0,
            x.score_per_gb,
            format::bytes(x.bytes),
            x.gen_per_second.map_or("—".into(), |t| format!("{t:.1}")),
            x.backend.map_or("—", |b| b.as_str()),
            if x.meets_goal {
                ""
            } else {
                "  (too slow for the goal)"
            }
        );
    }
    for e in r.showdown.entries.iter().filter(|e| e.error.is_some()) {
        println!(
            "     {} — not measured: {}",
            e.label,
            e.error.as_deref().unwrap_or("")
        );
    }
    println!();
    println!("{}", r.verdict);
    if !r.losers.is_empty() {
        println!("See what removing the others' files would free with: kindling showdown --cleanup (nothing is removed until you add --apply).");
    }
}

/// The losers' cleanup of the newest showdown: the plan, or (`apply`) carried out.
async fn cleanup(core: &Core, apply: bool) -> Result<()> {
    let Some(id) = core.db().latest_showdown().await? else {
        println!("No showdown has been run yet: nothing to clean up.");
        return Ok(());
    };
    let plan = core.showdown_cleanup(id, apply).await?;
    for k in &plan.kept {
        println!("{k}");
    }
    if plan.removals.is_empty() {
        println!("Nothing of showdown {id}'s to remove.");
        return Ok(());
    }
    println!(
        "{} (showdown {id}'s losers, {}):",
        if apply { "Done" } else { "This would" },
        format::bytes(plan.bytes)
    );
    for r in &plan.removals {
        println!("  {}", r.what);
    }
    if !apply {
        println!("Nothing was removed. To do it: kindling showdown --cleanup --apply");
    }
    Ok(())
}
