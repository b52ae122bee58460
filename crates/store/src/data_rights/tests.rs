//! The rights repository against migrated SQLite and PostgreSQL databases, with a
//! real keyring: each scenario runs on both (the PostgreSQL leg when
//! `CUSTODIA_TEST_POSTGRES_URL` is set).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use crypto::{Keyring, MasterKey};
use data_rights::authority::{ProofOfAuthority, Scope};
use data_rights::case::{Case, CaseKind, CaseStatus};
use data_rights::ids::{AuthorityId, CaseId, RightsRequestId};
use data_rights::ports::{ErasureStep, RepositoryError, RightsRepository, StoredAuthority};
use data_rights::request::{
    RequestDetail, RequestKind, RequestResult, RequestStatus, Requester, RightsRequest,
};
use kernel::personal_data::{ErasureOutcome, RecordFate};
use kernel::{
    DataCategory, LegalGround, OrganisationId, Purpose, Regime, ResourceRef, SubjectId,
    SystemClock, UserId,
};
use sea_orm::{ConnectionTrait as _, DbBackend, QueryTrait as _, Statement};
use uuid::Uuid;

use super::{SeaOrmRightsRepository, queries};
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
    requests_round_trip_every_field_and_detail,
    an_identical_open_request_is_refused_until_the_first_is_final,
    stale_updates_are_conflicts,
    the_queue_lists_a_practices_open_requests_by_due_time,
    a_persons_requests_are_those_filed_by_or_about_them,
    archives_open_until_the_subjects_key_is_shredded,
    requests_still_read_and_update_after_the_subjects_key_is_shredded,
    erasure_steps_are_idempotent_and_ordered,
    concurrent_erasure_steps_all_get_a_place,
    authorities_round_trip_by_subject_and_agent,
    cases_round_trip_and_open_ones_come_by_due_time,
    personal_data_is_sealed_at_rest,
);

