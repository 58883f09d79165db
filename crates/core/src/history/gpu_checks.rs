//! Verdicts of the first-use GPU check (see `crate::gpu_check`).

use serde::{Deserialize, Serialize};

use super::{Database, Result};

/// Whether a GPU may be used for one model architecture with one runtime build.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GpuCheck {
    /// The runtime build, as every run records it.
    pub runtime: String,
    /// The model architecture (GGUF `general.architecture`, e.g. `gemma3`).
    pub architecture: String,
    /// The GPU, by name.
    pub device: String,
    pub usable: bool,
    /// Why, in plain words.
    pub reason: String,
    pub checked_at: String,
}

impl Database {
    /// The verdict for this runtime, architecture and device, if it was checked.
    pub async fn gpu_check(
        &self,
        runtime: &str,
        architecture: &str,
        device: &str,
    ) -> Result<Option<GpuCheck>> {
        Ok(sqlx::query_as(
            "SELECT runtime, architecture, device, usable, reason, checked_at FROM gpu_checks
             WHERE runtime = ?1 AND architecture = ?2 AND device = ?3",
        )
        .bind(runtime)
        .bind(architecture)
        .bind(device)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Keeps a verdict (a newer one for the same key replaces it).
    pub async fn save_gpu_check(&self, c: &GpuCheck) -> Result<()> {
        sqlx::query(
            "INSERT INTO gpu_checks (runtime, architecture, device, usable, reason, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (runtime, architecture, device) DO UPDATE
             SET usable = ?4, reason = ?5, checked_at = ?6",
        )
        .bind(&c.runtime)
        .bind(&c.architecture)
        .bind(&c.device)
        .bind(c.usable)
        .bind(&c.reason)
        .bind(&c.checked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets every verdict; returns how many there were.
    pub async fn forget_gpu_checks(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM gpu_checks")
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Every verdict, newest first.
    pub async fn gpu_checks(&self) -> Result<Vec<GpuCheck>> {
        Ok(sqlx::query_as(
            "SELECT runtime, architecture, device, usable, reason, checked_at FROM gpu_checks
             ORDER BY checked_at DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
