//! The serving side: reaching a paired Mac, and carrying llama-server's RPC connections
//! to it.
//!
//! llama-server is given `--rpc 127.0.0.1:PORT`, one loopback port per helper; each
//! connection it makes there is carried through a new tunnel to that helper's
//! `ggml-rpc-server`. When a helper stops answering (asleep, gone, its Wi-Fi roamed),
//! the heartbeat notices, the relay closes llama-server's connection (llama.cpp then
//! stops; it cannot go on without the layers that Mac held) and says which Mac it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::wire::{self, PipeEnd, WireError};
use super::{nearby, Answer, Book, Hello, Identity, Offer, Peer, PeerError, Want};

/// A paired Mac, reached: what it offers and how far away it is.
#[derive(Debug, Clone)]
pub struct Reached {
    pub peer: Peer,
    pub offer: Offer,
    /// One request's round trip over the tunnel.
    pub rtt: Duration,
    /// The key its model server's door asks of other devices (see [`Answer::door_key`]).
    pub door_key: Option<String>,
}

/// Who this Mac is on a tunnel.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Arc<Identity>,
    pub name: String,
    pub build: Option<u32>,
    /// The paired Macs: a Mac found at a new address is kept there.
    pub book: Book,
}

fn address(peer: &Peer) -> Result<String, PeerError> {
    peer.address.clone().ok_or_else(|| PeerError::NoAddress {
        name: peer.name.clone(),
    })
}

/// A tunnel to `peer` asking for `want`, and its answer (refusals are errors here).
async fn open(
    peer: &Peer,
    me: &Caller,
    want: Want,
) -> Result<(wire::Channel, Answer, Duration), PeerError> {
    open_for(peer, me, want, None).await
}

/// [`open`], naming the model the connection is about (for [`Want::Serve`]).
async fn open_for(
    peer: &Peer,
    me: &Caller,
    want: Want,
    model: Option<&str>,
) -> Result<(wire::Channel, Answer, Duration), PeerError> {
    let address = address(peer)?;
    let key = peer.public_key().ok_or_else(|| PeerError::Refused {
        name: peer.name.clone(),
    })?;
    let unreachable = |cause| PeerError::Unreachable {
        name: peer.name.clone(),
        address: address.clone(),
        cause,
    };
    let mut ch = wire::dial(&address, &me.identity, &key, wire::HANDSHAKE_TIMEOUT)
        .await
        .map_err(|e| match e {
            WireError::Refused => PeerError::Refused {
                name: peer.name.clone(),
            },
            e => unreachable(e),
        })?;
    let asked = Instant::now();
    let answer: Answer = wire::within(wire::HANDSHAKE_TIMEOUT, async {
        ch.tx
            .json(&Hello {
                name: me.name.clone(),
                build: me.build,
                want,
                share_port: None,
                model: model.map(str::to_string),
            })
            .await?;
        ch.rx.json().await
    })
    .await
    .map_err(unreachable)?;
    let rtt = asked.elapsed();
    if let Some(sentence) = super::build_mismatch(me.build, &peer.name, answer.build) {
        return Err(PeerError::BuildMismatch { sentence });
    }
    if let Some(why) = answer.refused.clone() {
        return Err(PeerError::Declined {
            name: peer.name.clone(),
            why,
        });
    }
    Ok((ch, answer, rtt))
}

/// Asks `peer` what it offers now (and measures the link's round trip). A Mac not
/// where it was (a new address from the router, or one that paired by dialing this Mac)
/// is looked for on the local network by its key, reached there, and kept there.
pub async fn reach(peer: &Peer, me: &Caller) -> Result<Reached, PeerError> {
    match reach_at(peer, me).await {
        Err(e @ (PeerError::Unreachable { .. } | PeerError::NoAddress { .. })) => {
            let Some(moved) = look_for(peer, me).await else {
                return Err(e);
            };
            let reached = reach_at(&moved, me).await?;
            if let Err(e) = me.book.add(moved) {
                tracing::warn!(error = %e, "could not keep a paired Mac's new address");
            }
            Ok(reached)
        }
        r => r,
    }
}

/// How long a paired Mac may take to load a model it was asked to serve (a large one,
/// read from a slow disk, takes minutes).
pub const START_TIMEOUT: Duration = Duration::from_secs(600);

/// Asks `peer` to start serving `model` (an id its offer lists in `can_serve`), and
/// waits until it answers for it: then requests for it may be routed there.
pub async fn ask_to_serve(peer: &Peer, me: &Caller, model: &str) -> Result<(), PeerError> {
    let (mut ch, _, _) = open_for(peer, me, Want::Serve, Some(model)).await?;
    let address = peer.address.clone().unwrap_or_default();
    let started: Answer = wire::within(START_TIMEOUT, ch.rx.json())
        .await
        .map_err(|cause| PeerError::Unreachable {
            name: peer.name.clone(),
            address,
            cause,
        })?;
    ch.tx.close("").await;
    match started.refused {
        Some(why) => Err(PeerError::Declined {
            name: peer.name.clone(),
            why,
        }),
        None => Ok(()),
    }
}

/// `peer` as announced on the local network now, when it is there at another address.
async fn look_for(peer: &Peer, me: &Caller) -> Option<Peer> {
    let found = nearby::look(nearby::LOOK, &me.identity.public(), |heard| {
        heard.iter().any(|m| m.key == peer.key)
    })
    .await;
    let there = found.into_iter().find(|m| m.key == peer.key)?;
    (peer.address.as_deref() != Some(there.address.as_str())).then(|| Peer {
        address: Some(there.address),
        ..peer.clone()
    })
}

