//! Behavioural tests of the keyring: round trips, crypto-shredding, binding, tampering,
//! rotation, row swapping and concurrent creation, against [`MemoryKeyStore`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::{ManualClock, OrganisationId, SubjectId};
use tokio::sync::Barrier;
use uuid::Uuid;

use super::*;
use crate::testing::MemoryKeyStore;

struct Fixture {
    store: Arc<MemoryKeyStore>,
    clock: Arc<ManualClock>,
    keyring: Keyring,
    organisation: OrganisationId,
    subject: SubjectId,
}

const MASTER: [u8; 32] = [0x5c; 32];

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryKeyStore::new());
    let clock = Arc::new(ManualClock::new(start()));
    let keyring = keyring_on(&store, &clock, MASTER);
    Fixture {
        store,
        clock,
        keyring,
        organisation: OrganisationId::new(),
        subject: SubjectId::new(),
    }
}

fn keyring_on(store: &Arc<MemoryKeyStore>, clock: &Arc<ManualClock>, master: [u8; 32]) -> Keyring {
    Keyring::new(
        MasterKey::from_bytes(master),
        Arc::clone(store) as Arc<dyn KeyStore>,
        Arc::clone(clock) as Arc<dyn Clock>,
    )
}

fn binding(field: &'static str) -> FieldBinding {
    FieldBinding::new(Uuid::now_v7(), field)
}

impl Fixture {
    fn subject_owner(&self) -> KeyOwner {
        subject_owner(self.organisation, self.subject)
    }

    async fn encrypt(&self, binding: FieldBinding, plaintext: &[u8]) -> Vec<u8> {
        self.keyring
            .encrypt(self.organisation, self.subject, binding, plaintext)
            .await
            .expect("encrypts")
    }
}

#[tokio::test]
async fn round_trip_creates_the_hierarchy_on_first_use() {
    let f = fixture();
    let field = binding("patient.diagnosis");
    let envelope = f.encrypt(field, "F32.1".as_bytes()).await;

    let subject_keys = f.store.keys_of(&f.subject_owner());
    let org_keys = f.store.keys_of(&KeyOwner::Organisation(f.organisation));
    assert_eq!((subject_keys.len(), org_keys.len()), (1, 1));
    assert_eq!(org_keys[0].wrapped_by, f.keyring.master_fingerprint());
    assert_eq!(subject_keys[0].wrapped_by, org_keys[0].id);
    assert_eq!(subject_keys[0].created_at, start());
    assert_eq!(envelope::key_id_of(&envelope), Ok(subject_keys[0].id));
    assert_eq!(
        f.keyring
            .subject_key(f.organisation, f.subject)
            .await
            .expect("key"),
        subject_keys[0].id
    );
    assert_eq!(
        f.keyring
            .organisation_key(f.organisation)
            .await
            .expect("key"),
        org_keys[0].id
    );

    let plain = f
        .keyring
        .decrypt_string(field, &envelope)
        .await
        .expect("decrypts");
    assert_eq!(plain.expose(), "F32.1");
    assert_eq!(format!("{plain:?}"), "[redacted]");

    // A fresh keyring (another process, empty cache) reads the same hierarchy.
    let other = keyring_on(&f.store, &f.clock, MASTER);
    let plain = other.decrypt(field, &envelope).await.expect("decrypts");
    assert_eq!(plain.expose().as_slice(), b"F32.1");
}

