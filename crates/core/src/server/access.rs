//! Who may reach a server Kindling starts: web pages (CORS) and other devices (the API
//! key). Off the network by default; on it only with a key, kept in a file only the
//! owner can read (mode 0600, written atomically) and handed to llama-server as a file
//! (`--api-key-file`), never on its command line where `ps` shows it to every user.
//!
//! Checked on the pinned llama-server (b10434) with the real binary:
//! - `--cors-origins localhost` reflects the `Origin` header only for pages on
//!   `localhost`/`127.0.0.1`; any other page gets no allow header, so a browser keeps
//!   it from reading answers. The server's own chat page is same-origin and needs none.
//! - A *list* of origins is sent back verbatim as one header value, which browsers
//!   reject: this build allows one origin (loopback pages, or the one the owner names).
//! - With a key, `/health` and `/v1/health` (and the chat page's files) still answer
//!   without one; every other endpoint answers 401. (The llama.cpp b10434 that Kindling
//!   used to take from PyPI also left `/models` and `/v1/models` open; b11434, built
//!   from the pin, does not: the tests hold the shipped runtime to this list.)

use std::path::{Path, PathBuf};

/// The origins llama-server allows when the owner names none: pages on this computer.
pub const LOOPBACK_ORIGINS: &str = "localhost";

/// Endpoints the pinned llama-server answers without the API key (what the app tells
/// owners before they allow other devices).
pub const OPEN_WITHOUT_KEY: [&str; 2] = ["/health", "/v1/health"];

/// What other devices reach without the key, in the owner's words: the one sentence the
/// Server screen and docs/ARCHITECTURE.md give, made from [`OPEN_WITHOUT_KEY`].
pub fn open_without_key_sentence() -> String {
    let list = crate::words::and_list(&OPEN_WITHOUT_KEY);
    format!(
        "Without the key, other devices reach only {list} (whether the server is up) and the server's chat page, which cannot answer without the key either."
    )
}

/// Keys shorter than this are refused: a guessable key is no lock.
pub const MIN_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("The network key in {path} is {len} characters long; Kindling needs at least {MIN_KEY_LEN}. The server was not started. Turn network access off and on again to make a new key.")]
    WeakKey { path: PathBuf, len: usize },
    #[error("Network access is on but there is no key at {path}, so the server was not started. Turn network access off and on again to make a new key.")]
    NoKey { path: PathBuf },
    #[error("Kindling could not keep the network key at {path}: {source}. Check the folder's permissions and free disk space.")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The CORS origin to pass: the owner's one site, or loopback pages only. A setting that
/// is not one site (settings.toml edited by hand) never reaches the server: loopback
/// pages only, and the log says why.
pub fn cors_origins(owner_origin: Option<&str>) -> String {
    match owner_origin.map(parse_origin) {
        Some(Ok(Some(site))) => site,
        Some(Err(why)) => {
            tracing::warn!(%why, "cors_origin setting ignored; only pages on this computer");
            LOOPBACK_ORIGINS.to_string()
        }
        _ => LOOPBACK_ORIGINS.to_string(),
    }
}

/// Checks an origin the owner wants to allow (`https://app.example`, with a port if it
/// has one): `None` for an empty entry (back to pages on this computer only).
pub fn parse_origin(text: &str) -> Result<Option<String>, String> {
    let t = text.trim().trim_end_matches('/');
    if t.is_empty() {
        return Ok(None);
    }
    let host = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("{t} is not a web address: it must start with https:// or http://")
        })?;
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !ok {
        return Err(format!(
            "{t} is not a single site: give just its address, like https://app.example \
             (no path, no list)"
        ));
    }
    Ok(Some(t.to_string()))
}

/// Reads the key; refuses a missing, empty or short one.
pub fn load_key(path: &Path) -> Result<String, AccessError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AccessError::NoKey {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(AccessError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let key = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("")
        .to_string();
    if key.len() < MIN_KEY_LEN {
        return Err(AccessError::WeakKey {
            path: path.to_path_buf(),
            len: key.len(),
        });
    }
    Ok(key)
}

/// Writes the key readable by its owner only, atomically (temp file, fsync, rename): a
/// crash leaves the old key or the new one, never half of one.
pub fn write_key(path: &Path, key: &str) -> Result<(), AccessError> {
    crate::paths::write_private(path, format!("{key}\n").as_bytes()).map_err(|source| {
        AccessError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Forgets the key (network access off).
pub fn remove_key(path: &Path) -> Result<(), AccessError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AccessError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// A new random key: `kdl-` and 32 hex digits (128 bits from the OS's random source).
pub fn new_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!(
        "kdl-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/ARCHITECTURE.md said `/models` and `/v1/models` answer without the key, and
    /// the Server screen that the model's name does; the pinned build keeps both closed.
    #[test]
    fn the_architecture_doc_gives_the_one_sentence() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/ARCHITECTURE.md"
        ))
        .unwrap();
        let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&open_without_key_sentence()),
            "docs/ARCHITECTURE.md must say: {}",
            open_without_key_sentence()
        );
        assert!(
            !flat.contains("/v1/models` (and the chat"),
            "the old list is gone"
        );
    }

    #[test]
    fn loopback_pages_only_unless_the_owner_names_one() {
        assert_eq!(cors_origins(None), "localhost");
        assert_eq!(cors_origins(Some("  ")), "localhost");
        assert_eq!(
            cors_origins(Some("https://app.example")),
            "https://app.example"
        );
        assert_eq!(
            cors_origins(Some("https://a.example,https://b.example")),
            "localhost",
            "a hand-edited list never reaches the server"
        );
    }

    #[test]
    fn one_site_may_be_allowed_and_nothing_else() {
        assert_eq!(parse_origin(" "), Ok(None));
        assert_eq!(
            parse_origin("https://app.example/"),
            Ok(Some("https://app.example".into()))
        );
        assert_eq!(
            parse_origin("http://192.168.1.5:3000"),
            Ok(Some("http://192.168.1.5:3000".into()))
        );
        for bad in [
            "app.example",
            "https://a.example,https://b.example",
            "https://a.example/x",
            "*",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_file_is_the_owners_alone_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("secrets").join("api-key");
        let key = new_key().unwrap();
        assert_eq!(key.len(), 36);
        write_key(&p, &key).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "readable by others: {mode:o}");
        assert_eq!(load_key(&p).unwrap(), key);
        remove_key(&p).unwrap();
        assert!(matches!(load_key(&p), Err(AccessError::NoKey { .. })));
        remove_key(&p).unwrap();
    }

    #[test]
    fn short_or_empty_keys_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("api-key");
        for bad in ["", "\n", "# only a comment\n", "kdl-1234"] {
            std::fs::write(&p, bad).unwrap();
            let err = load_key(&p).unwrap_err();
            assert!(matches!(err, AccessError::WeakKey { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("off and on again"), "{err}");
        }
    }
}
