//! Quantities for people: sizes and durations in plain words.

/// Bytes for people: `253 MB`, `23.4 GB`.
pub fn format_bytes(b: u64) -> String {
    const GB: f64 = 1e9;
    const MB: f64 = 1e6;
    let b = b as f64;
    if b >= 10.0 * GB {
        format!("{:.0} GB", b / GB)
    } else if b >= GB {
        format!("{:.1} GB", b / GB)
    } else if b >= MB {
        format!("{:.0} MB", b / MB)
    } else if b >= 1e3 {
        format!("{:.0} KB", b / 1e3)
    } else {
        format!("{b:.0} bytes")
    }
}

/// A token count for people: `900`, `5.5k`, `32k`.
pub fn format_tokens(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else if n < 10_000 {
        format!("{:.1}k", n as f64 / 1000.0)
    } else {
        format!("{:.0}k", n as f64 / 1000.0)
    }
}

/// A duration for people: `45 s`, `3 min`, `1 h 20 min`.
pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 90 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", (s + 30) / 60)
    } else {
        // Whole minutes first, so 2 h 59.6 min reads "3 h", never "2 h 60 min".
        let min = (s + 30) / 60;
        match min % 60 {
            0 => format!("{} h", min / 60),
            m => format!("{} h {m} min", min / 60),
        }
    }
}

/// A size as a person types it: `8GB`, `512 MB`, `1.5G`, or a bare number of gigabytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_uppercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size: write it like 8GB or 512MB"))?;
    let scale = match unit.trim().trim_end_matches("IB").trim_end_matches('B') {
        "" | "G" => 1e9,
        "M" => 1e6,
        "T" => 1e12,
        "K" => 1e3,
        _ => {
            return Err(format!(
                "\"{text}\" is not a size: write it like 8GB or 512MB"
            ))
        }
    };
    Ok((n * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_as_people_write_them() {
        assert_eq!(parse_bytes("8GB"), Ok(8_000_000_000));
        assert_eq!(parse_bytes("8"), Ok(8_000_000_000));
        assert_eq!(parse_bytes("512 MB"), Ok(512_000_000));
        assert_eq!(parse_bytes("1.5g"), Ok(1_500_000_000));
        assert!(parse_bytes("lots").unwrap_err().contains("8GB"));
        assert!(parse_bytes("8 apples").is_err());
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(format_bytes(253_113_024), "253 MB");
        assert_eq!(format_bytes(4 << 30), "4.3 GB");
        assert_eq!(format_bytes(32 << 30), "34 GB");
        // Below a megabyte (an orphaned manifest in cleanup): never "0 MB".
        assert_eq!(format_bytes(4_104), "4 KB");
        assert_eq!(format_bytes(999_499), "999 KB");
        assert_eq!(format_bytes(512), "512 bytes");
    }

    #[test]
    fn tokens_for_people() {
        assert_eq!(format_tokens(900), "900");
        assert_eq!(format_tokens(5_435), "5.4k");
        assert_eq!(format_tokens(32_768), "33k");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(format_duration(45.4), "45 s");
        assert_eq!(format_duration(600.0), "10 min");
        assert_eq!(format_duration(4800.0), "1 h 20 min");
        // "3 h 0 min" and "2 h 60 min" are not how a person writes three hours.
        assert_eq!(format_duration(3.0 * 3600.0), "3 h");
        assert_eq!(format_duration(3.0 * 3600.0 - 20.0), "3 h");
        assert_eq!(format_duration(-3.0), "0 s");
    }
}
