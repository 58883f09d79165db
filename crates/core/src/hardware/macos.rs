//! Pure parsers for what macOS says about its hardware: `system_profiler` (JSON, XML
//! and text forms) and `sysctl`. Tested on outputs recorded on real Macs
//! (`crates/core/tests/fixtures/macos`, sources in its SOURCES.md). Keys they have not seen are ignored, never an error:
//! older and newer macOS versions name things differently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Gpu;

/// What `system_profiler SPHardwareDataType` says about the Mac.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MacHardware {
    /// e.g. `iMac18,3`
    pub model_identifier: Option<String>,
    /// e.g. `iMac`
    pub model_name: Option<String>,
    /// `chip_type` on Apple Silicon (`Apple M1`), `cpu_type` on Intel.
    pub chip: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cores: Option<u32>,
}

/// Parses a size such as `16 GB`, `1536 MB` or `64 MB` (binary units, as macOS means them).
pub fn parse_size(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let n: f64 = parts.next()?.replace(',', ".").parse().ok()?;
    let mult: u64 = match parts.next()?.to_ascii_uppercase().as_str() {
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

/// `number_processors` is an integer on Intel and `"proc 8:4:4"` (total:perf:eff) on Apple Silicon.
fn parse_processors(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        Value::String(s) => s
            .trim()
            .trim_start_matches("proc")
            .trim()
            .split(':')
            .next()?
            .parse()
            .ok(),
        _ => None,
    }
}

fn hardware_from_fields(get: impl Fn(&str) -> Option<Value>) -> MacHardware {
    let text = |k: &str| get(k).and_then(|v| v.as_str().map(str::to_string));
    let chip = text("chip_type").or_else(|| text("cpu_type").filter(|c| c != "Unknown"));
    MacHardware {
        model_identifier: text("machine_model"),
        model_name: text("machine_name"),
        chip,
        memory_bytes: text("physical_memory").as_deref().and_then(parse_size),
        cores: get("number_processors").as_ref().and_then(parse_processors),
    }
}

/// Parses `system_profiler SPHardwareDataType -json`.
pub fn parse_sphardware_json(text: &str) -> Option<MacHardware> {
    let root: Value = serde_json::from_str(text).ok()?;
    let item = root.get("SPHardwareDataType")?.as_array()?.first()?.clone();
    Some(hardware_from_fields(|k| item.get(k).cloned()))
}

/// Parses `system_profiler -xml SPHardwareDataType` (a plist). Only the flat
/// key/value pairs of the first `_items` entry are needed, so this reads them directly.
pub fn parse_sphardware_xml(text: &str) -> Option<MacHardware> {
    let items = &text[text.find("<key>_items</key>")?..];
    let mut map = serde_json::Map::new();
    let mut rest = items;
    while let Some(k) = rest.find("<key>") {
        rest = &rest[k + 5..];
        let end = rest.find("</key>")?;
        let key = rest[..end].to_string();
        rest = rest[end + 6..].trim_start();
        let value = if let Some(r) = rest.strip_prefix("<string>") {
            let e = r.find("</string>")?;
            Value::String(xml_unescape(&r[..e]))
        } else if let Some(r) = rest.strip_prefix("<integer>") {
            let e = r.find("</integer>")?;
            r[..e]
                .trim()
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or(Value::Null)
        } else if rest.starts_with("</dict>") {
            break;
        } else {
            Value::Null
        };
        map.entry(key).or_insert(value);
        if rest.starts_with("</dict>") {
            break;
        }
    }
    if map.is_empty() {
        return None;
    }
    Some(hardware_from_fields(|k| {
        map.get(k).cloned().filter(|v| !v.is_null())
    }))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `spdisplays_vendor` values look like `sppci_vendor_Apple` or `sppci_vendor_amd`;
/// the text form says `AMD (0x1002)`.
fn vendor_name(raw: &str) -> String {
    let v = raw.trim_start_matches("sppci_vendor_");
    let v = v.split(" (").next().unwrap_or(v);
    match v.to_ascii_lowercase().as_str() {
        "amd" | "ati" => "AMD".into(),
        "apple" => "Apple".into(),
        "intel" => "Intel".into(),
        "nvidia" => "NVIDIA".into(),
        _ => v.to_string(),
    }
}

fn is_unified(vendor: Option<&str>, bus: Option<&str>, name: &str) -> bool {
    vendor == Some("Apple") && !name.contains("Paravirtual")
        || vendor == Some("Intel")
        || bus.is_some_and(|b| b.to_ascii_lowercase().contains("built"))
            && !name.contains("Paravirtual")
}

/// Parses `system_profiler SPDisplaysDataType -json`.
pub fn parse_spdisplays_json(text: &str) -> Vec<Gpu> {
    let Ok(root) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let Some(items) = root.get("SPDisplaysDataType").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let s = |k: &str| item.get(k).and_then(Value::as_str);
            let name = s("sppci_model").or_else(|| s("_name"))?.to_string();
            let vendor = s("spdisplays_vendor")
                .map(vendor_name)
                .or_else(|| name.starts_with("Apple").then(|| "Apple".to_string()));
            let bus = s("sppci_bus").map(|b| b.trim_start_matches("spdisplays_").to_string());
            let vram = s("spdisplays_vram")
                .or_else(|| s("spdisplays_vram_shared"))
                .and_then(parse_size);
            let cores = s("sppci_cores").and_then(|c| c.parse().ok());
            let unified = is_unified(vendor.as_deref(), bus.as_deref(), &name);
            Some(Gpu {
                name,
                vendor,
                vram_bytes: vram,
                unified,
                cores,
            })
        })
        .collect()
}

