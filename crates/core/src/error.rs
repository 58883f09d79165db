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
    System,
    QueueInvalid,
    MachineInvalid,
    DoesNotFit,
    NotKept,
    PeerUnknown,
    PeerUnreachable,
    PeerRefused,
    PeerBuildMismatch,
    PairingFailed,
    PeerLost,
    PeersInvalid,
}

impl ErrorCode {
    /// Every code (kept complete by the test that ties names together).
    pub const ALL: [ErrorCode; 42] = [
        ErrorCode::RuntimeNotFound,
        ErrorCode::RuntimeBroken,
        ErrorCode::ModelNotFound,
        ErrorCode::ModelNotGguf,
        ErrorCode::ModelTruncated,
        ErrorCode::ModelUnreadable,
        ErrorCode::PortInUse,
        ErrorCode::ServerStartTimeout,
        ErrorCode::ServerLoadFailed,
        ErrorCode::ServerCrashed,
        ErrorCode::ServerOutOfMemory,
        ErrorCode::ServerExited,
        ErrorCode::ServerRequest,
        ErrorCode::ServerBadResponse,
        ErrorCode::ServerNotRunning,
        ErrorCode::Database,
        ErrorCode::RunNotFound,
        ErrorCode::Settings,
        ErrorCode::Io,
        ErrorCode::Cancelled,
        ErrorCode::Paused,
        ErrorCode::DiskFull,
        ErrorCode::DownloadCorrupt,
        ErrorCode::DownloadNetwork,
        ErrorCode::DownloadNotFound,
        ErrorCode::DownloadUnauthorized,
        ErrorCode::DownloadUnverifiable,
        ErrorCode::PlanStale,
        ErrorCode::NetworkKey,
        ErrorCode::Busy,
        ErrorCode::System,
        ErrorCode::QueueInvalid,
        ErrorCode::MachineInvalid,
        ErrorCode::DoesNotFit,
        ErrorCode::NotKept,
        ErrorCode::PeerUnknown,
        ErrorCode::PeerUnreachable,
        ErrorCode::PeerRefused,
        ErrorCode::PeerBuildMismatch,
        ErrorCode::PairingFailed,
        ErrorCode::PeerLost,
        ErrorCode::PeersInvalid,
    ];

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
            ErrorCode::System => "system",
            ErrorCode::QueueInvalid => "queue_invalid",
            ErrorCode::MachineInvalid => "machine_invalid",
            ErrorCode::DoesNotFit => "does_not_fit",
            ErrorCode::NotKept => "not_kept",
            ErrorCode::PeerUnknown => "peer_unknown",
            ErrorCode::PeerUnreachable => "peer_unreachable",
            ErrorCode::PeerRefused => "peer_refused",
            ErrorCode::PeerBuildMismatch => "peer_build_mismatch",
            ErrorCode::PairingFailed => "pairing_failed",
            ErrorCode::PeerLost => "peer_lost",
            ErrorCode::PeersInvalid => "peers_invalid",
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
    #[error(transparent)]
    Peer(#[from] crate::peers::PeerError),
    #[error("Kindling could not use {path}: {source}. Check that the folder exists and that you may write to it.")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The cleanup plan {path} cannot be read ({detail}). Make a new plan and try again.")]
    PlanInvalid {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error(
        "The list of benchmarks in {path} cannot be read ({detail}). Fix that line and try again."
    )]
    QueueInvalid {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("The machine profile {path} cannot be read ({detail}). Make one on that Mac with Kindling's detect command (as JSON), or pick one of the profiles Kindling ships.")]
    MachineInvalid {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("{model} {why}. {advice}")]
    PairDoesNotFit {
        model: String,
        why: String,
        advice: &'static str,
    },
    /// Not a file or folder of the owner's: a port, the random source.
    #[error("Kindling could not {what} ({source}). Try again; if it keeps happening, restart the computer.")]
    System {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("Stopped because you asked. Nothing was lost; run it again when you are ready.")]
    Cancelled,
    /// Something Kindling keeps for a while only (the evidence of a bad answer) is gone.
    #[error("{what}")]
    NotKept { what: String },
    /// Another job holds what this one needs (`what` says which and when it is free).
    #[error("{what}")]
    Busy { what: String },
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
            Error::Peer(e) => e.code(),
            Error::Io { .. } => ErrorCode::Io,
            Error::PlanInvalid { .. } => ErrorCode::PlanStale,
            Error::QueueInvalid { .. } => ErrorCode::QueueInvalid,
            Error::MachineInvalid { .. } => ErrorCode::MachineInvalid,
            Error::PairDoesNotFit { .. } => ErrorCode::DoesNotFit,
            Error::System { .. } => ErrorCode::System,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Busy { .. } => ErrorCode::Busy,
            Error::NotKept { .. } => ErrorCode::NotKept,
        }
    }

    /// What to do next, beyond the message, for each front end to say in its own words.
    pub fn hint(&self) -> Option<Hint> {
        use crate::download::DownloadError as D;
        use crate::runtime::RuntimeError as R;
        use crate::server::ServerError as S;
        Some(match self {
            Error::Runtime(R::NotFound { .. } | R::Broken { .. })
            | Error::Server(S::Spawn { .. }) => Hint::ReinstallRuntime,
            Error::Server(S::PortInUse { port, second }) => Hint::ChooseAnotherPort {
                suggested: crate::server::suggest_port(*port),
                second: *second,
            },
            Error::History(crate::history::HistoryError::RunNotFound(_)) => Hint::ListRuns,
            Error::History(crate::history::HistoryError::ModelNotFound(_)) => Hint::ListModels,
            Error::PlanInvalid { .. } => Hint::MakeCleanupPlan,
            Error::Download(D::DiskFull { .. }) => Hint::FreeDiskSpace,
            Error::Download(D::Unauthorized { .. }) => Hint::SetHfToken,
            Error::Access(crate::server::access::AccessError::NoKey { .. })
            | Error::Access(crate::server::access::AccessError::WeakKey { .. }) => {
                Hint::RenewNetworkKey
            }
            _ => return None,
        })
    }

    /// `{code, message, hint}` for a front end: what the UI shows and branches on.
    pub fn to_report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code(),
            message: self.to_string(),
            hint: self.hint(),
        }
    }
}

