//! The field envelope: how one encrypted field value is laid out, and what it is
//! bound to.
//!
//! # Layout (version 1)
//!
//! | offset | length | content                                             |
//! |--------|--------|-----------------------------------------------------|
//! | 0      | 1      | format version, `0x01`                              |
//! | 1      | 16     | id of the subject data key (raw UUID bytes)         |
//! | 17     | 12     | random nonce (from `SystemRandom`)                  |
//! | 29     | n      | AES-256-GCM ciphertext of the n-byte plaintext      |
//! | 29 + n | 16     | GCM tag                                             |
//!
//! An envelope is therefore 45 bytes longer than its plaintext ([`OVERHEAD`]).
//!
//! # Associated data
//!
//! ```text
//! header (bytes 0..17: version ‖ key id)
//! ‖ u32 big-endian 16 ‖ record id (16 raw UUID bytes)
//! ‖ u32 big-endian len(field) ‖ field name (UTF-8)
//! ```
//!
//! Binding the header means the version byte and key id cannot be altered; binding
//! the [`FieldBinding`] means a ciphertext copied to another row, or to another column
//! of the same row, fails to decrypt. Truncated envelopes and unknown versions are
//! rejected before any decryption is attempted.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::rand::SystemRandom;
use uuid::Uuid;

use crate::KeyId;
use crate::random::{self, RandomnessUnavailable};

/// The current (and only) envelope format version.
pub const VERSION: u8 = 0x01;
/// Version byte plus key id.
const HEADER_LEN: usize = 1 + 16;
/// The GCM tag length.
const TAG_LEN: usize = 16;
/// How many bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// Where a ciphertext belongs: the record (row) id and the field (column) name. Both
/// are authenticated, so a ciphertext only decrypts where it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldBinding {
    /// The id of the row that holds the value.
    pub record: Uuid,
    /// The field's stable name, e.g. `"clinical_note.body"`. Renaming a field means
    /// re-encrypting its values.
    pub field: &'static str,
}

impl FieldBinding {
    /// The binding of `field` in the row `record`.
    #[must_use]
    pub const fn new(record: Uuid, field: &'static str) -> Self {
        Self { record, field }
    }

    fn associated_data(&self, header: &[u8]) -> Vec<u8> {
        let field = self.field.as_bytes();
        let mut aad = Vec::with_capacity(header.len() + 4 + 16 + 4 + field.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(&16_u32.to_be_bytes());
        aad.extend_from_slice(self.record.as_bytes());
        // Field names are `&'static str` identifiers, far below 4 GiB.
        let field_len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&field_len.to_be_bytes());
        aad.extend_from_slice(field);
        aad
    }
}

/// An envelope could not be sealed or opened. Messages never contain the plaintext,
/// the ciphertext or key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than the fixed overhead.
    #[error("the envelope is truncated: {0} bytes, at least {OVERHEAD} needed")]
    Truncated(usize),
    /// The version byte is not one this build understands.
    #[error("unsupported envelope version {0:#04x}")]
    UnsupportedVersion(u8),
    /// Authentication failed: the envelope was altered, or is being opened for
    /// another record or field, or under the wrong key.
    #[error(
        "the envelope does not authenticate: it was altered, or belongs to another record, field or key"
    )]
    Unauthentic,
    /// The plaintext exceeds AES-GCM's limit (about 64 GiB).
    #[error("the plaintext is too long to encrypt")]
    TooLong,
    /// No nonce could be drawn.
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
}

/// The id of the key an envelope was sealed under, without decrypting it. Useful for
/// re-encryption jobs after a rotation.
///
/// # Errors
/// [`EnvelopeError::Truncated`] or [`EnvelopeError::UnsupportedVersion`].
pub fn key_id_of(envelope: &[u8]) -> Result<KeyId, EnvelopeError> {
    Parsed::parse(envelope).map(|parsed| parsed.key_id)
}

/// A structurally valid envelope, not yet authenticated.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) key_id: KeyId,
    header: &'a [u8],
    nonce: [u8; NONCE_LEN],
    sealed: &'a [u8],
}

