//! How Kindling starts a server for one model on this machine: the GPU layers the fit
//! estimator chose (the recommendation's placement) and the fixes of every known issue
//! that applies. Every server Kindling starts — serve, the menu bar, bench, quality,
//! tune — goes through [`plan`], so what `recommend` promises is what runs, and the
//! exact arguments are stored with each run. Pure.

use serde::Serialize;

use super::fit::{fit, MachineProfile, ModelShape, Placement};
use super::{Backend, Fixes};
use crate::catalog::Catalog;
use crate::gguf::GgufInfo;

/// llama.cpp reads a layer count above the model's as "all of them".
pub const ALL_LAYERS: u32 = 999;

/// What to change in a server's configuration, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LaunchPlan {
    /// `None`: llama.cpp's own choice (all on the GPU when one is usable).
    pub gpu_layers: Option<u32>,
    pub flash_attention_off: bool,
    /// A fix forbids splitting the model between GPU and processor.
    pub whole_model: bool,
    /// The known issues applied, by id.
    pub issues: Vec<String>,
    /// The format the model is asked in when its file's own template is not used.
    pub chat_format: Option<crate::chat_format::ChatFormat>,
    /// Each decision in plain words.
    pub notes: Vec<String>,
}

/// `"moe"` for a mixture-of-experts model, else `"dense"` (as the catalog's known
/// issues name architectures).
pub fn architecture(info: &GgufInfo) -> &'static str {
    if info.expert_count.unwrap_or(0) > 1 {
        "moe"
    } else {
        "dense"
    }
}

/// The plan for `info` on `machine` with `context` tokens. `chosen_layers` is the
/// owner's own setting: it wins over the estimate, never over a fix for wrong answers.
/// `family` is the model's catalog family, when it is a catalog file.
pub fn plan(
    catalog: &Catalog,
    family: Option<&crate::catalog::Family>,
    info: &GgufInfo,
    machine: &MachineProfile,
    backend: &Backend,
    context: u64,
    chosen_layers: Option<u32>,
) -> LaunchPlan {
    let mut out = LaunchPlan::default();
    let shape = ModelShape::from_gguf(info);
    let layers = shape.layers;
    let fitted = fit(&shape, machine, context);
    out.gpu_layers = match (chosen_layers, fitted.placement) {
        (Some(n), _) => Some(n),
        (None, Placement::Partial { gpu_layers, .. }) if fitted.fits => {
            out.notes.push(format!(
                "{gpu_layers} of {layers} layers on the GPU: {}",
                fitted.why
            ));
            Some(gpu_layers)
        }
        (None, Placement::Cpu) if fitted.fits && machine.gpu.is_some() => {
            out.notes
                .push("on the processor: no layer fits in the GPU's memory".into());
            Some(0)
        }
        _ => None,
    };
    let fixes = Fixes::find(catalog, architecture(info), backend);
    out.flash_attention_off = fixes.flash_attention_off;
    out.whole_model = fixes.whole_model;
    if fixes.whole_model {
        let split = match out.gpu_layers {
            Some(0) => false,
            Some(n) => n <= layers,
            None => !matches!(fitted.placement, Placement::Gpu),
        };
        if split {
            out.gpu_layers = Some(0);
            out.notes.push(
                "all on the processor: this model must not be split between GPU and processor"
                    .into(),
            );
        } else if out.gpu_layers.is_none() && machine.gpu.is_some() {
            out.gpu_layers = Some(ALL_LAYERS);
        }
    }
    for issue in fixes.issues {
        out.issues.push(issue.id.clone());
        out.notes.push(issue.note());
    }
    out.chat_format =
        crate::chat_format::choose(info, family.and_then(|f| f.chat_format.as_deref()));
    if let Some(f) = &out.chat_format {
        out.notes.push(f.note());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::imac;
    use super::*;

    const GB: u64 = 1 << 30;

    fn model(bytes: u64, experts: Option<u64>) -> GgufInfo {
        let mut i = crate::gguf::parse(
            std::io::Cursor::new(crate::gguf::tests::tiny_gguf()),
            crate::gguf::tests::tiny_gguf().len() as u64,
        )
        .unwrap();
        i.tensor_bytes = bytes;
        i.block_count = Some(30);
        i.expert_count = experts;
        i.has_chat_template = true;
        i
    }

    #[test]
    fn a_file_without_a_chat_template_is_asked_in_its_familys_and_the_plan_says_so() {
        let (m, b) = imac();
        let mut info = model(GB, None);
        info.has_chat_template = false;
        info.architecture = Some("gemma3".into());
        let p = plan(&Catalog::builtin(), None, &info, &m, &b, 4096, None);
        assert_eq!(
            p.chat_format.as_ref().map(|f| f.name.as_str()),
            Some("gemma")
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n == "asked in Gemma's format: the file carries none"),
            "{:?}",
            p.notes
        );
        let mut family = Catalog::builtin().families[0].clone();
        family.chat_format = Some("chatml".into());
        let p = plan(
            &Catalog::builtin(),
            Some(&family),
            &info,
            &m,
            &b,
            4096,
            None,
        );
        assert_eq!(p.chat_format.unwrap().name, "chatml", "the catalog wins");
    }

    #[test]
    fn amd_over_moltenvk_gets_flash_attention_off() {
        let (m, b) = imac();
        let p = plan(
            &Catalog::builtin(),
            None,
            &model(GB, None),
            &m,
            &b,
            4096,
            None,
        );
        assert!(p.flash_attention_off, "{p:?}");
        assert_eq!(p.issues, vec!["fa-amd-moltenvk-garbage".to_string()]);
        assert_eq!(p.gpu_layers, None, "a 1 GB model fits the 4 GB card whole");
    }

    #[test]
    fn a_model_too_big_for_the_gpu_is_split_as_the_estimate_says() {
        let (m, b) = imac();
        let p = plan(
            &Catalog::builtin(),
            None,
            &model(8 * GB, None),
            &m,
            &b,
            4096,
            None,
        );
        assert!(matches!(p.gpu_layers, Some(n) if n > 0 && n < 30), "{p:?}");
    }

    #[test]
    fn moe_over_moltenvk_is_never_split_and_never_cpu_moe() {
        let (m, b) = imac();
        let cat = Catalog::builtin();
        let big = plan(&cat, None, &model(16 * GB, Some(128)), &m, &b, 4096, None);
        assert_eq!(
            big.gpu_layers,
            Some(0),
            "too big for the GPU: all on the CPU"
        );
        assert!(big.issues.iter().any(|i| i.starts_with("moe-")), "{big:?}");
        let small = plan(&cat, None, &model(GB, Some(8)), &m, &b, 4096, None);
        assert_eq!(small.gpu_layers, Some(ALL_LAYERS), "fits: all on the GPU");
        let chosen = plan(&cat, None, &model(GB, Some(8)), &m, &b, 4096, Some(10));
        assert_eq!(chosen.gpu_layers, Some(0), "the owner's split is overruled");
    }

    #[test]
    fn nothing_changes_on_a_machine_without_a_gpu() {
        let m = MachineProfile {
            ram_bytes: 16 * GB,
            gpu: None,
            cpu_bandwidth: Some(20e9),
        };
        let b = Backend {
            name: "cpu".into(),
            ..Backend::default()
        };
        let p = plan(
            &Catalog::builtin(),
            None,
            &model(GB, Some(8)),
            &m,
            &b,
            4096,
            None,
        );
        assert_eq!(p, LaunchPlan::default());
    }
}
