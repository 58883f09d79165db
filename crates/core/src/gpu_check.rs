//! The first use of a GPU for a model architecture, checked. Some GPU backends give
//! garbage or crash for some architectures (llama.cpp over MoltenVK on AMD cards, for
//! one), and no table can list them all. So before the GPU runs a kind of model for the
//! first time with a runtime build, Kindling asks a short known question with GPU layers
//! and watches the stream with the degeneracy detector. A degenerate stream, a crash or
//! no answer, when the processor answers the same question properly, marks the GPU
//! unusable for that architecture with that runtime: from then on those models run on
//! the processor, and Home says why. The verdict is stored, so it is asked once.
//!
//! Token-for-token equality with the processor is *not* the test: on a real Vulkan GPU
//! greedy answers differed from the CPU's on 2 of 10 quick tests while both were sound.

use std::time::Duration;

use serde_json::json;

use crate::bench::chat::{self, ChatAnswer, Ending};
use crate::hardware::HardwareProfile;
use crate::history::{now, GpuCheck};
use crate::runtime::{Runtime, RuntimeInfo};
use crate::server::{Purpose, ServerConfig, ServerError};
use crate::store::RegisteredModel;
use crate::{Cancel, Core, Error, Result};

/// The known question: short, with one sound answer any instruct or base model gives.
pub const PROMPT: &str = "Name the four seasons of the year, separated by commas.";
const MAX_TOKENS: u32 = 48;
const DEADLINE: Duration = Duration::from_secs(120);

/// What one server did with the question: its answer, or how it failed.
pub type Probe = std::result::Result<ChatAnswer, ServerError>;

/// Asks the known question of the server at `base`.
pub async fn ask(http: &reqwest::Client, base: &str) -> Probe {
    let messages = [json!({"role": "user", "content": PROMPT})];
    chat::complete(http, base, &messages, &[], MAX_TOKENS, None, DEADLINE).await
}

/// What went wrong with a probe, in plain words; `None` when the answer was sound.
pub fn fault(p: &Probe) -> Option<String> {
    match p {
        Err(e) => Some(format!("the model server failed ({e})")),
        Ok(a) => match &a.ending {
            Ending::Degenerate(d) => Some(format!("the answer was garbage ({})", d.kind)),
            Ending::Timeout { after_ms } => Some(format!(
                "no answer came within {} s",
                after_ms.div_ceil(1000)
            )),
            Ending::Finished if a.content.trim().is_empty() => Some("the answer was empty".into()),
            Ending::Finished => None,
        },
    }
}

/// The verdict from the GPU's probe and, when that one failed, the processor's.
pub fn verdict(gpu: &Probe, cpu: Option<&Probe>) -> (bool, String) {
    let Some(on_gpu) = fault(gpu) else {
        return (
            true,
            "a short test answer was sound on the graphics card".into(),
        );
    };
    match cpu.map(fault) {
        Some(None) => (
            false,
            format!(
                "{on_gpu} on the graphics card, while the processor answered the same question properly"
            ),
        ),
        Some(Some(on_cpu)) => (
            true,
            format!(
                "{on_gpu} on the graphics card, and on the processor too ({on_cpu}): the model is at fault, not the graphics card"
            ),
        ),
        None => (false, format!("{on_gpu} on the graphics card")),
    }
}

/// What a verdict is about.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckKey {
    pub runtime: String,
    pub architecture: String,
    pub device: String,
}

impl CheckKey {
    /// The key for starting `model` with `config` on `hardware`, or `None` when no GPU
    /// would be used (no usable GPU, or every layer on the processor).
    pub fn for_launch(
        runtime: &RuntimeInfo,
        model: &RegisteredModel,
        hardware: &HardwareProfile,
        config: &ServerConfig,
    ) -> Option<CheckKey> {
        let (machine, _, _) = crate::recommend::machine::profile(hardware, None);
        let gpu = machine.gpu?;
        if config.gpu_layers == Some(0) {
            return None;
        }
        Some(CheckKey {
            runtime: runtime.describe(),
            architecture: model
                .info
                .architecture
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            device: gpu.name,
        })
    }
}

impl Core {
    /// Takes the GPU out of `config` (every layer on the processor) when the GPU failed
    /// its first-use check for this kind of model with this runtime, running that check
    /// first if it never was. `config` is what [`Core::launch_config`] planned, with the
    /// caller's changes. Returns the verdict that applied, if a GPU was in the plan.
    pub async fn apply_gpu_check(
        &self,
        runtime: &Runtime,
        info: &RuntimeInfo,
        model: &RegisteredModel,
        hardware: &HardwareProfile,
        config: &mut ServerConfig,
        cancel: &Cancel,
    ) -> Result<Option<GpuCheck>> {
        let Some(key) = CheckKey::for_launch(info, model, hardware, config) else {
            return Ok(None);
        };
        let stored = self
            .db()
            .gpu_check(&key.runtime, &key.architecture, &key.device)
            .await?;
        let check = match stored {
            Some(done) => done,
            None => {
                tracing::info!(
                    ?key,
                    "first use of the GPU for this kind of model: checking"
                );
                let gpu = self
                    .gpu_probe(runtime, model, config.clone(), cancel)
                    .await?;
                let cpu = match fault(&gpu) {
                    Some(_) => {
                        let mut on_cpu = config.clone();
                        on_cpu.gpu_layers = Some(0);
                        Some(self.gpu_probe(runtime, model, on_cpu, cancel).await?)
                    }
                    None => None,
                };
                self.judge_gpu(key, &gpu, cpu.as_ref()).await?
            }
        };
        if !check.usable {
            config.gpu_layers = Some(0);
            tracing::info!(
                model = %model.path.display(),
                "on the processor: {} failed Kindling's check with {} models ({})",
                check.device,
                check.architecture,
                check.reason
            );
        }
        Ok(Some(check))
    }

