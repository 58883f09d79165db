//! The SQL sandbox: a model's query run against a test's tables in a throwaway
//! in-memory SQLite, for the SQL grader.

use super::*;

/// Runs a SELECT in a fresh in-memory SQLite holding the test's table, rows as text.
pub(super) async fn run_sql(
    setup: &str,
    query: &str,
) -> std::result::Result<Vec<Vec<String>>, String> {
    use sqlx::Row;
    if query.contains(';') {
        return Err("only one statement is allowed".into());
    }
    let (setup, query) = (setup.to_string(), query.to_string());
    let work = async move {
        // A one-connection pool, not a bare connection: `&mut SqliteConnection` as an
        // executor is not `Send` for every lifetime (sqlx #1636); `&Pool` is.
        let c = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(&setup)
            .execute(&c)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::query(&query)
            .fetch_all(&c)
            .await
            .map_err(|e| e.to_string())?;
        let text = rows
            .iter()
            .take(1000)
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<i64, _>(i)
                            .map(|v| v.to_string())
                            .or_else(|_| r.try_get::<f64, _>(i).map(|v| format!("{v:?}")))
                            .or_else(|_| r.try_get::<String, _>(i))
                            .unwrap_or_else(|_| "NULL".into())
                    })
                    .collect()
            })
            .collect();
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .map_err(|_| "the query ran too long".to_string())?
}
