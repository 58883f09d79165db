//! All SQL lives here. One [`Database::open`] creates the file if missing, turns on WAL,
//! runs the embedded migrations, and marks runs a dead Kindling left `running` as
//! `interrupted`. Queries are checked at run time (no `DATABASE_URL` at build time).

mod downloads;
mod export;
mod gpu_checks;
mod hardware;
mod models;
pub mod page;
mod quality;
mod runs;
mod served;
mod showdowns;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::ErrorCode;
pub use downloads::DownloadRecord;
pub use export::RunExport;
pub use gpu_checks::GpuCheck;
pub use models::ModelRecord;
pub use quality::{StoredResult, StoredScore};
pub use runs::{Measurement, NewRun, RunDetail, RunStatus, RunSummary};
pub use served::{ServedDay, ServedFault};
pub use showdowns::{EntryStatus, NewEntry, ShowdownEntry, StoredShowdown};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("Kindling could not open its history at {path}: {detail}. Check free disk space and that the folder is writable; if the file is damaged, move it aside and Kindling starts a new one.")]
    Open { path: PathBuf, detail: String },
    #[error(
        "Kindling could not read or write its history: {0}. Check free disk space and try again."
    )]
    Query(#[from] sqlx::Error),
    #[error("There is no run {0} in the history.")]
    RunNotFound(i64),
    #[error("There is no showdown {0} in the history. `kindling showdown` starts one and says its number.")]
    ShowdownNotFound(i64),
    #[error("Kindling cannot import that file: {0}.")]
    Import(String),
    #[error("There is no model {0} among Kindling's models.")]
    ModelNotFound(i64),
    /// A stored name this build does not know: refused, never read as a default.
    #[error("Kindling cannot read its history: {0}. Nothing was changed.")]
    Newer(#[from] crate::kinds::Unknown),
}

impl HistoryError {
    pub fn code(&self) -> ErrorCode {
        match self {
            HistoryError::RunNotFound(_) | HistoryError::ShowdownNotFound(_) => {
                ErrorCode::RunNotFound
            }
            HistoryError::ModelNotFound(_) => ErrorCode::ModelNotFound,
            _ => ErrorCode::Database,
        }
    }
}

pub type Result<T> = std::result::Result<T, HistoryError>;

/// The history database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating if needed) the database at `path` and brings it up to date.
    pub async fn open(path: &Path) -> Result<Database> {
        let open_err = |detail: String| HistoryError::Open {
            path: path.to_path_buf(),
            detail,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| open_err(e.to_string()))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let db = Database { pool };
        db.mark_orphaned_runs_interrupted().await?;
        Ok(db)
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs left `running` by a Kindling that is no longer alive become `interrupted`.
    async fn mark_orphaned_runs_interrupted(&self) -> Result<()> {
        let running: Vec<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT id, owner_pid, owner_started FROM runs WHERE status = 'running'",
        )
        .fetch_all(&self.pool)
        .await?;
        let me = i64::from(std::process::id());
        for (id, owner, started) in running {
            let alive = owner.is_some_and(|pid| pid != me && owner_lives(pid, started));
            if !alive {
                self.finish_run(
                    id,
                    RunStatus::Interrupted,
                    Some((
                        "interrupted",
                        "Kindling stopped before this run finished (it was closed, crashed, or the Mac slept or lost power). Run the benchmark again.",
                    )),
                    None,
                    None,
                    &now(),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// This process's start time, as owner records keep it (see `server::owners`).
pub(crate) fn this_process_started() -> Option<i64> {
    crate::server::owners::ProcessId::current().and_then(|p| i64::try_from(p.started).ok())
}

/// Whether the owner recorded as `pid` (started at `started`, when recorded) still runs.
/// A row from before start times were kept has only the pid to go by.
pub(crate) fn owner_lives(pid: i64, started: Option<i64>) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    match started.and_then(|s| u64::try_from(s).ok()) {
        Some(started) => {
            crate::server::owners::is_alive(crate::server::owners::ProcessId { pid, started })
        }
        None => crate::server::process::signal(pid, 0),
    }
}

/// Timestamps are stored as RFC 3339 text in UTC, with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