/// What to do next after an error, as data: the CLI names a command, the app a screen
/// or a button. Core messages never name either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hint {
    /// The runtime is missing or broken.
    ReinstallRuntime,
    /// Another program has the port.
    ChooseAnotherPort {
        suggested: u16,
        /// The second server's port was busy (its own flag and setting).
        second: bool,
    },
    /// See which runs there are.
    ListRuns,
    /// See which models there are.
    ListModels,
    /// Scan again for a fresh cleanup plan.
    MakeCleanupPlan,
    /// Reclaim disk space (cleanup can help).
    FreeDiskSpace,
    /// Give Kindling a Hugging Face access token.
    SetHfToken,
    /// Turn network access off and on again for a new key.
    RenewNetworkKey,
}

/// The shape in which an error crosses to a front end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub hint: Option<Hint>,
}

/// Result with the core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a code is added without a place in [`ErrorCode::ALL`].
    fn position(c: ErrorCode) -> usize {
        ErrorCode::ALL
            .iter()
            .position(|x| *x == c)
            .unwrap_or(usize::MAX)
            + match c {
                ErrorCode::RuntimeNotFound
                | ErrorCode::RuntimeBroken
                | ErrorCode::ModelNotFound
                | ErrorCode::ModelNotGguf
                | ErrorCode::ModelTruncated
                | ErrorCode::ModelUnreadable
                | ErrorCode::PortInUse
                | ErrorCode::ServerStartTimeout
                | ErrorCode::ServerLoadFailed
                | ErrorCode::ServerCrashed
                | ErrorCode::ServerOutOfMemory
                | ErrorCode::ServerExited
                | ErrorCode::ServerRequest
                | ErrorCode::ServerBadResponse
                | ErrorCode::ServerNotRunning
                | ErrorCode::Database
                | ErrorCode::RunNotFound
                | ErrorCode::Settings
                | ErrorCode::Io
                | ErrorCode::Cancelled
                | ErrorCode::Paused
                | ErrorCode::DiskFull
                | ErrorCode::DownloadCorrupt
                | ErrorCode::DownloadNetwork
                | ErrorCode::DownloadNotFound
                | ErrorCode::DownloadUnauthorized
                | ErrorCode::DownloadUnverifiable
                | ErrorCode::PlanStale
                | ErrorCode::NetworkKey
                | ErrorCode::Busy
                | ErrorCode::System
                | ErrorCode::QueueInvalid
                | ErrorCode::MachineInvalid
                | ErrorCode::DoesNotFit
                | ErrorCode::NotKept
                | ErrorCode::PeerUnknown
                | ErrorCode::PeerUnreachable
                | ErrorCode::PeerRefused
                | ErrorCode::PeerBuildMismatch
                | ErrorCode::PairingFailed
                | ErrorCode::PeerLost
                | ErrorCode::PeersInvalid => 0,
            }
    }

    #[test]
    fn every_codes_stored_name_is_its_serialized_name() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(position(c) < ErrorCode::ALL.len());
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str(), "{c:?}");
            let back: ErrorCode = serde_json::from_value(c.as_str().into()).unwrap();
            assert_eq!(back, c);
            seen.insert(c.as_str());
        }
        assert_eq!(seen.len(), 42, "every code once, and 42 codes in all");
    }

    #[test]
    fn core_messages_name_no_command_flag_or_make_target() {
        use crate::server::ServerError;
        let io = || std::io::Error::other("boom");
        let errors: Vec<Error> = vec![
            crate::runtime::RuntimeError::NotFound {
                looked: vec!["PATH".into()],
            }
            .into(),
            crate::runtime::RuntimeError::Broken {
                path: "/x".into(),
                reason: "r".into(),
            }
            .into(),
            ServerError::PortInUse {
                port: 11480,
                second: false,
            }
            .into(),
            ServerError::Spawn {
                path: "/x".into(),
                source: io(),
            }
            .into(),
            crate::history::HistoryError::RunNotFound(3).into(),
            crate::history::HistoryError::ModelNotFound(3).into(),
            Error::PlanInvalid {
                path: "/p".into(),
                detail: "d".into(),
            },
            Error::QueueInvalid {
                path: "/q".into(),
                detail: "d".into(),
            },
            Error::System {
                what: "find a free port on this computer",
                source: io(),
            },
            crate::download::DownloadError::DiskFull {
                file: "f".into(),
                needed: 1,
                free: 0,
            }
            .into(),
            crate::store::PullRequest::from_catalog(
                &crate::catalog::Catalog::builtin(),
                "no-such-model",
            )
            .unwrap_err(),
        ];
        for e in errors {
            let m = e.to_string();
            for banned in ["`kindling", "kindling ", "--", "make setup"] {
                assert!(!m.contains(banned), "{banned:?} in {m}");
            }
        }
        // The port after the first server's default is the second server's: never
        // suggested (a busy 11480 used to suggest 11481).
        let Some(Hint::ChooseAnotherPort { suggested, second }) =
            Error::from(ServerError::PortInUse {
                port: 11480,
                second: true,
            })
            .hint()
        else {
            panic!("a busy port suggests another")
        };
        assert!(second);
        assert!(
            suggested > 11481 && !crate::server::port_is_busy("127.0.0.1", suggested),
            "{suggested}"
        );
    }
}
