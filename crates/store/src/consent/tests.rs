//! The consent adapter against migrated SQLite and PostgreSQL databases, with a real
//! keyring: each scenario runs on both (the PostgreSQL leg when
//! `CUSTODIA_TEST_POSTGRES_URL` is set). Where it helps, the same operations go to
//! `consent::memory::MemoryRepository` too and the answers are compared.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use consent::authorisation::{Expiry, HipaaAuthorisation, Signature, StoredAuthorisation};
use consent::decision::{PurposeState, SubjectState};
use consent::ledger::{
    Authority, ChainId, Channel, Evidence, LedgerAction, LedgerEvent, NewEvent, SaltedEvidence,
    verify_chain,
};
use consent::memory::{MemoryNotifier, MemoryRepository};
use consent::policy::PolicyVersion;
use consent::ports::{ConsentRepository, Erased, PracticeSettings, RepositoryError, SubjectRecord};
use consent::service::{Change, ConsentService, ConsentServiceError, verify_repository};
use consent::{MarketingMode, PracticePolicy};
use crypto::{Keyring, MasterKey};
use kernel::{
    Actor, AuditError, AuditEvent, AuditReceipt, AuditSink, ClientInfo, DataCategory,
    OrganisationId, Purpose, Regime, RequestContext, RequestId, Role, RoleSet, SubjectId,
    SystemClock, UserId,
};
use sea_orm::EntityTrait as _;
use uuid::Uuid;

use super::SeaOrmConsentRepository;
use super::entity::consent_subject;
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
    a_practices_export_holds_only_its_subjects_chains,
    appends_read_back_exactly,
    a_stale_head_conflicts_and_writes_nothing,
    concurrent_changes_through_the_service_all_land,
    pages_follow_uuid_byte_order,
    erasure_keeps_the_pseudonymous_events_only,
    shredded_keys_read_as_absent,
    evidence_and_authorisations_are_sealed_at_rest,
    settings_and_policies_round_trip,
    retention_deletes_chains_erased_six_years_ago,
    the_migration_dates_chains_erased_before_it,
);

/// The adapter on one migrated database.
struct World {
    test_db: TestDatabase,
    keyring: Keyring,
    repo: Arc<SeaOrmConsentRepository>,
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
            repo: Arc::new(SeaOrmConsentRepository::new(db, keyring.clone())),
            keyring,
            test_db,
        }
    }

    fn db(&self) -> &Database {
        self.test_db.database()
    }

    /// The service over the adapter, with the privacy notice published.
    async fn service(&self) -> (ConsentService, Arc<RecordingSink>) {
        self.repo
            .publish(&notice())
            .await
            .expect("publishes the notice");
        let sink = Arc::new(RecordingSink::default());
        let service = ConsentService::new(
            self.repo.clone(),
            Arc::new(MemoryNotifier::default()),
            sink.clone(),
        );
        (service, sink)
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

/// An audit sink that remembers what it was given.
#[derive(Default)]
struct RecordingSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl RecordingSink {
    fn len(&self) -> usize {
        self.events.lock().expect("not poisoned").len()
    }
}

#[async_trait]
impl AuditSink for RecordingSink {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        let mut events = self.events.lock().expect("not poisoned");
        events.push(event);
        Ok(AuditReceipt {
            chain: Uuid::nil(),
            sequence: events.len() as u64,
        })
    }
}

fn notice() -> PolicyVersion {
    PolicyVersion::new("privacy-notice", "1", 0, "text", false, "", 0).expect("a valid version")
}

/// A request by the person, from a client with `user_agent`.
fn ctx(subject_user: UserId, organisation: OrganisationId, user_agent: &str) -> RequestContext {
    RequestContext::new(
        Actor::Member {
            user: subject_user,
            roles: RoleSet::only(Role::Client),
        },
        Some(organisation),
        Purpose::SubjectRequest,
        RequestId::new(),
        ClientInfo::new(Some(IpAddr::from([192, 0, 2, 7])), Some(user_agent)),
        Utc::now(),
    )
}

/// A time with an odd microsecond part, far from round numbers.
const T0: i64 = 1_790_000_000_123_457;

fn new_event(subject: SubjectId, action: LedgerAction, at: i64) -> NewEvent {
    NewEvent {
        subject,
        action,
        purpose: Some(Purpose::Research),
        recipient: None,
        category: None,
        authority: Authority::Person,
        channel: Channel::Web,
        evidence: Evidence {
            client_address: Some("192.0.2.7".into()),
            user_agent: Some("test agent".into()),
            document: None,
        },
        policy_version: "privacy-notice@1".into(),
        recorded_at: at,
        effective_at: at,
        expires_at: None,
    }
}

