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

/// "A", "A and B", "A, B and C": a list as a person writes it.
pub fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.as_ref().to_string(),
        Some((last, first)) => {
            let first: Vec<&str> = first.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", first.join(", "), last.as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_as_a_person_writes_it() {
        assert_eq!(and_list::<&str>(&[]), "");
        assert_eq!(and_list(&["Attic Mac"]), "Attic Mac");
        assert_eq!(and_list(&["A", "B"]), "A and B");
        assert_eq!(and_list(&["A", "B", "C"]), "A, B and C");
    }

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
