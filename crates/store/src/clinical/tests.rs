//! The clinical adapter against migrated SQLite and PostgreSQL databases, with a
//! real keyring and the identity adapter for practices, providers and clients:
//! each scenario runs on both (the PostgreSQL leg when
//! `CUSTODIA_TEST_POSTGRES_URL` is set).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use clinical::model::{
    Appointment, AppointmentDetails, AppointmentStatus, BreakGlassGrant, CareTeamMember, ClientRef,
    ExerciseTemplate, Page, PageRequest, Record, RecordBody, RecordKind,
};
use clinical::ports::{ClinicalRepository, Erased, Restriction};
use clinical::values::{HttpsUrl, Text, TimeZone};
use crypto::{BlindIndexer, IssuedToken, Keyring, MasterKey};
use identity::model::{AccountStatus, Membership, OneTimeToken, Organisation, TokenPurpose, User};
use identity::ports::{IdentityRepository, NewAccount, NewPractice, PeopleRepository};
use identity::values::{
    DataRegion, DateOfBirth, Email, MarketingMode, OrganisationName, PersonName, Phone,
};
use kernel::{DataCategory, OrganisationId, Role, SubjectId, SystemClock, UserId};
use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, EntityTrait as _, IntoActiveModel as _};
use serde_json::json;
use uuid::Uuid;

use super::SeaOrmClinicalRepository;
use super::entity::clinical_record;
use crate::testing::{TestDatabase, contains, count_rows, raw_contents};
use crate::{Database, SeaOrmIdentityRepository, SeaOrmKeyStore};

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
    records_round_trip_sealed_with_their_versions,
    a_stale_version_conflicts_and_writes_nothing,
    record_pages_follow_time_then_id,
    another_clients_records_are_invisible,
    a_body_that_does_not_open_is_unavailable,
    overlapping_bookings_of_one_provider_conflict,
    concurrent_bookings_of_one_provider_book_one,
    care_team_memberships_cover_their_days,
    clients_are_listed_for_providers_and_admins,
    break_glass_is_in_force_until_it_expires,
    templates_are_the_practices_own_and_the_shared_ones,
    restrictions_round_trip_through_the_client,
    erasure_removes_everything_once,
    health_data_is_sealed_at_rest,
    retention_deletes_dormant_charts_and_old_grants_only,
);

/// The adapters on one migrated database.
struct World {
    test_db: TestDatabase,
    identity: SeaOrmIdentityRepository,
    repo: Arc<SeaOrmClinicalRepository>,
}

/// A practice: its id and its owner (an org admin and provider).
struct Practice {
    id: OrganisationId,
    owner: UserId,
}

impl World {
    async fn new(test_db: TestDatabase) -> Self {
        let db = test_db.database().clone();
        db.migrate_up(None).await.expect("migrates");
        let master = MasterKey::generate().expect("randomness");
        let indexer = BlindIndexer::new(&master);
        let keyring = Keyring::new(
            master,
            Arc::new(SeaOrmKeyStore::new(db.clone())),
            Arc::new(SystemClock),
        );
        Self {
            identity: SeaOrmIdentityRepository::new(db.clone(), keyring.clone(), indexer),
            repo: Arc::new(SeaOrmClinicalRepository::new(db, keyring)),
            test_db,
        }
    }

    fn db(&self) -> &Database {
        self.test_db.database()
    }

    async fn count(&self, table: &str) -> u64 {
        count_rows(self.db(), table).await
    }

    /// A new practice whose owner is an org admin and a provider.
    async fn practice(&self) -> Practice {
        let organisation = Organisation {
            id: OrganisationId::new(),
            name: OrganisationName::parse("Harbour Physiotherapy").expect("valid"),
            region: DataRegion::Eu,
            marketing_mode: MarketingMode::OptOut,
            require_mfa: false,
            created_at: T0,
        };
        let user = person(organisation.id, "Olive Owner", None);
        let (_, hash) = IssuedToken::generate().expect("randomness").into_parts();
        let practice = NewPractice {
            memberships: [Role::OrgAdmin, Role::Provider]
                .into_iter()
                .map(|role| Membership {
                    user: user.id,
                    organisation: organisation.id,
                    role,
                    created_at: T0,
                })
                .collect(),
            verification: OneTimeToken {
                hash,
                purpose: TokenPurpose::VerifyEmail,
                user: user.id,
                expires_at: T0 + TimeDelta::days(1),
            },
            password_hash: "$pbkdf2-sha256$i=600000,l=32$c2FsdA$aGFzaA".to_owned(),
            organisation,
            user,
        };
        self.identity
            .create_practice(&practice)
            .await
            .expect("stores the practice");
        Practice {
            id: practice.organisation.id,
            owner: practice.user.id,
        }
    }

    /// A new account of `practice` holding `roles` since `since`.
    async fn member(
        &self,
        practice: &Practice,
        roles: &[Role],
        since: DateTime<Utc>,
        born: Option<NaiveDate>,
    ) -> User {
        let user = person(practice.id, "Casey Client", Some("+44 20 7946 0958"));
        let (_, hash) = IssuedToken::generate().expect("randomness").into_parts();
        let account = NewAccount {
            memberships: roles
                .iter()
                .map(|role| Membership {
                    user: user.id,
                    organisation: practice.id,
                    role: *role,
                    created_at: since,
                })
                .collect(),
            date_of_birth: born.map(|d| DateOfBirth::parse(d, T0.date_naive()).expect("valid")),
            guardianship: None,
            activation: OneTimeToken {
                hash,
                purpose: TokenPurpose::ActivateAccount,
                user: user.id,
                expires_at: T0 + TimeDelta::days(7),
            },
            user: user.clone(),
        };
        self.identity
            .create_account(&account)
            .await
            .expect("stores the account");
        user
    }

    /// A new provider of `practice`.
    async fn provider(&self, practice: &Practice) -> UserId {
        self.member(practice, &[Role::Provider], T0, None).await.id
    }

