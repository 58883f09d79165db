//! Running llama-server: its command line ([`args`]), its log and why it stopped
//! ([`logs`]), and the supervisor that starts, watches and stops it ([`supervisor`]).

pub mod access;
pub mod args;
pub mod logs;
pub mod owners;
pub mod process;
pub mod supervisor;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
pub use args::{Behind, FlashAttention, Purpose, ServerConfig, Split};
pub use logs::{ExitCause, ExitStatus};
pub use supervisor::{Server, StartTimings};

/// Which server an event is about: several may run at once (the menu-bar server, a
/// benchmark's), and a front end shows each one's state only where it belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServerRef {
    /// Unique within this process for its lifetime.
    pub id: u32,
    pub purpose: Purpose,
}

/// The supervised server's state, as the tray icon shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServerState {
    Stopped,
    Starting {
        port: u16,
    },
    Ready {
        port: u16,
        /// Idle long enough that the model's memory was freed; the next request loads it
        /// again (a few seconds).
        #[serde(default)]
        asleep: bool,
    },
    Stopping,
    Failed {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("Port {port} is already in use by another program, so the model server cannot listen there. Quit that program, or choose another port.")]
    PortInUse {
        port: u16,
        /// The second server's port (its own setting and flag), not the menu-bar one's.
        second: bool,
    },
    #[error("The model server could not load the model: {detail}. The file may be damaged or made for a newer llama.cpp; download it again or pick another model.")]
    LoadFailed { detail: String },
    #[error("The model server ran out of memory ({detail}). Pick a smaller model or quant, use a smaller context, or put fewer layers on the GPU.")]
    OutOfMemory { detail: String },
    #[error("The model server crashed (signal {signal}). Nothing you saved was lost. Try again; if it keeps happening, try a smaller model or fewer GPU layers.")]
    Crashed { signal: i32 },
    #[error("The model server stopped unexpectedly (exit code {code}: {detail}). Try again; the log tail is kept with the run.")]
    Exited { code: i32, detail: String },
    #[error("The model server did not become ready within {seconds} s. The machine may be busy or the model too large; try again, or pick a smaller model.")]
    StartTimeout { seconds: u64 },
    #[error("Kindling could not start {path}: {source}. Reinstall Kindling.")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The model server did not answer {what}: {detail}. It may be overloaded; try again.")]
    Request { what: String, detail: String },
    #[error("The model server sent an answer Kindling cannot read ({what}: {detail}). The runtime may be too old or broken; reinstall Kindling.")]
    BadResponse { what: String, detail: String },
    #[error("The model server is not running. Start it first.")]
    NotRunning,
}

impl ServerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ServerError::PortInUse { .. } => ErrorCode::PortInUse,
            ServerError::LoadFailed { .. } => ErrorCode::ServerLoadFailed,
            ServerError::OutOfMemory { .. } => ErrorCode::ServerOutOfMemory,
            ServerError::Crashed { .. } => ErrorCode::ServerCrashed,
            ServerError::Exited { .. } => ErrorCode::ServerExited,
            ServerError::StartTimeout { .. } => ErrorCode::ServerStartTimeout,
            ServerError::Spawn { .. } => ErrorCode::RuntimeBroken,
            ServerError::Request { .. } => ErrorCode::ServerRequest,
            ServerError::BadResponse { .. } => ErrorCode::ServerBadResponse,
            ServerError::NotRunning => ErrorCode::ServerNotRunning,
        }
    }
}

impl ServerError {
    /// The error for a server that stopped on its own, listening (or trying to) on `port`.
    pub fn from_exit(cause: ExitCause, config: &ServerConfig) -> Self {
        match cause {
            ExitCause::PortInUse => ServerError::in_use(config),
            ExitCause::ModelLoadFailed { detail } => ServerError::LoadFailed { detail },
            ExitCause::OutOfMemory { detail } => ServerError::OutOfMemory { detail },
            ExitCause::Crashed { signal } => ServerError::Crashed { signal },
            ExitCause::Exited { code, detail } => ServerError::Exited { code, detail },
        }
    }
}

/// The HTTP client for talking to a local llama-server. No connection is kept idle for
/// reuse: the server may close an idle keep-alive connection just as the client reuses
/// it ("error sending request" under load). A fresh loopback connection costs ~0.1 ms.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a plain HTTP client always builds")
}

/// `port`, or a free one the OS picks when `None`.
pub fn port_or_free(port: Option<u16>) -> crate::Result<u16> {
    match port {
        Some(p) => Ok(p),
        None => free_port().map_err(|source| crate::Error::System {
            what: "find a free port on this computer",
            source,
        }),
    }
}

impl ServerError {
    /// `config`'s port is taken.
    pub fn in_use(config: &ServerConfig) -> Self {
        ServerError::PortInUse {
            port: config.port,
            second: config.purpose == Purpose::Second,
        }
    }
}

/// A free port to suggest instead of the busy `port`: the next free one above it that
/// is neither server's default (a suggestion must not clash with the other server).
pub fn suggest_port(port: u16) -> u16 {
    use crate::settings::{DEFAULT_PORT, DEFAULT_SECOND_PORT};
    (port.saturating_add(1)..=u16::MAX)
        .chain(1024..port)
        .find(|p| {
            ![DEFAULT_PORT, DEFAULT_SECOND_PORT].contains(p) && !port_is_busy("127.0.0.1", *p)
        })
        .unwrap_or(DEFAULT_PORT)
}

/// Asks the OS for a free port on loopback.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Whether something already listens on `host:port` (checked before spawning, so a
/// busy port is reported at once; the server's own log is still the final word).
pub fn port_is_busy(host: &str, port: u16) -> bool {
    std::net::TcpListener::bind((host, port)).is_err()
}
