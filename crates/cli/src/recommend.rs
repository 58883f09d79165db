//! `kindling recommend` and `kindling tune`

use std::path::PathBuf;

use kindling_core::recommend::{Evidence, Goal};
use kindling_core::{Cancel, Core, Result};

use crate::format;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum GoalArg {
    /// Fast enough to chat (about 10 tokens/s or more).
    Conversational,
    /// Any speed; the best answers, for work you leave running.
    Patient,
}

impl From<GoalArg> for Goal {
    fn from(g: GoalArg) -> Goal {
        match g {
            GoalArg::Conversational => Goal::Conversational,
            GoalArg::Patient => Goal::Patient,
        }
    }
}

/// What `kindling recommend` was asked.
pub struct Options {
    pub goal: GoalArg,
    pub json: bool,
    pub all: bool,
    pub measure: Option<usize>,
    /// Another machine's profile (a file, or a shipped profile's name).
    pub machine: Option<String>,
}

/// `kindling recommend --with B [--machine A]`: what the two run together that neither
/// runs fast alone.
pub async fn pair(core: &Core, machine: Option<String>, with: &str, json: bool) -> Result<()> {
    use kindling_core::recommend::machine::MachineFile;
    let name = |given: &str| {
        std::path::Path::new(given)
            .file_stem()
            .map_or_else(|| given.to_string(), |s| s.to_string_lossy().into_owned())
    };
    let a = match &machine {
        Some(m) => (name(m), MachineFile::find(m)?),
        None => {
            let d = core.detect().await;
            let file = MachineFile {
                hardware: d.hardware,
                memory_bandwidth_bytes_per_second: d.memory_bandwidth_bytes_per_second,
                runtime_info: None,
            };
            ("this Mac".to_string(), file)
        }
    };
    let b = (name(with), MachineFile::find(with)?);
    let ctx = u64::from(core.settings().ctx_size.max(4096));
    let rows =
        kindling_core::recommend::pair::pair_only(&core.catalog(), (&a.0, &a.1), (&b.0, &b.1), ctx);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("serializes")
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("Nothing in the catalog needs both: whatever {} and {} can run, one of them runs fast alone.", a.0, b.0);
        return Ok(());
    }
    println!(
        "What {} and {} can run together that neither runs fast alone (over a wired link, 1 ms; predicted):",
        a.0, b.0
    );
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let shares: Vec<String> = r
                .shares
                .iter()
                .filter(|s| s.layers > 0)
                .map(|s| format!("{} {}", s.who, s.layers))
                .collect();
            vec![
                format!("{} {}", r.family, r.quant),
                kindling_core::units::format_bytes(r.bytes),
                format!("{:.1} tok/s", r.predicted_tok_s),
                format!("served by {}; layers: {}", r.serving, shares.join(", ")),
            ]
        })
        .collect();
    use format::Align::{Left, Right};
    for line in format::table(&[Left, Right, Right, Left], &table) {
        println!("  {line}");
    }
    println!("Pair the two (`kindling pair`) and serve with `kindling serve --with`: the plan there uses what each Mac lends and the link as measured.");
    Ok(())
}