impl<'a> Parsed<'a> {
    /// Checks the length and version and splits the envelope.
    pub(crate) fn parse(envelope: &'a [u8]) -> Result<Self, EnvelopeError> {
        let Some(&version) = envelope.first() else {
            return Err(EnvelopeError::Truncated(0));
        };
        if version != VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        if envelope.len() < OVERHEAD {
            return Err(EnvelopeError::Truncated(envelope.len()));
        }
        let (header, rest) = envelope.split_at(HEADER_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let mut id = [0_u8; 16];
        id.copy_from_slice(&header[1..]);
        let mut nonce_bytes = [0_u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        Ok(Self {
            key_id: KeyId::from_bytes(id),
            header,
            nonce: nonce_bytes,
            sealed,
        })
    }

    /// Authenticates and decrypts under `key`, which must be the key named by
    /// `self.key_id`.
    pub(crate) fn open(
        &self,
        key: &LessSafeKey,
        binding: &FieldBinding,
    ) -> Result<Vec<u8>, EnvelopeError> {
        let mut in_out = self.sealed.to_vec();
        let plain_len = key
            .open_in_place(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(binding.associated_data(self.header)),
                &mut in_out,
            )
            .map_err(|_| EnvelopeError::Unauthentic)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

/// Seals `plaintext` under `key` (whose id is `key_id`) with a fresh random nonce.
pub(crate) fn seal(
    key: &LessSafeKey,
    key_id: KeyId,
    binding: &FieldBinding,
    plaintext: &[u8],
    rng: &SystemRandom,
) -> Result<Vec<u8>, EnvelopeError> {
    let nonce = random::bytes::<NONCE_LEN>(rng)?;
    seal_with_nonce(key, key_id, binding, plaintext, nonce)
}

/// Seals with a caller-chosen nonce. Only [`seal`] (random nonce) and known-answer
/// tests call this: reusing a nonce under one key breaks GCM.
pub(crate) fn seal_with_nonce(
    key: &LessSafeKey,
    key_id: KeyId,
    binding: &FieldBinding,
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(VERSION);
    out.extend_from_slice(&key_id.to_bytes());
    let aad = binding.associated_data(&out);
    out.extend_from_slice(&nonce);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[body_start..],
        )
        .map_err(|_| EnvelopeError::TooLong)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master_key::aes_256_gcm;
    use crate::test_support::hex;

    fn fixed() -> (LessSafeKey, KeyId, FieldBinding) {
        let key = aes_256_gcm(&[0x42; 32]);
        let key_id = KeyId::from_uuid(
            Uuid::parse_str("0190a5b0-0000-7000-8000-0000000000aa").expect("valid"),
        );
        let record = Uuid::parse_str("0190a5b0-0000-7000-8000-0000000000bb").expect("valid");
        (key, key_id, FieldBinding::new(record, "patient.diagnosis"))
    }

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "envelope").
    #[test]
    fn known_answer_envelope() {
        let (key, key_id, binding) = fixed();
        let envelope = seal_with_nonce(
            &key,
            key_id,
            &binding,
            b"F32.1 major depressive",
            [0x07; 12],
        )
        .expect("seals");
        assert_eq!(hex(&envelope), KAT_ENVELOPE);
        let parsed = Parsed::parse(&envelope).expect("parses");
        assert_eq!(parsed.key_id, key_id);
        assert_eq!(
            parsed.open(&key, &binding).expect("opens"),
            b"F32.1 major depressive"
        );
    }

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "envelope").
    #[test]
    fn known_answer_empty_plaintext() {
        let (key, key_id, binding) = fixed();
        let envelope = seal_with_nonce(&key, key_id, &binding, b"", [0x08; 12]).expect("seals");
        assert_eq!(envelope.len(), OVERHEAD);
        assert_eq!(hex(&envelope), KAT_EMPTY_ENVELOPE);
        let parsed = Parsed::parse(&envelope).expect("parses");
        assert_eq!(parsed.open(&key, &binding).expect("opens"), b"");
    }

    const KAT_ENVELOPE: &str = "010190a5b00000700080000000000000aa0707070707070707070707073ed16f8284d11f9a493b9e10b93e560e90297c548bb00266e9cc24fa062a9de519806727a0c5";
    const KAT_EMPTY_ENVELOPE: &str = "010190a5b00000700080000000000000aa080808080808080808080808bb0647659251dc650b624dd26c4899a6";

    #[test]
    fn moved_ciphertext_fails_under_another_record_or_field() {
        let (key, key_id, binding) = fixed();
        let envelope =
            seal(&key, key_id, &binding, b"secret", &SystemRandom::new()).expect("seals");
        let parsed = Parsed::parse(&envelope).expect("parses");
        let other_record = FieldBinding::new(Uuid::now_v7(), binding.field);
        let other_field = FieldBinding::new(binding.record, "patient.allergies");
        assert_eq!(
            parsed.open(&key, &other_record),
            Err(EnvelopeError::Unauthentic)
        );
        assert_eq!(
            parsed.open(&key, &other_field),
            Err(EnvelopeError::Unauthentic)
        );
        assert_eq!(parsed.open(&key, &binding).expect("opens"), b"secret");
    }

    #[test]
    fn flipping_any_byte_fails() {
        let (key, key_id, binding) = fixed();
        let envelope = seal(
            &key,
            key_id,
            &binding,
            b"secret value",
            &SystemRandom::new(),
        )
        .expect("seals");
        for i in 0..envelope.len() {
            for bit in [0x01_u8, 0x80] {
                let mut tampered = envelope.clone();
                tampered[i] ^= bit;
                let result = Parsed::parse(&tampered).and_then(|p| p.open(&key, &binding));
                assert!(
                    result.is_err(),
                    "flipping bit {bit:#x} of byte {i} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncated_and_unknown_versions_are_rejected() {
        let (key, key_id, binding) = fixed();
        let envelope = seal(&key, key_id, &binding, b"x", &SystemRandom::new()).expect("seals");
        assert_eq!(key_id_of(&[]), Err(EnvelopeError::Truncated(0)));
        assert_eq!(
            key_id_of(&envelope[..20]),
            Err(EnvelopeError::Truncated(20))
        );
        for len in 0..envelope.len() {
            let result = Parsed::parse(&envelope[..len]).and_then(|p| p.open(&key, &binding));
            assert!(result.is_err(), "a {len}-byte prefix was accepted");
        }
        let mut future = envelope.clone();
        future[0] = 0x02;
        assert_eq!(
            key_id_of(&future),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
        assert_eq!(key_id_of(&envelope), Ok(key_id));
    }

    #[test]
    fn nonces_are_fresh() {
        let (key, key_id, binding) = fixed();
        let rng = SystemRandom::new();
        let a = seal(&key, key_id, &binding, b"same", &rng).expect("seals");
        let b = seal(&key, key_id, &binding, b"same", &rng).expect("seals");
        assert_ne!(a, b);
    }
}
