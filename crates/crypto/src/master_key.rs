//! [`MasterKey`]: the root of the key hierarchy, read from configuration.
//!
//! The master key wraps every organisation key and seeds the blind-index keys. It
//! never leaves the process: it is not stored by the [`crate::KeyStore`], and its
//! `Debug` prints `[redacted]`. Wrapped keys name the master that wrapped them by its
//! [`MasterKey::fingerprint`], so a later master-key rotation can tell which rows
//! still need re-wrapping.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kernel::Sensitive;
use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use ring::hmac;
use ring::rand::SystemRandom;

use crate::KeyId;
use crate::random::{self, RandomnessUnavailable};

/// The length of a master key, in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// The HMAC message whose tag, truncated to 16 bytes, is a master key's fingerprint.
const FINGERPRINT_LABEL: &[u8] = b"custodia/master-key-id/v1";

/// A master key could not be read from configuration. The message never contains
/// the configured value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    /// The value is not standard (padded) base64.
    #[error("the master key is not valid standard base64")]
    NotBase64,
    /// The value decodes to the wrong number of bytes.
    #[error("the master key must decode to exactly 32 bytes, not {0}")]
    WrongLength(usize),
}

/// The 32-byte root key. Not `Clone`: there is one copy, owned by the [`crate::Keyring`].
pub struct MasterKey {
    bytes: [u8; MASTER_KEY_LEN],
    aead: LessSafeKey,
    fingerprint: KeyId,
}

impl MasterKey {
    /// The master key made of `bytes`.
    #[must_use]
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        let aead = aes_256_gcm(&bytes);
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            FINGERPRINT_LABEL,
        );
        let mut id = [0_u8; 16];
        id.copy_from_slice(&tag.as_ref()[..16]);
        Self {
            bytes,
            aead,
            fingerprint: KeyId::from_bytes(id),
        }
    }

    /// Parses a master key from configuration: standard base64 (with padding) of
    /// exactly 32 bytes. Surrounding whitespace (a trailing newline in a secret
    /// file) is ignored.
    ///
    /// # Errors
    /// [`MasterKeyError`] when the value is not base64 or not 32 bytes long.
    pub fn from_base64(encoded: &str) -> Result<Self, MasterKeyError> {
        let decoded = STANDARD
            .decode(encoded.trim())
            .map_err(|_| MasterKeyError::NotBase64)?;
        let bytes: [u8; MASTER_KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::WrongLength(decoded.len()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random master key (for `custodia keygen` and tests).
    ///
    /// # Errors
    /// [`RandomnessUnavailable`] if the system RNG fails.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        Ok(Self::from_bytes(random::bytes(&SystemRandom::new())?))
    }

    /// The key as standard base64, for writing into configuration once.
    #[must_use]
    pub fn to_base64(&self) -> Sensitive<String> {
        Sensitive::new(STANDARD.encode(self.bytes))
    }

    /// A stable, non-secret name for this key: the first 16 bytes of
    /// HMAC-SHA256(master, `"custodia/master-key-id/v1"`). Organisation keys record
    /// it as their `wrapped_by`.
    #[must_use]
    pub const fn fingerprint(&self) -> KeyId {
        self.fingerprint
    }

    /// The raw bytes, for deriving subkeys (blind indexes).
    pub(crate) const fn bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.bytes
    }

    /// The AES-256-GCM key that wraps organisation keys.
    pub(crate) const fn aead(&self) -> &LessSafeKey {
        &self.aead
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("fingerprint", &self.fingerprint)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

/// An AES-256-GCM key from 32 bytes.
pub(crate) fn aes_256_gcm(bytes: &[u8; 32]) -> LessSafeKey {
    // AES-256-GCM accepts every 32-byte key and the length is fixed by the type, so
    // this cannot fail.
    let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key");
    LessSafeKey::new(unbound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_redacted_debug() {
        let key = MasterKey::generate().expect("rng");
        let encoded = key.to_base64();
        assert_eq!(format!("{encoded:?}"), "[redacted]");
        let again = MasterKey::from_base64(&format!("{}\n", encoded.expose())).expect("parses");
        assert_eq!(again.fingerprint(), key.fingerprint());
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains(encoded.expose().as_str()));
    }

    #[test]
    fn rejects_bad_configuration_without_echoing_it() {
        let err = MasterKey::from_base64("not base64!").expect_err("invalid");
        assert_eq!(err, MasterKeyError::NotBase64);
        assert!(!err.to_string().contains("not base64!"));
        let short = STANDARD.encode([7_u8; 31]);
        assert_eq!(
            MasterKey::from_base64(&short).expect_err("short"),
            MasterKeyError::WrongLength(31)
        );
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode([7_u8; 32]);
        assert_eq!(
            MasterKey::from_base64(&unpadded).expect_err("unpadded"),
            MasterKeyError::NotBase64
        );
    }

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "master key").
    #[test]
    fn known_answer_fingerprint() {
        let key = MasterKey::from_bytes([0x44; 32]);
        assert_eq!(
            key.fingerprint().to_string(),
            "7d509d0c-9557-9d43-18ec-7488286cd81b"
        );
    }

    #[test]
    fn fingerprints_differ_between_keys() {
        let a = MasterKey::from_bytes([1; 32]);
        let b = MasterKey::from_bytes([2; 32]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            MasterKey::from_bytes([1; 32]).fingerprint()
        );
    }
}
