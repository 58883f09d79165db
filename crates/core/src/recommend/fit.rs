//! The one fit estimator: will this model fit this machine, where does it go (all on the
//! GPU, split, or CPU only), with how much context — and how fast will it generate.
//! Pure functions over a [`ModelShape`] and a [`MachineProfile`]; table-tested.

use serde::{Deserialize, Serialize};

const GB: f64 = 1e9;

/// What the estimator needs to know about a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelShape {
    pub file_bytes: u64,
    pub layers: u32,
    /// KV cache bytes per token of context (all layers, K and V, f16).
    pub kv_bytes_per_token: u64,
    pub max_context: u64,
    /// For mixture-of-experts: the share of the weights read per token.
    pub active_fraction: Option<f64>,
    /// Share of the weights llama.cpp keeps in main memory whatever is offloaded (Gemma's
    /// per-layer embeddings): they need no GPU memory and are looked up, not read whole.
    #[serde(default)]
    pub host_fraction: f64,
}

impl ModelShape {
    /// Bytes that go to the GPU when the model is offloaded whole.
    pub fn device_bytes(&self) -> u64 {
        (self.file_bytes as f64 * (1.0 - self.host_fraction.clamp(0.0, 1.0))) as u64
    }

    /// Bytes read per generated token.
    pub fn bytes_per_token(&self) -> f64 {
        self.device_bytes() as f64 * self.active_fraction.unwrap_or(1.0)
    }
}

impl ModelShape {
    /// Exact shape from a GGUF header.
    pub fn from_gguf(info: &crate::gguf::GgufInfo) -> ModelShape {
        let layers = info.block_count.unwrap_or(32) as u32;
        let heads = info.head_count.unwrap_or(32);
        let kv_heads = info.head_count_kv.unwrap_or(heads);
        let emb = info.embedding_length.unwrap_or(4096);
        let k = info.key_length.unwrap_or(emb / heads.max(1));
        let v = info.value_length.unwrap_or(k);
        ModelShape {
            // The weights: what is read per token and held in memory.
            file_bytes: info.tensor_bytes.max(1),
            layers,
            kv_bytes_per_token: u64::from(layers) * kv_heads * (k + v) * 2,
            max_context: info.context_length.unwrap_or(4096),
            active_fraction: None,
            host_fraction: info.host_only_bytes as f64 / info.tensor_bytes.max(1) as f64,
        }
    }

    /// Approximate shape from the catalog, for models not on disk. Stated heuristics:
    /// ~16 + 1.5 layers per billion parameters, and 35 KB of f16 KV cache per token per
    /// billion parameters (Llama 3.2 3B: 115 KB/token; Qwen3 4B: 147 KB/token), scaled by
    /// the share of layers that attend to the whole context (sliding-window models keep
    /// only a window for the others).
    pub fn from_catalog(f: &crate::catalog::Family, v: &crate::catalog::Variant) -> ModelShape {
        let dense_b = f.effective_b.or(f.active_b).unwrap_or(f.params_b);
        ModelShape {
            file_bytes: v.bytes(),
            layers: (16.0 + 1.5 * f.params_b.min(60.0)).round() as u32,
            kv_bytes_per_token: (35_000.0
                * dense_b.max(0.1)
                * f.full_attention_share.unwrap_or(1.0).clamp(0.05, 1.0))
                as u64,
            max_context: f.context,
            active_fraction: f.active_b.map(|a| (a / f.params_b).clamp(0.01, 1.0)),
            host_fraction: f.host_b.map_or(0.0, |h| (h / f.params_b).clamp(0.0, 0.9)),
        }
    }
}

/// What the estimator needs to know about a machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MachineProfile {
    pub ram_bytes: u64,
    pub gpu: Option<GpuProfile>,
    /// Measured CPU memory bandwidth, bytes/s.
    pub cpu_bandwidth: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GpuProfile {
    pub name: String,
    pub vram_bytes: u64,
    /// Shares the main memory (Apple Silicon).
    pub unified: bool,
    /// From the table of known GPUs; `None` when unknown.
    pub bandwidth: Option<f64>,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Placement {
    Gpu,
    Partial { gpu_layers: u32, layers: u32 },
    Cpu,
}

/// The estimate for one model on one machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Fit {
    pub fits: bool,
    pub placement: Placement,
    pub context: u64,
    pub reduced_context: bool,
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub compute_bytes: u64,
    /// Memory kept for the system and other apps.
    pub reserve_bytes: u64,
    pub why: String,
}

