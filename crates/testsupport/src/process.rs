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

/// Listening TCP sockets (IPv4 and IPv6) by inode: their address.
pub fn listening() -> std::collections::HashMap<u64, std::net::SocketAddr> {
    let mut out = std::collections::HashMap::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let (ip_hex, port_hex) = f[1].split_once(':').unwrap();
            let port = u16::from_str_radix(port_hex, 16).unwrap();
            let ip: std::net::IpAddr = if v6 {
                let mut b = [0u8; 16];
                for (i, chunk) in b.chunks_mut(4).enumerate() {
                    let word = u32::from_str_radix(&ip_hex[i * 8..i * 8 + 8], 16).unwrap();
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                std::net::Ipv6Addr::from(b).into()
            } else {
                let n = u32::from_str_radix(ip_hex, 16).unwrap();
                std::net::Ipv4Addr::from(n.to_le_bytes()).into()
            };
            out.insert(f[9].parse().unwrap(), std::net::SocketAddr::new(ip, port));
        }
    }
    out
}

/// Where process `pid` listens.
pub fn listens(pid: u32) -> Vec<std::net::SocketAddr> {
    let sockets = listening();
    let mut out: Vec<std::net::SocketAddr> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let s = l.to_string_lossy().into_owned();
            s.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse::<u64>()
                .ok()
        })
        .filter_map(|inode| sockets.get(&inode).copied())
        .collect();
    out.sort();
    out
}

/// The children of `pid` (all its threads').
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}
