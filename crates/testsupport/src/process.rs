//! What a running process really got, read from `/proc` (Linux, where the tests run).

/// The command line of the running process `pid` (empty when it is gone): the arguments a
/// server was started with, not the ones Kindling meant to give it.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}
