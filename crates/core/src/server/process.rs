//! OS-level process control for the server: its own process group, death with its
//! parent, signals and peak memory. Who owns a server is [`super::owners`]'s.
//! The only `unsafe` in the core lives here, each use with its reason.

/// Prepares the command so the server cannot outlive Kindling.
///
/// - Its own process group: Ctrl-C in a terminal reaches Kindling only, which then
///   stops the server in order (and marks the run) instead of both dying at once.
/// - Linux: `PR_SET_PDEATHSIG(SIGKILL)`, so even `kill -9` of Kindling takes the server
///   down. This ties the child to the *thread* that spawned it: spawn from a tokio
///   worker or the main thread, never from a short-lived blocking thread.
/// - macOS has no such call: each server's owner record lets the next Kindling stop a
///   server whose owner is gone ([`super::owners::reap_orphans`]), and dropping the
///   [`super::Server`] covers panics and normal exits.
pub fn harden(cmd: &mut tokio::process::Command) {
    cmd.process_group(0);
    // Tests play macOS's missing pdeathsig on Linux with this set: then only Kindling's
    // own shutdown (`owners::stop_own`) and the reaper stand between a server and an orphan.
    #[cfg(target_os = "linux")]
    if std::env::var_os(NO_PDEATHSIG).is_some() {
        return;
    }
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

/// Set in the environment, servers are started without `PR_SET_PDEATHSIG`, as on macOS
/// (for the tests of what Kindling does on the way out).
pub const NO_PDEATHSIG: &str = "KINDLING_TEST_NO_PDEATHSIG";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm() {
        let s = "Name:\tllama-server\nVmPeak:\t 999 kB\nVmHWM:\t  262144 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(s), Some(262144 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }
}
