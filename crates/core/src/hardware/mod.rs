//! What this machine is: CPU, cores, memory, GPUs and the Vulkan devices llama.cpp sees,
//! and how fast it can read memory. Platform code sits in `macos`/`linux`; callers use
//! [`detect`] and never see a `cfg`.

pub mod bandwidth;
#[cfg(target_os = "linux")]
mod linux;
pub mod macos;
pub mod power;
pub mod vulkan;

use serde::{Deserialize, Serialize};

pub use crate::units::format_bytes;
pub use bandwidth::{probe_bandwidth, BandwidthReport};
pub use vulkan::VulkanDevice;

/// A graphics processor as the operating system reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Gpu {
    pub name: String,
    pub vendor: Option<String>,
    /// Dedicated memory; for unified memory, what the OS reports (often nothing).
    pub vram_bytes: Option<u64>,
    /// Shares memory with the CPU (Apple Silicon, Intel integrated).
    pub unified: bool,
    pub cores: Option<u32>,
}

/// A snapshot of this machine, stored with every benchmark run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HardwareProfile {
    pub os: String,
    pub os_version: Option<String>,
    pub arch: String,
    /// The Mac's model identifier (e.g. `iMac18,3`), or the machine's product name elsewhere.
    pub model_identifier: Option<String>,
    pub cpu_brand: String,
    pub physical_cores: Option<u32>,
    pub logical_cores: u32,
    pub ram_total_bytes: u64,
    pub ram_available_bytes: u64,
    pub gpus: Vec<Gpu>,
    /// Devices the bundled llama-server can use (empty when it sees none).
    pub vulkan_devices: Vec<VulkanDevice>,
}

impl HardwareProfile {
    /// One line a person can read: "Intel Xeon · 2 cores · 23.4 GB RAM · no GPU".
    pub fn summary(&self) -> String {
        let cores = match self.physical_cores {
            Some(p) if p != self.logical_cores => {
                format!("{p} cores ({} threads)", self.logical_cores)
            }
            Some(p) => format!("{p} cores"),
            None => format!("{} threads", self.logical_cores),
        };
        let gpus = if self.gpus.is_empty() && self.vulkan_devices.is_empty() {
            "no GPU found".to_string()
        } else if !self.vulkan_devices.is_empty() {
            self.vulkan_devices
                .iter()
                .map(|d| match d.total_bytes {
                    Some(b) => format!("{} {}", d.name, format_bytes(b)),
                    None => d.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            self.gpus
                .iter()
                .map(|g| match (g.vram_bytes, g.unified) {
                    (Some(b), false) => format!("{} {}", g.name, format_bytes(b)),
                    _ => g.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{} · {} · {} RAM · {}",
            self.cpu_brand,
            cores,
            format_bytes(self.ram_total_bytes),
            gpus
        )
    }
}

/// Detects this machine. Vulkan devices come from the runtime (see
/// [`crate::runtime::Runtime::info`]) and are passed in, so detection never starts a process
/// it was not asked to.
pub fn detect(vulkan_devices: Vec<VulkanDevice>) -> HardwareProfile {
    use sysinfo::System;
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let cpu_brand = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "Unknown CPU".to_string());
    let platform = platform::detect();
    HardwareProfile {
        os: System::name().unwrap_or_else(|| std::env::consts::OS.to_string()),
        os_version: System::os_version(),
        arch: std::env::consts::ARCH.to_string(),
        model_identifier: platform.model_identifier,
        cpu_brand: platform.cpu_brand.unwrap_or(cpu_brand),
        physical_cores: sys.physical_core_count().map(|n| n as u32),
        logical_cores: sys.cpus().len().max(1) as u32,
        ram_total_bytes: sys.total_memory(),
        ram_available_bytes: sys.available_memory(),
        gpus: platform.gpus,
        vulkan_devices,
    }
}

/// What the platform-specific probe adds to sysinfo's view.
#[derive(Debug, Default)]
struct PlatformInfo {
    model_identifier: Option<String>,
    cpu_brand: Option<String>,
    gpus: Vec<Gpu>,
}

#[cfg(target_os = "macos")]
mod platform {
    use super::{macos, PlatformInfo};

    fn run(cmd: &str, args: &[&str]) -> Option<String> {
        let out = std::process::Command::new(cmd).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(super) fn detect() -> PlatformInfo {
        let sysctl = run(
            "/usr/sbin/sysctl",
            &["machdep.cpu.brand_string", "hw.model"],
        )
        .map(|t| macos::parse_sysctl(&t))
        .unwrap_or_default();
        let gpus = run(
            "/usr/sbin/system_profiler",
            &["SPDisplaysDataType", "-json"],
        )
        .map(|t| macos::parse_spdisplays_json(&t))
        .unwrap_or_default();
        PlatformInfo {
            model_identifier: sysctl.model_identifier,
            cpu_brand: sysctl.cpu_brand,
            gpus,
        }
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use super::PlatformInfo;

    pub(super) fn detect() -> PlatformInfo {
        PlatformInfo {
            model_identifier: super::linux::product_name(),
            cpu_brand: None,
            gpus: super::linux::drm_gpus(std::path::Path::new("/sys/class/drm")),
        }
    }
}

#[cfg(not(any(target_os = "macos", target_os = "linux")))]
mod platform {
    use super::PlatformInfo;
    pub(super) fn detect() -> PlatformInfo {
        PlatformInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_sees_this_machine() {
        let hw = detect(Vec::new());
        assert!(hw.logical_cores >= 1);
        assert!(hw.ram_total_bytes > 0 && hw.ram_available_bytes <= hw.ram_total_bytes);
        assert!(!hw.cpu_brand.is_empty());
        assert!(hw.summary().contains("RAM"));
    }
}
