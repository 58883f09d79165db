//! Quality results (raw) and their scores.

use serde::{Deserialize, Serialize};

use super::{Database, HistoryError, Result};

/// A stored raw result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
pub struct StoredResult {
    pub test_id: String,
    pub category: String,
    pub outcome: String,
    pub answer_json: String,
}

/// A stored score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
pub struct StoredScore {
    pub test_id: String,
    pub score: f64,
    pub detail: Option<String>,
    pub grader_version: i64,
}

impl Database {
    /// Saves a test's raw result and its score together: a kill between two writes would
    /// leave an answer scored 0 for ever.
    pub async fn add_graded_result(
        &self,
        run_id: i64,
        r: &StoredResult,
        s: &StoredScore,
        now: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO quality_results (run_id, test_id, category, outcome, answer_json, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(run_id)
            .bind(&r.test_id)
            .bind(&r.category)
            .bind(&r.outcome)
            .bind(&r.answer_json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO quality_scores (run_id, test_id, score, detail, grader_version, graded_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(&s.test_id)
        .bind(s.score)
        .bind(&s.detail)
        .bind(s.grader_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored answers of `run_id` that have no score (an older build saved the answer
    /// and its grade apart, and could be killed between the two).
    pub async fn ungraded_results(&self, run_id: i64) -> Result<Vec<StoredResult>> {
        Ok(sqlx::query_as(
            "SELECT r.test_id, r.category, r.outcome, r.answer_json FROM quality_results r
             WHERE r.run_id = ?1 AND NOT EXISTS
               (SELECT 1 FROM quality_scores s WHERE s.run_id = ?1 AND s.test_id = r.test_id)
             ORDER BY r.id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn results(&self, run_id: i64) -> Result<Vec<StoredResult>> {
        Ok(sqlx::query_as("SELECT test_id, category, outcome, answer_json FROM quality_results WHERE run_id = ? ORDER BY id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Saves (or replaces) a test's score.
    pub async fn set_score(&self, run_id: i64, s: &StoredScore, now: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO quality_scores (run_id, test_id, score, detail, grader_version, graded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(run_id, test_id) DO UPDATE SET score = ?3, detail = ?4, grader_version = ?5, graded_at = ?6",
        )
        .bind(run_id)
        .bind(&s.test_id)
        .bind(s.score)
        .bind(&s.detail)
        .bind(s.grader_version)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn scores(&self, run_id: i64) -> Result<Vec<StoredScore>> {
        Ok(sqlx::query_as("SELECT test_id, score, detail, grader_version FROM quality_scores WHERE run_id = ? ORDER BY id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn set_run_config(&self, run_id: i64, config: &serde_json::Value) -> Result<()> {
        sqlx::query("UPDATE runs SET config_json = ? WHERE id = ?")
            .bind(config.to_string())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn run_config(&self, run_id: i64) -> Result<Option<serde_json::Value>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT config_json FROM runs WHERE id = ?")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
        let (cfg,) = row.ok_or(HistoryError::RunNotFound(run_id))?;
        Ok(cfg.and_then(|c| serde_json::from_str(&c).ok()))
    }

    /// The size of the model file a run measured, as recorded when it ran.
    pub async fn run_model_bytes(&self, run_id: i64) -> Result<Option<u64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT m.size_bytes FROM runs r JOIN models m ON m.id = r.model_id WHERE r.id = ?",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(b,)| u64::try_from(b).ok()))
    }

    /// Takes a run back up after an interruption: `running`, owned by this process.
    pub async fn reopen_run(&self, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE runs SET status = 'running', owner_pid = ?, owner_started = ?, finished_at = NULL, error_code = NULL, error_message = NULL WHERE id = ?")
            .bind(i64::from(std::process::id()))
            .bind(super::this_process_started())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The measurements of one name in a run (e.g. the performance figures).
    pub async fn measurement_values(&self, run_id: i64, name: &str) -> Result<Vec<f64>> {
        let rows: Vec<(f64,)> = sqlx::query_as(
            "SELECT value FROM measurements WHERE run_id = ? AND name = ? ORDER BY id",
        )
        .bind(run_id)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
