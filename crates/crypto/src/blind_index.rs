//! Blind indexes: keyed hashes that allow exact-match lookup of encrypted values
//! (e.g. "find the account with this email") without decrypting anything.
//!
//! `index = HMAC-SHA256(k_name, normalised value)`, where
//! `k_name = HKDF-SHA256(salt = "custodia/blind-index/v1", ikm = master key,
//! info = name, 32 bytes)`. Each index name gets its own key, so the `"email"` index
//! and the `"phone"` index of the same value are unlinkable, and nobody without the
//! master key can compute or test an index.
//!
//! Normalisation is the caller's job and must be identical at write and lookup time
//! (e.g. trim and lower-case an email, E.164 for a phone number): the indexer hashes
//! exactly the bytes it is given. Rotating the master key changes every index, so
//! indexed columns must be recomputed with it.

use std::fmt;

use ring::{hkdf, hmac};

use crate::MasterKey;

/// The HKDF salt: domain separation from every other use of the master key.
const SALT: &[u8] = b"custodia/blind-index/v1";

/// A blind index value: stored next to the ciphertext and compared for equality.
/// Deterministic by design; `Debug` prints it in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex([u8; 32]);

impl BlindIndex {
    /// A value read back from storage.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndex(")?;
        crate::hex::write(f, &self.0)?;
        f.write_str(")")
    }
}

/// Computes blind indexes. Cheap to clone.
#[derive(Clone)]
pub struct BlindIndexer {
    prk: hkdf::Prk,
}

impl BlindIndexer {
    /// An indexer keyed from `master`.
    #[must_use]
    pub fn new(master: &MasterKey) -> Self {
        Self {
            prk: hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(master.bytes()),
        }
    }

    /// The blind index of `normalised_value` in the index called `name` (e.g.
    /// `"email"`). The value must already be normalised; see the module docs.
    #[must_use]
    pub fn index(&self, name: &'static str, normalised_value: &str) -> BlindIndex {
        let info = [name.as_bytes()];
        // HKDF-SHA256 can expand up to 255 * 32 bytes; one HMAC key (32 bytes) always
        // fits, so this cannot fail.
        let okm = self
            .prk
            .expand(&info, hmac::HMAC_SHA256)
            .expect("32 bytes is within HKDF-SHA256's output limit");
        let key = hmac::Key::from(okm);
        let tag = hmac::sign(&key, normalised_value.as_bytes());
        let mut out = [0_u8; 32];
        out.copy_from_slice(tag.as_ref());
        BlindIndex(out)
    }
}

impl fmt::Debug for BlindIndexer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexer([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::hex;

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "blind index").
    #[test]
    fn known_answer_email_index() {
        let indexer = BlindIndexer::new(&MasterKey::from_bytes([0x44; 32]));
        assert_eq!(
            hex(indexer.index("email", "alice@example.org").as_bytes()),
            KAT_EMAIL
        );
        assert_eq!(
            hex(indexer.index("phone", "alice@example.org").as_bytes()),
            KAT_PHONE
        );
    }

    const KAT_EMAIL: &str = "85aef6b1819ea698c16b9c2a9776ed6e8c2481a356fba688e0e27d328df85c49";
    const KAT_PHONE: &str = "ae8bcc8b7966d98dc695711cd01cb32e9414218309452320478c5d3161c48266";

    #[test]
    fn deterministic_per_name_and_key() {
        let indexer = BlindIndexer::new(&MasterKey::from_bytes([1; 32]));
        let other = BlindIndexer::new(&MasterKey::from_bytes([2; 32]));
        let a = indexer.index("email", "a@example.org");
        assert_eq!(a, indexer.clone().index("email", "a@example.org"));
        assert_ne!(a, indexer.index("email", "b@example.org"));
        assert_ne!(a, indexer.index("username", "a@example.org"));
        assert_ne!(a, other.index("email", "a@example.org"));
        assert_eq!(format!("{indexer:?}"), "BlindIndexer([redacted])");
    }
}