/// Chains `event` after `record`'s head; returns the new record, the event and its
/// evidence, and the head it was appended after.
fn chained(
    record: &SubjectRecord,
    event: NewEvent,
) -> (SubjectRecord, LedgerEvent, SaltedEvidence, Option<u64>) {
    let expected = record.state.head.map(|(s, _)| s);
    let evidence = SaltedEvidence::new(event.evidence.clone());
    let mut next = record.clone();
    let event = next.state.append(event, &evidence).expect("a valid event");
    (next, event, evidence, expected)
}

/// Appends `event` to `repo`; returns the new record.
async fn append(
    repo: &dyn ConsentRepository,
    record: &SubjectRecord,
    event: NewEvent,
    authorisation: Option<&StoredAuthorisation>,
) -> SubjectRecord {
    let (next, event, evidence, expected) = chained(record, event);
    repo.append(&next, expected, &event, &evidence, authorisation)
        .await
        .expect("appends");
    next
}

fn hipaa(signer: &str) -> HipaaAuthorisation {
    HipaaAuthorisation {
        information: "Exercise adherence logs, 2026".into(),
        disclosers: "Sunrise Physio".into(),
        recipients: "University research group".into(),
        purpose: Purpose::Research,
        purpose_statement: "A study of home-exercise adherence".into(),
        recipient_name: None,
        // 2100-01-01: after any test run.
        expiry: Expiry::Date(4_102_444_800_000_000),
        signature: Signature {
            signer: signer.into(),
            signed_at: T0,
            representative_authority: Some("Parent".into()),
        },
        revocation_statement: "You may revoke this in writing at any time.".into(),
        conditioning_statement: "Your care does not depend on signing.".into(),
        redisclosure_statement: "The recipient may redisclose it.".into(),
    }
}

async fn appends_read_back_exactly(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let repo: &dyn ConsentRepository = world.repo.as_ref();
    let subject = SubjectId::new();
    let organisation = OrganisationId::new();
    let guardian = UserId::new();
    assert_eq!(repo.subject(subject).await.expect("reads"), None);
    assert!(repo.history(subject).await.expect("reads").is_empty());

    let mut record = repo
        .register(subject, Some(organisation), true)
        .await
        .expect("registers");
    assert_eq!(record.state.head, None);
    assert_eq!(
        repo.subject(subject).await.expect("reads"),
        Some(record.clone())
    );

    // A guardian's grant on paper with an expiry, a third-party grant with a
    // recipient and no evidence, a restriction, a withdrawal.
    let stored = StoredAuthorisation {
        id: Uuid::now_v7(),
        authorisation: hipaa("Pat Guardian"),
        authority: Authority::Guardian(guardian),
        grant_sequence: 1,
        recorded_at: T0 + 1,
    };
    let mut first = new_event(subject, LedgerAction::Grant, T0);
    first.authority = Authority::Guardian(guardian);
    first.channel = Channel::Paper;
    first.expires_at = Some(T0 + 10_000_000);
    first.effective_at = T0 - 999_999;
    first.evidence.document = Some(stored.id.to_string());
    record = append(repo, &record, first, Some(&stored)).await;
    let mut second = new_event(subject, LedgerAction::Grant, T0 + 7);
    second.purpose = Some(Purpose::ThirdPartySharing);
    second.recipient = Some("County registry".into());
    second.authority = Authority::AuthorisedAgent(UserId::new());
    second.channel = Channel::Api;
    second.evidence = Evidence::default();
    record = append(repo, &record, second, None).await;
    let mut third = new_event(subject, LedgerAction::Restrict, T0 + 11);
    third.purpose = None;
    third.category = Some(DataCategory::HealthRecord);
    third.channel = Channel::GlobalPrivacyControl;
    record = append(repo, &record, third, None).await;
    let mut fourth = new_event(subject, LedgerAction::Withdraw, T0 + 13);
    fourth.authority = Authority::Guardian(guardian);
    fourth.channel = Channel::Verbal;
    record = append(repo, &record, fourth, None).await;

    let read = repo
        .subject(subject)
        .await
        .expect("reads")
        .expect("a record");
    assert_eq!(read, record);
    assert_eq!(
        read.state.purpose(Purpose::Research, None),
        Some(&PurposeState::Withdrawn { at: T0 + 13 })
    );
    assert_eq!(read.organisation, Some(organisation));
    assert!(read.minor);

    let history = repo.history(subject).await.expect("reads");
    assert_eq!(history.len(), 4);
    let events: Vec<LedgerEvent> = history.iter().map(|h| h.event.clone()).collect();
    assert_eq!(verify_chain(record.state.chain, &events), None);
    assert_eq!(record.state.head, Some((4, events[3].hash)));
    for entry in &history {
        let evidence = entry.evidence.as_ref().expect("evidence is kept");
        assert_eq!(evidence.digest(), entry.event.body.evidence_digest);
    }
    assert_eq!(
        history[0]
            .evidence
            .as_ref()
            .and_then(|e| e.evidence.document.clone()),
        Some(stored.id.to_string())
    );
    assert_eq!(history[0].event.body.expires_at, Some(T0 + 10_000_000));
    assert_eq!(history[0].event.body.effective_at, T0 - 999_999);
    assert_eq!(
        repo.events_after(None, 100).await.expect("reads"),
        events,
        "the export reads the same events"
    );
    assert_eq!(
        repo.heads_after(None, 100).await.expect("reads"),
        vec![(record.state.chain, record.state.head)]
    );
    assert_eq!(
        repo.authorisations(subject).await.expect("reads"),
        vec![stored]
    );

    // The projection column is the state's JSON.
    let state: String = consent_subject::Entity::find_by_id(subject.as_uuid())
        .one(world.db().connection())
        .await
        .expect("reads")
        .expect("a row")
        .state;
    let parsed: SubjectState = serde_json::from_str(&state).expect("the state's JSON");
    assert_eq!(parsed, record.state);

    // Registering again keeps the chain and head, and the practice unless given.
    let again = repo
        .register(subject, None, false)
        .await
        .expect("registers");
    assert_eq!(again.state, record.state);
    assert_eq!(again.organisation, Some(organisation));
    assert!(!again.minor);
    let other = OrganisationId::new();
    let moved = repo
        .register(subject, Some(other), false)
        .await
        .expect("registers");
    assert_eq!(moved.organisation, Some(other));
    assert_eq!(moved.state, record.state);
    // The practice and minority are not an append's to change back.
    let mut fifth = new_event(subject, LedgerAction::Grant, T0 + 20);
    fifth.purpose = Some(Purpose::MarketingEmail);
    let after = append(repo, &record, fifth, None).await;
    let read = repo
        .subject(subject)
        .await
        .expect("reads")
        .expect("a record");
    assert_eq!(read.state, after.state);
    assert_eq!(read.organisation, Some(other));
    assert!(!read.minor);

    world.drop().await;
}

