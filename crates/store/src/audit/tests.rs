//! The audit adapter against migrated SQLite and PostgreSQL databases, with a real
//! keyring, on events sealed by the `audit` crate: each scenario runs on both (the
//! PostgreSQL leg when `CUSTODIA_TEST_POSTGRES_URL` is set).

use std::net::IpAddr;
use std::sync::Arc;

use ::audit::event::ActorKind;
use ::audit::merkle;
use ::audit::ports::{
    AuditRepository, AuditStoreError, Batch, ChainState, DisclosureRecord, Erasure, EventCursor,
    EventFilter, PrunePoint,
};
use ::audit::{Hash, SealedEvent, SigningKey};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crypto::{Keyring, MasterKey};
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, Disclosure, OrganisationId, Purpose, RequestId,
    ResourceRef, Role, RoleSet, SubjectId, SystemClock, UserId,
};
use uuid::Uuid;

use super::SeaOrmAuditRepository;
use crate::testing::{TestDatabase, a_user_row, contains, count_rows, raw_contents};
use crate::{Database, SeaOrmKeyStore};

/// Runs `scenario` on a fresh SQLite database and, when configured, PostgreSQL.
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(crate::testing::TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = crate::testing::TestDatabase::postgres().await {
                    super::$scenario(db).await;
                }
            }
        }
    )*};
}

on_both_databases!(
    events_round_trip_losslessly,
    erasure_pseudonymises_subjects_and_actors,
    pruning_blanks_rows_but_keeps_hashes,
    listing_pages_newest_first_once_each,
    disclosures_are_sealed_and_opened,
    a_failed_batch_writes_nothing,
    checkpoints_round_trip,
    malformed_rows_are_reported_as_corrupt,
    retention_sweep_blanks_only_expired_events,
);

/// The adapter on one migrated database.
struct World {
    test_db: TestDatabase,
    keyring: Keyring,
    repo: SeaOrmAuditRepository,
}

impl World {
    async fn new(test_db: TestDatabase) -> Self {
        let db = test_db.database().clone();
        db.migrate_up(None).await.expect("migrates");
        let keyring = Keyring::new(
            MasterKey::generate().expect("randomness"),
            Arc::new(SeaOrmKeyStore::new(db.clone())),
            Arc::new(SystemClock),
        );
        Self {
            repo: SeaOrmAuditRepository::new(db, keyring.clone()),
            keyring,
            test_db,
        }
    }

    fn db(&self) -> &Database {
        self.test_db.database()
    }

    /// Opens a new chain; returns its writer.
    async fn writer(&self) -> Writer {
        let chain = Uuid::now_v7();
        self.repo
            .open_chain(chain, "test-writer", Utc::now())
            .await
            .expect("opens the chain");
        Writer {
            state: ChainState::empty(chain),
        }
    }

    async fn commit(&self, writer: &Writer, events: &[SealedEvent]) {
        self.repo
            .commit(Batch {
                chain: &writer.state,
                events,
                disclosures: &[],
                erasures: &[],
                prune: &[],
                checkpoint: None,
            })
            .await
            .expect("commits");
    }