/// The repository on one migrated database.
struct World {
    test_db: TestDatabase,
    keyring: Keyring,
    repo: Arc<SeaOrmRightsRepository>,
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
            repo: Arc::new(SeaOrmRightsRepository::new(db, keyring.clone())),
            keyring,
            test_db,
        }
    }

    fn db(&self) -> &Database {
        self.test_db.database()
    }

    async fn insert(&self, request: &RightsRequest) {
        self.repo.insert_request(request).await.expect("inserts");
    }

    async fn read(&self, id: RightsRequestId) -> RightsRequest {
        self.repo.request(id).await.expect("reads").expect("stored")
    }

    /// Moves `request` to `status` at `at` and stores it (version bumped).
    async fn advance(&self, request: &mut RightsRequest, status: RequestStatus, at: DateTime<Utc>) {
        request
            .advance(status, at, Some(UserId::new()))
            .expect("allowed");
        request.version += 1;
        self.repo.update_request(request).await.expect("updates");
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

/// A time with a microsecond part, far from round numbers.
const T0: DateTime<Utc> = DateTime::from_timestamp_micros(1_800_000_000_123_457).expect("valid");

fn at(days: i64) -> DateTime<Utc> {
    T0 + TimeDelta::days(days)
}

fn ground() -> LegalGround {
    LegalGround::new(
        Regime::Hipaa,
        "45 CFR 164.316(b)(2)",
        "Kept six years as HIPAA documentation",
    )
}

fn rectification(value: &str) -> RequestDetail {
    RequestDetail::Rectification {
        context: "clinical".into(),
        resource_kind: "condition".into(),
        resource_id: Uuid::now_v7(),
        field: "note".into(),
        value: value.into(),
    }
}

fn receive(
    organisation: OrganisationId,
    kind: RequestKind,
    subject: SubjectId,
    requester: Requester,
    regime: Regime,
    detail: RequestDetail,
    received_at: DateTime<Utc>,
) -> RightsRequest {
    RightsRequest::receive(
        organisation,
        kind,
        subject,
        requester,
        regime,
        detail,
        received_at,
    )
}

/// An erasure request of the subject's own, received at `received_at`.
fn erasure(
    organisation: OrganisationId,
    subject: SubjectId,
    user: UserId,
    regime: Regime,
    received_at: DateTime<Utc>,
) -> RightsRequest {
    receive(
        organisation,
        RequestKind::Erasure,
        subject,
        Requester::Subject { user },
        regime,
        RequestDetail::None,
        received_at,
    )
}

fn outcomes() -> Vec<ErasureOutcome> {
    vec![
        ErasureOutcome {
            category: DataCategory::HealthRecord,
            resource: ResourceRef::new("condition", Uuid::now_v7()),
            fate: RecordFate::Deleted,
        },
        ErasureOutcome {
            category: DataCategory::Identity,
            resource: ResourceRef::new("account", Uuid::now_v7()),
            fate: RecordFate::Anonymised,
        },
        ErasureOutcome {
            category: DataCategory::AccessLog,
            resource: ResourceRef::new("audit_event", Uuid::now_v7()),
            fate: RecordFate::Retained {
                ground: ground(),
                until: Some(at(6 * 365)),
            },
        },
        ErasureOutcome {
            category: DataCategory::Billing,
            resource: ResourceRef::new("invoice", Uuid::now_v7()),
            fate: RecordFate::Retained {
                ground: LegalGround::new(Regime::Gdpr, "GDPR Art. 17(3)(b)", "Tax law"),
                until: None,
            },
        },
    ]
}

async fn requests_round_trip_every_field_and_detail(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let organisation = OrganisationId::new();
    let subject = SubjectId::new();
    let requesters = [
        Requester::Subject {
            user: UserId::new(),
        },
        Requester::Guardian {
            user: UserId::new(),
        },
        Requester::AuthorisedAgent {
            user: UserId::new(),
        },
        Requester::Provider {
            user: UserId::new(),
        },
    ];
    let cases = [
        (RequestKind::Access, Regime::Hipaa, RequestDetail::None),
        (
            RequestKind::Rectification,
            Regime::Gdpr,
            rectification("{\"note\":\"no known allergies\"}"),
        ),
        (
            RequestKind::Restriction,
            Regime::Gdpr,
            RequestDetail::Restriction {
                categories: vec![DataCategory::Medications, DataCategory::Contact],
                lift: false,
            },
        ),
        (
            RequestKind::Restriction,
            Regime::Hipaa,
            RequestDetail::Restriction {
                categories: vec![],
                lift: true,
            },
        ),
        (
            RequestKind::Objection,
            Regime::Gdpr,
            RequestDetail::Objection {
                purpose: Purpose::MarketingEmail,
            },
        ),
        (
            RequestKind::Withdrawal,
            Regime::Gdpr,
            RequestDetail::Withdrawal {
                purpose: Purpose::ThirdPartySharing,
                recipient: Some("Acme Physio Research".into()),
            },
        ),
        (
            RequestKind::Withdrawal,
            Regime::Ccpa,
            RequestDetail::Withdrawal {
                purpose: Purpose::Research,
                recipient: None,
            },
        ),
        (RequestKind::CcpaKnow, Regime::Ccpa, RequestDetail::None),
        (RequestKind::CcpaDelete, Regime::Ccpa, RequestDetail::None),
        (
            RequestKind::AccountingOfDisclosures,
            Regime::Hipaa,
            RequestDetail::None,
        ),
    ];
    let mut stored = Vec::new();
    for (n, (kind, regime, detail)) in cases.into_iter().enumerate() {
        let requester = requesters[n % requesters.len()];
        let request = receive(
            organisation,
            kind,
            subject,
            requester,
            regime,
            detail,
            at(i64::try_from(n).expect("small")),
        );
        world.insert(&request).await;
        assert_eq!(world.read(request.id).await, request, "{kind:?}");
        stored.push(request);
    }

    // A request carried through every status, with each kind of result.
    let mut archive = stored[0].clone();
    if archive.status == RequestStatus::AwaitingVerification {
        world
            .advance(&mut archive, RequestStatus::Verified, at(1))
            .await;
    }
    world
        .advance(&mut archive, RequestStatus::InProgress, at(2))
        .await;
    world
        .advance(&mut archive, RequestStatus::Extended, at(3))
        .await;
    archive.result = Some(RequestResult::Archive {
        sha256: "ab".repeat(32),
        bytes: 5_000_000_000,
    });
    world
        .advance(&mut archive, RequestStatus::Completed, at(40))
        .await;
    assert_eq!(world.read(archive.id).await, archive);

    let mut erased = erasure(organisation, subject, UserId::new(), Regime::Gdpr, at(5));
    world.insert(&erased).await;
    world
        .advance(&mut erased, RequestStatus::InProgress, at(6))
        .await;
    erased.result = Some(RequestResult::Erasure {
        outcomes: outcomes(),
    });
    world
        .advance(&mut erased, RequestStatus::Completed, at(7))
        .await;
    assert_eq!(world.read(erased.id).await, erased);

    let mut applied = stored[4].clone();
    assert_eq!(applied.status, RequestStatus::Verified, "the subject's own");
    world
        .advance(&mut applied, RequestStatus::InProgress, at(6))
        .await;
    applied.result = Some(RequestResult::Applied);
    world
        .advance(&mut applied, RequestStatus::Completed, at(7))
        .await;
    assert_eq!(world.read(applied.id).await, applied);

    let mut denied = stored[2].clone();
    world
        .advance(
            &mut denied,
            RequestStatus::Denied {
                reason: "We could not verify who you are".into(),
                ground: LegalGround::new(Regime::Gdpr, "GDPR Art. 12(6)", "Identity not confirmed"),
            },
            at(9),
        )
        .await;
    let read = world.read(denied.id).await;
    assert_eq!(read, denied);
    assert_eq!(read.history.len(), 3);
    assert!(
        world
            .repo
            .request(RightsRequestId::new())
            .await
            .expect("reads")
            .is_none()
    );
    // A new request must start at version 0.
    let mut late = stored[0].clone();
    late.id = RightsRequestId::new();
    late.version = 1;
    assert!(matches!(
        world.repo.insert_request(&late).await,
        Err(RepositoryError::Unavailable(_))
    ));
    world.drop().await;
}

async fn an_identical_open_request_is_refused_until_the_first_is_final(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let organisation = OrganisationId::new();
    let (subject, user) = (SubjectId::new(), UserId::new());
    let mut first = erasure(organisation, subject, user, Regime::Gdpr, at(0));
    world.insert(&first).await;
    let again = erasure(organisation, subject, user, Regime::Gdpr, at(1));
    assert!(matches!(
        world.repo.insert_request(&again).await,
        Err(RepositoryError::Conflict)
    ));
    // The same id twice is a conflict too.
    assert!(matches!(
        world.repo.insert_request(&first).await,
        Err(RepositoryError::Conflict)
    ));
    // Anything that tells two requests apart lets both be open.
    world
        .insert(&erasure(organisation, subject, user, Regime::Ccpa, at(1)))
        .await;
    world
        .insert(&receive(
            organisation,
            RequestKind::Erasure,
            subject,
            Requester::Guardian { user },
            Regime::Gdpr,
            RequestDetail::None,
            at(1),
        ))
        .await;
    world
        .insert(&erasure(
            organisation,
            SubjectId::new(),
            user,
            Regime::Gdpr,
            at(1),
        ))
        .await;
    let detail = rectification("\"first value\"");
    let fix = |detail: RequestDetail| {
        receive(
            organisation,
            RequestKind::Rectification,
            subject,
            Requester::Subject { user },
            Regime::Gdpr,
            detail,
            at(2),
        )
    };
    world.insert(&fix(detail.clone())).await;
    assert!(matches!(
        world.repo.insert_request(&fix(detail.clone())).await,
        Err(RepositoryError::Conflict)
    ));
    let RequestDetail::Rectification {
        context,
        resource_kind,
        resource_id,
        field,
        ..
    } = detail
    else {
        unreachable!("a rectification");
    };
    world
        .insert(&fix(RequestDetail::Rectification {
            context,
            resource_kind,
            resource_id,
            field,
            value: "\"second value\"".into(),
        }))
        .await;

    // Once the first is final, an identical one is a new request.
    world
        .advance(&mut first, RequestStatus::InProgress, at(3))
        .await;
    assert!(matches!(
        world.repo.insert_request(&again).await,
        Err(RepositoryError::Conflict)
    ));
    world
        .advance(&mut first, RequestStatus::Completed, at(4))
        .await;
    world.insert(&again).await;
    assert_eq!(world.read(again.id).await, again);
    let third = erasure(organisation, subject, user, Regime::Gdpr, at(5));
    assert!(matches!(
        world.repo.insert_request(&third).await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(count_rows(world.db(), "rights_requests").await, 7);
    world.drop().await;
}

async fn stale_updates_are_conflicts(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let organisation = OrganisationId::new();
    let mut request = erasure(
        organisation,
        SubjectId::new(),
        UserId::new(),
        Regime::Hipaa,
        at(0),
    );
    // An update of a request never stored changes nothing.
    let mut ghost = request.clone();
    ghost.version = 1;
    assert!(matches!(
        world.repo.update_request(&ghost).await,
        Err(RepositoryError::Conflict)
    ));
    world.insert(&request).await;
    let stale = request.clone();
    world
        .advance(&mut request, RequestStatus::InProgress, at(1))
        .await;
    // Another copy read at version 0 and moved: its version 1 replaces 0, which is
    // gone.
    let mut other = stale.clone();
    other
        .advance(
            RequestStatus::Denied {
                reason: "duplicate".into(),
                ground: ground(),
            },
            at(1),
            None,
        )
        .expect("allowed");
    other.version = 1;
    assert!(matches!(
        world.repo.update_request(&other).await,
        Err(RepositoryError::Conflict)
    ));
    // Version 0 (no predecessor) and skipped versions too.
    assert!(matches!(
        world.repo.update_request(&stale).await,
        Err(RepositoryError::Conflict)
    ));
    let mut skipped = request.clone();
    skipped.version = 3;
    assert!(matches!(
        world.repo.update_request(&skipped).await,
        Err(RepositoryError::Conflict)
    ));
    // A copy aimed at another practice's row does not land either.
    let mut misdirected = request.clone();
    misdirected.organisation = OrganisationId::new();
    misdirected.version = 2;
    assert!(matches!(
        world.repo.update_request(&misdirected).await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(world.read(request.id).await, request);
    world.drop().await;
}

async fn the_queue_lists_a_practices_open_requests_by_due_time(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (practice, other) = (OrganisationId::new(), OrganisationId::new());
    let user = UserId::new();
    // Due: CCPA at(45), GDPR at(1) + one month = at(32), HIPAA access at(25).
    let ccpa = erasure(practice, SubjectId::new(), user, Regime::Ccpa, at(0));
    let gdpr = erasure(practice, SubjectId::new(), user, Regime::Gdpr, at(1));
    let mut hipaa = receive(
        practice,
        RequestKind::Access,
        SubjectId::new(),
        Requester::Subject { user },
        Regime::Hipaa,
        RequestDetail::None,
        at(-5),
    );
    let mut done = erasure(practice, SubjectId::new(), user, Regime::Gdpr, at(-20));
    let elsewhere = erasure(other, SubjectId::new(), user, Regime::Gdpr, at(-30));
    for request in [&ccpa, &gdpr, &hipaa, &done, &elsewhere] {
        world.insert(request).await;
    }
    world
        .advance(&mut done, RequestStatus::InProgress, at(3))
        .await;
    world
        .advance(&mut done, RequestStatus::Completed, at(4))
        .await;
    let ids = |list: Vec<RightsRequest>| list.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert!(hipaa.due_at() < gdpr.due_at() && gdpr.due_at() < ccpa.due_at());
    assert_eq!(
        ids(world
            .repo
            .open_requests_of(practice, 10)
            .await
            .expect("reads")),
        vec![hipaa.id, gdpr.id, ccpa.id]
    );
    assert_eq!(
        ids(world
            .repo
            .open_requests_of(practice, 2)
            .await
            .expect("reads")),
        vec![hipaa.id, gdpr.id]
    );
    // Extended, the HIPAA request is due 60 days after receipt, at(55): last.
    world
        .advance(&mut hipaa, RequestStatus::InProgress, at(3))
        .await;
    world
        .advance(&mut hipaa, RequestStatus::Extended, at(4))
        .await;
    let queue = world
        .repo
        .open_requests_of(practice, 10)
        .await
        .expect("reads");
    assert_eq!(ids(queue.clone()), vec![gdpr.id, ccpa.id, hipaa.id]);
    assert_eq!(queue[2], hipaa);
    assert_eq!(
        ids(world.repo.open_requests_of(other, 10).await.expect("reads")),
        vec![elsewhere.id]
    );
    assert!(
        world
            .repo
            .open_requests_of(OrganisationId::new(), 10)
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

async fn a_persons_requests_are_those_filed_by_or_about_them(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let organisation = OrganisationId::new();
    let (me, my_subject) = (UserId::new(), SubjectId::new());
    let (mother, child) = (UserId::new(), SubjectId::new());
    let mine = erasure(organisation, my_subject, me, Regime::Gdpr, at(0));
    // Filed by me for someone I act for.
    let for_other = receive(
        organisation,
        RequestKind::CcpaKnow,
        child,
        Requester::AuthorisedAgent { user: me },
        Regime::Ccpa,
        RequestDetail::None,
        at(1),
    );
    // Filed by someone else about me.
    let mut about_me = receive(
        organisation,
        RequestKind::Access,
        my_subject,
        Requester::Guardian { user: mother },
        Regime::Hipaa,
        RequestDetail::None,
        at(2),
    );
    let unrelated = erasure(organisation, child, mother, Regime::Gdpr, at(3));
    for request in [&mine, &for_other, &about_me, &unrelated] {
        world.insert(request).await;
    }
    let ids = |list: Vec<RightsRequest>| list.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(world
            .repo
            .requests_of(me, Some(my_subject))
            .await
            .expect("reads")),
        vec![about_me.id, for_other.id, mine.id]
    );
    assert_eq!(
        ids(world.repo.requests_of(me, None).await.expect("reads")),
        vec![for_other.id, mine.id]
    );
    assert_eq!(
        world.repo.requests_of(me, None).await.expect("reads")[0],
        for_other
    );
    assert_eq!(
        ids(world
            .repo
            .open_requests_about(my_subject)
            .await
            .expect("reads")),
        vec![mine.id, about_me.id]
    );
    world
        .advance(&mut about_me, RequestStatus::Verified, at(3))
        .await;
    world
        .advance(&mut about_me, RequestStatus::InProgress, at(4))
        .await;
    world
        .advance(&mut about_me, RequestStatus::Completed, at(5))
        .await;
    assert_eq!(
        world
            .repo
            .open_requests_about(my_subject)
            .await
            .expect("reads"),
        vec![mine.clone()]
    );
    assert_eq!(
        ids(world
            .repo
            .requests_of(me, Some(my_subject))
            .await
            .expect("reads")),
        vec![about_me.id, for_other.id, mine.id],
        "final requests are still the person's"
    );
    assert!(
        world
            .repo
            .requests_of(UserId::new(), Some(SubjectId::new()))
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

async fn archives_open_until_the_subjects_key_is_shredded(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (organisation, subject, other) =
        (OrganisationId::new(), SubjectId::new(), SubjectId::new());
    let (first, second, kept) = (
        RightsRequestId::new(),
        RightsRequestId::new(),
        RightsRequestId::new(),
    );
    assert_eq!(world.repo.archive(first).await.expect("reads"), None);
    world
        .repo
        .put_archive(first, organisation, subject, b"PK first archive")
        .await
        .expect("stores");
    assert_eq!(
        world.repo.archive(first).await.expect("reads"),
        Some(b"PK first archive".to_vec())
    );
    // A resumed export packs again: the last archive is the request's.
    world
        .repo
        .put_archive(first, organisation, subject, b"PK packed again")
        .await
        .expect("stores");
    assert_eq!(
        world.repo.archive(first).await.expect("reads"),
        Some(b"PK packed again".to_vec())
    );
    let big: Vec<u8> = (0..200_000_u32).map(|n| (n % 251) as u8).collect();
    world
        .repo
        .put_archive(second, organisation, subject, &big)
        .await
        .expect("stores");
    world
        .repo
        .put_archive(kept, organisation, other, b"someone else's")
        .await
        .expect("stores");
    assert_eq!(world.repo.archive(second).await.expect("reads"), Some(big));

    assert!(
        world
            .keyring
            .shred_subject(organisation, subject)
            .await
            .expect("shreds")
            >= 1
    );
    assert_eq!(world.repo.archive(first).await.expect("reads"), None);
    assert_eq!(world.repo.archive(second).await.expect("reads"), None);
    assert_eq!(
        world.repo.archive(kept).await.expect("reads"),
        Some(b"someone else's".to_vec())
    );
    // No new archive can be sealed for an erased subject.
    assert!(matches!(
        world
            .repo
            .put_archive(RightsRequestId::new(), organisation, subject, b"late")
            .await,
        Err(RepositoryError::Unavailable(_))
    ));
    // A sealed archive moved to another request's row does not open there.
    world
        .repo
        .put_archive(second, organisation, other, b"second")
        .await
        .expect("stores");
    crate::testing::execute(
        world.db(),
        &format!(
            "UPDATE rights_archives SET archive_enc = (SELECT archive_enc FROM rights_archives \
             WHERE request_id = {}) WHERE request_id = {}",
            uuid_literal(world.db(), second.as_uuid()),
            uuid_literal(world.db(), kept.as_uuid())
        ),
    )
    .await;
    assert!(matches!(
        world.repo.archive(kept).await,
        Err(RepositoryError::Unavailable(_))
    ));
    world.drop().await;
}

/// A uuid as an SQL literal of the backend's storage.
fn uuid_literal(db: &Database, id: Uuid) -> String {
    match db.backend() {
        crate::Backend::Sqlite => format!("x'{}'", id.simple()),
        crate::Backend::Postgres => format!("'{id}'"),
    }
}

async fn requests_still_read_and_update_after_the_subjects_key_is_shredded(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (organisation, subject, user) = (OrganisationId::new(), SubjectId::new(), UserId::new());
    let mut fix = receive(
        organisation,
        RequestKind::Rectification,
        subject,
        Requester::Subject { user },
        Regime::Gdpr,
        rectification("\"type 2 diabetes\""),
        at(0),
    );
    let mut erase = erasure(organisation, subject, user, Regime::Gdpr, at(1));
    world.insert(&fix).await;
    world.insert(&erase).await;
    world
        .advance(&mut erase, RequestStatus::InProgress, at(2))
        .await;
    // The erasure's last step destroys the key...
    world
        .keyring
        .shred_subject(organisation, subject)
        .await
        .expect("shreds");
    // ...and the request is completed afterwards.
    erase.result = Some(RequestResult::Erasure {
        outcomes: outcomes(),
    });
    world
        .advance(&mut erase, RequestStatus::Completed, at(3))
        .await;
    assert_eq!(world.read(erase.id).await, erase);
    // The rectification's value is gone with the key: the empty text, never JSON.
    let read = world.read(fix.id).await;
    let RequestDetail::Rectification { value, .. } = &read.detail else {
        panic!("a rectification: {:?}", read.detail);
    };
    assert_eq!(value, "");
    assert!(serde_json::from_str::<serde_json::Value>(value).is_err());
    fix.detail = read.detail.clone();
    world
        .advance(
            &mut fix,
            RequestStatus::Denied {
                reason: "The record was erased".into(),
                ground: ground(),
            },
            at(4),
        )
        .await;
    assert_eq!(world.read(fix.id).await, fix);
    assert_eq!(
        world
            .repo
            .requests_of(user, Some(subject))
            .await
            .expect("reads")
            .len(),
        2
    );
    assert!(
        world
            .repo
            .open_requests_about(subject)
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

async fn erasure_steps_are_idempotent_and_ordered(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (request, other) = (RightsRequestId::new(), RightsRequestId::new());
    assert!(
        world
            .repo
            .erasure_steps(request)
            .await
            .expect("reads")
            .is_empty()
    );
    let step = |context: &str, outcomes: Vec<ErasureOutcome>| ErasureStep {
        context: context.into(),
        outcomes,
    };
    let all = outcomes();
    let identity = step("identity", vec![all[1].clone()]);
    let clinical = step("clinical", vec![all[0].clone(), all[2].clone()]);
    let billing = step("billing", vec![all[3].clone()]);
    let keys = step("keys", vec![]);
    for s in [&identity, &clinical] {
        world
            .repo
            .put_erasure_step(request, s)
            .await
            .expect("journals");
    }
    // A repeat keeps the first.
    world
        .repo
        .put_erasure_step(request, &step("identity", vec![]))
        .await
        .expect("journals");
    world
        .repo
        .put_erasure_step(other, &billing)
        .await
        .expect("journals");
    for s in [&billing, &clinical, &keys] {
        world
            .repo
            .put_erasure_step(request, s)
            .await
            .expect("journals");
    }
    assert_eq!(
        world.repo.erasure_steps(request).await.expect("reads"),
        vec![identity, clinical, billing.clone(), keys]
    );
    assert_eq!(
        world.repo.erasure_steps(other).await.expect("reads"),
        vec![billing]
    );
    world.drop().await;
}

async fn concurrent_erasure_steps_all_get_a_place(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let request = RightsRequestId::new();
    let contexts = [
        "identity", "clinical", "consent", "audit", "billing", "keys",
    ];
    let mut tasks = Vec::new();
    for context in contexts {
        let repo = Arc::clone(&world.repo);
        tasks.push(tokio::spawn(async move {
            repo.put_erasure_step(
                request,
                &ErasureStep {
                    context: context.into(),
                    outcomes: vec![],
                },
            )
            .await
        }));
    }
    // And each repeated at once.
    for context in contexts {
        let repo = Arc::clone(&world.repo);
        tasks.push(tokio::spawn(async move {
            repo.put_erasure_step(
                request,
                &ErasureStep {
                    context: context.into(),
                    outcomes: vec![],
                },
            )
            .await
        }));
    }
    for task in tasks {
        task.await.expect("joins").expect("journals");
    }
    let mut written: Vec<String> = world
        .repo
        .erasure_steps(request)
        .await
        .expect("reads")
        .into_iter()
        .map(|s| s.context)
        .collect();
    written.sort();
    let mut expected: Vec<String> = contexts.iter().map(|c| (*c).to_owned()).collect();
    expected.sort();
    assert_eq!(written, expected);
    world.drop().await;
}

async fn authorities_round_trip_by_subject_and_agent(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (agent, other_agent) = (UserId::new(), UserId::new());
    let (subject, other_subject) = (SubjectId::new(), SubjectId::new());
    let stored = |agent, subject, scope, recorded_at: DateTime<Utc>| StoredAuthority {
        id: AuthorityId::new(),
        proof: ProofOfAuthority::record(
            agent,
            subject,
            "POA-2026-118",
            scope,
            recorded_at + TimeDelta::days(365),
            recorded_at,
        )
        .expect("valid"),
        recorded_at,
        version: 0,
    };
    let first = stored(
        agent,
        subject,
        Scope::Kinds(vec![RequestKind::CcpaKnow, RequestKind::CcpaDelete]),
        at(0),
    );
    let second = stored(other_agent, subject, Scope::All, at(1));
    let third = stored(agent, other_subject, Scope::All, at(2));
    for a in [&third, &second, &first] {
        world.repo.insert_authority(a).await.expect("inserts");
    }
    assert!(matches!(
        world.repo.insert_authority(&first).await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(
        world.repo.authority(first.id).await.expect("reads"),
        Some(first.clone())
    );
    assert_eq!(
        world
            .repo
            .authority(AuthorityId::new())
            .await
            .expect("reads"),
        None
    );
    assert_eq!(
        world.repo.authorities_for(subject).await.expect("reads"),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        world.repo.authorities_of_agent(agent).await.expect("reads"),
        vec![first.clone(), third.clone()]
    );

    let mut confirmed = first.clone();
    confirmed.proof.confirm(at(3));
    confirmed.proof.expires_at = at(400);
    confirmed.version = 1;
    world
        .repo
        .update_authority(&confirmed)
        .await
        .expect("updates");
    assert_eq!(
        world.repo.authority(first.id).await.expect("reads"),
        Some(confirmed.clone())
    );
    // The copy read before is stale.
    let mut stale = first.clone();
    stale.proof.scope = Scope::All;
    stale.version = 1;
    assert!(matches!(
        world.repo.update_authority(&stale).await,
        Err(RepositoryError::Conflict)
    ));
    let mut unstored = stored(agent, subject, Scope::All, at(5));
    unstored.version = 1;
    assert!(matches!(
        world.repo.update_authority(&unstored).await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(
        world.repo.authorities_for(subject).await.expect("reads"),
        vec![confirmed, second]
    );
    world.drop().await;
}

async fn cases_round_trip_and_open_ones_come_by_due_time(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (reporter, officer) = (UserId::new(), UserId::new());
    let question = Case::receive(
        CaseKind::PrivacyQuestion,
        Some(reporter),
        None,
        "Who can see my exercise notes?".into(),
        at(0),
    )
    .expect("valid");
    let concern = Case::receive(
        CaseKind::SecurityConcern,
        None,
        Some("worried@example.org".into()),
        "Someone signed in as me".into(),
        at(1),
    )
    .expect("valid");
    let mut later = Case::receive(
        CaseKind::SecurityConcern,
        Some(reporter),
        Some("me@example.org".into()),
        "A strange email".into(),
        at(2),
    )
    .expect("valid");
    for case in [&question, &concern, &later] {
        world.repo.insert_case(case).await.expect("inserts");
    }
    assert!(matches!(
        world.repo.insert_case(&question).await,
        Err(RepositoryError::Conflict)
    ));
    for case in [&question, &concern, &later] {
        assert_eq!(
            world.repo.case(case.id).await.expect("reads").as_ref(),
            Some(case)
        );
    }
    assert_eq!(world.repo.case(CaseId::new()).await.expect("reads"), None);
    let ids = |list: Vec<Case>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    // Security concerns are due in 72 hours, privacy questions in 30 days.
    assert_eq!(
        ids(world.repo.open_cases(10).await.expect("reads")),
        vec![concern.id, later.id, question.id]
    );
    assert_eq!(
        ids(world.repo.open_cases(1).await.expect("reads")),
        vec![concern.id]
    );
    assert_eq!(
        ids(world.repo.cases_of(reporter).await.expect("reads")),
        vec![later.id, question.id]
    );

    let stale = later.clone();
    later
        .advance(
            CaseStatus::InProgress,
            Some("Looking into it".into()),
            officer,
            at(2),
        )
        .expect("moves");
    later.version = 1;
    world.repo.update_case(&later).await.expect("updates");
    later
        .advance(
            CaseStatus::Resolved,
            Some("Phishing; nothing was accessed".into()),
            officer,
            at(3),
        )
        .expect("moves");
    later.version = 2;
    world.repo.update_case(&later).await.expect("updates");
    assert_eq!(
        world.repo.case(later.id).await.expect("reads"),
        Some(later.clone())
    );
    let mut stale = stale;
    stale.version = 1;
    assert!(matches!(
        world.repo.update_case(&stale).await,
        Err(RepositoryError::Conflict)
    ));
    assert!(matches!(
        world.repo.update_case(&question).await,
        Err(RepositoryError::Conflict)
    ));
    assert_eq!(
        ids(world.repo.open_cases(10).await.expect("reads")),
        vec![concern.id, question.id]
    );
    assert_eq!(
        world.repo.cases_of(reporter).await.expect("reads"),
        vec![later, question]
    );
    world.drop().await;
}

async fn personal_data_is_sealed_at_rest(test_db: TestDatabase) {
    const VALUE: &str = "CanaryDiagnosis Zq8Hn";
    const ARCHIVE: &str = "CanaryArchive Lp3Vd";
    const MESSAGE: &str = "CanaryMessage Rt5Kw";
    const REPLY_TO: &str = "canary.ym2jx@example.org";
    const NOTE: &str = "CanaryNote Bw9Fs";
    let world = World::new(test_db).await;
    a_user_row(world.db()).await;
    let (organisation, subject, user) = (OrganisationId::new(), SubjectId::new(), UserId::new());
    let fix = receive(
        organisation,
        RequestKind::Rectification,
        subject,
        Requester::Subject { user },
        Regime::Gdpr,
        rectification(&format!("\"{VALUE}\"")),
        at(0),
    );
    world.insert(&fix).await;
    world
        .repo
        .put_archive(fix.id, organisation, subject, ARCHIVE.as_bytes())
        .await
        .expect("stores");
    let mut case = Case::receive(
        CaseKind::PrivacyQuestion,
        None,
        Some(REPLY_TO.into()),
        MESSAGE.into(),
        at(0),
    )
    .expect("valid");
    world.repo.insert_case(&case).await.expect("inserts");
    case.advance(CaseStatus::InProgress, Some(NOTE.into()), user, at(1))
        .expect("moves");
    case.version = 1;
    world.repo.update_case(&case).await.expect("updates");

    let contents = raw_contents(world.db(), world.test_db.url()).await;
    assert!(!contents.is_empty());
    for (place, bytes) in contents {
        for canary in [VALUE, ARCHIVE, MESSAGE, REPLY_TO, NOTE] {
            assert!(
                !contains(&bytes, canary.as_bytes()),
                "a canary is in clear in {place}"
            );
        }
    }
    // ...though everything reads back through the adapter.
    assert_eq!(world.read(fix.id).await, fix);
    assert_eq!(
        world.repo.archive(fix.id).await.expect("reads"),
        Some(ARCHIVE.as_bytes().to_vec())
    );
    assert_eq!(world.repo.case(case.id).await.expect("reads"), Some(case));
    world.drop().await;
}

/// The list reads go along an index on SQLite: its planner never scans a rights
/// table whole.
#[tokio::test]
async fn list_reads_use_indexes_on_sqlite() {
    let test_db = TestDatabase::sqlite().await;
    test_db.database().migrate_up(None).await.expect("migrates");
    // Plans are asked of a connection that did not create the tables, as a
    // server's are: the one that did keeps the row counts it saw then (none) and
    // may prefer scanning a table it believes empty.
    let fresh = Database::connect(
        test_db.url(),
        &crate::DatabaseOptions {
            max_connections: 1,
            ..crate::DatabaseOptions::default()
        },
    )
    .await
    .expect("connects");
    let db = &fresh;
    // Each read, and whether its index also gives its order (a person's requests,
    // filed by them or about them, merge two indexes and are sorted).
    let reads = [
        (
            queries::open_requests_about(SubjectId::new()).build(DbBackend::Sqlite),
            true,
        ),
        (
            queries::requests_of(UserId::new(), Some(SubjectId::new())).build(DbBackend::Sqlite),
            false,
        ),
        (
            queries::requests_of(UserId::new(), None).build(DbBackend::Sqlite),
            true,
        ),
        (
            queries::open_requests_of(OrganisationId::new(), 10).build(DbBackend::Sqlite),
            true,
        ),
        (
            queries::erasure_steps(RightsRequestId::new()).build(DbBackend::Sqlite),
            true,
        ),
        (
            queries::authorities_for(SubjectId::new()).build(DbBackend::Sqlite),
            true,
        ),
        (
            queries::authorities_of_agent(UserId::new()).build(DbBackend::Sqlite),
            true,
        ),
        (
            queries::cases_of(UserId::new()).build(DbBackend::Sqlite),
            true,
        ),
        (queries::open_cases(10).build(DbBackend::Sqlite), true),
    ];
    for (statement, ordered) in reads {
        let plan = db
            .connection()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", statement.sql),
                statement.values.clone().map_or_else(Vec::new, |v| v.0),
            ))
            .await
            .expect("explains");
        let steps: Vec<String> = plan
            .iter()
            .map(|row| row.try_get::<String>("", "detail").expect("detail"))
            .collect();
        assert!(
            steps.iter().any(|s| s.contains("USING INDEX")),
            "{}: {steps:?}",
            statement.sql
        );
        assert!(
            !steps.iter().any(|s| s.starts_with("SCAN ")),
            "{}: {steps:?}",
            statement.sql
        );
        if ordered {
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE")),
                "{}: {steps:?}",
                statement.sql
            );
        }
    }
    fresh.close().await;
    test_db.drop().await;
}
