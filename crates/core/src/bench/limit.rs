//! What bounds generation speed: every token reads the model's weights once, so a run can
//! go no faster than the memory its weights sit in allows. That memory follows placement —
//! a model wholly on a discrete GPU is bound by the GPU's memory, one on the processor by
//! main memory, a split one by both shares — and a bandwidth Kindling does not know is
//! said to be unknown, never replaced by another memory's figure. Pure.

use serde::{Deserialize, Serialize};

use crate::recommend::fit::{fit, MachineProfile, ModelShape, Placement};

/// The speed limit of one model on one machine, and where its figure came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SpeedLimit {
    pub placement: Placement,
    /// The memory the weights are read from, in words ("main memory (measured)").
    pub memory: String,
    /// Bytes/s behind the limit (the share-weighted figure for a split); `None` when a
    /// needed bandwidth is not known.
    pub bandwidth_bytes_per_second: Option<f64>,
    /// At most this many tokens/s; `None` when a needed bandwidth is not known.
    pub limit_per_second: Option<f64>,
}

/// Where a bandwidth figure came from.
fn gpu_memory(machine: &MachineProfile) -> (Option<f64>, String) {
    match &machine.gpu {
        // Unified memory: the GPU reads the same memory the probe measured.
        Some(g) if g.unified => match machine.cpu_bandwidth {
            Some(b) => (
                Some(b),
                "memory shared by the processor and GPU (measured)".into(),
            ),
            None => (
                g.bandwidth,
                format!("{}'s memory (Kindling's GPU table)", g.name),
            ),
        },
        Some(g) => match g.bandwidth {
            Some(b) => (
                Some(b),
                format!("{}'s memory (Kindling's GPU table)", g.name),
            ),
            None => (
                None,
                format!("{}'s memory (speed not in Kindling's table)", g.name),
            ),
        },
        None => (None, "no GPU".into()),
    }
}

/// The limit for `model` placed as `placement` on `machine`.
pub fn speed_limit(
    model: &ModelShape,
    machine: &MachineProfile,
    placement: Placement,
) -> SpeedLimit {
    let per_token = model.bytes_per_token();
    let cpu = (machine.cpu_bandwidth, "main memory (measured)".to_string());
    let (memory, parts) = match placement {
        Placement::Cpu => (cpu.1.clone(), vec![(1.0, cpu.0)]),
        Placement::Gpu => {
            let (bw, words) = gpu_memory(machine);
            (words, vec![(1.0, bw)])
        }
        Placement::Partial { gpu_layers, layers } => {
            let share = f64::from(gpu_layers.min(layers)) / f64::from(layers.max(1));
            let (bw, words) = gpu_memory(machine);
            (
                format!(
                    "{words} for {gpu_layers} of {layers} layers, {} for the rest",
                    cpu.1
                ),
                vec![(share, bw), (1.0 - share, cpu.0)],
            )
        }
    };
    // Seconds per token: each share of the weights over its memory's bandwidth.
    let seconds: Option<f64> = parts
        .iter()
        .filter(|(share, _)| *share > 0.0)
        .map(|(share, bw)| bw.filter(|b| *b > 0.0).map(|b| per_token * share / b))
        .sum();
    let limit = seconds.filter(|s| *s > 0.0).map(|s| 1.0 / s);
    SpeedLimit {
        placement,
        memory,
        bandwidth_bytes_per_second: limit.map(|l| l * per_token),
        limit_per_second: limit,
    }
}

/// Where a server started with `gpu_layers` (`None`: llama.cpp's own choice, which
/// offloads what fits) puts `model` on `machine`.
pub fn run_placement(
    model: &ModelShape,
    machine: &MachineProfile,
    gpu_layers: Option<u32>,
    context: u64,
) -> Placement {
    if machine.gpu.is_none() {
        return Placement::Cpu;
    }
    match gpu_layers {
        Some(0) => Placement::Cpu,
        Some(n) if n >= model.layers => Placement::Gpu,
        Some(n) => Placement::Partial {
            gpu_layers: n,
            layers: model.layers,
        },
        None => fit(model, machine, context).placement,
    }
}

