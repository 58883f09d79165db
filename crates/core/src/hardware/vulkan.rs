//! Vulkan devices as llama.cpp reports them: `llama-server --list-devices`, and the
//! `ggml_vulkan:` lines it logs at start (old and new formats, MoltenVK included).

use serde::{Deserialize, Serialize};

/// A compute device llama.cpp can use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VulkanDevice {
    /// llama.cpp's id, e.g. `Vulkan0`.
    pub id: String,
    pub name: String,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    /// Shares memory with the CPU (integrated / Apple Silicon), when the log said so.
    pub unified: Option<bool>,
}

const MIB: u64 = 1024 * 1024;

/// Parses `--list-devices` output:
/// `  Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) (2048 MiB, 2048 MiB free)`.
/// `(none)` and lines it does not understand give no device.
pub fn parse_list_devices(text: &str) -> Vec<VulkanDevice> {
    text.lines().filter_map(parse_list_line).collect()
}

fn parse_list_line(line: &str) -> Option<VulkanDevice> {
    let line = line.trim();
    let (id, rest) = line.split_once(": ")?;
    let digits = id.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    if id.is_empty()
        || digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || digits.len() == id.len()
    {
        return None;
    }
    let rest = rest.trim();
    // The memory figures are the last parenthesised group: "(TOTAL MiB, FREE MiB free)".
    let (name, total, free) = match rest.rfind(" (") {
        Some(open) if rest.ends_with("free)") => {
            let inner = &rest[open + 2..rest.len() - 1];
            let mut parts = inner.split(',').map(str::trim);
            let total = parts.next().and_then(parse_mib);
            let free = parts
                .next()
                .and_then(|p| p.strip_suffix("free"))
                .and_then(|p| parse_mib(p.trim()));
            (rest[..open].trim(), total, free)
        }
        _ => (rest, None, None),
    };
    Some(VulkanDevice {
        id: id.to_string(),
        name: name.to_string(),
        total_bytes: total,
        free_bytes: free,
        unified: None,
    })
}

fn parse_mib(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_once(' ')?;
    let n: u64 = num.trim().parse().ok()?;
    match unit.trim() {
        "MiB" | "MB" => Some(n * MIB),
        "GiB" | "GB" => Some(n * 1024 * MIB),
        _ => None,
    }
}

/// Parses the device lines llama.cpp logs when it starts with Vulkan:
/// `ggml_vulkan: 0 = AMD Radeon RX 5700 XT (MoltenVK) | uma: 0 | ...` (new) and
/// `Vulkan0: AMD Radeon Pro 5600M (MoltenVK) | uma: 0 | fp16: 1 | ...` (2024).
pub fn parse_startup_log(text: &str) -> Vec<VulkanDevice> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let (id, rest) = if let Some(rest) = line.strip_prefix("ggml_vulkan: ") {
            match rest.split_once(" = ") {
                Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => {
                    (format!("Vulkan{n}"), rest)
                }
                _ => continue,
            }
        } else if line.starts_with("Vulkan") && line.contains(" | ") {
            match line.split_once(": ") {
                Some((id, rest)) => (id.to_string(), rest),
                None => continue,
            }
        } else {
            continue;
        };
        let mut fields = rest.split(" | ");
        let name = fields.next().unwrap_or("").trim().to_string();
        let unified = fields
            .filter_map(|f| f.split_once(": "))
            .find(|(k, _)| k.trim() == "uma")
            .map(|(_, v)| v.trim() == "1");
        out.push(VulkanDevice {
            id,
            name,
            total_bytes: None,
            free_bytes: None,
            unified,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_devices_llvmpipe() {
        let text = "Available devices:\n  Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) (2048 MiB, 2048 MiB free)\n";
        let d = parse_list_devices(text);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, "Vulkan0");
        assert_eq!(d[0].name, "llvmpipe (LLVM 15.0.6, 256 bits)");
        assert_eq!(d[0].total_bytes, Some(2048 * MIB));
        assert_eq!(d[0].free_bytes, Some(2048 * MIB));
    }

    #[test]
    fn list_devices_none_and_noise() {
        assert!(parse_list_devices("Available devices:\n  (none)\n").is_empty());
        assert!(
            parse_list_devices("warning: something: odd\nload_backend: loaded CPU backend\n")
                .is_empty()
        );
    }

    #[test]
    fn list_devices_without_memory() {
        let d = parse_list_devices("  Metal0: Apple M1 Pro\n");
        assert_eq!(d[0].name, "Apple M1 Pro");
        assert_eq!(d[0].total_bytes, None);
    }

    fn fixture(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/macos/");
        std::fs::read_to_string(format!("{path}{name}"))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    #[test]
    fn moltenvk_new_format_two_radeons() {
        let d = parse_startup_log(&fixture(
            "llama-vulkan-moltenvk-rx5700xt-radeon-pro-vega56-b8334-excerpt.log",
        ));
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].id, "Vulkan0");
        assert_eq!(d[0].name, "AMD Radeon RX 5700 XT (MoltenVK)");
        assert_eq!(d[1].name, "AMD Radeon Pro Vega 56 (MoltenVK)");
        assert_eq!(d[1].unified, Some(false));
    }

    #[test]
    fn moltenvk_2024_format() {
        let d = parse_startup_log(&fixture(
            "llama-vulkan-moltenvk-radeon-pro-5600m-2024-excerpt.log",
        ));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "AMD Radeon Pro 5600M (MoltenVK)");
        assert_eq!(d[0].unified, Some(false));
    }

    #[test]
    fn backend_ops_log_lists_both_cards() {
        let d = parse_startup_log(&fixture(
            "llama-test-backend-ops-vulkan-moltenvk-rx6900xt-rx590-excerpt.log",
        ));
        let names: Vec<_> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AMD Radeon RX 6900 XT (MoltenVK)",
                "AMD Radeon RX 590 (MoltenVK)"
            ]
        );
    }
}
