//! Cleanup as the front ends use it: make a plan over this machine's stores and save it
//! under an id; apply a saved plan by id.

use std::path::PathBuf;
use std::time::SystemTime;

use super::{apply, scan, Applied, ApplyMode, KindlingStore, Plan, Stores};
use crate::{Core, Error, Result};

impl Core {
    /// The stores on this machine, with what the database knows about Kindling's own.
    pub async fn cleanup_stores(&self) -> Result<Stores> {
        let models = self.db().models().await?;
        let root = self.paths().models();
        let mut known: std::collections::BTreeMap<PathBuf, Option<String>> = models
            .into_iter()
            .map(|m| (PathBuf::from(m.path), m.sha256))
            .collect();
        // A valid GGUF the user dropped into the models folder is theirs, not junk.
        let r = root.clone();
        let dropped = tokio::task::spawn_blocking(move || {
            crate::store::found::scan(&crate::store::found::Roots {
                folders: vec![r],
                ..Default::default()
            })
        })
        .await
        .expect("scanning does not panic");
        for m in dropped {
            if crate::gguf::inspect(&m.path).is_ok() {
                known.entry(m.path).or_insert(None);
            }
        }
        let wanted_partials = self
            .db()
            .downloads()
            .await?
            .into_iter()
            .filter(|d| d.status == "active" || d.status == "paused")
            .map(|d| PathBuf::from(d.dest))
            .collect();
        let roots = self.model_roots();
        Ok(Stores {
            ollama: roots.ollama,
            huggingface: roots.huggingface,
            kindling: Some(KindlingStore {
                root,
                known,
                wanted_partials,
            }),
            rpc_cache: Some(self.paths().rpc_cache()),
        })
    }

    /// Scans and saves a plan; returns its id and the plan.
    pub async fn cleanup_plan(&self) -> Result<(String, Plan)> {
        let stores = self.cleanup_stores().await?;
        let plan = tokio::task::spawn_blocking(move || scan(&stores, SystemTime::now()))
            .await
            .expect("scanning does not panic");
        let id = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
        let dir = self.paths().home().join("plans");
        let io = |source| Error::Io {
            path: dir.clone(),
            source,
        };
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let json = serde_json::to_vec_pretty(&plan).expect("plans serialize");
        tokio::fs::write(dir.join(format!("{id}.json")), json)
            .await
            .map_err(io)?;
        Ok((id, plan))
    }

    /// Applies the saved plan `id` (or a path to a plan file): only the items whose
    /// paths are in `only`, or all of them when `only` is empty.
    pub async fn cleanup_apply(
        &self,
        id: &str,
        only: &[PathBuf],
        mode: ApplyMode,
    ) -> Result<Applied> {
        let by_id = self.paths().home().join("plans").join(format!("{id}.json"));
        let path = if by_id.is_file() {
            by_id
        } else {
            PathBuf::from(id)
        };
        let text = tokio::fs::read(&path).await.map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut plan: Plan = serde_json::from_slice(&text).map_err(|e| Error::PlanInvalid {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if !only.is_empty() {
            plan.items.retain(|i| only.contains(&i.path));
        }
        let stores = self.cleanup_stores().await?;
        Ok(
            tokio::task::spawn_blocking(move || apply(&plan, &stores, mode, SystemTime::now()))
                .await
                .expect("applying does not panic"),
        )
    }
}
