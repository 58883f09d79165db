//! `kindling history` and `kindling history show RUN`

use kindling_core::history::RunSummary;
use kindling_core::{Core, Result};

use crate::format;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    show: Option<Sub>,
    /// Print the runs as JSON (for scripts).
    #[arg(long)]
    json: bool,
    /// How many runs to list.
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: u32,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Put two runs side by side, category by category.
    Compare { a: i64, b: i64 },
    /// Write a run (raw answers included) as one JSON document, to share or keep; or as
    /// a page anyone can read, or the table people post in llama.cpp's discussions. With
    /// --showdown, a whole showdown: its verdict, its ranking and every run behind it.
    Export {
        /// The run's number, as listed by `kindling history`.
        #[arg(required_unless_present = "showdown", conflicts_with = "showdown")]
        run: Option<i64>,
        /// Export showdown ID instead of one run (`kindling showdown` names it).
        #[arg(long, value_name = "ID")]
        showdown: Option<i64>,
        /// Where to write it (default: print it).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        /// One self-contained HTML page: the machine, the runtime and its arguments,
        /// every prompt, answer and grader's verdict, the speed with its spread.
        #[arg(long, conflicts_with = "markdown")]
        html: bool,
        /// The speed as a llama.cpp-discussion-style markdown table, with the machine,
        /// the memory-speed limit and the quality score.
        #[arg(long)]
        markdown: bool,
    },
    /// Add a run exported on another machine to this history.
    Import { file: std::path::PathBuf },
    /// Show everything Kindling stored about one run.
    Show {
        /// The run's number, as listed by `kindling history`.
        run: i64,
        /// Print it as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

impl Args {
    pub fn json(&self) -> bool {
        self.json || matches!(self.show, Some(Sub::Show { json: true, .. }))
    }
}

/// A document as a page (`html`), a markdown table (`markdown`), or JSON.
fn render<T: serde::Serialize>(
    doc: &T,
    html: bool,
    markdown: bool,
    as_html: fn(&T) -> String,
    as_markdown: fn(&T) -> String,
) -> String {
    if html {
        as_html(doc)
    } else if markdown {
        as_markdown(doc)
    } else {
        serde_json::to_string_pretty(doc).expect("serializes")
    }
}

fn gen_speed(r: &RunSummary) -> Option<f64> {
    r.result.as_ref()?.gen_per_second()
}
fn prompt_speed(r: &RunSummary) -> Option<f64> {
    r.result.as_ref()?.prompt_per_second()
}

pub async fn run(core: &Core, args: Args) -> Result<()> {
    match &args.show {
        Some(Sub::Compare { a, b }) => return compare(core, *a, *b).await,
        Some(Sub::Export {
            run,
            showdown,
            out,
            html,
            markdown,
        }) => {
            let (text, what) = match (run, showdown) {
                (_, Some(id)) => {
                    use kindling_core::showdown::page;
                    let x = core.showdown_export(*id).await?;
                    let text = render(&x, *html, *markdown, page::html, page::markdown);
                    (text, format!("showdown {id}"))
                }
                (Some(run), None) => {
                    use kindling_core::history::page;
                    let doc = core.db().export_run(*run).await?;
                    let text = render(&doc, *html, *markdown, page::html, page::markdown);
                    (text, format!("run {run}"))
                }
                (None, None) => unreachable!("clap requires a run or --showdown"),
            };
            match out {
                Some(path) => {
                    std::fs::write(path, text).map_err(|source| kindling_core::Error::Io {
                        path: path.clone(),
                        source,
                    })?;
                    println!("Wrote {what} to {}", path.display());
                }
                None => println!("{text}"),
            }
            return Ok(());
        }
        Some(Sub::Import { file }) => {
            let text = std::fs::read(file).map_err(|source| kindling_core::Error::Io {
                path: file.clone(),
                source,
            })?;
            let doc: kindling_core::history::RunExport =
                serde_json::from_slice(&text).map_err(|e| {
                    kindling_core::history::HistoryError::Import(format!(
                        "{} is not a run document ({e})",
                        file.display()
                    ))
                })?;
            let id = core
                .db()
                .import_run(&doc, &kindling_core::history::now())
                .await?;
            println!("Imported as run {id}. Compare it with one of yours: kindling history compare {id} RUN");
            return Ok(());
        }
        _ => {}
    }
    if let Some(Sub::Show { run, json }) = args.show {
        let d = core.db().run_detail(run).await?;
        if json || args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&d).expect("detail serializes")
            );
            return Ok(());
        }
        let r = &d.run;
        println!(
            "Run {} — {} benchmark, {}{}",
            r.id,
            r.kind,
            status_words(r),
            if r.imported {
                " (imported from another machine)"
            } else {
                ""
            }
        );
        format::row("Started", &r.started_at);
        format::row("Finished", r.finished_at.as_deref().unwrap_or("—"));
        format::row("Model", r.model_path.as_deref().unwrap_or("—"));
        format::row("Quant", r.quant.as_deref().unwrap_or("—"));
        format::row("Runtime", r.runtime_version.as_deref().unwrap_or("—"));
        if let Some(hw) = &d.hardware {
            format::row("Machine", &hw.summary());
        }
        if let Some(bw) = d.bandwidth_bytes_per_second {
            format::row("Memory speed", &format!("{:.1} GB/s", bw / 1e9));
        }
        if let Some(g) = gen_speed(r) {
            format::row("Generation", &format!("{g:.1} tokens/s (median)"));
        }
        if let Some(p) = prompt_speed(r) {
            format::row("Prompt", &format!("{p:.0} tokens/s (median)"));
        }
        if let Some(s) = r.result.as_ref().and_then(|x| x.score()) {
            format::row("Score", &format!("{:.0}%", s * 100.0));
        }
        if let Some(kindling_core::bench::RunResult::Speed(s)) = &r.result {
            if let Some(limit) = &s.limit {
                format::row(
                    "Memory limit",
                    &limit.sentence(
                        s.gen_per_second.median,
                        s.effective_bandwidth_bytes_per_second,
                    ),
                );
            }
        }
        if !d.server_args.is_empty() {
            format::row(
                "Asked in",
                &kindling_core::chat_format::asked_in(&d.server_args),
            );
        }
        format::row("Server args", &d.server_args.join(" "));
        if let Some(msg) = &r.error_message {
            println!();
            println!("What went wrong: {msg}");
        }
        if !d.measurements.is_empty() {
            println!();
            println!("Measurements:");
            for m in &d.measurements {
                let rep = m.repetition.map(|r| format!(" #{r}")).unwrap_or_default();
                println!(
                    "  {:<20} {:>14.2} {}",
                    format!("{}{rep}", m.name),
                    m.value,
                    m.unit
                );
            }
        }
        if !d.log_tail.is_empty() {
            println!();
            println!("Last lines from the model server:");
            for l in d.log_tail.iter().rev().take(15).rev() {
                println!("  {l}");
            }
        }
        return Ok(());
    }
    let runs = core.db().list_runs(args.limit).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).expect("runs serialize")
        );
        return Ok(());
    }
    if runs.is_empty() {
        println!("No benchmarks yet. Run `kindling bench` to measure this computer.");
        return Ok(());
    }
    println!(
        "{:>4}  {:<16}  {:<7}  {:<24}  {:<8}  {:<6}  {:<11}  {:>7}  {:>5}",
        "RUN", "STARTED (UTC)", "KIND", "MODEL", "QUANT", "ON", "STATUS", "GEN t/s", "SCORE"
    );
    for r in &runs {
        let model = r
            .model_name
            .clone()
            .or_else(|| r.model_path.clone())
            .unwrap_or_else(|| "—".into());
        let num = |v: Option<f64>, p: usize| v.map_or("—".into(), |v| format!("{v:.p$}"));
        println!(
            "{:>4}  {:<16}  {:<7}  {:<24}  {:<8}  {:<6}  {:<11}  {:>7}  {:>5}",
            format!("{}{}", r.id, if r.imported { "*" } else { "" }),
            r.started_at
                .get(..16)
                .unwrap_or(&r.started_at)
                .replace('T', " "),
            r.kind.as_str(),
            model.chars().take(24).collect::<String>(),
            r.quant.as_deref().unwrap_or("—"),
            r.backend.map_or("—", |b| b.as_str()),
            r.status.as_str(),
            num(gen_speed(r), 1),
            r.result
                .as_ref()
                .and_then(|x| x.score())
                .map_or("—".into(), |s| format!("{:.0}%", s * 100.0)),
        );
    }
    println!();
    if runs.iter().any(|r| r.imported) {
        println!("* imported from another machine: shown, never used to predict speeds here.");
    }
    println!("See one run in full with: kindling history show RUN");
    Ok(())
}

