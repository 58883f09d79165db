//! Linux-specific probing: GPUs from `/sys/class/drm`, the machine's product name from DMI.

use std::path::Path;

use super::Gpu;

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The DMI product name (e.g. `iMac18,3` when Linux runs on a Mac).
pub(super) fn product_name() -> Option<String> {
    read(Path::new("/sys/class/dmi/id/product_name")).filter(|s| !s.is_empty())
}

/// GPUs listed by the kernel's DRM subsystem (one per `cardN` with a PCI device).
pub(super) fn drm_gpus(root: &Path) -> Vec<Gpu> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut cards: Vec<_> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("card") && n[4..].chars().all(|c| c.is_ascii_digit()))
        .collect();
    cards.sort();
    cards
        .into_iter()
        .filter_map(|card| {
            let dev = root.join(&card).join("device");
            let vendor_id = read(&dev.join("vendor"))?;
            let device_id = read(&dev.join("device")).unwrap_or_default();
            let vendor = match vendor_id.as_str() {
                "0x1002" => "AMD",
                "0x10de" => "NVIDIA",
                "0x8086" => "Intel",
                "0x1af4" => "virtio",
                other => other,
            }
            .to_string();
            let vram_bytes = read(&dev.join("mem_info_vram_total")).and_then(|v| v.parse().ok());
            Some(Gpu {
                name: format!("{vendor} GPU {device_id}"),
                unified: vendor == "Intel",
                vendor: Some(vendor),
                vram_bytes,
                cores: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_drm_tree() {
        let t = tempfile::tempdir().unwrap();
        let dev = t.path().join("card0/device");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("vendor"), "0x1002\n").unwrap();
        std::fs::write(dev.join("device"), "0x67df\n").unwrap();
        std::fs::write(dev.join("mem_info_vram_total"), "4294967296\n").unwrap();
        std::fs::create_dir_all(t.path().join("card0-DP-1")).unwrap();
        let g = drm_gpus(t.path());
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].vendor.as_deref(), Some("AMD"));
        assert_eq!(g[0].vram_bytes, Some(4 << 30));
        assert!(drm_gpus(&t.path().join("missing")).is_empty());
    }
}
