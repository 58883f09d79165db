//! The curated catalog (`models/catalog.toml`), the Mac model names (`models/macs.toml`)
//! and GPU memory bandwidths (`models/gpus.toml`), embedded in the binary and checked by
//! a unit test, so a bad edit fails the build's tests, not a user's click.

use serde::{Deserialize, Serialize};

pub const CATALOG: &str = include_str!("../../../models/catalog.toml");
pub const MACS: &str = include_str!("../../../models/macs.toml");
pub const GPUS: &str = include_str!("../../../models/gpus.toml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    pub quant: String,
    pub repo: String,
    pub file: String,
    /// Approximate size, for planning when the exact one is not known.
    pub size_gb: f64,
    /// The exact size at `revision`, from public records of the Hub's API.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// The Hub commit the size and digest were recorded at; downloads fetch that commit.
    #[serde(default)]
    pub revision: Option<String>,
    /// The file's sha256 at `revision`; a download must match it.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub sample: bool,
}

impl Variant {
    /// The exact size when recorded, else the approximate one.
    pub fn bytes(&self) -> u64 {
        self.bytes.unwrap_or((self.size_gb * 1e9) as u64)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Family {
    pub id: String,
    pub name: String,
    pub license: String,
    /// `dense` or `moe`
    pub architecture: String,
    pub params_b: f64,
    pub active_b: Option<f64>,
    pub effective_b: Option<f64>,
    /// Parameters llama.cpp keeps in main memory whatever is offloaded (Gemma's per-layer
    /// embeddings), in billions.
    #[serde(default)]
    pub host_b: Option<f64>,
    /// Share of layers whose KV cache spans the whole context (the rest keep a sliding
    /// window); `None` for all of them.
    #[serde(default)]
    pub full_attention_share: Option<f64>,
    pub context: u64,
    pub instruct: bool,
    pub thinking: String,
    /// The format to ask this family in whatever its files carry (a name from
    /// [`crate::chat_format::names`]), for files whose own template is missing or wrong.
    #[serde(default)]
    pub chat_format: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    pub variants: Vec<Variant>,
}

/// Conditions under which a known issue applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct When {
    pub architecture: Option<String>,
    pub backend: Option<String>,
    pub moltenvk: Option<bool>,
    pub gpu_vendor: Option<String>,
    /// The MoltenVK release that carries the fix: a runtime with it (or newer) is not
    /// affected. An unknown MoltenVK counts as affected.
    #[serde(default)]
    pub fixed_in_moltenvk: Option<String>,
    /// The llama.cpp build that carries the fix, likewise.
    #[serde(default)]
    pub fixed_in_build: Option<u32>,
}

/// Whether dotted version `a` is at least `b` ("1.4.10" ≥ "1.4.2"); unreadable parts
/// count as 0.
pub fn version_at_least(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    let n = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| at(&a, i).cmp(&at(&b, i)))
        .find(|o| o.is_ne())
        .is_none_or(|o| o.is_gt())
}

