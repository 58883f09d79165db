//! "What should I run on this Mac?": candidates from the catalog and the models already
//! here, each fitted ([`fit`]), its speed predicted and calibrated from this machine's own
//! runs, its quality taken from this machine's runs first, then reference results, then a
//! stated prior — and the best that fits the user's goal, with the reason in plain words.

pub mod fit;
pub mod launch;
pub mod machine;
pub mod pair;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Family, KnownIssue};
use fit::{bandwidth_limit, efficiency, fit, Fit, MachineProfile, ModelShape};

pub use crate::kinds::{Goal, CONVERSATIONAL_TPS};

/// Where a candidate's quality figure comes from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    MeasuredHere,
    Reference,
    Prior,
}

/// The runtime environment known issues are matched against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Backend {
    /// `vulkan`, `metal` or `cpu`.
    pub name: String,
    pub moltenvk: bool,
    pub gpu_vendor: Option<String>,
    /// The bundled runtime's llama.cpp build and MoltenVK release, when known: a known
    /// issue fixed in them does not apply.
    #[serde(default)]
    pub runtime_build: Option<u32>,
    #[serde(default)]
    pub moltenvk_version: Option<String>,
}

impl Backend {
    /// With what the runtime's manifest says about its build.
    pub fn with_runtime(mut self, manifest: Option<&crate::runtime::RuntimeManifest>) -> Backend {
        if let Some(m) = manifest {
            self.runtime_build = Some(m.llama_cpp_build);
            self.moltenvk_version = m.moltenvk.clone();
        }
        self
    }
}

/// One ranked option.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Candidate {
    /// `family:quant`, usable with `kindling models pull`.
    pub id: String,
    pub name: String,
    pub quant: String,
    /// The catalog's file name (how an installed copy is recognised).
    pub file: String,
    pub size_gb: f64,
    pub installed: bool,
    pub fit: Fit,
    pub predicted_tps: Option<f64>,
    pub measured_tps: Option<f64>,
    pub score: f64,
    pub evidence: Evidence,
    pub score_per_gb: f64,
    /// Known issues that apply here, each with the workaround Kindling applies.
    pub issues: Vec<String>,
    /// Never split between GPU and processor (a known-issue fix).
    pub whole_model: bool,
    pub flash_attention_off: bool,
    pub reason: String,
    pub caveats: Vec<String>,
}

/// Share of the memory limit a model wholly on a GPU over MoltenVK reaches before this
/// machine has measured anything: the field report's iMac ran Gemma 4 E2B at 37.6 and E4B
/// at 24.4 tokens/s where its Radeon Pro 575's memory allows about 155 and 78 (0.24 and
/// 0.31). Elsewhere [`fit::DEFAULT_EFFICIENCY`] (the Apple Silicon figures of the same
/// report agree with it: E4B 53.3 measured on an M4 Pro, 54 predicted).
pub const MOLTENVK_GPU_EFFICIENCY: f64 = 0.28;

/// The stated share of the limit for a model placed as `placement` on `backend`.
pub fn default_efficiency(backend: &Backend, placement: fit::Placement) -> f64 {
    if backend.moltenvk && placement == fit::Placement::Gpu {
        MOLTENVK_GPU_EFFICIENCY
    } else {
        fit::DEFAULT_EFFICIENCY
    }
}

impl Candidate {
    /// Fits, and fast enough for `goal` (measured speed first, else the prediction).
    pub fn meets(&self, goal: Goal) -> bool {
        self.fit.fits && goal.allows(self.measured_tps.or(self.predicted_tps))
    }
}

/// What this machine's own runs measured for one model file (imported runs never count).
#[derive(Debug, Clone)]
pub struct MeasuredHere {
    pub file_name: String,
    pub score: Option<f64>,
    pub gen_tps: Option<f64>,
}

