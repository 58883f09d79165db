//! Hugging Face: where files live (`HF_ENDPOINT` honoured), their published size and
//! sha256 (`/api/models/{repo}/tree/main`), and the user's access token, kept in the OS
//! keychain — never in a plain file.

use serde::Deserialize;

use super::DownloadError;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
const KEYCHAIN_SERVICE: &str = "app.kindling.huggingface";
const KEYCHAIN_USER: &str = "token";

/// The Hub's base URL: `HF_ENDPOINT` when set (mirrors, tests), else huggingface.co.
pub fn endpoint_from_env() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `{endpoint}/{repo}/resolve/main/{file}`.
pub fn resolve_url(endpoint: &str, repo: &str, file: &str) -> String {
    resolve_url_at(endpoint, repo, "main", file)
}

/// `{endpoint}/{repo}/resolve/{revision}/{file}`: a pinned commit, or `main`.
pub fn resolve_url_at(endpoint: &str, repo: &str, revision: &str, file: &str) -> String {
    format!(
        "{}/{repo}/resolve/{revision}/{file}",
        endpoint.trim_end_matches('/')
    )
}

/// Checks `org/name` and a relative file path, so neither can climb out of the models folder.
pub fn validate(repo: &str, file: &str) -> Result<(), DownloadError> {
    let ok_part = |p: &str| !p.is_empty() && p != "." && p != ".." && !p.contains('\\');
    let repo_ok = repo.split('/').count() == 2 && repo.split('/').all(ok_part);
    let file_ok = !file.starts_with('/') && file.split('/').all(ok_part);
    if repo_ok && file_ok {
        Ok(())
    } else {
        Err(DownloadError::NotFound {
            what: format!("{repo} {file} (a repository is written org/name, and a file as its path in the repository)"),
        })
    }
}

#[derive(Debug, Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<Lfs>,
}

#[derive(Debug, Deserialize)]
struct Lfs {
    oid: String,
    size: u64,
}

/// The published size and sha256 of `file` in `repo` at `revision` (`main`, or a commit).
pub async fn file_meta(
    http: &reqwest::Client,
    endpoint: &str,
    repo: &str,
    revision: &str,
    file: &str,
    token: Option<&str>,
) -> Result<(u64, String), DownloadError> {
    let folder = file.rsplit_once('/').map(|(d, _)| d);
    let mut url = format!("{endpoint}/api/models/{repo}/tree/{revision}");
    if let Some(d) = folder {
        url.push('/');
        url.push_str(d);
    }
    let mut req = http.get(&url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| DownloadError::Network {
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    match resp.status().as_u16() {
        401 | 403 => {
            return Err(DownloadError::Unauthorized {
                what: repo.to_string(),
                status: resp.status().as_u16(),
            })
        }
        404 => {
            return Err(DownloadError::NotFound {
                what: repo.to_string(),
            })
        }
        s if !(200..300).contains(&s) => {
            return Err(DownloadError::Network {
                file: file.to_string(),
                detail: format!("HTTP {s} from the Hub"),
            })
        }
        _ => {}
    }
    let entries: Vec<TreeEntry> = resp.json().await.map_err(|e| DownloadError::BadMetadata {
        detail: e.to_string(),
    })?;
    let entry = entries
        .into_iter()
        .find(|e| e.path == file)
        .ok_or_else(|| DownloadError::NotFound {
            what: format!("{file} in {repo}"),
        })?;
    match entry.lfs {
        Some(l) if l.oid.len() == 64 && l.oid.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok((l.size.max(entry.size), l.oid.to_ascii_lowercase()))
        }
        _ => Err(DownloadError::Unverifiable {
            file: file.to_string(),
        }),
    }
}

fn keychain_entry() -> Result<keyring::Entry, DownloadError> {
    keyring::Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_USER)
        .map_err(|e| DownloadError::Keychain(e.to_string()))
}

/// The token: `HF_TOKEN` when set, else the one saved in the keychain.
pub fn token() -> Option<String> {
    if let Some(t) = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Some(t);
    }
    keychain_entry().ok()?.get_password().ok()
}

/// Saves (or, with `None`, forgets) the token in the OS keychain.
pub fn set_token(token: Option<&str>) -> Result<(), DownloadError> {
    let entry = keychain_entry()?;
    match token {
        Some(t) => entry.set_password(t).map_err(|e| {
            DownloadError::Keychain(format!(
                "{e}. No usable keychain here; set the HF_TOKEN environment variable instead (Kindling never writes the token to a plain file)"
            ))
        }),
        None => match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(DownloadError::Keychain(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            resolve_url("https://huggingface.co/", "unsloth/gemma-3-270m-it-GGUF", "gemma-3-270m-it-Q4_K_M.gguf"),
            "https://huggingface.co/unsloth/gemma-3-270m-it-GGUF/resolve/main/gemma-3-270m-it-Q4_K_M.gguf"
        );
    }

    #[test]
    fn names_cannot_escape_the_models_folder() {
        assert!(validate("org/name", "file.gguf").is_ok());
        assert!(validate("org/name", "sub/dir/file.gguf").is_ok());
        for (repo, file) in [
            ("org", "f.gguf"),
            ("org/name/extra", "f.gguf"),
            ("../x", "f.gguf"),
            ("org/name", "../../etc/passwd"),
            ("org/name", "/abs.gguf"),
            ("org/name", ""),
        ] {
            assert!(validate(repo, file).is_err(), "{repo} {file}");
        }
    }
}
