//! The [`Keyring`] service: the key hierarchy, field encryption and crypto-shredding.
//!
//! ```text
//! MasterKey (configuration)
//!   └─ wraps  organisation key (KEK), one current version per organisation
//!        └─ wraps  subject data key (DEK), one current version per data subject
//!             └─ seals  field envelopes (see the `envelope` module)
//! ```
//!
//! Keys are created on first use and stored wrapped through the [`KeyStore`] port
//! (wrapped-key layout in the `wrap` module). Creation is race-safe: when two
//! processes create the same owner's key, the store answers the loser with
//! [`KeyStoreError::Duplicate`] and the loser adopts the winner's key.
//!
//! Erasure is crypto-shredding: [`Keyring::shred_subject`] destroys the subject's
//! keys, after which every ciphertext of that subject fails with
//! [`KeyringError::KeyDestroyed`], and no new key is ever created for that subject
//! ([`KeyringError::SubjectErased`]). Unwrapped keys are cached for a TTL (60 s by
//! default): a key destroyed by another process keeps working here for at most that
//! long; one destroyed through this keyring stops at once, including in
//! [`SubjectCipher`] handles already handed out.

mod cache;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kernel::{Clock, OrganisationId, Sensitive, SubjectId};
use ring::rand::SystemRandom;

use self::cache::{KeyCache, LiveKey};
use crate::envelope::{self, EnvelopeError, FieldBinding, Parsed};
use crate::master_key::aes_256_gcm;
use crate::random::{self, RandomnessUnavailable};
use crate::wrap::{self, WrapContext};
use crate::{KeyId, KeyOwner, KeyStore, KeyStoreError, MasterKey, WrappedKey};

/// A keyring operation failed. Messages name key ids (which are not secret) but never
/// key material, plaintext or ciphertext.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The key that sealed this value, or the organisation key wrapping it, was
    /// destroyed (crypto-shredded). The value is gone for good.
    #[error("key {0} was destroyed; data encrypted under it is unrecoverable")]
    KeyDestroyed(KeyId),
    /// The subject was erased: its keys were destroyed and no new key is created.
    #[error("the data subject's keys were destroyed (erased subject); no new key is created")]
    SubjectErased,
    /// The organisation's keys were destroyed and no new key is created under it.
    #[error("the organisation's keys were destroyed; no new key is created")]
    OrganisationErased,
    /// The envelope names a key the store does not have.
    #[error("key {0} does not exist")]
    KeyNotFound(KeyId),
    /// The envelope names an organisation key; only subject data keys seal fields.
    #[error("key {0} is not a data key")]
    NotADataKey(KeyId),
    /// The organisation key was wrapped by another master key (one not loaded here).
    #[error("key {0} is wrapped by a different master key")]
    WrongMasterKey(KeyId),
    /// The stored key failed to unwrap: its row was altered, moved to another owner,
    /// or points at the wrong wrapping key.
    #[error("key {0} failed to unwrap: its stored row was altered or moved")]
    KeyUnwrap(KeyId),
    /// [`SubjectCipher::open`] was given an envelope sealed under another key (for
    /// example an older version); decrypt it with [`Keyring::decrypt`].
    #[error("the envelope was sealed under key {0}, not this handle's key")]
    OtherKey(KeyId),
    /// The decrypted value is not UTF-8 (from the string helpers).
    #[error("the decrypted value is not UTF-8")]
    NotUtf8,
    /// The envelope is malformed or does not authenticate.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// No random key or nonce could be drawn.
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
    /// The key store failed.
    #[error("the key store failed")]
    Store(#[source] KeyStoreError),
    /// The store reported a duplicate key but then returned none: it breaks the
    /// [`KeyStore`] contract.
    #[error("the key store reported a duplicate key but then returned none")]
    StoreInconsistent,
}

/// How the keyring caches unwrapped keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyringConfig {
    /// How long an unwrapped key is trusted without asking the store again; the bound
    /// on how long a key destroyed by another process keeps working here. Zero
    /// disables caching.
    pub cache_ttl: Duration,
    /// At most this many keys are cached (per map: by id, and current per owner).
    pub cache_capacity: usize,
}

impl Default for KeyringConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
        }
    }
}

