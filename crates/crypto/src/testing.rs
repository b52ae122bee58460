//! Test support for [`KeyStore`] adapters (feature `testing`): an in-memory store and
//! the contract every adapter must pass.
//!
//! The `store` crate runs [`key_store_contract`] against its sea-orm adapter on SQLite
//! and PostgreSQL; this crate runs it against [`MemoryKeyStore`]. The contract uses
//! fresh random owners, so it can run against a shared database.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{OrganisationId, SubjectId};

use crate::{KeyId, KeyOwner, KeyStore, KeyStoreError, WrappedKey};

/// A [`KeyStore`] in a `Mutex<HashMap>`: for unit tests of code that needs a keyring.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<KeyId, WrappedKey>>,
}

impl MemoryKeyStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every key of `owner`, lowest version first (destroyed ones included).
    #[must_use]
    pub fn keys_of(&self, owner: &KeyOwner) -> Vec<WrappedKey> {
        let mut keys: Vec<_> = self
            .lock()
            .values()
            .filter(|key| key.owner == *owner)
            .cloned()
            .collect();
        keys.sort_by_key(|key| key.version);
        keys
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<KeyId, WrappedKey>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn insert(&self, key: &WrappedKey) -> Result<(), KeyStoreError> {
        let mut keys = self.lock();
        let taken = keys.contains_key(&key.id)
            || keys
                .values()
                .any(|existing| existing.owner == key.owner && existing.version == key.version);
        if taken {
            return Err(KeyStoreError::Duplicate);
        }
        keys.insert(key.id, key.clone());
        Ok(())
    }

    async fn get(&self, id: KeyId) -> Result<Option<WrappedKey>, KeyStoreError> {
        Ok(self.lock().get(&id).cloned())
    }

    async fn latest(&self, owner: &KeyOwner) -> Result<Option<WrappedKey>, KeyStoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|key| key.owner == *owner)
            .max_by_key(|key| key.version)
            .cloned())
    }

    async fn destroy(&self, owner: &KeyOwner) -> Result<u64, KeyStoreError> {
        let mut destroyed = 0;
        for key in self.lock().values_mut() {
            if key.owner == *owner && key.material.take().is_some() {
                destroyed += 1;
            }
        }
        Ok(destroyed)
    }
}