#[tokio::test]
async fn shredding_makes_ciphertexts_unrecoverable() {
    let f = fixture();
    let field = binding("patient.diagnosis");
    let envelope = f.encrypt(field, b"F32.1").await;
    let handle = f
        .keyring
        .subject_cipher(f.organisation, f.subject)
        .await
        .expect("cipher");
    let key_id = handle.key_id();
    let sealed_by_handle = handle.seal(field, b"Z63.4").expect("seals");

    assert_eq!(
        f.keyring
            .shred_subject(f.organisation, f.subject)
            .await
            .expect("shreds"),
        1
    );

    let err = f
        .keyring
        .decrypt(field, &envelope)
        .await
        .expect_err("destroyed");
    assert!(
        matches!(err, KeyringError::KeyDestroyed(id) if id == key_id),
        "{err:?}"
    );
    assert!(matches!(
        handle.open(field, &sealed_by_handle),
        Err(KeyringError::KeyDestroyed(_))
    ));
    assert!(matches!(
        handle.seal(field, b"x"),
        Err(KeyringError::KeyDestroyed(_))
    ));
    // Another process with an empty cache sees the same.
    let other = keyring_on(&f.store, &f.clock, MASTER);
    assert!(matches!(
        other.decrypt(field, &envelope).await,
        Err(KeyringError::KeyDestroyed(_))
    ));
    // No new key is ever created for an erased subject.
    assert!(matches!(
        f.keyring
            .encrypt(f.organisation, f.subject, field, b"again")
            .await,
        Err(KeyringError::SubjectErased)
    ));
    assert!(matches!(
        f.keyring.subject_key(f.organisation, f.subject).await,
        Err(KeyringError::SubjectErased)
    ));
    assert!(matches!(
        f.keyring
            .rotate_subject_key(f.organisation, f.subject)
            .await,
        Err(KeyringError::SubjectErased)
    ));
    assert_eq!(f.store.keys_of(&f.subject_owner()).len(), 1);
    assert_eq!(
        f.keyring
            .shred_subject(f.organisation, f.subject)
            .await
            .expect("repeat"),
        0
    );

    // Other subjects of the organisation are unaffected.
    let neighbour = SubjectId::new();
    let theirs = f
        .keyring
        .encrypt(f.organisation, neighbour, field, b"ok")
        .await
        .expect("encrypts");
    assert!(f.keyring.decrypt(field, &theirs).await.is_ok());
}

#[tokio::test]
async fn a_shred_elsewhere_takes_effect_here_within_the_ttl() {
    let f = fixture();
    let field = binding("note.body");
    let envelope = f.encrypt(field, b"text").await;
    let elsewhere = keyring_on(&f.store, &f.clock, MASTER);
    elsewhere
        .shred_subject(f.organisation, f.subject)
        .await
        .expect("shreds");

    // Still cached here...
    assert!(f.keyring.decrypt(field, &envelope).await.is_ok());
    f.clock.advance(TimeDelta::seconds(59));
    assert!(f.keyring.decrypt(field, &envelope).await.is_ok());
    // ...but not past the TTL.
    f.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(
        f.keyring.decrypt(field, &envelope).await,
        Err(KeyringError::KeyDestroyed(_))
    ));
    assert!(matches!(
        f.keyring
            .encrypt(f.organisation, f.subject, field, b"x")
            .await,
        Err(KeyringError::SubjectErased)
    ));
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_record_or_field_fails() {
    let f = fixture();
    let record_a = Uuid::now_v7();
    let envelope = f
        .encrypt(FieldBinding::new(record_a, "patient.diagnosis"), b"F32.1")
        .await;
    let record_b = FieldBinding::new(Uuid::now_v7(), "patient.diagnosis");
    let other_field = FieldBinding::new(record_a, "patient.allergies");
    for wrong in [record_b, other_field] {
        let err = f
            .keyring
            .decrypt(wrong, &envelope)
            .await
            .expect_err("moved");
        assert!(
            matches!(err, KeyringError::Envelope(EnvelopeError::Unauthentic)),
            "{err:?}"
        );
        assert!(!err.to_string().contains("F32.1"));
    }
    let cipher = f
        .keyring
        .subject_cipher(f.organisation, f.subject)
        .await
        .expect("cipher");
    assert!(cipher.open(record_b, &envelope).is_err());
    assert!(cipher.open(other_field, &envelope).is_err());
    let right = FieldBinding::new(record_a, "patient.diagnosis");
    assert_eq!(
        cipher
            .open(right, &envelope)
            .expect("opens")
            .expose()
            .as_slice(),
        b"F32.1"
    );
}

