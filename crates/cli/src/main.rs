//! `kindling`: benchmark this machine, serve a model, and read the history — from a
//! terminal. Every command is a thin layer over kindling-core; this crate only parses
//! arguments, shows progress, and prints.

mod bench;
mod cleanup;
mod detect;
mod format;
mod history;
mod models;
mod on_ask;
mod peers;
mod pooled;
mod quality;
mod recommend;
mod serve;
mod served;
mod showdown;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kindling_core::{Cancel, Core, Paths};

#[derive(Parser)]
#[command(
    name = "kindling",
    version,
    about = "Run AI models on the computer you already have.",
    long_about = "Kindling finds out what this computer can do, measures how fast models run on it, \
and serves them to other apps on this computer.\n\nStart with `kindling bench`: it measures this \
machine on a small sample model and tells you, in plain words, how fast it is."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what this computer has: processor, memory, graphics, and the model runtime.
    Detect {
        /// Print the details as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Measure how fast a model runs here, and save the result in your history.
    Bench(bench::Args),
    /// Run a model as a local server that apps can talk to (OpenAI-compatible). Ctrl-C stops it.
    Serve(serve::Args),
    /// What the served models answered: requests and tokens per model per day, and the
    /// answers that went wrong today.
    Usage(served::UsageArgs),
    /// Measure what Kindling's front door costs an app: the same streamed answer asked
    /// straight of the model server and through the door, side by side.
    BenchFront(served::BenchFrontArgs),
    /// List the benchmarks you have run, newest first.
    History(history::Args),
    /// Grade a quality run's stored answers again with the current graders (no model needed).
    Rescore {
        run: i64,
        #[arg(long)]
        json: bool,
    },
    /// What should I run here? Ranks the catalog for this machine: what fits, how fast,
    /// and the best quality (measured here when it has been).
    Recommend {
        /// What the model is for.
        #[arg(long, value_enum, default_value = "conversational")]
        goal: recommend::GoalArg,
        /// Show every candidate, not only the first twelve.
        #[arg(long)]
        all: bool,
        /// Measure the top N installed candidates (quick quality run each), so the ranking
        /// rests on this machine's own results.
        #[arg(long, value_name = "N", conflicts_with = "machine")]
        measure: Option<usize>,
        /// Plan for another Mac instead of this one: a profile written there by
        /// `kindling detect --json`, or one Kindling ships (imac-2017,
        /// macbook-air-m1-8gb, mac-mini-m4-pro-24gb).
        #[arg(long, value_name = "FILE")]
        machine: Option<String>,
        /// Plan for this Mac (or --machine) together with another one, as a profile like
        /// --machine takes: what the two can run that neither runs fast alone.
        #[arg(long, value_name = "FILE", conflicts_with = "measure")]
        with: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Find the fastest GPU layer setting for a model on this machine.
    Tune {
        /// The model file (default: your first installed model, or the sample model).
        model: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Find the best model for this machine: download the candidates (or use them where
    /// they are), measure each with the quality suite, and rank them by score per GB. One
    /// job that resumes where it stopped.
    Showdown(showdown::Args),
    /// Get, list and remove models.
    Models(models::Args),
    /// Pair this Mac with another in the house: show a code here, or type the code the
    /// other Mac shows. Paired Macs can lend each other memory for a model too big for one.
    Pair(peers::PairArgs),
    /// The Macs this one paired with: reachable or not, and what each lends.
    Peers {
        #[arg(long)]
        json: bool,
        /// This Mac's name as the other Macs show it (default: the computer's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Forget a paired Mac: neither can reach the other any more.
    Unpair { name: String },
    /// Lend this Mac's memory to the Macs it paired with, for models too big for them.
    /// Ctrl-C stops.
    Share(peers::ShareArgs),
    /// Find disk space taken by leftover model files (unused Ollama data, unfinished
    /// downloads) and reclaim it. Shows a plan first; nothing is removed until you apply it.
    Cleanup(cleanup::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KINDLING_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let json = match &cli.command {
        Command::Detect { json } => *json,
        Command::Bench(a) => a.json,
        Command::Serve(_) => false,
        Command::Usage(a) => a.json,
        Command::BenchFront(a) => a.json,
        Command::History(a) => a.json(),
        Command::Models(a) => a.json(),
        Command::Rescore { json, .. } => *json,
        Command::Recommend { json, .. } | Command::Tune { json, .. } => *json,
        Command::Cleanup(a) => a.json,
        Command::Showdown(a) => a.json,
        Command::Peers { json, .. } => *json,
        Command::Pair(_) | Command::Unpair { .. } | Command::Share(_) => false,
    };
    let core = match Core::open(Paths::from_env()).await {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => return fail(&e, json),
    };
    let cancel = Cancel::new();
    let stopped_by = spawn_stop_on_signal(cancel.clone());
    let result = match cli.command {
        Command::Detect { json } => detect::run(&core, json).await,
        Command::Bench(args) => bench::run(&core, args, &cancel).await,
        Command::Serve(args) => serve::run(&core, args, &cancel).await,
        Command::Usage(args) => served::usage(&core, args).await,
        Command::BenchFront(args) => served::bench_front(&core, args, &cancel).await,
        Command::History(args) => history::run(&core, args).await,
        Command::Models(args) => models::run(&core, args, &cancel).await,
        Command::Rescore { run, json } => quality::rescore(&core, run, json).await,
        Command::Recommend {
            machine,
            with: Some(with),
            json,
            ..
        } => recommend::pair(&core, machine, &with, json).await,
        Command::Recommend {
            goal,
            all,
            measure,
            machine,
            with: None,
            json,
        } => {
            let opts = recommend::Options {
                goal,
                json,
                all,
                measure,
                machine,
            };
            recommend::recommend(&core, opts, &cancel).await
        }
        Command::Tune { model, json } => recommend::tune(&core, model, json, &cancel).await,
        Command::Cleanup(args) => cleanup::run(&core, args).await,
        Command::Showdown(args) => showdown::run(&core, args, &cancel, &stopped_by).await,
        Command::Pair(args) => peers::pair(&core, args, &cancel).await,
        Command::Peers { json, name } => peers::list(&core, json, name).await,
        Command::Unpair { name } => peers::unpair(&core, &name).await,
        Command::Share(args) => peers::share(&core, args, &cancel).await,
    };
    // Whatever path the command took out, no server it started outlives it.
    kindling_core::server::owners::stop_own(&core.paths().servers());
    core.db().close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, json),
    }
}

/// How the work was stopped, once it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    /// Ctrl-C: the owner asked (as Stop in the app).
    Owner,
    /// A closed Terminal (SIGHUP) or the system (SIGTERM): like Quit in the app.
    Session,
}

/// Ctrl-C (and SIGTERM, SIGHUP) cancel the work in progress, which then stops the server and
/// records the run as interrupted; the cell says which. A second Ctrl-C is left to the
/// default: exit now.
fn spawn_stop_on_signal(cancel: Cancel) -> std::sync::Arc<std::sync::OnceLock<StoppedBy>> {
    let stopped_by = std::sync::Arc::new(std::sync::OnceLock::new());
    let cell = stopped_by.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("signal handler installs");
            // A closed Terminal sends SIGHUP: stop as for Ctrl-C, so the servers go too
            // (macOS has no pdeathsig to take them down with Kindling).
            let mut hangup = signal(SignalKind::hangup()).expect("signal handler installs");
            let by = tokio::select! {
                _ = tokio::signal::ctrl_c() => StoppedBy::Owner,
                _ = term.recv() => StoppedBy::Session,
                _ = hangup.recv() => StoppedBy::Session,
            };
            let _ = cell.set(by);
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            let _ = cell.set(StoppedBy::Owner);
        }
        eprintln!("\nStopping…");
        cancel.cancel();
    });
    stopped_by
}

