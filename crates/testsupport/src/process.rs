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

/// The IPv4 addresses a TCP port listens on, from `/proc/net/tcp`: `0.0.0.0` (every
/// interface) or `127.0.0.1` (this computer only).
pub fn listening_on(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let (addr, p) = cols.get(1)?.split_once(':')?;
            (cols.get(3) == Some(&"0A") && u16::from_str_radix(p, 16).ok()? == port).then(|| {
                let a = u32::from_str_radix(addr, 16).unwrap_or(0).to_le_bytes();
                format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
            })
        })
        .collect()
}
