//! `tune`: measure generation speed at several GPU layer counts (and with experts kept
//! on the CPU for mixture-of-experts models), record every point, and pick the best —
//! beside what llama-server's own automatic placement chooses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::speed::SpeedOptions;
use crate::events::{BenchPhase, Event};
use crate::history::{self, Measurement, RunStatus};
use crate::{Core, Result};

/// One measured setting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TunePoint {
    /// `None`: llama-server decided (its automatic fit).
    pub gpu_layers: Option<u32>,
    pub cpu_moe: bool,
    pub gen_per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TuneReport {
    pub run_id: i64,
    pub model: PathBuf,
    pub layers: u32,
    pub points: Vec<TunePoint>,
    pub best: TunePoint,
}

/// The layer counts to try for a model of `layers` layers: none, a quarter, half,
/// three quarters, all.
pub fn layer_steps(layers: u32) -> Vec<u32> {
    let mut v: Vec<u32> = [0, layers / 4, layers / 2, layers * 3 / 4, layers + 1]
        .into_iter()
        .collect();
    v.dedup();
    v
}

impl Core {
    /// Measures `model` at several GPU layer counts and records each point.
    pub async fn tune(
        &self,
        model: &std::path::Path,
        cancel: &CancellationToken,
    ) -> Result<TuneReport> {
        let runtime = self.locate_runtime()?;
        let info = runtime.info().await?;
        let registered = crate::store::register(self.db(), model).await?;
        let layers = registered.info.block_count.unwrap_or(32) as u32;
        let moe = crate::recommend::launch::architecture(&registered.info) == "moe";
        let hw = self.machine_now(&info).await;
        // The fixes of known issues hold for every point; the layer count is what varies.
        let (base, plan) = self.launch_config(&registered, &hw, 0);
        let run_id = self
            .begin_run(super::runner::RunStart {
                kind: "tune",
                model_id: registered.id,
                runtime: &runtime,
                info: &info,
                hardware: &hw,
                bandwidth: None,
                server_args: &base.to_args(),
            })
            .await?;
        let settings: Vec<(Option<u32>, bool)> = if plan.whole_model {
            // A split is known to give wrong answers here: the plan's all-or-nothing,
            // and the processor alone. Not llama.cpp's own choice, which may split.
            let mut s = vec![(plan.gpu_layers, false)];
            if plan.gpu_layers != Some(0) {
                s.push((Some(0), false));
            }
            s
        } else {
            let mut s = vec![(None, false)];
            s.extend(layer_steps(layers).into_iter().map(|n| (Some(n), false)));
            if moe {
                s.push((Some(layers + 1), true));
            }
            s
        };
        let opts = SpeedOptions {
            prompt_tokens: 64,
            gen_tokens: 48,
            repetitions: 1,
            warmup: true,
        };
        let mut points = Vec::new();
        let total = settings.len() as u32;
        for (i, (ngl, cpu_moe)) in settings.into_iter().enumerate() {
            let label = ngl.map_or("automatic".to_string(), |n| {
                format!(
                    "{n} GPU layers{}",
                    if cpu_moe { ", experts on CPU" } else { "" }
                )
            });
            self.events().emit(Event::BenchProgress {
                run_id,
                phase: BenchPhase::Measuring,
                step: i as u32 + 1,
                total,
                message: label,
            });
            let mut config = base.clone();
            config.port = crate::server::port_or_free(None)?;
            config.gpu_layers = ngl;
            config.cpu_moe = cpu_moe;
            let started = self
                .supervise(&runtime, config, registered.info.file_size, cancel)
                .await;
            let server = match started {
                Ok(s) => s,
                Err(crate::Error::Cancelled) => {
                    self.end_run(run_id, &crate::Error::Cancelled, None).await;
                    return Err(crate::Error::Cancelled);
                }
                // A setting that cannot start (out of memory, say) is a result, not the end.
                Err(e) => {
                    tracing::info!(error = %e, "tune point did not start");
                    continue;
                }
            };
            let measured = self.measure(run_id, &server, &opts, cancel).await;
            server.stop().await;
            match measured {
                Ok(samples) => {
                    let tps = samples
                        .iter()
                        .map(|s| s.predicted_per_second)
                        .fold(0.0, f64::max);
                    self.db()
                        .add_measurements(
                            run_id,
                            &[Measurement {
                                name: if cpu_moe {
                                    "tune_cpu_moe".into()
                                } else {
                                    "tune_gen_per_second".into()
                                },
                                repetition: ngl.map(i64::from).or(Some(-1)),
                                value: tps,
                                unit: "tok/s".into(),
                            }],
                        )
                        .await?;
                    points.push(TunePoint {
                        gpu_layers: ngl,
                        cpu_moe,
                        gen_per_second: tps,
                    });
                }
                Err(crate::Error::Cancelled) => {
                    self.end_run(run_id, &crate::Error::Cancelled, None).await;
                    return Err(crate::Error::Cancelled);
                }
                Err(e) => tracing::info!(error = %e, "tune point failed"),
            }
        }
        let best = points
            .iter()
            .cloned()
            .max_by(|a, b| a.gen_per_second.total_cmp(&b.gen_per_second));
        let Some(best) = best else {
            let msg = "No setting could run this model. Try a smaller model or quant.";
            self.db()
                .finish_run(
                    run_id,
                    RunStatus::Failed,
                    Some(("server_load_failed", msg)),
                    None,
                    None,
                    &history::now(),
                )
                .await?;
            return Err(crate::server::ServerError::LoadFailed { detail: msg.into() }.into());
        };
        let report = TuneReport {
            run_id,
            model: registered.path,
            layers,
            points,
            best,
        };
        self.db()
            .complete_run(run_id, &report, &history::now())
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_steps() {
        assert_eq!(super::layer_steps(18), vec![0, 4, 9, 13, 19]);
        assert_eq!(super::layer_steps(1), vec![0, 2]);
    }
}
