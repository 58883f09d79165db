//! Benchmark runs and their measurements. A run is created `running` before any work,
//! measurements are written as they are taken, and the run always ends in one of
//! `completed`, `failed` or `interrupted` — never left `running`.

use serde::{Deserialize, Serialize};

use super::{Database, HistoryError, Result};
use crate::bench::{RunKind, RunResult};

pub use crate::kinds::{RanOn, RunStatus};

/// What is known when a run starts.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub kind: RunKind,
    pub model_id: i64,
    pub hardware_id: i64,
    pub runtime_path: &'a str,
    pub runtime_version: &'a str,
    pub devices_json: &'a str,
    pub server_args: &'a [String],
    pub started_at: &'a str,
}

/// One row of `kindling history`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunSummary {
    pub id: i64,
    pub kind: RunKind,
    pub status: RunStatus,
    pub model_path: Option<String>,
    pub model_name: Option<String>,
    pub quant: Option<String>,
    pub runtime_version: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Where the model ran: `Vulkan` or `CPU` (from the devices and server arguments).
    #[serde(default)]
    pub backend: Option<RanOn>,
    /// Imported from another machine's export: shown, never used to calibrate this one.
    pub imported: bool,
    /// The figures the run produced; `None` until it completes (or when unreadable).
    pub result: Option<RunResult>,
}

/// One measured value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Measurement {
    pub name: String,
    pub repetition: Option<i64>,
    pub value: f64,
    pub unit: String,
}

/// Everything stored about a run.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunSummary,
    pub runtime_path: Option<String>,
    pub devices: serde_json::Value,
    pub server_args: Vec<String>,
    /// What format the model was asked in, in one sentence ([`crate::chat_format::asked_in`]);
    /// `None` when the run recorded no server arguments.
    pub asked_in: Option<String>,
    pub hardware: Option<crate::hardware::HardwareProfile>,
    pub bandwidth_bytes_per_second: Option<f64>,
    pub measurements: Vec<Measurement>,
    pub log_tail: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct RunExtra {
    runtime_path: Option<String>,
    devices_json: Option<String>,
    server_args_json: Option<String>,
    hardware_id: Option<i64>,
    log_tail: Option<String>,
    origin_json: Option<String>,
}

type SummaryRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

const SUMMARY_SELECT: &str = "SELECT r.id, r.kind, r.status,
    COALESCE(m.path, json_extract(r.origin_json, '$.model_path')),
    COALESCE(m.name, json_extract(r.origin_json, '$.model_name')),
    COALESCE(m.quant, json_extract(r.origin_json, '$.quant')), r.runtime_version,
    r.started_at, r.finished_at, r.error_code, r.error_message, r.summary_json,
    r.devices_json, r.server_args_json, r.imported
    FROM runs r LEFT JOIN models m ON m.id = r.model_id";

fn summary_from_row(r: SummaryRow) -> Result<RunSummary> {
    // Only this crate writes runs, so an unknown kind or status is a newer Kindling's:
    // refused, never read as a default (an older build resumed "running" work).
    let kind = RunKind::parse(&r.1)?;
    Ok(RunSummary {
        id: r.0,
        kind,
        status: RunStatus::parse(&r.2)?,
        model_path: r.3,
        model_name: r.4,
        quant: r.5,
        runtime_version: r.6,
        started_at: r.7,
        finished_at: r.8,
        error_code: r.9,
        error_message: r.10,
        result: r.11.and_then(|s| RunResult::decode(kind, &s)),
        backend: backend(r.12.as_deref(), r.13.as_deref()),
        imported: r.14,
    })
}

/// `CPU` when no GPU device was offered or the server was told to use none, else `Vulkan`;
/// `None` when the run never got as far as starting a server.
fn backend(devices_json: Option<&str>, server_args_json: Option<&str>) -> Option<RanOn> {
    let args: Vec<String> = serde_json::from_str(server_args_json?).ok()?;
    let devices: Vec<serde_json::Value> = devices_json
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let no_layers = args
        .windows(2)
        .any(|w| w[0] == "--n-gpu-layers" && w[1] == "0");
    Some(if devices.is_empty() || no_layers {
        RanOn::Cpu
    } else {
        RanOn::Vulkan
    })
}