fn status_words(r: &RunSummary) -> &'static str {
    match r.status {
        kindling_core::history::RunStatus::Completed => "completed",
        kindling_core::history::RunStatus::Failed => "failed",
        kindling_core::history::RunStatus::Interrupted => "interrupted",
        kindling_core::history::RunStatus::Running => "still running",
    }
}

async fn compare(core: &Core, a: i64, b: i64) -> Result<()> {
    let (ra, rb) = (
        core.db().run_detail(a).await?,
        core.db().run_detail(b).await?,
    );
    type Figure = fn(&kindling_core::bench::RunResult) -> Option<f64>;
    let cat = |r: &kindling_core::history::RunDetail, c: &str| -> Option<f64> {
        r.run.result.as_ref()?.category(c)
    };
    let num = |r: &kindling_core::history::RunDetail, f: Figure| r.run.result.as_ref().and_then(f);
    let name = |r: &kindling_core::history::RunDetail| {
        r.run
            .model_name
            .clone()
            .or_else(|| r.run.model_path.clone())
            .unwrap_or_else(|| "—".into())
    };
    println!(
        "{:<16} {:>22} {:>22}",
        "",
        format!("run {a}"),
        format!("run {b}")
    );
    println!(
        "{:<16} {:>22} {:>22}",
        "model",
        name(&ra).chars().take(22).collect::<String>(),
        name(&rb).chars().take(22).collect::<String>()
    );
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
    for c in kindling_core::bench::suite::CATEGORIES {
        println!(
            "{:<16} {:>22} {:>22}",
            c.replace('_', " "),
            pct(cat(&ra, c)),
            pct(cat(&rb, c))
        );
    }
    println!(
        "{:<16} {:>22} {:>22}",
        "score",
        pct(num(&ra, |x| x.score())),
        pct(num(&rb, |x| x.score()))
    );
    let f1 = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
    println!(
        "{:<16} {:>22} {:>22}",
        "score per GB",
        f1(num(&ra, |x| x.score_per_gb())),
        f1(num(&rb, |x| x.score_per_gb()))
    );
    let gen = |r: &kindling_core::history::RunDetail| num(r, |x| x.gen_per_second());
    println!(
        "{:<16} {:>22} {:>22}",
        "tokens/s",
        f1(gen(&ra)),
        f1(gen(&rb))
    );
    if let Some(j) = core.judge_runs(a, b).await {
        println!();
        println!("{}.", j.sentence(&format!("Run {a}"), &format!("run {b}")));
    }
    Ok(())
}