impl SpeedLimit {
    /// One sentence on what the run reached against the limit; `effective` is the
    /// bandwidth the run achieved (tokens/s × bytes read per token).
    pub fn sentence(&self, gen_per_second: f64, effective: Option<f64>) -> String {
        let gbs = |b: f64| format!("{:.1} GB/s", b / 1e9);
        let effective_words = effective.map_or(String::new(), |e| {
            format!(
                "; this run read its weights at an effective {} (tokens/s × bytes per token)",
                gbs(e)
            )
        });
        match (self.limit_per_second, self.bandwidth_bytes_per_second) {
            (Some(limit), Some(bw)) => format!(
                "{} reads at {}, so this model could reach at most {:.0} tokens/s; it runs at {:.0}% of that",
                capitalized(&self.memory),
                gbs(bw),
                limit,
                gen_per_second / limit * 100.0
            ),
            _ => format!(
                "unknown: {}{}",
                self.memory, effective_words
            ),
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::fit::GpuProfile;

    fn model(bytes: u64) -> ModelShape {
        ModelShape {
            file_bytes: bytes,
            layers: 18,
            kv_bytes_per_token: 10_000,
            max_context: 8192,
            active_fraction: None,
            host_fraction: 0.0,
        }
    }

    fn machine(gpu: Option<(&str, bool, Option<f64>)>) -> MachineProfile {
        MachineProfile {
            ram_bytes: 64 << 30,
            gpu: gpu.map(|(name, unified, bw)| GpuProfile {
                name: name.into(),
                vram_bytes: 8 << 30,
                unified,
                bandwidth: bw,
            }),
            cpu_bandwidth: Some(100e9),
        }
    }

    #[test]
    fn the_limit_follows_the_memory_the_weights_are_in() {
        let m = model(200_000_000);
        // On the processor: main memory, measured.
        let l = speed_limit(&m, &machine(None), Placement::Cpu);
        assert_eq!(l.limit_per_second, Some(500.0));
        assert!(l.memory.contains("main memory"), "{}", l.memory);
        // Wholly on a discrete GPU: the GPU's memory, never the processor's.
        let known = machine(Some(("AMD Radeon Pro 575", false, Some(217.6e9))));
        let l = speed_limit(&m, &known, Placement::Gpu);
        assert_eq!(l.limit_per_second.map(|x| x.round()), Some(1088.0));
        assert!(l.memory.contains("Radeon Pro 575"), "{}", l.memory);
        // Half the layers on each: the two shares' times add up.
        let half = Placement::Partial {
            gpu_layers: 9,
            layers: 18,
        };
        let l = speed_limit(&m, &known, half);
        let want = 1.0 / (1e8 / 217.6e9 + 1e8 / 100e9);
        assert!((l.limit_per_second.unwrap() - want).abs() < 1e-6, "{l:?}");
        // Unified memory: the measured figure.
        let apple = machine(Some(("Apple M1", true, Some(68.25e9))));
        let l = speed_limit(&m, &apple, Placement::Gpu);
        assert_eq!(l.bandwidth_bytes_per_second.map(|b| b.round()), Some(100e9));
    }

    #[test]
    fn an_unknown_gpu_gives_no_limit_and_never_the_processors_figure() {
        let m = model(200_000_000);
        let h200 = machine(Some(("NVIDIA H200", false, None)));
        for placement in [
            Placement::Gpu,
            Placement::Partial {
                gpu_layers: 9,
                layers: 18,
            },
        ] {
            let l = speed_limit(&m, &h200, placement);
            assert_eq!(l.limit_per_second, None, "{placement:?}");
            assert_eq!(l.bandwidth_bytes_per_second, None);
        }
        let l = speed_limit(&m, &h200, Placement::Gpu);
        let s = l.sentence(392.0, Some(392.0 * 2e8));
        assert!(
            s.contains("not in Kindling's table") && s.contains("effective 78.4 GB/s"),
            "{s}"
        );
        assert!(!s.contains("100.0 GB/s"), "{s}");
    }

    #[test]
    fn placement_follows_the_layers_the_server_was_given() {
        let m = model(1 << 30);
        let gpu = machine(Some(("AMD Radeon Pro 575", false, Some(217.6e9))));
        assert_eq!(run_placement(&m, &gpu, Some(0), 4096), Placement::Cpu);
        assert_eq!(run_placement(&m, &gpu, Some(999), 4096), Placement::Gpu);
        assert_eq!(run_placement(&m, &gpu, Some(18), 4096), Placement::Gpu);
        assert_eq!(
            run_placement(&m, &gpu, Some(6), 4096),
            Placement::Partial {
                gpu_layers: 6,
                layers: 18
            }
        );
        assert_eq!(run_placement(&m, &gpu, None, 4096), Placement::Gpu);
        assert_eq!(
            run_placement(&m, &machine(None), None, 4096),
            Placement::Cpu
        );
    }
}