/// What Kindling changes to work around an issue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Fix {
    #[serde(default)]
    pub cpu_moe: bool,
    pub flash_attention: Option<String>,
    /// Never split the model between GPU and processor: all on the GPU when it fits,
    /// else all on the processor.
    #[serde(default)]
    pub whole_model: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnownIssue {
    pub id: String,
    pub summary: String,
    pub source: String,
    pub when: When,
    pub workaround: String,
    pub fix: Fix,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reference {
    pub family: String,
    pub quant: String,
    pub score: Option<f64>,
    pub gen_per_second: Option<f64>,
    pub hardware: String,
    pub runtime: String,
    pub suite: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    #[serde(rename = "family")]
    pub families: Vec<Family>,
    #[serde(rename = "issue", default)]
    pub issues: Vec<KnownIssue>,
    #[serde(rename = "reference", default)]
    pub references: Vec<Reference>,
}

impl Catalog {
    /// Parses and checks a catalog.
    pub fn parse(text: &str) -> Result<Catalog, String> {
        let c: Catalog = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut ids = std::collections::HashSet::new();
        for f in &c.families {
            if !ids.insert(&f.id) {
                return Err(format!("family {} appears twice", f.id));
            }
            if !["dense", "moe"].contains(&f.architecture.as_str()) {
                return Err(format!(
                    "family {}: architecture must be dense or moe",
                    f.id
                ));
            }
            if f.architecture == "moe" && f.active_b.is_none() {
                return Err(format!("family {}: a MoE needs active_b", f.id));
            }
            if f.variants.is_empty() {
                return Err(format!("family {} has no variants", f.id));
            }
            if let Some(name) = &f.chat_format {
                if !crate::chat_format::names().any(|n| n == name) {
                    return Err(format!(
                        "family {}: chat_format {name} is not one of {}",
                        f.id,
                        crate::chat_format::names().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            for v in &f.variants {
                if v.size_gb <= 0.0 || !v.file.ends_with(".gguf") || v.repo.split('/').count() != 2
                {
                    return Err(format!("family {}: variant {} is malformed", f.id, v.quant));
                }
                let hex =
                    |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit());
                if v.sha256.as_deref().is_some_and(|h| !hex(h, 64))
                    || (v.sha256.is_some() && v.revision.is_none())
                    || v.revision
                        .as_deref()
                        .is_some_and(|r| r.len() < 7 || !hex(r, r.len()))
                {
                    return Err(format!(
                        "family {}: variant {} needs a 64-digit sha256 and the hex revision it was recorded at",
                        f.id, v.quant
                    ));
                }
                if let Some(b) = v.bytes {
                    let approx = v.size_gb * 1e9;
                    if (b as f64 - approx).abs() > approx * 0.05 {
                        return Err(format!(
                            "family {}: variant {} says {} bytes but about {} GB",
                            f.id, v.quant, b, v.size_gb
                        ));
                    }
                }
            }
        }
        for r in &c.references {
            if !ids.contains(&r.family) {
                return Err(format!("a reference names unknown family {}", r.family));
            }
        }
        Ok(c)
    }

    /// The catalog built into Kindling.
    pub fn builtin() -> Catalog {
        Catalog::parse(CATALOG).expect("the embedded catalog is checked by a unit test")
    }

    /// This catalog with the families of `text` (a catalog file of the same shape) added
    /// after its own: models a publisher adds between releases, or a test's loopback
    /// mirror serves. A family id this catalog already has is refused, so an addition
    /// can never change what a built-in entry pins.
    pub fn with_additions(mut self, text: &str) -> Result<Catalog, String> {
        let extra = Catalog::parse(text)?;
        if let Some(f) = extra
            .families
            .iter()
            .find(|f| self.families.iter().any(|o| o.id == f.id))
        {
            return Err(format!(
                "family {} is already in Kindling's catalog; give an addition its own id",
                f.id
            ));
        }
        self.families.extend(extra.families);
        self.issues.extend(extra.issues);
        self.references.extend(extra.references);
        Ok(self)
    }

    /// `(family, variant)` by catalog id `family:quant` (e.g. `gemma4-e4b:Q4_K_M`).
    pub fn find(&self, id: &str) -> Option<(&Family, &Variant)> {
        let (fam, quant) = id.split_once(':')?;
        let f = self.families.iter().find(|f| f.id == fam)?;
        Some((
            f,
            f.variants
                .iter()
                .find(|v| v.quant.eq_ignore_ascii_case(quant))?,
        ))
    }

    /// The family and variant a model file name belongs to.
    pub fn by_file(&self, file_name: &str) -> Option<(&Family, &Variant)> {
        self.families.iter().find_map(|f| {
            f.variants
                .iter()
                .find(|v| v.file.eq_ignore_ascii_case(file_name))
                .map(|v| (f, v))
        })
    }

    /// The catalog file a model file is, byte for byte, by its sha256 (an Ollama blob is
    /// named by its digest, not the file's name).
    pub fn by_sha256(&self, sha256: &str) -> Option<(&Family, &Variant)> {
        self.families.iter().find_map(|f| {
            f.variants
                .iter()
                .find(|v| {
                    v.sha256
                        .as_deref()
                        .is_some_and(|h| h.eq_ignore_ascii_case(sha256))
                })
                .map(|v| (f, v))
        })
    }

    /// The name a known model file goes by in the catalog: its own, or the catalog
    /// file's whose bytes it has.
    pub fn file_name_of(&self, path: &std::path::Path, sha256: Option<&str>) -> String {
        sha256
            .and_then(|h| self.by_sha256(h))
            .map(|(_, v)| v.file.clone())
            .unwrap_or_else(|| {
                path.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
    }
}

#[derive(Debug, Deserialize)]
struct Macs {
    models: std::collections::BTreeMap<String, String>,
}

/// "iMac18,3" → "iMac Retina 5K 27-inch, 2017".
pub fn mac_name(identifier: &str) -> Option<String> {
    let macs: Macs = toml::from_str(MACS).ok()?;
    macs.models.get(identifier).cloned()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct GpuBandwidth {
    #[serde(rename = "match")]
    pub pattern: String,
    pub gb_per_s: f64,
    pub source: String,
}

#[derive(Debug, Deserialize)]
struct Gpus {
    gpu: Vec<GpuBandwidth>,
}

/// The memory bandwidth of a GPU by the name it reports; `None` when unknown.
pub fn gpu_bandwidth(name: &str) -> Option<GpuBandwidth> {
    let gpus: Gpus = toml::from_str(GPUS).ok()?;
    let lower = name.to_lowercase();
    gpus.gpu
        .into_iter()
        .filter(|g| lower.contains(&g.pattern.to_lowercase()))
        .max_by_key(|g| g.pattern.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_is_valid_and_complete() {
        let c = Catalog::parse(CATALOG).unwrap();
        for id in [
            "gemma4-e2b",
            "gemma4-e4b",
            "gemma4-26b-a4b",
            "gemma4-31b",
            "qwen3-0.6b",
            "qwen3-1.7b",
            "qwen3-4b",
            "llama3.2-1b",
            "llama3.2-3b",
            "phi4-mini",
            "smollm3-3b",
            "gemma3-270m-it",
            "gemma4-12b",
            "qwen3.5-2b",
            "qwen3.5-4b",
            "qwen3.5-9b",
            "qwen3-8b",
            "llama3.1-8b",
            "gpt-oss-20b",
            "ministral3-3b",
            "granite4-h-1b",
        ] {
            assert!(c.families.iter().any(|f| f.id == id), "{id} missing");
        }
        // What public records of the Hub say (docs/catalog-sources.md).
        assert_eq!(
            c.find("phi4-mini:Q8_0").unwrap().1.file,
            "Phi-4-mini-instruct.Q8_0.gguf"
        );
        assert_eq!(
            c.find("gemma4-26b-a4b:Q4_K_M").unwrap().1.repo,
            "ggml-org/gemma-4-26B-A4B-it-GGUF",
            "unsloth's repository has no plain Q4_K_M"
        );
        for f in c.families.iter().filter(|f| f.id.starts_with("gemma4")) {
            assert_eq!(f.license, "apache-2.0", "{}", f.id);
        }
        let pinned: Vec<&Variant> = c
            .families
            .iter()
            .flat_map(|f| &f.variants)
            .filter(|v| v.sha256.is_some())
            .collect();
        assert_eq!(pinned.len(), 13, "every digest the records give");
        assert!(pinned.iter().all(|v| v.revision.is_some()));
        assert_eq!(
            c.find("gemma4-e2b:Q4_K_M").unwrap().1.bytes(),
            3_106_738_272,
            "the exact size at the pinned revision"
        );
        for (name, text) in crate::recommend::machine::SHIPPED_MACHINES {
            crate::recommend::machine::MachineFile::parse(text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for f in c.families.iter().filter(|f| f.id.starts_with("gemma4")) {
            assert!(
                f.variants.iter().any(|v| v.quant == "Q4_K_M")
                    && f.variants.iter().any(|v| v.quant == "Q8_0"),
                "{}",
                f.id
            );
        }
        assert!(c.find("gemma4-e4b:q4_k_m").is_some());
        assert!(c.by_file("gemma-4-E4B-it-Q8_0.gguf").is_some());
        assert!(!c.issues.is_empty());
        toml::from_str::<Macs>(MACS).unwrap();
        toml::from_str::<Gpus>(GPUS).unwrap();
    }

    #[test]
    fn bad_catalogs_say_what_is_wrong() {
        let err = Catalog::parse("[[family]]\nid='x'\nname='X'\nlicense='l'\narchitecture='moe'\nparams_b=1.0\ncontext=1\ninstruct=true\nthinking='none'\nvariants=[{quant='Q4',repo='a/b',file='x.gguf',size_gb=1.0}]\n").unwrap_err();
        assert!(err.contains("active_b"), "{err}");
        let err = Catalog::parse("[[family]]\nid='x'\nname='X'\nlicense='l'\narchitecture='dense'\nparams_b=1.0\ncontext=1\ninstruct=true\nthinking='none'\nvariants=[{quant='Q4',repo='nope',file='x.bin',size_gb=1.0}]\n").unwrap_err();
        assert!(err.contains("malformed"), "{err}");
    }

    #[test]
    fn additions_add_families_and_never_replace_one() {
        let extra = r#"
[[family]]
id = "ladder"
name = "Ladder"
license = "gemma"
architecture = "dense"
params_b = 0.27
context = 32768
instruct = false
thinking = "none"
variants = [{ quant = "Q8_0", repo = "t/ladder", file = "l-Q8_0.gguf", size_gb = 0.29 }]
"#;
        let builtin = Catalog::builtin();
        let added = builtin.clone().with_additions(extra).unwrap();
        assert_eq!(added.families.len(), builtin.families.len() + 1);
        assert_eq!(added.find("ladder:Q8_0").unwrap().1.file, "l-Q8_0.gguf");
        let clash = extra.replace("id = \"ladder\"", "id = \"gemma3-270m-it\"");
        assert_eq!(
            builtin.with_additions(&clash).unwrap_err(),
            "family gemma3-270m-it is already in Kindling's catalog; give an addition its own id"
        );
    }

    #[test]
    fn macs_and_gpus() {
        assert_eq!(
            mac_name("iMac18,3").as_deref(),
            Some("iMac Retina 5K 27-inch, 2017")
        );
        assert_eq!(mac_name("Nope1,1"), None);
        assert_eq!(gpu_bandwidth("AMD Radeon Pro 575").unwrap().gb_per_s, 217.6);
        assert_eq!(
            gpu_bandwidth("Apple M1 Pro").unwrap().gb_per_s,
            200.0,
            "longest match wins over Apple M1"
        );
        assert_eq!(gpu_bandwidth("Radeon Pro Vega 64").unwrap().gb_per_s, 409.6);
        assert!(
            gpu_bandwidth("llvmpipe (LLVM 15.0.6, 256 bits)").is_none(),
            "unknown is unknown"
        );
    }
}
