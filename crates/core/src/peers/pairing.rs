//! Pairing: a six-digit code shown on one Mac and typed on the other.
//!
//! The code never crosses the network. Both sides run SPAKE2 with it, which gives them
//! the same 32-byte secret only when the codes match, and which an eavesdropper cannot
//! test guesses against; a wrong guess costs an attacker the code (one attempt each).
//! That secret is the pre-shared key of a Noise `XXpsk3` handshake in which the two Macs
//! exchange their long-term keys, so each key is authenticated by the code. Each side
//! then keeps the other's key ([`super::book`]); every later connection pins it.

use std::time::Duration;

use spake2::{Ed25519Group, Identity as SpakeId, Password, Spake2};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::wire::{self, within, WireError, MAGIC, OPEN_PAIR};
use super::{Answer, Hello, Identity, Peer, PeerError, Want};

const PAIR_NOISE: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE: &[u8] = b"kindling pairing 1";
const DIALER: &[u8] = b"kindling typed the code";
const SHOWER: &[u8] = b"kindling showed the code";
/// How long a pairing exchange may take once someone connects.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a shown code stays good.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// A new code: six digits from the OS's random source, shown as "123 456".
pub fn new_code() -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the system's random source works");
    let n = u32::from_le_bytes(bytes) % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

/// The digits of a code as typed ("123-456", "123 456" and "123456" are the same code).
pub fn digits(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

/// Who this Mac is, as it tells the other at pairing.
#[derive(Debug, Clone)]
pub struct Me<'a> {
    pub identity: &'a Identity,
    pub name: String,
    pub build: Option<u32>,
    /// The port this Mac shares on, so the other can reach it too.
    pub share_port: u16,
}

/// The six digits of a code as typed ("123 456"), or why it is not one.
pub fn typed_code(code: &str) -> Result<String, PeerError> {
    let code = digits(code);
    if code.len() != 6 {
        return Err(failed("a pairing code has six digits"));
    }
    Ok(code)
}

fn failed(why: impl Into<String>) -> PeerError {
    PeerError::Pairing { why: why.into() }
}

fn noise(me: &Identity, psk: &[u8], initiator: bool) -> Result<snow::HandshakeState, PeerError> {
    let builder = snow::Builder::new(PAIR_NOISE.parse().expect("a valid Noise pattern"))
        .local_private_key(me.private())
        .psk(3, psk)
        .prologue(PROLOGUE);
    let built = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    };
    built.map_err(|e| failed(e.to_string()))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Pairs with the Mac at `address` (`host` or `host:port`) that shows `code`. On
/// success the other Mac is in this Mac's book (the caller stores the returned peer).
pub async fn pair_with(address: &str, code: &str, me: &Me<'_>) -> Result<Peer, PeerError> {
    let address = with_port(address);
    let code = typed_code(code)?;
    let unreachable = |cause: WireError| PeerError::Unreachable {
        name: "The other Mac".into(),
        address: address.clone(),
        cause,
    };
    let mut stream = within(wire::HANDSHAKE_TIMEOUT, async {
        Ok(TcpStream::connect(&address).await?)
    })
    .await
    .map_err(unreachable)?;
    let exchange = async {
        let mut opening = MAGIC.to_vec();
        opening.push(OPEN_PAIR);
        stream.write_all(&opening).await?;
        let (spake, outbound) = Spake2::<Ed25519Group>::start_a(
            &Password::new(code.as_bytes()),
            &SpakeId::new(DIALER),
            &SpakeId::new(SHOWER),
        );
        wire::write_raw(&mut stream, &outbound).await?;
        let inbound = wire::read_raw(&mut stream).await?;
        Ok((spake, inbound, stream))
    };
    let (spake, inbound, mut stream) =
        within(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|e| {
                match e {
            WireError::Closed => failed(
                "the other Mac is not showing a code now (or its code was used up by a wrong try)",
            ),
            e => unreachable(e),
        }
            })?;
    let psk = spake
        .finish(&inbound)
        .map_err(|_| failed("the other Mac's answer was malformed"))?;
    let mut hs = noise(me.identity, &psk, true)?;
    let mut buf = vec![0u8; 65535];
    let result = within(EXCHANGE_TIMEOUT, async {
        let n = hs.write_message(&[], &mut buf).map_err(wire::garbled)?;
        wire::write_raw(&mut stream, &buf[..n]).await?;
        let m = wire::read_raw(&mut stream).await?;
        hs.read_message(&m, &mut buf).map_err(wire::garbled)?;
        let n = hs.write_message(&[], &mut buf).map_err(wire::garbled)?;
        wire::write_raw(&mut stream, &buf[..n]).await?;
        let mut ch = wire::from_handshake(stream, hs)?;
        ch.tx
            .json(&Hello {
                name: me.name.clone(),
                build: me.build,
                want: Want::Pair,
                share_port: Some(me.share_port),
                model: None,
            })
            .await?;
        let answer: Answer = ch.rx.json().await?;
        Ok((answer, ch.remote))
    })
    .await;
    let (answer, key) = result.map_err(|e| match e {
        WireError::Timeout(_) => unreachable(e),
        // The other Mac hangs up when the keys it derived from its code do not open
        // what this one sent: a close, or a reset when this Mac's next frame was
        // already on its way.
        _ => failed("the code did not match the one the other Mac shows"),
    })?;
    if let Some(why) = answer.refused {
        return Err(failed(why));
    }
    Ok(Peer {
        name: answer.name,
        key: key.to_hex(),
        address: Some(address),
        paired_at: now(),
        build: answer.build,
    })
}

