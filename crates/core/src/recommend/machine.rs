//! This machine as the recommender sees it, assembled from detection, the history
//! (measured bandwidth, runs, calibration) and the catalog's tables.

use serde::Serialize;

use super::fit::{bandwidth_limit, efficiency, GpuProfile, MachineProfile, ModelShape, Placement};
use super::{rank, Backend, Candidate, Goal, Installed, MeasuredHere};
use crate::bench::RunResult;
use crate::catalog;
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
    /// Made for a machine profile brought from elsewhere, not for this machine.
    pub for_another_machine: bool,
}

/// Another machine, as `kindling detect --json` writes it there. Keys it does not know
/// are ignored, so a profile from a newer Kindling still reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MachineFile {
    pub hardware: crate::hardware::HardwareProfile,
    /// Main memory's measured speed there, bytes/s.
    #[serde(default)]
    pub memory_bandwidth_bytes_per_second: Option<f64>,
    /// The runtime there, when the profile says (its build decides which known issues
    /// still apply).
    #[serde(default)]
    pub runtime_info: Option<MachineRuntime>,
}

/// The part of a profile's runtime that matters here.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MachineRuntime {
    #[serde(default)]
    pub manifest: Option<crate::runtime::RuntimeManifest>,
}

/// The machine profiles Kindling ships (`models/machines/`), by name.
pub const SHIPPED_MACHINES: [(&str, &str); 3] = [
    (
        "imac-2017-radeon-pro-575",
        include_str!("../../../../models/machines/imac-2017-radeon-pro-575.json"),
    ),
    (
        "macbook-air-m1-8gb",
        include_str!("../../../../models/machines/macbook-air-m1-8gb.json"),
    ),
    (
        "mac-mini-m4-pro-24gb",
        include_str!("../../../../models/machines/mac-mini-m4-pro-24gb.json"),
    ),
];

impl MachineFile {
    /// A profile file, or a shipped profile by (the start of) its name: `imac-2017`.
    pub fn find(name_or_path: &str) -> Result<MachineFile> {
        let path = std::path::Path::new(name_or_path);
        let invalid = |detail: String| crate::Error::MachineInvalid {
            path: path.to_path_buf(),
            detail,
        };
        if !path.exists() {
            let mut shipped = SHIPPED_MACHINES
                .iter()
                .filter(|(name, _)| !name_or_path.is_empty() && name.starts_with(name_or_path));
            return match (shipped.next(), shipped.next()) {
                (Some((_, text)), None) => Ok(MachineFile::parse(text)
                    .expect("the shipped profiles are checked by a unit test")),
                (Some(_), Some(_)) => Err(invalid(format!(
                    "it names more than one of Kindling's profiles ({})",
                    shipped_names()
                ))),
                (None, _) => Err(invalid(format!(
                    "there is no such file, and Kindling's own profiles are {}",
                    shipped_names()
                ))),
            };
        }
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        MachineFile::parse(&text).map_err(invalid)
    }

    pub fn parse(text: &str) -> std::result::Result<MachineFile, String> {
        serde_json::from_str(text).map_err(|e| format!("not a machine profile: {e}"))
    }
}

