//! The llama-server command line, built by one pure function from a [`ServerConfig`].
//! One test per flag below: a wrong flag here is a server that will not start.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Flash attention: `auto` lets llama.cpp decide per backend (it is known to produce
/// garbage on some AMD GPUs over MoltenVK, so the caller may force it off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlashAttention {
    #[default]
    Auto,
    On,
    Off,
}

/// What a server is for. Not an argument to llama-server: it says whose it is, so the
/// menu bar shows the server people use and not a benchmark's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The server people and apps use (the menu bar's, `kindling serve`).
    Serving,
    /// A second one people use beside it: a large model on the processor, on its own
    /// port (`kindling serve --second`, the menu bar's second model).
    Second,
    /// A benchmark's, a quality run's or a tuning run's own server.
    #[default]
    Measuring,
}

/// Everything that decides how llama-server is started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub model: PathBuf,
    /// Always loopback unless the user allowed other devices (then an API key is required).
    pub host: String,
    pub port: u16,
    pub ctx_size: u32,
    /// `None` lets llama.cpp pick (its default thread count).
    pub threads: Option<u32>,
    /// `None` lets llama.cpp decide how many layers go to the GPU.
    pub gpu_layers: Option<u32>,
    pub flash_attention: FlashAttention,
    /// Use the model's own chat template (needed for tool calls).
    pub jinja: bool,
    /// Request slots; 1 for benchmarks so one request has the machine to itself.
    pub parallel: u32,
    /// A file holding the API key (`--api-key-file`): a key on the command line is
    /// visible to every user of the computer in `ps`.
    pub api_key_file: Option<PathBuf>,
    /// The web origins allowed to call the server from a browser (`--cors-origins`).
    #[serde(default = "loopback_origins")]
    pub cors_origins: String,
    /// Keep mixture-of-experts weights on the CPU (a known-issue workaround).
    #[serde(default)]
    pub cpu_moe: bool,
    /// The format to ask the model in when its file's own template is not used
    /// (see [`crate::chat_format`]).
    #[serde(default)]
    pub chat_template: Option<crate::chat_format::TemplateArg>,
    #[serde(default)]
    pub purpose: Purpose,
    /// Free the model's memory after this many idle seconds, reloading it on the next
    /// request (llama-server's `--sleep-idle-seconds`).
    #[serde(default)]
    pub sleep_idle_seconds: Option<u32>,
    /// Use no GPU at all (`--device none`): weights, cache and every operation stay on
    /// the processor, so the GPU's memory is left to the model served beside it.
    #[serde(default)]
    pub cpu_only: bool,
    /// A model split over paired Macs (see `crate::peers`): the loopback ports that carry
    /// each helper's RPC connection, and how many layers each holds. `None`: this Mac alone.
    #[serde(default)]
    pub split: Option<Split>,
    /// Kindling's front door listens on `host:port` for it, and the server itself on
    /// loopback behind the door (see `crate::front`). `None`: the server listens there.
    #[serde(skip)]
    pub behind: Option<Behind>,
}

/// The helpers' part of a split model, as llama-server is told it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// `127.0.0.1:PORT` per helper (each a relay to that Mac), in order: `RPC0`, `RPC1`…
    pub rpc: Vec<String>,
    /// Layers each helper holds, in the same order; the rest stay on this Mac's processor.
    pub layers: Vec<u32>,
    /// This Mac's own GPU (llama.cpp's id, e.g. `Vulkan0`) and the layers it holds.
    #[serde(default)]
    pub local_gpu: Option<(String, u32)>,
}

/// Where a server behind the front door listens, and what it requires.
#[derive(Clone, PartialEq)]
pub struct Behind {
    /// A loopback port only Kindling knows.
    pub port: u16,
    /// The key the server requires of every caller but `/health`: only the door holds
    /// it. Passed in the environment (`LLAMA_API_KEY`), never on the command line.
    pub key: String,
    /// The name the server gives its model (`--alias`): the one apps use at the door.
    pub alias: String,
}