fn fail(e: &kindling_core::Error, json: bool) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({"error": e.to_report()}));
    } else {
        eprintln!("error: {e}");
        if let Some(hint) = e.hint() {
            eprintln!("{}", hint_text(&hint));
        }
    }
    if matches!(e, kindling_core::Error::Cancelled) {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}

/// A hint in the CLI's words: the command to run next.
fn hint_text(hint: &kindling_core::error::Hint) -> String {
    use kindling_core::error::Hint;
    match hint {
        Hint::ReinstallRuntime => {
            "In a source checkout, run `make setup`; otherwise reinstall Kindling.".into()
        }
        Hint::ChooseAnotherPort { suggested, second } => {
            let flag = if *second { "--second-port" } else { "--port" };
            format!("Try another port, for example `{flag} {suggested}` (that one is free now).")
        }
        Hint::ListRuns => "`kindling history` lists the runs there are.".into(),
        Hint::ListModels => "`kindling models list` shows the models there are.".into(),
        Hint::MakeCleanupPlan => "Run `kindling cleanup` to make a new plan.".into(),
        Hint::FreeDiskSpace => "`kindling cleanup` finds leftover model files to reclaim.".into(),
        Hint::SetHfToken => "Set your token with `kindling models token`.".into(),
        Hint::RenewNetworkKey => {
            "Turn network access off and on again in the app to make a new key.".into()
        }
    }
}

/// The model to use: the one given, or the first installed (the sample model in a
/// source checkout), or an error that says how to get one.
fn pick_model(core: &Core, given: Option<PathBuf>) -> Result<PathBuf, kindling_core::Error> {
    if let Some(m) = given {
        return Ok(m);
    }
    core.default_models().into_iter().next().ok_or_else(|| {
        kindling_core::gguf::GgufError::NotFound {
            path: core.paths().models(),
        }
        .into()
    })
}