/// Memory the OS and other apps keep: a quarter of RAM, at least 3 GB (on a unified-memory
/// Mac the GPU may use at most ~75% of RAM anyway).
pub fn ram_reserve(ram: u64) -> u64 {
    (ram / 4).max(3_000_000_000)
}

/// VRAM a discrete GPU keeps for the display.
pub const VRAM_RESERVE: u64 = 400_000_000;

/// Compute buffers: 5% of the weights, at least 300 MB.
pub fn compute_bytes(weights: u64) -> u64 {
    (weights / 20).max(300_000_000)
}

/// Main memory the system and other apps leave for models, less `taken` (what a model
/// already running holds).
fn ram_usable(mach: &MachineProfile, taken: u64) -> u64 {
    mach.ram_bytes
        .saturating_sub(ram_reserve(mach.ram_bytes))
        .saturating_sub(taken)
}

fn try_fit(
    m: &ModelShape,
    mach: &MachineProfile,
    ctx: u64,
    ram_taken: u64,
) -> Option<(Placement, u64, u64)> {
    let kv = m.kv_bytes_per_token * ctx;
    let device = m.device_bytes();
    let host = m.file_bytes - device;
    let compute = compute_bytes(device);
    let need = m.file_bytes + kv + compute;
    let ram_usable = ram_usable(mach, ram_taken);
    match &mach.gpu {
        Some(g) if g.unified => (need <= ram_usable).then_some((Placement::Gpu, kv, compute)),
        Some(g) => {
            let vram = g.vram_bytes.saturating_sub(VRAM_RESERVE);
            if device + kv + compute <= vram && host <= ram_usable {
                return Some((Placement::Gpu, kv, compute));
            }
            let per_layer = (device + kv) / u64::from(m.layers.max(1));
            let gpu_layers =
                (vram.saturating_sub(compute) / per_layer.max(1)).min(u64::from(m.layers)) as u32;
            let cpu_part = per_layer * u64::from(m.layers - gpu_layers) + host;
            if cpu_part + compute > ram_usable {
                return None;
            }
            Some((
                if gpu_layers == 0 {
                    Placement::Cpu
                } else {
                    Placement::Partial {
                        gpu_layers,
                        layers: m.layers,
                    }
                },
                kv,
                compute,
            ))
        }
        None => (need <= ram_usable).then_some((Placement::Cpu, kv, compute)),
    }
}

/// Fits `m` on `mach` with `desired` context, reducing context before giving up.
pub fn fit(m: &ModelShape, mach: &MachineProfile, desired: u64) -> Fit {
    fit_with(m, mach, desired, 0)
}

/// [`fit`] with `ram_taken` bytes of main memory already held by another model.
fn fit_with(m: &ModelShape, mach: &MachineProfile, desired: u64, ram_taken: u64) -> Fit {
    let desired = desired.min(m.max_context).max(512);
    let mut tries: Vec<u64> = vec![desired];
    tries.extend(
        [16384, 8192, 4096, 2048]
            .into_iter()
            .filter(|c| *c < desired),
    );
    let reserve = ram_reserve(mach.ram_bytes);
    // All on the GPU with a somewhat smaller context (not below 4096) beats a split at
    // the full one: a split runs at the processor's speed for its share.
    let gpu_first = tries
        .iter()
        .copied()
        .filter(|c| *c >= desired.min(4096))
        .find(|c| {
            matches!(
                try_fit(m, mach, *c, ram_taken),
                Some((Placement::Gpu, _, _))
            )
        });
    let order: Vec<u64> = gpu_first.into_iter().chain(tries.iter().copied()).collect();
    for ctx in order {
        if let Some((placement, kv, compute)) = try_fit(m, mach, ctx, ram_taken) {
            let gb = |b: u64| b as f64 / GB;
            let where_ = match (placement, &mach.gpu) {
                (Placement::Gpu, Some(g)) if g.unified => "fits in memory, all on the GPU".to_string(),
                (Placement::Gpu, Some(g)) => format!("fits entirely in your {:.0} GB GPU", gb(g.vram_bytes)),
                (Placement::Partial { gpu_layers, layers }, Some(g)) => format!("{gpu_layers} of {layers} layers fit in your {:.0} GB GPU; the rest runs on the processor", gb(g.vram_bytes)),
                _ => "runs on the processor".to_string(),
            };
            let why = if ctx < desired {
                format!("{where_}, with the context reduced to {ctx} tokens")
            } else {
                where_
            };
            return Fit {
                fits: true,
                placement,
                context: ctx,
                reduced_context: ctx < desired,
                weights_bytes: m.file_bytes,
                kv_bytes: kv,
                compute_bytes: compute,
                reserve_bytes: reserve,
                why,
            };
        }
    }
    let need = m.file_bytes + compute_bytes(m.file_bytes) + m.kv_bytes_per_token * 2048;
    Fit {
        fits: false,
        placement: Placement::Cpu,
        context: 0,
        reduced_context: true,
        weights_bytes: m.file_bytes,
        kv_bytes: 0,
        compute_bytes: compute_bytes(m.file_bytes),
        reserve_bytes: reserve,
        why: format!("does not fit: needs about {:.1} GB even with a 2048-token context, and {:.1} GB is free for models", need as f64 / GB, ram_usable(mach, ram_taken) as f64 / GB),
    }
}