async fn a_stale_head_conflicts_and_writes_nothing(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let repo: &dyn ConsentRepository = world.repo.as_ref();
    let counts = || async {
        let mut n = Vec::new();
        for table in [
            "consent_subjects",
            "consent_events",
            "consent_evidence",
            "consent_authorisations",
        ] {
            n.push(count_rows(world.db(), table).await);
        }
        n
    };
    let authorisation = |sequence| StoredAuthorisation {
        id: Uuid::now_v7(),
        authorisation: hipaa("Ada Client"),
        authority: Authority::Person,
        grant_sequence: sequence,
        recorded_at: T0,
    };

    // A subject's first event creates their row; a second first event loses.
    let subject = SubjectId::new();
    let empty = SubjectRecord::new(subject, None, false);
    let (a, a_event, a_evidence, a_expected) =
        chained(&empty, new_event(subject, LedgerAction::Grant, T0));
    let (b, b_event, b_evidence, b_expected) =
        chained(&empty, new_event(subject, LedgerAction::Object, T0 + 1));
    assert_eq!((a_expected, b_expected), (None, None));
    repo.append(&a, None, &a_event, &a_evidence, None)
        .await
        .expect("the first append wins");
    let before = counts().await;
    assert_eq!(before, vec![1, 1, 1, 0]);
    let lost = repo
        .append(&b, None, &b_event, &b_evidence, Some(&authorisation(1)))
        .await;
    assert!(matches!(lost, Err(RepositoryError::Conflict)), "{lost:?}");
    assert_eq!(counts().await, before, "the loser wrote nothing");

    // Two writers that read the same head: one wins, the other conflicts.
    let (c, c_event, c_evidence, c_expected) =
        chained(&a, new_event(subject, LedgerAction::Withdraw, T0 + 2));
    let (d, d_event, d_evidence, d_expected) =
        chained(&a, new_event(subject, LedgerAction::Grant, T0 + 3));
    assert_eq!((c_expected, d_expected), (Some(1), Some(1)));
    repo.append(
        &c,
        c_expected,
        &c_event,
        &c_evidence,
        Some(&authorisation(2)),
    )
    .await
    .expect("the first append wins");
    let before = counts().await;
    assert_eq!(before, vec![1, 2, 2, 1]);
    let lost = repo
        .append(
            &d,
            d_expected,
            &d_event,
            &d_evidence,
            Some(&authorisation(2)),
        )
        .await;
    assert!(matches!(lost, Err(RepositoryError::Conflict)), "{lost:?}");
    assert_eq!(counts().await, before, "the loser wrote nothing");
    assert_eq!(repo.subject(subject).await.expect("reads"), Some(c.clone()));

    // A head that was never stored, and a subject with no row, conflict too.
    let (e, e_event, e_evidence, _) = chained(&c, new_event(subject, LedgerAction::Grant, T0 + 4));
    let wrong = repo.append(&e, Some(7), &e_event, &e_evidence, None).await;
    assert!(matches!(wrong, Err(RepositoryError::Conflict)), "{wrong:?}");
    let stranger = SubjectId::new();
    let (f, f_event, f_evidence, _) = chained(
        &SubjectRecord::new(stranger, None, false),
        new_event(stranger, LedgerAction::Grant, T0),
    );
    let missing = repo.append(&f, Some(1), &f_event, &f_evidence, None).await;
    assert!(
        matches!(missing, Err(RepositoryError::Conflict)),
        "{missing:?}"
    );
    // A registered subject's chain is theirs: a record under another chain conflicts.
    repo.register(stranger, None, false)
        .await
        .expect("registers");
    let other_chain = repo.append(&f, None, &f_event, &f_evidence, None).await;
    assert!(
        matches!(other_chain, Err(RepositoryError::Conflict)),
        "{other_chain:?}"
    );
    assert_eq!(counts().await, vec![2, 2, 2, 1]);

    // The memory adapter answers the same.
    let memory = MemoryRepository::new();
    memory
        .append(&a, None, &a_event, &a_evidence, None)
        .await
        .expect("appends");
    assert!(matches!(
        memory.append(&b, None, &b_event, &b_evidence, None).await,
        Err(RepositoryError::Conflict)
    ));
    memory
        .append(&c, Some(1), &c_event, &c_evidence, None)
        .await
        .expect("appends");
    assert!(matches!(
        memory
            .append(&d, Some(1), &d_event, &d_evidence, None)
            .await,
        Err(RepositoryError::Conflict)
    ));
    world.drop().await;
}