pub async fn recommend(core: &Core, opts: Options, cancel: &Cancel) -> Result<()> {
    let Options {
        goal,
        json,
        all,
        measure,
        machine,
    } = opts;
    let goal = Goal::from(goal);
    let rec = match &machine {
        Some(m) => {
            let file = kindling_core::recommend::machine::MachineFile::find(m)?;
            core.recommend_for(&file, goal)
        }
        None => core.recommend(goal).await?,
    };
    if let Some(n) = measure {
        return measure_top(core, &rec, n, json, cancel).await;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rec).expect("serializes")
        );
        return Ok(());
    }
    println!("{}", rec.machine);
    if rec.for_another_machine {
        println!("Planned for that Mac from its profile: nothing measured on this computer applies there, so speeds are predicted and quality comes from the catalog.");
    } else if rec.calibrated_from == 0 {
        println!("Speeds are predicted from memory bandwidth; run `kindling bench` once to calibrate them to this machine.");
    } else {
        println!(
            "Speeds are predicted from memory bandwidth, calibrated by {} of this machine's runs.",
            rec.calibrated_from
        );
    }
    println!();
    let Some(top) = rec.candidates.first().filter(|c| c.fit.fits) else {
        println!("No model in the catalog fits this machine.");
        return Ok(());
    };
    println!(
        "Recommended: {} {} ({:.1} GB){}",
        top.name,
        top.quant,
        top.size_gb,
        if top.installed { " — installed" } else { "" }
    );
    println!("  {}", top.reason);
    for c in &top.caveats {
        println!("  Note: {c}");
    }
    if !top.installed {
        let (repo, file) = core
            .catalog()
            .find(&top.id)
            .map(|(_, v)| (v.repo.clone(), v.file.clone()))
            .unwrap_or_default();
        println!("  Get it with: kindling models pull {repo} {file}");
    }
    println!();
    use crate::format::{table, Align};
    let mut rows: Vec<Vec<String>> = vec![[
        "MODEL", "QUANT", "SIZE", "TOKENS/S", "SCORE", "SCORE/GB", " WHERE",
    ]
    .map(String::from)
    .to_vec()];
    let shown = if all { rec.candidates.len() } else { 12 };
    for c in rec.candidates.iter().take(shown) {
        // Measured here when there is a run, with the prediction beside it.
        let tps = match (c.measured_tps, c.predicted_tps) {
            (Some(m), Some(p)) => format!("{m:.0} ({p:.0}*)"),
            (Some(m), None) => format!("{m:.0}"),
            (None, Some(p)) => format!("{p:.0}*"),
            (None, None) => "—".into(),
        };
        // A marker of one character, or a space, so the figures stay in line.
        let ev = match c.evidence {
            Evidence::MeasuredHere => " ",
            Evidence::Reference => "ʳ",
            Evidence::Prior => "ᵖ",
        };
        let place = if !c.fit.fits {
            "does not fit".to_string()
        } else {
            match c.fit.placement {
                kindling_core::recommend::fit::Placement::Gpu => "GPU".into(),
                kindling_core::recommend::fit::Placement::Partial { gpu_layers, layers } => {
                    format!("GPU {gpu_layers}/{layers} layers")
                }
                kindling_core::recommend::fit::Placement::Cpu => "processor".into(),
            }
        };
        rows.push(vec![
            c.name.chars().take(26).collect::<String>(),
            c.quant.clone(),
            format!("{:.1} GB", c.size_gb),
            tps,
            format!("{:.0}%{ev}", c.score * 100.0),
            format!("{:.1}", c.score_per_gb),
            format!(" {place}"),
        ]);
    }
    let align = [
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
    ];
    for line in table(&align, &rows) {
        println!("{line}");
    }
    println!();
    println!("* predicted   ᵖ expected, not measured   ʳ measured elsewhere. Measure the installed top candidates with: kindling recommend --measure 3");
    Ok(())
}

async fn measure_top(
    core: &Core,
    rec: &kindling_core::recommend::machine::Recommendation,
    n: usize,
    json: bool,
    cancel: &Cancel,
) -> Result<()> {
    let mut jobs = String::new();
    let mut count = 0;
    for c in rec.candidates.iter().filter(|c| c.fit.fits && c.installed) {
        let Some(path) = core.installed_file(&c.file).await? else {
            continue;
        };
        jobs.push_str(&format!("[[job]]\nmodel = {:?}\nquick = true\n\n", path));
        count += 1;
        if count == n {
            break;
        }
    }
    if count == 0 {
        println!("None of the top candidates is installed yet. Pull one (see `kindling recommend`), then measure it.");
        return Ok(());
    }
    let dir = core.paths().home().join("queues");
    std::fs::create_dir_all(&dir).map_err(|source| kindling_core::Error::Io {
        path: dir.clone(),
        source,
    })?;
    let file = dir.join(format!(
        "recommend-{}.toml",
        kindling_core::history::now().replace(':', "-")
    ));
    std::fs::write(&file, jobs).map_err(|source| kindling_core::Error::Io {
        path: file.clone(),
        source,
    })?;
    crate::quality::run_queue(core, &file, json, cancel).await
}

pub async fn tune(core: &Core, model: Option<PathBuf>, json: bool, cancel: &Cancel) -> Result<()> {
    let model = crate::pick_model(core, model)?;
    if !json {
        eprintln!(
            "Measuring {} at several GPU layer counts (a few seconds each)…",
            model.display()
        );
    }
    let report = core.tune(&model, cancel).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializes")
        );
        return Ok(());
    }
    for p in &report.points {
        let range = p.gen.map_or(String::new(), |g| {
            format!(" ({:.1}–{:.1} over {})", g.min, g.max, g.n)
        });
        println!("  {:>6.1} tokens/s{range}  {}", p.gen_per_second, p.label);
    }
    println!();
    println!("{}", report.verdict);
    println!(
        "Saved as run {}. {}",
        report.run_id,
        format::verdict(report.best.gen_per_second)
    );
    Ok(())
}
