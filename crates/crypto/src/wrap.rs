//! Key wrapping: how an organisation key is sealed under the master key, and a
//! subject key under its organisation's key (AES-256-GCM).
//!
//! # Wrapped material (`WrappedKey::material`), 61 bytes
//!
//! | offset | length | content                                   |
//! |--------|--------|-------------------------------------------|
//! | 0      | 1      | format version, `0x01`                    |
//! | 1      | 12     | random nonce                              |
//! | 13     | 32     | the key, encrypted                        |
//! | 45     | 16     | GCM tag                                   |
//!
//! # Associated data
//!
//! `0x01 ‖ id (16) ‖ owner ‖ version (u32 big-endian) ‖ wrapped_by (16)`, where
//! `owner` is `0x01 ‖ organisation (16)` for an organisation key and
//! `0x02 ‖ organisation (16) ‖ subject (16)` for a subject key (ids as raw UUID
//! bytes). A row whose id, owner, version or wrapping key was changed — for example
//! moved to another subject — fails to unwrap.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::rand::SystemRandom;

use crate::random::{self, RandomnessUnavailable};
use crate::{KeyId, KeyOwner};

/// The material format version.
const VERSION: u8 = 0x01;
/// The length of a plain key.
pub(crate) const KEY_LEN: usize = 32;
/// The length of wrapped material.
pub(crate) const WRAPPED_LEN: usize = 1 + NONCE_LEN + KEY_LEN + 16;

/// Everything the wrapping is bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrapContext<'a> {
    pub(crate) id: KeyId,
    pub(crate) owner: &'a KeyOwner,
    pub(crate) version: u32,
    pub(crate) wrapped_by: KeyId,
}

impl WrapContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(1 + 16 + 33 + 4 + 16);
        aad.push(VERSION);
        aad.extend_from_slice(&self.id.to_bytes());
        match self.owner {
            KeyOwner::Organisation(organisation) => {
                aad.push(0x01);
                aad.extend_from_slice(organisation.as_uuid().as_bytes());
            }
            KeyOwner::Subject {
                organisation,
                subject,
            } => {
                aad.push(0x02);
                aad.extend_from_slice(organisation.as_uuid().as_bytes());
                aad.extend_from_slice(subject.as_uuid().as_bytes());
            }
        }
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad.extend_from_slice(&self.wrapped_by.to_bytes());
        aad
    }
}

/// The wrapped material could not be opened: it was altered, moved to another owner
/// or id, or is wrapped by a different key than the one used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnwrapFailed;

/// Wraps `key` under `wrapping_key` with a fresh random nonce.
pub(crate) fn wrap(
    wrapping_key: &LessSafeKey,
    context: &WrapContext<'_>,
    key: &[u8; KEY_LEN],
    rng: &SystemRandom,
) -> Result<Vec<u8>, RandomnessUnavailable> {
    let nonce = random::bytes::<NONCE_LEN>(rng)?;
    Ok(wrap_with_nonce(wrapping_key, context, key, nonce))
}

/// Wraps with a caller-chosen nonce. Only [`wrap`] (random nonce) and known-answer
/// tests call this: reusing a nonce under one key breaks GCM.
pub(crate) fn wrap_with_nonce(
    wrapping_key: &LessSafeKey,
    context: &WrapContext<'_>,
    key: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    let mut sealed = key.to_vec();
    // Sealing only fails for inputs larger than GCM's limit (~64 GiB); a 32-byte key
    // is far below it.
    let tag = wrapping_key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.associated_data()),
            &mut sealed,
        )
        .expect("a 32-byte key is within AES-GCM's input limit");
    out.extend_from_slice(&sealed);
    out.extend_from_slice(tag.as_ref());
    out
}

/// Unwraps `material` under `wrapping_key`, checking the binding to `context`.
pub(crate) fn unwrap(
    wrapping_key: &LessSafeKey,
    context: &WrapContext<'_>,
    material: &[u8],
) -> Result<[u8; KEY_LEN], UnwrapFailed> {
    if material.len() != WRAPPED_LEN || material[0] != VERSION {
        return Err(UnwrapFailed);
    }
    let mut nonce = [0_u8; NONCE_LEN];
    nonce.copy_from_slice(&material[1..=NONCE_LEN]);
    let mut in_out = material[1 + NONCE_LEN..].to_vec();
    let plain = wrapping_key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.associated_data()),
            &mut in_out,
        )
        .map_err(|_| UnwrapFailed)?;
    plain.try_into().map_err(|_| UnwrapFailed)
}