fn shipped_names() -> String {
    SHIPPED_MACHINES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
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
        let bw = self.kept_bandwidth(&d.hardware).await?;
        let (machine, backend, summary) = profile(&d.hardware, Some(bw));
        let manifest = d.runtime_info.as_ref().and_then(|i| i.manifest.as_ref());
        Ok((machine, backend.with_runtime(manifest), summary))
    }

    /// Main memory's speed here: the figure kept from the last probe, or measured now
    /// (about a second) and kept.
    pub(crate) async fn kept_bandwidth(
        &self,
        hw: &crate::hardware::HardwareProfile,
    ) -> Result<f64> {
        if let Some(b) = self.db().latest_bandwidth().await? {
            return Ok(b);
        }
        let threads = hw.logical_cores;
        let measured = tokio::task::spawn_blocking(move || {
            crate::hardware::probe_bandwidth(threads, std::time::Duration::from_secs(1))
        })
        .await
        .expect("no panic")
        .bytes_per_second;
        self.db()
            .insert_hardware(hw, Some(measured), &crate::history::now())
            .await?;
        Ok(measured)
    }

    /// This machine's own completed runs, newest first. Imported ones never count, nor do
    /// the runs that settled a showdown's tie (they repeat a quick run's figures, and their
    /// full-suite score is not comparable with the quick scores beside it).
    async fn own_runs(&self) -> Result<Vec<crate::history::RunSummary>> {
        Ok(self
            .db()
            .list_runs(500)
            .await?
            .into_iter()
            .filter(|r| r.status == RunStatus::Completed && !r.imported)
            .filter(|r| !r.result.as_ref().is_some_and(|x| x.is_tie_break()))
            .collect())
    }

    /// The share of its memory's speed this machine reaches running a model: measured
    /// by its own runs (median), else the default.
    pub(crate) async fn efficiency_here(&self) -> f64 {
        efficiency(&self.efficiency_fractions().await.unwrap_or_default())
    }

    /// Measured ÷ the speed limit, from this machine's speed runs and the speed phase of
    /// its quality runs: how close this machine gets to what its memory allows.
    async fn efficiency_fractions(&self) -> Result<Vec<f64>> {
        Ok(self
            .own_runs()
            .await?
            .iter()
            .filter_map(|r| r.result.as_ref()?.fraction_of_limit())
            .collect())
    }

    /// What this machine's runs wholly on its GPU achieved (median bytes/s read), for
    /// predictions on a GPU whose memory speed is not in Kindling's table.
    async fn gpu_effective_bandwidth(&self) -> Result<Option<f64>> {
        let achieved: Vec<f64> = self
            .own_runs()
            .await?
            .iter()
            .filter_map(|r| match r.result.as_ref()? {
                RunResult::Speed(s)
                    if s.limit
                        .as_ref()
                        .is_some_and(|l| l.placement == Placement::Gpu) =>
                {
                    s.effective_bandwidth_bytes_per_second
                }
                _ => None,
            })
            .collect();
        Ok(crate::bench::Stat::of(&achieved).map(|s| s.median))
    }

    /// Predicted generation speed of a model file here, where the fit estimator places it;
    /// 0 when a needed memory speed is unknown.
    pub async fn predict_speed(&self, model: &std::path::Path) -> Result<Prediction> {
        let info = crate::gguf::inspect(model)?;
        let shape = ModelShape::from_gguf(&info);
        let (machine, _, _) = self.machine_profile().await?;
        let placement = super::fit::fit(&shape, &machine, 4096).placement;
        let fractions = self.efficiency_fractions().await?;
        let limit = bandwidth_limit(&shape, &machine, placement).unwrap_or(0.0);
        let eff = efficiency(&fractions);
        Ok(Prediction {
            limit_tps: limit,
            efficiency: eff,
            predicted_tps: limit * eff,
            calibrated_from: fractions.len(),
        })
    }

    /// What this machine's own runs measured, per model file: the newest quality score
    /// and the newest generation speed (a speed run's, or a quality run's speed phase).
    async fn measured_here(&self) -> Result<Vec<MeasuredHere>> {
        let mut measured: Vec<MeasuredHere> = Vec::new();
        for r in self.own_runs().await? {
            let (Some(file), Some(result)) = (
                r.model_path
                    .as_deref()
                    .and_then(|p| std::path::Path::new(p).file_name())
                    .map(|f| f.to_string_lossy().into_owned()),
                r.result.as_ref(),
            ) else {
                continue;
            };
            let (score, tps) = (result.score(), result.gen_per_second());
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
        Ok(measured)
    }

    /// The model files Kindling knows that are on disk, with their shapes.
    async fn installed(&self) -> Result<Vec<Installed>> {
        let mut out = Vec::new();
        let catalog = self.catalog();
        for m in self.db().models().await? {
            let path = std::path::Path::new(&m.path);
            let Ok(info) = crate::gguf::inspect(path) else {
                continue;
            };
            // A copy under another name (an Ollama blob) is the catalog file it matches.
            let file_name = catalog.file_name_of(path, m.sha256.as_deref());
            out.push(Installed {
                name: info.name.clone().unwrap_or_else(|| file_name.clone()),
                quant: info.file_type.clone().unwrap_or_else(|| "unknown".into()),
                bytes: info.file_size,
                shape: ModelShape::from_gguf(&info),
                architecture: super::launch::architecture(&info).into(),
                params_b: info.parameter_count as f64 / 1e9,
                instruct: info.has_chat_template,
                file_name,
            });
        }
        Ok(out)
    }

    /// Ranks the catalog, and the models here measured here, for this machine and goal.
    pub async fn recommend(&self, goal: Goal) -> Result<Recommendation> {
        let (profile, backend, machine) = self.machine_profile().await?;
        let fractions = self.efficiency_fractions().await?;
        let candidates = super::rank_with(
            &self.catalog(),
            &profile,
            &backend,
            goal,
            &self.measured_here().await?,
            &self.installed().await?,
            &fractions,
            self.gpu_effective_bandwidth().await?,
            u64::from(self.settings().ctx_size.max(4096)),
        );
        Ok(Recommendation {
            machine,
            profile,
            backend,
            goal,
            calibrated_from: fractions.len(),
            candidates,
            for_another_machine: false,
        })
    }

    /// Ranks the catalog for another machine (`other`, as `kindling detect --json` wrote
    /// it there). Nothing measured on this machine applies to it: no runs, no files.
    pub fn recommend_for(&self, other: &MachineFile, goal: Goal) -> Recommendation {
        let (profile, backend, machine) =
            profile(&other.hardware, other.memory_bandwidth_bytes_per_second);
        let backend = backend.with_runtime(
            other
                .runtime_info
                .as_ref()
                .and_then(|r| r.manifest.as_ref()),
        );
        Recommendation {
            candidates: rank(
                &self.catalog(),
                &profile,
                &backend,
                goal,
                &[],
                &[],
                &[],
                u64::from(self.settings().ctx_size.max(4096)),
            ),
            machine,
            profile,
            backend,
            goal,
            calibrated_from: 0,
            for_another_machine: true,
        }
    }

    /// The model the menu-bar server uses: the one the user chose, else the best
    /// installed model for their goal, else the first model Kindling can find.
    pub async fn preferred_model(&self) -> Result<Option<std::path::PathBuf>> {
        let settings = self.settings();
        if let Some(chosen) = settings.server_model.filter(|p| p.is_file()) {
            return Ok(Some(chosen));
        }
        if let Ok(rec) = self.recommend(settings.goal).await {
            for c in rec.candidates.iter().filter(|c| c.installed && c.fit.fits) {
                if let Some(found) = self.installed_file(&c.file).await? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(self.default_models().into_iter().next())
    }

    /// Where a model file named `file` (a catalog file name, any case) is on disk among
    /// the models Kindling knows, if it is: under that name, or under another with the
    /// same bytes (an Ollama blob whose digest is the catalog's sha256).
    pub async fn installed_file(&self, file: &str) -> Result<Option<std::path::PathBuf>> {
        let catalog = self.catalog();
        Ok(self
            .db()
            .models()
            .await?
            .into_iter()
            .filter(|m| {
                catalog
                    .file_name_of(std::path::Path::new(&m.path), m.sha256.as_deref())
                    .eq_ignore_ascii_case(file)
            })
            .map(|m| std::path::PathBuf::from(m.path))
            .find(|p| p.is_file()))
    }
}

/// The recommender's view of `hw`: memory, the GPU a model may use and its bandwidth,
/// and the backend known issues are matched against; with a one-line summary.
pub fn profile(
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
            ..Backend::default()
        },
        Some(g) => Backend {
            name: "metal".into(),
            moltenvk: false,
            gpu_vendor: Some(if g.unified {
                "Apple".into()
            } else {
                "AMD".into()
            }),
            ..Backend::default()
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
