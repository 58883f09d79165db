//! Stable error codes and the core's error type.
//!
//! Every module has its own `thiserror` enum; [`Error`] gathers them so a front end
//! holds one type. The UI branches on [`ErrorCode`] (stable, snake_case on the wire),
//! never on message text. Messages say what happened and what to do next.

use serde::{Deserialize, Serialize};

/// A stable identifier for every kind of failure the front ends may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    RuntimeNotFound,
    RuntimeBroken,
    ModelNotFound,
    ModelNotGguf,
    ModelTruncated,
    ModelUnreadable,
    PortInUse,
    ServerStartTimeout,
    ServerLoadFailed,
    ServerCrashed,
    ServerOutOfMemory,
    ServerExited,
    ServerRequest,
    ServerBadResponse,
    ServerNotRunning,
    Database,
    RunNotFound,
    Settings,
    Io,
    Cancelled,
    Paused,
    DiskFull,
    DownloadCorrupt,
    DownloadNetwork,
    DownloadNotFound,
    DownloadUnauthorized,
    DownloadUnverifiable,
    PlanStale,
    NetworkKey,
    Busy,
}

impl ErrorCode {
    /// The code as it appears in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RuntimeNotFound => "runtime_not_found",
            ErrorCode::RuntimeBroken => "runtime_broken",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::ModelNotGguf => "model_not_gguf",
            ErrorCode::ModelTruncated => "model_truncated",
            ErrorCode::ModelUnreadable => "model_unreadable",
            ErrorCode::PortInUse => "port_in_use",
            ErrorCode::ServerStartTimeout => "server_start_timeout",
            ErrorCode::ServerLoadFailed => "server_load_failed",
            ErrorCode::ServerCrashed => "server_crashed",
            ErrorCode::ServerOutOfMemory => "server_out_of_memory",
            ErrorCode::ServerExited => "server_exited",
            ErrorCode::ServerRequest => "server_request",
            ErrorCode::ServerBadResponse => "server_bad_response",
            ErrorCode::ServerNotRunning => "server_not_running",
            ErrorCode::Database => "database",
            ErrorCode::RunNotFound => "run_not_found",
            ErrorCode::Settings => "settings",
            ErrorCode::Io => "io",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Paused => "paused",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::DownloadCorrupt => "download_corrupt",
            ErrorCode::DownloadNetwork => "download_network",
            ErrorCode::DownloadNotFound => "download_not_found",
            ErrorCode::DownloadUnauthorized => "download_unauthorized",
            ErrorCode::DownloadUnverifiable => "download_unverifiable",
            ErrorCode::PlanStale => "plan_stale",
            ErrorCode::NetworkKey => "network_key",
            ErrorCode::Busy => "busy",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any failure the core reports to a front end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    #[error(transparent)]
    Access(#[from] crate::server::access::AccessError),
    #[error("Kindling could not use {path}: {source}. Check that the folder exists and that you may write to it.")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The cleanup plan {path} cannot be read ({detail}). Run `kindling cleanup` again to make a new one.")]
    PlanInvalid {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("Stopped because you asked. Nothing was lost; run it again when you are ready.")]
    Cancelled,
}

impl Error {
    /// The stable code a front end branches on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Runtime(e) => e.code(),
            Error::Gguf(e) => e.code(),
            Error::Server(e) => e.code(),
            Error::History(e) => e.code(),
            Error::Settings(_) => ErrorCode::Settings,
            Error::Download(e) => e.code(),
            Error::Access(crate::server::access::AccessError::Io { .. }) => ErrorCode::Io,
            Error::Access(_) => ErrorCode::NetworkKey,
            Error::Io { .. } => ErrorCode::Io,
            Error::PlanInvalid { .. } => ErrorCode::PlanStale,
            Error::Cancelled => ErrorCode::Cancelled,
        }
    }

    /// `{code, message}` for a front end: what the UI shows and what it branches on.
    pub fn to_report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

/// The shape in which an error crosses to a front end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
}

/// Result with the core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