    /// A new client of `practice` (a client since `since`), as `client` finds them.
    async fn client_since(&self, practice: &Practice, since: DateTime<Utc>) -> ClientRef {
        let user = self.member(practice, &[Role::Client], since, None).await;
        let access = self
            .repo
            .client(practice.id, user.id)
            .await
            .expect("reads")
            .expect("a client");
        assert_eq!(
            access.client,
            ClientRef {
                user: user.id,
                subject: user.subject,
                organisation: practice.id,
                home_organisation: practice.id,
            }
        );
        assert_eq!(access.restricted, Restriction::None);
        access.client
    }

    async fn client(&self, practice: &Practice) -> ClientRef {
        self.client_since(practice, T0).await
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

/// A time with a microsecond part, far from round numbers.
const T0: DateTime<Utc> = DateTime::from_timestamp_micros(1_800_000_000_123_457).expect("valid");

fn at(minutes: i64) -> DateTime<Utc> {
    T0 + TimeDelta::minutes(minutes)
}

fn day(offset: i64) -> NaiveDate {
    T0.date_naive() + TimeDelta::days(offset)
}

/// A person whose home is `organisation`, with a fresh email.
fn person(organisation: OrganisationId, name: &str, phone: Option<&str>) -> User {
    User {
        id: UserId::new(),
        subject: SubjectId::new(),
        home_organisation: organisation,
        name: PersonName::parse(name).expect("valid"),
        email: Email::parse(&format!("{}@example.com", Uuid::now_v7().simple())).expect("valid"),
        phone: phone.map(|p| Phone::parse(p).expect("valid")),
        profession: None,
        status: AccountStatus::PendingVerification,
        email_verified_at: None,
        created_at: T0,
    }
}

fn condition(text: &str) -> RecordBody {
    RecordBody::from_json(
        RecordKind::Condition,
        json!({"text": text, "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"}),
    )
    .expect("valid")
}

fn medication(name: &str) -> RecordBody {
    RecordBody::from_json(
        RecordKind::Medication,
        json!({"name": name, "dose": "400 mg", "frequency": "twice daily", "status": "active"}),
    )
    .expect("valid")
}

/// A new record (version 1) of `client` written at `when` by `by`.
fn record(client: ClientRef, body: RecordBody, when: DateTime<Utc>, by: UserId) -> Record {
    Record {
        id: Uuid::now_v7(),
        client,
        version: 1,
        body,
        created_at: when,
        created_by: by,
        updated_at: when,
        updated_by: by,
    }
}

/// `record`'s next version with `body`, written at `when` by `by`.
fn next_version(record: &Record, body: RecordBody, when: DateTime<Utc>, by: UserId) -> Record {
    Record {
        version: record.version + 1,
        body,
        updated_at: when,
        updated_by: by,
        ..record.clone()
    }
}

fn details(reason: &str) -> AppointmentDetails {
    AppointmentDetails {
        time_zone: TimeZone::parse("Europe/London").expect("valid"),
        location: Some(Text::parse("Room 2").expect("valid")),
        telehealth_url: Some(HttpsUrl::parse("https://meet.example.com/r/42").expect("valid")),
        reason: Some(Text::parse(reason).expect("valid")),
    }
}

/// A booked appointment of `client` with `provider` from minute `from` to `to`.
fn appointment(client: ClientRef, provider: UserId, from: i64, to: i64) -> Appointment {
    Appointment {
        id: Uuid::now_v7(),
        client,
        provider,
        starts_at: at(from),
        ends_at: at(to),
        status: AppointmentStatus::Booked,
        details: details("Follow-up"),
        version: 1,
        created_at: T0,
        created_by: provider,
    }
}

/// `a` with `status`, as its next version.
fn with_status(a: &Appointment, status: AppointmentStatus) -> Appointment {
    Appointment {
        status,
        version: a.version + 1,
        ..a.clone()
    }
}

fn grant(client: ClientRef, holder: UserId, reason: &str, from: i64, to: i64) -> BreakGlassGrant {
    BreakGlassGrant {
        id: Uuid::now_v7(),
        client,
        holder,
        reason: Text::parse(reason).expect("valid"),
        granted_at: at(from),
        expires_at: at(to),
    }
}

fn member(client: ClientRef, provider: UserId, from: i64, to: Option<i64>) -> CareTeamMember {
    CareTeamMember {
        client: client.user,
        provider,
        organisation: client.organisation,
        starts_on: day(from),
        ends_on: to.map(day),
        added_by: provider,
        added_at: T0,
    }
}

fn template(organisation: Option<OrganisationId>, name: &str, minute: i64) -> ExerciseTemplate {
    ExerciseTemplate {
        id: Uuid::now_v7(),
        organisation,
        name: Text::parse(name).expect("valid"),
        instructions: Text::parse("Lie on your back, lift the hips, hold.").expect("valid"),
        body_region: Text::parse("lumbar spine").expect("valid"),
        equipment: vec![Text::parse("mat").expect("valid")],
        media: Some(HttpsUrl::parse("https://media.example.com/bridge.mp4").expect("valid")),
        created_at: at(minute),
        created_by: UserId::new(),
    }
}

/// Every item of a list read page by page with pages of `limit`; checks that only
/// the last page has no next cursor and returns the items and the page count.
async fn all_pages<T, F, Fut>(limit: u32, mut read: F) -> (Vec<T>, usize)
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Page<T>>,
{
    let mut request = PageRequest::first(limit);
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = read(request).await;
        pages += 1;
        assert!(page.items.len() <= limit as usize);
        items.extend(page.items);
        match page.next {
            Some(cursor) => {
                request = PageRequest {
                    after: Some(cursor),
                    limit,
                };
            }
            None => return (items, pages),
        }
        assert!(pages < 100, "the pages never end");
    }
}

async fn records_round_trip_sealed_with_their_versions(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let first = record(client, condition("Low back pain"), at(0), practice.owner);
    world.repo.insert_record(&first).await.expect("inserts");
    assert_eq!(
        world.repo.record(&client, first.id).await.expect("reads"),
        Some(first.clone())
    );
    // The same id twice is a conflict.
    assert!(matches!(
        world.repo.insert_record(&first).await,
        Err(clinical::RepositoryError::Conflict(_))
    ));

    let second = next_version(
        &first,
        condition("Low back pain, better"),
        at(5),
        client.user,
    );
    world
        .repo
        .update_records(&[(&second, 1)])
        .await
        .expect("updates");
    let third = next_version(
        &second,
        condition("Resolved back pain"),
        at(9),
        practice.owner,
    );
    world
        .repo
        .update_records(&[(&third, 2)])
        .await
        .expect("updates");
    assert_eq!(
        world.repo.record(&client, first.id).await.expect("reads"),
        Some(third.clone())
    );
    let versions = world
        .repo
        .record_versions(&client, first.id)
        .await
        .expect("reads");
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.body.clone(), v.at, v.by))
            .collect::<Vec<_>>(),
        vec![
            (1, first.body.clone(), at(0), practice.owner),
            (2, second.body.clone(), at(5), client.user),
            (3, third.body.clone(), at(9), practice.owner),
        ]
    );
    assert!(
        world
            .repo
            .record_versions(&client, Uuid::now_v7())
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

async fn a_stale_version_conflicts_and_writes_nothing(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let a = record(client, condition("Knee pain"), at(0), practice.owner);
    let b = record(client, medication("Ibuprofen"), at(1), practice.owner);
    world.repo.insert_record(&a).await.expect("inserts");
    world.repo.insert_record(&b).await.expect("inserts");
    let b2 = next_version(&b, medication("Naproxen"), at(2), practice.owner);
    world
        .repo
        .update_records(&[(&b2, 1)])
        .await
        .expect("updates");

    // Another writer read version 1 of b as well: its update is stale.
    let stale = next_version(&b, medication("Paracetamol"), at(3), client.user);
    assert!(matches!(
        world.repo.update_records(&[(&stale, 1)]).await,
        Err(clinical::RepositoryError::Conflict(
            "the record changed since it was read"
        ))
    ));
    // In a two-record update, the stale second one undoes the first too.
    let a2 = next_version(&a, condition("Knee pain, worse"), at(3), practice.owner);
    assert!(matches!(
        world.repo.update_records(&[(&a2, 1), (&stale, 1)]).await,
        Err(clinical::RepositoryError::Conflict(_))
    ));
    assert_eq!(
        world.repo.record(&client, a.id).await.expect("reads"),
        Some(a.clone())
    );
    assert_eq!(
        world.repo.record(&client, b.id).await.expect("reads"),
        Some(b2.clone())
    );
    assert_eq!(
        world
            .repo
            .record_versions(&client, a.id)
            .await
            .expect("reads")
            .len(),
        1
    );
    assert_eq!(world.count("clinical_record_versions").await, 3);
    // Both together, at their current versions, go through.
    let b3 = next_version(&b2, medication("Paracetamol"), at(4), practice.owner);
    world
        .repo
        .update_records(&[(&a2, 1), (&b3, 2)])
        .await
        .expect("updates");
    assert_eq!(
        world.repo.record(&client, a.id).await.expect("reads"),
        Some(a2)
    );
    assert_eq!(
        world.repo.record(&client, b.id).await.expect("reads"),
        Some(b3)
    );
    world.drop().await;
}

async fn record_pages_follow_time_then_id(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    // Three at one moment (their ids break the tie), two later, and one of another
    // kind that the list leaves out.
    let mut written = Vec::new();
    for minute in [5, 0, 0, 5, 0] {
        let r = record(
            client,
            condition("Tendinopathy"),
            at(minute),
            practice.owner,
        );
        world.repo.insert_record(&r).await.expect("inserts");
        written.push(r);
    }
    let other_kind = record(client, medication("Ibuprofen"), at(0), practice.owner);
    world
        .repo
        .insert_record(&other_kind)
        .await
        .expect("inserts");
    written.sort_by_key(|r| (r.created_at, r.id));

    let repo = world.repo.clone();
    let (items, pages) = all_pages(2, |page| {
        let repo = repo.clone();
        async move {
            repo.records(&client, RecordKind::Condition, page)
                .await
                .expect("reads")
        }
    })
    .await;
    assert_eq!(pages, 3);
    assert_eq!(items, written);
    let (medications, _) = all_pages(10, |page| {
        let repo = repo.clone();
        async move {
            repo.records(&client, RecordKind::Medication, page)
                .await
                .expect("reads")
        }
    })
    .await;
    assert_eq!(medications, vec![other_kind]);
    world.drop().await;
}

async fn another_clients_records_are_invisible(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let alice = world.client(&practice).await;
    let bob = world.client(&practice).await;
    let hers = record(alice, condition("Asthma"), at(0), practice.owner);
    world.repo.insert_record(&hers).await.expect("inserts");

    assert_eq!(world.repo.record(&bob, hers.id).await.expect("reads"), None);
    assert!(
        world
            .repo
            .record_versions(&bob, hers.id)
            .await
            .expect("reads")
            .is_empty()
    );
    assert!(
        world
            .repo
            .records(&bob, RecordKind::Condition, PageRequest::first(10))
            .await
            .expect("reads")
            .items
            .is_empty()
    );
    // Nor is hers seen through another practice.
    let elsewhere = ClientRef {
        organisation: OrganisationId::new(),
        ..alice
    };
    assert_eq!(
        world.repo.record(&elsewhere, hers.id).await.expect("reads"),
        None
    );
    assert!(
        world
            .repo
            .record_versions(&elsewhere, hers.id)
            .await
            .expect("reads")
            .is_empty()
    );
    // A stale-looking update through the wrong client matches nothing.
    let forged = Record {
        client: bob,
        ..next_version(&hers, condition("Nothing"), at(1), practice.owner)
    };
    assert!(matches!(
        world.repo.update_records(&[(&forged, 1)]).await,
        Err(clinical::RepositoryError::Conflict(_))
    ));
    assert_eq!(
        world.repo.record(&alice, hers.id).await.expect("reads"),
        Some(hers)
    );
    world.drop().await;
}

async fn a_body_that_does_not_open_is_unavailable(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let a = record(client, condition("Migraine"), at(0), practice.owner);
    let b = record(client, condition("Tinnitus"), at(1), practice.owner);
    world.repo.insert_record(&a).await.expect("inserts");
    world.repo.insert_record(&b).await.expect("inserts");
    // b's sealed body moved into a's row: it is bound to b and does not open there.
    let b_row = clinical_record::Entity::find_by_id(b.id)
        .one(world.db().connection())
        .await
        .expect("reads")
        .expect("stored");
    let mut a_row = clinical_record::Entity::find_by_id(a.id)
        .one(world.db().connection())
        .await
        .expect("reads")
        .expect("stored")
        .into_active_model();
    a_row.body_enc = Set(b_row.body_enc);
    a_row
        .update(world.db().connection())
        .await
        .expect("updates");

    assert!(matches!(
        world.repo.record(&client, a.id).await,
        Err(clinical::RepositoryError::Unavailable(_))
    ));
    assert!(matches!(
        world
            .repo
            .records(&client, RecordKind::Condition, PageRequest::first(10))
            .await,
        Err(clinical::RepositoryError::Unavailable(_))
    ));
    assert_eq!(
        world.repo.record(&client, b.id).await.expect("reads"),
        Some(b)
    );
    world.drop().await;
}

async fn overlapping_bookings_of_one_provider_conflict(test_db: TestDatabase) {
    const DOUBLE: &str = "the provider is already booked at that time";
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let other_client = world.client(&practice).await;
    let (p1, p2) = (
        world.provider(&practice).await,
        world.provider(&practice).await,
    );

    let first = appointment(client, p1, 60, 120);
    world.repo.book(&first).await.expect("books");
    assert_eq!(
        world
            .repo
            .appointment(&client, first.id)
            .await
            .expect("reads"),
        Some(first.clone())
    );
    // Overlapping, for the same provider, whoever the client: refused.
    for (from, to) in [(90, 150), (30, 90), (70, 80), (0, 600)] {
        assert!(matches!(
            world
                .repo
                .book(&appointment(other_client, p1, from, to))
                .await,
            Err(clinical::RepositoryError::Conflict(DOUBLE))
        ));
    }
    // Adjacent on either side, and another provider at the same time: fine.
    let after = appointment(other_client, p1, 120, 180);
    world.repo.book(&after).await.expect("adjacent after");
    world
        .repo
        .book(&appointment(client, p1, 0, 60))
        .await
        .expect("adjacent before");
    world
        .repo
        .book(&appointment(other_client, p2, 60, 120))
        .await
        .expect("another provider");
    // A booking that does not hold time is not checked.
    let cancelled = Appointment {
        status: AppointmentStatus::Cancelled,
        ..appointment(client, p1, 60, 120)
    };
    world
        .repo
        .book(&cancelled)
        .await
        .expect("a cancelled booking");

    // Moving `after` onto `first` is refused, and nothing changes.
    let moved = Appointment {
        starts_at: at(100),
        ends_at: at(160),
        version: 2,
        ..after.clone()
    };
    assert!(matches!(
        world.repo.update_appointment(&moved, 1).await,
        Err(clinical::RepositoryError::Conflict(DOUBLE))
    ));
    assert_eq!(
        world
            .repo
            .appointment(&other_client, after.id)
            .await
            .expect("reads"),
        Some(after.clone())
    );
    // Cancelling the first frees its slot.
    let first_cancelled = with_status(&first, AppointmentStatus::Cancelled);
    world
        .repo
        .update_appointment(&first_cancelled, 1)
        .await
        .expect("cancels");
    assert!(matches!(
        world.repo.update_appointment(&first_cancelled, 1).await,
        Err(clinical::RepositoryError::Conflict(
            "the appointment changed since it was read"
        ))
    ));
    world
        .repo
        .update_appointment(&moved, 1)
        .await
        .expect("moves");
    assert_eq!(
        world
            .repo
            .appointment(&other_client, after.id)
            .await
            .expect("reads"),
        Some(moved)
    );
    // Only the client's own, in (start, id) order.
    assert_eq!(
        world
            .repo
            .appointment(&client, after.id)
            .await
            .expect("reads"),
        None
    );
    let repo = world.repo.clone();
    let (mine, _) = all_pages(1, |page| {
        let repo = repo.clone();
        async move { repo.appointments(&client, page).await.expect("reads") }
    })
    .await;
    let mut expected: Vec<(DateTime<Utc>, Uuid)> =
        mine.iter().map(|a| (a.starts_at, a.id)).collect();
    expected.sort();
    assert_eq!(
        mine.iter().map(|a| (a.starts_at, a.id)).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(mine.len(), 3);
    assert!(mine.iter().all(|a| a.client == client));
    world.drop().await;
}

async fn concurrent_bookings_of_one_provider_book_one(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    // A provider with no schedule row yet: the first bookings race to create it.
    let provider = world.provider(&practice).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let repo = world.repo.clone();
            let a = appointment(client, provider, 60 + i * 5, 120 + i * 5);
            tokio::spawn(async move { repo.book(&a).await })
        })
        .collect();
    let mut booked = 0;
    for task in tasks {
        match task.await.expect("joins") {
            Ok(()) => booked += 1,
            Err(clinical::RepositoryError::Conflict(rule)) => {
                assert_eq!(rule, "the provider is already booked at that time");
            }
            Err(other) => panic!("unexpected failure: {other}"),
        }
    }
    assert_eq!(booked, 1);
    assert_eq!(world.count("clinical_appointments").await, 1);
    world.drop().await;
}

