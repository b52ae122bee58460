//! The [`KeyStore`] port: where wrapped organisation and subject keys live, and where
//! crypto-shredding happens.
//!
//! The store only ever sees wrapped (encrypted) key material. It is implemented by
//! the `store` crate on sea-orm (columns `id`, `owner_kind`, `owner_id`,
//! `organisation_id`, `version`, `wrapped_by`, `material` nullable bytes,
//! `created_at`, `destroyed_at`; unique `(owner_kind, owner_id, version)`), and by
//! `crypto::testing::MemoryKeyStore` behind the `testing` feature. Every adapter runs
//! `crypto::testing::key_store_contract`.

use std::error::Error;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{OrganisationId, SubjectId};
use uuid::Uuid;

use crate::KeyId;

/// Whose key it is. Organisation keys (KEKs) are wrapped by the master key; subject
/// data keys (DEKs) are wrapped by their organisation's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyOwner {
    /// An organisation's key-encryption key.
    Organisation(OrganisationId),
    /// A data subject's data key, held within one organisation.
    Subject {
        /// The organisation whose key wraps this one.
        organisation: OrganisationId,
        /// The person whose fields the key encrypts.
        subject: SubjectId,
    },
}

/// The kind of a [`KeyOwner`], as stored in the `owner_kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyOwnerKind {
    /// [`KeyOwner::Organisation`].
    Organisation,
    /// [`KeyOwner::Subject`].
    Subject,
}

impl KeyOwnerKind {
    /// The stable machine name: `"organisation"` or `"subject"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Organisation => "organisation",
            Self::Subject => "subject",
        }
    }

    /// Parses [`Self::as_str`] back.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "organisation" => Some(Self::Organisation),
            "subject" => Some(Self::Subject),
            _ => None,
        }
    }
}

impl KeyOwner {
    /// The owner's kind (`owner_kind` column).
    #[must_use]
    pub const fn kind(&self) -> KeyOwnerKind {
        match self {
            Self::Organisation(_) => KeyOwnerKind::Organisation,
            Self::Subject { .. } => KeyOwnerKind::Subject,
        }
    }

    /// The owner's own id: the organisation's or the subject's (`owner_id` column).
    #[must_use]
    pub const fn owner_id(&self) -> Uuid {
        match self {
            Self::Organisation(organisation) => organisation.as_uuid(),
            Self::Subject { subject, .. } => subject.as_uuid(),
        }
    }

    /// The organisation the key belongs to (`organisation_id` column).
    #[must_use]
    pub const fn organisation(&self) -> OrganisationId {
        match self {
            Self::Organisation(organisation) | Self::Subject { organisation, .. } => *organisation,
        }
    }

    /// Rebuilds an owner from its three columns. `owner_id` must equal
    /// `organisation_id` for an organisation key; `None` otherwise.
    #[must_use]
    pub fn from_columns(kind: KeyOwnerKind, owner_id: Uuid, organisation_id: Uuid) -> Option<Self> {
        let organisation = OrganisationId::from_uuid(organisation_id);
        match kind {
            KeyOwnerKind::Organisation => {
                (owner_id == organisation_id).then_some(Self::Organisation(organisation))
            }
            KeyOwnerKind::Subject => Some(Self::Subject {
                organisation,
                subject: SubjectId::from_uuid(owner_id),
            }),
        }
    }
}

/// One stored key: its material encrypted under the key named by `wrapped_by`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The key's id; envelopes name it.
    pub id: KeyId,
    /// Whose key it is.
    pub owner: KeyOwner,
    /// 1 for the owner's first key, then one more per rotation.
    pub version: u32,
    /// The wrapping key: the master key's fingerprint for an organisation key, the
    /// organisation key's id for a subject key.
    pub wrapped_by: KeyId,
    /// The wrapped key (see the `keyring` module for its layout); `None` once
    /// destroyed (crypto-shredded).
    pub material: Option<Vec<u8>>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
}

