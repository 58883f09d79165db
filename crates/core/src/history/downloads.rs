//! Download jobs.

use serde::Serialize;

use super::{Database, Result};

/// A download job as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DownloadRecord {
    pub id: i64,
    pub repo: String,
    pub file: String,
    pub dest: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub status: String,
    pub error_message: Option<String>,
    pub updated_at: String,
}

impl Database {
    /// Starts (or restarts) the job that writes `dest`; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_download(
        &self,
        repo: &str,
        file: &str,
        url: &str,
        dest: &str,
        size: u64,
        sha256: &str,
        now: &str,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO downloads (repo, file, url, dest, size_bytes, sha256, status, owner_pid, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?8)
             ON CONFLICT(dest) DO UPDATE SET repo = ?1, file = ?2, url = ?3, size_bytes = ?5, sha256 = ?6,
               status = 'active', owner_pid = ?7, error_code = NULL, error_message = NULL, updated_at = ?8
             RETURNING id",
        )
        .bind(repo)
        .bind(file)
        .bind(url)
        .bind(dest)
        .bind(size as i64)
        .bind(sha256)
        .bind(i64::from(std::process::id()))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Ends a job: `completed`, `paused`, `failed` or `cancelled`.
    pub async fn finish_download(
        &self,
        id: i64,
        status: &str,
        error: Option<(&str, &str)>,
        now: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE downloads SET status = ?, error_code = ?, error_message = ?, updated_at = ? WHERE id = ?")
            .bind(status)
            .bind(error.map(|e| e.0))
            .bind(error.map(|e| e.1))
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn downloads(&self) -> Result<Vec<DownloadRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, repo, file, dest, size_bytes, sha256, status, error_message, updated_at FROM downloads ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// All registered models.
    pub async fn models(&self) -> Result<Vec<super::ModelRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, path, size_bytes, mtime_ns, sha256, source, name, architecture, quant, parameter_count FROM models ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets a model (the file is not touched). Runs keep their figures.
    pub async fn forget_model(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE runs SET model_id = NULL WHERE model_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM models WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
