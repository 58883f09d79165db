//! `kindling serve`

use std::path::PathBuf;

use kindling_core::{Cancel, Core, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The model file to serve (a .gguf). Without it, Kindling uses your first
    /// installed model, or the small sample model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Port to listen on (only this computer can connect).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
}

pub async fn run(core: &Core, args: Args, cancel: &Cancel) -> Result<()> {
    let model = crate::pick_model(core, args.model)?;
    let port = args.port.unwrap_or(core.settings().port);
    eprintln!("Starting the model server with {} …", model.display());
    let (server, registered) = core.start_serving(&model, Some(port), cancel).await?;
    let base = server.base_url();
    println!(
        "Serving {} at {base}/v1 (OpenAI-compatible). Chat in your browser at {base}/",
        registered.info.name.as_deref().unwrap_or("the model")
    );
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