    async fn all_events(&self, writer: &Writer) -> Vec<SealedEvent> {
        self.repo
            .events(writer.state.chain, 0, u32::MAX)
            .await
            .expect("reads the chain")
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

/// A chain as its writer advances it.
struct Writer {
    state: ChainState,
}

impl Writer {
    fn seal(&mut self, event: &AuditEvent, erased: Option<Hash>) -> SealedEvent {
        let sealed = SealedEvent::seal(
            event,
            self.state.chain,
            self.state.frontier.size() + 1,
            self.state.head,
            erased,
        );
        self.state.frontier.push(sealed.hash);
        self.state.head = sealed.hash;
        sealed
    }

    fn seal_all(&mut self, events: &[AuditEvent]) -> Vec<SealedEvent> {
        events.iter().map(|e| self.seal(e, None)).collect()
    }
}

/// A moment with a sub-microsecond part, which sealing truncates.
fn moment(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + seconds, 123_456_789)
        .single()
        .expect("a valid time")
}

/// A member's read of a subject's record.
fn read(
    user: UserId,
    organisation: OrganisationId,
    subject: SubjectId,
    at: DateTime<Utc>,
) -> AuditEvent {
    AuditEvent {
        at,
        actor: Actor::Member {
            user,
            roles: RoleSet::only(Role::Provider).with(Role::OrgAdmin),
        },
        organisation: Some(organisation),
        action: AuditAction::Read,
        resource: ResourceRef::new("condition", Uuid::now_v7()),
        subject: Some(subject),
        purpose: Purpose::Treatment,
        outcome: AuditOutcome::Allowed,
        request_id: RequestId::new(),
        client_address: Some(IpAddr::from([10, 1, 2, 3])),
        api_key: None,
        disclosure: None,
    }
}

/// Events of every shape: members, API keys, the system, anonymous callers, denials.
fn varied(n: usize) -> Vec<AuditEvent> {
    let organisation = OrganisationId::new();
    (0..n)
        .map(|i| {
            let mut event = read(
                UserId::new(),
                organisation,
                SubjectId::new(),
                moment(i64::try_from(i).expect("small")),
            );
            match i % 5 {
                4 => event.api_key = Some(Uuid::now_v7()),
                1 => {
                    event.actor = Actor::System {
                        component: "retention",
                    };
                    event.subject = None;
                    event.client_address = None;
                    event.organisation = None;
                }
                2 => {
                    event.actor = Actor::Anonymous;
                    event.outcome = AuditOutcome::Denied {
                        reason: "not_signed_in",
                    };
                }
                3 => event.client_address = Some("2001:db8::7".parse().expect("an address")),
                _ => {}
            }
            event
        })
        .collect()
}

fn assert_verifies(events: &[SealedEvent]) {
    let mut prev = events.first().map_or(Hash::ZERO, |e| e.prev_hash);
    for event in events {
        assert_eq!(event.prev_hash, prev, "linked at {}", event.sequence);
        if !event.pruned {
            assert_eq!(
                event.compute_hash(),
                event.hash,
                "hash at {}",
                event.sequence
            );
        }
        prev = event.hash;
    }
}

async fn events_round_trip_losslessly(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let mut writer = world.writer().await;
    assert_eq!(
        world
            .repo
            .chain_state(writer.state.chain)
            .await
            .expect("reads"),
        Some(ChainState::empty(writer.state.chain))
    );

    // A batch larger than one multi-row insert, then two small ones.
    let mut written = Vec::new();
    for size in [1_205, 7, 1] {
        let batch = writer.seal_all(&varied(size));
        world.commit(&writer, &batch).await;
        written.extend(batch);
    }

    let read = world.all_events(&writer).await;
    assert_eq!(read.len(), written.len());
    assert_eq!(read, written);
    assert_verifies(&read);
    assert!(read.iter().any(|e| e.actor.kind == ActorKind::System));
    assert!(
        read.iter()
            .any(|e| e.denied.is_some() && e.subject.is_some())
    );
    assert_eq!(read[0].at.timestamp_subsec_micros(), 123_456);

    let page = world
        .repo
        .events(writer.state.chain, 1_200, 5)
        .await
        .expect("reads a page");
    assert_eq!(page, written[1_200..1_205]);
    assert_eq!(
        world
            .repo
            .event(writer.state.chain, 3)
            .await
            .expect("reads"),
        Some(written[2].clone())
    );
    assert_eq!(
        world
            .repo
            .event(writer.state.chain, 9_999)
            .await
            .expect("reads"),
        None
    );

    assert_eq!(
        world
            .repo
            .chain_state(writer.state.chain)
            .await
            .expect("reads"),
        Some(writer.state.clone())
    );
    assert_eq!(
        world.repo.heads().await.expect("heads"),
        vec![writer.state.as_head()]
    );
    assert_eq!(
        world.repo.chains().await.expect("chains"),
        vec![writer.state.chain]
    );
    let leaves = world
        .repo
        .leaf_hashes(writer.state.chain, 1_000)
        .await
        .expect("leaves");
    assert_eq!(leaves.len(), 1_000);
    assert_eq!(leaves[999], written[999].hash);
    let all = world
        .repo
        .leaf_hashes(writer.state.chain, writer.state.frontier.size())
        .await
        .expect("leaves");
    assert_eq!(merkle::root(&all), writer.state.frontier.root());
    world.drop().await;
}

async fn erasure_pseudonymises_subjects_and_actors(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let mut writer = world.writer().await;
    let organisation = OrganisationId::new();
    let (erased_user, erased_subject) = (UserId::new(), SubjectId::new());
    let (other_user, other_subject) = (UserId::new(), SubjectId::new());
    let mut events = [
        read(erased_user, organisation, other_subject, moment(1)),
        read(other_user, organisation, erased_subject, moment(2)),
        read(other_user, organisation, other_subject, moment(3)),
        read(erased_user, organisation, erased_subject, moment(4)),
    ];
    // Events 2 and 3 are disclosures.
    for event in &mut events[1..3] {
        event.action = AuditAction::Disclose;
        event.disclosure = Some(Disclosure {
            recipient: "Registry".to_owned(),
            description: "Immunisations".to_owned(),
            legal_basis: "45 CFR 164.512(b)".to_owned(),
            disclosed_at: event.at,
        });
    }
    let before = writer.seal_all(&events);
    let records: Vec<_> = events[1..3]
        .iter()
        .zip(&before[1..3])
        .map(|(event, sealed)| DisclosureRecord {
            chain: sealed.chain,
            sequence: sealed.sequence,
            organisation: organisation.as_uuid(),
            subject: event.subject.expect("a subject").as_uuid(),
            detail: Disclosure {
                disclosed_at: sealed.at,
                ..event.disclosure.clone().expect("a disclosure")
            },
        })
        .collect();
    world
        .repo
        .commit(Batch {
            chain: &writer.state,
            events: &before,
            disclosures: &records,
            erasures: &[],
            prune: &[],
            checkpoint: None,
        })
        .await
        .expect("commits");
    assert_eq!(
        world
            .repo
            .disclosures(erased_subject.as_uuid(), moment(0))
            .await
            .expect("opens"),
        records[..1]
    );

    let pseudonym = Hash::of(&[b"keyed pseudonym"]);
    let mut erasure_event = read(other_user, organisation, other_subject, moment(5));
    erasure_event.action = AuditAction::Erase;
    let erasure_event = writer.seal(&erasure_event, Some(pseudonym));
    world
        .repo
        .commit(Batch {
            chain: &writer.state,
            events: std::slice::from_ref(&erasure_event),
            disclosures: &[],
            erasures: &[Erasure {
                subject: erased_subject.as_uuid(),
                user: Some(erased_user.as_uuid()),
                pseudonym,
            }],
            prune: &[],
            checkpoint: None,
        })
        .await
        .expect("commits the erasure");

    let read = world.all_events(&writer).await;
    assert_eq!(read.len(), 5);
    assert_verifies(&read);
    for event in &read {
        assert_ne!(event.actor.id, Some(erased_user.as_uuid()));
        assert_ne!(
            event.subject.as_ref().and_then(|s| s.id),
            Some(erased_subject.as_uuid())
        );
    }
    // Events 1 and 4: the actor pseudonymised, the address dropped.
    for index in [0, 3] {
        assert_eq!(read[index].actor.id, None);
        assert_eq!(read[index].actor.client_address, None);
        assert_eq!(read[index].actor.pseudonym, Some(pseudonym));
        assert_eq!(read[index].actor.commitment, before[index].actor.commitment);
    }
    // Events 2 and 4: the subject pseudonymised.
    for index in [1, 3] {
        let subject = read[index].subject.as_ref().expect("a subject");
        assert_eq!(subject.id, None);
        assert_eq!(subject.pseudonym, Some(pseudonym));
    }
    // Event 3 and the erasure itself are untouched.
    assert_eq!(read[2], before[2]);
    assert_eq!(read[4], erasure_event);
    assert_eq!(read[4].erased_pseudonym, Some(pseudonym));
    // The erased subject's disclosures are gone; the others' stay.
    assert_eq!(count_rows(world.db(), "audit_disclosures").await, 1);
    assert_eq!(
        world
            .repo
            .disclosures(other_subject.as_uuid(), moment(0))
            .await
            .expect("opens"),
        records[1..]
    );
    let listed = world
        .repo
        .list_events(
            EventFilter::Subject(erased_subject.as_uuid()),
            moment(0),
            None,
            100,
        )
        .await
        .expect("lists");
    assert!(listed.is_empty(), "no event names the erased subject");
    world.drop().await;
}

async fn pruning_blanks_rows_but_keeps_hashes(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let mut old = world.writer().await;
    let mut new = world.writer().await;
    let old_events = old.seal_all(&varied(6));
    world.commit(&old, &old_events).await;
    let new_events = new.seal_all(&varied(3));
    world.commit(&new, &new_events).await;

    // Events 1..=4 of the first chain and 1..=2 of the second precede the cutoff.
    let cutoff = moment(3) + TimeDelta::microseconds(1);
    let mut points = world.repo.prune_points(cutoff).await.expect("prune points");
    points.sort_by_key(|p| p.chain);
    let mut expected = vec![
        PrunePoint {
            chain: old.state.chain,
            through: 4,
        },
        PrunePoint {
            chain: new.state.chain,
            through: 3,
        },
    ];
    expected.sort_by_key(|p| p.chain);
    assert_eq!(points, expected);

    let prune = [PrunePoint {
        chain: old.state.chain,
        through: 4,
    }];
    world
        .repo
        .commit(Batch {
            chain: &new.state,
            events: &[],
            disclosures: &[],
            erasures: &[],
            prune: &prune,
            checkpoint: None,
        })
        .await
        .expect("prunes");

    let read = world.all_events(&old).await;
    assert_verifies(&read);
    for (stored, original) in read.iter().zip(&old_events) {
        assert_eq!(stored.hash, original.hash);
        assert_eq!(stored.prev_hash, original.prev_hash);
        assert_eq!(stored.at, original.at);
        if stored.sequence <= 4 {
            assert!(stored.pruned);
            assert_eq!(stored.actor.id, None);
            assert_eq!(stored.actor.client_address, None);
            assert_eq!(stored.actor.commitment, None);
            assert_eq!(stored.actor.roles, 0);
            assert_eq!(stored.organisation, None);
            assert_eq!(stored.subject, None);
            assert_eq!(stored.action, "");
            assert_eq!(stored.resource_id, Uuid::nil());
            assert_eq!(stored.request_id, Uuid::nil());
            assert_ne!(stored.compute_hash(), stored.hash, "the content is gone");
        } else {
            assert_eq!(stored, original);
        }
    }
    let state = world
        .repo
        .chain_state(old.state.chain)
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(state.pruned_through, 4);
    assert_eq!(state.frontier, old.state.frontier);
    let leaves = world
        .repo
        .leaf_hashes(old.state.chain, 6)
        .await
        .expect("leaves");
    assert_eq!(merkle::root(&leaves), old.state.frontier.root());
    assert_eq!(
        world.repo.prune_points(cutoff).await.expect("prune points"),
        vec![PrunePoint {
            chain: new.state.chain,
            through: 3,
        }]
    );
    // Listings leave pruned events out.
    let organisation = old_events[0].organisation.expect("an organisation");
    let listed = world
        .repo
        .list_events(
            EventFilter::Organisation(organisation),
            moment(0),
            None,
            100,
        )
        .await
        .expect("lists");
    // Events 5 (an API key's) and 6 (a member's), newest first.
    assert_eq!(listed, vec![old_events[5].clone(), old_events[4].clone()]);
    world.drop().await;
}

async fn listing_pages_newest_first_once_each(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let organisation = OrganisationId::new();
    let subject = SubjectId::new();
    let mut writers = [world.writer().await, world.writer().await];
    let mut expected = Vec::new();
    for (w, writer) in writers.iter_mut().enumerate() {
        // Pairs of events share a time, across and within chains.
        let events: Vec<_> = (0..9)
            .map(|i| {
                let mut event = read(UserId::new(), organisation, subject, moment(i / 2));
                if (i + w as i64) % 3 == 0 {
                    event.subject = Some(SubjectId::new());
                }
                event
            })
            .collect();
        let sealed = writer.seal_all(&events);
        world.commit(writer, &sealed).await;
        expected.extend(sealed);
    }
    // Another practice's events stay out.
    let mut outsider = world.writer().await;
    let other = outsider.seal_all(&varied(3));
    world.commit(&outsider, &other).await;

    expected.sort_by_key(|e| std::cmp::Reverse((e.at, e.chain, e.sequence)));
    for (filter, wanted) in [
        (
            EventFilter::Organisation(organisation.as_uuid()),
            expected.clone(),
        ),
        (
            EventFilter::Subject(subject.as_uuid()),
            expected
                .iter()
                .filter(|e| e.subject.as_ref().and_then(|s| s.id) == Some(subject.as_uuid()))
                .cloned()
                .collect(),
        ),
    ] {
        let mut listed = Vec::new();
        let mut cursor = None;
        loop {
            let page = world
                .repo
                .list_events(filter, moment(0), cursor, 4)
                .await
                .expect("lists a page");
            assert!(page.len() <= 4);
            let Some(last) = page.last() else { break };
            cursor = Some(EventCursor {
                at: last.at,
                chain: last.chain,
                sequence: last.sequence,
            });
            listed.extend(page);
        }
        assert_eq!(listed, wanted);
    }
    // `since` is inclusive.
    let recent = world
        .repo
        .list_events(
            EventFilter::Organisation(organisation.as_uuid()),
            moment(4),
            None,
            100,
        )
        .await
        .expect("lists");
    assert_eq!(recent, expected[..2]);
    world.drop().await;
}

async fn disclosures_are_sealed_and_opened(test_db: TestDatabase) {
    const DESCRIPTION: &str = "CanaryDiagnosis-ZX81 lab panel";
    let world = World::new(test_db).await;
    a_user_row(world.db()).await;
    let mut writer = world.writer().await;
    let organisation = OrganisationId::new();
    let (subject, shredded) = (SubjectId::new(), SubjectId::new());

    let disclosure = |n: i64, description: &str| Disclosure {
        recipient: format!("County health department {n}"),
        description: description.to_owned(),
        legal_basis: "45 CFR 164.512(b)".to_owned(),
        disclosed_at: moment(100 - n),
    };
    let mut events = Vec::new();
    let mut records = Vec::new();
    for (n, whose) in [(1, subject), (2, shredded), (3, subject)] {
        let detail = disclosure(n, DESCRIPTION);
        let mut event = read(UserId::new(), organisation, whose, moment(200));
        event.action = AuditAction::Disclose;
        event.disclosure = Some(detail.clone());
        let sealed = writer.seal(&event, None);
        records.push(DisclosureRecord {
            chain: sealed.chain,
            sequence: sealed.sequence,
            organisation: organisation.as_uuid(),
            subject: whose.as_uuid(),
            detail: Disclosure {
                disclosed_at: ::audit::event::truncate(detail.disclosed_at),
                ..detail
            },
        });
        events.push(sealed);
    }
    world
        .repo
        .commit(Batch {
            chain: &writer.state,
            events: &events,
            disclosures: &records,
            erasures: &[],
            prune: &[],
            checkpoint: None,
        })
        .await
        .expect("commits");
    assert_eq!(count_rows(world.db(), "audit_disclosures").await, 3);

    // Oldest first by disclosure date: number 3 was disclosed before number 1.
    let opened = world
        .repo
        .disclosures(subject.as_uuid(), moment(0))
        .await
        .expect("opens");
    assert_eq!(opened, vec![records[2].clone(), records[0].clone()]);
    for record in &opened {
        let event = events
            .iter()
            .find(|e| e.sequence == record.sequence)
            .expect("its event");
        assert_eq!(
            event.disclosure_digest,
            Some(::audit::event::disclosure_digest(&record.detail))
        );
    }
    let since = world
        .repo
        .disclosures(subject.as_uuid(), moment(98))
        .await
        .expect("opens");
    assert_eq!(since, vec![records[0].clone()]);

    for (place, bytes) in raw_contents(world.db(), world.test_db.url()).await {
        assert!(
            !contains(&bytes, DESCRIPTION.as_bytes()),
            "the description is in clear in {place}"
        );
        assert!(
            !contains(&bytes, b"County health department"),
            "the recipient is in clear in {place}"
        );
    }

    // Once the subject's key is destroyed their disclosures are gone.
    assert_eq!(
        world
            .repo
            .disclosures(shredded.as_uuid(), moment(0))
            .await
            .expect("opens")
            .len(),
        1
    );
    world
        .keyring
        .shred_subject(organisation, shredded)
        .await
        .expect("shreds");
    assert!(
        world
            .repo
            .disclosures(shredded.as_uuid(), moment(0))
            .await
            .expect("skips")
            .is_empty()
    );
    assert_eq!(
        world
            .repo
            .disclosures(subject.as_uuid(), moment(0))
            .await
            .expect("opens")
            .len(),
        2
    );
    world.drop().await;
}

async fn a_failed_batch_writes_nothing(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let mut writer = world.writer().await;
    let first = writer.seal_all(&varied(3));
    world.commit(&writer, &first).await;
    let committed = writer.state.clone();

    // A batch whose second event repeats sequence 3.
    let mut batch = writer.seal_all(&varied(2));
    let mut repeat = batch[1].clone();
    repeat.sequence = 3;
    batch.push(repeat);
    let user = first[0].actor.id.expect("a member");
    let subject = first[0]
        .subject
        .as_ref()
        .and_then(|s| s.id)
        .expect("a subject");
    let key = SigningKey::from_seed(&[7; 32]).expect("seed");
    let checkpoint = key.sign(writer.state.chain, Utc::now(), vec![writer.state.as_head()]);
    let result = world
        .repo
        .commit(Batch {
            chain: &writer.state,
            events: &batch,
            disclosures: &[],
            erasures: &[Erasure {
                subject,
                user: Some(user),
                pseudonym: Hash::of(&[b"p"]),
            }],
            prune: &[PrunePoint {
                chain: writer.state.chain,
                through: 2,
            }],
            checkpoint: Some(&checkpoint),
        })
        .await;
    assert!(result.is_err());
    assert_eq!(count_rows(world.db(), "audit_events").await, 3);
    assert_eq!(count_rows(world.db(), "audit_checkpoints").await, 0);
    assert_eq!(world.all_events(&writer).await, first);
    assert_eq!(
        world
            .repo
            .chain_state(committed.chain)
            .await
            .expect("reads"),
        Some(committed)
    );

    // A chain that was never opened takes nothing either.
    let mut stranger = Writer {
        state: ChainState::empty(Uuid::now_v7()),
    };
    let events = stranger.seal_all(&varied(2));
    let result = world
        .repo
        .commit(Batch {
            chain: &stranger.state,
            events: &events,
            disclosures: &[],
            erasures: &[],
            prune: &[],
            checkpoint: None,
        })
        .await;
    assert!(result.is_err());
    assert_eq!(count_rows(world.db(), "audit_events").await, 3);
    world.drop().await;
}

async fn checkpoints_round_trip(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let key = SigningKey::from_seed(&[7; 32]).expect("seed");
    let mut writer = world.writer().await;
    let mut other = world.writer().await;
    assert_eq!(world.repo.latest_checkpoint().await.expect("reads"), None);

    let mut signed = Vec::new();
    for round in 0..3 {
        let events = other.seal_all(&varied(round + 1));
        world.commit(&other, &events).await;
        let events = writer.seal_all(&varied(2));
        let mut heads = world.repo.heads().await.expect("heads");
        for head in &mut heads {
            if head.chain == writer.state.chain {
                *head = writer.state.as_head();
            }
        }
        let checkpoint = key.sign(writer.state.chain, moment(round as i64), heads);
        world
            .repo
            .commit(Batch {
                chain: &writer.state,
                events: &events,
                disclosures: &[],
                erasures: &[],
                prune: &[],
                checkpoint: Some(&checkpoint),
            })
            .await
            .expect("commits");
        signed.push(checkpoint);
    }
    let stored = world.repo.checkpoints().await.expect("reads");
    assert_eq!(stored, signed);
    let public = key.verifying_key();
    assert!(stored.iter().all(|c| public.verifies(c)));
    let latest = world
        .repo
        .latest_checkpoint()
        .await
        .expect("reads")
        .expect("one");
    assert_eq!(Some(&latest), signed.last());
    assert_eq!(latest.heads.len(), 2);
    assert_eq!(
        latest.head(writer.state.chain),
        Some(&writer.state.as_head())
    );
    let mut heads = world.repo.heads().await.expect("heads");
    heads.sort_by_key(|h| h.chain);
    assert_eq!(heads, latest.heads);
    world.drop().await;
}

async fn malformed_rows_are_reported_as_corrupt(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let mut writer = world.writer().await;
    let events = writer.seal_all(&varied(2));
    world.commit(&writer, &events).await;
    let chain = writer.state.chain;
    crate::testing::execute(
        world.db(),
        "UPDATE audit_events SET actor_kind = 'wizard' WHERE sequence = 2",
    )
    .await;
    assert!(matches!(
        world.repo.event(chain, 2).await,
        Err(AuditStoreError::Corrupt("audit_events"))
    ));
    assert_eq!(
        world.repo.event(chain, 1).await.expect("reads"),
        Some(events[0].clone())
    );
    // A size whose set bits do not match the frontier's nodes.
    crate::testing::execute(world.db(), "UPDATE audit_chains SET size = 3").await;
    assert!(matches!(
        world.repo.chain_state(chain).await,
        Err(AuditStoreError::Corrupt("audit_chains"))
    ));
    assert!(matches!(
        world.repo.heads().await,
        Err(AuditStoreError::Corrupt("audit_chains"))
    ));
    world.drop().await;
}

/// Group-commit throughput on SQLite with `synchronous=FULL`, in batches of 300:
/// `cargo nextest run -p store --run-ignored only -E 'test(throughput)'` (about
/// 29,000 events/s in a debug build on the 2-core development machine). Ignored by
/// default: a timing on a shared CI machine would be flaky.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release"]
async fn throughput_on_sqlite_reaches_20k_events_per_second() {
    let world = World::new(TestDatabase::sqlite().await).await;
    let mut writer = world.writer().await;
    let batches: Vec<Vec<SealedEvent>> = (0..100).map(|_| writer.seal_all(&varied(300))).collect();
    let mut state = ChainState::empty(writer.state.chain);
    let started = std::time::Instant::now();
    for batch in &batches {
        for event in batch {
            state.frontier.push(event.hash);
            state.head = event.hash;
        }
        world
            .repo
            .commit(Batch {
                chain: &state,
                events: batch,
                disclosures: &[],
                erasures: &[],
                prune: &[],
                checkpoint: None,
            })
            .await
            .expect("commits");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = 30_000.0 / elapsed;
    assert!(rate >= 20_000.0, "{rate:.0} events/s");
    world.drop().await;
}

/// Pseudonyms for the service (the sweep never erases anyone).
struct NoPseudonyms;

impl ::audit::Pseudonymiser for NoPseudonyms {
    fn pseudonym(&self, id: Uuid) -> Hash {
        Hash::of(&[id.as_bytes()])
    }
}

/// R1: the audit sweep blanks the events of every chain older than the retention
/// period (and their disclosures' details), counting only those not yet blanked;
/// a dry run counts and changes nothing; the log still verifies.
async fn retention_sweep_blanks_only_expired_events(test_db: TestDatabase) {
    use ::audit::retention::AuditRetention;
    use ::audit::{AuditLog, AuditService, LogConfig, service::DEFAULT_RETENTION};
    use kernel::personal_data::{Expired, ExpiryAction, RetentionSweep};
    use kernel::{AuditSink, DataCategory, ManualClock, RequestContext};

    let world = World::new(test_db).await;
    a_user_row(world.db()).await;
    let now = moment(0);
    let clock = Arc::new(ManualClock::new(now));
    let repository: Arc<dyn AuditRepository> = Arc::new(world.repo.clone());
    let key = || SigningKey::from_seed(&[7; 32]).expect("seed");
    let start = |label: &str| {
        AuditLog::start(
            repository.clone(),
            key(),
            clock.clone(),
            LogConfig {
                label: label.to_owned(),
                ..LogConfig::default()
            },
        )
    };
    let ours = start("this process").await.expect("starts");
    let theirs = start("another process").await.expect("starts");
    let service = AuditService::new(
        repository.clone(),
        ours.clone(),
        Vec::new(),
        Arc::new(NoPseudonyms),
        TimeDelta::days(1),
    );
    assert_eq!(
        service.retention(),
        DEFAULT_RETENTION,
        "never under six years"
    );
    let organisation = OrganisationId::new();
    let subject = SubjectId::new();
    let ago = |days: i64| now - TimeDelta::days(days);
    let disclosed = |at| {
        let mut event = read(UserId::new(), organisation, subject, at);
        event.action = AuditAction::Disclose;
        event.with_disclosure(Disclosure {
            recipient: "County health department".to_owned(),
            description: "lab panel".to_owned(),
            legal_basis: "45 CFR 164.512(b)".to_owned(),
            disclosed_at: at,
        })
    };
    // Six years and a little more ago, five years ago, and today.
    for event in [
        read(UserId::new(), organisation, subject, ago(2_300)),
        disclosed(ago(2_250)),
        read(UserId::new(), organisation, subject, ago(2_200)),
        read(UserId::new(), organisation, subject, ago(1_900)),
        read(UserId::new(), organisation, subject, now),
    ] {
        ours.record(event).await.expect("durable");
    }
    for event in [
        read(UserId::new(), organisation, subject, ago(2_400)),
        read(UserId::new(), organisation, subject, ago(1_850)),
    ] {
        theirs.record(event).await.expect("durable");
    }
    let sweep = AuditRetention::new(service.clone());
    assert_eq!(sweep.context(), "audit");
    let ctx = RequestContext::system("retention", Purpose::Legal, now);
    let expired = |records| {
        vec![Expired {
            category: DataCategory::AccessLog,
            action: ExpiryAction::Anonymised,
            records,
        }]
    };
    let pruned = |chain| {
        let repo = world.repo.clone();
        async move {
            repo.events(chain, 0, u32::MAX)
                .await
                .expect("reads")
                .iter()
                .filter(|e| e.pruned)
                .count()
        }
    };

    assert_eq!(
        sweep.sweep(&ctx, now, true).await.expect("counts"),
        expired(4)
    );
    assert_eq!(pruned(ours.chain()).await + pruned(theirs.chain()).await, 0);
    assert_eq!(count_rows(world.db(), "audit_disclosures").await, 1);

    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expired(4)
    );
    assert_eq!(pruned(ours.chain()).await, 3);
    assert_eq!(pruned(theirs.chain()).await, 1);
    assert_eq!(
        count_rows(world.db(), "audit_disclosures").await,
        0,
        "a blanked disclosure's details go with it"
    );
    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expired(0)
    );

    // A year later the five-year-old events are past it too: only they count.
    let later = now + TimeDelta::days(365);
    assert_eq!(
        sweep.sweep(&ctx, later, true).await.expect("counts"),
        expired(2)
    );
    assert_eq!(
        sweep.sweep(&ctx, later, false).await.expect("sweeps"),
        expired(2)
    );
    assert_eq!(pruned(ours.chain()).await, 4);
    assert_eq!(pruned(theirs.chain()).await, 2);

    let report = ::audit::verify::verify_repository(repository.as_ref(), &[key().verifying_key()])
        .await
        .expect("reads");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.pruned, 6);
    world.drop().await;
}