/// Whether `err` is the service giving up after its retries.
fn too_busy(err: &ConsentServiceError) -> bool {
    matches!(err, ConsentServiceError::Unavailable(e) if e.to_string().contains("too busy"))
}

async fn concurrent_changes_through_the_service_all_land(test_db: TestDatabase) {
    const PARTNERS: usize = 20;
    let world = World::new(test_db).await;
    let (service, sink) = world.service().await;
    let (subject, user, organisation) = (SubjectId::new(), UserId::new(), OrganisationId::new());
    service
        .register(subject, Some(organisation), false)
        .await
        .expect("registers");
    let change = |action, partner: usize| Change {
        purpose: Some(Purpose::ThirdPartySharing),
        recipient: Some(format!("partner-{partner}")),
        ..Change::by_person(action, Channel::Web)
    };
    // Half the partners are granted first, so that their withdrawals are valid
    // in any order.
    for partner in 0..PARTNERS / 2 {
        service
            .record(
                &ctx(user, organisation, "ua"),
                subject,
                &change(LedgerAction::Grant, partner),
            )
            .await
            .expect("grants");
    }

    let tasks: Vec<_> = (0..PARTNERS)
        .map(|partner| {
            let service = service.clone();
            let action = if partner < PARTNERS / 2 {
                LedgerAction::Withdraw
            } else {
                LedgerAction::Grant
            };
            let change = change(action, partner);
            tokio::spawn(async move {
                // Each retry by the service means another change landed, so this
                // ends: at most one failed attempt per other task.
                let mut gave_up = 0;
                loop {
                    match service
                        .record(&ctx(user, organisation, "ua"), subject, &change)
                        .await
                    {
                        Ok(event) => return (event, gave_up),
                        Err(e) if too_busy(&e) => gave_up += 1,
                        Err(e) => panic!("partner {partner}: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut sequences = Vec::new();
    for task in tasks {
        let (event, _gave_up) = task.await.expect("the task ends");
        sequences.push(event.sequence);
    }
    sequences.sort_unstable();
    let expected: Vec<u64> = (PARTNERS as u64 / 2 + 1..=PARTNERS as u64 * 3 / 2).collect();
    assert_eq!(
        sequences, expected,
        "each change landed once, in its own place"
    );

    let record = world
        .repo
        .subject(subject)
        .await
        .expect("reads")
        .expect("a record");
    let history = world.repo.history(subject).await.expect("reads");
    let events: Vec<LedgerEvent> = history.into_iter().map(|h| h.event).collect();
    assert_eq!(events.len(), PARTNERS * 3 / 2);
    assert_eq!(verify_chain(record.state.chain, &events), None);
    assert_eq!(record.state.head.map(|(s, _)| s), Some(events.len() as u64));
    for partner in 0..PARTNERS {
        let state = record.state.purpose(
            Purpose::ThirdPartySharing,
            Some(&format!("partner-{partner}")),
        );
        if partner < PARTNERS / 2 {
            assert!(
                matches!(state, Some(PurposeState::Withdrawn { .. })),
                "{partner}"
            );
        } else {
            assert!(matches!(state, Some(PurposeState::Granted(_))), "{partner}");
        }
    }
    // The projection is the fold of the chain.
    let mut rebuilt = SubjectState::new(record.state.chain);
    for event in &events {
        rebuilt.apply(event);
    }
    assert_eq!(rebuilt, record.state);
    assert_eq!(sink.len(), PARTNERS * 3 / 2, "each change was audited");
    assert!(
        verify_repository(world.repo.as_ref())
            .await
            .expect("verifies")
            .is_intact()
    );
    world.drop().await;
}

/// A uuid with `first` as its first byte and `last` as its last.
fn uuid_with(first: u8, last: u8) -> Uuid {
    let mut bytes = *ChainId::random().0.as_bytes();
    bytes[0] = first;
    bytes[15] = last;
    Uuid::from_bytes(bytes)
}

async fn pages_follow_uuid_byte_order(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let memory = MemoryRepository::new();
    // First bytes either side of 0x80 (a signed comparison would misorder them),
    // and pairs that differ only in their last byte.
    let firsts = [0xff, 0x00, 0x80, 0x7f, 0x01, 0xfe, 0x80, 0x00];
    let mut subjects = Vec::new();
    let mut chains = Vec::new();
    for (i, first) in firsts.into_iter().enumerate() {
        let last = u8::try_from(i).expect("small");
        let subject = SubjectId::from_uuid(uuid_with(first, last));
        let chain = ChainId(uuid_with(firsts[firsts.len() - 1 - i], last));
        let mut record = SubjectRecord {
            subject,
            organisation: None,
            minor: false,
            state: SubjectState::new(chain),
        };
        let mut mirrored = record.clone();
        for n in 0..=(i % 3) {
            let at = T0 + i64::try_from(n).expect("small");
            let event = new_event(subject, LedgerAction::Grant, at);
            record = append(world.repo.as_ref(), &record, event.clone(), None).await;
            mirrored = append(&memory, &mirrored, event, None).await;
        }
        subjects.push(subject);
        chains.push(chain);
    }
    // One registered subject with no events yet.
    let idle = SubjectId::from_uuid(uuid_with(0x90, 0));
    let idle_record = world
        .repo
        .register(idle, None, false)
        .await
        .expect("registers");
    subjects.push(idle);
    chains.push(idle_record.state.chain);
    subjects.sort();
    chains.sort();

    let mut all_events = Vec::new();
    let mut after = None;
    loop {
        let page = world.repo.events_after(after, 2).await.expect("a page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some((last.chain, last.sequence));
        all_events.extend(page);
    }
    let mut sorted = all_events.clone();
    sorted.sort_by_key(|e| (e.chain, e.sequence));
    assert_eq!(all_events, sorted, "(chain, sequence) in uuid byte order");
    assert_eq!(all_events.len(), 15);
    // The mirror's events have their own salts, so compare their places.
    let places = |events: &[LedgerEvent]| -> Vec<(ChainId, u64)> {
        events.iter().map(|e| (e.chain, e.sequence)).collect()
    };
    assert_eq!(
        places(&all_events),
        places(&memory.events_after(None, 1_000).await.expect("reads")),
        "the memory adapter's order"
    );
    // A cursor past any sequence moves to the next chain.
    assert_eq!(
        world
            .repo
            .events_after(Some((all_events[0].chain, u64::MAX)), 1)
            .await
            .expect("a page")
            .first()
            .map(|e| e.chain),
        all_events
            .iter()
            .map(|e| e.chain)
            .find(|c| *c != all_events[0].chain)
    );

    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = world.repo.subjects_after(after, 3).await.expect("a page");
        let Some(last) = page.last() else { break };
        after = Some(*last);
        listed.extend(page);
    }
    assert_eq!(listed, subjects);

    let mut heads = Vec::new();
    let mut after = None;
    loop {
        let page = world.repo.heads_after(after, 3).await.expect("a page");
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        heads.extend(page);
    }
    assert_eq!(heads.iter().map(|(c, _)| *c).collect::<Vec<_>>(), chains);
    assert!(
        heads
            .iter()
            .any(|(c, h)| *c == idle_record.state.chain && h.is_none())
    );
    assert!(
        verify_repository(world.repo.as_ref())
            .await
            .expect("verifies")
            .is_intact()
    );
    world.drop().await;
}

async fn erasure_keeps_the_pseudonymous_events_only(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (service, _sink) = world.service().await;
    let organisation = OrganisationId::new();
    let (erased, kept) = (SubjectId::new(), SubjectId::new());
    let user = UserId::new();
    for subject in [erased, kept] {
        service
            .register(subject, Some(organisation), false)
            .await
            .expect("registers");
        let ctx = ctx(user, organisation, "ua");
        service
            .record(
                &ctx,
                subject,
                &Change {
                    purpose: Some(Purpose::MarketingEmail),
                    ..Change::by_person(LedgerAction::Grant, Channel::Web)
                },
            )
            .await
            .expect("grants");
        service
            .authorise(
                &ctx,
                subject,
                &hipaa("Ada Client"),
                Authority::Person,
                Channel::Web,
            )
            .await
            .expect("authorises");
    }
    let chain = world
        .repo
        .subject(erased)
        .await
        .expect("reads")
        .expect("a record")
        .state
        .chain;
    let events_before = world.repo.events_after(None, 100).await.expect("reads");
    assert_eq!(events_before.len(), 4);

    let report = world
        .repo
        .erase(erased, now_micros())
        .await
        .expect("erases");
    assert_eq!(
        report,
        Erased {
            chain: Some(chain),
            evidence: 2,
            authorisations: 1,
            events_kept: 2,
        }
    );
    assert_eq!(world.repo.subject(erased).await.expect("reads"), None);
    assert!(world.repo.history(erased).await.expect("reads").is_empty());
    assert!(
        world
            .repo
            .authorisations(erased)
            .await
            .expect("reads")
            .is_empty()
    );
    assert_eq!(count_rows(world.db(), "consent_evidence").await, 2);
    assert_eq!(count_rows(world.db(), "consent_authorisations").await, 1);
    assert_eq!(count_rows(world.db(), "consent_subjects").await, 1);
    assert_eq!(
        world.repo.events_after(None, 100).await.expect("reads"),
        events_before,
        "the events stay"
    );
    assert_eq!(
        world.repo.subjects_after(None, 100).await.expect("reads"),
        vec![kept]
    );
    let report = verify_repository(world.repo.as_ref())
        .await
        .expect("verifies");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.chains, report.events), (2, 4));
    // The other subject is untouched.
    assert_eq!(world.repo.history(kept).await.expect("reads").len(), 2);
    assert_eq!(
        world.repo.authorisations(kept).await.expect("reads").len(),
        1
    );

    assert_eq!(
        world
            .repo
            .erase(erased, now_micros())
            .await
            .expect("erases again"),
        Erased::default()
    );
    assert_eq!(
        world
            .repo
            .erase(SubjectId::new(), now_micros())
            .await
            .expect("erases"),
        Erased::default()
    );
    // Someone erased may come back: a new record under a new chain.
    let back = service
        .register(erased, Some(organisation), false)
        .await
        .expect("registers");
    assert_ne!(back.state.chain, chain);
    assert_eq!(back.state.head, None);
    world.drop().await;
}

async fn shredded_keys_read_as_absent(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (service, _sink) = world.service().await;
    let (organisation, user) = (OrganisationId::new(), UserId::new());
    let (shredded, kept) = (SubjectId::new(), SubjectId::new());
    for subject in [shredded, kept] {
        service
            .register(subject, Some(organisation), false)
            .await
            .expect("registers");
        service
            .authorise(
                &ctx(user, organisation, "ua"),
                subject,
                &hipaa("Ada Client"),
                Authority::Person,
                Channel::Web,
            )
            .await
            .expect("authorises");
    }
    // A subject known to no practice has a key too.
    let orphan = SubjectId::new();
    service
        .authorise(
            &ctx(user, organisation, "ua"),
            orphan,
            &hipaa("Ada Client"),
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("authorises");
    assert_eq!(
        world
            .repo
            .subject(orphan)
            .await
            .expect("reads")
            .and_then(|r| r.organisation),
        None
    );
    assert!(
        world.repo.history(orphan).await.expect("reads")[0]
            .evidence
            .is_some()
    );
    assert_eq!(
        world
            .repo
            .authorisations(orphan)
            .await
            .expect("reads")
            .len(),
        1
    );

    world
        .keyring
        .shred_subject(organisation, shredded)
        .await
        .expect("shreds");
    let history = world.repo.history(shredded).await.expect("reads");
    assert_eq!(history.len(), 1, "the event stays");
    assert_eq!(history[0].evidence, None);
    assert!(
        world
            .repo
            .authorisations(shredded)
            .await
            .expect("reads")
            .is_empty()
    );
    assert!(
        world.repo.history(kept).await.expect("reads")[0]
            .evidence
            .is_some()
    );
    assert_eq!(
        world.repo.authorisations(kept).await.expect("reads").len(),
        1
    );
    world.drop().await;
}

async fn evidence_and_authorisations_are_sealed_at_rest(test_db: TestDatabase) {
    const AGENT: &str = "CanaryAgent-QX7 Mozilla/5.0";
    const SIGNER: &str = "CanarySigner Zelda Quimby";
    let world = World::new(test_db).await;
    a_user_row(world.db()).await;
    let (service, _sink) = world.service().await;
    let (subject, user, organisation) = (SubjectId::new(), UserId::new(), OrganisationId::new());
    service
        .register(subject, Some(organisation), false)
        .await
        .expect("registers");
    let ctx = ctx(user, organisation, AGENT);
    service
        .record(
            &ctx,
            subject,
            &Change {
                purpose: Some(Purpose::MarketingSms),
                ..Change::by_person(LedgerAction::Grant, Channel::Mobile)
            },
        )
        .await
        .expect("grants");
    let (id, _) = service
        .authorise(
            &ctx,
            subject,
            &hipaa(SIGNER),
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("authorises");

    // Nowhere in the stored bytes...
    let contents = raw_contents(world.db(), world.test_db.url()).await;
    assert!(!contents.is_empty());
    for (place, bytes) in contents {
        assert!(
            !contains(&bytes, b"CanaryAgent-QX7"),
            "the user agent is in clear in {place}"
        );
        assert!(
            !contains(&bytes, b"CanarySigner"),
            "the signer is in clear in {place}"
        );
    }
    // ...though it reads back through the adapter.
    let history = world.repo.history(subject).await.expect("reads");
    assert!(history.iter().all(|h| {
        h.evidence
            .as_ref()
            .and_then(|e| e.evidence.user_agent.as_deref())
            == Some(AGENT)
    }));
    let authorisations = world.repo.authorisations(subject).await.expect("reads");
    assert_eq!(authorisations.len(), 1);
    assert_eq!(authorisations[0].id, id);
    assert_eq!(authorisations[0].authorisation.signature.signer, SIGNER);

    world.drop().await;
}

async fn settings_and_policies_round_trip(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let repo: &dyn ConsentRepository = world.repo.as_ref();
    let organisation = OrganisationId::new();
    assert_eq!(
        repo.settings(organisation).await.expect("reads"),
        PracticeSettings::default()
    );
    let settings = PracticeSettings {
        policy: PracticePolicy {
            marketing: MarketingMode::OptOut,
            opt_in_required: [Purpose::Analytics, Purpose::MarketingSms]
                .into_iter()
                .collect(),
        },
        regime: Regime::Gdpr,
    };
    repo.set_settings(organisation, &settings)
        .await
        .expect("stores");
    assert_eq!(repo.settings(organisation).await.expect("reads"), settings);
    let replaced = PracticeSettings {
        policy: PracticePolicy::default(),
        regime: Regime::Ccpa,
    };
    repo.set_settings(organisation, &replaced)
        .await
        .expect("replaces");
    assert_eq!(repo.settings(organisation).await.expect("reads"), replaced);
    assert_eq!(
        repo.settings(OrganisationId::new()).await.expect("reads"),
        PracticeSettings::default()
    );

    assert!(repo.policies().await.expect("reads").is_empty());
    let first = notice();
    let second = PolicyVersion::new(
        "privacy-notice",
        "2026-12-01",
        T0,
        "the new text",
        true,
        "We now keep less.",
        T0 - 5,
    )
    .expect("a valid version");
    let terms = PolicyVersion::new("terms", "1", 3, "terms", false, "", 2).expect("valid");
    for version in [&first, &second, &terms] {
        repo.publish(version).await.expect("publishes");
    }
    assert_eq!(
        repo.policies().await.expect("reads"),
        vec![first.clone(), terms, second]
    );
    let mut clash = first.clone();
    clash.summary = "another text under the same version".into();
    assert!(matches!(
        repo.publish(&clash).await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(repo.policies().await.expect("reads").len(), 3);
    world.drop().await;
}

async fn a_practices_export_holds_only_its_subjects_chains(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let repo = world.repo.as_ref();
    let (ours, theirs) = (OrganisationId::new(), OrganisationId::new());
    let mut expected = BTreeSet::new();
    for organisation in [ours, theirs, ours, theirs, ours] {
        let subject = SubjectId::new();
        let mut record = repo
            .register(subject, Some(organisation), false)
            .await
            .expect("registers");
        for k in 0..2 {
            let event = new_event(subject, LedgerAction::Grant, T0 + k);
            record = append(repo, &record, event, None).await;
        }
        if organisation == ours {
            expected.insert(record.state.chain);
        }
    }
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = repo
            .events_of_organisation(ours, after, 2)
            .await
            .expect("reads");
        let Some(last) = page.last() else { break };
        after = Some((last.chain, last.sequence));
        paged.extend(page);
    }
    assert_eq!(paged.len(), 6, "three subjects, two events each");
    assert_eq!(
        paged.iter().map(|e| e.chain).collect::<BTreeSet<_>>(),
        expected,
        "only this practice's chains"
    );
    assert!(
        paged
            .windows(2)
            .all(|w| (w[0].chain, w[0].sequence) < (w[1].chain, w[1].sequence)),
        "in (chain, sequence) order"
    );
    let unknown = repo
        .events_of_organisation(OrganisationId::new(), None, 10)
        .await
        .expect("reads");
    assert!(unknown.is_empty());
    world.drop().await;
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Registers `subject` and records one grant and one authorisation for them.
async fn consenting(service: &ConsentService, subject: SubjectId, organisation: OrganisationId) {
    service
        .register(subject, Some(organisation), false)
        .await
        .expect("registers");
    let ctx = ctx(UserId::new(), organisation, "ua");
    service
        .record(
            &ctx,
            subject,
            &Change {
                purpose: Some(Purpose::MarketingEmail),
                ..Change::by_person(LedgerAction::Grant, Channel::Web)
            },
        )
        .await
        .expect("grants");
    service
        .authorise(
            &ctx,
            subject,
            &hipaa("Ada Client"),
            Authority::Person,
            Channel::Web,
        )
        .await
        .expect("authorises");
}

/// R1: six years after a subject's erasure their pseudonymised chain is deleted;
/// a chain erased more recently, and a live subject's, stay; a dry run counts and
/// deletes nothing; a second sweep finds nothing; what is left verifies.
async fn retention_deletes_chains_erased_six_years_ago(test_db: TestDatabase) {
    use consent::ConsentRetention;
    use kernel::personal_data::{Expired, ExpiryAction, RetentionSweep};

    let world = World::new(test_db).await;
    let (service, _sink) = world.service().await;
    let organisation = OrganisationId::new();
    let (long_ago, lately, live) = (SubjectId::new(), SubjectId::new(), SubjectId::new());
    for subject in [long_ago, lately, live] {
        consenting(&service, subject, organisation).await;
    }
    let now = Utc::now();
    let days_ago = |days: i64| (now - chrono::TimeDelta::days(days)).timestamp_micros();
    let chain_of = |subject| {
        let repo = world.repo.clone();
        async move {
            repo.subject(subject)
                .await
                .expect("reads")
                .expect("a record")
                .state
                .chain
        }
    };
    let (old_chain, recent_chain) = (chain_of(long_ago).await, chain_of(lately).await);
    world
        .repo
        .erase(long_ago, days_ago(2_193))
        .await
        .expect("erases");
    world
        .repo
        .erase(lately, days_ago(2_191))
        .await
        .expect("erases");
    assert_eq!(count_rows(world.db(), "consent_erasures").await, 2);
    let all = world.repo.events_after(None, 100).await.expect("reads");
    assert_eq!(all.len(), 6);

    let sweep = ConsentRetention::new(service.clone());
    assert_eq!(sweep.context(), "consent");
    let rights = RequestContext::system("retention", Purpose::Legal, now);
    let expired = |records| {
        vec![Expired {
            category: DataCategory::Consent,
            action: ExpiryAction::Deleted,
            records,
        }]
    };
    assert_eq!(
        sweep.sweep(&rights, now, true).await.expect("counts"),
        expired(2)
    );
    assert_eq!(
        world.repo.events_after(None, 100).await.expect("reads"),
        all,
        "a dry run deletes nothing"
    );
    assert_eq!(
        sweep.sweep(&rights, now, false).await.expect("sweeps"),
        expired(2)
    );
    let left = world.repo.events_after(None, 100).await.expect("reads");
    assert_eq!(
        left,
        all.iter()
            .filter(|e| e.chain != old_chain)
            .cloned()
            .collect::<Vec<_>>()
    );
    assert!(left.iter().any(|e| e.chain == recent_chain));
    assert_eq!(count_rows(world.db(), "consent_erasures").await, 1);
    assert_eq!(world.repo.history(live).await.expect("reads").len(), 2);
    assert_eq!(
        world.repo.authorisations(live).await.expect("reads").len(),
        1
    );
    assert_eq!(
        sweep.sweep(&rights, now, false).await.expect("sweeps"),
        expired(0)
    );
    let report = verify_repository(world.repo.as_ref())
        .await
        .expect("verifies");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.chains, report.events), (2, 4));

    // Two days on, the other erasure is six years old too.
    let later = now + chrono::TimeDelta::days(2);
    assert_eq!(
        sweep.sweep(&rights, later, false).await.expect("sweeps"),
        expired(2)
    );
    assert_eq!(count_rows(world.db(), "consent_erasures").await, 0);
    assert_eq!(
        world
            .repo
            .events_after(None, 100)
            .await
            .expect("reads")
            .len(),
        2
    );
    world.drop().await;
}

/// Chains unlinked before erasures were dated are dated by the migration, at its
/// run: kept at least as long as they had to be. Linked chains get no date.
async fn the_migration_dates_chains_erased_before_it(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (service, _sink) = world.service().await;
    let organisation = OrganisationId::new();
    let (erased, live) = (SubjectId::new(), SubjectId::new());
    for subject in [erased, live] {
        consenting(&service, subject, organisation).await;
    }
    let chain = world
        .repo
        .subject(erased)
        .await
        .expect("reads")
        .expect("a record")
        .state
        .chain;
    world.repo.erase(erased, 0).await.expect("erases");
    world
        .db()
        .migrate_down(Some(1))
        .await
        .expect("migrates down");
    let before = now_micros();
    world.db().migrate_up(None).await.expect("migrates up");
    let after = now_micros();
    let rows = super::entity::consent_erasure::Entity::find()
        .all(world.db().connection())
        .await
        .expect("reads");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].chain_id, chain.0);
    assert!((before..=after).contains(&rows[0].erased_at), "{rows:?}");
    world.drop().await;
}