async fn reach_at(peer: &Peer, me: &Caller) -> Result<Reached, PeerError> {
    let (ch, answer, rtt) = open(peer, me, Want::Offer).await?;
    ch.tx.close("").await;
    let offer = answer.offer.ok_or_else(|| PeerError::Declined {
        name: peer.name.clone(),
        why: "it lends nothing now".into(),
    })?;
    Ok(Reached {
        peer: peer.clone(),
        offer,
        rtt,
        door_key: answer.door_key,
    })
}

/// A loopback port carrying connections to one paired Mac: llama-server's RPC
/// connections to its `ggml-rpc-server`, or (routing) the owner's apps' requests to its
/// front door.
pub struct Relay {
    pub port: u16,
    pub peer: String,
    want: Want,
    lost: watch::Receiver<Option<String>>,
    stop: CancellationToken,
    /// Routing: the front door apps reach the routed model by (closed with the relay).
    door: std::sync::Mutex<Option<crate::front::Door>>,
}

impl Relay {
    /// Listens on a free loopback port for `peer`'s RPC connections.
    pub async fn start(
        peer: Peer,
        me: Caller,
        heartbeat: Duration,
        dead_after: Duration,
    ) -> Result<Relay, PeerError> {
        Relay::start_on(0, Want::Rpc, peer, me, heartbeat, dead_after).await
    }

    /// Listens on loopback `port` (0: any free one), carrying each connection through a
    /// new tunnel to `peer` that asks for `want`.
    pub async fn start_on(
        port: u16,
        want: Want,
        peer: Peer,
        me: Caller,
        heartbeat: Duration,
        dead_after: Duration,
    ) -> Result<Relay, PeerError> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| PeerError::System {
                what: if port == 0 {
                    "open a loopback port for the other Mac's link"
                } else {
                    "listen on the model server's port (is another server using it?)"
                },
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| PeerError::System {
                what: "read a loopback port",
                source,
            })?
            .port();
        let (tx, lost) = watch::channel(None);
        let tx = Arc::new(tx);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let name = peer.name.clone();
        let (peer_for_watch, me_for_watch) = (peer.clone(), me.clone());
        let watch_tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stopped.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((local, _)) = accepted else { continue };
                let (peer, me, tx, stopped) =
                    (peer.clone(), me.clone(), tx.clone(), stopped.clone());
                tokio::spawn(async move {
                    let carried = async {
                        let (ch, _, _) = match open(&peer, &me, want).await {
                            Ok(x) => x,
                            Err(e) => {
                                tx.send_replace(Some(e.to_string()));
                                return;
                            }
                        };
                        match wire::pipe(local, ch, heartbeat, dead_after).await {
                            PipeEnd::LocalClosed => {}
                            PipeEnd::RemoteSilent { secs } => {
                                tx.send_replace(Some(format!("nothing came from it for {secs} s")));
                            }
                            // A front door closes a connection once an answer is
                            // done: routing, that is the end of a request, not a loss.
                            PipeEnd::RemoteClosed(_) if want == Want::Route => {}
                            PipeEnd::RemoteClosed(why) => {
                                tx.send_replace(Some(if why.is_empty() {
                                    "it closed the link".into()
                                } else {
                                    why
                                }));
                            }
                            PipeEnd::Broken(why) => {
                                tx.send_replace(Some(format!("the link broke: {why}")));
                            }
                        }
                    };
                    tokio::select! {
                        _ = stopped.cancelled() => {}
                        _ = carried => {}
                    }
                });
            }
        });
        if want == Want::Route {
            // Between requests nothing crosses a routed link: ask the Mac, as often as
            // the heartbeat would, whether it is still there.
            let stopped = stop.clone();
            let every = dead_after / 2;
            let (tx, peer, me) = (watch_tx, peer_for_watch, me_for_watch);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.cancelled() => break,
                        _ = tokio::time::sleep(every) => {}
                    }
                    let asked = tokio::time::timeout(dead_after, reach(&peer, &me)).await;
                    let how = match asked {
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => format!("nothing came from it for {} s", dead_after.as_secs()),
                    };
                    tx.send_replace(Some(how));
                    break;
                }
            });
        }
        Ok(Relay {
            port,
            peer: name,
            want,
            lost,
            stop,
            door: std::sync::Mutex::new(None),
        })
    }

    /// Waits until the helper is lost; the error says which Mac and how.
    pub async fn lost(&self) -> PeerError {
        let mut rx = self.lost.clone();
        loop {
            if let Some(how) = rx.borrow_and_update().clone() {
                let name = self.peer.clone();
                return match self.want {
                    Want::Route => PeerError::RouteLost { name, how },
                    _ => PeerError::Lost { name, how },
                };
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether the helper was lost (and how).
    pub fn lost_now(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    pub fn stop(&self) {
        self.stop.cancel();
        self.door.lock().expect("door lock").take();
    }

    /// Keeps `door`, in front of this relay, open as long as the relay is.
    pub fn keep_door(&self, door: crate::front::Door) {
        *self.door.lock().expect("door lock") = Some(door);
    }

    /// Where the door in front of it listens, when routing.
    pub fn door_addr(&self) -> Option<std::net::SocketAddr> {
        self.door
            .lock()
            .expect("door lock")
            .as_ref()
            .map(|d| d.addr())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
