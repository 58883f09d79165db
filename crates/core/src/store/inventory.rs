//! The models this machine has: Kindling's own downloads and models found in place,
//! each checked and registered, and those the owning tool has since deleted.

use std::path::PathBuf;

use serde::Serialize;

use super::found::{self, FoundModel, Roots};
use crate::{Core, Result};

/// One usable model.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InstalledModel {
    pub id: i64,
    /// `kindling`, `ollama`, `huggingface`, `lmstudio` or `folder`.
    pub source: String,
    /// How its owner names it.
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub quant: Option<String>,
    pub architecture: Option<String>,
}

/// What removing one model does, said before it is done.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Removal {
    pub model_id: i64,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub path: PathBuf,
    /// Disk space it gives back (0 when the file is only forgotten).
    pub bytes: u64,
    /// The file goes to the Trash (Kindling's own download); otherwise it is only
    /// forgotten, its owner's file left in place.
    pub moves_file: bool,
    /// "Move … to the Trash and forget it."
    pub what: String,
}

/// A model Kindling knew that is gone from disk.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MissingModel {
    pub id: i64,
    pub path: PathBuf,
    pub source: String,
    /// What happened and what to do, in plain words.
    pub message: String,
}

/// Everything `kindling models list` shows.
#[derive(Debug, Clone, Serialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Inventory {
    pub installed: Vec<InstalledModel>,
    pub missing: Vec<MissingModel>,
    /// GGUF-named files that are not usable models, with why.
    pub unusable: Vec<(PathBuf, String)>,
}

fn tool_name(source: &str) -> &str {
    match source.split(':').next().unwrap_or(source) {
        "ollama" => "Ollama",
        "huggingface" | "hf" => "the Hugging Face cache",
        "lmstudio" => "LM Studio",
        "folder" => "its folder",
        "kindling" => "Kindling's models folder",
        // A file named on the command line (`local`), or a source this version does not know.
        _ => "you",
    }
}

impl Core {
    /// Where found-in-place models are looked for.
    pub fn model_roots(&self) -> Roots {
        Roots::standard(self.settings().model_folders)
    }

    /// Finds, checks and registers every model; reports those that disappeared.
    pub async fn inventory(&self, roots: &Roots) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let own = self.paths().models();
        let mut all_roots = roots.clone();
        all_roots.folders.push(own.clone());
        let r = all_roots.clone();
        let found: Vec<FoundModel> = tokio::task::spawn_blocking(move || found::scan(&r))
            .await
            .expect("scanning does not panic");
        for f in found {
            let kindling_owned = f.path.starts_with(&own);
            let source = if kindling_owned {
                "kindling".to_string()
            } else {
                format!("{}:{}", f.source, f.name)
            };
            match super::register_as(self.db(), &f.path, &source, f.sha256.as_deref()).await {
                Ok(m) => inv.installed.push(InstalledModel {
                    id: m.id,
                    source: if kindling_owned {
                        "kindling".into()
                    } else {
                        f.source
                    },
                    name: f.name,
                    path: f.path,
                    bytes: f.bytes,
                    quant: m.info.file_type,
                    architecture: m.info.architecture,
                }),
                Err(e) => inv.unusable.push((f.path, e.to_string())),
            }
        }
        for m in self.db().models().await? {
            let path = PathBuf::from(&m.path);
            if path.exists() {
                continue;
            }
            let (tool, name) = m
                .source
                .split_once(':')
                .map_or((m.source.as_str(), ""), |(t, n)| (t, n));
            let label = if name.is_empty() {
                m.path.clone()
            } else {
                name.to_string()
            };
            inv.missing.push(MissingModel {
                id: m.id,
                message: format!(
                    "{label} is no longer in {} (it was deleted or moved there). Kindling will not use it until it is back; removing it from the list forgets it.",
                    tool_name(tool)
                ),
                path,
                source: m.source,
            });
        }
        Ok(inv)
    }

    /// Every model a server can start with: the installed ones, then the models Kindling
    /// uses when none is named (the sample beside the app) that are not among them.
    pub async fn servable_models(&self) -> Result<Vec<InstalledModel>> {
        let mut out = self.inventory(&self.model_roots()).await?.installed;
        for path in self.default_models() {
            if out.iter().any(|m| m.path == path) {
                continue;
            }
            if let Ok(m) = super::register(self.db(), &path).await {
                out.push(InstalledModel {
                    id: m.id,
                    source: "folder".into(),
                    name: m.info.name.clone().unwrap_or_else(|| {
                        path.file_name()
                            .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
                    }),
                    bytes: m.info.file_size,
                    quant: m.info.file_type,
                    architecture: m.info.architecture,
                    path,
                });
            }
        }
        Ok(out)
    }

    /// What removing model `id` would do: a download of Kindling's own goes to the Trash;
    /// a model another tool keeps is only forgotten (its file is theirs).
    pub async fn removal(&self, id: i64) -> Result<Removal> {
        let Some(m) = self.db().model(id).await? else {
            return Err(crate::history::HistoryError::ModelNotFound(id).into());
        };
        let path = PathBuf::from(&m.path);
        let own = path.starts_with(self.paths().models())
            || std::fs::canonicalize(self.paths().models()).is_ok_and(|o| path.starts_with(o));
        let moves_file = own && path.exists();
        let what = if moves_file {
            format!(
                "Move {} ({}) to the Trash and forget it.",
                m.path,
                crate::hardware::format_bytes(m.size_bytes as u64)
            )
        } else {
            format!(
                "Forget {} (the file belongs to {} and stays where it is).",
                m.path,
                tool_name(&m.source)
            )
        };
        Ok(Removal {
            model_id: id,
            path,
            bytes: if moves_file { m.size_bytes as u64 } else { 0 },
            moves_file,
            what,
        })
    }

    /// Removes a model (see [`Core::removal`]); with `apply` false, only says what it
    /// would do. Returns what was (or would be) done.
    pub async fn remove_model(&self, id: i64, apply: bool) -> Result<String> {
        let r = self.removal(id).await?;
        if apply {
            self.apply_removal(&r).await?;
        }
        Ok(r.what)
    }

    /// Carries out a removal planned by [`Core::removal`].
    pub async fn apply_removal(&self, r: &Removal) -> Result<()> {
        if r.moves_file && r.path.exists() {
            trash::delete(&r.path).map_err(|e| crate::Error::Io {
                path: r.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        self.db().forget_model(r.model_id).await?;
        Ok(())
    }
}
