//! Signed checkpoints: every N events or T seconds a writer signs, with Ed25519,
//! the head of every chain in the log (its size, last hash and Merkle root, and how
//! far retention has pruned it). A checkpoint pins the log as it was: an attacker
//! who rewrites or truncates anything it covers must forge a signature.

use chrono::{DateTime, Utc};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use uuid::Uuid;

use crate::event::micros;
use crate::{ChainId, Hash};

const DOMAIN: &[u8] = b"custodia.audit.checkpoint.v1";

/// One chain's head as a checkpoint names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain.
    pub chain: ChainId,
    /// Its number of events (the last sequence number).
    pub size: u64,
    /// The hash of event `size` ([`Hash::ZERO`] when empty).
    pub head: Hash,
    /// The RFC 6962 root over events `1..=size`.
    pub root: Hash,
    /// Events `1..=pruned_through` were blanked by retention.
    pub pruned_through: u64,
}

/// A signed statement of every chain's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its id (UUIDv7: ordered by creation).
    pub id: Uuid,
    /// When it was signed.
    pub at: DateTime<Utc>,
    /// The chain whose writer signed it.
    pub writer: ChainId,
    /// Every chain's head, ordered by chain id.
    pub heads: Vec<ChainHead>,
    /// Which key signed it.
    pub key_id: KeyId,
    /// Ed25519 over [`Checkpoint::signed_bytes`].
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// The bytes the signature covers.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + 64 + self.heads.len() * 96);
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&micros(self.at).to_be_bytes());
        out.extend_from_slice(self.writer.as_bytes());
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&(self.heads.len() as u64).to_be_bytes());
        for head in &self.heads {
            out.extend_from_slice(head.chain.as_bytes());
            out.extend_from_slice(&head.size.to_be_bytes());
            out.extend_from_slice(head.head.as_bytes());
            out.extend_from_slice(head.root.as_bytes());
            out.extend_from_slice(&head.pruned_through.to_be_bytes());
        }
        out
    }

    /// This checkpoint's head for `chain`.
    #[must_use]
    pub fn head(&self, chain: ChainId) -> Option<&ChainHead> {
        self.heads.iter().find(|h| h.chain == chain)
    }
}

/// The first 8 bytes of SHA-256 over an Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    fn of(public_key: &[u8]) -> Self {
        let digest = Hash::of(&[public_key]);
        let mut out = [0; 8];
        out.copy_from_slice(&digest.0[..8]);
        Self(out)
    }

    /// Lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a 32-byte Ed25519 seed.
    #[error("the audit signing key must be a 32-byte Ed25519 seed")]
    Malformed,
}

/// The Ed25519 key a writer signs checkpoints with. Never prints.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    id: KeyId,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id.to_hex())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key whose seed is `seed` (RFC 8032 private key).
    ///
    /// # Errors
    /// [`KeyError::Malformed`] unless `seed` is 32 bytes.
    pub fn from_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::Malformed)?;
        let id = KeyId::of(pair.public_key().as_ref());
        Ok(Self { pair, id })
    }

    /// The public half, for verifiers.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(self.pair.public_key().as_ref())
    }

    /// The key id.
    #[must_use]
    pub const fn id(&self) -> KeyId {
        self.id
    }

    /// Signs a checkpoint over `heads` (sorted here by chain id).
    #[must_use]
    pub fn sign(
        &self,
        writer: ChainId,
        at: DateTime<Utc>,
        mut heads: Vec<ChainHead>,
    ) -> Checkpoint {
        heads.sort_by_key(|h| h.chain);
        let mut checkpoint = Checkpoint {
            id: Uuid::now_v7(),
            at: crate::event::truncate(at),
            writer,
            heads,
            key_id: self.id,
            signature: Vec::new(),
        };
        checkpoint.signature = self.pair.sign(&checkpoint.signed_bytes()).as_ref().to_vec();
        checkpoint
    }
}

/// An Ed25519 public key an auditor trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    bytes: Vec<u8>,
    id: KeyId,
}

impl VerifyingKey {
    /// The key from its 32 raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            id: KeyId::of(bytes),
        }
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key id.
    #[must_use]
    pub const fn id(&self) -> KeyId {
        self.id
    }

    /// Whether `checkpoint` was signed by this key.
    #[must_use]
    pub fn verifies(&self, checkpoint: &Checkpoint) -> bool {
        checkpoint.key_id == self.id
            && UnparsedPublicKey::new(&signature::ED25519, &self.bytes)
                .verify(&checkpoint.signed_bytes(), &checkpoint.signature)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(n: u64) -> ChainHead {
        ChainHead {
            chain: Uuid::now_v7(),
            size: n,
            head: Hash::of(&[b"h"]),
            root: Hash::of(&[b"r"]),
            pruned_through: 0,
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_seed(&[7; 32]).expect("seed");
        let public = key.verifying_key();
        let cp = key.sign(Uuid::now_v7(), Utc::now(), vec![head(3), head(9)]);
        assert!(public.verifies(&cp));
        let mut bent = cp.clone();
        bent.heads[0].size += 1;
        assert!(!public.verifies(&bent));
        let mut bent = cp.clone();
        bent.heads[1].pruned_through = 1;
        assert!(!public.verifies(&bent));
        let mut bent = cp.clone();
        bent.heads.pop();
        assert!(!public.verifies(&bent));
        let other = SigningKey::from_seed(&[8; 32])
            .expect("seed")
            .verifying_key();
        assert!(!other.verifies(&cp));
    }

    #[test]
    fn rfc_8032_test_1_public_key() {
        let seed = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let key = SigningKey::from_seed(&seed).expect("seed");
        let hex: String = key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert!(SigningKey::from_seed(&[1; 31]).is_err());
    }
}
