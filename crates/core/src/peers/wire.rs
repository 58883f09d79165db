//! The encrypted link between two paired Macs: Noise over TCP, in frames.
//!
//! Every connection opens with five bytes in the clear, `KDL1` and what it is for (`P`
//! pairing, `T` a tunnel). A tunnel is a `Noise_IK` handshake: the dialer knows the
//! listener's long-term key (pinned at pairing) and sends its own, which the listener
//! looks up among the Macs it paired with; an unknown key gets nothing, not even an
//! error. After the handshake every frame is encrypted and authenticated; a frame is a
//! 2-byte big-endian length and a Noise message whose plaintext is one byte of kind and
//! the payload.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use snow::StatelessTransportState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::identity::{Identity, PublicKey};

/// The first four bytes of every connection.
pub const MAGIC: &[u8; 4] = b"KDL1";
/// What a connection is for (its fifth byte).
pub const OPEN_PAIR: u8 = b'P';
pub const OPEN_TUNNEL: u8 = b'T';

const TUNNEL_NOISE: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
const PROLOGUE: &[u8] = b"kindling tunnel 1";
/// The longest Noise message (the spec's limit).
const MAX_MESSAGE: usize = 65535;
const TAG: usize = 16;
/// The most payload one frame carries.
pub const MAX_PAYLOAD: usize = MAX_MESSAGE - TAG - 1;
/// How long a handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Bytes of the piped connection.
    Data = 0,
    /// "Still here": sent when nothing else was for a while.
    Ping = 1,
    /// The sender is done; the payload says why (UTF-8, may be empty).
    Close = 2,
    /// A request or an answer, as JSON.
    Json = 3,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        [Kind::Data, Kind::Ping, Kind::Close, Kind::Json]
            .into_iter()
            .find(|k| *k as u8 == b)
    }
}

/// Why a link failed, in words the caller puts in a sentence about the Mac.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the connection failed ({0})")]
    Io(#[from] std::io::Error),
    #[error("it did not answer within {0} s")]
    Timeout(u64),
    #[error("it closed the connection")]
    Closed,
    #[error("it refused this Mac (not paired with it, or the pairing was removed there)")]
    Refused,
    #[error("what it sent could not be decrypted or read ({0})")]
    Garbled(String),
}

pub async fn write_raw(w: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a frame longer than 65535 bytes"))?;
    let mut buf = Vec::with_capacity(2 + bytes.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
    w.write_all(&buf).await
}

pub async fn read_raw(r: &mut (impl AsyncReadExt + Unpin)) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        Err(e) => return Err(e.into()),
    }
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    match r.read_exact(&mut buf).await {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(WireError::Closed),
        Err(e) => Err(e.into()),
    }
}

/// `fut`, or [`WireError::Timeout`] after `limit`.
pub async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, WireError>>,
) -> Result<T, WireError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(WireError::Timeout(limit.as_secs())))
}

pub(super) fn garbled(e: impl std::fmt::Display) -> WireError {
    WireError::Garbled(e.to_string())
}

/// The sending half of an encrypted link.
pub struct Sender {
    w: OwnedWriteHalf,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
}

/// The receiving half of an encrypted link.
pub struct Receiver {
    r: OwnedReadHalf,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
}

impl Sender {
    pub async fn send(&mut self, kind: Kind, payload: &[u8]) -> Result<(), WireError> {
        debug_assert!(payload.len() <= MAX_PAYLOAD);
        let mut plain = Vec::with_capacity(1 + payload.len());
        plain.push(kind as u8);
        plain.extend_from_slice(payload);
        let mut message = vec![0u8; plain.len() + TAG];
        let n = self
            .noise
            .write_message(self.nonce, &plain, &mut message)
            .map_err(garbled)?;
        self.nonce += 1;
        write_raw(&mut self.w, &message[..n]).await?;
        Ok(())
    }

    pub async fn json(&mut self, value: &impl Serialize) -> Result<(), WireError> {
        let bytes = serde_json::to_vec(value).map_err(garbled)?;
        self.send(Kind::Json, &bytes).await
    }

    /// Says why this side is done, then closes the connection's sending side.
    pub async fn close(mut self, why: &str) {
        let _ = self.send(Kind::Close, why.as_bytes()).await;
        let _ = self.w.shutdown().await;
    }
}

impl Receiver {
    pub async fn recv(&mut self) -> Result<(Kind, Vec<u8>), WireError> {
        let message = read_raw(&mut self.r).await?;
        let mut plain = vec![0u8; message.len()];
        let n = self
            .noise
            .read_message(self.nonce, &message, &mut plain)
            .map_err(garbled)?;
        self.nonce += 1;
        plain.truncate(n);
        let kind = plain
            .first()
            .copied()
            .and_then(Kind::from_byte)
            .ok_or_else(|| garbled("a frame of no known kind"))?;
        plain.remove(0);
        Ok((kind, plain))
    }