/// A model file on this machine, as the recommender needs it: every one measured here is
/// a candidate, catalog entry or not.
#[derive(Debug, Clone)]
pub struct Installed {
    pub file_name: String,
    /// The model's own name (from its header), else the file's.
    pub name: String,
    pub quant: String,
    pub bytes: u64,
    pub shape: ModelShape,
    /// `dense` or `moe`, as known issues name architectures.
    pub architecture: String,
    /// Parameters in billions, for the stated prior when quality is not measured.
    pub params_b: f64,
    /// Has a chat template (an instruct model).
    pub instruct: bool,
}

/// A stated prior for models nobody has measured: quality grows with the log of the
/// (active-equivalent) parameter count, and drops slightly with coarser quants.
pub fn prior_score(f: &Family, quant: &str) -> f64 {
    let b = f
        .effective_b
        .or(f.active_b.map(|a| (a * f.params_b).sqrt()))
        .unwrap_or(f.params_b);
    prior_for(b, f.instruct, quant)
}

/// [`prior_score`] from a parameter count (billions).
pub fn prior_for(b: f64, instruct: bool, quant: &str) -> f64 {
    let base = (0.55 + 0.12 * b.max(0.05).ln()).clamp(0.1, 0.95);
    let q = quant.to_ascii_uppercase();
    let factor = if q.contains("BF16") || q.contains("F16") || q.contains("Q8") {
        1.0
    } else if q.contains("Q6") || q.contains("Q5") || q.contains("XL") {
        0.99
    } else {
        0.97
    };
    let base = if instruct { base } else { base * 0.3 };
    base * factor
}

/// Whether `issue` applies to a model of `architecture` ("moe", "dense") on `backend`.
fn applies(issue: &KnownIssue, architecture: &str, backend: &Backend) -> bool {
    let w = &issue.when;
    w.architecture.as_ref().is_none_or(|a| a == architecture)
        && w.backend.as_ref().is_none_or(|b| *b == backend.name)
        && w.moltenvk.is_none_or(|m| m == backend.moltenvk)
        && w.gpu_vendor.as_ref().is_none_or(|v| {
            backend
                .gpu_vendor
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(v))
        })
        && w.fixed_in_moltenvk.as_deref().is_none_or(|fixed| {
            !backend
                .moltenvk_version
                .as_deref()
                .is_some_and(|have| crate::catalog::version_at_least(have, fixed))
        })
        && w.fixed_in_build
            .is_none_or(|fixed| backend.runtime_build.is_none_or(|have| have < fixed))
}

/// The known issues that apply to a model of `architecture` on `backend`, and what
/// their fixes change together: the one place both the recommendation and every server
/// start read them from.
pub struct Fixes<'a> {
    pub issues: Vec<&'a KnownIssue>,
    pub flash_attention_off: bool,
    pub whole_model: bool,
}

impl<'a> Fixes<'a> {
    pub fn find(catalog: &'a Catalog, architecture: &str, backend: &Backend) -> Fixes<'a> {
        let issues: Vec<&KnownIssue> = catalog
            .issues
            .iter()
            .filter(|i| applies(i, architecture, backend))
            .collect();
        Fixes {
            flash_attention_off: issues
                .iter()
                .any(|i| i.fix.flash_attention.as_deref() == Some("off")),
            whole_model: issues.iter().any(|i| i.fix.whole_model),
            issues,
        }
    }
}

impl KnownIssue {
    /// The issue and what Kindling does about it, in plain words.
    pub fn note(&self) -> String {
        format!(
            "{} Kindling applies the workaround: {}",
            self.summary, self.workaround
        )
    }
}

/// What a candidate is, before it is weighed: a catalog variant, or a model file on this
/// machine that the catalog does not list.
struct Option_<'a> {
    id: String,
    name: String,
    quant: String,
    file: String,
    bytes: u64,
    shape: ModelShape,
    architecture: &'a str,
    reference: Option<&'a crate::catalog::Reference>,
    prior: f64,
}