#[tokio::test]
async fn flipping_any_byte_of_an_envelope_fails() {
    let f = fixture();
    let field = binding("patient.diagnosis");
    let envelope = f.encrypt(field, b"F32.1 major depressive disorder").await;
    for i in 0..envelope.len() {
        let mut tampered = envelope.clone();
        tampered[i] ^= 0x20;
        assert!(
            f.keyring.decrypt(field, &tampered).await.is_err(),
            "byte {i} could be altered"
        );
    }
    assert!(matches!(
        f.keyring
            .decrypt(field, &envelope[..envelope.len() - 1])
            .await,
        Err(KeyringError::Envelope(EnvelopeError::Unauthentic))
    ));
    assert!(matches!(
        f.keyring.decrypt(field, &envelope[..10]).await,
        Err(KeyringError::Envelope(EnvelopeError::Truncated(10)))
    ));
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts_readable() {
    let f = fixture();
    let field = binding("patient.diagnosis");
    let old = f.encrypt(field, b"old").await;
    let v1 = f
        .keyring
        .subject_key(f.organisation, f.subject)
        .await
        .expect("v1");

    let v2 = f
        .keyring
        .rotate_subject_key(f.organisation, f.subject)
        .await
        .expect("rotates");
    assert_ne!(v1, v2);
    let versions: Vec<_> = f
        .store
        .keys_of(&f.subject_owner())
        .iter()
        .map(|k| (k.id, k.version))
        .collect();
    assert_eq!(versions, [(v1, 1), (v2, 2)]);

    let new = f.encrypt(field, b"new").await;
    assert_eq!(envelope::key_id_of(&new), Ok(v2));
    assert_eq!(envelope::key_id_of(&old), Ok(v1));
    // A fresh process agrees on the current key.
    let other = keyring_on(&f.store, &f.clock, MASTER);
    assert_eq!(
        other
            .subject_key(f.organisation, f.subject)
            .await
            .expect("key"),
        v2
    );
    for keyring in [&f.keyring, &other] {
        assert_eq!(
            keyring
                .decrypt(field, &old)
                .await
                .expect("old")
                .expose()
                .as_slice(),
            b"old"
        );
        assert_eq!(
            keyring
                .decrypt(field, &new)
                .await
                .expect("new")
                .expose()
                .as_slice(),
            b"new"
        );
    }
    let cipher = f
        .keyring
        .subject_cipher(f.organisation, f.subject)
        .await
        .expect("cipher");
    assert_eq!(cipher.key_id(), v2);
    assert!(matches!(cipher.open(field, &old), Err(KeyringError::OtherKey(id)) if id == v1));

    // Shredding destroys every version.
    assert_eq!(
        f.keyring
            .shred_subject(f.organisation, f.subject)
            .await
            .expect("shreds"),
        2
    );
    assert!(
        matches!(f.keyring.decrypt(field, &old).await, Err(KeyringError::KeyDestroyed(id)) if id == v1)
    );
    assert!(
        matches!(f.keyring.decrypt(field, &new).await, Err(KeyringError::KeyDestroyed(id)) if id == v2)
    );
}

#[tokio::test]
async fn organisation_rotation_and_shredding() {
    let f = fixture();
    let field = binding("note.body");
    let before = f.encrypt(field, b"before").await;
    let kek_v1 = f
        .keyring
        .organisation_key(f.organisation)
        .await
        .expect("kek");
    let kek_v2 = f
        .keyring
        .rotate_organisation_key(f.organisation)
        .await
        .expect("rotates");
    assert_ne!(kek_v1, kek_v2);

    let newcomer = SubjectId::new();
    let after = f
        .keyring
        .encrypt(f.organisation, newcomer, field, b"after")
        .await
        .expect("encrypts");
    let newcomer_key = &f.store.keys_of(&subject_owner(f.organisation, newcomer))[0];
    assert_eq!(newcomer_key.wrapped_by, kek_v2);

    let other = keyring_on(&f.store, &f.clock, MASTER);
    assert!(other.decrypt(field, &before).await.is_ok());
    assert!(other.decrypt(field, &after).await.is_ok());

    assert_eq!(
        f.keyring
            .shred_organisation(f.organisation)
            .await
            .expect("shreds"),
        2
    );
    for keyring in [&f.keyring, &keyring_on(&f.store, &f.clock, MASTER)] {
        for envelope in [&before, &after] {
            assert!(matches!(
                keyring.decrypt(field, envelope).await,
                Err(KeyringError::KeyDestroyed(_))
            ));
        }
        assert!(matches!(
            keyring
                .encrypt(f.organisation, SubjectId::new(), field, b"x")
                .await,
            Err(KeyringError::OrganisationErased)
        ));
    }
}

#[tokio::test]
async fn a_wrapped_key_moved_to_another_owner_fails_to_unwrap() {
    let f = fixture();
    let field = binding("patient.diagnosis");
    let envelope = f.encrypt(field, b"F32.1").await;
    let victim = f.store.keys_of(&f.subject_owner())[0].clone();
    let org_row = f.store.keys_of(&KeyOwner::Organisation(f.organisation))[0].clone();

    // An attacker with database access re-labels the victim's key row as another
    // subject's (same organisation), or moves it to another organisation.
    let other_org = OrganisationId::new();
    let tampered_owners = [
        subject_owner(f.organisation, SubjectId::new()),
        subject_owner(other_org, f.subject),
    ];
    for owner in tampered_owners {
        let store = Arc::new(MemoryKeyStore::new());
        store.insert(&org_row).await.expect("copies");
        let mut moved_org = org_row.clone();
        moved_org.id = KeyId::new();
        moved_org.owner = KeyOwner::Organisation(other_org);
        store.insert(&moved_org).await.expect("copies");
        store
            .insert(&WrappedKey {
                owner,
                ..victim.clone()
            })
            .await
            .expect("plants");
        let keyring = keyring_on(&store, &f.clock, MASTER);
        let err = keyring
            .decrypt(field, &envelope)
            .await
            .expect_err("swapped");
        assert!(
            matches!(err, KeyringError::KeyUnwrap(id) if id == victim.id),
            "{err:?}"
        );
    }

    // Same with a different version or wrapping key recorded.
    for row in [
        WrappedKey {
            version: 7,
            ..victim.clone()
        },
        WrappedKey {
            wrapped_by: KeyId::new(),
            ..victim.clone()
        },
    ] {
        let store = Arc::new(MemoryKeyStore::new());
        store.insert(&org_row).await.expect("copies");
        store.insert(&row).await.expect("plants");
        let keyring = keyring_on(&store, &f.clock, MASTER);
        assert!(matches!(
            keyring.decrypt(field, &envelope).await,
            Err(KeyringError::KeyUnwrap(_))
        ));
    }
}

#[tokio::test]
async fn another_master_key_cannot_read_the_hierarchy() {
    let f = fixture();
    let field = binding("note.body");
    let envelope = f.encrypt(field, b"text").await;
    let stranger = keyring_on(&f.store, &f.clock, [0x11; 32]);
    assert!(matches!(
        stranger.decrypt(field, &envelope).await,
        Err(KeyringError::WrongMasterKey(_))
    ));
}

#[tokio::test]
async fn envelopes_must_name_an_existing_data_key() {
    let f = fixture();
    let field = binding("note.body");
    let envelope = f.encrypt(field, b"text").await;
    let kek = f
        .keyring
        .organisation_key(f.organisation)
        .await
        .expect("kek");

    let mut named_kek = envelope.clone();
    named_kek[1..17].copy_from_slice(&kek.to_bytes());
    assert!(matches!(
        f.keyring.decrypt(field, &named_kek).await,
        Err(KeyringError::NotADataKey(id)) if id == kek
    ));
    let other = keyring_on(&f.store, &f.clock, MASTER);
    assert!(matches!(
        other.decrypt(field, &named_kek).await,
        Err(KeyringError::NotADataKey(_))
    ));

    let unknown = KeyId::new();
    let mut named_unknown = envelope.clone();
    named_unknown[1..17].copy_from_slice(&unknown.to_bytes());
    assert!(matches!(
        f.keyring.decrypt(field, &named_unknown).await,
        Err(KeyringError::KeyNotFound(id)) if id == unknown
    ));
}

/// Delays the first `parties` reads of subject keys until all of them have read, so
/// every creator sees "no key" and they all race to insert.
struct RacingStore {
    inner: MemoryKeyStore,
    barrier: Barrier,
    parties: usize,
    subject_reads: AtomicUsize,
    duplicates: AtomicUsize,
}

#[async_trait]
impl KeyStore for RacingStore {
    async fn insert(&self, key: &WrappedKey) -> Result<(), KeyStoreError> {
        let result = self.inner.insert(key).await;
        if matches!(result, Err(KeyStoreError::Duplicate)) {
            self.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    async fn get(&self, id: KeyId) -> Result<Option<WrappedKey>, KeyStoreError> {
        self.inner.get(id).await
    }

    async fn latest(&self, owner: &KeyOwner) -> Result<Option<WrappedKey>, KeyStoreError> {
        let latest = self.inner.latest(owner).await;
        if matches!(owner, KeyOwner::Subject { .. })
            && self.subject_reads.fetch_add(1, Ordering::SeqCst) < self.parties
        {
            self.barrier.wait().await;
        }
        latest
    }

    async fn destroy(&self, owner: &KeyOwner) -> Result<u64, KeyStoreError> {
        self.inner.destroy(owner).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_creates_exactly_one_key() {
    const PARTIES: usize = 8;
    let store = Arc::new(RacingStore {
        inner: MemoryKeyStore::new(),
        barrier: Barrier::new(PARTIES),
        parties: PARTIES,
        subject_reads: AtomicUsize::new(0),
        duplicates: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new(start()));
    let organisation = OrganisationId::new();
    let subject = SubjectId::new();

    let tasks: Vec<_> = (0..PARTIES)
        .map(|_| {
            // One keyring per task: separate processes, separate caches.
            let keyring = Keyring::new(
                MasterKey::from_bytes(MASTER),
                Arc::clone(&store) as Arc<dyn KeyStore>,
                Arc::clone(&clock) as Arc<dyn Clock>,
            );
            tokio::spawn(async move {
                let field = FieldBinding::new(Uuid::nil(), "f");
                let envelope = keyring
                    .encrypt(organisation, subject, field, b"v")
                    .await
                    .expect("encrypts");
                (
                    keyring
                        .subject_key(organisation, subject)
                        .await
                        .expect("key"),
                    envelope,
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task completes"));
    }

    let subject_keys = store.inner.keys_of(&subject_owner(organisation, subject));
    let org_keys = store.inner.keys_of(&KeyOwner::Organisation(organisation));
    assert_eq!(subject_keys.len(), 1, "exactly one subject key");
    assert_eq!(org_keys.len(), 1, "exactly one organisation key");
    assert!(
        store.duplicates.load(Ordering::SeqCst) >= PARTIES - 1,
        "every loser raced into a duplicate and re-read"
    );
    let keyring = Keyring::new(
        MasterKey::from_bytes(MASTER),
        Arc::clone(&store) as Arc<dyn KeyStore>,
        Arc::clone(&clock) as Arc<dyn Clock>,
    );
    for (key, envelope) in results {
        assert_eq!(key, subject_keys[0].id);
        assert_eq!(envelope::key_id_of(&envelope), Ok(key));
        let field = FieldBinding::new(Uuid::nil(), "f");
        assert!(keyring.decrypt(field, &envelope).await.is_ok());
    }
}

#[tokio::test]
async fn without_a_cache_every_operation_reads_the_store() {
    let store = Arc::new(MemoryKeyStore::new());
    let clock = Arc::new(ManualClock::new(start()));
    let uncached = |store: &Arc<MemoryKeyStore>| {
        Keyring::with_config(
            MasterKey::from_bytes(MASTER),
            Arc::clone(store) as Arc<dyn KeyStore>,
            Arc::clone(&clock) as Arc<dyn Clock>,
            KeyringConfig {
                cache_ttl: Duration::ZERO,
                cache_capacity: 16,
            },
        )
    };
    let a = uncached(&store);
    let b = uncached(&store);
    let (organisation, subject) = (OrganisationId::new(), SubjectId::new());
    let field = binding("note.body");
    let envelope = a
        .encrypt(organisation, subject, field, b"x")
        .await
        .expect("encrypts");
    assert!(a.decrypt(field, &envelope).await.is_ok());
    b.shred_subject(organisation, subject)
        .await
        .expect("shreds");
    assert!(matches!(
        a.decrypt(field, &envelope).await,
        Err(KeyringError::KeyDestroyed(_))
    ));
}

#[tokio::test]
async fn store_failures_surface_as_store_errors() {
    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl KeyStore for Down {
        async fn insert(&self, _: &WrappedKey) -> Result<(), KeyStoreError> {
            Err(KeyStoreError::Unavailable("connection refused".into()))
        }
        async fn get(&self, _: KeyId) -> Result<Option<WrappedKey>, KeyStoreError> {
            Err(KeyStoreError::Unavailable("connection refused".into()))
        }
        async fn latest(&self, _: &KeyOwner) -> Result<Option<WrappedKey>, KeyStoreError> {
            Err(KeyStoreError::Unavailable("connection refused".into()))
        }
        async fn destroy(&self, _: &KeyOwner) -> Result<u64, KeyStoreError> {
            Err(KeyStoreError::Unavailable("connection refused".into()))
        }
    }

    let keyring = Keyring::new(
        MasterKey::from_bytes(MASTER),
        Arc::new(Down),
        Arc::new(ManualClock::new(start())),
    );
    let err = keyring
        .encrypt(OrganisationId::new(), SubjectId::new(), binding("f"), b"x")
        .await
        .expect_err("store down");
    assert!(matches!(
        err,
        KeyringError::Store(KeyStoreError::Unavailable(_))
    ));
    assert_eq!(err.to_string(), "the key store failed");
}

#[tokio::test]
async fn nothing_secret_is_printed() {
    let f = fixture();
    let cipher = f
        .keyring
        .subject_cipher(f.organisation, f.subject)
        .await
        .expect("cipher");
    let master_b64 = MasterKey::from_bytes(MASTER).to_base64();
    for text in [format!("{:?}", f.keyring), format!("{cipher:?}")] {
        assert!(!text.contains(master_b64.expose().as_str()), "{text}");
        assert!(!text.contains("92, 92"), "{text}");
    }
}

#[test]
fn handles_and_futures_can_cross_threads() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    fn assert_send<T: Send>(_: T) {}
    assert_shareable::<Keyring>();
    assert_shareable::<SubjectCipher>();
    let f = fixture();
    let field = binding("f");
    assert_send(f.keyring.decrypt(field, b""));
    assert_send(f.keyring.encrypt(f.organisation, f.subject, field, b""));
    assert_send(f.keyring.rotate_subject_key(f.organisation, f.subject));
    assert_send(f.keyring.rotate_organisation_key(f.organisation));
    assert_send(f.keyring.shred_subject(f.organisation, f.subject));
    assert_send(f.keyring.shred_organisation(f.organisation));
    assert_send(f.keyring.subject_cipher(f.organisation, f.subject));
}
