//! Showdowns and their entries (see `crate::showdown`): every state change is written as
//! it happens, so a showdown resumes where it stopped.

use serde::{Deserialize, Serialize};

use super::{Database, HistoryError, Result};

pub use crate::kinds::{EntryStatus, ShowdownState};

/// One candidate of a showdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ShowdownEntry {
    pub id: i64,
    pub position: i64,
    /// "Gemma 4 E4B Q4_K_M (thinking off)"
    pub label: String,
    /// What to download when the file is not on disk.
    pub catalog_id: Option<String>,
    pub model_path: Option<String>,
    /// Thinking on or off, for templates that toggle it.
    pub think: Option<bool>,
    pub status: EntryStatus,
    /// The quality run that measured it.
    pub run_id: Option<i64>,
    pub error: Option<String>,
    /// The full-suite run that settles a tie it is in (see `crate::showdown::tie`).
    pub full_run_id: Option<i64>,
}

/// A showdown as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StoredShowdown {
    pub id: i64,
    pub status: ShowdownState,
    pub goal: crate::recommend::Goal,
    pub quick: bool,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub entries: Vec<ShowdownEntry>,
    /// What became of a tie at the top, once the night looked at it.
    pub tie: Option<crate::showdown::tie::TieOutcome>,
}

/// What a new showdown's entry starts with.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub label: String,
    pub catalog_id: Option<String>,
    pub model_path: Option<String>,
    pub think: Option<bool>,
}

type EntryRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

