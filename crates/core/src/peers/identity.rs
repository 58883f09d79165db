//! This Mac's long-term key for talking to the Macs it paired with: an X25519 key pair,
//! made once and kept in the home (`peer-key`, readable by its owner only).

use std::path::Path;

/// A Mac's public key (what pairing pins).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_slice(bytes: &[u8]) -> Option<PublicKey> {
        Some(PublicKey(bytes.try_into().ok()?))
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
    pub fn from_hex(text: &str) -> Option<PublicKey> {
        PublicKey::from_slice(&unhex(text)?)
    }
    /// The first bytes, for a person comparing two screens ("a1b2 c3d4").
    pub fn fingerprint(&self) -> String {
        let h = self.to_hex();
        format!("{} {}", &h[..4], &h[4..8])
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// This Mac's key pair.
pub struct Identity {
    private: [u8; 32],
    public: PublicKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("Kindling could not keep this Mac's pairing key in {path}: {source}. Check that the folder is writable.")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "This Mac's pairing key in {path} is damaged. Remove the file and pair your Macs again."
    )]
    Damaged { path: std::path::PathBuf },
}

impl Identity {
    /// A new random key pair.
    pub fn generate() -> Identity {
        let builder = snow::Builder::new(
            "Noise_IK_25519_ChaChaPoly_BLAKE2s"
                .parse()
                .expect("a valid Noise pattern"),
        );
        let pair = builder
            .generate_keypair()
            .expect("the system's random source works");
        Identity {
            private: pair.private.try_into().expect("X25519 keys are 32 bytes"),
            public: PublicKey::from_slice(&pair.public).expect("X25519 keys are 32 bytes"),
        }
    }

    /// The key pair kept at `path`, made there (mode 0600) the first time.
    pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut lines = text.lines();
                let parsed = (|| {
                    let private: [u8; 32] = unhex(lines.next()?.trim())?.try_into().ok()?;
                    let public = PublicKey::from_hex(lines.next()?.trim())?;
                    Some(Identity { private, public })
                })();
                parsed.ok_or_else(|| IdentityError::Damaged {
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Identity::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let text = format!("{}\n{}\n", hex(&id.private), id.public.to_hex());
                crate::paths::write_private(path, text.as_bytes()).map_err(io)?;
                Ok(id)
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }
    pub(super) fn private(&self) -> &[u8; 32] {
        &self.private
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer-key");
        let first = Identity::load_or_create(&path).unwrap();
        let again = Identity::load_or_create(&path).unwrap();
        assert_eq!(first.public(), again.public());
        assert_eq!(first.private(), again.private());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only its owner may read it: {mode:o}");
        }
    }

    #[test]
    fn a_damaged_key_file_is_said_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer-key");
        std::fs::write(&path, "not a key\n").unwrap();
        let e = Identity::load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key\n");
    }
}
