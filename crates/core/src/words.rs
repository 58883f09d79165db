//! The one word for the machine Kindling runs on: on a Mac, "Mac" ("Benchmark my Mac",
//! "the best model for this Mac"); elsewhere (the Linux build, its .deb), "computer".
//! Every front takes it from here: the app's screens (through `AppInfo`), its tray, and
//! the packages' descriptions.

/// "Mac" on macOS, else "computer".
pub const MACHINE: &str = if cfg!(target_os = "macos") {
    "Mac"
} else {
    "computer"
};

/// "Benchmark my Mac" / "Benchmark my computer".
pub fn benchmark_mine() -> String {
    format!("Benchmark my {MACHINE}")
}

/// "the best model for this Mac" / "... this computer".
pub fn best_model_here() -> String {
    format!("the best model for this {MACHINE}")
}

/// "1 answer" / "2 answers": a count as a person writes it.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_written() {
        assert_eq!(count(1, "answer", "answers"), "1 answer");
        assert_eq!(count(0, "answer", "answers"), "0 answers");
        assert_eq!(count(2, "answer", "answers"), "2 answers");
    }

    #[test]
    fn a_linux_machine_is_no_mac() {
        let expected = if cfg!(target_os = "macos") {
            "Mac"
        } else {
            "computer"
        };
        assert_eq!(MACHINE, expected);
        assert_eq!(benchmark_mine(), format!("Benchmark my {expected}"));
    }
}
