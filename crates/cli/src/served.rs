//! `kindling usage` (what the front door served) and `kindling bench-front` (what the
//! door costs).

use std::path::PathBuf;

use kindling_core::front::overhead;
use kindling_core::{Cancel, Core, Result};

#[derive(clap::Args)]
pub struct UsageArgs {
    /// How many days (that had any use) to show.
    #[arg(long, value_name = "N", default_value_t = 7)]
    days: u32,
    #[arg(long)]
    pub json: bool,
}

pub async fn usage(core: &Core, args: UsageArgs) -> Result<()> {
    let days = core.db().served_days(args.days).await?;
    let today = kindling_core::front::today();
    let faults = core.db().served_faults(&today).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"days": days, "went_wrong_today": faults})
        );
        return Ok(());
    }
    if days.is_empty() {
        println!("Nothing has been served yet. Start a model with `kindling serve`, or from the menu bar.");
        return Ok(());
    }
    let width = days.iter().map(|d| d.model.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<10}  {:<width$}  {:>8}  {:>10}  {:>10}  {:>11}  {:>10}",
        "day", "model", "requests", "prompt", "answer", "first token", "went wrong"
    );
    for d in &days {
        println!(
            "{:<10}  {:<width$}  {:>8}  {:>10}  {:>10}  {:>11}  {:>10}",
            d.day,
            d.model,
            d.requests,
            d.prompt_tokens,
            d.completion_tokens,
            d.mean_first_piece_ms
                .map(|ms| format!("{ms:.0} ms"))
                .unwrap_or_else(|| "–".into()),
            d.went_wrong
        );
    }
    println!(
        "(prompt and answer in tokens; first token: the mean wait for an answer's first word)"
    );
    match faults.len() {
        0 => {}
        n => {
            println!(
                "\n{n} answer{} went wrong today:",
                if n == 1 { "" } else { "s" }
            );
            for f in &faults {
                println!(
                    "  {}  {}: {} ({}){}",
                    f.at.get(11..19).unwrap_or(&f.at),
                    f.model,
                    f.kind.replace('_', " "),
                    f.detail,
                    if f.ended { ", ended" } else { "" }
                );
            }
            println!("The evidence of each is kept by the Kindling that served it while it runs: save it from the app's Server screen, or start `kindling serve --evidence FOLDER` to have each one written there.");
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchFrontArgs {
    /// The model to serve (default: your first installed model, or the sample model).
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Answers asked each way (the medians of these are compared).
    #[arg(long, value_name = "N", default_value_t = 5)]
    rounds: usize,
    /// Tokens per answer (longer answers make the speed figure steadier).
    #[arg(long, value_name = "N", default_value_t = 256)]
    tokens: u32,
    #[arg(long)]
    pub json: bool,
}

/// The targets the door is held to (issue: one front door).
const MAX_ADDED_FIRST_TOKEN_MS: f64 = 2.0;
const MIN_SPEED_RATIO: f64 = 0.99;

pub async fn bench_front(core: &Core, args: BenchFrontArgs, cancel: &Cancel) -> Result<()> {
    let model = crate::pick_model(core, args.model)?;
    eprintln!(
        "Serving {} and asking it {} times straight and {} times through Kindling's door, in turns …",
        model.display(),
        args.rounds,
        args.rounds
    );
    let o = overhead::measure(core, &model, args.rounds.max(1), args.tokens, cancel).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "figures": o,
                "added_first_piece_ms": o.added_first_piece_ms(),
                "speed_ratio": o.speed_ratio(),
            })
        );
        return Ok(());
    }
    let med =
        |v: &[overhead::Sample], f: fn(&overhead::Sample) -> f64| overhead::median(v.iter().map(f));
    let added = o.added_first_piece_ms();
    let ratio = o.speed_ratio();
    println!(
        "{} — medians of {} answers each way:",
        o.model,
        o.straight.len()
    );
    println!("                 straight   through the door");
    println!(
        "first token   {:>9.2} ms  {:>9.2} ms   {:+.2} ms (target at most +{MAX_ADDED_FIRST_TOKEN_MS} ms): {}",
        med(&o.straight, |s| s.first_piece_ms),
        med(&o.through, |s| s.first_piece_ms),
        added,
        if added <= MAX_ADDED_FIRST_TOKEN_MS { "met" } else { "NOT met" }
    );
    println!(
        "generation    {:>8.1} t/s  {:>8.1} t/s   ratio {ratio:.3} (target at least {MIN_SPEED_RATIO}): {}",
        med(&o.straight, |s| s.tokens_per_second),
        med(&o.through, |s| s.tokens_per_second),
        if ratio >= MIN_SPEED_RATIO { "met" } else { "NOT met" }
    );
    Ok(())
}
