//! The desktop app's figures, measured on the real app under Xvfb:
//! - launch to interactive: process start to the UI's first call after it has drawn
//!   and subscribed to events (reported by the app itself);
//! - memory as PSS summed over the app and its WebKit processes (/proc/PID/smaps_rollup),
//!   with the window open, and after the window is closed (the app left in the menu bar).
//!
//! Run: `make desktop-figures` (or `cargo bench -p kindling-desktop --bench desktop`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::{App, Display};

/// Every process whose parent chain leads to `root`, and `root`.
fn tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn app_pid() -> u32 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|&p| comm(p).starts_with("kindling-deskto"))
        .expect("the app is running")
}

fn report(label: &str, root: u32) -> f64 {
    let mut total = 0;
    let mut parts = Vec::new();
    for pid in tree(root) {
        let kb = pss_kb(pid);
        total += kb;
        parts.push(format!("{} {:.0} MB", comm(pid), kb as f64 / 1024.0));
    }
    let mb = total as f64 / 1024.0;
    println!("{label}: {mb:.0} MB PSS ({})", parts.join(", "));
    mb
}

fn main() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("kindling");
    std::fs::create_dir_all(&home).unwrap();
    let display = Display::start();
    let mut launches = Vec::new();
    let mut open = Vec::new();
    let mut tray = Vec::new();
    for round in 1..=3 {
        let app = App::launch(&display, &[("KINDLING_HOME", &home)]);
        let ms: f64 = app.wait(
            "the window to be interactive",
            Duration::from_secs(60),
            || app.attr("body", "data-interactive-ms")?.parse().ok(),
        );
        launches.push(ms);
        std::thread::sleep(Duration::from_secs(3));
        let pid = app_pid();
        println!("round {round}: launch to interactive {ms:.0} ms");
        open.push(report("  window open", pid));
        app.close_window();
        std::thread::sleep(Duration::from_secs(4));
        tray.push(report("  menu bar only", pid));
        drop(app);
        std::thread::sleep(Duration::from_secs(1));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!();
    println!(
        "median of 3: launch to interactive {:.0} ms; PSS with the window open {:.0} MB \
         (goal ≤ 313 MB = 1.2 × 261); menu bar only {:.0} MB (goal ≤ 100 MB)",
        median(&mut launches),
        median(&mut open),
        median(&mut tray)
    );
}
