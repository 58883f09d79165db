//! Model files Kindling uses: checked (GGUF header) and registered in the history, with
//! the sha256 computed once and reused while the file's size and mtime are unchanged.
//! Later this also holds Kindling's own downloads and models found in place.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod found;
pub mod hf_cache;
pub mod inventory;
pub mod ollama;
pub mod pull;
pub use pull::{PullRequest, Pulled};

use crate::gguf::{self, GgufInfo};
use crate::history::{self, Database};

/// A model file that passed the checks and is in the history.
#[derive(Debug, Clone)]
pub struct RegisteredModel {
    pub id: i64,
    pub path: PathBuf,
    pub info: GgufInfo,
    pub sha256: String,
}

/// Checks that `path` is a complete GGUF file and records it. Fails before anything is
/// started when the file is missing, not GGUF, or truncated.
pub async fn register(db: &Database, path: &Path) -> crate::Result<RegisteredModel> {
    register_as(db, path, "local", None).await
}

/// [`register`] with where the file came from (`huggingface:org/name`, `ollama`, …) and,
/// when its store names files by content, the sha256 it already knows.
pub async fn register_as(
    db: &Database,
    path: &Path,
    source: &str,
    known_sha256: Option<&str>,
) -> crate::Result<RegisteredModel> {
    let path = std::fs::canonicalize(path).map_err(|_| gguf::GgufError::NotFound {
        path: path.to_path_buf(),
    })?;
    let p = path.clone();
    let info = tokio::task::spawn_blocking(move || gguf::inspect(&p))
        .await
        .expect("the GGUF reader does not panic")?;
    let meta = std::fs::metadata(&path).map_err(|source| crate::Error::Io {
        path: path.clone(),
        source,
    })?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    let key = path.to_string_lossy().into_owned();
    let cached = match known_sha256 {
        Some(sha) => Some(sha.to_string()),
        None => db.cached_sha256(&key, meta.len(), mtime_ns).await?,
    };
    let sha256 = match cached {
        Some(sha) => sha,
        None => {
            let p = path.clone();
            tokio::task::spawn_blocking(move || sha256_file(&p))
                .await
                .expect("hashing does not panic")
                .map_err(|source| crate::Error::Io {
                    path: path.clone(),
                    source,
                })?
        }
    };
    let id = db
        .upsert_model(
            &key,
            meta.len(),
            mtime_ns,
            Some(&sha256),
            source,
            &info,
            &history::now(),
        )
        .await?;
    Ok(RegisteredModel {
        id,
        path,
        info,
        sha256,
    })
}

/// The sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Models Kindling would benchmark when the user names none: its own models folder
/// first, then the sample model of a source checkout (`.runtime/models`).
pub fn default_models(models_dir: &Path, checkout_hints: &[PathBuf]) -> Vec<PathBuf> {
    let ggufs_in = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
                    && p.is_file()
            })
            .collect();
        v.sort();
        v
    };
    let mut found = ggufs_in(models_dir);
    if found.is_empty() {
        for hint in checkout_hints {
            if let Some(dir) = hint
                .ancestors()
                .map(|a| a.join(".runtime/models"))
                .find(|d| d.is_dir())
            {
                found = ggufs_in(&dir);
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_string() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("x");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn own_models_first_then_the_checkout_sample() {
        let t = tempfile::tempdir().unwrap();
        let own = t.path().join("home/models");
        let sample_dir = t.path().join("repo/.runtime/models");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::create_dir_all(&sample_dir).unwrap();
        std::fs::write(sample_dir.join("sample.gguf"), b"x").unwrap();
        let hints = vec![t.path().join("repo/target/debug")];
        assert_eq!(
            default_models(&own, &hints),
            vec![sample_dir.join("sample.gguf")]
        );
        std::fs::write(own.join("mine.GGUF"), b"x").unwrap();
        std::fs::write(own.join("notes.txt"), b"x").unwrap();
        assert_eq!(default_models(&own, &hints), vec![own.join("mine.GGUF")]);
    }
}