/// Answers one pairing attempt on `stream` (its opening bytes already read) against
/// `code`, shown here. Returns the other Mac to keep.
pub async fn answer(mut stream: TcpStream, code: &str, me: &Me<'_>) -> Result<Peer, PeerError> {
    let seen_from = stream.peer_addr().ok().map(|a| a.ip());
    let code = digits(code);
    let exchange = async {
        let inbound = wire::read_raw(&mut stream).await?;
        let (spake, outbound) = Spake2::<Ed25519Group>::start_b(
            &Password::new(code.as_bytes()),
            &SpakeId::new(DIALER),
            &SpakeId::new(SHOWER),
        );
        wire::write_raw(&mut stream, &outbound).await?;
        Ok((spake, inbound, stream))
    };
    let (spake, inbound, mut stream) = within(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|e| failed(format!("the other Mac went away ({e})")))?;
    let psk = spake
        .finish(&inbound)
        .map_err(|_| failed("the other Mac's message was malformed"))?;
    let mut hs = noise(me.identity, &psk, false)?;
    let mut buf = vec![0u8; 65535];
    let wrong_code = || failed("the code typed on the other Mac was not the one shown here");
    let result = within(EXCHANGE_TIMEOUT, async {
        let m = wire::read_raw(&mut stream).await?;
        hs.read_message(&m, &mut buf).map_err(wire::garbled)?;
        let n = hs.write_message(&[], &mut buf).map_err(wire::garbled)?;
        wire::write_raw(&mut stream, &buf[..n]).await?;
        let m = wire::read_raw(&mut stream).await?;
        // With a different code the pre-shared key differs, and this fails.
        if hs.read_message(&m, &mut buf).is_err() {
            return Ok(None);
        }
        let mut ch = wire::from_handshake(stream, hs)?;
        let hello: Hello = ch.rx.json().await?;
        ch.tx
            .json(&Answer {
                name: me.name.clone(),
                build: me.build,
                offer: None,
                refused: None,
                door_key: None,
            })
            .await?;
        Ok(Some((hello, ch.remote)))
    })
    .await;
    let (hello, key) = match result {
        Ok(Some(x)) => x,
        Ok(None) => return Err(wrong_code()),
        Err(e) => return Err(failed(format!("the other Mac went away ({e})"))),
    };
    if hello.want != Want::Pair {
        return Err(failed("the other Mac asked for something else"));
    }
    Ok(Peer {
        name: hello.name,
        key: key.to_hex(),
        address: match (seen_from, hello.share_port) {
            (Some(ip), Some(port)) => Some(std::net::SocketAddr::new(ip, port).to_string()),
            _ => None,
        },
        paired_at: now(),
        build: hello.build,
    })
}

/// `host:port`, with the default share port when none is given.
pub fn with_port(address: &str) -> String {
    let a = address.trim();
    if a.parse::<std::net::SocketAddr>().is_ok() {
        return a.to_string();
    }
    if let Ok(ip) = a.parse::<std::net::IpAddr>() {
        return std::net::SocketAddr::new(ip, super::DEFAULT_SHARE_PORT).to_string();
    }
    match a.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => a.to_string(),
        _ => format!("{a}:{}", super::DEFAULT_SHARE_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_however_typed() {
        let code = new_code();
        assert_eq!(digits(&code).len(), 6, "{code}");
        assert_eq!(digits("123-456"), "123456");
        assert_eq!(digits(" 123 456 "), "123456");
    }

    #[test]
    fn an_address_gets_the_share_port_unless_it_has_one() {
        assert_eq!(with_port("192.168.1.20"), "192.168.1.20:11490");
        assert_eq!(with_port("192.168.1.20:9000"), "192.168.1.20:9000");
        assert_eq!(with_port("studio.local"), "studio.local:11490");
        assert_eq!(with_port("studio.local:9000"), "studio.local:9000");
        assert_eq!(with_port("::1"), "[::1]:11490");
    }
}
