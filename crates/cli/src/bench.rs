//! `kindling bench`

use std::path::PathBuf;

use kindling_core::bench::{SpeedOptions, SpeedReport, SpeedRequest};
use kindling_core::{Cancel, Core, Result};

use crate::format;

#[derive(clap::Args)]
pub struct Args {
    /// The model file to measure (a .gguf). Without it, Kindling uses your first
    /// installed model, or the small sample model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// How many times to repeat the measurement at least (the middle result is reported).
    #[arg(long, default_value_t = 3, value_name = "N")]
    reps: u32,
    /// While the repetitions disagree by more than 10%, repeat up to this many times.
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_reps: u32,
    /// Length of the test prompt, in tokens.
    #[arg(long, default_value_t = 512, value_name = "N")]
    prompt_tokens: u32,
    /// How many tokens to generate each time.
    #[arg(long, default_value_t = 128, value_name = "N")]
    gen_tokens: u32,
    /// Port for the model server during the benchmark (a free one when not given).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Do not measure memory speed again: the figure kept from an earlier run is used (a
    /// first run still measures it once, about a second, to know its speed limit).
    #[arg(long)]
    no_bandwidth: bool,
    /// Also measure how good the answers are (seven categories; takes longer).
    #[arg(long)]
    quality: bool,
    /// With --quality: the ~10-test quick subset instead of the whole suite.
    #[arg(long, requires = "quality")]
    quick: bool,
    /// With --quality: thinking on or off, for models whose template can toggle it.
    #[arg(long, value_name = "on|off", requires = "quality")]
    think: Option<OnOff>,
    /// Continue an interrupted quality run (its number); finished tests are not run again.
    #[arg(long, value_name = "RUN")]
    resume: Option<i64>,
    /// Run a list of quality jobs back to back (a TOML file of [[job]] model/quick/think),
    /// keeping the machine awake.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["model", "resume"])]
    queue: Option<PathBuf>,
    /// Print the result as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

pub async fn run(core: &Core, args: Args, cancel: &Cancel) -> Result<()> {
    // Another Kindling's server is that program's to stop, never this command's; say
    // what it costs instead (memory for two models, and slower figures).
    let serving = kindling_core::server::owners::others_running(&core.paths().servers());
    if !args.json && !serving.is_empty() {
        let ports: Vec<String> = serving.iter().map(|r| r.port.to_string()).collect();
        eprintln!(
            "Note: Kindling is also serving a model (port {}). It keeps running while this \
             benchmark runs, so both models are in memory and the figures may read low; stop \
             it from the menu bar first for this Mac's best numbers.",
            ports.join(", ")
        );
    }
    if let Some(file) = &args.queue {
        return crate::quality::run_queue(core, file, args.json, cancel).await;
    }
    if args.quality || args.resume.is_some() {
        let model = match args.resume {
            Some(_) => PathBuf::new(),
            None => crate::pick_model(core, args.model.clone())?,
        };
        let think = args.think.map(|t| matches!(t, OnOff::On));
        return crate::quality::run(
            core,
            model,
            args.quick,
            think,
            args.resume,
            args.json,
            cancel,
        )
        .await;
    }
    let model = crate::pick_model(core, args.model)?;
    let printer = crate::quality::progress_printer(core, args.json);
    if !args.json {
        eprintln!(
            "Benchmarking {} — this takes about a minute.",
            model.display()
        );
    }
    let report = core
        .bench_speed(
            SpeedRequest {
                model,
                options: SpeedOptions {
                    prompt_tokens: args.prompt_tokens,
                    gen_tokens: args.gen_tokens,
                    repetitions: args.reps.max(1),
                    max_repetitions: args.max_reps.max(args.reps),
                    warmup: true,
                },
                port: args.port,
                probe_bandwidth: !args.no_bandwidth,
            },
            cancel,
        )
        .await;
    printer.abort();
    let report = report?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &SpeedReport) {
    let s = &r.summary;
    println!();
    println!("Kindling benchmark — run {}", r.run_id);
    println!();
    format::row("Machine", &r.hardware.summary());
    format::row("GPU for AI", &format::devices(&r.hardware.vulkan_devices));
    format::row("Runtime", &format!("llama-server {}", r.runtime_version));
    format::row(
        "Model",
        &format!(
            "{} ({}, {})",
            r.model_name
                .clone()
                .unwrap_or_else(|| r.model_path.display().to_string()),
            r.quant.as_deref().unwrap_or("unknown quant"),
            format::bytes(r.model_bytes)
        ),
    );
    println!();
    let reps = s.gen_per_second.n;
    let range = |st: &kindling_core::bench::Stat| format!("{:.1}–{:.1}", st.min, st.max);
    format::row(
        "Prompt speed",
        &format!(
            "{:.0} tokens/s  ({}-token prompt; median of {reps}, spread {:.0}%)",
            s.prompt_per_second.median, s.options.prompt_tokens, s.prompt_per_second.spread_pct
        ),
    );
    format::row(
        "Generation speed",
        &format!(
            "{:.1} tokens/s  ({} tokens; median of {reps}, min–max {})",
            s.gen_per_second.median,
            s.options.gen_tokens,
            range(&s.gen_per_second)
        ),
    );
    if let Some(others) = s.measured_busy {
        format::row(
            "Busy machine",
            &kindling_core::bench::quiet::busy_sentence(others),
        );
    }
    if s.too_noisy {
        format::row(
            "Too noisy",
            &format!(
                "the repetitions still disagreed by {:.0}% after {reps}: do not compare this figure with another run; close other apps and measure again",
                s.gen_per_second.spread_pct
            ),
        );
    }
    format::row(
        "First token",
        &format!(
            "{} after sending the prompt",
            format::seconds(s.ttft_ms.median)
        ),
    );
    format::row(
        "Load time",
        &format!(
            "{} to load the model and be ready",
            format::seconds(s.load_ms)
        ),
    );
    if let Some(rss) = s.peak_rss_bytes {
        format::row(
            "Peak memory",
            &format!("{} used by the model server", format::bytes(rss)),
        );
    }
    match &s.limit {
        Some(limit) => format::row(
            "Memory limit",
            &limit.sentence(
                s.gen_per_second.median,
                s.effective_bandwidth_bytes_per_second,
            ),
        ),
        None => format::row("Memory limit", "not measured"),
    }
    if !r.timings_agree {
        println!();
        println!("  Note: Kindling's clock and the server's own timings disagreed by more than expected;");
        println!("  the machine may have been busy. Run the benchmark again for steadier figures.");
    }
    println!();
    println!(
        "In plain words: {}.",
        format::verdict(s.gen_per_second.median)
    );
    println!(
        "Saved as run {}. See it again with: kindling history show {}",
        r.run_id, r.run_id
    );
}
