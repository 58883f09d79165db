//! Whether the machine was quiet while a speed was measured. Spotlight, a backup or a
//! second model running beside a benchmark can halve its speed, and a candidate must never
//! be ruled out, nor predictions calibrated, on such a figure. A [`Probe`] spans a
//! measurement and says how many cores *other* programs kept busy meanwhile (all the
//! processor's use, less Kindling's own: this process, everything it started — the model
//! server; on Linux the app's web view — and any process named); [`wait_for_quiet`]
//! waits for them to stop. On macOS the web view's WebKit processes are started by
//! launchd, not by the app, so they count as others: a window redrawing progress uses
//! far less than the half core that makes a machine busy.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// The measurement name under which a run keeps the cores others used while it measured.
pub const OTHERS_CORES: &str = "others_cpu_cores";

/// What other programs did to the processor during a span.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Cores' worth of processor time other programs used, on average.
    pub others_cores: f64,
    /// The processor's logical cores.
    pub cores: usize,
}

impl Load {
    /// Busy when others used half a core or more, or more than a sixth of a big machine:
    /// on 2 cores, one busy core halves a CPU model's speed.
    pub fn busy(&self) -> bool {
        busy(self.others_cores, self.cores)
    }

    /// "other programs kept 1.8 of 2 cores busy".
    pub fn describe(&self) -> String {
        format!(
            "other programs kept {:.1} of {} cores busy",
            self.others_cores, self.cores
        )
    }
}

/// What the owner is told about figures taken on a busy machine.
pub fn busy_sentence(others_cores: f64) -> String {
    format!(
        "other programs kept {others_cores:.1} cores busy while this was measured, even after waiting: this speed is lower than the machine can do and was not used to predict others; measure again when it is quiet"
    )
}

/// Whether `others_cores` of `cores` is a busy machine (see [`Load::busy`]). Pure.
pub fn busy(others_cores: f64, cores: usize) -> bool {
    others_cores >= (cores as f64 / 6.0).max(0.5)
}

/// Spans a measurement: started before, finished after.
pub struct Probe {
    sys: System,
    own: Vec<Pid>,
    started: Instant,
}

impl Probe {
    /// Starts watching; `own` are processes whose use is not "others" beside this one
    /// and its descendants.
    pub fn start(own: &[u32]) -> Probe {
        let mut sys = System::new();
        sys.refresh_cpu_usage();
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        let mut own: Vec<Pid> = own.iter().map(|p| Pid::from_u32(*p)).collect();
        own.push(Pid::from_u32(std::process::id()));
        Probe {
            sys,
            own,
            started: Instant::now(),
        }
    }

    /// What others did since [`Probe::start`]. A span shorter than sysinfo's minimum
    /// interval is stretched to it.
    pub fn finish(mut self) -> Load {
        let min = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
        if let Some(rest) = min.checked_sub(self.started.elapsed()) {
            std::thread::sleep(rest);
        }
        self.sys.refresh_cpu_usage();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        let cores = self.sys.cpus().len().max(1);
        let all = f64::from(self.sys.global_cpu_usage()) / 100.0 * cores as f64;
        let ours = |pid: Pid| {
            let mut at = Some(pid);
            // A parent chain is short; the bound guards against a cycle in a racy read.
            for _ in 0..64 {
                let Some(p) = at else { return false };
                if self.own.contains(&p) {
                    return true;
                }
                at = self.sys.process(p).and_then(|p| p.parent());
            }
            false
        };
        let own: f64 = self
            .sys
            .processes()
            .iter()
            .filter(|(pid, _)| ours(**pid))
            .map(|(_, p)| f64::from(p.cpu_usage()) / 100.0)
            .sum();
        Load {
            others_cores: (all - own).clamp(0.0, cores as f64),
            cores,
        }
    }
}

/// Samples the machine every `step` until others are quiet or `patience` has passed;
/// the last sample. `own` are the processes to leave out.
pub async fn wait_for_quiet(own: &[u32], step: Duration, patience: Duration) -> Load {
    let until = Instant::now() + patience;
    loop {
        let probe = Probe::start(own);
        tokio::time::sleep(step).await;
        let load = tokio::task::spawn_blocking(move || probe.finish())
            .await
            .expect("a probe does not panic");
        if !load.busy() || Instant::now() >= until {
            return load;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_scales_with_the_machine() {
        assert!(!busy(0.3, 2) && busy(0.6, 2));
        assert!(!busy(1.5, 16) && busy(3.0, 16));
    }

    /// A real competing program (a shell spinning, started apart from this process by
    /// `setsid`-less double fork: its parent is gone) is seen as others' use; a spinning
    /// child of this process is Kindling's own.
    #[test]
    fn a_spinning_program_makes_the_machine_busy_unless_it_is_ours() {
        // What the machine does without us, after waiting for it to be quiet: the test
        // needs one quiet core to tell anything apart.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let base = rt.block_on(wait_for_quiet(
            &[],
            Duration::from_secs(1),
            Duration::from_secs(120),
        ));
        assert!(
            !base.busy(),
            "the machine never quieted: {}",
            base.describe()
        );
        let spin = "while :; do :; done";
        // `sh -c 'sh -c … &'`: the spinner's parent exits, so it is not our descendant.
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("sh -c '{spin}' >/dev/null 2>&1 & echo $!")])
            .output()
            .unwrap();
        let other: u32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let probe = Probe::start(&[]);
        std::thread::sleep(Duration::from_millis(1500));
        let seen = probe.finish();
        let probe = Probe::start(&[other]);
        std::thread::sleep(Duration::from_millis(1500));
        let named = probe.finish();
        std::process::Command::new("kill")
            .arg(other.to_string())
            .status()
            .unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", spin])
            .spawn()
            .unwrap();
        // Past its exec: a process first seen mid-exec starts its count again.
        std::thread::sleep(Duration::from_millis(300));
        let probe = Probe::start(&[]);
        std::thread::sleep(Duration::from_millis(1500));
        let child_load = probe.finish();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            seen.others_cores > base.others_cores + 0.7,
            "{seen:?} over {base:?}"
        );
        assert!(seen.busy(), "{}", seen.describe());
        assert!(
            named.others_cores < seen.others_cores - 0.5,
            "named {named:?} vs {seen:?}"
        );
        assert!(
            child_load.others_cores < seen.others_cores - 0.5,
            "our child {child_load:?} vs others {seen:?}"
        );
    }
}
