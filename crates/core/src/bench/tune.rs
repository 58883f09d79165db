//! `tune`: measure generation speed at several GPU layer counts (and with experts kept
//! on the CPU for mixture-of-experts models), record every point, and pick the best —
//! beside what llama-server's own automatic placement chooses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::speed::SpeedOptions;
use super::stats::Stat;
use crate::events::{BenchPhase, Event};
use crate::history::{self, Measurement, RunStatus};
use crate::{Core, Result};

/// One measured setting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TunePoint {
    /// `None`: llama-server decided (its automatic fit).
    pub gpu_layers: Option<u32>,
    pub cpu_moe: bool,
    /// The median of the repetitions.
    pub gen_per_second: f64,
    /// All repetitions: the spread a difference must exceed to count.
    #[serde(default)]
    pub gen: Option<Stat>,
    /// The setting in words: "all 18 layers (and the output layer) on the GPU".
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TuneReport {
    pub run_id: i64,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub model: PathBuf,
    pub layers: u32,
    pub points: Vec<TunePoint>,
    /// The setting to use: the fastest, unless others are within the measured spread —
    /// then the simplest of those.
    pub best: TunePoint,
    /// The settings that tied with the best (inside the measured spread).
    #[serde(default)]
    pub tied_with: Vec<TunePoint>,
    /// What was found, in one sentence.
    #[serde(default)]
    pub verdict: String,
}

/// A GPU layer setting in words, for a model of `layers` repeating layers (llama.cpp
/// counts the output layer as one more).
pub fn setting_words(gpu_layers: Option<u32>, layers: u32, cpu_moe: bool) -> String {
    let base = match gpu_layers {
        None => "automatic (llama-server decides)".to_string(),
        Some(0) => "all on the processor".to_string(),
        Some(n) if n > layers => format!("all {layers} layers (and the output layer) on the GPU"),
        Some(n) if n == layers => {
            format!("all {layers} layers on the GPU (the output layer on the processor)")
        }
        Some(n) => format!("{n} of {layers} layers on the GPU"),
    };
    if cpu_moe {
        format!("{base}, experts on the processor")
    } else {
        base
    }
}

/// How simple a setting is to keep: llama-server's own choice first, then all or
/// nothing, then a split.
fn simplicity(p: &TunePoint, layers: u32) -> u32 {
    match p.gpu_layers {
        _ if p.cpu_moe => 4,
        None => 0,
        Some(n) if n > layers || n == 0 => 1,
        Some(_) => 2,
    }
}