async fn care_team_memberships_cover_their_days(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let provider = world.provider(&practice).await;
    let other = world.provider(&practice).await;

    let first = member(client, provider, -10, None);
    world.repo.add_care_team_member(&first).await.expect("adds");
    assert!(
        world
            .repo
            .on_care_team(&client, provider, day(0))
            .await
            .expect("reads")
    );
    assert!(
        !world
            .repo
            .on_care_team(&client, provider, day(-11))
            .await
            .expect("reads")
    );
    assert!(
        !world
            .repo
            .on_care_team(&client, other, day(0))
            .await
            .expect("reads")
    );
    // An open membership, or one not ended before the new one starts, conflicts.
    assert!(matches!(
        world
            .repo
            .add_care_team_member(&member(client, provider, 5, None))
            .await,
        Err(clinical::RepositoryError::Conflict(
            "the provider is on the care team already"
        ))
    ));
    assert!(
        world
            .repo
            .end_care_team_membership(&client, provider, day(-1))
            .await
            .expect("ends")
    );
    assert!(
        !world
            .repo
            .end_care_team_membership(&client, provider, day(-1))
            .await
            .expect("nothing open")
    );
    assert!(
        world
            .repo
            .on_care_team(&client, provider, day(-1))
            .await
            .expect("reads")
    );
    assert!(
        !world
            .repo
            .on_care_team(&client, provider, day(0))
            .await
            .expect("reads")
    );
    assert!(matches!(
        world
            .repo
            .add_care_team_member(&member(client, provider, -1, Some(3)))
            .await,
        Err(clinical::RepositoryError::Conflict(_))
    ));
    let second = member(client, provider, 0, Some(3));
    world
        .repo
        .add_care_team_member(&second)
        .await
        .expect("adds");
    assert!(
        world
            .repo
            .on_care_team(&client, provider, day(3))
            .await
            .expect("reads")
    );
    assert!(
        !world
            .repo
            .on_care_team(&client, provider, day(4))
            .await
            .expect("reads")
    );
    // Through another practice, none of it counts.
    let elsewhere = ClientRef {
        organisation: OrganisationId::new(),
        ..client
    };
    assert!(
        !world
            .repo
            .on_care_team(&elsewhere, provider, day(0))
            .await
            .expect("reads")
    );

    let team = world.repo.care_team(&client).await.expect("reads");
    assert_eq!(
        team,
        vec![
            CareTeamMember {
                ends_on: Some(day(-1)),
                ..first
            },
            second
        ]
    );
    assert!(
        world
            .repo
            .care_team(&elsewhere)
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

async fn clients_are_listed_for_providers_and_admins(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let provider = world.provider(&practice).await;
    // Five clients: two became clients at one moment, the rest later.
    let mut clients = Vec::new();
    for minute in [10, 0, 0, 20, 30] {
        clients.push((at(minute), world.client_since(&practice, at(minute)).await));
    }
    // Someone else's client is never listed.
    let elsewhere = world.practice().await;
    world.client(&elsewhere).await;

    // The provider is on three care teams today (two added at one moment), had one
    // that ended yesterday, and has one that starts tomorrow.
    let added = [at(100), at(100), at(50)];
    for (i, when) in added.iter().enumerate() {
        world
            .repo
            .add_care_team_member(&CareTeamMember {
                added_at: *when,
                ..member(clients[i].1, provider, -3, None)
            })
            .await
            .expect("adds");
    }
    world
        .repo
        .add_care_team_member(&member(clients[3].1, provider, -5, Some(-1)))
        .await
        .expect("adds");
    world
        .repo
        .add_care_team_member(&member(clients[4].1, provider, 1, None))
        .await
        .expect("adds");

    let repo = world.repo.clone();
    let (all, pages) = all_pages(2, |page| {
        let repo = repo.clone();
        async move {
            repo.clients(practice.id, None, day(0), page)
                .await
                .expect("reads")
        }
    })
    .await;
    let mut expected: Vec<_> = clients.iter().map(|(since, c)| (*since, *c)).collect();
    expected.sort_by_key(|(since, c)| (*since, c.user.as_uuid()));
    assert_eq!(pages, 3);
    assert_eq!(
        all.iter().map(|l| (l.since, l.client)).collect::<Vec<_>>(),
        expected
    );

    let (mine, pages) = all_pages(2, |page| {
        let repo = repo.clone();
        async move {
            repo.clients(practice.id, Some(provider), day(0), page)
                .await
                .expect("reads")
        }
    })
    .await;
    let mut expected: Vec<_> = added
        .iter()
        .zip(&clients)
        .map(|(when, (_, c))| (*when, *c))
        .collect();
    expected.sort_by_key(|(when, c)| (*when, c.user.as_uuid()));
    assert_eq!(pages, 2);
    assert_eq!(
        mine.iter().map(|l| (l.since, l.client)).collect::<Vec<_>>(),
        expected
    );
    // Yesterday the ended membership counted; tomorrow the new one does.
    let yesterday = world
        .repo
        .clients(practice.id, Some(provider), day(-1), PageRequest::first(10))
        .await
        .expect("reads");
    assert_eq!(yesterday.items.len(), 4);
    let tomorrow = world
        .repo
        .clients(practice.id, Some(provider), day(1), PageRequest::first(10))
        .await
        .expect("reads");
    assert_eq!(tomorrow.items.len(), 4);
    assert!(tomorrow.items.iter().any(|l| l.client == clients[4].1));
    assert!(
        world
            .repo
            .clients(elsewhere.id, Some(provider), day(0), PageRequest::first(10))
            .await
            .expect("reads")
            .items
            .is_empty()
    );
    world.drop().await;
}

async fn break_glass_is_in_force_until_it_expires(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let holder = world.provider(&practice).await;
    let g = grant(client, holder, "Unconscious in the clinic", 0, 60);
    world.repo.grant_break_glass(&g).await.expect("grants");
    assert!(matches!(
        world.repo.grant_break_glass(&g).await,
        Err(clinical::RepositoryError::Conflict(_))
    ));
    for (minute, in_force) in [(-1, false), (0, true), (59, true), (60, false), (90, false)] {
        assert_eq!(
            world
                .repo
                .break_glass_in_force(&client, holder, at(minute))
                .await
                .expect("reads"),
            in_force,
            "at minute {minute}"
        );
    }
    assert!(
        !world
            .repo
            .break_glass_in_force(&client, practice.owner, at(30))
            .await
            .expect("reads")
    );
    let elsewhere = ClientRef {
        organisation: OrganisationId::new(),
        ..client
    };
    assert!(
        !world
            .repo
            .break_glass_in_force(&elsewhere, holder, at(30))
            .await
            .expect("reads")
    );

    let mut grants = vec![g];
    for (from, to) in [(0, 30), (-120, -60)] {
        let other = grant(client, practice.owner, "Covering a colleague", from, to);
        world.repo.grant_break_glass(&other).await.expect("grants");
        grants.push(other);
    }
    grants.sort_by_key(|g| (g.granted_at, g.id));
    let repo = world.repo.clone();
    let (listed, pages) = all_pages(2, |page| {
        let repo = repo.clone();
        async move {
            repo.break_glass_grants(practice.id, page)
                .await
                .expect("reads")
        }
    })
    .await;
    assert_eq!(pages, 2);
    assert_eq!(listed, grants);
    assert!(
        world
            .repo
            .break_glass_grants(OrganisationId::new(), PageRequest::first(10))
            .await
            .expect("reads")
            .items
            .is_empty()
    );
    world.drop().await;
}

async fn templates_are_the_practices_own_and_the_shared_ones(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (ours, theirs) = (OrganisationId::new(), OrganisationId::new());
    let own = template(Some(ours), "Bridge", 0);
    let shared = template(None, "Clamshell", 0);
    let later = template(None, "Bird dog", 5);
    let foreign = template(Some(theirs), "Secret sauce", 1);
    for t in [&own, &shared, &later, &foreign] {
        world.repo.add_template(t).await.expect("adds");
    }
    assert!(matches!(
        world.repo.add_template(&own).await,
        Err(clinical::RepositoryError::Conflict(_))
    ));
    assert_eq!(
        world.repo.template(ours, own.id).await.expect("reads"),
        Some(own.clone())
    );
    assert_eq!(
        world.repo.template(ours, shared.id).await.expect("reads"),
        Some(shared.clone())
    );
    assert_eq!(
        world.repo.template(ours, foreign.id).await.expect("reads"),
        None
    );
    assert_eq!(
        world
            .repo
            .template(theirs, foreign.id)
            .await
            .expect("reads"),
        Some(foreign.clone())
    );

    let mut expected = vec![own, shared, later];
    expected.sort_by_key(|t| (t.created_at, t.id));
    let repo = world.repo.clone();
    let (listed, pages) = all_pages(1, |page| {
        let repo = repo.clone();
        async move { repo.templates(ours, page).await.expect("reads") }
    })
    .await;
    assert_eq!(pages, 3);
    assert_eq!(listed, expected);
    world.drop().await;
}

async fn restrictions_round_trip_through_the_client(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let provider = world.provider(&practice).await;
    for restriction in [
        Restriction::All,
        Restriction::Categories(vec![DataCategory::HealthRecord, DataCategory::Medications]),
        Restriction::None,
        Restriction::Categories(vec![DataCategory::Appointments]),
    ] {
        world
            .repo
            .set_restriction(client.subject, &restriction)
            .await
            .expect("sets");
        let access = world
            .repo
            .client(practice.id, client.user)
            .await
            .expect("reads")
            .expect("a client");
        assert_eq!(access.client, client);
        assert_eq!(access.restricted, restriction);
    }
    // A provider is not a client, and a client is not one elsewhere.
    assert_eq!(
        world
            .repo
            .client(practice.id, provider)
            .await
            .expect("reads"),
        None
    );
    assert_eq!(
        world
            .repo
            .client(OrganisationId::new(), client.user)
            .await
            .expect("reads"),
        None
    );
    assert!(
        world
            .repo
            .is_provider(practice.id, provider)
            .await
            .expect("reads")
    );
    assert!(
        world
            .repo
            .is_provider(practice.id, practice.owner)
            .await
            .expect("reads")
    );
    assert!(
        !world
            .repo
            .is_provider(practice.id, client.user)
            .await
            .expect("reads")
    );
    assert!(
        !world
            .repo
            .is_provider(OrganisationId::new(), provider)
            .await
            .expect("reads")
    );
    world.drop().await;
}

async fn erasure_removes_everything_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let provider = world.provider(&practice).await;
    let born = NaiveDate::from_ymd_opt(1990, 4, 2).expect("valid");
    let user = world
        .member(&practice, &[Role::Client], T0, Some(born))
        .await;
    let client = world
        .repo
        .client(practice.id, user.id)
        .await
        .expect("reads")
        .expect("a client")
        .client;
    let bystander = world.client(&practice).await;

    let r = record(client, condition("Sciatica"), at(0), provider);
    let m = record(client, medication("Pregabalin"), at(1), provider);
    world.repo.insert_record(&r).await.expect("inserts");
    world.repo.insert_record(&m).await.expect("inserts");
    let r2 = next_version(&r, condition("Sciatica, improving"), at(2), provider);
    world
        .repo
        .update_records(&[(&r2, 1)])
        .await
        .expect("updates");
    let a = appointment(client, provider, 60, 90);
    world.repo.book(&a).await.expect("books");
    let team = member(client, provider, -1, None);
    world.repo.add_care_team_member(&team).await.expect("adds");
    let g = grant(client, practice.owner, "Emergency", 0, 60);
    world.repo.grant_break_glass(&g).await.expect("grants");
    world
        .repo
        .set_restriction(client.subject, &Restriction::All)
        .await
        .expect("restricts");
    // The bystander's rows stay.
    let theirs = record(bystander, condition("Gout"), at(0), provider);
    world.repo.insert_record(&theirs).await.expect("inserts");
    world
        .repo
        .book(&appointment(bystander, provider, 120, 150))
        .await
        .expect("books");
    world
        .repo
        .add_care_team_member(&member(bystander, provider, -1, None))
        .await
        .expect("adds");

    let holdings = world
        .repo
        .subject_holdings(client.subject)
        .await
        .expect("reads");
    assert_eq!(holdings.client, Some(client));
    let identity = holdings.identity.as_ref().expect("their identity");
    assert_eq!(identity.name, "Casey Client");
    assert_eq!(identity.email, user.email.as_str());
    assert_eq!(
        identity.phone.as_deref(),
        Some(user.phone.as_ref().expect("a phone").as_str())
    );
    assert_eq!(identity.birth_date, Some(born));
    assert_eq!(
        world
            .repo
            .client_identity(&client)
            .await
            .expect("reads")
            .as_ref(),
        Some(identity)
    );
    assert_eq!(holdings.records, vec![r2.clone(), m.clone()]);
    let mut versions: Vec<(Uuid, u32)> = holdings
        .versions
        .iter()
        .map(|(id, v)| (*id, v.version))
        .collect();
    versions.sort();
    // The versions each record replaced; the current ones are the records.
    assert_eq!(versions, vec![(r.id, 1)]);
    assert_eq!(holdings.appointments, vec![a.clone()]);
    assert_eq!(holdings.care_team, vec![team]);
    assert_eq!(holdings.break_glass, vec![g.clone()]);

    let erased = world
        .repo
        .erase_subject(client.subject)
        .await
        .expect("erases");
    let reported: BTreeSet<(&str, Uuid, &str)> = erased
        .iter()
        .map(|e: &Erased| (e.kind, e.id, e.category.as_str()))
        .collect();
    let team_id = erased
        .iter()
        .find(|e| e.kind == "care_team_member")
        .expect("the membership is reported")
        .id;
    let expected: BTreeSet<(&str, Uuid, &str)> = [
        ("condition", r.id, DataCategory::HealthRecord.as_str()),
        ("medication", m.id, DataCategory::Medications.as_str()),
        ("appointment", a.id, DataCategory::Appointments.as_str()),
        ("care_team_member", team_id, DataCategory::Profile.as_str()),
        ("break_glass_grant", g.id, DataCategory::AccessLog.as_str()),
        (
            "restriction",
            client.subject.as_uuid(),
            DataCategory::Consent.as_str(),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(reported, expected);
    assert_eq!(erased.len(), expected.len());

    // Nothing of theirs is left, and a second erasure finds nothing.
    assert!(
        world
            .repo
            .erase_subject(client.subject)
            .await
            .expect("erases")
            .is_empty()
    );
    let after = world
        .repo
        .subject_holdings(client.subject)
        .await
        .expect("reads");
    assert!(after.records.is_empty());
    assert!(after.versions.is_empty());
    assert!(after.appointments.is_empty());
    assert!(after.care_team.is_empty());
    assert!(after.break_glass.is_empty());
    assert_eq!(
        world
            .repo
            .client(practice.id, client.user)
            .await
            .expect("reads")
            .map(|access| access.restricted),
        Some(Restriction::None)
    );
    assert_eq!(world.count("clinical_records").await, 1);
    assert_eq!(world.count("clinical_record_versions").await, 1);
    assert_eq!(world.count("clinical_appointments").await, 1);
    assert_eq!(world.count("clinical_care_team").await, 1);
    assert_eq!(world.count("clinical_break_glass").await, 0);
    assert_eq!(world.count("clinical_restrictions").await, 0);
    assert_eq!(
        world
            .repo
            .record(&bystander, theirs.id)
            .await
            .expect("reads"),
        Some(theirs)
    );
    world.drop().await;
}

async fn health_data_is_sealed_at_rest(test_db: TestDatabase) {
    const CANARY: &str = "CanaryDiagnosis-QX7";
    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let client = world.client(&practice).await;
    let provider = world.provider(&practice).await;
    let r = record(
        client,
        condition(&format!("{CANARY} of the knee")),
        at(0),
        provider,
    );
    world.repo.insert_record(&r).await.expect("inserts");
    let r2 = next_version(
        &r,
        condition(&format!("{CANARY}, resolved")),
        at(1),
        provider,
    );
    world
        .repo
        .update_records(&[(&r2, 1)])
        .await
        .expect("updates");
    let a = Appointment {
        details: details(&format!("Review of {CANARY}")),
        ..appointment(client, provider, 0, 30)
    };
    world.repo.book(&a).await.expect("books");
    let g = grant(client, provider, &format!("Suspected {CANARY}"), 0, 60);
    world.repo.grant_break_glass(&g).await.expect("grants");

    // Nowhere in the stored bytes...
    let contents = raw_contents(world.db(), world.test_db.url()).await;
    assert!(!contents.is_empty());
    for (place, bytes) in contents {
        assert!(
            !contains(&bytes, CANARY.as_bytes()),
            "the canary is in clear in {place}"
        );
    }
    // ...though it reads back through the adapter.
    assert_eq!(
        world.repo.record(&client, r.id).await.expect("reads"),
        Some(r2)
    );
    assert_eq!(
        world
            .repo
            .record_versions(&client, r.id)
            .await
            .expect("reads")[0]
            .body,
        r.body
    );
    assert_eq!(
        world.repo.appointment(&client, a.id).await.expect("reads"),
        Some(a)
    );
    assert_eq!(
        world
            .repo
            .break_glass_grants(practice.id, PageRequest::first(10))
            .await
            .expect("reads")
            .items,
        vec![g]
    );
    world.drop().await;
}

/// Minutes in `n` days.
const fn days(n: i64) -> i64 {
    n * 24 * 60
}

/// R1: the sweep deletes break-glass grants six years after they expired, and a
/// chart seven years after its last activity: whole (records with versions,
/// appointments, care team, restriction), and only when nothing in it is recent.
/// A dry run reports the same and deletes nothing; a second sweep finds nothing.
async fn retention_deletes_dormant_charts_and_old_grants_only(test_db: TestDatabase) {
    use clinical::ClinicalRetention;
    use kernel::personal_data::{Expired, ExpiryAction, RetentionSweep};
    use kernel::{Purpose, RequestContext};

    let world = World::new(test_db).await;
    let practice = world.practice().await;
    let provider = world.provider(&practice).await;
    // Seven years (2,557 days) before `now` is day 43; six years (2,192 days) is day 408.
    let now = at(days(2_600));
    let chart_cutoff = at(days(43));
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(world.client(&practice).await);
    }
    let [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map(|i| clients[i]);

    // A: everything long ago: dormant.
    let r = record(a, condition("Sciatica"), at(0), provider);
    world.repo.insert_record(&r).await.expect("inserts");
    let r2 = next_version(&r, condition("Sciatica, improving"), at(2), provider);
    world
        .repo
        .update_records(&[(&r2, 1)])
        .await
        .expect("updates");
    let m = record(a, medication("Pregabalin"), at(1), provider);
    world.repo.insert_record(&m).await.expect("inserts");
    world
        .repo
        .book(&appointment(a, provider, 60, 90))
        .await
        .expect("books");
    world
        .repo
        .add_care_team_member(&member(a, provider, -1, Some(10)))
        .await
        .expect("adds");
    let old_grant = grant(a, practice.owner, "Emergency", 0, 60);
    world
        .repo
        .grant_break_glass(&old_grant)
        .await
        .expect("grants");
    world
        .repo
        .set_restriction(a.subject, &Restriction::All)
        .await
        .expect("restricts");
    // B: an old record written again on day 100.
    let rb = record(b, condition("Gout"), at(0), provider);
    world.repo.insert_record(&rb).await.expect("inserts");
    let rb2 = next_version(&rb, condition("Gout, resolved"), at(days(100)), provider);
    world
        .repo
        .update_records(&[(&rb2, 1)])
        .await
        .expect("updates");
    // C: an old record, and a care-team membership still open.
    world
        .repo
        .insert_record(&record(c, condition("Asthma"), at(0), provider))
        .await
        .expect("inserts");
    world
        .repo
        .add_care_team_member(&member(c, provider, -1, None))
        .await
        .expect("adds");
    // D: an old record, and an appointment ending on day 50.
    world
        .repo
        .insert_record(&record(d, condition("Migraine"), at(0), provider))
        .await
        .expect("inserts");
    world
        .repo
        .book(&appointment(d, provider, days(50) - 30, days(50)))
        .await
        .expect("books");
    // E: only a care-team membership, ended on day 5: dormant.
    world
        .repo
        .add_care_team_member(&member(e, provider, -1, Some(5)))
        .await
        .expect("adds");
    // F: an old record, and a grant that expired on day 500 (kept, and keeping the chart).
    world
        .repo
        .insert_record(&record(f, condition("Fracture"), at(0), provider))
        .await
        .expect("inserts");
    let recent = grant(f, practice.owner, "Emergency", days(500) - 60, days(500));
    world.repo.grant_break_glass(&recent).await.expect("grants");

    let mut expected = vec![a.subject, e.subject];
    expected.sort_by_key(|s| s.as_uuid());
    assert_eq!(
        world
            .repo
            .dormant_charts(chart_cutoff, 10)
            .await
            .expect("reads"),
        expected
    );
    assert_eq!(
        world
            .repo
            .dormant_charts(chart_cutoff, 1)
            .await
            .expect("reads"),
        expected[..1]
    );
    // A chart no longer dormant at the cutoff is left whole.
    assert_eq!(
        world
            .repo
            .delete_dormant_chart(b.subject, chart_cutoff, false)
            .await
            .expect("checks"),
        None
    );

    let tables = [
        "clinical_records",
        "clinical_record_versions",
        "clinical_appointments",
        "clinical_care_team",
        "clinical_break_glass",
        "clinical_restrictions",
    ];
    let counts = || async {
        let mut out = Vec::new();
        for table in tables {
            out.push(world.count(table).await);
        }
        out
    };
    let before = counts().await;
    let sweep = ClinicalRetention::new(world.repo.clone());
    assert_eq!(sweep.context(), "clinical");
    let ctx = RequestContext::system("retention", Purpose::Legal, now);
    let report = |profile, health, medications, appointments, grants| {
        let line = |category, records| Expired {
            category,
            action: ExpiryAction::Deleted,
            records,
        };
        vec![
            line(DataCategory::Profile, profile),
            line(DataCategory::HealthRecord, health),
            line(DataCategory::Medications, medications),
            line(DataCategory::TreatmentPlans, 0),
            line(DataCategory::ExercisePrograms, 0),
            line(DataCategory::Appointments, appointments),
            line(DataCategory::Communications, 0),
            line(DataCategory::AccessLog, grants),
        ]
    };
    // Profile: A's and E's memberships and A's restriction.
    let expected = report(3, 1, 1, 1, 1);
    assert_eq!(
        sweep.sweep(&ctx, now, true).await.expect("counts"),
        expected
    );
    assert_eq!(counts().await, before, "a dry run deletes nothing");

    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expected
    );
    let held = |subject| world.repo.subject_holdings(subject);
    let gone = held(a.subject).await.expect("reads");
    assert!(gone.records.is_empty() && gone.versions.is_empty());
    assert!(gone.appointments.is_empty() && gone.care_team.is_empty());
    assert!(gone.break_glass.is_empty());
    assert!(held(e.subject).await.expect("reads").care_team.is_empty());
    assert_eq!(
        world
            .repo
            .client(practice.id, a.user)
            .await
            .expect("reads")
            .map(|access| access.restricted),
        Some(Restriction::None)
    );
    for (client, records) in [(b, 1), (c, 1), (d, 1), (f, 1)] {
        assert_eq!(
            held(client.subject).await.expect("reads").records.len(),
            records,
            "a chart with recent activity is kept"
        );
    }
    assert_eq!(held(c.subject).await.expect("reads").care_team.len(), 1);
    assert_eq!(held(d.subject).await.expect("reads").appointments.len(), 1);
    assert_eq!(
        held(f.subject).await.expect("reads").break_glass,
        vec![recent]
    );
    // B's two versions, C's, D's and F's records: four records, five versions.
    assert_eq!(counts().await, vec![4, 5, 1, 1, 1, 0]);
    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        report(0, 0, 0, 0, 0)
    );
    world.drop().await;
}