/// The key hierarchy and field encryption service. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    master: MasterKey,
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    ttl: TimeDelta,
    cache: Mutex<KeyCache>,
    rng: SystemRandom,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Keyring {
    /// A keyring with the default cache settings.
    #[must_use]
    pub fn new(master: MasterKey, store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_config(master, store, clock, KeyringConfig::default())
    }

    /// A keyring with explicit cache settings.
    #[must_use]
    pub fn with_config(
        master: MasterKey,
        store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
        config: KeyringConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                master,
                store,
                clock,
                ttl: TimeDelta::from_std(config.cache_ttl).unwrap_or(TimeDelta::MAX),
                cache: Mutex::new(KeyCache::new(config.cache_capacity)),
                rng: SystemRandom::new(),
            }),
        }
    }

    /// The fingerprint of the master key in use.
    #[must_use]
    pub fn master_fingerprint(&self) -> KeyId {
        self.inner.master.fingerprint()
    }

    /// The id of the organisation's current key, created on first use.
    ///
    /// # Errors
    /// [`KeyringError::OrganisationErased`], store and unwrap failures.
    pub async fn organisation_key(
        &self,
        organisation: OrganisationId,
    ) -> Result<KeyId, KeyringError> {
        let key = self.current(&KeyOwner::Organisation(organisation)).await?;
        Ok(key.id)
    }

    /// The id of the subject's current data key, created on first use under the
    /// organisation's current key.
    ///
    /// # Errors
    /// [`KeyringError::SubjectErased`] for an erased subject, store and unwrap
    /// failures.
    pub async fn subject_key(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<KeyId, KeyringError> {
        let key = self.current(&subject_owner(organisation, subject)).await?;
        Ok(key.id)
    }

    /// Resolves the subject's current data key once, for sealing and opening many
    /// fields synchronously (no store access). Keep the handle for one request or
    /// batch: it does not notice a destruction by another process, only one through
    /// this keyring.
    ///
    /// # Errors
    /// As [`Keyring::subject_key`].
    pub async fn subject_cipher(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<SubjectCipher, KeyringError> {
        let key = self.current(&subject_owner(organisation, subject)).await?;
        Ok(SubjectCipher {
            key,
            rng: self.inner.rng.clone(),
        })
    }

    /// Encrypts one field value of `subject` under its current data key, bound to
    /// `binding`. Strings: pass `value.as_bytes()`.
    ///
    /// # Errors
    /// As [`Keyring::subject_key`], plus [`KeyringError::Envelope`] and
    /// [`KeyringError::Randomness`].
    pub async fn encrypt(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
        binding: FieldBinding,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyringError> {
        let key = self.current(&subject_owner(organisation, subject)).await?;
        seal_with(&key, &binding, plaintext, &self.inner.rng)
    }

    /// Decrypts an envelope written for `binding`, under whichever key it names.
    ///
    /// # Errors
    /// [`KeyringError::KeyDestroyed`] after crypto-shredding;
    /// [`KeyringError::Envelope`] for a truncated, unknown-version, altered or moved
    /// envelope; [`KeyringError::KeyNotFound`], [`KeyringError::NotADataKey`], store
    /// and unwrap failures.
    pub async fn decrypt(
        &self,
        binding: FieldBinding,
        envelope: &[u8],
    ) -> Result<Sensitive<Vec<u8>>, KeyringError> {
        let parsed = Parsed::parse(envelope)?;
        let key = self.data_key(parsed.key_id).await?;
        Ok(Sensitive::new(parsed.open(&key.aead, &binding)?))
    }

    /// [`Keyring::decrypt`] for a UTF-8 value.
    ///
    /// # Errors
    /// As [`Keyring::decrypt`], plus [`KeyringError::NotUtf8`].
    pub async fn decrypt_string(
        &self,
        binding: FieldBinding,
        envelope: &[u8],
    ) -> Result<Sensitive<String>, KeyringError> {
        into_string(self.decrypt(binding, envelope).await?)
    }

    /// Creates the subject's next data key; new encryptions use it, and older
    /// ciphertexts still decrypt because each names its key. Returns the current key
    /// id afterwards (another process's, if it rotated at the same moment).
    ///
    /// # Errors
    /// [`KeyringError::SubjectErased`], store failures.
    pub async fn rotate_subject_key(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<KeyId, KeyringError> {
        self.rotate(&subject_owner(organisation, subject)).await
    }

    /// Creates the organisation's next key; new subject keys are wrapped by it, and
    /// existing ones stay wrapped by (and readable through) the older version.
    ///
    /// # Errors
    /// [`KeyringError::OrganisationErased`], store failures.
    pub async fn rotate_organisation_key(
        &self,
        organisation: OrganisationId,
    ) -> Result<KeyId, KeyringError> {
        self.rotate(&KeyOwner::Organisation(organisation)).await
    }

    /// Crypto-shreds a data subject: destroys all its data keys and evicts them from
    /// this keyring at once. Returns how many keys were destroyed (0 on a repeat).
    ///
    /// # Errors
    /// [`KeyringError::Store`].
    pub async fn shred_subject(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<u64, KeyringError> {
        let owner = subject_owner(organisation, subject);
        let destroyed = self
            .inner
            .store
            .destroy(&owner)
            .await
            .map_err(KeyringError::Store)?;
        self.cache().evict(|cached| *cached == owner);
        Ok(destroyed)
    }

    /// Crypto-shreds an organisation: destroys its keys, which makes every subject key
    /// under it unreadable too. Returns how many organisation keys were destroyed.
    ///
    /// # Errors
    /// [`KeyringError::Store`].
    pub async fn shred_organisation(
        &self,
        organisation: OrganisationId,
    ) -> Result<u64, KeyringError> {
        let owner = KeyOwner::Organisation(organisation);
        let destroyed = self
            .inner
            .store
            .destroy(&owner)
            .await
            .map_err(KeyringError::Store)?;
        self.cache()
            .evict(|cached| cached.organisation() == organisation);
        Ok(destroyed)
    }

    /// The owner's current key: cached, stored, or created (version 1).
    async fn current(&self, owner: &KeyOwner) -> Result<Arc<LiveKey>, KeyringError> {
        let cached = self.cache().current(owner, self.now());
        if let Some(key) = cached {
            return Ok(key);
        }
        match self.latest(owner).await? {
            Some(row) => self.adopt_current(&row).await,
            None => self.create(owner, 1).await,
        }
    }

    /// [`Self::current`] behind a box, for the one recursive call (a subject key's
    /// creation needs its organisation's key).
    fn current_boxed<'a>(
        &'a self,
        owner: &'a KeyOwner,
    ) -> BoxFuture<'a, Result<Arc<LiveKey>, KeyringError>> {
        Box::pin(self.current(owner))
    }

    async fn rotate(&self, owner: &KeyOwner) -> Result<KeyId, KeyringError> {
        let next = match self.latest(owner).await? {
            None => 1,
            Some(row) if row.is_destroyed() => return Err(erased(owner)),
            // At u32::MAX the insert reports a duplicate and the latest key is kept.
            Some(row) => row.version.saturating_add(1),
        };
        Ok(self.create(owner, next).await?.id)
    }

    /// Creates, wraps and stores the owner's key `version`. If the store already has
    /// that version (a concurrent creator won), adopts the store's latest instead.
    async fn create(&self, owner: &KeyOwner, version: u32) -> Result<Arc<LiveKey>, KeyringError> {
        let kek = match owner {
            KeyOwner::Organisation(_) => None,
            KeyOwner::Subject { organisation, .. } => {
                let organisation_owner = KeyOwner::Organisation(*organisation);
                Some(self.current_boxed(&organisation_owner).await?)
            }
        };
        let (wrapping_key, wrapped_by) = match &kek {
            Some(kek) => (&kek.aead, kek.id),
            None => (self.inner.master.aead(), self.inner.master.fingerprint()),
        };
        let id = KeyId::new();
        let context = WrapContext {
            id,
            owner,
            version,
            wrapped_by,
        };
        let plain: [u8; wrap::KEY_LEN] = random::bytes(&self.inner.rng)?;
        let material = wrap::wrap(wrapping_key, &context, &plain, &self.inner.rng)?;
        let row = WrappedKey {
            id,
            owner: *owner,
            version,
            wrapped_by,
            material: Some(material),
            created_at: self.now(),
        };
        match self.inner.store.insert(&row).await {
            Ok(()) => {
                let key = Arc::new(LiveKey::new(id, *owner, aes_256_gcm(&plain)));
                self.remember_current(&key);
                Ok(key)
            }
            Err(KeyStoreError::Duplicate) => match self.latest(owner).await? {
                Some(winner) => self.adopt_current(&winner).await,
                None => Err(KeyringError::StoreInconsistent),
            },
            Err(error) => Err(KeyringError::Store(error)),
        }
    }

    /// Makes a stored latest row the owner's cached current key.
    async fn adopt_current(&self, row: &WrappedKey) -> Result<Arc<LiveKey>, KeyringError> {
        if row.is_destroyed() {
            return Err(erased(&row.owner));
        }
        let key = self.unwrap_row(row).await?;
        self.remember_current(&key);
        Ok(key)
    }

    /// The subject data key with this id, for decryption.
    async fn data_key(&self, id: KeyId) -> Result<Arc<LiveKey>, KeyringError> {
        let cached = self.cache().get(id, self.now());
        let key = match cached {
            Some(key) => key,
            None => {
                let row = self.get(id).await?;
                if !matches!(row.owner, KeyOwner::Subject { .. }) {
                    return Err(KeyringError::NotADataKey(id));
                }
                self.unwrap_row(&row).await?
            }
        };
        match key.owner {
            KeyOwner::Subject { .. } => Ok(key),
            KeyOwner::Organisation(_) => Err(KeyringError::NotADataKey(id)),
        }
    }

    /// Unwraps a stored key (organisation or subject) and caches it by id.
    async fn unwrap_row(&self, row: &WrappedKey) -> Result<Arc<LiveKey>, KeyringError> {
        let KeyOwner::Subject { organisation, .. } = row.owner else {
            return self.unwrap_organisation_row(row);
        };
        let material = row
            .material
            .as_deref()
            .ok_or(KeyringError::KeyDestroyed(row.id))?;
        let kek = self.organisation_key_by_id(row.wrapped_by, row.id).await?;
        if kek.owner != KeyOwner::Organisation(organisation) {
            return Err(KeyringError::KeyUnwrap(row.id));
        }
        let plain = wrap::unwrap(&kek.aead, &wrap_context(row), material)
            .map_err(|_| KeyringError::KeyUnwrap(row.id))?;
        Ok(self.remember(row, &plain))
    }

    /// Unwraps a stored organisation key under the master key and caches it by id.
    fn unwrap_organisation_row(&self, row: &WrappedKey) -> Result<Arc<LiveKey>, KeyringError> {
        let material = row
            .material
            .as_deref()
            .ok_or(KeyringError::KeyDestroyed(row.id))?;
        if row.wrapped_by != self.inner.master.fingerprint() {
            return Err(KeyringError::WrongMasterKey(row.id));
        }
        let plain = wrap::unwrap(self.inner.master.aead(), &wrap_context(row), material)
            .map_err(|_| KeyringError::KeyUnwrap(row.id))?;
        Ok(self.remember(row, &plain))
    }

    /// The organisation key `id` that, according to its row, wraps the subject key
    /// `wrapped`.
    async fn organisation_key_by_id(
        &self,
        id: KeyId,
        wrapped: KeyId,
    ) -> Result<Arc<LiveKey>, KeyringError> {
        let cached = self.cache().get(id, self.now());
        if let Some(key) = cached {
            return Ok(key);
        }
        let row = self.get(id).await.map_err(|error| match error {
            KeyringError::KeyNotFound(_) => KeyringError::KeyUnwrap(wrapped),
            other => other,
        })?;
        if !matches!(row.owner, KeyOwner::Organisation(_)) {
            return Err(KeyringError::KeyUnwrap(wrapped));
        }
        self.unwrap_organisation_row(&row)
    }

    /// Caches an unwrapped key by id.
    fn remember(&self, row: &WrappedKey, plain: &[u8; wrap::KEY_LEN]) -> Arc<LiveKey> {
        let key = Arc::new(LiveKey::new(row.id, row.owner, aes_256_gcm(plain)));
        let now = self.now();
        self.cache().put(&key, self.expiry(now), now);
        key
    }

    async fn get(&self, id: KeyId) -> Result<WrappedKey, KeyringError> {
        self.inner
            .store
            .get(id)
            .await
            .map_err(KeyringError::Store)?
            .ok_or(KeyringError::KeyNotFound(id))
    }

    async fn latest(&self, owner: &KeyOwner) -> Result<Option<WrappedKey>, KeyringError> {
        self.inner
            .store
            .latest(owner)
            .await
            .map_err(KeyringError::Store)
    }

    fn remember_current(&self, key: &Arc<LiveKey>) {
        let now = self.now();
        self.cache().put_current(key, self.expiry(now), now);
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(self.inner.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn cache(&self) -> MutexGuard<'_, KeyCache> {
        // The cache holds no invariant a panic could break halfway.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("master", &self.inner.master)
            .field("cache_ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// One subject's current data key, resolved once: seals and opens fields
/// synchronously without touching the store. Cheap to clone. Obtained from
/// [`Keyring::subject_cipher`].
#[derive(Clone)]
pub struct SubjectCipher {
    key: Arc<LiveKey>,
    rng: SystemRandom,
}

impl SubjectCipher {
    /// The data key this handle seals under.
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        self.key.id
    }

    /// Encrypts one field value, bound to `binding`.
    ///
    /// # Errors
    /// [`KeyringError::KeyDestroyed`] once the subject was shredded through the
    /// keyring; [`KeyringError::Envelope`], [`KeyringError::Randomness`].
    pub fn seal(&self, binding: FieldBinding, plaintext: &[u8]) -> Result<Vec<u8>, KeyringError> {
        self.check_live()?;
        seal_with(&self.key, &binding, plaintext, &self.rng)
    }

    /// Decrypts an envelope sealed under this handle's key for `binding`.
    ///
    /// # Errors
    /// [`KeyringError::OtherKey`] for an envelope sealed under another key (e.g. an
    /// older version: use [`Keyring::decrypt`]); [`KeyringError::KeyDestroyed`];
    /// [`KeyringError::Envelope`].
    pub fn open(
        &self,
        binding: FieldBinding,
        envelope: &[u8],
    ) -> Result<Sensitive<Vec<u8>>, KeyringError> {
        self.check_live()?;
        let parsed = Parsed::parse(envelope)?;
        if parsed.key_id != self.key.id {
            return Err(KeyringError::OtherKey(parsed.key_id));
        }
        Ok(Sensitive::new(parsed.open(&self.key.aead, &binding)?))
    }

    /// [`SubjectCipher::open`] for a UTF-8 value.
    ///
    /// # Errors
    /// As [`SubjectCipher::open`], plus [`KeyringError::NotUtf8`].
    pub fn open_string(
        &self,
        binding: FieldBinding,
        envelope: &[u8],
    ) -> Result<Sensitive<String>, KeyringError> {
        into_string(self.open(binding, envelope)?)
    }

    fn check_live(&self) -> Result<(), KeyringError> {
        if self.key.is_revoked() {
            Err(KeyringError::KeyDestroyed(self.key.id))
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for SubjectCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectCipher")
            .field("key_id", &self.key.id)
            .field("owner", &self.key.owner)
            .finish_non_exhaustive()
    }
}

fn seal_with(
    key: &LiveKey,
    binding: &FieldBinding,
    plaintext: &[u8],
    rng: &SystemRandom,
) -> Result<Vec<u8>, KeyringError> {
    Ok(envelope::seal(&key.aead, key.id, binding, plaintext, rng)?)
}

fn into_string(bytes: Sensitive<Vec<u8>>) -> Result<Sensitive<String>, KeyringError> {
    String::from_utf8(bytes.into_inner())
        .map(Sensitive::new)
        .map_err(|_| KeyringError::NotUtf8)
}

const fn wrap_context(row: &WrappedKey) -> WrapContext<'_> {
    WrapContext {
        id: row.id,
        owner: &row.owner,
        version: row.version,
        wrapped_by: row.wrapped_by,
    }
}

const fn subject_owner(organisation: OrganisationId, subject: SubjectId) -> KeyOwner {
    KeyOwner::Subject {
        organisation,
        subject,
    }
}

const fn erased(owner: &KeyOwner) -> KeyringError {
    match owner {
        KeyOwner::Organisation(_) => KeyringError::OrganisationErased,
        KeyOwner::Subject { .. } => KeyringError::SubjectErased,
    }
}
