//! Who owns each llama-server: one record per server (`servers/<pid>.json` in
//! Kindling's home) naming the server and the process that started it, each by pid
//! *and* start time, so a reused pid is never mistaken for either.
//!
//! A server belongs to whoever started it: `kindling serve`, the menu-bar app and a
//! benchmark may all run servers from one home at once, and none of them may stop
//! another's. The reaper stops only a server whose owner is provably gone — the one
//! protection macOS has against a killed Kindling, since it has no `PR_SET_PDEATHSIG`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessesToUpdate, System};

/// A process, by pid and the time it started (seconds since the epoch, as the OS says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub started: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<ProcessId> {
        ProcessId::of(std::process::id())
    }

    /// The live process `pid`, if there is one.
    pub fn of(pid: u32) -> Option<ProcessId> {
        let (_, started) = look_up(pid)?;
        Some(ProcessId { pid, started })
    }
}

/// What is known about one running server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub server: ProcessId,
    pub owner: ProcessId,
    pub port: u16,
    /// The model file it serves (records written by older builds have none).
    #[serde(default)]
    pub model: Option<PathBuf>,
}

/// The name and start time of live process `pid`.
fn look_up(pid: u32) -> Option<(String, u64)> {
    let mut sys = System::new();
    let p = Pid::from_u32(pid);
    sys.refresh_processes(ProcessesToUpdate::Some(&[p]), true);
    let proc_ = sys.process(p)?;
    // A zombie has exited; it owns nothing and serves nothing.
    if proc_.status() == sysinfo::ProcessStatus::Zombie {
        return None;
    }
    Some((
        proc_.name().to_string_lossy().into_owned(),
        proc_.start_time(),
    ))
}

/// Whether `id` still names the same live process (not a later one given its pid).
pub fn is_alive(id: ProcessId) -> bool {
    look_up(id.pid).is_some_and(|(_, started)| started == id.started)
}

fn record_path(dir: &Path, server_pid: u32) -> PathBuf {
    dir.join(format!("{server_pid}.json"))
}

/// Writes the record of a server this process just started (atomically: a reader never
/// sees half of one).
pub fn record(dir: &Path, server_pid: u32, port: u16, model: &Path) -> std::io::Result<PathBuf> {
    let missing = || std::io::Error::other("the process is already gone");
    let rec = ServerRecord {
        server: ProcessId::of(server_pid).ok_or_else(missing)?,
        owner: ProcessId::current().ok_or_else(missing)?,
        port,
        model: Some(crate::cleanup::canonical(model)),
    };
    std::fs::create_dir_all(dir)?;
    let path = record_path(dir, server_pid);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, &rec).map_err(std::io::Error::other)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

/// The records in `dir` (unreadable ones are skipped: a record half-written by a
/// process killed mid-write names nothing it can prove).
pub fn records(dir: &Path) -> Vec<(PathBuf, ServerRecord)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let rec = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            Some((p, rec))
        })
        .collect()
}

/// The pids of the servers recorded in `dir` (live or not), in no particular order.
pub fn server_pids(dir: &Path) -> Vec<u32> {
    records(dir)
        .into_iter()
        .map(|(_, r)| r.server.pid)
        .collect()
}

/// What the reaper decides for one record. Pure, given what the OS says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its owner lives: the server is theirs. Leave both alone.
    Owned,
    /// The owner is gone and the server still runs: stop it.
    Orphan,
    /// The owner is gone and so is the server (or its pid now belongs to another
    /// program): drop the record, signal nothing.
    Stale,
}

/// Decides for `rec`, given `server` (the name and start time of the process now at
/// the server's pid) and whether the owner lives.
pub fn judge(rec: &ServerRecord, server: Option<(&str, u64)>, owner_alive: bool) -> Verdict {
    let same_server = server.is_some_and(|(name, started)| {
        name.starts_with("llama-server") && started == rec.server.started
    });
    match (owner_alive, same_server) {
        // The owner keeps (and removes) its own records, whatever state they are in.
        (true, _) => Verdict::Owned,
        (false, true) => Verdict::Orphan,
        (false, false) => Verdict::Stale,
    }
}

