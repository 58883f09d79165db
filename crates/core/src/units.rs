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
        format!("{} h {} min", s / 3600, (s % 3600 + 30) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(format_duration(-3.0), "0 s");
    }
}
