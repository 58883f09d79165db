//! "What should I run on this Mac?": candidates from the catalog and the models already
//! here, each fitted ([`fit`]), its speed predicted and calibrated from this machine's own
//! runs, its quality taken from this machine's runs first, then reference results, then a
//! stated prior — and the best that fits the user's goal, with the reason in plain words.

pub mod fit;
pub mod launch;
pub mod machine;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Family, KnownIssue, Variant};
use fit::{bandwidth_limit, efficiency, fit, Fit, MachineProfile, ModelShape};

/// What the user wants.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Chat: at least [`CONVERSATIONAL_TPS`] predicted.
    Conversational,
    /// Any speed; correctness first (overnight work).
    Patient,
}

pub const CONVERSATIONAL_TPS: f64 = 10.0;

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

/// A quality figure measured on this machine for a catalog file.
#[derive(Debug, Clone)]
pub struct MeasuredHere {
    pub file_name: String,
    pub score: Option<f64>,
    pub gen_tps: Option<f64>,
}

/// A stated prior for models nobody has measured: quality grows with the log of the
/// (active-equivalent) parameter count, and drops slightly with coarser quants.
pub fn prior_score(f: &Family, quant: &str) -> f64 {
    let b = f
        .effective_b
        .or(f.active_b.map(|a| (a * f.params_b).sqrt()))
        .unwrap_or(f.params_b);
    let base = (0.55 + 0.12 * b.max(0.05).ln()).clamp(0.1, 0.95);
    let q = quant.to_ascii_uppercase();
    let factor = if q.contains("BF16") || q.contains("F16") || q.contains("Q8") {
        1.0
    } else if q.contains("Q6") || q.contains("Q5") || q.contains("XL") {
        0.99
    } else {
        0.97
    };
    let base = if f.instruct { base } else { base * 0.3 };
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

/// Ranks every catalog variant for this machine and goal. Pure.
#[allow(clippy::too_many_arguments)]
pub fn rank(
    catalog: &Catalog,
    machine: &MachineProfile,
    backend: &Backend,
    goal: Goal,
    measured: &[MeasuredHere],
    installed_files: &[String],
    efficiency_fractions: &[f64],
    context: u64,
) -> Vec<Candidate> {
    let eff = efficiency(efficiency_fractions);
    let mut out = Vec::new();
    for f in &catalog.families {
        for v in &f.variants {
            out.push(candidate(
                catalog,
                f,
                v,
                machine,
                backend,
                measured,
                installed_files,
                eff,
                context,
            ));
        }
    }
    // Fits first; then, within the goal's speed floor, the best score — scores within two
    // points count as a tie, broken by score per GB (the Q4-beats-Q8 case).
    let meets = |c: &Candidate| {
        c.fit.fits
            && (goal == Goal::Patient
                || c.predicted_tps.or(c.measured_tps).unwrap_or(0.0) >= CONVERSATIONAL_TPS)
    };
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
            c.caveats.push(format!(
                "predicted below {CONVERSATIONAL_TPS:.0} tokens/s: better for patient work"
            ));
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
    f: &Family,
    v: &Variant,
    machine: &MachineProfile,
    backend: &Backend,
    measured: &[MeasuredHere],
    installed_files: &[String],
    eff: f64,
    context: u64,
) -> Candidate {
    let shape = ModelShape::from_catalog(f, v);
    let fitted = fit(&shape, machine, context);
    let predicted = fitted
        .fits
        .then(|| bandwidth_limit(&shape, machine, fitted.placement))
        .flatten()
        .map(|l| l * eff);
    let here = measured
        .iter()
        .find(|m| m.file_name.eq_ignore_ascii_case(&v.file));
    let reference = catalog
        .references
        .iter()
        .find(|r| r.family == f.id && r.quant.eq_ignore_ascii_case(&v.quant));
    let (score, evidence) = match (here.and_then(|m| m.score), reference.and_then(|r| r.score)) {
        (Some(s), _) => (s, Evidence::MeasuredHere),
        (None, Some(s)) => (s, Evidence::Reference),
        _ => (prior_score(f, &v.quant), Evidence::Prior),
    };
    let fixes = Fixes::find(catalog, &f.architecture, backend);
    let issues: Vec<String> = fixes.issues.iter().map(|i| i.note()).collect();
    let measured_tps = here.and_then(|m| m.gen_tps);
    let tps = measured_tps.or(predicted);
    let quality = match evidence {
        Evidence::MeasuredHere => format!("scored {:.0}% here", score * 100.0),
        Evidence::Reference => format!(
            "scored {:.0}% on {} (not measured here)",
            score * 100.0,
            reference.map_or("", |r| r.hardware.as_str())
        ),
        Evidence::Prior => format!("expected around {:.0}% (not measured yet)", score * 100.0),
    };
    let speed = match (measured_tps, predicted) {
        (Some(m), _) => format!("measured {m:.0} tokens/s"),
        (None, Some(p)) => format!("predicted {p:.0} tokens/s"),
        _ => "speed unknown (this GPU's memory bandwidth is not in Kindling's table)".into(),
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
    let _ = tps;
    Candidate {
        id: format!("{}:{}", f.id, v.quant),
        name: f.name.clone(),
        quant: v.quant.clone(),
        file: v.file.clone(),
        size_gb: v.size_gb,
        installed: installed_files
            .iter()
            .any(|i| i.eq_ignore_ascii_case(&v.file)),
        fit: fitted,
        predicted_tps: predicted,
        measured_tps,
        score,
        evidence,
        score_per_gb: score * 100.0 / v.size_gb.max(0.01),
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

    #[test]
    fn priors_grow_with_size_and_base_models_rank_low() {
        let c = Catalog::builtin();
        let f = |id: &str| c.families.iter().find(|f| f.id == id).unwrap().clone();
        assert!(prior_score(&f("qwen3-4b"), "Q4_K_M") > prior_score(&f("qwen3-0.6b"), "Q8_0"));
        assert!(prior_score(&f("gemma4-31b"), "Q8_0") > prior_score(&f("gemma4-31b"), "Q4_K_M"));
        assert!(prior_score(&f("gemma3-270m"), "Q4_K_M") < 0.15);
    }
}