impl std::fmt::Debug for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behind")
            .field("port", &self.port)
            .field("key", &"(hidden)")
            .field("alias", &self.alias)
            .finish()
    }
}

fn loopback_origins() -> String {
    super::access::LOOPBACK_ORIGINS.to_string()
}

impl ServerConfig {
    /// Defaults for a model on loopback.
    pub fn new(model: impl Into<PathBuf>, port: u16) -> Self {
        ServerConfig {
            model: model.into(),
            host: "127.0.0.1".into(),
            port,
            ctx_size: 4096,
            threads: None,
            gpu_layers: None,
            flash_attention: FlashAttention::Auto,
            jinja: true,
            parallel: 1,
            api_key_file: None,
            cors_origins: loopback_origins(),
            cpu_moe: false,
            chat_template: None,
            purpose: Purpose::Measuring,
            sleep_idle_seconds: None,
            cpu_only: false,
            split: None,
            behind: None,
        }
    }

    /// Where llama-server itself listens: behind the door, or where apps reach it.
    pub fn listen(&self) -> (&str, u16) {
        match &self.behind {
            Some(b) => ("127.0.0.1", b.port),
            None => (&self.host, self.port),
        }
    }

    /// The arguments to pass to llama-server, in a stable order.
    pub fn to_args(&self) -> Vec<String> {
        let (host, port) = self.listen();
        let mut a: Vec<String> = vec![
            "--model".into(),
            absolute(&self.model),
            "--host".into(),
            host.to_string(),
            "--port".into(),
            port.to_string(),
            "--ctx-size".into(),
            self.ctx_size.to_string(),
            "--parallel".into(),
            self.parallel.max(1).to_string(),
        ];
        if let Some(t) = self.threads {
            a.extend(["--threads".into(), t.to_string()]);
        }
        if let Some(split) = &self.split {
            // Only the listed devices take layers: the helpers' (`RPC0`… in `--rpc` order)
            // and this Mac's GPU when it holds some; the first layers, the embeddings and
            // the output stay on this Mac's processor. Weights are not repacked on either
            // side, so every Mac computes exactly as this one would alone.
            let mut devices: Vec<String> =
                (0..split.rpc.len()).map(|i| format!("RPC{i}")).collect();
            let mut layers: Vec<u32> = split.layers.clone();
            if let Some((id, n)) = split.local_gpu.as_ref().filter(|(_, n)| *n > 0) {
                devices.push(id.clone());
                layers.push(*n);
            }
            let shown: Vec<String> = layers.iter().map(u32::to_string).collect();
            a.extend(["--rpc".into(), split.rpc.join(",")]);
            a.extend(["--device".into(), devices.join(",")]);
            a.extend(["--tensor-split".into(), shown.join(",")]);
            a.extend([
                "--n-gpu-layers".into(),
                layers.iter().sum::<u32>().to_string(),
            ]);
            a.push("--no-repack".into());
        } else if self.cpu_only {
            a.extend(["--device".into(), "none".into()]);
            a.extend(["--n-gpu-layers".into(), "0".into()]);
        } else if let Some(n) = self.gpu_layers {
            a.extend(["--n-gpu-layers".into(), n.to_string()]);
        }
        let fa = match self.flash_attention {
            FlashAttention::Auto => "auto",
            FlashAttention::On => "on",
            FlashAttention::Off => "off",
        };
        a.extend(["--flash-attn".into(), fa.into()]);
        a.push(if self.jinja { "--jinja" } else { "--no-jinja" }.into());
        if let Some(t) = &self.chat_template {
            a.extend(t.to_args());
        }
        if self.cpu_moe {
            a.push("--cpu-moe".into());
        }
        a.extend(["--cors-origins".into(), self.cors_origins.clone()]);
        if let Some(s) = self.sleep_idle_seconds.filter(|s| *s > 0) {
            a.extend(["--sleep-idle-seconds".into(), s.to_string()]);
        }
        match &self.behind {
            // The door checks the owner's key; the server requires the door's.
            Some(b) => a.extend(["--alias".into(), b.alias.clone()]),
            None => {
                if let Some(file) = &self.api_key_file {
                    a.extend(["--api-key-file".into(), absolute(file)]);
                }
            }
        }
        a
    }
}

