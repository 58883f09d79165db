//! Keeping the machine awake during long unattended work: `caffeinate` on macOS,
//! `systemd-inhibit` on Linux where it exists. Best effort: without either, work goes
//! on and the caller is told the machine may sleep.

use std::process::{Child, Command, Stdio};

/// Holds the machine awake until dropped.
pub struct Awake(Option<Child>);

impl Awake {
    /// Whether anything is actually holding the machine awake.
    pub fn active(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts holding the machine awake, `why` shown where the OS shows it.
pub fn keep_awake(why: &str) -> Awake {
    let pid = std::process::id().to_string();
    let attempt = if cfg!(target_os = "macos") {
        Command::new("/usr/bin/caffeinate")
            .args(["-i", "-w", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    } else {
        Command::new("systemd-inhibit")
            .args([
                "--what=idle:sleep",
                "--who=Kindling",
                &format!("--why={why}"),
                "--mode=block",
                "sleep",
                "infinity",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    Awake(attempt.ok())
}
