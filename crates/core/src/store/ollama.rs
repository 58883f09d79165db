//! Ollama's store, read-only: `manifests/<host>/<ns>/<model>/<tag>` (Docker v2 manifest
//! JSON) and `blobs/sha256-<64 hex>`. Model layers are GGUF files llama-server loads in place.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const MODEL_MEDIA_TYPE: &str = "application/vnd.ollama.image.model";

/// `$OLLAMA_MODELS`, else `~/.ollama/models`.
pub fn default_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OLLAMA_MODELS").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".ollama/models"))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Layer {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Deserialize)]
struct ManifestJson {
    config: Option<Layer>,
    #[serde(default)]
    layers: Vec<Layer>,
}

/// One model tag.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `llama3.2:latest`, or `host/ns/model:tag` outside the default library.
    pub name: String,
    pub path: PathBuf,
    pub config: Option<Layer>,
    pub layers: Vec<Layer>,
}

impl Manifest {
    /// Every digest this manifest keeps alive (config and layers).
    pub fn digests(&self) -> impl Iterator<Item = &str> {
        self.config
            .iter()
            .chain(&self.layers)
            .map(|l| l.digest.as_str())
    }
    /// The GGUF weights layer.
    pub fn model_layer(&self) -> Option<&Layer> {
        self.layers
            .iter()
            .find(|l| l.media_type == MODEL_MEDIA_TYPE)
    }
}

/// Manifests that parsed, and those that did not (with why).
#[derive(Debug, Default)]
pub struct ManifestScan {
    pub manifests: Vec<Manifest>,
    pub broken: Vec<(PathBuf, String)>,
}

/// `sha256-<64 hex>` → the hex. Nothing else is ever treated as a blob.
pub fn blob_hex(name: &str) -> Option<&str> {
    let hex = name.strip_prefix("sha256-")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

/// `sha256-<64 hex>-partial` or `…-partial-N`: an unfinished Ollama download.
pub fn is_partial_name(name: &str) -> bool {
    let Some((blob, rest)) = name.split_at_checked(71) else {
        return false;
    };
    blob_hex(blob).is_some()
        && (rest == "-partial"
            || rest
                .strip_prefix("-partial-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

/// `sha256:<hex>` → `blobs/sha256-<hex>`.
pub fn blob_path(root: &Path, digest: &str) -> Option<PathBuf> {
    let file = digest.replacen(':', "-", 1);
    blob_hex(&file)?;
    Some(root.join("blobs").join(file))
}

fn name_from(rel: &[String]) -> String {
    match rel {
        [host, ns, model, tag] if host == "registry.ollama.ai" && ns == "library" => {
            format!("{model}:{tag}")
        }
        [host, ns, model, tag] if host == "registry.ollama.ai" => format!("{ns}/{model}:{tag}"),
        [.., model, tag] => format!(
            "{}:{tag}",
            rel[..rel.len() - 2]
                .iter()
                .chain([model])
                .cloned()
                .collect::<Vec<_>>()
                .join("/")
        ),
        _ => rel.join("/"),
    }
}

/// Reads every manifest under `root/manifests`, never following symlinks.
pub fn read_manifests(root: &Path) -> ManifestScan {
    let mut scan = ManifestScan::default();
    let base = root.join("manifests");
    let mut stack = vec![(base.clone(), Vec::<String>::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let mut rel = rel.clone();
            rel.push(e.file_name().to_string_lossy().into_owned());
            if ft.is_dir() {
                stack.push((e.path(), rel));
            } else if ft.is_file() {
                let parsed = std::fs::read(e.path())
                    .map_err(|err| err.to_string())
                    .and_then(|b| {
                        serde_json::from_slice::<ManifestJson>(&b).map_err(|err| err.to_string())
                    });
                match parsed {
                    Ok(m) => scan.manifests.push(Manifest {
                        name: name_from(&rel),
                        path: e.path(),
                        config: m.config,
                        layers: m.layers,
                    }),
                    Err(why) => scan.broken.push((e.path(), why)),
                }
            }
        }
    }
    scan.manifests.sort_by(|a, b| a.name.cmp(&b.name));
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

    #[test]
    fn blob_names() {
        assert_eq!(blob_hex(&format!("sha256-{HEX}")), Some(HEX));
        assert_eq!(blob_hex(&format!("sha256-{}", HEX.to_uppercase())), None);
        assert_eq!(blob_hex("sha256-abc"), None);
        assert_eq!(blob_hex(&format!("sha256-{HEX}.bak")), None);
        assert_eq!(blob_hex(&format!("md5-{HEX}")), None);
        assert!(is_partial_name(&format!("sha256-{HEX}-partial")));
        assert!(is_partial_name(&format!("sha256-{HEX}-partial-3")));
        assert!(!is_partial_name(&format!("sha256-{HEX}-partial-")));
        assert!(!is_partial_name(&format!("sha256-{HEX}")));
        assert!(!is_partial_name("sha256-x-partial"));
        assert!(!is_partial_name("é"));
    }

    #[test]
    fn names() {
        let n = |p: &[&str]| name_from(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            n(&["registry.ollama.ai", "library", "llama3.2", "latest"]),
            "llama3.2:latest"
        );
        assert_eq!(
            n(&["registry.ollama.ai", "someone", "tiny", "q4"]),
            "someone/tiny:q4"
        );
        assert_eq!(
            n(&["hf.co", "unsloth", "gemma-3-GGUF", "Q4_K_M"]),
            "hf.co/unsloth/gemma-3-GGUF:Q4_K_M"
        );
    }
}
