//! `kindling serve`

use std::path::PathBuf;

use kindling_core::server::Server;
use kindling_core::{Cancel, Core, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The model file to serve (a .gguf). Without it, Kindling uses your first
    /// installed model, or the small sample model.
    #[arg(long, value_name = "PATH")]
    pub(crate) model: Option<PathBuf>,
    /// Port to listen on (only this computer can connect, unless network access is on).
    #[arg(long, value_name = "N")]
    pub(crate) port: Option<u16>,
    /// A second model to serve at the same time, on the processor only (the GPU stays
    /// the first one's), on its own port. Refused when the two do not fit in memory
    /// together.
    #[arg(long, value_name = "PATH")]
    pub(crate) second: Option<PathBuf>,
    /// Port for the second model (default: the settings' second port).
    #[arg(long, value_name = "N", requires = "second")]
    pub(crate) second_port: Option<u16>,
    /// Write the evidence of each answer that goes wrong (the request, the end of the
    /// stream, the server's arguments and build) to this folder, one JSON file each, to
    /// attach to a bug report. Without it nothing an app sent is kept.
    #[arg(long, value_name = "FOLDER")]
    pub(crate) evidence: Option<PathBuf>,
    /// Use a paired Mac's memory too (repeat for more than one), for a model this Mac
    /// cannot hold alone. A model that fits here is never split.
    #[arg(long, value_name = "MAC", conflicts_with = "second")]
    pub(crate) with: Vec<String>,
    /// Print the plan (each Mac's share, the speed to expect) and stop there.
    #[arg(long, requires = "with")]
    pub(crate) plan: bool,
    /// The most of this Mac's memory the model may take, e.g. 12GB (default: all but what
    /// the system and other apps keep).
    #[arg(long, value_name = "SIZE", value_parser = kindling_core::units::parse_bytes, requires = "with")]
    pub(crate) local_memory: Option<u64>,
    /// This Mac's name as the other Macs show it (default: the computer's name).
    #[arg(long, requires = "with")]
    pub(crate) name: Option<String>,
}

pub async fn run(core: &Core, args: Args, cancel: &Cancel) -> Result<()> {
    if !args.with.is_empty() {
        return crate::pooled::serve_with(core, args, cancel).await;
    }
    let mut events = core.events().subscribe();
    let model = crate::pick_model(core, args.model)?;
    let port = args.port.unwrap_or(core.settings().port);
    eprintln!("Starting the model server with {} …", model.display());
    let (server, registered) = core.start_serving(&model, Some(port), cancel).await?;
    announce(&server, registered.info.name.as_deref(), "");
    let second = match &args.second {
        Some(path) => {
            eprintln!(
                "Starting the second model, on the processor, with {} …",
                path.display()
            );
            let port = args.second_port.unwrap_or(core.settings().second_port);
            match core
                .start_second(path, Some(port), Some(server.config()), cancel)
                .await
            {
                Ok((s, r)) => {
                    announce(&s, r.info.name.as_deref(), " on the processor");
                    Some(s)
                }
                Err(e) => {
                    server.stop().await;
                    return Err(e);
                }
            }
        }
        None => None,
    };
    // What this server does, not what the settings say.
    if server.config().api_key_file.is_some() {
        println!(
            "Other devices on your network may connect too, sending the key in {} \
             (traffic on the network is not encrypted).",
            core.paths().api_key().display()
        );
    } else {
        println!("Only apps on this computer can connect.");
    }
    let names: Vec<String> = core.front().routes().iter().map(|r| r.id.clone()).collect();
    if names.len() > 1 {
        println!(
            "Both models answer at http://127.0.0.1:{}/v1 too: apps name the one they want ({}).",
            server.port(),
            names.join(" or ")
        );
    }
    if core.settings().end_bad_answers {
        println!("An answer that turns into a loop or garbage is ended with an error, and counted (`kindling usage`).");
    }
    println!("Press Ctrl-C to stop.");
    let bad_answers = async {
        loop {
            match events.recv().await {
                Ok(kindling_core::Event::AnswerWentWrong {
                    id,
                    model,
                    detail,
                    today,
                    ..
                }) => report_bad_answer(core, args.evidence.as_deref(), id, &model, &detail, today),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await
                }
                _ => {}
            }
        }
    };
    let second_died = async {
        match &second {
            Some(s) => s.died().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        e = server.died() => Err(e.into()),
        e = second_died => Err(e.into()),
        _ = bad_answers => Ok(()),
    };
    if let Some(s) = second {
        s.stop().await;
    }
    server.stop().await;
    if outcome.is_ok() {
        println!("Stopped the model server.");
    }
    outcome
}

/// Says that an answer went wrong, and writes its evidence when the owner asked for it.
fn report_bad_answer(
    core: &Core,
    folder: Option<&std::path::Path>,
    id: i64,
    model: &str,
    detail: &str,
    today: u32,
) {
    eprintln!("An answer from {model} went wrong ({detail}); {today} today.");
    let Some(folder) = folder else {
        eprintln!("  To keep the evidence of the next one for a bug report, start again with --evidence FOLDER.");
        return;
    };
    let path = folder.join(format!("kindling-bad-answer-{id}.json"));
    let saved = std::fs::create_dir_all(folder)
        .map_err(|source| kindling_core::Error::Io {
            path: folder.to_path_buf(),
            source,
        })
        .and_then(|()| core.front().save_evidence(id, &path));
    match saved {
        Ok(()) => eprintln!("  Its evidence is in {}.", path.display()),
        Err(e) => eprintln!("  Its evidence could not be saved: {e}"),
    }
}

/// "Serving Gemma 3 at http://127.0.0.1:11480/v1 …"
pub fn announce(server: &Server, name: Option<&str>, where_: &str) {
    let base = format!("http://127.0.0.1:{}", server.port());
    println!(
        "Serving {}{where_} at {base}/v1 (OpenAI-compatible). Chat in your browser at {base}/",
        name.unwrap_or("the model")
    );
}