/// A path as the server must get it: absolute, because the server runs in its runtime's
/// folder (see `Runtime::command`), not in the caller's.
fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut ServerConfig)) -> Vec<String> {
        let mut c = ServerConfig::new("/m/model.gguf", 8081);
        f(&mut c);
        c.to_args()
    }

    fn has_pair(a: &[String], flag: &str, value: &str) -> bool {
        a.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn relative_paths_reach_the_server_absolute() {
        let a = args(|c| {
            c.model = "models/m.gguf".into();
            c.api_key_file = Some("api-key".into());
        });
        let cwd = std::env::current_dir().unwrap();
        let want = |p: &str| cwd.join(p).to_string_lossy().into_owned();
        assert!(has_pair(&a, "--model", &want("models/m.gguf")), "{a:?}");
        assert!(has_pair(&a, "--api-key-file", &want("api-key")), "{a:?}");
    }

    #[test]
    fn model_host_and_port_always_present() {
        let a = args(|_| {});
        assert!(has_pair(&a, "--model", "/m/model.gguf"));
        assert!(has_pair(&a, "--host", "127.0.0.1"));
        assert!(has_pair(&a, "--port", "8081"));
    }

    #[test]
    fn ctx_size() {
        assert!(has_pair(&args(|c| c.ctx_size = 8192), "--ctx-size", "8192"));
    }

    #[test]
    fn threads_only_when_set() {
        assert!(!args(|_| {}).contains(&"--threads".to_string()));
        assert!(has_pair(&args(|c| c.threads = Some(4)), "--threads", "4"));
    }

    #[test]
    fn gpu_layers_only_when_set() {
        assert!(!args(|_| {}).contains(&"--n-gpu-layers".to_string()));
        assert!(has_pair(
            &args(|c| c.gpu_layers = Some(0)),
            "--n-gpu-layers",
            "0"
        ));
        assert!(has_pair(
            &args(|c| c.gpu_layers = Some(99)),
            "--n-gpu-layers",
            "99"
        ));
    }

    #[test]
    fn flash_attention_modes() {
        assert!(has_pair(&args(|_| {}), "--flash-attn", "auto"));
        assert!(has_pair(
            &args(|c| c.flash_attention = FlashAttention::On),
            "--flash-attn",
            "on"
        ));
        assert!(has_pair(
            &args(|c| c.flash_attention = FlashAttention::Off),
            "--flash-attn",
            "off"
        ));
    }

    #[test]
    fn jinja_on_by_default_and_can_be_off() {
        assert!(args(|_| {}).contains(&"--jinja".to_string()));
        assert!(args(|c| c.jinja = false).contains(&"--no-jinja".to_string()));
    }

    #[test]
    fn parallel_is_at_least_one() {
        assert!(has_pair(&args(|c| c.parallel = 0), "--parallel", "1"));
        assert!(has_pair(&args(|c| c.parallel = 4), "--parallel", "4"));
    }

    #[test]
    fn api_key_only_as_a_file_never_on_the_command_line() {
        assert!(!args(|_| {}).contains(&"--api-key-file".to_string()));
        let a = args(|c| c.api_key_file = Some("/home/me/.kindling/api-key".into()));
        assert!(has_pair(&a, "--api-key-file", "/home/me/.kindling/api-key"));
        assert!(!a.contains(&"--api-key".to_string()));
    }

    #[test]
    fn cors_is_loopback_pages_unless_told_otherwise() {
        assert!(has_pair(&args(|_| {}), "--cors-origins", "localhost"));
        assert!(has_pair(
            &args(|c| c.cors_origins = "https://app.example".into()),
            "--cors-origins",
            "https://app.example"
        ));
    }

    #[test]
    fn cpu_moe_only_when_set() {
        assert!(!args(|_| {}).contains(&"--cpu-moe".to_string()));
        assert!(args(|c| c.cpu_moe = true).contains(&"--cpu-moe".to_string()));
    }

    #[test]
    fn cpu_only_uses_no_device_whatever_the_layers_say() {
        assert!(!args(|_| {}).contains(&"--device".to_string()));
        let a = args(|c| {
            c.cpu_only = true;
            c.gpu_layers = Some(99);
        });
        assert!(has_pair(&a, "--device", "none"), "{a:?}");
        assert!(has_pair(&a, "--n-gpu-layers", "0"), "{a:?}");
        assert!(!has_pair(&a, "--n-gpu-layers", "99"), "{a:?}");
    }

    #[test]
    fn behind_the_door_the_server_listens_on_loopback_and_never_shows_a_key() {
        let a = args(|c| {
            c.host = "0.0.0.0".into();
            c.api_key_file = Some("/home/me/.kindling/api-key".into());
            c.behind = Some(Behind {
                port: 40001,
                key: "kdl-secret".into(),
                alias: "model".into(),
            });
        });
        assert!(has_pair(&a, "--host", "127.0.0.1"), "{a:?}");
        assert!(has_pair(&a, "--port", "40001"), "{a:?}");
        assert!(has_pair(&a, "--alias", "model"), "{a:?}");
        assert!(!a.contains(&"--api-key-file".to_string()), "{a:?}");
        assert!(!a.iter().any(|x| x.contains("kdl-secret")), "{a:?}");
        let shown = format!(
            "{:?}",
            ServerConfig {
                behind: Some(Behind {
                    port: 1,
                    key: "kdl-secret".into(),
                    alias: "m".into()
                }),
                ..ServerConfig::new("/m", 1)
            }
        );
        assert!(!shown.contains("kdl-secret"), "{shown}");
    }

    #[test]
    fn a_split_puts_each_helpers_layers_on_its_rpc_device_and_the_rest_here() {
        assert!(!args(|_| {}).contains(&"--rpc".to_string()));
        let a = args(|c| {
            c.gpu_layers = Some(99);
            c.split = Some(Split {
                rpc: vec!["127.0.0.1:40001".into(), "127.0.0.1:40002".into()],
                layers: vec![5, 7],
                local_gpu: None,
            });
        });
        assert!(
            has_pair(&a, "--rpc", "127.0.0.1:40001,127.0.0.1:40002"),
            "{a:?}"
        );
        assert!(has_pair(&a, "--device", "RPC0,RPC1"), "{a:?}");
        assert!(has_pair(&a, "--tensor-split", "5,7"), "{a:?}");
        assert!(has_pair(&a, "--n-gpu-layers", "12"), "{a:?}");
        assert!(!has_pair(&a, "--n-gpu-layers", "99"), "{a:?}");
        assert!(a.contains(&"--no-repack".to_string()), "{a:?}");
        let a = args(|c| {
            c.split = Some(Split {
                rpc: vec!["127.0.0.1:40001".into()],
                layers: vec![5],
                local_gpu: Some(("Vulkan0".into(), 20)),
            });
        });
        assert!(has_pair(&a, "--device", "RPC0,Vulkan0"), "{a:?}");
        assert!(has_pair(&a, "--tensor-split", "5,20"), "{a:?}");
        assert!(has_pair(&a, "--n-gpu-layers", "25"), "{a:?}");
    }

    #[test]
    fn paths_with_spaces_stay_one_argument() {
        let a = args(|c| c.model = "/Users/me/My Models/a b.gguf".into());
        assert!(has_pair(&a, "--model", "/Users/me/My Models/a b.gguf"));
    }
}