impl WrappedKey {
    /// Whether the key's material has been erased.
    #[must_use]
    pub const fn is_destroyed(&self) -> bool {
        self.material.is_none()
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let material = match &self.material {
            Some(bytes) => format!("[wrapped, {} bytes]", bytes.len()),
            None => String::from("[destroyed]"),
        };
        f.debug_struct("WrappedKey")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("version", &self.version)
            .field("wrapped_by", &self.wrapped_by)
            .field("material", &format_args!("{material}"))
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A [`KeyStore`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// A key with this id, or with this owner and version, already exists. Adapters
    /// map the unique-constraint violation to this; the keyring then re-reads.
    #[error("a key with this id, or this owner and version, already exists")]
    Duplicate,
    /// The store could not be reached or failed; the operation may be retried.
    #[error("the key store is unavailable")]
    Unavailable(#[source] Box<dyn Error + Send + Sync>),
}

/// Outbound port: persistence of wrapped keys.
///
/// # Error contract
/// - [`KeyStoreError::Duplicate`] only from [`KeyStore::insert`], exactly when the id
///   or the `(owner, version)` pair is taken (concurrent creators race; the loser
///   re-reads). It never stands for any other failure.
/// - [`KeyStoreError::Unavailable`] for everything else (connection, timeout,
///   corrupt row); its source is for logs only and must not contain key material.
/// - "Not found" is `Ok(None)`, never an error.
///
/// Reads return rows exactly as inserted (timestamps to at least microsecond
/// precision), except that [`KeyStore::destroy`] sets `material` to `None`. Rows are
/// never deleted, so a destroyed key stays visible and its id is never reused.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a new key.
    ///
    /// # Errors
    /// [`KeyStoreError::Duplicate`] when the id, or the owner and version, exist.
    async fn insert(&self, key: &WrappedKey) -> Result<(), KeyStoreError>;

    /// The key with this id, destroyed or not.
    ///
    /// # Errors
    /// [`KeyStoreError::Unavailable`].
    async fn get(&self, id: KeyId) -> Result<Option<WrappedKey>, KeyStoreError>;

    /// The owner's highest-version key, destroyed or not.
    ///
    /// # Errors
    /// [`KeyStoreError::Unavailable`].
    async fn latest(&self, owner: &KeyOwner) -> Result<Option<WrappedKey>, KeyStoreError>;

    /// Crypto-shredding: erases the material of every key of exactly this owner (rows
    /// stay; `material` becomes `None`; the adapter records `destroyed_at`). Keys of
    /// other owners, including the subject keys under an organisation, are untouched.
    /// Returns how many keys this call destroyed (already-destroyed keys do not count,
    /// so a repeat returns 0).
    ///
    /// # Errors
    /// [`KeyStoreError::Unavailable`].
    async fn destroy(&self, owner: &KeyOwner) -> Result<u64, KeyStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_columns_round_trip() {
        let organisation = OrganisationId::new();
        let subject = SubjectId::new();
        for owner in [
            KeyOwner::Organisation(organisation),
            KeyOwner::Subject {
                organisation,
                subject,
            },
        ] {
            let kind = KeyOwnerKind::parse(owner.kind().as_str()).expect("known kind");
            let back =
                KeyOwner::from_columns(kind, owner.owner_id(), owner.organisation().as_uuid());
            assert_eq!(back, Some(owner));
        }
        assert_eq!(
            KeyOwner::from_columns(
                KeyOwnerKind::Organisation,
                Uuid::nil(),
                organisation.as_uuid()
            ),
            None
        );
    }

    #[test]
    fn debug_does_not_print_material() {
        let key = WrappedKey {
            id: KeyId::new(),
            owner: KeyOwner::Organisation(OrganisationId::new()),
            version: 1,
            wrapped_by: KeyId::new(),
            material: Some(vec![0x5A; 61]),
            created_at: Utc::now(),
        };
        let debug = format!("{key:?}");
        assert!(debug.contains("[wrapped, 61 bytes]"));
        assert!(!debug.contains("90, 90"));
    }
}
