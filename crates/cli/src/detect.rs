//! `kindling detect`

use kindling_core::{Core, Result};

use crate::format;

pub async fn run(core: &Core, json: bool) -> Result<()> {
    let d = core.detect().await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&d).expect("detection serializes")
        );
        return Ok(());
    }
    let hw = &d.hardware;
    println!("This computer");
    format::row(
        "Processor",
        &format!("{} ({})", hw.cpu_brand, format::cores(hw)),
    );
    format::row(
        "Memory",
        &format!(
            "{} in all, {} free now",
            format::bytes(hw.ram_total_bytes),
            format::bytes(hw.ram_available_bytes)
        ),
    );
    format::row(
        "System",
        &format!(
            "{} {} ({})",
            hw.os,
            hw.os_version.as_deref().unwrap_or(""),
            hw.arch
        ),
    );
    if let Some(m) = &hw.model_identifier {
        format::row("Model", m);
    }
    if hw.gpus.is_empty() {
        format::row("Graphics", "none found");
    }
    for g in &hw.gpus {
        let mem = match (g.vram_bytes, g.unified) {
            (_, true) => "shares the main memory".to_string(),
            (Some(b), false) => format!("{} of its own memory", format::bytes(b)),
            (None, false) => "memory unknown".to_string(),
        };
        format::row("Graphics", &format!("{} ({mem})", g.name));
    }
    if let (Some(rt), Some(info)) = (&d.runtime, &d.runtime_info) {
        {
            format::row(
                "Runtime",
                &format!("llama-server {} at {}", info.version, rt.path.display()),
            );
            if let Some(m) = &info.manifest {
                format::row(
                    "Runtime build",
                    &format!(
                        "llama.cpp b{} from {}, for {}; backends {}",
                        m.llama_cpp_build, m.source, m.target, m.backends
                    ),
                );
            }
            format::row("GPU for AI", &format::devices(&info.devices));
        }
    }
    for c in core.gpu_checks().await?.iter().filter(|c| !c.usable) {
        format::row(
            "Kept off the GPU",
            &format!(
                "{} models (not on the {}): {}",
                c.architecture, c.device, c.reason
            ),
        );
    }
    if let Some(p) = &d.runtime_problem {
        println!();
        println!("Problem: {}", p.message);
    }
    Ok(())
}
