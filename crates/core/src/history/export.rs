//! A run and its results as one versioned JSON document, so two machines can be
//! compared side by side and results can be published; and importing it back.

use serde::{Deserialize, Serialize};

use super::{Database, HistoryError, Measurement, Result, RunDetail, StoredResult, StoredScore};

pub const EXPORT_FORMAT: &str = "kindling-run";
/// 2: the run's figures are `result` (tagged with the run's kind); 1 called them `summary`.
pub const EXPORT_VERSION: u32 = 2;

/// The exported document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunExport {
    pub format: String,
    pub version: u32,
    pub run: serde_json::Value,
    pub config: Option<serde_json::Value>,
    pub results: Vec<StoredResult>,
    pub scores: Vec<StoredScore>,
}

impl Database {
    pub async fn export_run(&self, run_id: i64) -> Result<RunExport> {
        let detail: RunDetail = self.run_detail(run_id).await?;
        Ok(RunExport {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            run: serde_json::to_value(&detail).expect("serializes"),
            config: self.run_config(run_id).await?,
            results: self.results(run_id).await?,
            scores: self.scores(run_id).await?,
        })
    }

    /// Imports a document as a new run (kept apart by its `imported` status note);
    /// returns the new run's id.
    pub async fn import_run(&self, doc: &RunExport, now: &str) -> Result<i64> {
        if doc.format != EXPORT_FORMAT || doc.version > EXPORT_VERSION {
            return Err(HistoryError::Import(format!(
                "this is not a Kindling run document this version can read (format {:?}, version {})",
                doc.format, doc.version
            )));
        }
        let r = &doc.run;
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let status = s("status").unwrap_or_else(|| "completed".into());
        if !["completed", "failed", "interrupted"].contains(&status.as_str()) {
            return Err(HistoryError::Import(format!(
                "a run in state {status:?} cannot be imported"
            )));
        }
        let kind = s("kind").unwrap_or_else(|| "speed".into());
        if crate::bench::RunKind::parse(&kind).is_err() {
            return Err(HistoryError::Import(format!(
                "it holds a kind of run this version does not know ({kind:?})"
            )));
        }
        let figures = r
            .get("result")
            .or_else(|| r.get("summary"))
            .filter(|v| !v.is_null());
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query(
            "INSERT INTO runs (kind, status, runtime_version, devices_json, server_args_json, started_at, finished_at, error_code, error_message, summary_json, config_json, log_tail, imported, origin_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        )
        .bind(&kind)
        .bind(&status)
        .bind(s("runtime_version"))
        .bind(r.get("devices").map(|v| v.to_string()))
        .bind(r.get("server_args").map(|v| v.to_string()))
        .bind(s("started_at").unwrap_or_else(|| now.to_string()))
        .bind(s("finished_at"))
        .bind(s("error_code"))
        .bind(s("error_message"))
        .bind(figures.map(|v| v.to_string()))
        .bind(doc.config.as_ref().map(|v| v.to_string()))
        .bind(format!("imported {now} (model was {})", s("model_path").unwrap_or_default()))
        .bind(r.to_string())
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        let measurements: Vec<Measurement> = r
            .get("measurements")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        for m in measurements {
            super::runs::insert_measurement(&mut tx, id, &m).await?;
        }
        for q in &doc.results {
            sqlx::query("INSERT INTO quality_results (run_id, test_id, category, outcome, answer_json, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(id)
                .bind(&q.test_id)
                .bind(&q.category)
                .bind(&q.outcome)
                .bind(&q.answer_json)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        for sc in &doc.scores {
            sqlx::query("INSERT INTO quality_scores (run_id, test_id, score, detail, grader_version, graded_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(id)
                .bind(&sc.test_id)
                .bind(sc.score)
                .bind(&sc.detail)
                .bind(sc.grader_version)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }
}
