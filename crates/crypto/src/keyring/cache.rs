//! The keyring's bounded, time-limited cache of unwrapped keys.
//!
//! Two maps share one policy: `by_id` (any key that was unwrapped, for decryption)
//! and `current` (each owner's newest key, for encryption). An entry lives for the
//! configured TTL, measured on the injected [`kernel::Clock`]; that TTL bounds how
//! long a key destroyed by another process keeps working here. Each map holds at most
//! `capacity` entries: when full, expired entries go first, then the one closest to
//! expiry. Eviction by [`KeyCache::evict`] (crypto-shredding through this keyring)
//! also revokes the keys, so [`super::SubjectCipher`] handles stop working at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use ring::aead::LessSafeKey;

use crate::{KeyId, KeyOwner};

/// An unwrapped key, shared by the cache and the handles built from it.
pub(crate) struct LiveKey {
    pub(crate) id: KeyId,
    pub(crate) owner: KeyOwner,
    pub(crate) aead: LessSafeKey,
    revoked: AtomicBool,
}

impl LiveKey {
    pub(crate) const fn new(id: KeyId, owner: KeyOwner, aead: LessSafeKey) -> Self {
        Self {
            id,
            owner,
            aead,
            revoked: AtomicBool::new(false),
        }
    }

    /// Whether the key was shredded through this process's keyring.
    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }
}

struct Entry {
    key: Arc<LiveKey>,
    expires_at: DateTime<Utc>,
}

/// See the module documentation.
pub(crate) struct KeyCache {
    capacity: usize,
    by_id: HashMap<KeyId, Entry>,
    current: HashMap<KeyOwner, Entry>,
}

impl KeyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            by_id: HashMap::new(),
            current: HashMap::new(),
        }
    }

    /// The unexpired key with this id.
    pub(crate) fn get(&mut self, id: KeyId, now: DateTime<Utc>) -> Option<Arc<LiveKey>> {
        lookup(&mut self.by_id, &id, now)
    }

    /// The owner's unexpired current key.
    pub(crate) fn current(&mut self, owner: &KeyOwner, now: DateTime<Utc>) -> Option<Arc<LiveKey>> {
        lookup(&mut self.current, owner, now)
    }

    /// Remembers a key by id until `expires_at`.
    pub(crate) fn put(
        &mut self,
        key: &Arc<LiveKey>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let entry = Entry {
            key: Arc::clone(key),
            expires_at,
        };
        insert_bounded(&mut self.by_id, self.capacity, key.id, entry, now);
    }

    /// Remembers a key by id and as its owner's current key until `expires_at`.
    pub(crate) fn put_current(
        &mut self,
        key: &Arc<LiveKey>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        self.put(key, expires_at, now);
        let entry = Entry {
            key: Arc::clone(key),
            expires_at,
        };
        insert_bounded(&mut self.current, self.capacity, key.owner, entry, now);
    }

    /// Drops and revokes every key whose owner matches.
    pub(crate) fn evict(&mut self, matches: impl Fn(&KeyOwner) -> bool) {
        evict_from(&mut self.by_id, &matches);
        evict_from(&mut self.current, &matches);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.by_id.len(), self.current.len())
    }
}

fn evict_from<K>(map: &mut HashMap<K, Entry>, matches: &impl Fn(&KeyOwner) -> bool) {
    map.retain(|_, entry| {
        let hit = matches(&entry.key.owner);
        if hit {
            entry.key.revoke();
        }
        !hit
    });
}

fn lookup<K: Hash + Eq>(
    map: &mut HashMap<K, Entry>,
    key: &K,
    now: DateTime<Utc>,
) -> Option<Arc<LiveKey>> {
    match map.get(key) {
        Some(entry) if entry.expires_at > now => Some(Arc::clone(&entry.key)),
        Some(_) => {
            map.remove(key);
            None
        }
        None => None,
    }
}

fn insert_bounded<K: Hash + Eq + Copy>(
    map: &mut HashMap<K, Entry>,
    capacity: usize,
    key: K,
    entry: Entry,
    now: DateTime<Utc>,
) {
    if capacity == 0 || entry.expires_at <= now {
        return;
    }
    if !map.contains_key(&key) && map.len() >= capacity {
        map.retain(|_, existing| existing.expires_at > now);
        if map.len() >= capacity {
            let soonest = map
                .iter()
                .min_by_key(|(_, existing)| existing.expires_at)
                .map(|(k, _)| *k);
            if let Some(soonest) = soonest {
                map.remove(&soonest);
            }
        }
    }
    map.insert(key, entry);
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use kernel::OrganisationId;

    use super::*;
    use crate::master_key::aes_256_gcm;

    fn key(owner: KeyOwner) -> Arc<LiveKey> {
        Arc::new(LiveKey::new(KeyId::new(), owner, aes_256_gcm(&[1; 32])))
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let now = Utc::now();
        let mut cache = KeyCache::new(2);
        let keys: Vec<_> = (0..3)
            .map(|_| key(KeyOwner::Organisation(OrganisationId::new())))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let ttl = Duration::seconds(10 + i64::try_from(i).expect("small"));
            cache.put_current(k, now + ttl, now);
        }
        assert_eq!(cache.len(), (2, 2));
        assert!(
            cache.get(keys[0].id, now).is_none(),
            "the soonest to expire went first"
        );
        assert!(cache.get(keys[2].id, now).is_some());
        assert!(cache.get(keys[2].id, now + Duration::seconds(13)).is_none());
        assert!(
            cache
                .current(&keys[1].owner, now + Duration::seconds(11))
                .is_none()
        );
    }

    #[test]
    fn eviction_revokes() {
        let now = Utc::now();
        let mut cache = KeyCache::new(10);
        let k = key(KeyOwner::Organisation(OrganisationId::new()));
        cache.put_current(&k, now + Duration::seconds(60), now);
        let owner = k.owner;
        cache.evict(|o| *o == owner);
        assert!(k.is_revoked());
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let now = Utc::now();
        let mut cache = KeyCache::new(0);
        let k = key(KeyOwner::Organisation(OrganisationId::new()));
        cache.put_current(&k, now + Duration::seconds(60), now);
        assert!(cache.get(k.id, now).is_none());
    }
}
