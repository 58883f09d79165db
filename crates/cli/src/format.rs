//! Plain-words formatting shared by the commands.

use kindling_core::hardware::{HardwareProfile, VulkanDevice};

pub use kindling_core::hardware::format_bytes as bytes;

/// A label and a value, aligned.
pub fn row(label: &str, value: &str) {
    println!("  {label:<18} {value}");
}

pub fn cores(hw: &HardwareProfile) -> String {
    match hw.physical_cores {
        Some(p) if p != hw.logical_cores => format!("{p} cores, {} threads", hw.logical_cores),
        Some(p) => format!("{p} cores"),
        None => format!("{} threads", hw.logical_cores),
    }
}

pub fn devices(devices: &[VulkanDevice]) -> String {
    if devices.is_empty() {
        return "none usable — models run on the processor".into();
    }
    devices
        .iter()
        .map(|d| match (d.total_bytes, d.free_bytes) {
            (Some(t), Some(f)) => format!("{} ({} {}, {} free)", d.id, d.name, bytes(t), bytes(f)),
            _ => format!("{} ({})", d.id, d.name),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn seconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

pub use kindling_core::bench::verdict;
