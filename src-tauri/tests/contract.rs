//! The contract between the Rust side and the UI cannot drift unnoticed:
//! - the TypeScript types in ui/src/lib/bindings are exactly what the Rust types
//!   generate (regenerate with `KINDLING_BLESS=1 cargo test -p kindling-desktop --test contract`);
//! - every command has a capability entry, and the UI calls exactly the commands that exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kindling_desktop::command_names::COMMANDS;
use ts_rs::TS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

fn export_all(dir: &Path) {
    use kindling_core::*;
    use kindling_desktop::{commands::SettingsChange, dto::*};
    ServerStatus::export_all_to(dir).unwrap();
    WithPlan::export_all_to(dir).unwrap();
    kindling_desktop::dto::ServedView::export_all_to(dir).unwrap();
    BenchStatus::export_all_to(dir).unwrap();
    BenchFinished::export_all_to(dir).unwrap();
    CleanupView::export_all_to(dir).unwrap();
    AppInfo::export_all_to(dir).unwrap();
    MachineChoice::export_all_to(dir).unwrap();
    Rescored::export_all_to(dir).unwrap();
    kindling_desktop::commands::PageShown::export_all_to(dir).unwrap();
    kindling_desktop::other_macs::Lending::export_all_to(dir).unwrap();
    kindling_core::peers::status::PeerStatus::export_all_to(dir).unwrap();
    kindling_core::peers::nearby::Nearby::export_all_to(dir).unwrap();
    kindling_desktop::dto::ShowdownStatus::export_all_to(dir).unwrap();
    kindling_core::showdown::Proposal::export_all_to(dir).unwrap();
    kindling_core::showdown::LosersCleanup::export_all_to(dir).unwrap();
    bench::answers::AnswerView::export_all_to(dir).unwrap();
    SettingsChange::export_all_to(dir).unwrap();
    Detection::export_all_to(dir).unwrap();
    recommend::machine::Recommendation::export_all_to(dir).unwrap();
    history::RunSummary::export_all_to(dir).unwrap();
    history::RunDetail::export_all_to(dir).unwrap();
    history::GpuCheck::export_all_to(dir).unwrap();
    store::inventory::Inventory::export_all_to(dir).unwrap();
    store::Pulled::export_all_to(dir).unwrap();
    cleanup::Applied::export_all_to(dir).unwrap();
    Settings::export_all_to(dir).unwrap();
    Event::export_all_to(dir).unwrap();
    ErrorReport::export_all_to(dir).unwrap();
    // ts-rs writes 64-bit integers as `bigint`, but serde_json sends them as JSON numbers,
    // which JavaScript reads as `number` (exact below 2^53: ids and byte counts fit).
    for (name, text) in read_dir(dir) {
        let fixed = text.replace(": bigint", ": number");
        if fixed != text {
            std::fs::write(dir.join(name), fixed).unwrap();
        }
    }
}

#[test]
fn typescript_bindings_match_the_rust_types() {
    let committed = root().join("ui/src/lib/bindings");
    if std::env::var_os("KINDLING_BLESS").is_some() {
        for old in read_dir(&committed).keys() {
            std::fs::remove_file(committed.join(old)).unwrap();
        }
        export_all(&committed);
        return;
    }
    let fresh = tempfile::tempdir().unwrap();
    export_all(fresh.path());
    let want = read_dir(fresh.path());
    let have = read_dir(&committed);
    assert!(want.len() > 20, "only {} types exported", want.len());
    let stale: Vec<_> = want
        .iter()
        .filter(|(name, text)| have.get(*name) != Some(*text))
        .map(|(name, _)| name.as_str())
        .chain(
            have.keys()
                .filter(|n| !want.contains_key(*n))
                .map(String::as_str),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "ui/src/lib/bindings is out of date for {stale:?}; run \
         KINDLING_BLESS=1 cargo test -p kindling-desktop --test contract"
    );
}

#[test]
fn every_command_has_exactly_one_capability_entry() {
    let text = std::fs::read_to_string(root().join("src-tauri/capabilities/main.json")).unwrap();
    let caps: serde_json::Value = serde_json::from_str(&text).unwrap();
    let allowed: Vec<String> = caps["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .filter_map(|p| p.strip_prefix("allow-"))
        .map(|p| p.replace('-', "_"))
        .collect();
    let mut want: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
    let mut have = allowed.clone();
    want.sort();
    have.sort();
    assert_eq!(
        have, want,
        "capabilities/main.json and command_names.rs differ"
    );
    // Nothing generic reaches the page: no fs, shell, opener, clipboard or dialog plugin
    // permissions (those run only from Rust, behind Kindling's own commands).
    for p in caps["permissions"].as_array().unwrap() {
        let p = p.as_str().unwrap_or_default();
        assert!(
            p.starts_with("allow-") || p.starts_with("core:event:"),
            "unexpected permission {p}"
        );
    }
}

#[test]
fn the_ui_calls_exactly_the_commands_that_exist() {
    let api = std::fs::read_to_string(root().join("ui/src/lib/api.ts")).unwrap();
    let re = regex_lite(&api);
    let mut called: Vec<&str> = re;
    called.sort();
    called.dedup();
    let mut want: Vec<&str> = COMMANDS.to_vec();
    want.sort();
    assert_eq!(
        called, want,
        "ui/src/lib/api.ts and command_names.rs differ"
    );
}

/// The names in `invoke<...>("name"` calls.
fn regex_lite(text: &str) -> Vec<&str> {
    text.match_indices("invoke<")
        .filter_map(|(i, _)| {
            let rest = &text[i..];
            let open = rest.find("(\"")? + 2;
            let close = rest[open..].find('"')?;
            Some(&rest[open..open + close])
        })
        .collect()
}
