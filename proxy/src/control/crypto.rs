//! Secrets at rest: XChaCha20-Poly1305 under a 32-byte master key.
//!
//! A sealed blob is `version (1 byte) ‖ nonce (24 bytes) ‖ ciphertext+tag`. The random
//! 192-bit nonce makes reuse negligible without any counter state. Each blob is bound to a
//! *context* string (as associated data, e.g. `account:web-01/root`), so copying one row's
//! ciphertext into another row fails to decrypt instead of silently swapping credentials.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::error::{Error, Result};

/// The environment variable that carries the master key (base64 or hex of 32 bytes).
pub const MASTER_KEY_ENV: &str = "GATEHOUSE_MASTER_KEY";
/// The master key file's name inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The key every stored secret is encrypted with. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).expect("the OS random number generator failed");
        MasterKey(bytes)
    }

    /// Parses 32 bytes written as base64 (44 characters) or hex (64 characters).
    pub fn parse(text: &str) -> Result<MasterKey> {
        let text = text.trim();
        let bytes = Zeroizing::new(if text.len() == 64 {
            hex::decode(text).map_err(|e| Error::MasterKey(format!("bad hex: {e}")))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| Error::MasterKey(format!("neither 64 hex digits nor base64: {e}")))?
        });
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::MasterKey(format!("must be 32 bytes, got {} bytes", bytes.len()))
        })?;
        Ok(MasterKey::from_bytes(array))
    }

    /// The key as base64, the form [`MasterKey::parse`] reads and the key file holds.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }

    /// The deployment's key: `GATEHOUSE_MASTER_KEY` if set, else `<data_dir>/master.key`,
    /// created (mode 0600) with a fresh key on first use.
    pub fn load(data_dir: &Path) -> Result<MasterKey> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) => MasterKey::parse(&text)
                .map_err(|e| Error::MasterKey(format!("{MASTER_KEY_ENV}: {e}"))),
            Err(_) => MasterKey::load_or_create_file(&data_dir.join(MASTER_KEY_FILE)),
        }
    }

    /// Reads the key file, or creates it (mode 0600, parent directories too) with a fresh
    /// key. A key file that others may read is refused, as OpenSSH refuses such key files.
    pub fn load_or_create_file(path: &Path) -> Result<MasterKey> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let key = MasterKey::generate();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(mut file) => {
                let line = Zeroizing::new(format!("{}\n", key.to_base64().as_str()));
                file.write_all(line.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io(path, e))?;
                Ok(key)
            }
            // Someone (another gatehouse process) created it first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(Error::MasterKey(format!(
                        "{} is accessible by other users (mode {mode:o}); run chmod 600 on it",
                        path.display()
                    )));
                }
                let text = Zeroizing::new(
                    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
                );
                MasterKey::parse(&text)
                    .map_err(|e| Error::MasterKey(format!("{}: {e}", path.display())))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Encrypts `plaintext`, bound to `context`.
    pub(crate) fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random number generator failed");
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a blob made by [`MasterKey::seal`] with the same `context`.
    pub(crate) fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let decrypt_error = || Error::Decrypt { what: context.to_string() };
        let (&version, rest) = sealed.split_first().ok_or_else(decrypt_error)?;
        if version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(decrypt_error());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad: context.as_bytes() })
            .map(Zeroizing::new)
            .map_err(|_| decrypt_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let key = MasterKey::generate();
        let sealed = key.seal("account:web/root", b"hunter2");
        assert_ne!(&sealed[1 + NONCE_LEN..], b"hunter2");
        assert_eq!(key.open("account:web/root", &sealed).unwrap().as_slice(), b"hunter2");
        // Two seals of the same text differ (fresh nonce).
        assert_ne!(sealed, key.seal("account:web/root", b"hunter2"));
    }

    #[test]
    fn tampered_wrong_key_or_wrong_context_is_a_clear_error() {
        let key = MasterKey::generate();
        let sealed = key.seal("account:web/root", b"hunter2");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let err = key.open("account:web/root", &tampered).unwrap_err();
        assert_eq!(err.kind(), super::super::ErrorKind::Corrupt);
        assert!(err.to_string().contains("cannot decrypt account:web/root"), "{err}");
        assert!(MasterKey::generate().open("account:web/root", &sealed).is_err());
        assert!(key.open("account:db/root", &sealed).is_err());
        assert!(key.open("account:web/root", &sealed[..10]).is_err());
        assert!(key.open("account:web/root", &[]).is_err());
    }

    #[test]
    fn parse_accepts_base64_and_hex_and_rejects_wrong_lengths() {
        let key = MasterKey::from_bytes([7u8; 32]);
        let b64 = key.to_base64();
        let hex = hex::encode([7u8; 32]);
        for text in [b64.as_str(), hex.as_str()] {
            let parsed = MasterKey::parse(text).unwrap();
            assert_eq!(parsed.0.as_ref(), key.0.as_ref());
        }
        let err = MasterKey::parse("AAAA").unwrap_err().to_string();
        assert!(err.contains("must be 32 bytes, got 3"), "{err}");
        assert!(MasterKey::parse("not base64 at all!").is_err());
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
    }

    #[test]
    fn key_file_is_created_0600_then_reused_and_loose_modes_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let first = MasterKey::load_or_create_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = MasterKey::load_or_create_file(&path).unwrap();
        assert_eq!(first.0.as_ref(), again.0.as_ref());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load_or_create_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