    /// Starts a server with `config` on a free port, asks the known question, stops it.
    /// A server that crashes, cannot load or never gets ready is the probe's answer; a
    /// busy port, a missing runtime or a cancel is an error.
    pub async fn gpu_probe(
        &self,
        runtime: &Runtime,
        model: &RegisteredModel,
        mut config: ServerConfig,
        cancel: &Cancel,
    ) -> Result<Probe> {
        // On loopback, without a key, on a port of its own: whatever the real start
        // will be, the check asks only this computer.
        config.port = crate::server::port_or_free(None)?;
        config.host = "127.0.0.1".into();
        config.api_key_file = None;
        config.purpose = Purpose::Measuring;
        let server = match self
            .supervise(runtime, config, model.info.file_size, cancel)
            .await
        {
            Ok(s) => s,
            Err(Error::Server(
                e @ (ServerError::Crashed { .. }
                | ServerError::Exited { .. }
                | ServerError::LoadFailed { .. }
                | ServerError::OutOfMemory { .. }
                | ServerError::StartTimeout { .. }),
            )) => return Ok(Err(e)),
            Err(e) => return Err(e),
        };
        let http = crate::server::http_client();
        let base = server.base_url();
        let answer = tokio::select! {
            a = ask(&http, &base) => a,
            _ = cancel.cancelled() => {
                server.stop().await;
                return Err(Error::Cancelled);
            }
        };
        // A server that died mid-answer says how.
        let answer = match (answer, server.exit_cause()) {
            (Err(_), Some(cause)) => Err(ServerError::from_exit(cause, server.port())),
            (a, _) => a,
        };
        server.stop().await;
        Ok(answer)
    }

    /// Records the verdict of a check from its probes, and returns it.
    pub async fn judge_gpu(
        &self,
        key: CheckKey,
        gpu: &Probe,
        cpu: Option<&Probe>,
    ) -> Result<GpuCheck> {
        let (usable, reason) = verdict(gpu, cpu);
        let check = GpuCheck {
            runtime: key.runtime,
            architecture: key.architecture,
            device: key.device,
            usable,
            reason,
            checked_at: now(),
        };
        self.db().save_gpu_check(&check).await?;
        if !usable {
            tracing::warn!(?check, "GPU unusable for this kind of model");
        }
        Ok(check)
    }

    /// Every stored verdict, newest first (Home shows the unusable ones).
    pub async fn gpu_checks(&self) -> Result<Vec<GpuCheck>> {
        Ok(self.db().gpu_checks().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::degenerate::Degeneracy;

    fn answer(text: &str, ending: Ending) -> Probe {
        Ok(ChatAnswer {
            content: text.into(),
            reasoning: String::new(),
            tool_calls: Vec::new(),
            finish_reason: None,
            timings: None,
            pieces: 8,
            ending,
            elapsed_ms: 100.0,
        })
    }

    fn answered(text: &str) -> Probe {
        answer(text, Ending::Finished)
    }

    fn garbage() -> Probe {
        let d = Degeneracy {
            kind: "special_tokens".into(),
            evidence: "<unused50> x8".into(),
            at_piece: 8,
        };
        answer("<unused50><unused50>", Ending::Degenerate(d))
    }

    #[test]
    fn a_sound_gpu_answer_needs_no_comparison() {
        let (usable, why) = verdict(&answered("Spring, summer, autumn, winter"), None);
        assert!(usable, "{why}");
    }

    #[test]
    fn garbage_on_the_gpu_and_sense_on_the_processor_is_the_gpus_fault() {
        let (usable, why) = verdict(&garbage(), Some(&answered("Spring, summer")));
        assert!(!usable);
        assert!(why.contains("garbage (special_tokens)"), "{why}");
    }

    #[test]
    fn garbage_on_both_is_the_models_fault() {
        let (usable, why) = verdict(&garbage(), Some(&garbage()));
        assert!(usable);
        assert!(why.contains("the model is at fault"), "{why}");
    }

    #[test]
    fn a_crash_on_the_gpu_is_a_fault() {
        let crashed: Probe = Err(ServerError::Crashed { signal: 11 });
        let (usable, why) = verdict(&crashed, Some(&answered("Spring")));
        assert!(!usable);
        assert!(why.contains("crashed"), "{why}");
        assert_eq!(
            fault(&answered("  ")).as_deref(),
            Some("the answer was empty")
        );
    }
}
