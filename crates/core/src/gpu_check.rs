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

/// How one probe went.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Sound,
    /// The backend failed the model: garbage, an empty answer, a crash while answering.
    /// What a verdict against the GPU rests on.
    Fault(String),
    /// Nothing learned about the backend's arithmetic: out of memory (fewer layers may
    /// fit), a load or an answer slower than the deadline. Never a verdict.
    Inconclusive(String),
}

/// What a probe found, in plain words.
pub fn find(p: &Probe) -> Finding {
    match p {
        Err(e @ (ServerError::OutOfMemory { .. } | ServerError::StartTimeout { .. })) => {
            Finding::Inconclusive(format!("the model server could not start ({e})"))
        }
        Err(e) => Finding::Fault(format!("the model server failed ({e})")),
        Ok(a) => match &a.ending {
            Ending::Degenerate(d) => Finding::Fault(format!("the answer was garbage ({})", d.kind)),
            Ending::Timeout { after_ms } => Finding::Inconclusive(format!(
                "no answer came within {} s",
                after_ms.div_ceil(1000)
            )),
            Ending::Finished if a.content.trim().is_empty() => {
                Finding::Fault("the answer was empty".into())
            }
            Ending::Finished => Finding::Sound,
        },
    }
}

/// What went wrong with a probe, in plain words; `None` when the answer was sound.
pub fn fault(p: &Probe) -> Option<String> {
    match find(p) {
        Finding::Sound => None,
        Finding::Fault(why) | Finding::Inconclusive(why) => Some(why),
    }
}

/// The verdict from the GPU's probe and, when that one failed, the processor's; `None`
/// when the GPU's probe taught nothing (out of memory, too slow): no verdict is kept.
pub fn verdict(gpu: &Probe, cpu: Option<&Probe>) -> Option<(bool, String)> {
    let on_gpu = match find(gpu) {
        Finding::Sound => {
            return Some((
                true,
                "a short test answer was sound on the graphics card".into(),
            ))
        }
        Finding::Inconclusive(_) => return None,
        Finding::Fault(why) => why,
    };
    Some(match cpu.map(fault) {
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
    })
}

/// The GPU layer counts to try after the GPU ran out of memory with `tried` (`None`:
/// every layer) for a model of `layers` layers: half, then a quarter. Pure.
pub fn fewer_layers(tried: Option<u32>, layers: Option<u64>) -> Vec<u32> {
    let all = tried
        .or_else(|| layers.and_then(|l| u32::try_from(l).ok()))
        .unwrap_or(0);
    [all / 2, all / 4].into_iter().filter(|l| *l > 0).collect()
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
        if config.gpu_layers == Some(0) || config.cpu_only {
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
                let mut gpu = self
                    .gpu_probe(runtime, model, config.clone(), cancel)
                    .await?;
                // Out of memory says nothing about the arithmetic: try fewer layers.
                if matches!(gpu, Err(ServerError::OutOfMemory { .. })) {
                    for layers in fewer_layers(config.gpu_layers, model.info.block_count) {
                        let mut fewer = config.clone();
                        fewer.gpu_layers = Some(layers);
                        gpu = self.gpu_probe(runtime, model, fewer, cancel).await?;
                        if !matches!(gpu, Err(ServerError::OutOfMemory { .. })) {
                            if find(&gpu) == Finding::Sound {
                                config.gpu_layers = Some(layers);
                            }
                            break;
                        }
                    }
                }
                let cpu = match find(&gpu) {
                    Finding::Fault(_) => {
                        let mut on_cpu = config.clone();
                        on_cpu.gpu_layers = Some(0);
                        on_cpu.cpu_only = true;
                        Some(self.gpu_probe(runtime, model, on_cpu, cancel).await?)
                    }
                    Finding::Sound | Finding::Inconclusive(_) => None,
                };
                match self.judge_gpu(key, &gpu, cpu.as_ref()).await? {
                    Some(check) => check,
                    None => {
                        // Nothing learned, nothing kept: this start runs on the processor
                        // alone, and the next one checks again.
                        config.gpu_layers = Some(0);
                        config.cpu_only = true;
                        tracing::warn!(
                            model = %model.path.display(),
                            "on the processor this time: the graphics card check was inconclusive ({})",
                            fault(&gpu).unwrap_or_default()
                        );
                        return Ok(None);
                    }
                }
            }
        };
        if !check.usable {
            // `--device none`, as the second server: layers, cache and llama.cpp's op
            // offload all stay off the GPU that failed.
            config.gpu_layers = Some(0);
            config.cpu_only = true;
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
        config.behind = None;
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
            (Err(_), Some(cause)) => Err(ServerError::from_exit(cause, server.config())),
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
    ) -> Result<Option<GpuCheck>> {
        let Some((usable, reason)) = verdict(gpu, cpu) else {
            return Ok(None);
        };
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
        Ok(Some(check))
    }

    /// Forgets every verdict ("Check the graphics card again" in Settings): each kind of
    /// model is checked again at its next start on the GPU (after a macOS or driver
    /// update, say). Returns how many were forgotten.
    pub async fn forget_gpu_checks(&self) -> Result<u64> {
        Ok(self.db().forget_gpu_checks().await?)
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
        let (usable, why) = verdict(&answered("Spring, summer, autumn, winter"), None).unwrap();
        assert!(usable, "{why}");
    }

    #[test]
    fn garbage_on_the_gpu_and_sense_on_the_processor_is_the_gpus_fault() {
        let (usable, why) = verdict(&garbage(), Some(&answered("Spring, summer"))).unwrap();
        assert!(!usable);
        assert!(why.contains("garbage (special_tokens)"), "{why}");
    }

    #[test]
    fn garbage_on_both_is_the_models_fault() {
        let (usable, why) = verdict(&garbage(), Some(&garbage())).unwrap();
        assert!(usable);
        assert!(why.contains("the model is at fault"), "{why}");
    }

    /// Out of memory and a load timeout were counted as garbage and turned the GPU off
    /// for a whole architecture for good.
    #[test]
    fn out_of_memory_or_too_slow_is_no_verdict_against_the_gpu() {
        let oom: Probe = Err(ServerError::OutOfMemory {
            detail: "ggml_vulkan: Device memory allocation of size 2147483648 failed".into(),
        });
        assert_eq!(verdict(&oom, Some(&answered("Spring"))), None);
        let slow: Probe = Err(ServerError::StartTimeout { seconds: 120 });
        assert_eq!(verdict(&slow, None), None);
        let no_answer = answer("", Ending::Timeout { after_ms: 120_000 });
        assert_eq!(verdict(&no_answer, Some(&answered("Spring"))), None);
        assert!(matches!(find(&oom), Finding::Inconclusive(_)));
    }

    #[test]
    fn out_of_memory_retries_with_half_then_a_quarter_of_the_layers() {
        assert_eq!(fewer_layers(None, Some(35)), [17, 8]);
        assert_eq!(fewer_layers(Some(10), Some(35)), [5, 2]);
        assert_eq!(fewer_layers(Some(1), None), Vec::<u32>::new());
        assert_eq!(fewer_layers(None, None), Vec::<u32>::new());
    }

    #[test]
    fn a_crash_on_the_gpu_is_a_fault() {
        let crashed: Probe = Err(ServerError::Crashed { signal: 11 });
        let (usable, why) = verdict(&crashed, Some(&answered("Spring"))).unwrap();
        assert!(!usable);
        assert!(why.contains("crashed"), "{why}");
        assert_eq!(
            fault(&answered("  ")).as_deref(),
            Some("the answer was empty")
        );
    }
}