impl Database {
    /// Creates a showdown with its entries, in one transaction.
    pub async fn create_showdown(
        &self,
        goal: crate::recommend::Goal,
        quick: bool,
        entries: &[NewEntry],
        now: &str,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query(
            "INSERT INTO showdowns (status, goal, quick, created_at) VALUES ('running', ?, ?, ?)",
        )
        .bind(goal.as_str())
        .bind(quick)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        for (i, e) in entries.iter().enumerate() {
            sqlx::query(
                "INSERT INTO showdown_entries (showdown_id, position, label, catalog_id, model_path, think, status)
                 VALUES (?, ?, ?, ?, ?, ?, 'pending')",
            )
            .bind(id)
            .bind(i as i64)
            .bind(&e.label)
            .bind(&e.catalog_id)
            .bind(&e.model_path)
            .bind(e.think)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn showdown(&self, id: i64) -> Result<StoredShowdown> {
        // Every stored name is read strictly: a newer Kindling's status is refused, never
        // taken for "pending" (which would measure a finished candidate again).
        #[allow(clippy::type_complexity)]
        let row: (i64, String, String, bool, String, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT id, status, goal, quick, created_at, finished_at, tie_json FROM showdowns WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(HistoryError::ShowdownNotFound(id))?;
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT id, position, label, catalog_id, model_path, think, status, run_id, error, full_run_id
             FROM showdown_entries WHERE showdown_id = ? ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows
            .into_iter()
            .map(|r| {
                Ok(ShowdownEntry {
                    id: r.0,
                    position: r.1,
                    label: r.2,
                    catalog_id: r.3,
                    model_path: r.4,
                    think: r.5.map(|t| t != 0),
                    status: EntryStatus::parse(&r.6)?,
                    run_id: r.7,
                    error: r.8,
                    full_run_id: r.9,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StoredShowdown {
            id: row.0,
            status: ShowdownState::parse(&row.1)?,
            goal: crate::recommend::Goal::parse(&row.2)?,
            quick: row.3,
            created_at: row.4,
            finished_at: row.5,
            entries,
            // A tie written by a newer Kindling in a form this one cannot read is looked
            // at again (settling resumes from the entries' runs), never taken as settled.
            tie: row.6.and_then(|t| serde_json::from_str(&t).ok()),
        })
    }

    /// The newest showdown still running (left so by a quit or a crash), if any.
    pub async fn unfinished_showdown(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM showdowns WHERE status = 'running' ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// The showdown to continue when the owner asks: the newest that is still running
    /// or that the owner stopped (never a completed one).
    pub async fn continuable_showdown(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM showdowns WHERE status IN ('running', 'cancelled') ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// The newest showdown, whatever its status.
    pub async fn latest_showdown(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM showdowns ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    pub async fn set_entry(
        &self,
        entry_id: i64,
        status: EntryStatus,
        model_path: Option<&str>,
        run_id: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE showdown_entries SET status = ?, model_path = COALESCE(?, model_path),
               run_id = COALESCE(?, run_id), error = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(model_path)
        .bind(run_id)
        .bind(error)
        .bind(entry_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps the full-suite run that settles a tie on its entry, the moment it exists.
    pub async fn set_full_run(&self, entry_id: i64, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE showdown_entries SET full_run_id = ? WHERE id = ?")
            .bind(run_id)
            .bind(entry_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps what became of the tie at the top of showdown `id`.
    pub async fn set_tie(&self, id: i64, tie: &crate::showdown::tie::TieOutcome) -> Result<()> {
        sqlx::query("UPDATE showdowns SET tie_json = ? WHERE id = ?")
            .bind(serde_json::to_string(tie).expect("a tie serializes"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Copies run `from`'s answers, their grades and its measurements into run `to`, in
    /// one transaction: a tie's full-suite run starts from its quick run's (greedy
    /// answers; asking again would repeat them). Answers `to` already has are left.
    pub async fn carry_answers(&self, from: i64, to: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO quality_results (run_id, test_id, category, outcome, answer_json, created_at)
             SELECT ?1, test_id, category, outcome, answer_json, created_at FROM quality_results f
             WHERE f.run_id = ?2
               AND NOT EXISTS (SELECT 1 FROM quality_results t WHERE t.run_id = ?1 AND t.test_id = f.test_id)",
        )
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO quality_scores (run_id, test_id, score, detail, grader_version, graded_at)
             SELECT ?1, test_id, score, detail, grader_version, graded_at FROM quality_scores f
             WHERE f.run_id = ?2
               AND NOT EXISTS (SELECT 1 FROM quality_scores t WHERE t.run_id = ?1 AND t.test_id = f.test_id)",
        )
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO measurements (run_id, name, repetition, value, unit, detail_json)
             SELECT ?1, name, repetition, value, unit, detail_json FROM measurements
             WHERE run_id = ?2 AND NOT EXISTS (SELECT 1 FROM measurements WHERE run_id = ?1)",
        )
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a stopped showdown running again, to continue it.
    pub async fn reopen_showdown(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE showdowns SET status = 'running', finished_at = NULL WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims showdown `id` for process `me`. While another live process holds it, it is
    /// not claimed and that owner is returned; an owner that is gone (quit, crash,
    /// reboot) is replaced. Compare-and-swap, so of two Kindlings claiming at once one
    /// wins.
    pub async fn claim_showdown(
        &self,
        id: i64,
        me: crate::server::owners::ProcessId,
    ) -> Result<Option<crate::server::owners::ProcessId>> {
        use crate::server::owners::{is_alive, ProcessId};
        loop {
            let (pid, started): (Option<i64>, Option<i64>) =
                sqlx::query_as("SELECT owner_pid, owner_started FROM showdowns WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(HistoryError::ShowdownNotFound(id))?;
            let holder = match (pid, started) {
                (Some(p), Some(s)) => Some(ProcessId {
                    pid: u32::try_from(p).unwrap_or(0),
                    started: u64::try_from(s).unwrap_or(0),
                }),
                _ => None,
            };
            if let Some(h) = holder.filter(|h| *h != me && is_alive(*h)) {
                return Ok(Some(h));
            }
            let swapped = sqlx::query(
                "UPDATE showdowns SET owner_pid = ?, owner_started = ?
                 WHERE id = ? AND owner_pid IS ? AND owner_started IS ?",
            )
            .bind(i64::from(me.pid))
            .bind(i64::try_from(me.started).unwrap_or(i64::MAX))
            .bind(id)
            .bind(pid)
            .bind(started)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if swapped == 1 {
                return Ok(None);
            }
        }
    }

    /// Gives showdown `id` up, if `me` holds it.
    pub async fn release_showdown(
        &self,
        id: i64,
        me: crate::server::owners::ProcessId,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE showdowns SET owner_pid = NULL, owner_started = NULL
             WHERE id = ? AND owner_pid = ? AND owner_started = ?",
        )
        .bind(id)
        .bind(i64::from(me.pid))
        .bind(i64::try_from(me.started).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live process running showdown `id`, if any.
    pub async fn showdown_owner(
        &self,
        id: i64,
    ) -> Result<Option<crate::server::owners::ProcessId>> {
        let row: Option<(Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT owner_pid, owner_started FROM showdowns WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some((Some(p), Some(s))) => Some(crate::server::owners::ProcessId {
                pid: u32::try_from(p).unwrap_or(0),
                started: u64::try_from(s).unwrap_or(0),
            })
            .filter(|o| crate::server::owners::is_alive(*o)),
            _ => None,
        })
    }

    pub async fn finish_showdown(&self, id: i64, status: ShowdownState, now: &str) -> Result<()> {
        sqlx::query("UPDATE showdowns SET status = ?, finished_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