/// Parses the text form of `system_profiler SPDisplaysDataType` (also found inside a
/// full `system_profiler` dump). One GPU per `Chipset Model:` line.
pub fn parse_spdisplays_text(text: &str) -> Vec<Gpu> {
    let mut gpus: Vec<Gpu> = Vec::new();
    let mut bus: Option<String> = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Chipset Model" => {
                gpus.push(Gpu {
                    name: value.to_string(),
                    vendor: None,
                    vram_bytes: None,
                    unified: false,
                    cores: None,
                });
                bus = None;
            }
            k if gpus.is_empty() => {
                let _ = k;
            }
            "Bus" => bus = Some(value.to_string()),
            "Vendor" => {
                let gpu = gpus.last_mut().expect("checked above");
                gpu.vendor = Some(vendor_name(value));
            }
            k if k.starts_with("VRAM") => {
                let gpu = gpus.last_mut().expect("checked above");
                gpu.vram_bytes = gpu.vram_bytes.or_else(|| parse_size(value));
            }
            "Total Number of Cores" => {
                gpus.last_mut().expect("checked above").cores = value.parse().ok();
            }
            _ => {}
        }
        if let Some(gpu) = gpus.last_mut() {
            gpu.unified = is_unified(gpu.vendor.as_deref(), bus.as_deref(), &gpu.name);
        }
    }
    gpus
}

/// What `sysctl` says about the CPU and memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sysctl {
    pub cpu_brand: Option<String>,
    pub model_identifier: Option<String>,
    pub memory_bytes: Option<u64>,
    pub physical_cores: Option<u32>,
    pub logical_cores: Option<u32>,
    /// Performance levels on Apple Silicon, fastest first: (name, physical cores).
    pub perf_levels: Vec<(String, u32)>,
}

