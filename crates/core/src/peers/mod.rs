//! Two Macs, one model: the other Mac in the house lends its memory when one is not
//! enough.
//!
//! - [`identity`]: this Mac's long-term key; [`book`]: the Macs it paired with.
//! - [`pairing`]: a six-digit code shown on one Mac and typed on the other (SPAKE2), which
//!   authenticates the exchange of long-term keys (Noise `XXpsk3`).
//! - [`wire`]: every later connection, mutually authenticated and encrypted (Noise `IK`
//!   with the pinned keys), in frames, with a heartbeat.
//! - [`share`]: the helper's side: llama.cpp's `ggml-rpc-server` bound to loopback, reached
//!   only through the tunnel, offering what its owner allowed.
//! - [`relay`]: the serving side: a loopback port per helper that llama-server's `--rpc`
//!   dials, each connection carried through a tunnel; or, to route, the owner's own
//!   server port carried whole to a paired Mac's front door.
//! - [`plan`]: which Mac holds which share of the model, and the speed to expect.
//!
//! `ggml-rpc-server` has no authentication and its deserializer has had remote-code bugs:
//! it never listens anywhere but 127.0.0.1, and nothing reaches it but a tunnel from a
//! paired Mac.

pub mod book;
pub mod identity;
pub mod nearby;
pub mod on_ask;
pub mod pairing;
pub mod plan;
pub mod pool;
pub mod relay;
pub mod share;
pub mod status;
pub mod wire;

use serde::{Deserialize, Serialize};

pub use book::{Book, Peer};
pub use identity::{Identity, PublicKey};

/// The port a Mac shares on unless told otherwise (beside the model server's 11480).
pub const DEFAULT_SHARE_PORT: u16 = 11490;

/// What the dialing Mac says first on every connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// Its name ("Studio iMac").
    pub name: String,
    /// The llama.cpp build of its runtime (the RPC wire changes between builds).
    pub build: Option<u32>,
    pub want: Want,
    /// The port it shares on (at pairing), so the other Mac can reach it too.
    #[serde(default)]
    pub share_port: Option<u16>,
    /// The model it asks the other Mac to serve (for [`Want::Serve`]), by its id.
    #[serde(default)]
    pub model: Option<String>,
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    /// Pairing: only the names and builds, then each side keeps the other's key.
    Pair,
    /// What the helper offers now (memory, GPU, runtime).
    Offer,
    /// A connection to its `ggml-rpc-server`.
    Rpc,
    /// A connection to its front door (the model server apps use), to route a model it
    /// serves already: nothing is split, nothing copied.
    Route,
    /// That it start serving a model it has on its disk (`Hello::model`), so that the
    /// asking Mac may route to it: answered at once (yes, or why not), then once more
    /// when the model answers or did not start.
    Serve,
}

/// The listening Mac's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub name: String,
    pub build: Option<u32>,
    /// What it lends (for `Offer` and `Rpc`).
    #[serde(default)]
    pub offer: Option<Offer>,
    /// Why it said no, in a sentence for the other Mac's owner.
    #[serde(default)]
    pub refused: Option<String>,
    /// The key its model server's front door asks of other devices, when it lends that
    /// server and its owner allows other devices: routed requests carry it (the door
    /// judges them as it would any caller; only a paired Mac, over the tunnel, hears it).
    #[serde(default)]
    pub door_key: Option<String>,
}

/// What a helper lends, as its owner allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Offer {
    /// The most memory a share of a model may take there.
    pub memory_bytes: u64,
    /// Its memory in all.
    pub ram_bytes: u64,
    /// Its GPU, when it lends it (`None`: the processor does the work).
    pub gpu: Option<String>,
    /// Its memory's measured speed, bytes/s (what decides a share's speed there).
    pub bandwidth: Option<f64>,
    /// One line about the machine ("Intel Core i5 · 4 cores · 32 GB RAM · Radeon Pro 575").
    pub summary: String,
    /// Its runtime, as every stored run records one.
    pub runtime: String,
    /// The models its front door answers for now (their ids, as `/v1/models` lists
    /// them), when it lends it: a paired Mac may route requests for them there.
    #[serde(default)]
    pub serves: Vec<String>,
    /// The models it has on its disk and would start if asked (their ids), each fitting
    /// where it runs fast: only while its model server serves nothing (it never
    /// changes what its owner serves), and only when it lends that server.
    #[serde(default)]
    pub can_serve: Vec<String>,
}