#[cfg(test)]
mod tests {
    use kernel::{OrganisationId, SubjectId};
    use uuid::Uuid;

    use super::*;
    use crate::master_key::aes_256_gcm;
    use crate::test_support::{hex, unhex};

    fn uuid(s: &str) -> Uuid {
        Uuid::parse_str(s).expect("valid uuid")
    }

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "wrap").
    #[test]
    fn known_answer_subject_key_wrap() {
        let kek = aes_256_gcm(&[0x11; 32]);
        let owner = KeyOwner::Subject {
            organisation: OrganisationId::from_uuid(uuid("0190a5b0-0000-7000-8000-000000000001")),
            subject: SubjectId::from_uuid(uuid("0190a5b0-0000-7000-8000-000000000002")),
        };
        let context = WrapContext {
            id: KeyId::from_uuid(uuid("0190a5b0-0000-7000-8000-000000000003")),
            owner: &owner,
            version: 2,
            wrapped_by: KeyId::from_uuid(uuid("0190a5b0-0000-7000-8000-000000000004")),
        };
        let dek = [0x22; 32];
        let nonce = [0x33; 12];
        let wrapped = wrap_with_nonce(&kek, &context, &dek, nonce);
        assert_eq!(hex(&wrapped), KAT_SUBJECT_WRAP);
        assert_eq!(wrapped, unhex(KAT_SUBJECT_WRAP));
        assert_eq!(unwrap(&kek, &context, &wrapped), Ok(dek));
    }

    /// Regenerate with `python3 crates/crypto/tests/kat.py` (section "wrap").
    #[test]
    fn known_answer_organisation_key_wrap() {
        let master = aes_256_gcm(&[0x44; 32]);
        let owner = KeyOwner::Organisation(OrganisationId::from_uuid(uuid(
            "0190a5b0-0000-7000-8000-000000000001",
        )));
        let context = WrapContext {
            id: KeyId::from_uuid(uuid("0190a5b0-0000-7000-8000-000000000005")),
            owner: &owner,
            version: 1,
            wrapped_by: KeyId::from_uuid(uuid("0190a5b0-0000-7000-8000-000000000006")),
        };
        let wrapped = wrap_with_nonce(&master, &context, &[0x55; 32], [0x66; 12]);
        assert_eq!(hex(&wrapped), KAT_ORGANISATION_WRAP);
    }

    const KAT_SUBJECT_WRAP: &str = "01333333333333333333333333a6a17064e8b0570e909ac94f8509c10a24ea2d16a8fba78eda682ba781aca8083d298c4d52059699097c7ff18df2db82";
    const KAT_ORGANISATION_WRAP: &str = "01666666666666666666666666bfc6af97569ecc0a6f36d508ab0917d2a6ed283b648bfe4236dd41ebfd1349dda553b8d1c631ab4000742fb31a666179";

    #[test]
    fn any_change_to_the_binding_fails_to_unwrap() {
        let kek = aes_256_gcm(&[0x11; 32]);
        let organisation = OrganisationId::new();
        let owner = KeyOwner::Subject {
            organisation,
            subject: SubjectId::new(),
        };
        let context = WrapContext {
            id: KeyId::new(),
            owner: &owner,
            version: 1,
            wrapped_by: KeyId::new(),
        };
        let wrapped = wrap(&kek, &context, &[9; 32], &SystemRandom::new()).expect("rng");
        assert_eq!(unwrap(&kek, &context, &wrapped), Ok([9; 32]));

        let other_subject = KeyOwner::Subject {
            organisation,
            subject: SubjectId::new(),
        };
        let other_organisation = KeyOwner::Organisation(organisation);
        let variants = [
            WrapContext {
                id: KeyId::new(),
                ..context
            },
            WrapContext {
                owner: &other_subject,
                ..context
            },
            WrapContext {
                owner: &other_organisation,
                ..context
            },
            WrapContext {
                version: 2,
                ..context
            },
            WrapContext {
                wrapped_by: KeyId::new(),
                ..context
            },
        ];
        for variant in &variants {
            assert_eq!(unwrap(&kek, variant, &wrapped), Err(UnwrapFailed));
        }
        assert_eq!(
            unwrap(&aes_256_gcm(&[0x12; 32]), &context, &wrapped),
            Err(UnwrapFailed)
        );
        for i in 0..wrapped.len() {
            let mut tampered = wrapped.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                unwrap(&kek, &context, &tampered),
                Err(UnwrapFailed),
                "byte {i}"
            );
        }
        assert_eq!(unwrap(&kek, &context, &wrapped[..60]), Err(UnwrapFailed));
    }
}
