//! Who may call: every request to the front door passes here before anything reaches a
//! model. Pure functions of the request's headers and the door's [`Policy`], so each rule
//! is tested on its own.
//!
//! - **Loopback mode** (no key): the `Host` must name this computer (a loopback name or
//!   address, with any port). A page that rebinds its own name to 127.0.0.1 sends its own
//!   name as `Host` and is refused. The port is not what protects: no web page can send
//!   a loopback `Host` for a port other than the one it calls, and a paired Mac's routed
//!   requests keep the port its own apps address (often not this door's).
//! - **Origins**, in both modes: a request carrying an `Origin` that is neither a page on
//!   this computer nor the one site the owner allowed is refused before it reaches the
//!   model: preflights and "simple" cross-site POSTs alike. The door answers CORS itself;
//!   llama-server never sees an `Origin`.
//! - **Network mode**: the key is checked here, in constant time, on every path but
//!   [`OPEN_WITHOUT_KEY`] and the chat page.

use http::{HeaderMap, Method, StatusCode};

use crate::server::access::OPEN_WITHOUT_KEY;

/// Paths of the server's own chat page, which other devices may load without the key
/// (it asks for the key before it can answer anything).
pub const CHAT_PAGE: [&str; 2] = ["/", "/index.html"];

/// What a door allows, fixed when it opens (like a server's flags: a change of settings
/// takes effect at the next start).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Network mode: the key every caller must send (`Authorization: Bearer KEY` or
    /// `x-api-key: KEY`). `None`: loopback mode.
    pub key: Option<String>,
    /// The one web site (`https://app.example`) allowed besides pages on this computer.
    pub allowed_origin: Option<String>,
    /// End an answer that turned into garbage with an error instead of letting it run on.
    pub end_bad_answers: bool,
}

/// A refused request: its status and the one line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// An admitted request: the origin to allow in the answer's CORS headers, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admitted {
    pub cors_origin: Option<String>,
}

/// Decides whether a request may pass the door.
pub fn admit(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    policy: &Policy,
) -> Result<Admitted, Refusal> {
    if policy.key.is_none() {
        let host = header(headers, http::header::HOST);
        if !host.is_some_and(host_is_this_computer) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                code: "host_not_allowed",
                message: format!(
                    "Kindling answers only requests addressed to this computer (localhost or 127.0.0.1), and this one was addressed to {}. A web page may be trying to reach your models; nothing was run.",
                    host.unwrap_or("no host")
                ),
            });
        }
    }
    let cors_origin = match header(headers, http::header::ORIGIN) {
        None => None,
        Some(origin) if origin_allowed(origin, policy.allowed_origin.as_deref()) => {
            Some(origin.to_string())
        }
        Some(origin) => {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                code: "origin_not_allowed",
                message: format!(
                    "Kindling does not answer web pages from {origin}: only pages on this computer{} may call it. To allow one site, name it in Kindling's Server settings.",
                    policy
                        .allowed_origin
                        .as_deref()
                        .map(|s| format!(" and {s}"))
                        .unwrap_or_default()
                ),
            })
        }
    };
    // A preflight carries no credentials; it is answered by the door itself.
    if let Some(key) = &policy.key {
        let open = OPEN_WITHOUT_KEY.contains(&path)
            || (*method == Method::GET && CHAT_PAGE.contains(&path))
            || *method == Method::OPTIONS;
        if !open && !presented_key(headers).is_some_and(|k| same_secret(k, key)) {
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                code: "invalid_api_key",
                message: "This Kindling needs its network key: send it as \"Authorization: Bearer KEY\" (or \"x-api-key: KEY\"). The key is on Kindling's Server screen on the Mac that serves.".into(),
            });
        }
    }
    Ok(Admitted { cors_origin })
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The key a caller sent, OpenAI's way or Anthropic's.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    header(headers, http::header::AUTHORIZATION)
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Compares two secrets in time that depends on their lengths only.
pub fn same_secret(given: &str, key: &str) -> bool {
    let (a, b) = (given.as_bytes(), key.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `host[:port]` (`[::1]:8080` too) into the name and the port.
fn split_host(h: &str) -> (&str, Option<&str>) {
    if let Some(rest) = h.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => (h, None),
        };
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (h, None),
    }
}

fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a `Host` header names this computer (a loopback name or address; any port).
pub fn host_is_this_computer(host: &str) -> bool {
    let (name, p) = split_host(host.trim());
    is_loopback_name(name) && p.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// Whether a page at `origin` may call: one on this computer (any port), or the site the
/// owner allowed. `null` (a sandboxed frame, a file) never may.
pub fn origin_allowed(origin: &str, allowed: Option<&str>) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if allowed.is_some_and(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (name, port) = split_host(rest);
    is_loopback_name(name) && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// Whether a request is a CORS preflight (answered by the door, never forwarded).
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::OPTIONS && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn loopback() -> Policy {
        Policy::default()
    }

    fn post(h: &[(&str, &str)], policy: &Policy) -> Result<Admitted, Refusal> {
        admit(&Method::POST, "/v1/chat/completions", &headers(h), policy)
    }

    /// A paired Mac routes its apps' requests here whole: they name the port those apps
    /// use on that Mac, not this door's.
    #[test]
    fn loopback_hosts_pass_with_any_port_or_none() {
        for h in [
            "127.0.0.1:11480",
            "localhost:8080",
            "localhost:11480",
            "LOCALHOST",
            "[::1]:11480",
            "127.0.0.2:11480",
            "localhost.:11480",
        ] {
            assert!(post(&[("host", h)], &loopback()).is_ok(), "{h}");
        }
    }

    #[test]
    fn a_rebound_name_is_refused_in_loopback_mode() {
        for h in [
            "rebind.example:11480",
            "127.0.0.1.nip.io:11480",
            "localhost:notaport",
            "192.168.1.5:11480",
        ] {
            let r = post(&[("host", h)], &loopback()).unwrap_err();
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{h}");
            assert!(r.message.contains(h), "{}", r.message);
        }
        let r = post(&[], &loopback()).unwrap_err();
        assert!(r.message.contains("no host"), "{}", r.message);
    }

    #[test]
    fn pages_on_this_computer_and_the_one_site_pass_others_do_not() {
        let host = ("host", "127.0.0.1:11480");
        for o in [
            "http://localhost:5173",
            "http://127.0.0.1:11480",
            "https://localhost",
            "http://[::1]:3000",
        ] {
            let a = post(&[host, ("origin", o)], &loopback()).unwrap();
            assert_eq!(a.cors_origin.as_deref(), Some(o));
        }
        for o in [
            "https://evil.example",
            "null",
            "http://localhost.evil.example",
            "file://",
        ] {
            let r = post(&[host, ("origin", o)], &loopback()).unwrap_err();
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{o}");
            assert_eq!(r.code, "origin_not_allowed");
        }
        let site = Policy {
            allowed_origin: Some("https://app.example".into()),
            ..loopback()
        };
        assert!(post(&[host, ("origin", "https://app.example")], &site).is_ok());
        let r = post(&[host, ("origin", "https://evil.example")], &site).unwrap_err();
        assert!(r.message.contains("https://app.example"), "{}", r.message);
    }

    #[test]
    fn network_mode_needs_the_key_except_on_the_open_list() {
        let key = "kdl-0123456789abcdef0123456789abcdef".to_string();
        let net = Policy {
            key: Some(key.clone()),
            ..loopback()
        };
        let host = ("host", "192.168.1.20:11480");
        assert_eq!(
            post(&[host], &net).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert!(post(&[host, ("authorization", "Bearer wrong")], &net).is_err());
        let bearer = format!("Bearer {key}");
        assert!(post(&[host, ("authorization", &bearer)], &net).is_ok());
        assert!(post(&[host, ("x-api-key", &key)], &net).is_ok());
        for path in OPEN_WITHOUT_KEY.iter().chain(&CHAT_PAGE) {
            assert!(
                admit(&Method::GET, path, &headers(&[host]), &net).is_ok(),
                "{path}"
            );
        }
        assert!(admit(&Method::GET, "/v1/models", &headers(&[host]), &net).is_err());
        assert!(admit(&Method::POST, "/", &headers(&[host]), &net).is_err());
        // The key does not open the door to a foreign page.
        let r = post(
            &[
                host,
                ("authorization", &bearer),
                ("origin", "https://evil.example"),
            ],
            &net,
        )
        .unwrap_err();
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
