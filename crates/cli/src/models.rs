//! `kindling models pull | list | rm | token`

use kindling_core::download::{hf, Control, Policy};
use kindling_core::events::Event;
use kindling_core::store::PullRequest;
use kindling_core::{Cancel, Core, Result};

use crate::format;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Download a model file from Hugging Face, check it, and install it.
    /// Run it again to continue a download that stopped.
    Pull {
        /// The repository, e.g. `unsloth/gemma-3-270m-it-GGUF` — or a catalog id such as
        /// `gemma4-e4b:Q4_K_M` (see `kindling recommend`).
        repo: String,
        /// The file in the repository, e.g. `gemma-3-270m-it-Q4_K_M.gguf` (not needed with a catalog id).
        file: Option<String>,
        /// Print the result as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List the models on this computer: Kindling's own and those Ollama, LM Studio or
    /// the Hugging Face cache already have (used where they are, never copied).
    List {
        /// Print the list as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Use the GGUF models in a folder (or one file) where they are, without copying them.
    Add { path: std::path::PathBuf },
    /// Remove a model (its number from `kindling models list`). Shows what would happen;
    /// add --apply to do it. Models of other apps are only forgotten, never deleted.
    Rm {
        id: i64,
        /// Do it.
        #[arg(long)]
        apply: bool,
    },
    /// Save your Hugging Face access token in the system keychain (or --forget it).
    Token {
        /// The token (starts with `hf_`).
        token: Option<String>,
        #[arg(long)]
        forget: bool,
    },
}

impl Args {
    pub fn json(&self) -> bool {
        matches!(
            self.command,
            Command::Pull { json: true, .. } | Command::List { json: true }
        )
    }
}

pub async fn run(core: &Core, args: Args, cancel: &Cancel) -> Result<()> {
    match args.command {
        Command::Pull { repo, file, json } => pull(core, repo, file, json, cancel).await,
        Command::List { json } => list(core, json).await,
        Command::Add { path } => {
            let path = core.add_model_folder(&path)?;
            let inv = core.inventory(&core.model_roots()).await?;
            let n = inv
                .installed
                .iter()
                .filter(|m| m.path.starts_with(&path))
                .count();
            println!(
                "Added {}: {n} model(s) found there. `kindling models list` shows them.",
                path.display()
            );
            Ok(())
        }
        Command::Rm { id, apply } => {
            let what = core.remove_model(id, apply).await?;
            if apply {
                println!("Done: {what}");
            } else {
                println!("Would: {what}");
                println!("Run `kindling models rm {id} --apply` to do it.");
            }
            Ok(())
        }
        Command::Token { token, forget } => {
            let t = if forget { None } else { token.as_deref() };
            if t.is_none() && !forget {
                println!("Give the token, or --forget to remove the saved one.");
                return Ok(());
            }
            hf::set_token(t)?;
            println!(
                "{}",
                if forget {
                    "Forgot the saved token."
                } else {
                    "Saved the token in the system keychain."
                }
            );
            Ok(())
        }
    }
}

async fn pull(
    core: &Core,
    repo: String,
    file: Option<String>,
    json: bool,
    cancel: &Cancel,
) -> Result<()> {
    let request = match file {
        Some(file) => PullRequest {
            repo,
            file,
            policy: Policy::default(),
            endpoint: None,
            revision: None,
            expect: None,
        },
        None => PullRequest::from_catalog(&core.catalog(), &repo)?,
    };
    // Ctrl-C pauses (the partial file is kept; the same command continues it).
    let control = Control {
        pause: cancel.clone(),
        cancel: Cancel::new(),
    };
    let mut events = core.events().subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if let Event::Download {
                bytes,
                total,
                bytes_per_second,
                eta_seconds,
                ..
            } = ev
            {
                if json {
                    continue;
                }
                let pct = bytes as f64 * 100.0 / total.max(1) as f64;
                let eta = eta_seconds.map_or(String::new(), |s| {
                    format!(", about {} left", format::seconds(s * 1e3))
                });
                eprint!(
                    "\r  {pct:5.1}%  {} of {}  {}/s{eta}      ",
                    format::bytes(bytes),
                    format::bytes(total),
                    format::bytes(bytes_per_second as u64)
                );
            }
        }
    });
    let result = core.pull(&request, &control).await;
    printer.abort();
    if !json {
        eprintln!();
    }
    let pulled = result?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&pulled).expect("serializes")
        );
    } else {
        println!(
            "Installed {} ({}, sha256 verified). Benchmark it with: kindling bench --model \"{}\"",
            pulled.path.display(),
            format::bytes(pulled.bytes),
            pulled.path.display()
        );
    }
    Ok(())
}

async fn list(core: &Core, json: bool) -> Result<()> {
    let inv = core.inventory(&core.model_roots()).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&inv).expect("serializes")
        );
        return Ok(());
    }
    if inv.installed.is_empty() {
        println!("No models yet. Get one with `kindling models pull REPO FILE`.");
    } else {
        println!(
            "{:>4}  {:<11}  {:<40}  {:<8}  {:>8}",
            "ID", "FROM", "NAME", "QUANT", "SIZE"
        );
        for m in &inv.installed {
            println!(
                "{:>4}  {:<11}  {:<40}  {:<8}  {:>8}",
                m.id,
                m.source,
                m.name.chars().take(40).collect::<String>(),
                m.quant.as_deref().unwrap_or("—"),
                format::bytes(m.bytes)
            );
        }
    }
    for m in &inv.missing {
        println!(
            "  Missing: {} `kindling models rm {}` forgets it.",
            m.message, m.id
        );
    }
    for (path, why) in &inv.unusable {
        println!("  Not usable: {} — {why}", path.display());
    }
    Ok(())
}