    /// The next JSON frame (a `Close` is [`WireError::Closed`]).
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        loop {
            match self.recv().await? {
                (Kind::Json, bytes) => return serde_json::from_slice(&bytes).map_err(garbled),
                (Kind::Ping, _) => continue,
                (Kind::Close, _) => return Err(WireError::Closed),
                (Kind::Data, _) => return Err(garbled("data before the answer")),
            }
        }
    }
}

/// Both halves of an encrypted link, and who is at the other end.
pub struct Channel {
    pub tx: Sender,
    pub rx: Receiver,
    pub remote: PublicKey,
}

fn channel(stream: TcpStream, noise: StatelessTransportState, remote: PublicKey) -> Channel {
    let _ = stream.set_nodelay(true);
    let noise = Arc::new(noise);
    let (r, w) = stream.into_split();
    Channel {
        tx: Sender {
            w,
            noise: noise.clone(),
            nonce: 0,
        },
        rx: Receiver { r, noise, nonce: 0 },
        remote,
    }
}

/// Opens a tunnel to the Mac at `addr` whose key is `remote`, as `me`.
pub async fn dial(
    addr: &str,
    me: &Identity,
    remote: &PublicKey,
    limit: Duration,
) -> Result<Channel, WireError> {
    let mut stream = within(limit, async { Ok(TcpStream::connect(addr).await?) }).await?;
    within(limit, async {
        let mut hs = snow::Builder::new(TUNNEL_NOISE.parse().map_err(garbled)?)
            .local_private_key(me.private())
            .remote_public_key(remote.as_bytes())
            .prologue(PROLOGUE)
            .build_initiator()
            .map_err(garbled)?;
        let mut opening = MAGIC.to_vec();
        opening.push(OPEN_TUNNEL);
        stream.write_all(&opening).await?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = hs.write_message(&[], &mut buf).map_err(garbled)?;
        write_raw(&mut stream, &buf[..n]).await?;
        // A listener that does not know this Mac closes without a word.
        let answer = match read_raw(&mut stream).await {
            Err(WireError::Closed) => return Err(WireError::Refused),
            other => other?,
        };
        hs.read_message(&answer, &mut buf).map_err(garbled)?;
        let noise = hs.into_stateless_transport_mode().map_err(garbled)?;
        Ok(channel(stream, noise, *remote))
    })
    .await
}

/// Answers a tunnel whose opening bytes were read: the handshake, if the dialer's key
/// is one `paired` accepts. `None` for anyone else: the connection is dropped unanswered.
pub async fn accept(
    mut stream: TcpStream,
    me: &Identity,
    paired: impl Fn(&PublicKey) -> bool,
) -> Result<Option<Channel>, WireError> {
    within(HANDSHAKE_TIMEOUT, async {
        let mut hs = snow::Builder::new(TUNNEL_NOISE.parse().map_err(garbled)?)
            .local_private_key(me.private())
            .prologue(PROLOGUE)
            .build_responder()
            .map_err(garbled)?;
        let first = read_raw(&mut stream).await?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        if hs.read_message(&first, &mut buf).is_err() {
            return Ok(None);
        }
        let Some(remote) = hs.get_remote_static().and_then(PublicKey::from_slice) else {
            return Ok(None);
        };
        if !paired(&remote) {
            return Ok(None);
        }
        let n = hs.write_message(&[], &mut buf).map_err(garbled)?;
        write_raw(&mut stream, &buf[..n]).await?;
        let noise = hs.into_stateless_transport_mode().map_err(garbled)?;
        Ok(Some(channel(stream, noise, remote)))
    })
    .await
}

/// A finished Noise handshake on `stream` (the pairing's), as a channel.
pub fn from_handshake(stream: TcpStream, hs: snow::HandshakeState) -> Result<Channel, WireError> {
    let remote = hs
        .get_remote_static()
        .and_then(PublicKey::from_slice)
        .ok_or_else(|| garbled("no key in the handshake"))?;
    let noise = hs.into_stateless_transport_mode().map_err(garbled)?;
    Ok(channel(stream, noise, remote))
}

/// How a piped connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeEnd {
    /// The local side closed (the usual end).
    LocalClosed,
    /// The other Mac said it was done (`why`, possibly empty).
    RemoteClosed(String),
    /// The other Mac sent nothing for `secs` seconds: asleep, gone, or its link dropped.
    RemoteSilent { secs: u64 },
    /// The link broke (reset, garbled frame).
    Broken(String),
}

