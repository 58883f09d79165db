//! This machine as the recommender sees it, assembled from detection, the history
//! (measured bandwidth, runs, calibration) and the catalog's tables.

use serde::Serialize;

use super::fit::{bandwidth_limit, efficiency, GpuProfile, MachineProfile, ModelShape, Placement};
use super::{rank, Backend, Candidate, Goal, MeasuredHere};
use crate::catalog::{self, Catalog};
use crate::history::RunStatus;
use crate::{Core, Result};

/// What `kindling recommend` shows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Recommendation {
    /// "iMac Retina 5K 27-inch, 2017 · Radeon Pro 575 4 GB · 32 GB RAM"
    pub machine: String,
    pub profile: MachineProfile,
    pub backend: Backend,
    pub goal: Goal,
    /// How many of this machine's runs calibrated the speed predictions.
    pub calibrated_from: usize,
    pub candidates: Vec<Candidate>,
}

/// A speed prediction for one model file on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub limit_tps: f64,
    pub efficiency: f64,
    pub predicted_tps: f64,
    pub calibrated_from: usize,
}

impl Core {
    /// The machine profile, using the latest measured bandwidth (or measuring now, and
    /// keeping the figure: predictions made from a fresh probe each time would reorder
    /// near neighbours with its noise from one look to the next).
    pub async fn machine_profile(&self) -> Result<(MachineProfile, Backend, String)> {
        let d = self.detect().await;
        let bw = match self.db().latest_bandwidth().await? {
            Some(b) => b,
            None => {
                let threads = d.hardware.logical_cores;
                let measured = tokio::task::spawn_blocking(move || {
                    crate::hardware::probe_bandwidth(threads, std::time::Duration::from_secs(1))
                })
                .await
                .expect("no panic")
                .bytes_per_second;
                self.db()
                    .insert_hardware(&d.hardware, Some(measured), &crate::history::now())
                    .await?;
                measured
            }
        };
        Ok(profile(&d.hardware, Some(bw)))
    }

    /// Measured ÷ bandwidth limit of this machine's completed speed runs.
    async fn efficiency_fractions(&self) -> Result<Vec<f64>> {
        Ok(self
            .db()
            .list_runs(200)
            .await?
            .into_iter()
            .filter(|r| r.status == RunStatus::Completed && r.kind == "speed")
            .filter_map(|r| r.summary?.get("fraction_of_limit")?.as_f64())
            .collect())
    }

    /// Predicted generation speed of a model file here (CPU placement unless a GPU fits).
    pub async fn predict_speed(&self, model: &std::path::Path) -> Result<Prediction> {
        let info = crate::gguf::inspect(model)?;
        let shape = ModelShape::from_gguf(&info);
        let (machine, _, _) = self.machine_profile().await?;
        let placement = super::fit::fit(&shape, &machine, 4096).placement;
        let fractions = self.efficiency_fractions().await?;
        let limit = bandwidth_limit(&shape, &machine, placement)
            .or_else(|| bandwidth_limit(&shape, &machine, Placement::Cpu))
            .unwrap_or(0.0);
        let eff = efficiency(&fractions);
        Ok(Prediction {
            limit_tps: limit,
            efficiency: eff,
            predicted_tps: limit * eff,
            calibrated_from: fractions.len(),
        })
    }

