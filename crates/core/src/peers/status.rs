//! The paired Macs as their owner sees them (the CLI's `kindling peers`, the app's
//! "Use another Mac"): each one reached now, or why it cannot be; and pairing with one by
//! the code it shows. One function each, so both fronts say the same.

use serde::Serialize;

use super::pairing::{self, Me};
use super::{nearby, relay, PeerError, DEFAULT_SHARE_PORT};
use crate::{Core, Result};

/// A paired Mac, reached now (or not, and why).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PeerStatus {
    pub name: String,
    /// Where this Mac reaches it; `None` when it paired by reaching this Mac.
    pub address: Option<String>,
    pub paired_at: String,
    pub reachable: bool,
    /// What it lends now, when reached.
    pub offer: Option<super::Offer>,
    /// Its llama.cpp build, as it said at pairing.
    pub build: Option<u32>,
    /// Why it cannot be used now, in a sentence.
    pub problem: Option<String>,
    /// One request's round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
}

impl Core {
    /// Every paired Mac, each asked what it lends now; this Mac introduces itself as
    /// `me`.
    pub async fn peer_statuses(&self, me: &str) -> Result<Vec<PeerStatus>> {
        let caller = self.caller(me)?;
        let mut out = Vec::new();
        for peer in self.book().list().map_err(PeerError::from)? {
            let reached = relay::reach(&peer, &caller).await;
            // Reached at a new address, it is shown there (and kept there).
            let (reachable, offer, problem, rtt_ms, address) = match reached {
                Ok(r) => (
                    true,
                    Some(r.offer),
                    None,
                    Some(r.rtt.as_secs_f64() * 1000.0),
                    r.peer.address,
                ),
                Err(e) => (false, None, Some(e.to_string()), None, peer.address.clone()),
            };
            out.push(PeerStatus {
                name: peer.name.clone(),
                address,
                paired_at: peer.paired_at.clone(),
                reachable,
                offer,
                build: peer.build,
                problem,
                rtt_ms,
            });
        }
        Ok(out)
    }

    /// Pairs with the Mac showing `code` at `at` ("192.168.1.20:11490", or a name), or,
    /// without `at`, with the one on the local network that shows a code now; this Mac is
    /// `me` there. Kept on this side once both agree; nothing on a failure.
    pub async fn pair_with_code(
        &self,
        code: &str,
        at: Option<&str>,
        me: &str,
    ) -> Result<super::Peer> {
        // A mistyped code is said at once, before listening for the Mac showing one.
        pairing::typed_code(code)?;
        let identity = self.identity()?;
        let at = match at.map(str::trim).filter(|a| !a.is_empty()) {
            Some(at) => at.to_string(),
            None => {
                let found = nearby::look(nearby::LOOK, &identity.public(), |_| false).await;
                nearby::showing_code(&found)
                    .map_err(|why| PeerError::NotNearby { why })?
                    .address
                    .clone()
            }
        };
        let mine = Me {
            identity: &identity,
            name: me.to_string(),
            build: self.runtime_build(),
            share_port: DEFAULT_SHARE_PORT,
        };
        let peer = pairing::pair_with(&at, code, &mine).await?;
        self.book().add(peer.clone()).map_err(PeerError::from)?;
        Ok(peer)
    }

    /// The Macs heard on the local network now (Bonjour), each marked when this Mac paired
    /// with it already.
    pub async fn nearby_macs(&self) -> Result<Vec<nearby::Nearby>> {
        let identity = self.identity()?;
        let book = self.book();
        let mut found = nearby::look(nearby::LOOK, &identity.public(), |_| false).await;
        for mac in &mut found {
            mac.paired = super::PublicKey::from_hex(&mac.key).is_some_and(|k| book.knows(&k));
        }
        Ok(found)
    }
}
