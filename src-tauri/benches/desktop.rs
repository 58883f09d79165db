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

use support::{alive, comm, pss_kb, tree, App, Display};

fn report(label: &str, root: u32) -> f64 {
    let mut total = 0;
    let mut parts = Vec::new();
    for pid in tree(root).into_iter().filter(|&p| alive(p)) {
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
        let pid = app.app_pid().expect("the app is running");
        println!("round {round}: launch to interactive {ms:.0} ms");
        open.push(report("  window open", pid));
        app.press_ctrl_w();
        std::thread::sleep(Duration::from_secs(4));
        assert_eq!(
            comm(pid),
            "kindling-deskto",
            "the app quit when its window closed"
        );
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
