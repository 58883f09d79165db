//! The format a model is asked in. A model file normally carries its own chat template;
//! many in the wild carry none (base models, old conversions) or a broken one, and then
//! llama-server falls back to ChatML, which Gemma, Llama, Phi and Mistral models were never
//! trained on: they echo `<|im_end|>` and the prompt instead of answering. Kindling picks
//! the format of the model's family instead, says so, and lets a catalog entry override
//! the choice. Pure, except [`ChatFormat::install`], which writes the template file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gguf::GgufInfo;

/// A format Kindling can ask a model in, by name.
struct Known {
    name: &'static str,
    label: &'static str,
    /// Jinja source passed with `--chat-template-file`; `None`: llama-server knows the
    /// name itself (`chatml`, also in Jinja mode).
    source: Option<&'static str>,
}

const KNOWN: &[Known] = &[
    Known {
        name: "gemma",
        label: "Gemma",
        source: Some(include_str!("../../../models/chat-formats/gemma.jinja")),
    },
    Known {
        name: "llama3",
        label: "Llama 3",
        source: Some(include_str!("../../../models/chat-formats/llama3.jinja")),
    },
    Known {
        name: "phi3",
        label: "Phi",
        source: Some(include_str!("../../../models/chat-formats/phi3.jinja")),
    },
    Known {
        name: "mistral",
        label: "Mistral",
        source: Some(include_str!("../../../models/chat-formats/mistral.jinja")),
    },
    Known {
        name: "chatml",
        label: "ChatML",
        source: None,
    },
];

/// Why this format was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chosen {
    /// The catalog names a format for this model (its own template is broken or missing).
    Catalog,
    /// The file carries none; this is its architecture's.
    Architecture,
    /// The file carries none and its architecture is not one Kindling knows.
    Fallback,
}

/// A format chosen for a model whose own template is not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatFormat {
    /// `gemma`, `llama3`, `phi3`, `mistral` or `chatml`.
    pub name: String,
    pub chosen: Chosen,
}

impl ChatFormat {
    fn known(&self) -> &'static Known {
        KNOWN
            .iter()
            .find(|k| k.name == self.name)
            .unwrap_or(&KNOWN[KNOWN.len() - 1])
    }

    /// "Gemma".
    pub fn label(&self) -> &'static str {
        self.known().label
    }

    /// One sentence for the owner: what the model was asked in, and why.
    pub fn note(&self) -> String {
        let label = self.label();
        match self.chosen {
            Chosen::Catalog => format!("asked in {label}'s format, as Kindling's catalog says"),
            Chosen::Architecture => format!("asked in {label}'s format: the file carries none"),
            Chosen::Fallback => format!(
                "asked in {label}, llama.cpp's default: the file carries no format and Kindling \
                 knows none for its architecture"
            ),
        }
    }

    /// Writes the template into `dir` (when it has a file) and returns what selects it.
    pub fn install(&self, dir: &Path) -> std::io::Result<TemplateArg> {
        let k = self.known();
        let Some(source) = k.source else {
            return Ok(TemplateArg::Name(k.name.into()));
        };
        let path = dir.join(format!("{}.jinja", k.name));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(source) {
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".{}.jinja.tmp", k.name));
            std::fs::write(&tmp, source)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(TemplateArg::File(
            std::path::absolute(&path).unwrap_or(path),
        ))
    }

    /// The format a server's arguments select, when they select one.
    pub fn from_args(args: &[String]) -> Option<String> {
        let at = args
            .iter()
            .position(|a| a == "--chat-template" || a == "--chat-template-file")?;
        let value = args.get(at + 1)?;
        let name = Path::new(value)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| value.clone());
        KNOWN
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.label.to_string())
    }
}

/// The format a run was asked in, as one sentence for the owner, from the arguments its
/// server was started with: the CLI's `history show`, the app's History detail and the
/// exported page all say the same.
pub fn asked_in(args: &[String]) -> String {
    match ChatFormat::from_args(args) {
        Some(label) => {
            format!("{label}'s format, chosen by Kindling (the file's own was not used)")
        }
        None => {
            "the model file's own template (llama.cpp's ChatML when the file carries none)".into()
        }
    }
}

/// How llama-server is told the format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateArg {
    /// A name llama-server knows (`--chat-template chatml`).
    Name(String),
    /// A Jinja file (`--chat-template-file PATH`).
    File(PathBuf),
}

impl TemplateArg {
    pub fn to_args(&self) -> [String; 2] {
        match self {
            TemplateArg::Name(n) => ["--chat-template".into(), n.clone()],
            TemplateArg::File(p) => [
                "--chat-template-file".into(),
                p.to_string_lossy().into_owned(),
            ],
        }
    }
}