impl Database {
    /// Creates a run in state `running`, owned by this process.
    pub async fn create_run(&self, run: &NewRun<'_>) -> Result<i64> {
        let args = serde_json::to_string(run.server_args).expect("strings serialize");
        Ok(sqlx::query(
            "INSERT INTO runs (kind, status, model_id, hardware_id, runtime_path, runtime_version, devices_json, server_args_json, started_at, owner_pid, owner_started)
             VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(run.kind.as_str())
        .bind(run.model_id)
        .bind(run.hardware_id)
        .bind(run.runtime_path)
        .bind(run.runtime_version)
        .bind(run.devices_json)
        .bind(args)
        .bind(run.started_at)
        .bind(i64::from(std::process::id()))
        .bind(super::this_process_started())
        .execute(&self.pool)
        .await?
        .last_insert_rowid())
    }

    /// Replaces the server arguments stored with a run by the exact ones its server was
    /// started with.
    pub async fn set_run_server_args(&self, run_id: i64, args: &[String]) -> Result<()> {
        sqlx::query("UPDATE runs SET server_args_json = ? WHERE id = ?")
            .bind(serde_json::to_string(args).expect("strings serialize"))
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps run `run_id`'s measurements named `names` under `busy_<name>`: figures taken
    /// while other programs kept the machine busy, shown but never used as its speed.
    pub async fn set_aside_measurements(&self, run_id: i64, names: &[&str]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for name in names {
            sqlx::query(
                "UPDATE measurements SET name = 'busy_' || name WHERE run_id = ? AND name = ?",
            )
            .bind(run_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The cores other programs kept busy while run `run_id` measured its speed, when
    /// that made the machine busy (see [`crate::bench::quiet`]).
    pub async fn measured_busy(&self, run_id: i64) -> Result<Option<f64>> {
        let others = self
            .measurement_values(run_id, crate::bench::quiet::OTHERS_CORES)
            .await?;
        let cores = self.measurement_values(run_id, "cores").await?;
        Ok(others
            .last()
            .copied()
            .zip(cores.last().copied())
            .filter(|(o, c)| crate::bench::quiet::busy(*o, *c as usize))
            .map(|(o, _)| o))
    }

    /// Stores measurements of a run in one transaction.
    pub async fn add_measurements(&self, run_id: i64, items: &[Measurement]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for m in items {
            insert_measurement(&mut tx, run_id, m).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a run. `error` is `(code, message)`; `summary` the figures; `log_tail` the
    /// server's last lines (kept for failed runs).
    pub async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<(&str, &str)>,
        summary: Option<&serde_json::Value>,
        log_tail: Option<&[String]>,
        finished_at: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE runs SET status = ?, finished_at = ?, error_code = ?, error_message = ?,
               summary_json = COALESCE(?, summary_json), log_tail = COALESCE(?, log_tail)
             WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(finished_at)
        .bind(error.map(|e| e.0))
        .bind(error.map(|e| e.1))
        .bind(summary.map(|s| s.to_string()))
        .bind(log_tail.map(|l| l.join("\n")))
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(HistoryError::RunNotFound(run_id));
        }
        Ok(())
    }

    /// Ends a run as `completed` with its figures.
    pub async fn complete_run(
        &self,
        run_id: i64,
        summary: &impl Serialize,
        finished_at: &str,
    ) -> Result<()> {
        let json = serde_json::to_value(summary).expect("summaries serialize");
        self.finish_run(
            run_id,
            RunStatus::Completed,
            None,
            Some(&json),
            None,
            finished_at,
        )
        .await
    }

    /// Runs, newest first.
    pub async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>> {
        let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
            "{SUMMARY_SELECT} ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(summary_from_row).collect()
    }

    /// Everything about one run.
    pub async fn run_detail(&self, run_id: i64) -> Result<RunDetail> {
        let row: SummaryRow = sqlx::query_as(&format!("{SUMMARY_SELECT} WHERE r.id = ?"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(HistoryError::RunNotFound(run_id))?;
        let extra: RunExtra = sqlx::query_as("SELECT runtime_path, devices_json, server_args_json, hardware_id, log_tail, origin_json FROM runs WHERE id = ?")
            .bind(run_id)
            .fetch_one(&self.pool)
            .await?;
        let measurements: Vec<Measurement> = sqlx::query_as(
            "SELECT name, repetition, value, unit FROM measurements WHERE run_id = ? ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        let RunExtra {
            runtime_path,
            devices_json: devices,
            server_args_json: args,
            hardware_id,
            log_tail,
            origin_json,
        } = extra;
        let hw = match hardware_id {
            Some(id) => self.hardware(id).await?,
            // An imported run: the machine it was measured on, as its document said.
            None => origin_json
                .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
                .and_then(|o| {
                    let hw = serde_json::from_value(o.get("hardware")?.clone()).ok()?;
                    Some((
                        hw,
                        o.get("bandwidth_bytes_per_second")
                            .and_then(serde_json::Value::as_f64),
                    ))
                }),
        };
        let server_args: Vec<String> = args
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default();
        Ok(RunDetail {
            run: summary_from_row(row)?,
            runtime_path,
            devices: devices
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(serde_json::Value::Null),
            asked_in: Some(&server_args)
                .filter(|a| !a.is_empty())
                .map(|a| crate::chat_format::asked_in(a)),
            server_args,
            bandwidth_bytes_per_second: hw.as_ref().and_then(|h| h.1),
            hardware: hw.map(|h| h.0),
            measurements,
            log_tail: log_tail
                .map(|l| l.lines().map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }
}

/// The one INSERT for a measurement (also used by import).
pub(super) async fn insert_measurement(
    conn: &mut sqlx::SqliteConnection,
    run_id: i64,
    m: &Measurement,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO measurements (run_id, name, repetition, value, unit) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(run_id)
    .bind(&m.name)
    .bind(m.repetition)
    .bind(m.value)
    .bind(&m.unit)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{backend, RanOn};

    #[test]
    fn backend_follows_devices_and_gpu_layers() {
        let dev = r#"[{"index":0,"name":"AMD Radeon Pro 575"}]"#;
        let args = |ngl: &str| format!(r#"["-m","x.gguf","--n-gpu-layers","{ngl}"]"#);
        assert_eq!(backend(Some(dev), Some(&args("99"))), Some(RanOn::Vulkan));
        assert_eq!(backend(Some(dev), Some(&args("0"))), Some(RanOn::Cpu));
        assert_eq!(backend(Some("[]"), Some(r#"["-m","x"]"#)), Some(RanOn::Cpu));
        assert_eq!(backend(Some(dev), None), None);
    }
}
