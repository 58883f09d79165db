//! "Find the best model for this Mac", end to end: the real app (Xvfb, WebDriver) runs a
//! showdown of a quant ladder of the sample model — Q2_K, Q3_K_M and Q8_0 made here with
//! the pinned llama.cpp's llama-quantize from the sample's Q4_K_M (so Q8_0 cannot answer
//! better) — downloaded from a loopback Hugging Face mirror as catalog additions. The
//! owner quits the app in the middle of the second candidate, on a machine without
//! pdeathsig (as macOS): no llama-server outlives it. Started again, it resumes without
//! repeating a finished test (Quit is not Stop); the report ranks Q4_K_M above Q8_0 on score per GB; the
//! losers' cleanup plan lists exactly the other three files and removes nothing until
//! the second click. Screenshots: target/e2e-screenshots/showdown-*.png.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kindling_core::history::EntryStatus;
use kindling_core::{Core, Paths};
use support::{App, Display};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const QUANTS: [&str; 4] = ["Q2_K", "Q3_K_M", "Q4_K_M", "Q8_0"];
const REPO: &str = "kindling-tests/gemma-3-270m-ladder";

fn file_name(quant: &str) -> String {
    format!("gemma-3-270m-ladder-{quant}.gguf")
}

/// The ladder: the sample model itself as Q4_K_M, the others quantized from it.
fn ladder(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let repo = support::repo();
    let sample = repo.join(".runtime/models/gemma-3-270m-q4_k_m.gguf");
    assert!(
        sample.is_file(),
        "the sample model is missing: run make setup"
    );
    let built = repo.join(".runtime/built");
    let quantize = built.join("llama-quantize");
    assert!(
        quantize.is_file(),
        "llama-quantize is missing: make runtime builds it"
    );
    std::fs::create_dir_all(dir).unwrap();
    QUANTS
        .iter()
        .map(|q| {
            let out = dir.join(file_name(q));
            if *q == "Q4_K_M" {
                std::fs::copy(&sample, &out).unwrap();
            } else {
                let made = Command::new(&quantize)
                    .arg("--allow-requantize")
                    .arg(&sample)
                    .arg(&out)
                    .arg(q)
                    .arg("2")
                    .env("LD_LIBRARY_PATH", &built)
                    .output()
                    .unwrap();
                assert!(
                    made.status.success(),
                    "llama-quantize {q}: {}",
                    String::from_utf8_lossy(&made.stderr)
                );
            }
            (*q, out)
        })
        .collect()
}

/// The ladder as an addition to Kindling's catalog (what `catalog.toml` in its home is for).
fn catalog_addition(files: &[(&str, PathBuf)]) -> String {
    let variants: Vec<String> = files
        .iter()
        .map(|(q, p)| {
            let bytes = std::fs::metadata(p).unwrap().len();
            format!(
                "  {{ quant = \"{q}\", repo = \"{REPO}\", file = \"{}\", size_gb = {}, bytes = {bytes} }},",
                file_name(q),
                bytes as f64 / 1e9
            )
        })
        .collect();
    format!(
        "[[family]]\nid = \"sample-ladder\"\nname = \"Sample ladder\"\nlicense = \"gemma\"\n\
         architecture = \"dense\"\nparams_b = 0.27\ncontext = 32768\ninstruct = false\n\
         thinking = \"none\"\nvariants = [\n{}\n]\n",
        variants.join("\n")
    )
}

/// `data-KEY` of every element with `data-testid=TESTID`, in page order.
fn data_of(app: &App, testid: &str, key: &str) -> Vec<String> {
    app.js(&format!(
        "return [...document.querySelectorAll('[data-testid={testid}]')].map(e => e.dataset.{key});"
    ))
    .as_array()
    .unwrap_or_else(|| panic!("no list of [data-testid={testid}]"))
    .iter()
    .map(|v| v.as_str().unwrap().to_string())
    .collect()
}

