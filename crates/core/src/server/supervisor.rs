//! The supervisor: starts llama-server, waits until `/health` answers 200, keeps its
//! log tail, notices when it dies and says why, and stops it (SIGTERM, then SIGKILL
//! after a grace period). Readiness is always `/health`; the "listening" log line only
//! makes the next probe happen at once, so readiness is seen within milliseconds.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::logs::{
    classify_exit, is_listening_line, ExitCause, ExitStatus, LogTail, LOG_TAIL_LINES,
};
use super::{owners, process, ServerConfig, ServerError, ServerRef, ServerState};
use crate::events::{Event, Events};
use crate::runtime::Runtime;

/// How long a stopping server gets to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
const HEALTH_POLL: Duration = Duration::from_millis(25);

/// How long to wait for a model to load: a floor plus time per GB read from disk,
/// capped so a hung start is still reported. A slow disk on an old Mac reads ~100 MB/s.
pub fn ready_deadline(model_bytes: u64) -> Duration {
    let per_gb = Duration::from_secs(15);
    let gb = model_bytes as f64 / 1e9;
    (Duration::from_secs(30) + per_gb.mul_f64(gb)).min(Duration::from_secs(20 * 60))
}

/// When things happened during start, for the report.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct StartTimings {
    /// From spawn to `/health` = 200.
    pub load_ms: f64,
    /// From the server's "listening" log line to Kindling's first successful request
    /// (negative when the request won the race with the log line).
    pub readiness_latency_ms: Option<f64>,
}

struct Shared {
    logs: Mutex<LogTail>,
    listening_at: Mutex<Option<Instant>>,
    log_activity: Notify,
    /// The server said it freed the model's memory after idling (`--sleep-idle-seconds`).
    asleep: std::sync::atomic::AtomicBool,
    /// Who hears about sleeping and waking.
    events: Events,
    id: ServerRef,
    port: u16,
}

/// A running, supervised llama-server. Dropping it kills the server.
pub struct Server {
    pid: u32,
    config: ServerConfig,
    shared: Arc<Shared>,
    exit: watch::Receiver<Option<ExitStatus>>,
    stop_requested: Arc<std::sync::atomic::AtomicBool>,
    events: Events,
    id: ServerRef,
    /// This server's owner record (see [`owners`]), removed when it stops.
    record: Option<PathBuf>,
    http: reqwest::Client,
    pub timings: StartTimings,
    /// The front door apps reach this server by, when it has one.
    door: Mutex<Option<crate::front::Door>>,
}