/// The [`KeyStore`] contract. Panics, naming the broken rule, on any violation.
///
/// Checks: insert then get round-trips every field; unknown ids and owners read as
/// `None`; `latest` is the highest version; a second key with the same owner and
/// version, or the same id, is [`KeyStoreError::Duplicate`] and changes nothing;
/// `destroy` erases the material of exactly that owner's keys (rows stay, `latest`
/// still returns the destroyed row), returns the count, and returns 0 when repeated;
/// an organisation's destruction leaves its subjects' keys alone, and vice versa.
pub async fn key_store_contract(store: &dyn KeyStore) {
    let organisation = OrganisationId::new();
    let subject = SubjectId::new();
    let other_subject = SubjectId::new();
    let org_owner = KeyOwner::Organisation(organisation);
    let subject_owner = KeyOwner::Subject {
        organisation,
        subject,
    };
    let other_owner = KeyOwner::Subject {
        organisation,
        subject: other_subject,
    };
    // Whole seconds: adapters need not keep sub-microsecond precision.
    let at = |offset: i64| {
        DateTime::<Utc>::from_timestamp(1_767_225_600 + offset, 0).expect("a valid timestamp")
    };
    let key =
        |owner: KeyOwner, version: u32, wrapped_by: KeyId, fill: u8, offset: i64| WrappedKey {
            id: KeyId::new(),
            owner,
            version,
            wrapped_by,
            material: Some(vec![fill; 61]),
            created_at: at(offset),
        };

    let master = KeyId::new();
    let org_v1 = key(org_owner, 1, master, 0x01, 0);
    let subject_v1 = key(subject_owner, 1, org_v1.id, 0x02, 1);
    let subject_v2 = key(subject_owner, 2, org_v1.id, 0x03, 2);
    let other_v1 = key(other_owner, 1, org_v1.id, 0x04, 3);

    assert!(
        store
            .latest(&subject_owner)
            .await
            .expect("latest")
            .is_none(),
        "latest of an owner without keys must be None"
    );
    assert!(
        store.get(KeyId::new()).await.expect("get").is_none(),
        "get of an unknown id must be None"
    );

    for row in [&org_v1, &subject_v1, &subject_v2, &other_v1] {
        store
            .insert(row)
            .await
            .expect("insert of a new key must succeed");
    }
    for row in [&org_v1, &subject_v1, &subject_v2, &other_v1] {
        let back = store
            .get(row.id)
            .await
            .expect("get")
            .expect("inserted key must be found");
        assert_eq!(&back, row, "get must return the row exactly as inserted");
    }
    assert_eq!(
        store.latest(&subject_owner).await.expect("latest").as_ref(),
        Some(&subject_v2),
        "latest must be the highest version"
    );
    assert_eq!(
        store.latest(&org_owner).await.expect("latest").as_ref(),
        Some(&org_v1),
        "latest of the organisation must be its own key, not a subject's"
    );

    let clash = key(subject_owner, 2, org_v1.id, 0x05, 4);
    assert!(
        matches!(store.insert(&clash).await, Err(KeyStoreError::Duplicate)),
        "a second key with the same owner and version must be Duplicate"
    );
    assert!(
        store.get(clash.id).await.expect("get").is_none(),
        "a Duplicate insert must not store anything"
    );
    let same_id = WrappedKey {
        version: 3,
        ..subject_v1.clone()
    };
    assert!(
        matches!(store.insert(&same_id).await, Err(KeyStoreError::Duplicate)),
        "a second key with the same id must be Duplicate"
    );
    assert_eq!(
        store.latest(&subject_owner).await.expect("latest").as_ref(),
        Some(&subject_v2),
        "a Duplicate insert must not change latest"
    );
    let other_org_same_version = key(
        KeyOwner::Organisation(OrganisationId::new()),
        1,
        master,
        0x06,
        5,
    );
    store
        .insert(&other_org_same_version)
        .await
        .expect("the same version under another owner must be accepted");

    assert_eq!(
        store.destroy(&subject_owner).await.expect("destroy"),
        2,
        "destroy must return how many keys it destroyed"
    );
    for row in [&subject_v1, &subject_v2] {
        let back = store
            .get(row.id)
            .await
            .expect("get")
            .expect("destroyed rows must stay");
        assert_eq!(back.material, None, "destroy must erase the material");
        assert_eq!(
            WrappedKey {
                material: None,
                ..row.clone()
            },
            back,
            "destroy must change nothing but the material"
        );
    }
    let latest = store
        .latest(&subject_owner)
        .await
        .expect("latest")
        .expect("latest must still return a destroyed key");
    assert_eq!(
        latest.id, subject_v2.id,
        "latest must include destroyed keys"
    );
    assert!(
        latest.is_destroyed(),
        "latest must show the key as destroyed"
    );
    for row in [&org_v1, &other_v1, &other_org_same_version] {
        assert_eq!(
            store.get(row.id).await.expect("get").as_ref(),
            Some(row),
            "destroy must not touch other owners' keys"
        );
    }
    assert_eq!(
        store.destroy(&subject_owner).await.expect("destroy"),
        0,
        "a repeated destroy must return 0"
    );
    assert_eq!(
        store
            .destroy(&KeyOwner::Subject {
                organisation,
                subject: SubjectId::new()
            })
            .await
            .expect("destroy"),
        0,
        "destroying an owner without keys must return 0"
    );

    assert_eq!(
        store.destroy(&org_owner).await.expect("destroy"),
        1,
        "destroying an organisation must destroy its own key"
    );
    assert_eq!(
        store.get(other_v1.id).await.expect("get").as_ref(),
        Some(&other_v1),
        "destroying an organisation must not touch its subjects' rows"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_key_store_passes_the_contract() {
        key_store_contract(&MemoryKeyStore::new()).await;
    }

    /// The contract must be able to fail: a store that forgets to report duplicates.
    #[tokio::test]
    #[should_panic(expected = "Duplicate")]
    async fn contract_catches_a_store_without_duplicate_detection() {
        #[derive(Debug, Default)]
        struct Lax(MemoryKeyStore);

        #[async_trait]
        impl KeyStore for Lax {
            async fn insert(&self, key: &WrappedKey) -> Result<(), KeyStoreError> {
                self.0.lock().insert(key.id, key.clone());
                Ok(())
            }
            async fn get(&self, id: KeyId) -> Result<Option<WrappedKey>, KeyStoreError> {
                self.0.get(id).await
            }
            async fn latest(&self, owner: &KeyOwner) -> Result<Option<WrappedKey>, KeyStoreError> {
                self.0.latest(owner).await
            }
            async fn destroy(&self, owner: &KeyOwner) -> Result<u64, KeyStoreError> {
                self.0.destroy(owner).await
            }
        }

        key_store_contract(&Lax::default()).await;
    }
}