/// The candidates' rows on the Showdown screen: `(label, status)`.
fn entries(app: &App) -> Vec<(String, String)> {
    let v = app.js(
        "return [...document.querySelectorAll('[data-testid=sd-entry]')]\
           .map(e => [e.querySelector('strong').innerText, e.dataset.status, e.innerText]);",
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e[0].as_str().unwrap_or("").to_string(),
                        format!(
                            "{} {}",
                            e[1].as_str().unwrap_or(""),
                            e[2].as_str().unwrap_or("")
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_owner_finds_the_best_model_overnight_and_a_kill_loses_nothing() {
    let t = tempfile::tempdir().unwrap();
    let files = ladder(&t.path().join("ladder"));
    let home = t.path().join("kindling");
    support::home_with_free_port(&home);
    std::fs::write(home.join("catalog.toml"), catalog_addition(&files)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served: Vec<(String, PathBuf)> = files
        .iter()
        .map(|(q, p)| (format!("{REPO}/{}", file_name(q)), p.clone()))
        .collect();
    let served_refs: Vec<(&str, PathBuf)> = served
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let mirror = rt.block_on(kindling_testsupport::FileServer::start(&served_refs));
    let hf = mirror.base_url();
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let xdg = t.path().join("xdg");
    let env: Vec<(&str, &Path)> = vec![
        ("KINDLING_HOME", &home),
        ("HF_ENDPOINT", Path::new(&hf)),
        ("OLLAMA_MODELS", &empty),
        ("HF_HUB_CACHE", &empty),
        ("XDG_DATA_HOME", &xdg),
        (kindling_core::server::process::NO_PDEATHSIG, Path::new("1")),
    ];

    let display = Display::start();
    let app = App::launch(&display, &env);
    app.wait_ready();

    // Home → Find the best model for this Mac: the quick tests, and the ladder as the
    // candidates (the owner removes what Kindling proposed and adds the four).
    app.click("[data-testid=find-best]");
    app.wait_text("[data-testid=sd-totals]", secs(60));
    app.click("[data-testid=sd-quick]");
    app.wait("the quick proposal", secs(60), || {
        app.js("return document.querySelector('[data-testid=sd-quick]')?.checked && !!document.querySelector('[data-testid=sd-totals]');")
            .as_bool()
            .filter(|b| *b)
    });
    app.js("document.querySelectorAll('[data-testid=sd-remove]').forEach(b => b.click()); return null;");
    for q in QUANTS {
        let added = app.js(&format!(
            "const s = document.querySelector('[data-testid=sd-add]');\
             const o = [...s.options].find(o => o.text.startsWith('Sample ladder {q} '));\
             if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change', {{ bubbles: true }})); return true;"
        ));
        assert_eq!(
            added.as_bool(),
            Some(true),
            "Sample ladder {q} is offered to add"
        );
    }
    let labels: Vec<String> = data_of(&app, "sd-contender", "label");
    assert_eq!(
        labels,
        QUANTS.map(|q| format!("Sample ladder {q}")).to_vec(),
        "the four candidates, nothing else"
    );
    let totals = app.text("[data-testid=sd-totals]").unwrap();
    let ladder_bytes: u64 = files
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        totals.starts_with(&format!("Downloads {:.2} GB of", ladder_bytes as f64 / 1e9)),
        "the download total is the four files: {totals}"
    );
    app.screenshot("showdown-1-plan");
    app.click("[data-testid=sd-start]");
    app.wait_text("[data-testid=sd-running]", secs(30));

    // Quit three tests into the second candidate.
    app.wait("the second candidate's third test", secs(900), || {
        let e = entries(&app);
        (e.len() == 4
            && e[0].1.starts_with("done")
            && e[1].1.starts_with("measuring")
            && (3..=6).any(|n| e[1].1.contains(&format!("test {n} of"))))
        .then_some(())
    });
    app.screenshot("showdown-2-running");
    let servers = kindling_core::server::owners::server_pids(&home.join("servers"));
    assert!(!servers.is_empty(), "a server measures the candidate");
    let app_pid = app.app_pid().expect("the app runs");
    app.click("[data-testid=quit]");
    app.wait("the app to quit", secs(60), || {
        (!support::alive(app_pid)).then_some(())
    });
    assert!(
        servers.iter().all(|p| !support::alive(*p)),
        "a llama-server outlived Quit during the showdown: {servers:?}"
    );
    drop(app);

    // What the night kept: the first candidate done, the second's answers so far.
    let (interrupted, before) = rt.block_on(async {
        let core = Core::open(Paths::new(home.clone())).await.unwrap();
        let id = core
            .db()
            .unfinished_showdown()
            .await
            .unwrap()
            .expect("still to finish");
        let sd = core.db().showdown(id).await.unwrap();
        assert_eq!(sd.entries[0].status, EntryStatus::Done);
        assert!(sd.entries[1].model_path.is_some(), "downloaded");
        let run = sd.entries[1]
            .run_id
            .expect("the second candidate's run is kept on its entry, to continue");
        let before = core.db().results(run).await.unwrap();
        core.db().close().await;
        (run, before)
    });
    assert!(!before.is_empty(), "tests were answered before Quit");

    // Kindling starts again: the showdown resumes by itself, and the tray says so.
    let app = App::launch(&display, &env);
    app.wait_ready();
    app.wait_text("[data-testid=home-showdown-running]", secs(60));
    app.click("[data-screen=showdown]");
    let verdict = app.wait_text("[data-testid=sd-verdict]", secs(1200));
    assert!(verdict.starts_with("Use Sample ladder "), "{verdict}");
    app.screenshot("showdown-3-report");
    let ranked: Vec<String> = data_of(&app, "sd-ranked", "label");
    assert_eq!(ranked.len(), 4, "{ranked:?}");
    let at = |q: &str| {
        ranked
            .iter()
            .position(|l| l == &format!("Sample ladder {q}"))
            .unwrap()
    };
    assert!(
        at("Q4_K_M") < at("Q8_0"),
        "Q4_K_M (the Q8_0's source) ranks above Q8_0 on score per GB: {ranked:?}"
    );
    let winner = ranked[0].trim_start_matches("Sample ladder ").to_string();

    // The losers' cleanup: a plan of exactly the other three files; nothing removed yet.
    app.click("[data-testid=sd-cleanup]");
    app.wait_text("[data-testid=sd-cleanup-plan]", secs(30));
    let mut planned: Vec<String> = data_of(&app, "sd-cleanup-item", "path");
    planned.sort();
    let models = home.join("models");
    let on_disk = |q: &str| {
        walk(&models)
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == file_name(q).as_str()))
    };
    let mut losers: Vec<String> = QUANTS
        .iter()
        .filter(|q| **q != winner)
        .map(|q| {
            on_disk(q)
                .expect("downloaded into Kindling's models")
                .display()
                .to_string()
        })
        .collect();
    losers.sort();
    assert_eq!(
        planned, losers,
        "the plan lists exactly the other three files"
    );
    assert!(
        losers.iter().all(|p| Path::new(p).is_file()),
        "nothing is removed by the plan"
    );
    app.screenshot("showdown-4-cleanup-plan");

    // Use the winner, then the second click: the three go to the Trash, the winner stays.
    app.click("[data-testid=sd-use]");
    let used = app.wait_text("[data-testid=sd-notice]", secs(30));
    assert!(
        used.contains(&format!(
            "Sample ladder {winner} is now the model the server uses"
        )),
        "{used}"
    );
    app.click("[data-testid=sd-cleanup-apply]");
    let cleaned = app.wait_text("[data-testid=sd-cleaned]", secs(60));
    assert!(cleaned.starts_with("Done: 3 removed"), "{cleaned}");
    assert!(
        losers.iter().all(|p| !Path::new(p).exists()),
        "the losers are gone"
    );
    assert!(on_disk(&winner).is_some(), "the winner stays");
    app.screenshot("showdown-5-cleaned");
    drop(app);

    // The interrupted run was continued, not started over: each quick test once, and
    // the answers given before the kill are the ones kept.
    rt.block_on(async {
        let core = Core::open(Paths::new(home.clone())).await.unwrap();
        let id = core.db().latest_showdown().await.unwrap().unwrap();
        let sd = core.db().showdown(id).await.unwrap();
        assert_eq!(sd.status, kindling_core::kinds::ShowdownState::Completed);
        assert_eq!(sd.entries[1].run_id, Some(interrupted));
        let after = core.db().results(interrupted).await.unwrap();
        let quick = kindling_core::bench::suite::Suite::core()
            .select(true)
            .len();
        assert_eq!(after.len(), quick, "every quick test, each once");
        for r in &before {
            let kept = after.iter().find(|a| a.test_id == r.test_id).unwrap();
            assert_eq!(
                kept.answer_json, r.answer_json,
                "{}: never run again",
                r.test_id
            );
        }
        core.db().close().await;
    });
    assert!(
        mirror.body_bytes_sent() >= ladder_bytes,
        "the four were downloaded"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