impl Server {
    /// Starts llama-server with `config` and returns once `/health` answers 200.
    /// Fails with the reason the server gave if it exits first, with `StartTimeout`
    /// after `deadline`, and stops the server if `cancel` fires. With `records`, the
    /// server's owner record goes there (see [`owners`]).
    pub async fn start(
        runtime: &Runtime,
        config: ServerConfig,
        deadline: Duration,
        events: &Events,
        records: Option<&std::path::Path>,
        cancel: &CancellationToken,
    ) -> Result<Server, crate::Error> {
        static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let id = ServerRef {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            purpose: config.purpose,
        };
        let (host, port) = config.listen();
        if super::port_is_busy(host, port) {
            return Err(failed(events, id, ServerError::in_use(&config).into()));
        }
        events.emit(Event::ServerState {
            server: id,
            state: ServerState::Starting { port: config.port },
        });
        let mut cmd = runtime.command();
        if let Some(b) = &config.behind {
            cmd.env("LLAMA_API_KEY", &b.key);
        }
        cmd.args(config.to_args())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        process::harden(&mut cmd);
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().map_err(|source| {
            let e = ServerError::Spawn {
                path: runtime.path.clone(),
                source,
            };
            failed(events, id, e.into())
        })?;
        let pid = child.id().unwrap_or(0);
        let record =
            records.and_then(
                |dir| match owners::record(dir, pid, config.port, &config.model) {
                    Ok(path) => Some(path),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not record who owns the server");
                        None
                    }
                },
            );
        let shared = Arc::new(Shared {
            logs: Mutex::new(LogTail::new(LOG_TAIL_LINES)),
            listening_at: Mutex::new(None),
            log_activity: Notify::new(),
            asleep: Default::default(),
            events: events.clone(),
            id,
            port: config.port,
        });
        let out = child.stdout.take();
        let err = child.stderr.take();
        let readers: Vec<_> = [
            out.map(|o| Box::new(o) as Box<dyn AsyncRead + Unpin + Send>),
            err.map(|e| Box::new(e) as Box<dyn AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|r| tokio::spawn(read_lines(r, shared.clone())))
        .collect();

        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(async move {
            let status = child
                .wait()
                .await
                .map(ExitStatus::from)
                .unwrap_or(ExitStatus::Unknown);
            // Let the readers drain the pipes so the cause is in the tail.
            for r in readers {
                let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
            }
            let _ = exit_tx.send(Some(status));
        });

        let mut server = Server {
            pid,
            config,
            shared,
            exit: exit_rx,
            stop_requested: Default::default(),
            events: events.clone(),
            id,
            record,
            http: super::http_client(),
            timings: StartTimings::default(),
            door: Mutex::new(None),
        };
        match server.wait_ready(deadline, cancel).await {
            Ok(()) => {
                let ready_at = Instant::now();
                // The first 200 can win the race with our reading of the "listening" line
                // from the pipe; give the reader a moment so the latency is still measured
                // (negative then: Kindling was ready first).
                let mut listening = *server.shared.listening_at.lock().expect("lock");
                let waited = Instant::now();
                while listening.is_none() && waited.elapsed() < Duration::from_millis(500) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    listening = *server.shared.listening_at.lock().expect("lock");
                }
                server.timings = StartTimings {
                    load_ms: ms(ready_at - spawned_at),
                    readiness_latency_ms: listening.map(|l| {
                        if ready_at >= l {
                            ms(ready_at - l)
                        } else {
                            -ms(l - ready_at)
                        }
                    }),
                };
                events.emit(Event::ServerState {
                    server: id,
                    state: ServerState::Ready {
                        port: server.config.port,
                        asleep: false,
                    },
                });
                Ok(server)
            }
            Err(e) => {
                server.stop().await;
                Err(failed(events, id, e))
            }
        }
    }

    async fn wait_ready(
        &mut self,
        deadline: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), crate::Error> {
        let give_up = Instant::now() + deadline;
        let url = format!("{}/health", self.base_url());
        loop {
            if let Some(cause) = self.exit_cause() {
                return Err(ServerError::from_exit(cause, &self.config).into());
            }
            if cancel.is_cancelled() {
                return Err(crate::Error::Cancelled);
            }
            if Instant::now() >= give_up {
                return Err(ServerError::StartTimeout {
                    seconds: deadline.as_secs(),
                }
                .into());
            }
            let probe = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(&probe, Ok(r) if r.status() == reqwest::StatusCode::OK) {
                return Ok(());
            }
            let mut exit = self.exit.clone();
            tokio::select! {
                _ = tokio::time::sleep(HEALTH_POLL) => {}
                _ = self.shared.log_activity.notified() => {}
                _ = exit.changed() => {}
                _ = cancel.cancelled() => {}
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// Which server this is, as its events name it.
    pub fn id(&self) -> ServerRef {
        self.id
    }
    pub fn port(&self) -> u16 {
        self.config.port
    }
    /// Whether the server has freed the model's memory after idling (it loads it again on
    /// the next request).
    pub fn asleep(&self) -> bool {
        self.shared.asleep.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
    /// Where llama-server itself answers, `http://127.0.0.1:PORT` (the OpenAI API is
    /// under `/v1`). Behind the front door that is the door's loopback port, whose key
    /// only the door holds: apps use [`Server::port`].
    pub fn base_url(&self) -> String {
        let (host, port) = self.config.listen();
        format!("http://{host}:{port}")
    }

    /// Keeps the front door that leads to this server: it closes when the server stops.
    pub fn keep_door(&self, door: crate::front::Door) {
        *self.door.lock().expect("door lock") = Some(door);
    }
    /// The latest lines the server logged.
    pub fn log_tail(&self) -> Vec<String> {
        self.shared.logs.lock().expect("lock").lines()
    }
    /// Peak resident memory of the server so far.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        process::peak_rss_bytes(self.pid)
    }

    /// Why the server is gone, if it stopped without being asked.
    pub fn exit_cause(&self) -> Option<ExitCause> {
        let status = (*self.exit.borrow())?;
        if self
            .stop_requested
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        Some(classify_exit(status, &self.log_tail()))
    }

    /// Resolves when the server dies on its own, with the reason. Use it in a
    /// `select!` beside requests so a crash ends them at once instead of at a timeout.
    pub async fn died(&self) -> ServerError {
        let mut exit = self.exit.clone();
        let _ = exit.wait_for(Option::is_some).await;
        let cause = self.exit_cause().unwrap_or(ExitCause::Exited {
            code: -1,
            detail: "stopped".into(),
        });
        let err = ServerError::from_exit(cause, &self.config);
        self.events.emit(Event::ServerState {
            server: self.id,
            state: ServerState::Failed {
                code: err.code(),
                message: err.to_string(),
            },
        });
        err
    }

    /// Stops the server: SIGTERM, then SIGKILL after [`STOP_GRACE`]. Returns how it ended.
    pub async fn stop(&self) -> ExitStatus {
        // Nothing new reaches a server on its way out; the answers on their way stay
        // open until the process is gone, so one it cuts short ends with the error event
        // (see `Door::stop_accepting`), and only then does the door close.
        let door = self.door.lock().expect("door lock").take();
        if let Some(d) = &door {
            d.stop_accepting();
        }
        self.stop_requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.events.emit(Event::ServerState {
            server: self.id,
            state: ServerState::Stopping,
        });
        let mut exit = self.exit.clone();
        if exit.borrow().is_none() {
            process::signal(self.pid, process::SIGTERM);
            if tokio::time::timeout(STOP_GRACE, exit.wait_for(Option::is_some))
                .await
                .is_err()
            {
                tracing::warn!(pid = self.pid, "llama-server ignored SIGTERM; killing it");
                process::signal(self.pid, process::SIGKILL);
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), exit.wait_for(Option::is_some))
                        .await;
            }
        }
        drop(door);
        if let Some(f) = &self.record {
            let _ = std::fs::remove_file(f);
        }
        self.events.emit(Event::ServerState {
            server: self.id,
            state: ServerState::Stopped,
        });
        let status = (*exit.borrow()).unwrap_or(ExitStatus::Unknown);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.borrow().is_none() {
            process::signal(self.pid, process::SIGKILL);
        }
        if let Some(f) = &self.record {
            let _ = std::fs::remove_file(f);
        }
    }
}