/// Main memory a running model holds: on a unified-memory Mac or the processor, its
/// weights, cache and buffers; on a discrete GPU, the share of layers left on the
/// processor (and what llama.cpp always keeps in main memory).
pub fn ram_held(m: &ModelShape, mach: &MachineProfile, gpu_layers: Option<u32>, ctx: u64) -> u64 {
    let kv = m.kv_bytes_per_token * ctx;
    let device = m.device_bytes();
    let whole = m.file_bytes + kv + compute_bytes(device);
    match &mach.gpu {
        Some(g) if !g.unified => {
            let layers = u64::from(m.layers.max(1));
            // `None`: llama.cpp's choice, all of it on the GPU.
            let on_gpu = gpu_layers.map_or(layers, |n| u64::from(n).min(layers));
            let on_cpu = (device + kv) / layers * (layers - on_gpu);
            (m.file_bytes - device)
                + on_cpu
                + if on_gpu < layers {
                    compute_bytes(device)
                } else {
                    0
                }
        }
        _ => whole,
    }
}

/// `m` beside a model already running (`running`: its shape, GPU layers and context), as
/// the field report's owner ran them: on the processor only when `on_processor` (the
/// second model, a large one on its own port), else where Kindling plans it (the menu-bar
/// model beside a second one). Says why when the two do not fit in memory together.
pub fn fit_beside(
    m: &ModelShape,
    mach: &MachineProfile,
    desired: u64,
    running: Option<(&ModelShape, Option<u32>, u64)>,
    on_processor: bool,
) -> Fit {
    let taken = running.map_or(0, |(r, layers, ctx)| ram_held(r, mach, layers, ctx));
    let processor_only = MachineProfile {
        gpu: None,
        ..mach.clone()
    };
    let place = if on_processor { &processor_only } else { mach };
    let mut f = fit_with(m, place, desired, taken);
    if !f.fits && taken > 0 {
        let other = if on_processor {
            "the model the server runs"
        } else {
            "the second model"
        };
        f.why = format!(
            "does not fit beside {other}: that one holds about {:.1} GB of memory, \
             and this one needs about {:.1} GB more even with a 2048-token context, with {:.1} GB left for models",
            taken as f64 / GB,
            (m.file_bytes + compute_bytes(m.file_bytes) + m.kv_bytes_per_token * 2048) as f64 / GB,
            ram_usable(mach, taken) as f64 / GB,
        );
    }
    f
}

/// Generation speed the memory bandwidth allows (tokens/s, before efficiency); `None`
/// when a needed bandwidth is unknown. See [`crate::bench::limit::speed_limit`].
pub fn bandwidth_limit(m: &ModelShape, mach: &MachineProfile, placement: Placement) -> Option<f64> {
    crate::bench::limit::speed_limit(m, mach, placement).limit_per_second
}

/// Share of the bandwidth limit a model reaches when nothing has been measured here yet.
pub const DEFAULT_EFFICIENCY: f64 = 0.55;

