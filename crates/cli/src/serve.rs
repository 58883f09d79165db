//! `kindling serve`

use std::path::PathBuf;

use kindling_core::{Cancel, Core, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The model file to serve (a .gguf). Without it, Kindling uses your first
    /// installed model, or the small sample model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Port to listen on (only this computer can connect, unless network access is on).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
}

pub async fn run(core: &Core, args: Args, cancel: &Cancel) -> Result<()> {
    let model = crate::pick_model(core, args.model)?;
    let port = args.port.unwrap_or(core.settings().port);
    eprintln!("Starting the model server with {} …", model.display());
    let (server, registered) = core.start_serving(&model, Some(port), cancel).await?;
    let base = format!("http://127.0.0.1:{}", server.port());
    println!(
        "Serving {} at {base}/v1 (OpenAI-compatible). Chat in your browser at {base}/",
        registered.info.name.as_deref().unwrap_or("the model")
    );
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
    println!("Press Ctrl-C to stop.");
    let outcome = tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        e = server.died() => Err(e.into()),
    };
    server.stop().await;
    if outcome.is_ok() {
        println!("Stopped the model server.");
    }
    outcome
}
