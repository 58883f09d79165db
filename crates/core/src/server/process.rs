//! OS-level process control for the server: its own process group, death with its
//! parent, signals, peak memory, and stale servers a crashed Kindling left behind.
//! The only `unsafe` in the core lives here, each use with its reason.

use std::path::Path;

/// Prepares the command so the server cannot outlive Kindling.
///
/// - Its own process group: Ctrl-C in a terminal reaches Kindling only, which then
///   stops the server in order (and marks the run) instead of both dying at once.
/// - Linux: `PR_SET_PDEATHSIG(SIGKILL)`, so even `kill -9` of Kindling takes the server
///   down. This ties the child to the *thread* that spawned it: spawn from a tokio
///   worker or the main thread, never from a short-lived blocking thread.
/// - macOS has no such call: a pid file lets the next Kindling stop a leftover server
///   ([`reap_stale`]), and `kill_on_drop` covers panics and normal exits.
pub fn harden(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec and calls only prctl/getppid,
    // which are async-signal-safe; it touches no memory of the parent.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to process `pid`. Returns false when it no longer exists.
pub fn signal(pid: u32, signal: i32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a pid we spawned and still hold unreaped; no memory involved.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    rc == 0
}

pub const SIGTERM: i32 = libc::SIGTERM;
pub const SIGKILL: i32 = libc::SIGKILL;

/// Peak resident memory of a live process. Linux reports the true high-water mark
/// (`VmHWM`); elsewhere this is the current resident size, sampled by the caller.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        parse_vm_hwm(&status)
    }
    #[cfg(not(target_os = "linux"))]
    {
        use sysinfo::{Pid, ProcessesToUpdate, System};
        let mut sys = System::new();
        let p = Pid::from_u32(pid);
        sys.refresh_processes(ProcessesToUpdate::Some(&[p]), true);
        sys.process(p).map(|p| p.memory())
    }
}

/// `VmHWM:   123456 kB` from `/proc/PID/status`.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Records the pid of a server Kindling started.
pub fn write_pid_file(path: &Path, pid: u32) -> std::io::Result<()> {
    std::fs::write(path, pid.to_string())
}

/// Stops a llama-server that an earlier Kindling started and could not stop (it was
/// killed, or the machine's power went). Only a process whose name is llama-server is
/// touched, so a reused pid is never killed. Returns the pid it stopped.
pub fn reap_stale(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let _ = std::fs::remove_file(pid_file);
    use sysinfo::{Pid, ProcessesToUpdate, System};
    let mut sys = System::new();
    let p = Pid::from_u32(pid);
    sys.refresh_processes(ProcessesToUpdate::Some(&[p]), true);
    let name = sys.process(p)?.name().to_string_lossy().into_owned();
    if !name.starts_with("llama-server") {
        return None;
    }
    tracing::warn!(
        pid,
        "stopping a llama-server left behind by an earlier Kindling"
    );
    signal(pid, SIGKILL).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm() {
        let s = "Name:\tllama-server\nVmPeak:\t 999 kB\nVmHWM:\t  262144 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(s), Some(262144 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn a_pid_file_naming_another_program_is_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("llama-server.pid");
        write_pid_file(&f, std::process::id()).unwrap();
        assert_eq!(reap_stale(&f), None, "the test runner itself must survive");
        assert!(!f.exists());
        assert_eq!(reap_stale(&f), None);
    }
}