async fn read_lines(reader: impl AsyncRead + Unpin, shared: Arc<Shared>) {
    // Bytes, not `lines()`: a stray non-UTF-8 byte must not stop the reading, or the
    // pipe fills and the server blocks.
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if is_listening_line(&line) {
            *shared.listening_at.lock().expect("lock") = Some(Instant::now());
            shared.log_activity.notify_one();
        }
        if let Some(asleep) = sleep_change(&line) {
            shared
                .asleep
                .store(asleep, std::sync::atomic::Ordering::SeqCst);
            shared.events.emit(Event::ServerState {
                server: shared.id,
                state: ServerState::Ready {
                    port: shared.port,
                    asleep,
                },
            });
        }
        tracing::trace!(target: "llama_server", "{line}");
        shared.logs.lock().expect("lock").push(line);
    }
}

/// `Some(true)` when llama-server says it freed the model after idling, `Some(false)`
/// when it loaded it again.
fn sleep_change(line: &str) -> Option<bool> {
    if line.contains("server is entering sleeping state") {
        Some(true)
    } else if line.contains("server is exiting sleeping state") {
        Some(false)
    } else {
        None
    }
}

/// Says that server `id` failed to start (so the tray shows why, whatever the step that
/// failed), and hands the error back.
fn failed(events: &Events, id: ServerRef, e: crate::Error) -> crate::Error {
    events.emit(Event::ServerState {
        server: id,
        state: ServerState::Failed {
            code: e.code(),
            message: e.to_string(),
        },
    });
    e
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_grows_with_model_size_and_is_capped() {
        assert_eq!(ready_deadline(0), Duration::from_secs(30));
        assert!(ready_deadline(20_000_000_000) > ready_deadline(4_000_000_000));
        assert_eq!(ready_deadline(u64::MAX / 2), Duration::from_secs(1200));
    }
}