/// Measured ÷ limit from this machine's own runs (median), or the default.
pub fn efficiency(measured_fractions: &[f64]) -> f64 {
    crate::bench::Stat::of(measured_fractions)
        .map_or(DEFAULT_EFFICIENCY, |s| s.median.clamp(0.05, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    const G: u64 = 1_000_000_000;

    /// The machines the issue names, written as parsed profiles (no invented command output).
    fn imac_2017() -> MachineProfile {
        MachineProfile {
            ram_bytes: 32 * (1 << 30),
            gpu: Some(GpuProfile {
                name: "AMD Radeon Pro 575".into(),
                vram_bytes: 4 * (1 << 30),
                unified: false,
                bandwidth: Some(217.6e9),
            }),
            cpu_bandwidth: Some(20e9),
        }
    }
    fn air_8gb() -> MachineProfile {
        MachineProfile {
            ram_bytes: 8 * (1 << 30),
            gpu: Some(GpuProfile {
                name: "Apple M1".into(),
                vram_bytes: 0,
                unified: true,
                bandwidth: Some(68.25e9),
            }),
            cpu_bandwidth: Some(60e9),
        }
    }
    fn m4_pro_24gb() -> MachineProfile {
        MachineProfile {
            ram_bytes: 24 * (1 << 30),
            gpu: Some(GpuProfile {
                name: "Apple M4 Pro".into(),
                vram_bytes: 0,
                unified: true,
                bandwidth: Some(273e9),
            }),
            cpu_bandwidth: Some(200e9),
        }
    }

    fn shape(id: &str) -> ModelShape {
        let c = Catalog::builtin();
        let (f, v) = c.find(id).unwrap();
        ModelShape::from_catalog(f, v)
    }

    #[test]
    fn fit_table() {
        use Placement::*;
        let cases: Vec<(&str, MachineProfile, &str, bool)> = vec![
            ("gemma4-e2b:Q4_K_M", imac_2017(), "gpu", true),
            // Its per-layer embeddings stay in main memory: the rest fits the Radeon.
            ("gemma4-e4b:Q4_K_M", imac_2017(), "gpu", true),
            ("gemma4-e4b:Q8_0", imac_2017(), "partial", true),
            ("gemma4-31b:Q4_K_M", imac_2017(), "partial", true),
            ("gemma4-31b:Q8_0", imac_2017(), "none", false),
            ("gemma4-31b:Q4_K_M", air_8gb(), "none", false),
            ("gemma4-e2b:Q4_K_M", air_8gb(), "gpu", true),
            ("gemma4-e4b:Q8_0", air_8gb(), "none", false),
            ("qwen3-4b:Q4_K_M", air_8gb(), "gpu", true),
            ("gemma4-26b-a4b:Q4_K_M", m4_pro_24gb(), "gpu", true),
            ("gemma4-26b-a4b:Q8_0", m4_pro_24gb(), "none", false),
            ("gemma4-e4b:Q8_0", m4_pro_24gb(), "gpu", true),
            ("llama3.2-3b:Q4_K_M", m4_pro_24gb(), "gpu", true),
        ];
        for (id, mach, want, fits) in cases {
            let f = fit(&shape(id), &mach, 8192);
            let got = match (f.fits, f.placement) {
                (false, _) => "none",
                (true, Gpu) => "gpu",
                (true, Partial { .. }) => "partial",
                (true, Cpu) => "cpu",
            };
            assert_eq!(
                (got, f.fits),
                (want, fits),
                "{id} on {:?}: {}",
                mach.gpu.as_ref().map(|g| &g.name),
                f.why
            );
        }
    }

    #[test]
    fn context_is_reduced_before_giving_up_and_said() {
        let mut m = shape("llama3.2-3b:Q4_K_M");
        m.kv_bytes_per_token = 400_000; // a KV-hungry model
        let mach = MachineProfile {
            ram_bytes: 8 * G,
            gpu: None,
            cpu_bandwidth: Some(20e9),
        };
        let f = fit(&m, &mach, 32768);
        assert!(f.fits && f.reduced_context && f.context < 32768, "{f:?}");
        assert!(f.why.contains("context reduced to"), "{}", f.why);
    }

    #[test]
    fn a_partial_split_puts_what_fits_on_the_gpu() {
        let f = fit(&shape("llama3.1-8b:Q4_K_M"), &imac_2017(), 4096);
        let Placement::Partial { gpu_layers, layers } = f.placement else {
            panic!("{f:?}")
        };
        assert!(gpu_layers > 0 && gpu_layers < layers);
        assert!(f.why.contains("layers fit in your 4 GB GPU"), "{}", f.why);
    }

    #[test]
    fn bandwidth_limits_follow_the_split() {
        let m = shape("gemma4-e2b:Q4_K_M");
        let mach = imac_2017();
        let gpu = bandwidth_limit(&m, &mach, Placement::Gpu).unwrap();
        let cpu = bandwidth_limit(&m, &mach, Placement::Cpu).unwrap();
        let half = bandwidth_limit(
            &m,
            &mach,
            Placement::Partial {
                gpu_layers: 10,
                layers: 20,
            },
        )
        .unwrap();
        assert!(gpu > half && half > cpu, "{gpu} {half} {cpu}");
        assert!((gpu - 217.6e9 / m.bytes_per_token()).abs() < 0.1);
        assert!(
            m.bytes_per_token() < 0.5 * 3.1e9,
            "the E2B reads less than its file"
        );
        let moe = shape("gemma4-26b-a4b:Q4_K_M");
        let dense = shape("gemma4-31b:Q4_K_M");
        assert!(
            bandwidth_limit(&moe, &m4_pro_24gb(), Placement::Gpu).unwrap()
                > 4.0 * bandwidth_limit(&dense, &m4_pro_24gb(), Placement::Gpu).unwrap()
        );
        let unknown = MachineProfile {
            gpu: Some(GpuProfile {
                bandwidth: None,
                ..mach.gpu.clone().unwrap()
            }),
            ..mach
        };
        assert_eq!(
            bandwidth_limit(&m, &unknown, Placement::Gpu),
            None,
            "unknown stays unknown"
        );
    }

    #[test]
    fn a_large_second_model_fits_on_the_processor_beside_the_gpu_one_on_the_imac() {
        let mach = imac_2017();
        let served = shape("gemma4-e4b:Q4_K_M");
        let second = shape("gemma4-31b:Q4_K_M");
        let f = fit_beside(&second, &mach, 8192, Some((&served, None, 8192)), true);
        assert!(f.fits, "{}", f.why);
        assert_eq!(
            f.placement,
            Placement::Cpu,
            "the second one never takes the GPU"
        );
    }

    #[test]
    fn a_pair_that_does_not_fit_together_is_refused_and_says_why() {
        let mach = air_8gb();
        let served = shape("gemma4-e2b:Q4_K_M");
        let second = shape("qwen3-4b:Q4_K_M");
        let alone = fit_beside(&second, &mach, 4096, None, true);
        assert!(alone.fits, "alone it fits: {}", alone.why);
        let pair = fit_beside(&second, &mach, 4096, Some((&served, None, 4096)), true);
        assert!(!pair.fits, "{pair:?}");
        assert!(
            pair.why.contains("beside the model the server runs") && pair.why.contains("GB"),
            "{}",
            pair.why
        );
    }

    #[test]
    fn the_first_model_is_refused_beside_a_second_that_leaves_no_room() {
        let mach = air_8gb();
        let first = shape("qwen3-4b:Q4_K_M");
        let second = shape("gemma4-e2b:Q4_K_M");
        assert!(fit(&first, &mach, 4096).fits);
        let f = fit_beside(&first, &mach, 4096, Some((&second, Some(0), 4096)), false);
        assert!(!f.fits, "{f:?}");
        assert!(f.why.contains("beside the second model"), "{}", f.why);
    }

    #[test]
    fn a_model_on_a_discrete_gpu_holds_only_what_stays_on_the_processor() {
        let mach = imac_2017();
        let m = shape("llama3.2-3b:Q4_K_M");
        let all_gpu = ram_held(&m, &mach, None, 4096);
        let half = ram_held(&m, &mach, Some(m.layers / 2), 4096);
        let cpu = ram_held(&m, &mach, Some(0), 4096);
        assert!(all_gpu < half && half < cpu, "{all_gpu} {half} {cpu}");
        assert_eq!(
            ram_held(&m, &air_8gb(), None, 4096),
            m.file_bytes + m.kv_bytes_per_token * 4096 + compute_bytes(m.device_bytes()),
            "unified memory holds all of it"
        );
    }

    #[test]
    fn efficiency_defaults_then_calibrates() {
        assert_eq!(efficiency(&[]), DEFAULT_EFFICIENCY);
        assert_eq!(efficiency(&[0.4, 0.5, 0.45]), 0.45);
    }
}
