//! Macs in the house finding each other (Bonjour, mDNS-SD): a Mac that shares says so on
//! the local network (`_kindling._tcp`), with its name, its key's fingerprint, its
//! runtime build and whether it shows a pairing code now; another Mac looks for a couple
//! of seconds and lists what it heard. What is heard is only a hint of where to dial:
//! every connection is still authenticated by the keys pinned at pairing, so a Mac that
//! lies here reaches nothing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

use super::identity::PublicKey;

/// The service Kindling's sharing listener is announced as.
pub const SERVICE: &str = "_kindling._tcp.local.";

/// How long a look listens by default: announcements answer a query within a second.
pub const LOOK: Duration = Duration::from_secs(2);

/// A Mac heard on the local network.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Nearby {
    /// Its name ("Studio iMac").
    pub name: String,
    /// Its public key (hex), as it announces it: compared with the paired Macs' keys.
    pub key: String,
    /// Where to dial it (`host:port`).
    pub address: String,
    /// The llama.cpp build of its runtime.
    pub build: Option<u32>,
    /// It shows a pairing code now.
    pub pairing: bool,
    /// This Mac paired with it already.
    pub paired: bool,
}

/// This Mac, announced while it shares. Withdrawn when dropped.
pub struct Advert {
    daemon: ServiceDaemon,
    /// What it was started with: an update announces the same Mac again, but for
    /// whether it shows a code.
    name: String,
    key: PublicKey,
    build: Option<u32>,
    addr: SocketAddr,
    /// The name the announcement is registered under (to withdraw it).
    fullname: String,
    withdrawn: AtomicBool,
}

impl Advert {
    /// Announces the sharing listener at `addr` (every address of this Mac when it listens
    /// on all of them). `None` when the network allows no announcing (the Mac is still
    /// reached by its address).
    pub fn start(
        name: &str,
        key: &PublicKey,
        build: Option<u32>,
        addr: SocketAddr,
    ) -> Option<Advert> {
        let daemon = ServiceDaemon::new()
            .map_err(|e| tracing::warn!(error = %e, "cannot announce this Mac on the network"))
            .ok()?;
        let info = service(name, key, build, addr, false)?;
        let fullname = info.get_fullname().to_string();
        daemon
            .register(info)
            .map_err(|e| tracing::warn!(error = %e, "cannot announce this Mac on the network"))
            .ok()?;
        Some(Advert {
            daemon,
            name: name.to_string(),
            key: *key,
            build,
            addr,
            fullname,
            withdrawn: AtomicBool::new(false),
        })
    }

    /// Says whether this Mac shows a pairing code now (the other Mac then needs no address).
    pub fn set_pairing(&self, showing: bool) {
        if self.withdrawn.load(Ordering::SeqCst) {
            return;
        }
        // Registering the same name again replaces the announcement.
        if let Some(info) = service(&self.name, &self.key, self.build, self.addr, showing) {
            let _ = self.daemon.register(info);
        }
    }

    /// Says goodbye on the network and stops announcing (once; later calls do nothing).
    pub fn withdraw(&self) {
        if self.withdrawn.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            // The goodbye goes out before the daemon stops (a second at most).
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
        let _ = self.daemon.shutdown();
    }
}