/// Stops every server in `dir` whose owner is gone, and forgets records of servers that
/// are gone. Returns the pids it stopped. Servers with a live owner are never touched.
pub fn reap_orphans(dir: &Path) -> Vec<u32> {
    let mut stopped = Vec::new();
    for (path, rec) in records(dir) {
        let server = look_up(rec.server.pid);
        let verdict = judge(
            &rec,
            server.as_ref().map(|(n, s)| (n.as_str(), *s)),
            is_alive(rec.owner),
        );
        match verdict {
            Verdict::Owned => continue,
            Verdict::Orphan => {
                tracing::warn!(
                    pid = rec.server.pid,
                    owner = rec.owner.pid,
                    "stopping a llama-server whose Kindling is gone"
                );
                if super::process::signal(rec.server.pid, super::process::SIGKILL) {
                    stopped.push(rec.server.pid);
                }
            }
            Verdict::Stale => {}
        }
        let _ = std::fs::remove_file(path);
    }
    stopped
}

/// The model files that live servers in `dir` serve, whoever owns them (a file in use
/// is never cleaned up).
pub fn models_in_use(dir: &Path) -> Vec<PathBuf> {
    records(dir)
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| is_alive(r.server))
        .filter_map(|r| r.model)
        .collect()
}

/// Stops every server in `dir` that this process started and is still running: what
/// Quit, a closed Terminal (SIGHUP) or an update does on the way out, since macOS has no
/// `PR_SET_PDEATHSIG` to take a server down with its owner. Returns the pids stopped.
pub fn stop_own(dir: &Path) -> Vec<u32> {
    let Some(me) = ProcessId::current() else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    for (path, rec) in records(dir) {
        if rec.owner != me {
            continue;
        }
        if is_alive(rec.server) && super::process::signal(rec.server.pid, super::process::SIGKILL) {
            stopped.push(rec.server.pid);
        }
        let _ = std::fs::remove_file(path);
    }
    stopped
}

/// Servers in `dir` whose owners live, other than this process's own.
pub fn others_running(dir: &Path) -> Vec<ServerRecord> {
    let me = std::process::id();
    records(dir)
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.owner.pid != me && is_alive(r.owner) && is_alive(r.server))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> ServerRecord {
        ServerRecord {
            server: ProcessId {
                pid: 10,
                started: 100,
            },
            owner: ProcessId {
                pid: 20,
                started: 90,
            },
            port: 8080,
            model: None,
        }
    }

    #[test]
    fn a_server_with_a_live_owner_is_never_reaped() {
        assert_eq!(
            judge(&rec(), Some(("llama-server", 100)), true),
            Verdict::Owned
        );
        assert_eq!(judge(&rec(), None, true), Verdict::Owned);
    }

    #[test]
    fn a_server_whose_owner_is_gone_is_an_orphan() {
        assert_eq!(
            judge(&rec(), Some(("llama-server", 100)), false),
            Verdict::Orphan
        );
    }

    #[test]
    fn a_reused_pid_is_never_killed() {
        // Another program now has the pid, or a later llama-server does.
        assert_eq!(judge(&rec(), Some(("Safari", 100)), false), Verdict::Stale);
        assert_eq!(
            judge(&rec(), Some(("llama-server", 101)), false),
            Verdict::Stale
        );
        assert_eq!(judge(&rec(), None, false), Verdict::Stale);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::current().expect("this process exists");
        assert!(is_alive(me));
        assert!(!is_alive(ProcessId {
            started: me.started + 1,
            ..me
        }));
    }

    #[test]
    fn a_record_naming_a_live_owner_survives_the_reaper() {
        let t = tempfile::tempdir().unwrap();
        // A long-lived child stands in for the server; this test process is the owner.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let path = record(t.path(), child.id(), 1, Path::new("/m.gguf")).unwrap();
        assert_eq!(reap_orphans(t.path()), Vec::<u32>::new());
        assert!(path.exists(), "an owned server's record stays");
        assert!(
            child.try_wait().unwrap().is_none(),
            "an owned process is never signalled"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        // Its owner (this process) still lives: the record is the owner's to remove.
        assert_eq!(reap_orphans(t.path()), Vec::<u32>::new());
        assert!(path.exists());
    }

    #[test]
    fn a_torn_record_is_ignored() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("1.json"), b"{\"server\":").unwrap();
        assert!(records(t.path()).is_empty());
        assert!(reap_orphans(t.path()).is_empty());
    }
}