/// Picks the setting to use from measured points: the fastest, unless others differ
/// from it by no more than the larger of the two measured spreads (max − min) — a tie,
/// settled by simplicity. Pure.
pub fn choose(points: &[TunePoint], layers: u32) -> Option<(TunePoint, Vec<TunePoint>, String)> {
    let fastest = points
        .iter()
        .max_by(|a, b| a.gen_per_second.total_cmp(&b.gen_per_second))?;
    let spread = |p: &TunePoint| p.gen.map_or(0.0, |s| s.max - s.min);
    let tied: Vec<&TunePoint> = points
        .iter()
        .filter(|p| fastest.gen_per_second - p.gen_per_second <= spread(fastest).max(spread(p)))
        .collect();
    let best = tied
        .iter()
        .copied()
        .min_by_key(|p| simplicity(p, layers))
        .unwrap_or(fastest)
        .clone();
    let others: Vec<TunePoint> = tied
        .iter()
        .filter(|p| **p != &best)
        .map(|p| (*p).clone())
        .collect();
    let verdict = if others.is_empty() {
        format!(
            "Use {}: {:.1} tokens/s, faster than every other setting by more than the measured spread.",
            best.label, best.gen_per_second
        )
    } else {
        format!(
            "{} and {} tie ({}): the differences are inside the measured spread, so Kindling keeps the simpler, {}.",
            best.label,
            others
                .iter()
                .map(|p| p.label.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            std::iter::once(&best)
                .chain(others.iter())
                .map(|p| format!("{:.1}", p.gen_per_second))
                .collect::<Vec<_>>()
                .join(" against ")
                + " tokens/s",
            best.label
        )
    };
    Some((best, others, verdict))
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
                kind: super::RunKind::Tune,
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
            repetitions: 2,
            max_repetitions: 4,
            warmup: true,
        };
        let mut points = Vec::new();
        let total = settings.len() as u32;
        for (i, (ngl, cpu_moe)) in settings.into_iter().enumerate() {
            let label = setting_words(ngl, layers, cpu_moe);
            self.events().emit(Event::BenchProgress {
                run_id,
                tokens_per_second: None,
                phase: BenchPhase::Measuring,
                step: i as u32 + 1,
                total,
                message: label.clone(),
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
                    let gen = Stat::of(
                        &samples
                            .iter()
                            .map(|s| s.predicted_per_second)
                            .collect::<Vec<_>>(),
                    );
                    let tps = gen.map_or(0.0, |g| g.median);
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
                        gen,
                        label,
                    });
                }
                Err(crate::Error::Cancelled) => {
                    self.end_run(run_id, &crate::Error::Cancelled, None).await;
                    return Err(crate::Error::Cancelled);
                }
                Err(e) => tracing::info!(error = %e, "tune point failed"),
            }
        }
        let Some((best, tied_with, verdict)) = choose(&points, layers) else {
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
            tied_with,
            verdict,
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

    fn point(gpu_layers: Option<u32>, reps: &[f64]) -> super::TunePoint {
        let gen = super::Stat::of(reps);
        super::TunePoint {
            gpu_layers,
            cpu_moe: false,
            gen_per_second: gen.unwrap().median,
            gen,
            label: super::setting_words(gpu_layers, 18, false),
        }
    }

    #[test]
    fn the_output_layer_is_named_not_counted_past_the_model() {
        assert_eq!(
            super::setting_words(Some(19), 18, false),
            "all 18 layers (and the output layer) on the GPU"
        );
        assert_eq!(
            super::setting_words(Some(9), 18, false),
            "9 of 18 layers on the GPU"
        );
        assert_eq!(
            super::setting_words(Some(0), 18, false),
            "all on the processor"
        );
    }

    #[test]
    fn a_difference_inside_the_spread_is_a_tie_and_the_simpler_setting_stays() {
        // The H200 run: automatic 345 against all layers 302, with the GPU's
        // repetitions 308–409 apart.
        let auto = point(None, &[308.0, 345.0, 409.0]);
        let all = point(Some(19), &[290.0, 302.0, 330.0]);
        let cpu = point(Some(0), &[52.0, 53.0, 54.0]);
        let (best, tied, verdict) =
            super::choose(&[all.clone(), auto.clone(), cpu.clone()], 18).unwrap();
        assert_eq!(best, auto, "llama-server's own choice is the simplest");
        assert_eq!(tied, vec![all.clone()]);
        assert!(verdict.contains("tie"), "{verdict}");
        // A clear winner is named as one.
        let steady_auto = point(None, &[344.0, 345.0, 346.0]);
        let steady_all = point(Some(19), &[301.0, 302.0, 303.0]);
        let (best, tied, verdict) =
            super::choose(&[steady_all, steady_auto.clone(), cpu], 18).unwrap();
        assert_eq!(best, steady_auto);
        assert!(tied.is_empty());
        assert!(verdict.starts_with("Use automatic"), "{verdict}");
        // The simpler of two tied settings wins even when it measured slower.
        let (best, _, _) = super::choose(
            &[
                point(Some(9), &[100.0, 104.0, 110.0]),
                point(Some(19), &[98.0, 101.0, 105.0]),
            ],
            18,
        )
        .unwrap();
        assert_eq!(best.gpu_layers, Some(19));
    }
}
