//! The Macs this one paired with, kept in the home (`peers.json`): each one's name, the
//! key pinned at pairing, and where to reach it. Written atomically; a damaged file is
//! said, never overwritten.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::identity::PublicKey;

/// One paired Mac.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Peer {
    /// Its name, as it gave it at pairing ("Studio iMac").
    pub name: String,
    /// Its long-term public key (hex), pinned at pairing.
    pub key: String,
    /// Where it shares (`host:port`); `None` for a Mac that paired by dialing this one
    /// (it reaches us, we do not reach it).
    pub address: Option<String>,
    /// When the pairing was made (RFC 3339).
    pub paired_at: String,
    /// The llama.cpp build it ran then.
    pub build: Option<u32>,
}

impl Peer {
    pub fn public_key(&self) -> Option<PublicKey> {
        PublicKey::from_hex(&self.key)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("The list of paired Macs in {path} is damaged ({detail}). Kindling left it as it is: move it aside and pair your Macs again.")]
    Damaged { path: PathBuf, detail: String },
    #[error("Kindling could not keep the list of paired Macs in {path}: {source}.")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("No paired Mac is called \"{name}\". {known}")]
    Unknown { name: String, known: String },
    #[error("\"{name}\" could mean {matches}. Give more of the name.")]
    Ambiguous { name: String, matches: String },
}

/// The paired Macs, as stored at one path.
#[derive(Debug, Clone)]
pub struct Book {
    path: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    peers: Vec<Peer>,
}

impl Book {
    pub fn at(path: impl Into<PathBuf>) -> Book {
        Book { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every paired Mac (none when nothing was paired yet).
    pub fn list(&self) -> Result<Vec<Peer>, BookError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str::<File>(&text)
                .map(|f| f.peers)
                .map_err(|e| BookError::Damaged {
                    path: self.path.clone(),
                    detail: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(BookError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn save(&self, peers: Vec<Peer>) -> Result<(), BookError> {
        let text = serde_json::to_vec_pretty(&File { peers }).expect("peers always serialize");
        crate::paths::write_private(&self.path, &text).map_err(|source| BookError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Remembers `peer`, replacing an earlier pairing with the same key or name.
    pub fn add(&self, peer: Peer) -> Result<(), BookError> {
        let mut peers = self.list()?;
        peers.retain(|p| p.key != peer.key && p.name != peer.name);
        peers.push(peer);
        self.save(peers)
    }

    /// Forgets the Mac `name` finds; returns it.
    pub fn remove(&self, name: &str) -> Result<Peer, BookError> {
        let peer = self.find(name)?;
        let mut peers = self.list()?;
        peers.retain(|p| p.key != peer.key);
        self.save(peers)?;
        Ok(peer)
    }

    /// Whether `key` belongs to a paired Mac.
    pub fn knows(&self, key: &PublicKey) -> bool {
        self.list()
            .map(|peers| peers.iter().any(|p| p.public_key() == Some(*key)))
            .unwrap_or(false)
    }

    /// The paired Mac called `name` (case aside; the start of a name is enough when it
    /// is one Mac's only).
    pub fn find(&self, name: &str) -> Result<Peer, BookError> {
        let peers = self.list()?;
        let wanted = name.to_lowercase();
        if let Some(p) = peers.iter().find(|p| p.name.to_lowercase() == wanted) {
            return Ok(p.clone());
        }
        let starts: Vec<&Peer> = peers
            .iter()
            .filter(|p| p.name.to_lowercase().starts_with(&wanted))
            .collect();
        match starts.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(BookError::Unknown {
                name: name.into(),
                known: if peers.is_empty() {
                    "This Mac is not paired with any other yet: show a pairing code on the other Mac and type it here.".into()
                } else {
                    format!(
                        "Paired: {}.",
                        peers
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            }),
            many => Err(BookError::Ambiguous {
                name: name.into(),
                matches: many
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, key: u8) -> Peer {
        Peer {
            name: name.into(),
            key: format!("{key:02x}").repeat(32),
            address: Some("127.0.0.2:11490".into()),
            paired_at: "2026-12-05T12:00:00Z".into(),
            build: Some(11434),
        }
    }

    #[test]
    fn peers_are_added_found_by_the_start_of_their_name_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::at(dir.path().join("peers.json"));
        book.add(peer("Studio iMac", 1)).unwrap();
        book.add(peer("MacBook Air", 2)).unwrap();
        assert_eq!(book.find("studio").unwrap().name, "Studio iMac");
        assert!(book.knows(&peer("MacBook Air", 2).public_key().unwrap()));
        let gone = book.remove("macbook").unwrap();
        assert_eq!(gone.name, "MacBook Air");
        assert!(!book.knows(&gone.public_key().unwrap()));
        let e = book.find("MacBook").unwrap_err().to_string();
        assert!(e.contains("Paired: Studio iMac."), "{e}");
    }

    #[test]
    fn pairing_again_replaces_the_old_entry() {
        let dir = tempfile::tempdir().unwrap();
        let book = Book::at(dir.path().join("peers.json"));
        book.add(peer("Studio iMac", 1)).unwrap();
        book.add(peer("Studio iMac", 3)).unwrap();
        let all = book.list().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].key, "03".repeat(32));
    }

    #[test]
    fn a_damaged_list_is_said_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        std::fs::write(&path, "{\"peers\": [").unwrap();
        let book = Book::at(&path);
        let e = book.add(peer("Studio iMac", 1)).unwrap_err().to_string();
        assert!(e.contains("damaged"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"peers\": [");
        assert!(!book.knows(&peer("x", 1).public_key().unwrap()));
    }
}