/// Ranks every catalog variant, and every installed model measured here, for this machine
/// and goal. `gpu_effective_bandwidth`: what this machine's own runs wholly on its GPU
/// achieved (bytes/s), used when the GPU's memory speed is not in Kindling's table. Pure.
#[allow(clippy::too_many_arguments)]
pub fn rank(
    catalog: &Catalog,
    machine: &MachineProfile,
    backend: &Backend,
    goal: Goal,
    measured: &[MeasuredHere],
    installed: &[Installed],
    efficiency_fractions: &[f64],
    context: u64,
) -> Vec<Candidate> {
    rank_with(
        catalog,
        machine,
        backend,
        goal,
        measured,
        installed,
        efficiency_fractions,
        None,
        context,
    )
}

/// [`rank`], with what this machine's runs on its GPU achieved.
#[allow(clippy::too_many_arguments)]
pub fn rank_with(
    catalog: &Catalog,
    machine: &MachineProfile,
    backend: &Backend,
    goal: Goal,
    measured: &[MeasuredHere],
    installed: &[Installed],
    efficiency_fractions: &[f64],
    gpu_effective_bandwidth: Option<f64>,
    context: u64,
) -> Vec<Candidate> {
    // This machine's own share of the limit once it has measured any; until then a stated
    // default for where the model runs.
    let eff = (!efficiency_fractions.is_empty()).then(|| efficiency(efficiency_fractions));
    let mut options: Vec<Option_> = Vec::new();
    for f in &catalog.families {
        for v in &f.variants {
            options.push(Option_ {
                id: format!("{}:{}", f.id, v.quant),
                name: f.name.clone(),
                quant: v.quant.clone(),
                file: v.file.clone(),
                bytes: v.bytes(),
                shape: ModelShape::from_catalog(f, v),
                architecture: &f.architecture,
                reference: catalog
                    .references
                    .iter()
                    .find(|r| r.family == f.id && r.quant.eq_ignore_ascii_case(&v.quant)),
                prior: prior_score(f, &v.quant),
            });
        }
    }
    let is_measured = |file: &str| {
        measured.iter().any(|m| {
            m.file_name.eq_ignore_ascii_case(file) && (m.score.is_some() || m.gen_tps.is_some())
        })
    };
    for i in installed {
        let listed = options
            .iter()
            .any(|o| o.file.eq_ignore_ascii_case(&i.file_name));
        if listed || !is_measured(&i.file_name) {
            continue;
        }
        options.push(Option_ {
            id: i.file_name.clone(),
            name: i.name.clone(),
            quant: i.quant.clone(),
            file: i.file_name.clone(),
            bytes: i.bytes,
            shape: i.shape.clone(),
            architecture: &i.architecture,
            reference: None,
            prior: prior_for(i.params_b, i.instruct, &i.quant),
        });
    }
    let mut out: Vec<Candidate> = options
        .iter()
        .map(|o| {
            candidate(
                catalog,
                o,
                machine,
                backend,
                measured,
                installed,
                eff,
                gpu_effective_bandwidth,
                context,
            )
        })
        .collect();
    // Fits first; then, within the goal's speed floor, the best score — scores within two
    // points count as a tie, broken by score per GB (the Q4-beats-Q8 case). Speed measured
    // here wins over a prediction.
    let meets = |c: &Candidate| c.meets(goal);
    out.sort_by(|a, b| {
        meets(b)
            .cmp(&meets(a))
            .then(b.fit.fits.cmp(&a.fit.fits))
            .then_with(|| {
                let (sa, sb) = ((a.score * 50.0).round(), (b.score * 50.0).round());
                sb.partial_cmp(&sa)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(
                        b.score_per_gb
                            .partial_cmp(&a.score_per_gb)
                            .unwrap_or(std::cmp::Ordering::Equal),
                    )
            })
    });
    for (i, c) in out.iter_mut().enumerate() {
        if !meets(c) && c.fit.fits && goal == Goal::Conversational {
            c.caveats.push(match (c.measured_tps, c.predicted_tps) {
                (Some(_), _) => format!(
                    "measured below {CONVERSATIONAL_TPS:.0} tokens/s here: better for patient work"
                ),
                (None, Some(_)) => format!(
                    "predicted below {CONVERSATIONAL_TPS:.0} tokens/s: better for patient work"
                ),
                (None, None) => {
                    "speed unknown until measured here: Benchmark my Mac measures it".into()
                }
            });
        }
        if i == 0 && meets(c) {
            c.reason = format!(
                "{} — the best {} for this machine.",
                c.reason,
                if c.evidence == Evidence::MeasuredHere {
                    "measured quality per GB"
                } else {
                    "expected quality per GB"
                }
            );
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn candidate(
    catalog: &Catalog,
    o: &Option_,
    machine: &MachineProfile,
    backend: &Backend,
    measured: &[MeasuredHere],
    installed: &[Installed],
    eff: Option<f64>,
    gpu_effective_bandwidth: Option<f64>,
    context: u64,
) -> Candidate {
    let shape = &o.shape;
    let fixes = Fixes::find(catalog, o.architecture, backend);
    let mut fitted = fit(shape, machine, context);
    if fixes.whole_model && matches!(fitted.placement, fit::Placement::Partial { .. }) {
        // A split is known to give wrong answers here: wholly on the processor, as the
        // server will be started (see `launch::plan`).
        let processor_only = MachineProfile {
            gpu: None,
            ..machine.clone()
        };
        fitted = fit(shape, &processor_only, context);
        if fitted.fits {
            fitted.why = format!(
                "{}, wholly: too big for the GPU and it must not be split between GPU and processor here",
                fitted.why
            );
        }
    }
    let per_token = shape.bytes_per_token();
    let eff = eff.unwrap_or_else(|| default_efficiency(backend, fitted.placement));
    let from_table = fitted
        .fits
        .then(|| bandwidth_limit(shape, machine, fitted.placement))
        .flatten()
        .map(|l| l * eff);
    // A GPU missing from the table: what this machine's own runs on it achieved.
    let from_runs = (fitted.fits && fitted.placement == fit::Placement::Gpu)
        .then_some(gpu_effective_bandwidth)
        .flatten()
        .filter(|_| per_token > 0.0)
        .map(|bw| bw / per_token);
    let predicted = from_table.or(from_runs);
    let here = measured
        .iter()
        .find(|m| m.file_name.eq_ignore_ascii_case(&o.file));
    let reference = o.reference;
    let (score, evidence) = match (here.and_then(|m| m.score), reference.and_then(|r| r.score)) {
        (Some(s), _) => (s, Evidence::MeasuredHere),
        (None, Some(s)) => (s, Evidence::Reference),
        _ => (o.prior, Evidence::Prior),
    };
    let issues: Vec<String> = fixes.issues.iter().map(|i| i.note()).collect();
    let measured_tps = here.and_then(|m| m.gen_tps);
    let quality = match evidence {
        Evidence::MeasuredHere => format!("scored {:.0}% here", score * 100.0),
        Evidence::Reference => format!(
            "scored {:.0}% on {} (not measured here)",
            score * 100.0,
            reference.map_or("", |r| r.hardware.as_str())
        ),
        Evidence::Prior => format!("expected around {:.0}% (not measured yet)", score * 100.0),
    };
    let speed = match (measured_tps, from_table, from_runs) {
        (Some(m), _, _) => format!("measured {m:.0} tokens/s"),
        (None, Some(p), _) => format!("predicted {p:.0} tokens/s"),
        (None, None, Some(p)) => {
            format!("predicted {p:.0} tokens/s from this machine's runs on its GPU")
        }
        _ if !fitted.fits => String::new(),
        _ => "speed unknown until measured (this GPU's memory speed is not in Kindling's table)"
            .into(),
    };
    let mut caveats = Vec::new();
    if evidence != Evidence::MeasuredHere {
        caveats.push("quality not measured on this machine yet".into());
    }
    if fitted.reduced_context {
        caveats.push(format!("context reduced to {} tokens", fitted.context));
    }
    caveats.extend(issues.iter().cloned());
    let reason = if fitted.fits {
        let s = format!("{}, {speed}, {quality}", fitted.why);
        let mut c = s.chars();
        c.next()
            .map(|first| first.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    } else {
        format!(
            "Does not fit: {}",
            fitted.why.trim_start_matches("does not fit: ")
        )
    };
    let size_gb = o.bytes as f64 / 1e9;
    Candidate {
        id: o.id.clone(),
        name: o.name.clone(),
        quant: o.quant.clone(),
        file: o.file.clone(),
        size_gb,
        installed: installed
            .iter()
            .any(|i| i.file_name.eq_ignore_ascii_case(&o.file)),
        fit: fitted,
        predicted_tps: predicted,
        measured_tps,
        score,
        evidence,
        score_per_gb: score * 100.0 / size_gb.max(0.01),
        issues,
        whole_model: fixes.whole_model,
        flash_attention_off: fixes.flash_attention_off,
        reason,
        caveats,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use fit::GpuProfile;

    /// The field report's iMac: Radeon Pro 575 (4 GB) over MoltenVK, 32 GB RAM.
    pub(crate) fn imac() -> (MachineProfile, Backend) {
        (
            MachineProfile {
                ram_bytes: 32 * (1 << 30),
                gpu: Some(GpuProfile {
                    name: "AMD Radeon Pro 575".into(),
                    vram_bytes: 4 * (1 << 30),
                    unified: false,
                    bandwidth: Some(217.6e9),
                }),
                cpu_bandwidth: Some(20e9),
            },
            Backend {
                name: "vulkan".into(),
                moltenvk: true,
                gpu_vendor: Some("AMD".into()),
                ..Backend::default()
            },
        )
    }

    #[test]
    fn known_issues_always_come_with_their_workaround() {
        let (m, b) = imac();
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Patient,
            &[],
            &[],
            &[],
            8192,
        );
        let moe = ranked
            .iter()
            .find(|c| c.id.starts_with("gemma4-26b-a4b"))
            .unwrap();
        assert!(moe.whole_model, "MoE on MoltenVK is never split");
        assert!(
            moe.flash_attention_off,
            "AMD on MoltenVK gets flash attention off"
        );
        assert!(moe.caveats.iter().any(|c| c.contains("never split")));
        for c in &ranked {
            assert!(
                c.flash_attention_off,
                "every candidate on this AMD GPU: {}",
                c.id
            );
        }
        let apple = Backend {
            name: "metal".into(),
            moltenvk: false,
            gpu_vendor: Some("Apple".into()),
            ..Backend::default()
        };
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &apple,
            Goal::Patient,
            &[],
            &[],
            &[],
            8192,
        );
        assert!(ranked
            .iter()
            .all(|c| !c.whole_model && !c.flash_attention_off && c.issues.is_empty()));
    }

    #[test]
    fn measured_here_beats_priors_and_q4_wins_a_near_tie_on_size() {
        let (m, b) = imac();
        let measured = vec![
            MeasuredHere {
                file_name: "gemma-4-E2B-it-Q4_K_M.gguf".into(),
                score: Some(0.922),
                gen_tps: Some(37.6),
            },
            MeasuredHere {
                file_name: "gemma-4-E2B-it-Q8_0.gguf".into(),
                score: Some(0.918),
                gen_tps: Some(22.0),
            },
        ];
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Conversational,
            &measured,
            &[],
            &[],
            8192,
        );
        let top = &ranked[0];
        assert_eq!(top.id, "gemma4-e2b:Q4_K_M", "{:#?}", &ranked[..3]);
        assert_eq!(top.evidence, Evidence::MeasuredHere);
        assert!(
            top.reason.contains("fits entirely in your 4 GB GPU")
                || top.reason.contains("Fits entirely in your 4 GB GPU"),
            "{}",
            top.reason
        );
        assert!(
            top.reason.contains("scored 92% here") && top.reason.contains("measured 38 tokens/s"),
            "{}",
            top.reason
        );
    }

    #[test]
    fn the_goal_sets_the_speed_floor() {
        let m = MachineProfile {
            ram_bytes: 64 * (1 << 30),
            gpu: None,
            cpu_bandwidth: Some(20e9),
        };
        let b = Backend {
            name: "cpu".into(),
            ..Backend::default()
        };
        let chat = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Conversational,
            &[],
            &[],
            &[],
            8192,
        );
        assert!(
            chat[0].predicted_tps.unwrap() >= CONVERSATIONAL_TPS,
            "{:?}",
            chat[0]
        );
        let patient = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Patient,
            &[],
            &[],
            &[],
            8192,
        );
        assert!(
            patient[0].score > chat[0].score,
            "patient work may pick a bigger, slower model"
        );
        assert!(patient[0].predicted_tps.unwrap() < CONVERSATIONAL_TPS);
    }

    /// The field report's iMac, from the profile Kindling ships, planned as another Mac.
    fn field_report_imac(goal: Goal) -> Vec<Candidate> {
        let file = machine::MachineFile::find("imac-2017").unwrap();
        let (m, b, summary) =
            machine::profile(&file.hardware, file.memory_bandwidth_bytes_per_second);
        assert!(
            summary.starts_with("iMac Retina 5K 27-inch, 2017"),
            "{summary}"
        );
        assert!(
            b.moltenvk && b.gpu_vendor.as_deref() == Some("AMD"),
            "{b:?}"
        );
        rank(&Catalog::builtin(), &m, &b, goal, &[], &[], &[], 8192)
    }

    #[test]
    fn the_field_report_imac_gets_what_its_owner_measured() {
        let chat = field_report_imac(Goal::Conversational);
        let by_id =
            |list: &[Candidate], id: &str| list.iter().find(|c| c.id == id).cloned().unwrap();
        // Gemma 4 E2B and E4B at Q4, wholly on the Radeon, fast enough to chat: measured
        // there at 37.6 and 24.4 tokens/s.
        for (id, measured) in [("gemma4-e2b:Q4_K_M", 37.6), ("gemma4-e4b:Q4_K_M", 24.4)] {
            let c = by_id(&chat, id);
            assert_eq!(c.fit.placement, fit::Placement::Gpu, "{id}: {}", c.reason);
            let p = c.predicted_tps.unwrap();
            assert!(
                p >= CONVERSATIONAL_TPS && (p / measured - 1.0).abs() < 0.35,
                "{id}: predicted {p:.1} against {measured} measured"
            );
            assert!(
                c.flash_attention_off,
                "{id}: the MoltenVK flash-attention fix"
            );
        }
        assert_eq!(chat[0].id, "gemma4-e2b:Q4_K_M", "{}", chat[0].reason);
        // The 26B-A4B mixture of experts: never split between GPU and processor.
        let moe: Vec<&Candidate> = chat
            .iter()
            .filter(|c| c.id.starts_with("gemma4-26b-a4b"))
            .collect();
        assert_eq!(moe.len(), 4);
        for c in &moe {
            assert!(c.whole_model, "{}", c.id);
            assert!(
                !matches!(c.fit.placement, fit::Placement::Partial { .. }),
                "{} is split: {}",
                c.id,
                c.reason
            );
        }
        assert!(moe
            .iter()
            .any(|c| c.fit.fits && c.fit.placement == fit::Placement::Cpu));
        // The 31B: not for conversation; for patient work, a hybrid at about 1 token/s.
        let chat_31b = by_id(&chat, "gemma4-31b:UD-Q4_K_XL");
        assert!(
            chat_31b
                .caveats
                .iter()
                .any(|c| c.contains("below 10 tokens/s")),
            "{:?}",
            chat_31b.caveats
        );
        assert!(chat.iter().position(|c| c.id == chat_31b.id).unwrap() > 10);
        let patient = field_report_imac(Goal::Patient);
        let big = by_id(&patient, "gemma4-31b:UD-Q4_K_XL");
        assert!(
            matches!(big.fit.placement, fit::Placement::Partial { .. }),
            "{}",
            big.reason
        );
        let p = big.predicted_tps.unwrap();
        assert!(
            (0.5..2.0).contains(&p),
            "about 1 token/s (1.15 measured): {p:.2}"
        );
        assert_eq!(
            patient[0].id, big.id,
            "the patient goal picks it: {}",
            patient[0].reason
        );
    }

    #[test]
    fn measured_speed_wins_over_a_prediction_and_unknown_speed_says_so() {
        let (m, b) = imac();
        // The E2B measured slow here (a busy machine): its measurement decides.
        let measured = vec![MeasuredHere {
            file_name: "gemma-4-E2B-it-Q4_K_M.gguf".into(),
            score: None,
            gen_tps: Some(6.0),
        }];
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Conversational,
            &measured,
            &[],
            &[],
            8192,
        );
        let e2b = ranked.iter().find(|c| c.id == "gemma4-e2b:Q4_K_M").unwrap();
        assert!(e2b.predicted_tps.unwrap() > CONVERSATIONAL_TPS);
        assert!(
            e2b.caveats
                .iter()
                .any(|c| c.contains("measured below 10 tokens/s")),
            "{:?}",
            e2b.caveats
        );
        assert_ne!(ranked[0].id, e2b.id);
        // A GPU missing from the table: no speed is made up, and no caveat contradicts it.
        let mut unknown = m.clone();
        unknown.gpu.as_mut().unwrap().bandwidth = None;
        let ranked = rank(
            &Catalog::builtin(),
            &unknown,
            &b,
            Goal::Conversational,
            &[],
            &[],
            &[],
            8192,
        );
        let on_gpu = ranked.iter().find(|c| c.id == "gemma4-e2b:Q4_K_M").unwrap();
        assert_eq!(on_gpu.predicted_tps, None);
        assert!(
            on_gpu.reason.contains("speed unknown until measured"),
            "{}",
            on_gpu.reason
        );
        assert!(
            !on_gpu.caveats.iter().any(|c| c.contains("predicted below")),
            "{:?}",
            on_gpu.caveats
        );
        // ...until this machine's own runs on that GPU give its effective speed.
        let ranked = rank_with(
            &Catalog::builtin(),
            &unknown,
            &b,
            Goal::Conversational,
            &[],
            &[],
            &[],
            Some(60e9),
            8192,
        );
        let on_gpu = ranked.iter().find(|c| c.id == "gemma4-e2b:Q4_K_M").unwrap();
        let p = on_gpu.predicted_tps.unwrap();
        assert!(
            (p - 60e9 / (3_106_738_272.0 * 2.3 / 5.1)).abs() < 1.0,
            "{p}"
        );
        assert!(
            on_gpu
                .reason
                .contains("from this machine's runs on its GPU"),
            "{}",
            on_gpu.reason
        );
    }

    #[test]
    fn every_installed_model_measured_here_is_a_candidate() {
        let m = MachineProfile {
            ram_bytes: 24 << 30,
            gpu: None,
            cpu_bandwidth: Some(20e9),
        };
        let b = Backend {
            name: "cpu".into(),
            ..Backend::default()
        };
        // The issue's ladder: four quants of one model added from a folder, each measured.
        let ladder = [
            ("Q2_K", 0.05, 0.33),
            ("Q3_K_M", 0.15, 0.24),
            ("Q4_K_M", 0.14, 0.26),
            ("Q8_0", 0.14, 0.30),
        ];
        let installed: Vec<Installed> = ladder
            .iter()
            .map(|(q, _, gb)| Installed {
                file_name: format!("tiny-{q}.gguf"),
                name: "tiny".into(),
                quant: (*q).into(),
                bytes: (gb * 1e9) as u64,
                shape: ModelShape {
                    file_bytes: (gb * 1e9) as u64,
                    layers: 18,
                    kv_bytes_per_token: 20_000,
                    max_context: 32768,
                    active_fraction: None,
                    host_fraction: 0.0,
                },
                architecture: "dense".into(),
                params_b: 0.27,
                instruct: true,
            })
            .collect();
        let measured: Vec<MeasuredHere> = ladder
            .iter()
            .map(|(q, score, _)| MeasuredHere {
                file_name: format!("tiny-{q}.gguf"),
                score: Some(*score),
                gen_tps: Some(30.0),
            })
            .collect();
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Conversational,
            &measured,
            &installed,
            &[],
            8192,
        );
        let mine: Vec<&Candidate> = ranked
            .iter()
            .filter(|c| c.id.starts_with("tiny-"))
            .collect();
        assert_eq!(mine.len(), 4, "every measured quant is a candidate");
        for c in &mine {
            assert!(c.installed && c.evidence == Evidence::MeasuredHere, "{c:?}");
            assert_eq!(c.measured_tps, Some(30.0));
        }
        let pos = |id: &str| ranked.iter().position(|c| c.id == id).unwrap();
        assert!(
            pos("tiny-Q3_K_M.gguf") < pos("tiny-Q4_K_M.gguf"),
            "best measured score per GB first"
        );
        assert!(
            pos("tiny-Q4_K_M.gguf") < pos("tiny-Q8_0.gguf"),
            "a near tie goes to the smaller file"
        );
        // An installed model nothing measured is not one: there is nothing to rank it by.
        let unmeasured = rank(
            &Catalog::builtin(),
            &m,
            &b,
            Goal::Conversational,
            &[],
            &installed,
            &[],
            8192,
        );
        assert!(!unmeasured.iter().any(|c| c.id.starts_with("tiny-")));
    }

    #[test]
    fn a_known_issue_retires_on_a_runtime_that_carries_its_fix() {
        let (m, b) = imac();
        let fixed = b
            .clone()
            .with_runtime(Some(&crate::runtime::RuntimeManifest {
                llama_cpp_build: 11434,
                llama_cpp_commit: "unknown".into(),
                source: "test".into(),
                target: "macos-x86_64".into(),
                backends: "vulkan".into(),
                moltenvk: Some("1.4.2".into()),
            }));
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &fixed,
            Goal::Patient,
            &[],
            &[],
            &[],
            8192,
        );
        assert!(
            ranked.iter().all(|c| !c.flash_attention_off),
            "MoltenVK 1.4.2 carries the fix"
        );
        let moe = ranked
            .iter()
            .find(|c| c.id.starts_with("gemma4-26b-a4b"))
            .unwrap();
        assert!(moe.whole_model, "the MoE fix is in no release yet");
        let older = b.with_runtime(Some(&crate::runtime::RuntimeManifest {
            moltenvk: Some("1.4.1".into()),
            ..crate::runtime::RuntimeManifest {
                llama_cpp_build: 11434,
                llama_cpp_commit: "unknown".into(),
                source: "test".into(),
                target: "macos-x86_64".into(),
                backends: "vulkan".into(),
                moltenvk: None,
            }
        }));
        let ranked = rank(
            &Catalog::builtin(),
            &m,
            &older,
            Goal::Patient,
            &[],
            &[],
            &[],
            8192,
        );
        assert!(ranked.iter().all(|c| c.flash_attention_off));
        assert!(crate::catalog::version_at_least("1.4.10", "1.4.2"));
        assert!(!crate::catalog::version_at_least("1.3.9", "1.4.2"));
    }

    #[test]
    fn priors_grow_with_size_and_base_models_rank_low() {
        let c = Catalog::builtin();
        let f = |id: &str| c.families.iter().find(|f| f.id == id).unwrap().clone();
        assert!(prior_score(&f("qwen3-4b"), "Q4_K_M") > prior_score(&f("qwen3-0.6b"), "Q8_0"));
        assert!(prior_score(&f("gemma4-31b"), "Q8_0") > prior_score(&f("gemma4-31b"), "Q4_K_M"));
        assert!(prior_for(0.27, false, "Q4_K_M") < 0.15, "a tiny base model");
    }
}
