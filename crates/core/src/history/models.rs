//! Models seen on this machine: path, size, sha256 (computed once and cached by
//! path + size + mtime) and what their GGUF header says.

use serde::Serialize;

use super::{Database, Result};
use crate::gguf::GgufInfo;

/// A model file known to the history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ModelRecord {
    pub id: i64,
    pub path: String,
    pub size_bytes: i64,
    pub mtime_ns: i64,
    pub sha256: Option<String>,
    pub source: String,
    pub name: Option<String>,
    pub architecture: Option<String>,
    pub quant: Option<String>,
    pub parameter_count: Option<i64>,
}

impl Database {
    /// The cached sha256 of `path`, valid only while size and mtime are unchanged.
    pub async fn cached_sha256(
        &self,
        path: &str,
        size: u64,
        mtime_ns: i64,
    ) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT sha256 FROM models WHERE path = ? AND size_bytes = ? AND mtime_ns = ?",
        )
        .bind(path)
        .bind(size as i64)
        .bind(mtime_ns)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(s,)| s))
    }

    /// Inserts or refreshes a model and returns its id.
    #[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
    pub async fn upsert_model(
        &self,
        path: &str,
        size: u64,
        mtime_ns: i64,
        sha256: Option<&str>,
        source: &str,
        info: &GgufInfo,
        now: &str,
    ) -> Result<i64> {
        let json = serde_json::to_string(info).expect("GGUF info always serializes");
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO models (path, size_bytes, mtime_ns, sha256, name, architecture, quant, parameter_count, gguf_json, first_seen, last_seen, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)
             ON CONFLICT(path) DO UPDATE SET size_bytes = ?2, mtime_ns = ?3, sha256 = ?4, name = ?5,
               architecture = ?6, quant = ?7, parameter_count = ?8, gguf_json = ?9, last_seen = ?10, source = ?11
             RETURNING id",
        )
        .bind(path)
        .bind(size as i64)
        .bind(mtime_ns)
        .bind(sha256)
        .bind(&info.name)
        .bind(&info.architecture)
        .bind(&info.file_type)
        .bind(info.parameter_count as i64)
        .bind(json)
        .bind(now)
        .bind(source)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn model(&self, id: i64) -> Result<Option<ModelRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, path, size_bytes, mtime_ns, sha256, source, name, architecture, quant, parameter_count FROM models WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