/// Parses `sysctl` output (`name: value` lines; any subset of `sysctl -a`).
pub fn parse_sysctl(text: &str) -> Sysctl {
    let mut out = Sysctl::default();
    let mut levels: std::collections::BTreeMap<u32, (Option<String>, Option<u32>)> =
        Default::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let num = || value.parse::<u64>().ok();
        match key {
            "machdep.cpu.brand_string" => {
                out.cpu_brand = Some(value.split_whitespace().collect::<Vec<_>>().join(" "))
            }
            "hw.model" => out.model_identifier = Some(value.to_string()),
            "hw.memsize" => out.memory_bytes = num(),
            "hw.physicalcpu" => out.physical_cores = num().map(|n| n as u32),
            "hw.logicalcpu" => out.logical_cores = num().map(|n| n as u32),
            "machdep.cpu.core_count" => {
                out.physical_cores = out.physical_cores.or(num().map(|n| n as u32))
            }
            "machdep.cpu.thread_count" => {
                out.logical_cores = out.logical_cores.or(num().map(|n| n as u32))
            }
            k => {
                if let Some(rest) = k.strip_prefix("hw.perflevel") {
                    if let Some((idx, field)) = rest.split_once('.') {
                        if let Ok(idx) = idx.parse::<u32>() {
                            let entry = levels.entry(idx).or_default();
                            match field {
                                "name" => entry.0 = Some(value.to_string()),
                                "physicalcpu" => entry.1 = num().map(|n| n as u32),
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }
    out.perf_levels = levels
        .into_values()
        .filter_map(|(name, cores)| Some((name?, cores?)))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/macos/");
        std::fs::read_to_string(format!("{dir}{name}"))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    const GB: u64 = 1 << 30;

    #[test]
    fn sphardware_json_across_macs() {
        let cases = [
            (
                "sphardware-imacpro1-1-intel-xeon-w.json",
                "iMacPro1,1",
                Some("8-Core Intel Xeon W"),
                32,
                Some(8),
            ),
            (
                "sphardware-macbookair10-1-m1.json",
                "MacBookAir10,1",
                Some("Apple M1"),
                16,
                Some(8),
            ),
            (
                "sphardware-macbookair10-1-m1-under-rosetta.json",
                "MacBookAir10,1",
                None,
                16,
                Some(8),
            ),
            (
                "sphardware-macbookpro-mac17-6-m5-max.json",
                "Mac17,6",
                Some("Apple M5 Max"),
                128,
                Some(18),
            ),
            (
                "sphardware-github-runner-macos15-intel-vm-macmini6-2.json",
                "Macmini6,2",
                None,
                14,
                None,
            ),
            (
                "sphardware-github-runner-macos26-arm64-vm-m1-virtual.json",
                "VirtualMac2,1",
                Some("Apple M1 (Virtual)"),
                7,
                Some(3),
            ),
        ];
        for (file, model, chip, gb, cores) in cases {
            let hw = parse_sphardware_json(&fixture(file)).unwrap_or_else(|| panic!("{file}"));
            assert_eq!(hw.model_identifier.as_deref(), Some(model), "{file}");
            assert_eq!(hw.chip.as_deref(), chip, "{file}");
            assert_eq!(hw.memory_bytes, Some(gb * GB), "{file}");
            if cores.is_some() {
                assert_eq!(hw.cores, cores, "{file}");
            }
        }
    }

    #[test]
    fn sphardware_xml_intel_macbook_pro() {
        let hw = parse_sphardware_xml(&fixture("sphardware-xml-macbookpro11-1-intel-core-i7.xml"))
            .unwrap();
        assert_eq!(hw.model_identifier.as_deref(), Some("MacBookPro11,1"));
        assert_eq!(hw.model_name.as_deref(), Some("MacBook Pro"));
        assert_eq!(hw.chip.as_deref(), Some("Intel Core i7"));
        assert_eq!(hw.memory_bytes, Some(16 * GB));
        assert_eq!(hw.cores, Some(2));
    }

    #[test]
    fn spdisplays_json_apple_silicon_and_vm() {
        let g = parse_spdisplays_json(&fixture(
            "spdisplays-macbookpro-m1-pro-14core-3-displays.json",
        ));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "Apple M1 Pro");
        assert_eq!(g[0].cores, Some(14));
        assert!(g[0].unified);
        let vm = parse_spdisplays_json(&fixture(
            "spdisplays-github-runner-macos15-intel-vm-paravirt.json",
        ));
        assert_eq!(vm[0].name, "Apple Paravirtualized Graphics Device");
        assert_eq!(vm[0].vram_bytes, Some(64 << 20));
        assert!(!vm[0].unified);
    }

    #[test]
    fn spdisplays_text_intel_macs_with_radeons() {
        let g = parse_spdisplays_text(&fixture(
            "spdisplays-text-macbookpro-15in-2016-hd530-radeon-pro-450-dynamic-vram.txt",
        ));
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].name, "Intel HD Graphics 530");
        assert!(g[0].unified);
        assert_eq!(g[1].name, "AMD Radeon Pro 450");
        assert_eq!(g[1].vendor.as_deref(), Some("AMD"));
        assert_eq!(g[1].vram_bytes, Some(2048 << 20));
        assert!(!g[1].unified);

        let g = parse_spdisplays_text(&fixture(
            "spdisplays-text-macbookpro-15in-2016-hd530-radeon-pro-450-mojave.txt",
        ));
        assert_eq!(g[1].vram_bytes, Some(2 * GB));

        let g = parse_spdisplays_text(&fixture("spdisplays-text-imacpro1-1-radeon-pro-vega64.txt"));
        assert_eq!(g.len(), 1);
        assert_eq!(
            (g[0].name.as_str(), g[0].vram_bytes),
            ("Radeon Pro Vega 64", Some(16 * GB))
        );

        let g = parse_spdisplays_text(&fixture("spdisplays-text-mac-nvidia-geforce-gt-730.txt"));
        assert_eq!(g[0].vendor.as_deref(), Some("NVIDIA"));
        assert_eq!(g[0].vram_bytes, Some(1024 << 20));
    }

    #[test]
    fn spdisplays_text_inside_a_full_dump() {
        let g = parse_spdisplays_text(&fixture(
            "system-profiler-text-macbookair10-1-m1-bigsur.txt",
        ));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "Apple M1");
        assert_eq!(g[0].cores, Some(8));
        assert!(g[0].unified);
    }

    #[test]
    fn sysctl_intel_and_apple_silicon() {
        let s = parse_sysctl(&fixture("sysctl-a-macbookpro18-1-m1-pro.txt"));
        assert_eq!(s.cpu_brand.as_deref(), Some("Apple M1 Pro"));
        assert_eq!(s.model_identifier.as_deref(), Some("MacBookPro18,1"));
        assert_eq!(s.memory_bytes, Some(32 * GB));
        assert_eq!((s.physical_cores, s.logical_cores), (Some(10), Some(10)));

        let s = parse_sysctl(&fixture(
            "sysctl-machdep-cpu-osx10.6-macmini-core2duo-p7550.txt",
        ));
        assert_eq!(
            s.cpu_brand.as_deref(),
            Some("Intel(R) Core(TM)2 Duo CPU P7550 @ 2.26GHz")
        );

        let s = parse_sysctl(&fixture("sysctl-machdep-cpu-osx10.12-intel-i5-2557m.txt"));
        assert_eq!((s.physical_cores, s.logical_cores), (Some(2), Some(4)));
        assert_eq!(s.memory_bytes, None);

        let s = parse_sysctl(&fixture("sysctl-perflevels-macbookpro-mac17-6-m5-max.txt"));
        assert_eq!(
            s.perf_levels,
            vec![("Super".to_string(), 6), ("Performance".to_string(), 12)]
        );

        let s = parse_sysctl(&fixture(
            "sysctl-github-runner-macos15-intel-vm-i7-8700b.txt",
        ));
        assert_eq!(
            s.cpu_brand.as_deref(),
            Some("Intel(R) Core(TM) i7-8700B CPU @ 3.20GHz")
        );
    }

    #[test]
    fn unseen_keys_and_garbage_do_not_fail() {
        assert!(parse_spdisplays_json("not json").is_empty());
        assert!(
            parse_spdisplays_json(r#"{"SPDisplaysDataType":[{"spdisplays_new_key":1}]}"#)
                .is_empty()
        );
        let g = parse_spdisplays_json(
            r#"{"SPDisplaysDataType":[{"sppci_model":"Radeon Pro 575","spdisplays_vram":"4 GB","spdisplays_vendor":"sppci_vendor_amd","brand_new":{"x":1}}]}"#,
        );
        assert_eq!(g[0].vram_bytes, Some(4 * GB));
        assert_eq!(g[0].vendor.as_deref(), Some("AMD"));
        assert!(!g[0].unified);
        assert_eq!(parse_sysctl("garbage\n:::\n"), Sysctl::default());
        assert!(parse_sphardware_json("{}").is_none());
    }
}