/// Carries a local TCP connection over `ch` both ways until either end closes. A ping
/// goes out whenever nothing else did for `heartbeat`; the other Mac is given up on
/// after `dead_after` without a single frame.
pub async fn pipe(
    local: TcpStream,
    ch: Channel,
    heartbeat: Duration,
    dead_after: Duration,
) -> PipeEnd {
    pipe_until(local, ch, heartbeat, dead_after, std::future::pending()).await
}

/// [`pipe`], ended by this side when `until` resolves: the other Mac is told why (it
/// ends with [`PipeEnd::RemoteClosed`] and the reason) and the local connection closes.
pub async fn pipe_until(
    local: TcpStream,
    ch: Channel,
    heartbeat: Duration,
    dead_after: Duration,
    until: impl std::future::Future<Output = String>,
) -> PipeEnd {
    let _ = local.set_nodelay(true);
    let (mut local_r, mut local_w) = local.into_split();
    let Channel { mut tx, mut rx, .. } = ch;
    let outbound = async move {
        let mut buf = vec![0u8; MAX_PAYLOAD];
        tokio::pin!(until);
        loop {
            tokio::select! {
                why = &mut until => {
                    tx.close(&why).await;
                    return PipeEnd::LocalClosed;
                }
                read = local_r.read(&mut buf) => match read {
                    Ok(0) => {
                        tx.close("").await;
                        return PipeEnd::LocalClosed;
                    }
                    Ok(n) => {
                        if let Err(e) = tx.send(Kind::Data, &buf[..n]).await {
                            return PipeEnd::Broken(e.to_string());
                        }
                    }
                    Err(_) => {
                        tx.close("").await;
                        return PipeEnd::LocalClosed;
                    }
                },
                _ = tokio::time::sleep(heartbeat) => {
                    if let Err(e) = tx.send(Kind::Ping, &[]).await {
                        return PipeEnd::Broken(e.to_string());
                    }
                }
            }
        }
    };
    let inbound = async move {
        loop {
            let frame = tokio::time::timeout(dead_after, rx.recv()).await;
            match frame {
                Err(_) => {
                    return PipeEnd::RemoteSilent {
                        secs: dead_after.as_secs(),
                    }
                }
                Ok(Ok((Kind::Data, bytes))) => {
                    if local_w.write_all(&bytes).await.is_err() {
                        return PipeEnd::LocalClosed;
                    }
                }
                Ok(Ok((Kind::Ping, _))) => {}
                Ok(Ok((Kind::Close, why))) => {
                    let _ = local_w.shutdown().await;
                    return PipeEnd::RemoteClosed(String::from_utf8_lossy(&why).into_owned());
                }
                Ok(Ok((Kind::Json, _))) => return PipeEnd::Broken("an unexpected request".into()),
                Ok(Err(WireError::Closed)) => return PipeEnd::RemoteClosed(String::new()),
                Ok(Err(e)) => return PipeEnd::Broken(e.to_string()),
            }
        }
    };
    // Whichever side ends first ends the pipe: the other half is dropped, which closes
    // its socket.
    tokio::select! {
        end = outbound => end,
        end = inbound => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Two loopback connections: what each side's pipe carries (the app's or the RPC
    /// server's end), returning the end the pipe holds and the end the test holds.
    async fn local_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dialed = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = l.accept().await.unwrap();
        (accepted, dialed)
    }

    #[tokio::test]
    async fn a_pipe_ended_by_its_side_tells_the_other_mac_why() {
        let (helper, serving) = (Identity::generate(), Identity::generate());
        let helper_key = helper.public();
        let serving_key = serving.public();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let helper_side = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut opening = [0u8; 5];
            stream.read_exact(&mut opening).await.unwrap();
            let ch = accept(stream, &helper, |k| *k == serving_key)
                .await
                .unwrap()
                .unwrap();
            let (local, _kept) = local_pair().await;
            let until = async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "it runs on battery now".to_string()
            };
            pipe_until(
                local,
                ch,
                Duration::from_secs(1),
                Duration::from_secs(5),
                until,
            )
            .await
        });
        let ch = dial(&addr, &serving, &helper_key, Duration::from_secs(5))
            .await
            .unwrap();
        let (local, mut app) = local_pair().await;
        let end = pipe(local, ch, Duration::from_secs(1), Duration::from_secs(5)).await;
        assert_eq!(end, PipeEnd::RemoteClosed("it runs on battery now".into()));
        assert_eq!(helper_side.await.unwrap(), PipeEnd::LocalClosed);
        // The app's connection is closed, not left hanging.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), app.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    }
}