impl Drop for Advert {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// The announcement of a Mac listening at `addr`. Its instance name carries the key's
/// first bytes: two Macs with the same name stay two.
fn service(
    name: &str,
    key: &PublicKey,
    build: Option<u32>,
    addr: SocketAddr,
    pairing: bool,
) -> Option<ServiceInfo> {
    let hex = key.to_hex();
    let short: String = name.chars().filter(|c| *c != '.').take(40).collect();
    let instance = format!("{short} {}", &hex[..8]);
    let host = format!("kindling-{}.local.", &hex[..12]);
    let mut props = vec![
        ("name".to_string(), name.to_string()),
        ("key".to_string(), hex.clone()),
        (
            "pairing".to_string(),
            if pairing { "1" } else { "0" }.to_string(),
        ),
    ];
    if let Some(b) = build {
        props.push(("build".into(), b.to_string()));
    }
    let every = addr.ip().is_unspecified();
    let ips: Vec<IpAddr> = if every { Vec::new() } else { vec![addr.ip()] };
    let info = ServiceInfo::new(
        SERVICE,
        &instance,
        &host,
        ips.as_slice(),
        addr.port(),
        props.as_slice(),
    )
    .map_err(|e| tracing::warn!(error = %e, "cannot announce this Mac on the network"))
    .ok()?;
    Some(if every { info.enable_addr_auto() } else { info })
}

/// The Macs heard on the local network within `wait`, but this one (`me`), by name.
/// Stops early once `until` says enough was heard.
pub async fn look(
    wait: Duration,
    me: &PublicKey,
    until: impl Fn(&[Nearby]) -> bool,
) -> Vec<Nearby> {
    let Ok(daemon) = ServiceDaemon::new() else {
        return Vec::new();
    };
    let Ok(events) = daemon.browse(SERVICE) else {
        let _ = daemon.shutdown();
        return Vec::new();
    };
    let mine = me.to_hex();
    let mut heard: BTreeMap<String, Nearby> = BTreeMap::new();
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match tokio::time::timeout(left, events.recv_async()).await {
            Ok(Ok(event)) => event,
            _ => break,
        };
        if let ServiceEvent::ServiceResolved(info) = event {
            if let Some(mac) = heard_from(&info).filter(|m| m.key != mine) {
                // One Mac per key: the same Mac may be heard under two instance names (a
                // name it renamed itself to after hearing its own announcement again).
                heard.insert(mac.key.clone(), mac);
                let now: Vec<Nearby> = heard.values().cloned().collect();
                if until(&now) {
                    break;
                }
            }
        }
    }
    let _ = daemon.stop_browse(SERVICE);
    let _ = daemon.shutdown();
    let mut found: Vec<Nearby> = heard.into_values().collect();
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.address.cmp(&b.address)));
    found
}

/// What one announcement says, when it says enough to dial.
fn heard_from(info: &ServiceInfo) -> Option<Nearby> {
    let key = info.get_property_val_str("key")?;
    PublicKey::from_hex(key)?;
    let ip = pick_address(info.get_addresses().iter().copied())?;
    Some(Nearby {
        name: info
            .get_property_val_str("name")
            .unwrap_or(info.get_fullname())
            .to_string(),
        key: key.to_string(),
        address: SocketAddr::new(ip, info.get_port()).to_string(),
        build: info
            .get_property_val_str("build")
            .and_then(|b| b.parse().ok()),
        pairing: info.get_property_val_str("pairing") == Some("1"),
        paired: false,
    })
}

/// The address to dial among those a Mac announces: IPv4 first (what the owner would
/// type), then a global IPv6 one; never a link-local one (it needs an interface named).
fn pick_address(ips: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
    let mut ips: Vec<IpAddr> = ips
        .filter(|ip| match ip {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.into_iter().next()
}

/// The Mac to pair with when no address was typed: the one nearby that shows a code.
pub fn showing_code(found: &[Nearby]) -> Result<&Nearby, String> {
    let showing: Vec<&Nearby> = found.iter().filter(|m| m.pairing).collect();
    match showing.as_slice() {
        [one] => Ok(one),
        [] => Err(
            "No Mac on this network is showing a pairing code now. On the other Mac, choose \
             \"Show a code\" in Kindling (or run `kindling pair` there), then type the code \
             here; if it is on another network, give its address too."
                .into(),
        ),
        many => Err(format!(
            "{} Macs on this network show a pairing code now ({}): give the address of the one you mean.",
            many.len(),
            many.iter()
                .map(|m| format!("{} at {}", m.name, m.address))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(name: &str, pairing: bool) -> Nearby {
        Nearby {
            name: name.into(),
            key: "00".repeat(32),
            address: "192.168.1.20:11490".into(),
            build: Some(6000),
            pairing,
            paired: false,
        }
    }

    #[test]
    fn the_mac_to_pair_with_is_the_one_showing_a_code() {
        let found = [mac("Studio iMac", false), mac("MacBook", true)];
        assert_eq!(showing_code(&found).unwrap().name, "MacBook");
        let none = showing_code(&found[..1]).unwrap_err();
        assert!(
            none.starts_with("No Mac on this network is showing"),
            "{none}"
        );
        let two = [mac("Studio iMac", true), mac("MacBook", true)];
        let many = showing_code(&two).unwrap_err();
        assert!(
            many.contains("2 Macs") && many.contains("MacBook at 192.168.1.20:11490"),
            "{many}"
        );
    }

    #[test]
    fn the_address_dialed_is_ipv4_first_and_never_link_local() {
        let v4: IpAddr = "192.168.1.20".parse().unwrap();
        let global: IpAddr = "fd00::2".parse().unwrap();
        let link: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(pick_address([link, global, v4].into_iter()), Some(v4));
        assert_eq!(pick_address([link, global].into_iter()), Some(global));
        assert_eq!(pick_address([link].into_iter()), None);
    }
}