    /// Ranks the catalog for this machine and goal.
    pub async fn recommend(&self, goal: Goal) -> Result<Recommendation> {
        let (profile, backend, machine) = self.machine_profile().await?;
        let catalog = Catalog::builtin();
        let mut measured: Vec<MeasuredHere> = Vec::new();
        for r in self.db().list_runs(500).await? {
            if r.status != RunStatus::Completed {
                continue;
            }
            let Some(file) = r
                .model_path
                .as_deref()
                .and_then(|p| std::path::Path::new(p).file_name())
                .map(|f| f.to_string_lossy().into_owned())
            else {
                continue;
            };
            let s = r.summary.as_ref();
            let score = if r.kind == "quality" {
                s.and_then(|s| s.get("score")).and_then(|v| v.as_f64())
            } else {
                None
            };
            let tps = s
                .and_then(|s| {
                    s.pointer("/gen_per_second/median")
                        .or_else(|| s.get("gen_per_second"))
                })
                .and_then(|v| v.as_f64());
            match measured.iter_mut().find(|m| m.file_name == file) {
                Some(m) => {
                    m.score = m.score.or(score);
                    m.gen_tps = m.gen_tps.or(tps);
                }
                None => measured.push(MeasuredHere {
                    file_name: file,
                    score,
                    gen_tps: tps,
                }),
            }
        }
        let installed: Vec<String> = self
            .db()
            .models()
            .await?
            .into_iter()
            .filter(|m| std::path::Path::new(&m.path).exists())
            .filter_map(|m| {
                std::path::Path::new(&m.path)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .collect();
        let fractions = self.efficiency_fractions().await?;
        let candidates = rank(
            &catalog,
            &profile,
            &backend,
            goal,
            &measured,
            &installed,
            &fractions,
            u64::from(self.settings().ctx_size.max(4096)),
        );
        Ok(Recommendation {
            machine,
            profile,
            backend,
            goal,
            calibrated_from: fractions.len(),
            candidates,
        })
    }

    /// The model the menu-bar server uses: the one the user chose, else the best
    /// installed model for their goal, else the first model Kindling can find.
    pub async fn preferred_model(&self) -> Result<Option<std::path::PathBuf>> {
        let settings = self.settings();
        if let Some(chosen) = settings.server_model.filter(|p| p.is_file()) {
            return Ok(Some(chosen));
        }
        let models = self.db().models().await?;
        if let Ok(rec) = self.recommend(settings.goal).await {
            for c in rec.candidates.iter().filter(|c| c.installed && c.fit.fits) {
                let found = models
                    .iter()
                    .map(|m| std::path::PathBuf::from(&m.path))
                    .find(|p| {
                        p.is_file()
                            && p.file_name()
                                .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(&c.file))
                    });
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(self.default_models().into_iter().next())
    }
}

/// The recommender's view of `hw`: memory, the GPU a model may use and its bandwidth,
/// and the backend known issues are matched against; with a one-line summary.
pub(crate) fn profile(
    hw: &crate::hardware::HardwareProfile,
    cpu_bandwidth: Option<f64>,
) -> (MachineProfile, Backend, String) {
    let dev = hw.vulkan_devices.iter().find(|v| v.total_bytes.is_some());
    // The GPU a model would use: a discrete one before an integrated one (a MacBook
    // Pro lists its Intel graphics first and its Radeon second).
    let os_gpu = hw
        .gpus
        .iter()
        .filter(|g| !g.name.contains("Paravirtual"))
        .max_by_key(|g| (!g.unified, g.vram_bytes.unwrap_or(0)));
    let gpu = match (dev, os_gpu) {
        (Some(v), g) => Some(GpuProfile {
            name: v.name.clone(),
            vram_bytes: v.free_bytes.or(v.total_bytes).unwrap_or(0),
            unified: v.unified.unwrap_or(false) || g.is_some_and(|g| g.unified),
            bandwidth: catalog::gpu_bandwidth(&v.name).map(|b| b.gb_per_s * 1e9),
        }),
        (None, Some(g)) if hw.os == "macos" => Some(GpuProfile {
            name: g.name.clone(),
            vram_bytes: g.vram_bytes.unwrap_or(0),
            unified: g.unified,
            bandwidth: catalog::gpu_bandwidth(&g.name).map(|b| b.gb_per_s * 1e9),
        }),
        _ => None,
    };
    // Any device the runtime lists means a Vulkan build (MoltenVK's device lines
    // often carry no memory figure, so `dev` alone would miss them).
    let vulkan = dev.is_some() || !hw.vulkan_devices.is_empty();
    let backend = match &gpu {
        Some(g) if vulkan => Backend {
            name: "vulkan".into(),
            moltenvk: g.name.contains("MoltenVK")
                || hw
                    .vulkan_devices
                    .iter()
                    .any(|v| v.name.contains("MoltenVK"))
                || hw.os == "macos",
            gpu_vendor: hw
                .gpus
                .iter()
                .find(|x| g.name.contains(&x.name) || x.name.contains(&g.name))
                .or(os_gpu)
                .and_then(|x| x.vendor.clone())
                .or_else(|| g.name.split_whitespace().next().map(str::to_string)),
        },
        Some(g) => Backend {
            name: "metal".into(),
            moltenvk: false,
            gpu_vendor: Some(if g.unified {
                "Apple".into()
            } else {
                "AMD".into()
            }),
        },
        None => Backend {
            name: "cpu".into(),
            ..Backend::default()
        },
    };
    let name = hw
        .model_identifier
        .as_deref()
        .and_then(catalog::mac_name)
        .or(hw.model_identifier.clone())
        .unwrap_or_else(|| hw.cpu_brand.clone());
    let gpu_words = gpu.as_ref().map_or("no GPU for AI".to_string(), |g| {
        if g.unified {
            g.name.clone()
        } else {
            format!("{} {}", g.name, crate::units::format_bytes(g.vram_bytes))
        }
    });
    let summary = format!(
        "{name} · {gpu_words} · {} RAM",
        crate::units::format_bytes(hw.ram_total_bytes)
    );
    (
        MachineProfile {
            ram_bytes: hw.ram_total_bytes,
            gpu,
            cpu_bandwidth,
        },
        backend,
        summary,
    )
}