/// The format to ask `info`'s model in, or `None` to use the file's own template.
/// `catalog` is the catalog entry's format for this model, when it names one.
pub fn choose(info: &GgufInfo, catalog: Option<&str>) -> Option<ChatFormat> {
    if let Some(name) = catalog.filter(|n| KNOWN.iter().any(|k| k.name == *n)) {
        return Some(ChatFormat {
            name: name.into(),
            chosen: Chosen::Catalog,
        });
    }
    if info.has_chat_template {
        return None;
    }
    let arch = info
        .architecture
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let title = info.name.as_deref().unwrap_or("").to_ascii_lowercase();
    let name = if arch.starts_with("gemma") {
        Some("gemma")
    } else if arch.starts_with("mistral")
        || title.contains("mistral")
        || title.contains("ministral")
    {
        Some("mistral")
    } else if arch == "llama" {
        Some("llama3")
    } else if arch.starts_with("phi3") || arch.starts_with("phi4") {
        Some("phi3")
    } else if arch.starts_with("qwen") {
        Some("chatml")
    } else {
        None
    };
    Some(match name {
        Some(name) => ChatFormat {
            name: name.into(),
            chosen: Chosen::Architecture,
        },
        None => ChatFormat {
            name: "chatml".into(),
            chosen: Chosen::Fallback,
        },
    })
}

/// Every format name a catalog entry may give.
pub fn names() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().map(|k| k.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(arch: &str, name: Option<&str>, has_template: bool) -> GgufInfo {
        let mut i = crate::gguf::parse(
            std::io::Cursor::new(crate::gguf::tests::tiny_gguf()),
            crate::gguf::tests::tiny_gguf().len() as u64,
        )
        .unwrap();
        i.architecture = Some(arch.into());
        i.name = name.map(Into::into);
        i.has_chat_template = has_template;
        i
    }

    #[test]
    fn a_file_with_its_own_template_keeps_it() {
        assert_eq!(choose(&info("gemma3", None, true), None), None);
    }

    #[test]
    fn a_file_without_one_is_asked_in_its_familys_format() {
        for (arch, name, want) in [
            ("gemma3", None, "gemma"),
            ("gemma2", None, "gemma"),
            ("llama", Some("Meta Llama 3.1 8B"), "llama3"),
            ("llama", Some("Mistral 7B Instruct v0.3"), "mistral"),
            ("phi3", None, "phi3"),
            ("qwen2", None, "chatml"),
        ] {
            let f = choose(&info(arch, name, false), None).unwrap();
            assert_eq!(
                (f.name.as_str(), f.chosen),
                (want, Chosen::Architecture),
                "{arch}"
            );
        }
        let f = choose(&info("gemma3", None, false), None).unwrap();
        assert_eq!(f.note(), "asked in Gemma's format: the file carries none");
    }

    #[test]
    fn an_unknown_architecture_says_it_fell_back() {
        let f = choose(&info("rwkv7", None, false), None).unwrap();
        assert_eq!((f.name.as_str(), f.chosen), ("chatml", Chosen::Fallback));
        assert!(f.note().contains("knows none"), "{}", f.note());
    }

    #[test]
    fn the_catalog_overrides_even_a_files_own_template() {
        let f = choose(&info("llama", None, true), Some("mistral")).unwrap();
        assert_eq!((f.name.as_str(), f.chosen), ("mistral", Chosen::Catalog));
        // A name Kindling does not carry is ignored rather than passed on.
        assert_eq!(choose(&info("llama", None, true), Some("klingon")), None);
    }

    #[test]
    fn installing_writes_the_file_once_and_names_it_in_the_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let f = choose(&info("gemma3", None, false), None).unwrap();
        let args = f.install(dir.path()).unwrap().to_args();
        assert_eq!(args[0], "--chat-template-file");
        let written = std::fs::read_to_string(&args[1]).unwrap();
        assert!(written.contains("<start_of_turn>"), "{written}");
        assert_eq!(ChatFormat::from_args(&args).as_deref(), Some("Gemma"));
        let chatml = choose(&info("qwen3", None, false), None).unwrap();
        let args = chatml.install(dir.path()).unwrap().to_args();
        assert_eq!(args, ["--chat-template", "chatml"]);
        assert_eq!(ChatFormat::from_args(&args).as_deref(), Some("ChatML"));
        assert_eq!(ChatFormat::from_args(&["--jinja".into()]), None);
    }
}
