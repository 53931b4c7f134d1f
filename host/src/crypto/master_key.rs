//! The node master key: loaded from `SLUICE_MASTER_KEY` or a 0600 key file (created on first
//! start), used to seal every secret that is written to redb.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key file `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("master key `{0}` is not 32 bytes of base64")]
    Malformed(String),
    #[error("sealed secret cannot be opened with this master key")]
    Unseal,
}

/// AES-256-GCM key that seals secrets; never logged, zeroized on drop.
pub struct MasterKey {
    cipher: Aes256Gcm,
    raw: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

const SEAL_VERSION: u8 = 1;

impl MasterKey {
    /// Uses `inline` (base64) when given, else reads `path`, creating it with mode 0600 if absent.
    pub fn load_or_create(inline: Option<&str>, path: &Path) -> Result<MasterKey, MasterKeyError> {
        if let Some(text) = inline {
            return Self::from_base64(text, "SLUICE_MASTER_KEY");
        }
        let io = |source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(text.trim(), &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut raw = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(raw.as_mut());
                let encoded = Zeroizing::new(B64.encode(raw.as_ref()));
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(io)?;
                f.write_all(encoded.as_bytes()).map_err(io)?;
                f.write_all(b"\n").map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(Self::from_raw(raw.as_ref()))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_base64(text: &str, what: &str) -> Result<MasterKey, MasterKeyError> {
        let raw = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|_| MasterKeyError::Malformed(what.into()))?,
        );
        if raw.len() != 32 {
            return Err(MasterKeyError::Malformed(what.into()));
        }
        Ok(Self::from_raw(&raw))
    }

    fn from_raw(raw: &[u8]) -> MasterKey {
        let mut own = Zeroizing::new([0u8; 32]);
        own.copy_from_slice(raw);
        MasterKey {
            cipher: Aes256Gcm::new_from_slice(raw).expect("32-byte key"),
            raw: own,
        }
    }

    /// A separate key for one purpose (`label`), derived as HMAC-SHA256(master, label): sealing
    /// under it cannot be opened with the master key or another label's key.
    pub fn derive(&self, label: &[u8]) -> MasterKey {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.raw.as_ref())
            .expect("HMAC takes any key length");
        mac.update(b"sluice derived key v1\0");
        mac.update(label);
        let out = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        Self::from_raw(out.as_ref())
    }

    /// Seals `plaintext`, binding it to `context` (e.g. the access key it belongs to) so a sealed
    /// value cannot be moved to another record.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                aes_gcm::aead::Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(
        &self,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, MasterKeyError> {
        if sealed.len() < 13 || sealed[0] != SEAL_VERSION {
            return Err(MasterKeyError::Unseal);
        }
        let pt = self
            .cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                aes_gcm::aead::Payload {
                    msg: &sealed[13..],
                    aad: context,
                },
            )
            .map_err(|_| MasterKeyError::Unseal)?;
        Ok(Zeroizing::new(pt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let k = MasterKey::load_or_create(None, &path).unwrap();
        let sealed = k.seal(b"ak1", b"secret");
        assert_eq!(&k.open(b"ak1", &sealed).unwrap()[..], b"secret");
        assert!(k.open(b"ak2", &sealed).is_err());
        // The same file gives the same key.
        let k2 = MasterKey::load_or_create(None, &path).unwrap();
        assert_eq!(&k2.open(b"ak1", &sealed).unwrap()[..], b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
