//! Hardware snapshots: what the machine was when a run was made.

use super::{Database, Result};
use crate::hardware::HardwareProfile;

impl Database {
    /// Stores a snapshot and returns its id.
    pub async fn insert_hardware(
        &self,
        profile: &HardwareProfile,
        bandwidth_bytes_per_second: Option<f64>,
        taken_at: &str,
    ) -> Result<i64> {
        let json = serde_json::to_string(profile).expect("profiles always serialize");
        let id = sqlx::query(
            "INSERT INTO hardware_snapshots (taken_at, profile_json, bandwidth_bytes_per_second) VALUES (?, ?, ?)",
        )
        .bind(taken_at)
        .bind(json)
        .bind(bandwidth_bytes_per_second)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// The snapshot stored with a run.
    pub async fn hardware(&self, id: i64) -> Result<Option<(HardwareProfile, Option<f64>)>> {
        let row: Option<(String, Option<f64>)> = sqlx::query_as(
            "SELECT profile_json, bandwidth_bytes_per_second FROM hardware_snapshots WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(json, bw)| serde_json::from_str(&json).ok().map(|p| (p, bw))))
    }

    /// The most recent measured memory bandwidth on this machine, bytes/s.
    pub async fn latest_bandwidth(&self) -> Result<Option<f64>> {
        let row: Option<(f64,)> = sqlx::query_as(
            "SELECT bandwidth_bytes_per_second FROM hardware_snapshots WHERE bandwidth_bytes_per_second IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }
}