/// Why a Mac could not be used, in words for its owner.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Book(#[from] book::BookError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error("{name} did not answer at {address}: {cause}. Check that it is awake, on the same network, and sharing.")]
    Unreachable {
        name: String,
        address: String,
        cause: wire::WireError,
    },
    #[error("{name} paired by reaching this Mac, so this Mac does not know where to reach it. Pair again the other way round: show the code on {name} and type it here.")]
    NoAddress { name: String },
    #[error("{name} refused this Mac: they are not paired any more (the pairing was removed there). Pair the two Macs again.")]
    Refused { name: String },
    #[error("{name} said no: {why}")]
    Declined { name: String, why: String },
    #[error("{sentence}")]
    BuildMismatch { sentence: String },
    #[error("Pairing failed: {why}. Nothing was saved on either Mac. Start again for a new code.")]
    Pairing { why: String },
    /// Looked for on the local network and not found (or not told apart).
    #[error("{why}")]
    NotNearby { why: String },
    #[error("{name} stopped answering ({how}). The model it held a share of was stopped; nothing half-finished was passed on as a whole answer.")]
    Lost { name: String, how: String },
    #[error("{name} stopped answering ({how}). This Mac's apps were sent there for its model; they get an error now, never an answer cut short as if it were whole.")]
    RouteLost { name: String, how: String },
    #[error("{}", plan::too_big_sentence(*need, *room, *keep_here))]
    TooBig {
        need: u64,
        room: u64,
        /// What this Mac must hold itself, and what it may give, when that is the reason.
        keep_here: Option<(u64, u64)>,
    },
    #[error("This Kindling's runtime has no ggml-rpc-server beside {server}, so it cannot lend this Mac's memory. Reinstall Kindling.")]
    NoRpcServer { server: std::path::PathBuf },
    #[error("Kindling could not {what} ({source}).")]
    System {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl PeerError {
    pub fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode as C;
        match self {
            PeerError::Book(book::BookError::Io { .. }) | PeerError::Identity(_) => C::Io,
            PeerError::Book(book::BookError::Damaged { .. }) => C::PeersInvalid,
            PeerError::Book(_) => C::PeerUnknown,
            PeerError::Unreachable { .. }
            | PeerError::NoAddress { .. }
            | PeerError::NotNearby { .. } => C::PeerUnreachable,
            PeerError::Refused { .. } | PeerError::Declined { .. } => C::PeerRefused,
            PeerError::BuildMismatch { .. } => C::PeerBuildMismatch,
            PeerError::Pairing { .. } => C::PairingFailed,
            PeerError::Lost { .. } | PeerError::RouteLost { .. } => C::PeerLost,
            PeerError::NoRpcServer { .. } => C::RuntimeBroken,
            PeerError::TooBig { .. } => C::DoesNotFit,
            PeerError::System { .. } => C::System,
        }
    }
}

/// The sentence for two Macs whose runtimes differ: which one to update. `None` when
/// they match (or one does not say, which an older Kindling would not).
pub fn build_mismatch(here: Option<u32>, there_name: &str, there: Option<u32>) -> Option<String> {
    let (h, t) = (here?, there?);
    if h == t {
        return None;
    }
    let older = if h < t { "this Mac" } else { there_name };
    Some(format!(
        "This Mac runs llama.cpp build {h} and {there_name} runs build {t}; a split model needs \
         the same build on both (the link between them changes from build to build). Update \
         Kindling on {older}, then try again."
    ))
}

/// This Mac's name as other Macs show it: the settings' name, else the computer's.
pub fn this_mac_name(setting: Option<&str>) -> String {
    if let Some(name) = setting.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    sysinfo::System::host_name()
        .map(|h| h.trim_end_matches(".local").to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "This Mac".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_mismatch_names_the_older_mac_to_update() {
        assert_eq!(build_mismatch(Some(11434), "Studio", Some(11434)), None);
        assert_eq!(build_mismatch(None, "Studio", Some(11434)), None);
        let s = build_mismatch(Some(11434), "Studio", Some(11300)).unwrap();
        assert!(s.contains("Update Kindling on Studio"), "{s}");
        let s = build_mismatch(Some(11300), "Studio", Some(11434)).unwrap();
        assert!(s.contains("Update Kindling on this Mac"), "{s}");
    }
}
