//! What the front door served (see `crate::front`): usage per model per day, and the
//! answers that went wrong (what and when, never the content).

use serde::Serialize;

use super::{Database, Result};
use crate::front::watch::Seen;
use crate::front::Evidence;

/// One model's use on one day.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServedDay {
    pub day: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// The median is not kept; the mean time to first token, ms, of the answers that had one.
    pub mean_first_piece_ms: Option<f64>,
    pub went_wrong: i64,
}

/// An answer that went wrong (its evidence is saved apart, by its owner).
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServedFault {
    pub id: i64,
    pub day: String,
    pub at: String,
    pub model: String,
    pub kind: String,
    pub detail: String,
    pub request_bytes: i64,
    pub runtime_build: String,
    /// Kindling ended the answer (else it ran on, the setting being off).
    pub ended: bool,
}

impl Database {
    /// Counts one answer of `model` on `day`.
    pub async fn add_served(&self, day: &str, model: &str, seen: &Seen) -> Result<()> {
        sqlx::query(
            "INSERT INTO served_usage (day, model, requests, prompt_tokens, completion_tokens,
                 first_piece_ms_total, first_piece_count, went_wrong)
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (day, model) DO UPDATE SET
                 requests = requests + 1,
                 prompt_tokens = prompt_tokens + ?3,
                 completion_tokens = completion_tokens + ?4,
                 first_piece_ms_total = first_piece_ms_total + ?5,
                 first_piece_count = first_piece_count + ?6,
                 went_wrong = went_wrong + ?7",
        )
        .bind(day)
        .bind(model)
        .bind(i64::try_from(seen.prompt_tokens).unwrap_or(i64::MAX))
        .bind(i64::try_from(seen.completion_tokens).unwrap_or(i64::MAX))
        .bind(seen.first_piece_ms.unwrap_or(0.0))
        .bind(i64::from(seen.first_piece_ms.is_some()))
        .bind(i64::from(seen.went_wrong.is_some()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a bad answer; returns its id and how many went wrong on `day`.
    pub async fn add_served_fault(&self, day: &str, e: &Evidence) -> Result<(i64, u32)> {
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query(
            "INSERT INTO served_faults (day, at, model, kind, detail, request_bytes,
                 runtime_build, ended)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(day)
        .bind(&e.at)
        .bind(&e.model)
        .bind(&e.kind)
        .bind(&e.detail)
        .bind(i64::try_from(e.request_bytes).unwrap_or(i64::MAX))
        .bind(&e.runtime_build)
        .bind(e.ended)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        let (today,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM served_faults WHERE day = ?1")
            .bind(day)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((id, u32::try_from(today).unwrap_or(u32::MAX)))
    }

    /// Use per model per day, the newest day first, for the last `days` days that had any.
    pub async fn served_days(&self, days: u32) -> Result<Vec<ServedDay>> {
        Ok(sqlx::query_as(
            "SELECT day, model, requests, prompt_tokens, completion_tokens,
                 CASE WHEN first_piece_count > 0
                      THEN first_piece_ms_total / first_piece_count END AS mean_first_piece_ms,
                 went_wrong
             FROM served_usage
             WHERE day IN (SELECT DISTINCT day FROM served_usage ORDER BY day DESC LIMIT ?1)
             ORDER BY day DESC, requests DESC, model",
        )
        .bind(i64::from(days))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The answers that went wrong on `day`, the newest first.
    pub async fn served_faults(&self, day: &str) -> Result<Vec<ServedFault>> {
        Ok(sqlx::query_as(
            "SELECT id, day, at, model, kind, detail, request_bytes, runtime_build, ended
             FROM served_faults WHERE day = ?1 ORDER BY id DESC",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await?)
    }
}
