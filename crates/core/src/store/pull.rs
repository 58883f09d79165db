//! `pull`: fetch a model from Hugging Face into Kindling's models folder, verified, and
//! register it. At most [`MAX_CONCURRENT`] downloads run at once.

use std::path::PathBuf;

use serde::Serialize;

use crate::download::{self, hf, Control, DownloadSpec, Policy};
use crate::history;
use crate::{Core, Result};

/// How many downloads may run at the same time.
pub const MAX_CONCURRENT: usize = 2;

/// What to fetch.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub repo: String,
    pub file: String,
    pub policy: Policy,
    /// The Hub's base URL; `None` uses `HF_ENDPOINT` or huggingface.co.
    pub endpoint: Option<String>,
    /// The commit to fetch (the catalog's pin); `None` is `main`.
    pub revision: Option<String>,
    /// The size and sha256 the catalog recorded at that commit: the Hub must publish
    /// exactly these, and the download must match them.
    pub expect: Option<(u64, String)>,
}

impl PullRequest {
    /// The request for a catalog id such as `gemma-3-270m:Q4_K_M` (see `recommend`).
    pub fn from_catalog(catalog: &crate::catalog::Catalog, id: &str) -> Result<PullRequest> {
        match catalog.find(id) {
            Some((_, v)) => Ok(PullRequest {
                repo: v.repo.clone(),
                file: v.file.clone(),
                policy: Policy::default(),
                endpoint: None,
                revision: v.revision.clone(),
                expect: v.bytes.zip(v.sha256.clone()),
            }),
            None => Err(download::DownloadError::NotFound {
                what: format!("{id} (not a model Kindling's catalog knows; give a repository and a file instead)"),
            }
            .into()),
        }
    }
}

/// A model that is now installed.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Pulled {
    pub model_id: i64,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub fetched: Option<download::Fetched>,
}

impl Core {
    /// Downloads `req.file` from `req.repo` (resuming a partial download), verifies it,
    /// and registers it. A file already installed and verified is not fetched again.
    pub async fn pull(&self, req: &PullRequest, control: &Control) -> Result<Pulled> {
        hf::validate(&req.repo, &req.file)?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| download::DownloadError::Network {
                file: req.file.clone(),
                detail: e.to_string(),
            })?;
        let endpoint = req.endpoint.clone().unwrap_or_else(hf::endpoint_from_env);
        let token = hf::token();
        let revision = req.revision.as_deref().unwrap_or("main");
        let (size, sha256) = hf::file_meta(
            &http,
            &endpoint,
            &req.repo,
            revision,
            &req.file,
            token.as_deref(),
        )
        .await?;
        if let Some((bytes, sha)) = &req.expect {
            if (size, sha256.as_str()) != (*bytes, sha.as_str()) {
                tracing::warn!(file = %req.file, %revision, size, %sha256, expected_size = bytes, expected_sha256 = %sha, "the Hub's file is not the one the catalog pinned");
                let fmt = crate::units::format_bytes;
                return Err(download::DownloadError::NotAsRecorded {
                    file: req.file.clone(),
                    detail: if size != *bytes {
                        format!(
                            "it is {} where Kindling recorded {}",
                            fmt(size),
                            fmt(*bytes)
                        )
                    } else {
                        "its contents differ from the ones Kindling recorded".into()
                    },
                }
                .into());
            }
        }
        let dest = self
            .paths()
            .models()
            .join(req.repo.replace('/', "--"))
            .join(&req.file);
        let source = format!("huggingface:{}", req.repo);

        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            let m = crate::store::register_as(self.db(), &dest, &source, None).await?;
            if m.sha256 == sha256 {
                return Ok(Pulled {
                    model_id: m.id,
                    path: dest,
                    bytes: size,
                    sha256,
                    fetched: None,
                });
            }
        }

        let url = hf::resolve_url_at(&endpoint, &req.repo, revision, &req.file);
        let dest_s = dest.to_string_lossy().into_owned();
        let job = self
            .db()
            .start_download(
                &req.repo,
                &req.file,
                &url,
                &dest_s,
                size,
                &sha256,
                &history::now(),
            )
            .await?;
        let _slot = self
            .download_slots()
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let spec = DownloadSpec {
            url,
            dest: dest.clone(),
            size,
            sha256: sha256.clone(),
            token,
        };
        let fetched = match download::fetch(&http, &spec, req.policy, self.events(), control).await
        {
            Ok(f) => f,
            Err(e) => {
                let status = match &e {
                    download::DownloadError::Paused { .. } => "paused",
                    download::DownloadError::Cancelled { .. } => "cancelled",
                    _ => "failed",
                };
                let msg = e.to_string();
                // On a full disk the database may not be writable either: the download's
                // own error is the one the user needs.
                if let Err(db) = self
                    .db()
                    .finish_download(
                        job,
                        status,
                        Some((e.code().as_str(), &msg)),
                        &history::now(),
                    )
                    .await
                {
                    tracing::warn!(error = %db, "could not record how the download ended");
                }
                return Err(e.into());
            }
        };
        self.db()
            .finish_download(job, "completed", None, &history::now())
            .await?;
        let m = crate::store::register_as(self.db(), &dest, &source, Some(&sha256)).await?;
        Ok(Pulled {
            model_id: m.id,
            path: dest,
            bytes: size,
            sha256,
            fetched: Some(fetched),
        })
    }
}
