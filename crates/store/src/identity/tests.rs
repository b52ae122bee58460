//! The identity adapters against migrated SQLite and PostgreSQL databases, with a
//! real keyring: each scenario runs on both (the PostgreSQL leg when
//! `CUSTODIA_TEST_POSTGRES_URL` is set).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use crypto::{BlindIndexer, IssuedToken, Keyring, MasterKey, TokenHash};
use identity::model::{
    AccountStatus, Credentials, Membership, Notice, NoticeKind, OneTimeToken, Organisation,
    SecurityEvent, SecurityEventKind, Session, SessionId, TokenPurpose, TokenRejection, User,
};
use identity::ports::{
    IdentityRepository, NewPractice, Notifier, RepositoryError, SecurityEventLog, SessionRepository,
};
use identity::values::{
    DataRegion, Email, MarketingMode, OrganisationName, PersonName, Phone, Profession,
};
use kernel::{OrganisationId, Role, Sensitive, SubjectId, SystemClock, UserId};
use sea_orm::EntityTrait;
use uuid::Uuid;

use super::entity::outbox;
use super::{
    OutboxNotifier, SeaOrmIdentityRepository, SeaOrmSecurityEventLog, SeaOrmSessionRepository,
};
use crate::testing::{TestDatabase, count_rows};
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

// After the macro, which it uses.
mod members;

on_both_databases!(
    practice_round_trips,
    duplicate_email_stores_nothing,
    racing_duplicate_email_is_caught_by_the_unique_index,
    personal_fields_never_reach_the_database_in_clear,
    tokens_redeem_once,
    concurrent_redemption_succeeds_once,
    failures_and_verification_update_the_account,
    sessions_are_found_touched_listed_and_revoked,
    security_events_list_newest_first,
    retention_deletes_only_expired_security_events,
    outbox_seals_the_token,
);

/// The adapters on one migrated database.
struct World {
    test_db: TestDatabase,
    keyring: Keyring,
    accounts: SeaOrmIdentityRepository,
    sessions: SeaOrmSessionRepository,
    events: SeaOrmSecurityEventLog,
    outbox: OutboxNotifier,
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
            accounts: SeaOrmIdentityRepository::new(db.clone(), keyring.clone(), indexer),
            sessions: SeaOrmSessionRepository::new(db.clone()),
            events: SeaOrmSecurityEventLog::new(db.clone()),
            outbox: OutboxNotifier::new(db, keyring.clone()),
            keyring,
            test_db,
        }
    }

    fn db(&self) -> &Database {
        self.test_db.database()
    }

    async fn count(&self, table: &str) -> u64 {
        count_rows(self.db(), table).await
    }

    /// Stores a practice for `email`; returns it.
    async fn practice(&self, email: &str) -> NewPractice {
        let practice = Sample::new(email).practice;
        self.accounts
            .create_practice(&practice)
            .await
            .expect("stores the practice");
        practice
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

/// A moment as the database keeps it (microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A sign-up's records, and the verification token's text.
struct Sample {
    practice: NewPractice,
    token: Sensitive<String>,
}

impl Sample {
    fn new(email: &str) -> Self {
        Self::with(
            "Ada Lovelace",
            email,
            Some("+44 20 7946 0958"),
            now() + TimeDelta::days(1),
        )
    }

    fn with(name: &str, email: &str, phone: Option<&str>, expires_at: DateTime<Utc>) -> Self {
        let at = now();
        let organisation = Organisation {
            id: OrganisationId::new(),
            name: OrganisationName::parse("Harbour Physiotherapy").expect("valid"),
            region: DataRegion::Eu,
            marketing_mode: MarketingMode::OptOut,
            require_mfa: true,
            created_at: at,
        };
        let user = User {
            id: UserId::new(),
            subject: SubjectId::new(),
            home_organisation: organisation.id,
            name: PersonName::parse(name).expect("valid"),
            email: Email::parse(email).expect("valid"),
            phone: phone.map(|p| Phone::parse(p).expect("valid")),
            profession: Some(Profession::parse("Physiotherapist").expect("valid")),
            status: AccountStatus::PendingVerification,
            email_verified_at: None,
            created_at: at,
        };
        let memberships = [Role::OrgAdmin, Role::Provider]
            .into_iter()
            .map(|role| Membership {
                user: user.id,
                organisation: organisation.id,
                role,
                created_at: at,
            })
            .collect();
        let (token, hash) = IssuedToken::generate().expect("randomness").into_parts();
        Self {
            practice: NewPractice {
                verification: OneTimeToken {
                    hash,
                    purpose: TokenPurpose::VerifyEmail,
                    user: user.id,
                    expires_at,
                },
                organisation,
                user,
                password_hash: "$pbkdf2-sha256$i=600000,l=32$c2FsdA$aGFzaA".to_owned(),
                memberships,
            },
            token,
        }
    }
}

async fn practice_round_trips(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice("ada@example.com").await;
    let user = &practice.user;

    let email = Email::parse("  ADA@Example.COM ").expect("valid");
    let (found, credentials) = world
        .accounts
        .find_by_email(&email)
        .await
        .expect("reads")
        .expect("found case-insensitively");
    assert_eq!(&found, user);
    assert_eq!(
        credentials,
        Credentials {
            password_hash: Some(practice.password_hash.clone()),
            failed_attempts: 0,
            locked_until: None,
        }
    );
    assert_eq!(
        world.accounts.user(user.id).await.expect("reads").as_ref(),
        Some(user)
    );
    assert_eq!(
        world
            .accounts
            .organisation(practice.organisation.id)
            .await
            .expect("reads"),
        Some(practice.organisation.clone())
    );
    assert_eq!(
        world.accounts.memberships(user.id).await.expect("reads"),
        practice.memberships
    );

    // A person without a phone or profession round-trips too.
    let mut bare = Sample::with("Grace Hopper", "grace@example.com", None, now()).practice;
    bare.user.profession = None;
    world.accounts.create_practice(&bare).await.expect("stores");
    assert_eq!(
        world.accounts.user(bare.user.id).await.expect("reads"),
        Some(bare.user.clone())
    );

    // Absent is `None`, not an error.
    let nobody = Email::parse("nobody@example.com").expect("valid");
    assert!(
        world
            .accounts
            .find_by_email(&nobody)
            .await
            .expect("reads")
            .is_none()
    );
    assert!(
        world
            .accounts
            .user(UserId::new())
            .await
            .expect("reads")
            .is_none()
    );
    assert!(
        world
            .accounts
            .organisation(OrganisationId::new())
            .await
            .expect("reads")
            .is_none()
    );
    assert!(
        world
            .accounts
            .memberships(UserId::new())
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

const IDENTITY_TABLES: [&str; 4] = ["organisations", "users", "memberships", "one_time_tokens"];

async fn identity_counts(world: &World) -> Vec<u64> {
    let mut counts = Vec::new();
    for table in IDENTITY_TABLES {
        counts.push(world.count(table).await);
    }
    counts
}

async fn duplicate_email_stores_nothing(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    world.practice("ada@example.com").await;
    let before = identity_counts(&world).await;
    assert_eq!(before, vec![1, 1, 2, 1]);

    let second = Sample::new("ADA@example.com").practice;
    let err = world
        .accounts
        .create_practice(&second)
        .await
        .expect_err("the email is registered");
    assert!(matches!(err, RepositoryError::Duplicate), "{err:?}");
    assert_eq!(identity_counts(&world).await, before);
    assert!(
        world
            .accounts
            .user(second.user.id)
            .await
            .expect("reads")
            .is_none()
    );
    world.drop().await;
}

async fn racing_duplicate_email_is_caught_by_the_unique_index(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    world.practice("ada@example.com").await;
    let before = identity_counts(&world).await;

    let second = Sample::new("ada@example.com").practice;
    let err = world
        .accounts
        .create_practice_racing(&second)
        .await
        .expect_err("the unique index refuses it");
    assert!(matches!(err, RepositoryError::Duplicate), "{err:?}");
    assert_eq!(
        identity_counts(&world).await,
        before,
        "the transaction rolled back"
    );

    // Another unique rule (here a reused subject id) is not a duplicate email.
    let first = world
        .accounts
        .find_by_email(&Email::parse("ada@example.com").expect("valid"))
        .await
        .expect("reads")
        .expect("found")
        .0;
    let mut reused_subject = Sample::new("grace@example.com").practice;
    reused_subject.user.subject = first.subject;
    let err = world
        .accounts
        .create_practice(&reused_subject)
        .await
        .expect_err("the subject is taken");
    assert!(matches!(err, RepositoryError::Unavailable(_)), "{err:?}");
    assert_eq!(identity_counts(&world).await, before);
    world.drop().await;
}

async fn personal_fields_never_reach_the_database_in_clear(test_db: TestDatabase) {
    const CANARIES: [&str; 4] = [
        "CanaryName-ZX81",
        "canary-zx81@example.com",
        "+15551234567",
        "15551234567",
    ];
    let world = World::new(test_db).await;
    let sample = Sample::with(
        "CanaryName-ZX81",
        "canary-zx81@example.com",
        Some("+15551234567"),
        now() + TimeDelta::days(1),
    );
    world
        .accounts
        .create_practice(&sample.practice)
        .await
        .expect("stores");
    let user = &sample.practice.user;
    world
        .outbox
        .send(&Notice {
            user: user.id,
            kind: NoticeKind::VerifyEmail {
                token: sample.token.clone(),
            },
            at: now(),
        })
        .await
        .expect("queues");
    // The adapter still reads them back.
    let (found, _) = world
        .accounts
        .find_by_email(&user.email)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(found.name.as_str(), "CanaryName-ZX81");

    let stored = stored_bytes(&world).await;
    assert!(!stored.is_empty());
    for (place, bytes) in &stored {
        for canary in CANARIES {
            assert!(
                !contains(bytes, canary.as_bytes()),
                "{canary:?} found in clear in {place}"
            );
        }
        assert!(
            !contains(bytes, sample.token.expose().as_bytes()),
            "the verification token found in clear in {place}"
        );
    }
    world.drop().await;
}

async fn stored_bytes(world: &World) -> Vec<(String, Vec<u8>)> {
    crate::testing::raw_contents(world.db(), world.test_db.url()).await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    crate::testing::contains(haystack, needle)
}

async fn tokens_redeem_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice("ada@example.com").await;
    let token = &practice.verification;
    let at = now();
    let redeem = |hash: TokenHash, at| {
        let accounts = world.accounts.clone();
        async move {
            accounts
                .redeem_token(&hash, TokenPurpose::VerifyEmail, at)
                .await
                .expect("reads")
        }
    };

    assert_eq!(redeem(token.hash, at).await, Ok(practice.user.id));
    assert_eq!(redeem(token.hash, at).await, Err(TokenRejection::Used));
    // Used stays used, even once it would have expired.
    assert_eq!(
        redeem(token.hash, token.expires_at + TimeDelta::days(1)).await,
        Err(TokenRejection::Used)
    );

    let short = Sample::with(
        "Grace Hopper",
        "grace@example.com",
        None,
        at + TimeDelta::hours(1),
    );
    world
        .accounts
        .create_practice(&short.practice)
        .await
        .expect("stores");
    let hash = short.practice.verification.hash;
    assert_eq!(
        redeem(hash, at + TimeDelta::hours(1)).await,
        Err(TokenRejection::Expired),
        "expiry is exclusive"
    );
    assert_eq!(
        redeem(hash, at + TimeDelta::hours(2)).await,
        Err(TokenRejection::Expired)
    );
    // An expired token stays unused; it is still expired, not used.
    assert_eq!(
        redeem(hash, at + TimeDelta::hours(3)).await,
        Err(TokenRejection::Expired)
    );

    let unknown = IssuedToken::generate().expect("randomness").hash();
    assert_eq!(redeem(unknown, at).await, Err(TokenRejection::Unknown));
    world.drop().await;
}

async fn concurrent_redemption_succeeds_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    for round in 0..5 {
        let practice = world.practice(&format!("ada{round}@example.com")).await;
        let hash = practice.verification.hash;
        let at = now();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let accounts = world.accounts.clone();
                tokio::spawn(async move {
                    accounts
                        .redeem_token(&hash, TokenPurpose::VerifyEmail, at)
                        .await
                        .expect("reads")
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("the task finishes"));
        }
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert!(outcomes.contains(&Ok(practice.user.id)));
        assert!(outcomes.contains(&Err(TokenRejection::Used)));
    }
    world.drop().await;
}

async fn failures_and_verification_update_the_account(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice("ada@example.com").await;
    let id = practice.user.id;
    let credentials = || async {
        world
            .accounts
            .find_by_email(&practice.user.email)
            .await
            .expect("reads")
            .expect("found")
            .1
    };

    let locked_until = now() + TimeDelta::minutes(15);
    for attempt in 1..=2 {
        let locked = world
            .accounts
            .record_failure(id, 3, locked_until)
            .await
            .expect("records");
        assert!(!locked, "attempt {attempt} is below the threshold");
    }
    let after = credentials().await;
    assert_eq!((after.failed_attempts, after.locked_until), (2, None));
    let locked = world
        .accounts
        .record_failure(id, 3, locked_until)
        .await
        .expect("records");
    assert!(locked, "the third failure locks");
    let after = credentials().await;
    assert_eq!(
        (after.failed_attempts, after.locked_until),
        (0, Some(locked_until)),
        "locked, and the count restarts"
    );
    // Concurrent failures all count: ten at once against a threshold of ten lock once.
    world.accounts.clear_failures(id).await.expect("clears");
    let attempts = (0..10).map(|_| {
        let accounts = world.accounts.clone();
        tokio::spawn(async move { accounts.record_failure(id, 10, locked_until).await })
    });
    let mut locks = 0;
    for attempt in attempts {
        if attempt.await.expect("joins").expect("records") {
            locks += 1;
        }
    }
    assert_eq!(
        locks, 1,
        "exactly one of ten concurrent failures reaches the threshold"
    );
    world.accounts.clear_failures(id).await.expect("clears");
    let after = credentials().await;
    assert_eq!((after.failed_attempts, after.locked_until), (0, None));
    assert_eq!(after.password_hash, Some(practice.password_hash.clone()));

    let verified_at = now();
    world
        .accounts
        .mark_email_verified(id, verified_at)
        .await
        .expect("marks");
    let user = world
        .accounts
        .user(id)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(user.status, AccountStatus::Active);
    assert_eq!(user.email_verified_at, Some(verified_at));
    // A repeat keeps the first time.
    world
        .accounts
        .mark_email_verified(id, verified_at + TimeDelta::hours(1))
        .await
        .expect("marks");
    let again = world
        .accounts
        .user(id)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(again, user);

    // A disabled account records the verification but stays disabled.
    let mut disabled = Sample::new("grace@example.com").practice;
    disabled.user.status = AccountStatus::Disabled;
    world
        .accounts
        .create_practice(&disabled)
        .await
        .expect("stores");
    world
        .accounts
        .mark_email_verified(disabled.user.id, verified_at)
        .await
        .expect("marks");
    let user = world
        .accounts
        .user(disabled.user.id)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(user.status, AccountStatus::Disabled);
    assert_eq!(user.email_verified_at, Some(verified_at));
    world.drop().await;
}

fn session(practice: &NewPractice, created_at: DateTime<Utc>, lifetime: TimeDelta) -> Session {
    Session {
        id: SessionId::new(),
        user: practice.user.id,
        organisation: practice.organisation.id,
        token_hash: IssuedToken::generate().expect("randomness").hash(),
        created_at,
        last_seen_at: created_at,
        expires_at: created_at + lifetime,
        revoked_at: None,
        client_address: Some(IpAddr::from([203, 0, 113, 7])),
        user_agent: Some("Mozilla/5.0 (test)".to_owned()),
    }
}

async fn sessions_are_found_touched_listed_and_revoked(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let ada = world.practice("ada@example.com").await;
    let grace = world.practice("grace@example.com").await;
    let sessions = &world.sessions;
    let t0 = now();
    let day = TimeDelta::hours(8);

    let first = session(&ada, t0, day);
    let mut second = session(&ada, t0 + TimeDelta::minutes(1), day);
    second.client_address = Some("2001:db8::1".parse().expect("an address"));
    second.user_agent = None;
    let expired = session(&ada, t0 - TimeDelta::hours(9), day);
    let graces = session(&grace, t0, day);
    for s in [&first, &second, &expired, &graces] {
        sessions.insert(s).await.expect("inserts");
    }

    assert_eq!(
        sessions
            .find_by_token(&first.token_hash)
            .await
            .expect("reads"),
        Some(first.clone())
    );
    assert_eq!(
        sessions
            .find_by_token(&second.token_hash)
            .await
            .expect("reads"),
        Some(second.clone())
    );
    let unknown = IssuedToken::generate().expect("randomness").hash();
    assert_eq!(sessions.find_by_token(&unknown).await.expect("reads"), None);

    let seen = t0 + TimeDelta::minutes(5);
    sessions.touch(first.id, seen).await.expect("touches");
    sessions
        .touch(first.id, t0 + TimeDelta::minutes(2))
        .await
        .expect("an older touch is ignored");
    let touched = sessions
        .find_by_token(&first.token_hash)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(touched.last_seen_at, seen);

    let at = t0 + TimeDelta::minutes(10);
    let live = sessions
        .live_sessions(ada.user.id, at)
        .await
        .expect("lists");
    assert_eq!(
        live.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![second.id, first.id],
        "newest first, expired left out"
    );

    assert!(
        !sessions
            .revoke(grace.user.id, first.id, at)
            .await
            .expect("revokes"),
        "not hers"
    );
    assert!(
        !sessions
            .revoke(ada.user.id, graces.id, at)
            .await
            .expect("revokes"),
        "not his"
    );
    assert!(
        !sessions
            .revoke(ada.user.id, expired.id, at)
            .await
            .expect("revokes"),
        "ended"
    );
    assert!(
        sessions
            .revoke(ada.user.id, first.id, at)
            .await
            .expect("revokes")
    );
    assert!(
        !sessions
            .revoke(ada.user.id, first.id, at)
            .await
            .expect("revokes"),
        "already"
    );
    let revoked = sessions
        .find_by_token(&first.token_hash)
        .await
        .expect("reads")
        .expect("still found");
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(
        sessions
            .live_sessions(ada.user.id, at)
            .await
            .expect("lists"),
        vec![second.clone()]
    );

    let third = session(&ada, t0 + TimeDelta::minutes(3), day);
    sessions.insert(&third).await.expect("inserts");
    assert_eq!(
        sessions.revoke_all(ada.user.id, at).await.expect("revokes"),
        2
    );
    assert_eq!(
        sessions.revoke_all(ada.user.id, at).await.expect("revokes"),
        0
    );
    assert!(
        sessions
            .live_sessions(ada.user.id, at)
            .await
            .expect("lists")
            .is_empty()
    );
    assert_eq!(
        sessions
            .live_sessions(grace.user.id, at)
            .await
            .expect("lists"),
        vec![graces],
        "another person's sessions are untouched"
    );
    world.drop().await;
}

async fn security_events_list_newest_first(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let ada = world.practice("ada@example.com").await.user.id;
    let grace = world.practice("grace@example.com").await.user.id;
    let t0 = now();
    let event = |user: Option<UserId>, kind, seconds| SecurityEvent {
        id: Uuid::now_v7(),
        user,
        kind,
        at: t0 + TimeDelta::seconds(seconds),
        client_address: Some(IpAddr::from([198, 51, 100, 4])),
        user_agent: Some("curl/8".to_owned()),
        country: Some("GB".to_owned()),
    };
    let created = event(Some(ada), SecurityEventKind::AccountCreated, 0);
    let mut failed = event(Some(ada), SecurityEventKind::SignInFailed, 1);
    failed.client_address = None;
    failed.user_agent = None;
    failed.country = None;
    let signed_in = event(Some(ada), SecurityEventKind::SignInSucceeded, 2);
    let unknown = event(None, SecurityEventKind::SignInFailed, 3);
    let others = event(Some(grace), SecurityEventKind::AccountLocked, 4);
    for e in [&failed, &created, &signed_in, &unknown, &others] {
        world.events.record(e).await.expect("records");
    }

    assert_eq!(
        world.events.events_of(ada, 10).await.expect("lists"),
        vec![signed_in.clone(), failed.clone(), created]
    );
    assert_eq!(
        world.events.events_of(ada, 2).await.expect("lists"),
        vec![signed_in, failed]
    );
    assert_eq!(
        world.events.events_of(grace, 10).await.expect("lists"),
        vec![others]
    );
    assert!(
        world
            .events
            .events_of(UserId::new(), 10)
            .await
            .expect("lists")
            .is_empty()
    );
    world.drop().await;
}

/// R1: the sweep deletes the events older than the retention period and no
/// other; a dry run counts them and deletes nothing; a second sweep finds nothing.
async fn retention_deletes_only_expired_security_events(test_db: TestDatabase) {
    use kernel::personal_data::{Expired, ExpiryAction, RetentionSweep};
    use kernel::{DataCategory, Purpose, RequestContext};

    let world = World::new(test_db).await;
    let ada = world.practice("ada@example.com").await.user.id;
    let now = now();
    let event = |user: Option<UserId>, days_ago: i64| SecurityEvent {
        id: Uuid::now_v7(),
        user,
        kind: SecurityEventKind::SignInFailed,
        at: now - TimeDelta::days(days_ago),
        client_address: Some(IpAddr::from([198, 51, 100, 4])),
        user_agent: None,
        country: None,
    };
    let old = [
        event(Some(ada), 400),
        event(None, 366),
        event(Some(ada), 731),
    ];
    let kept = [event(Some(ada), 364), event(Some(ada), 0), event(None, 30)];
    for e in old.iter().chain(&kept) {
        world.events.record(e).await.expect("records");
    }
    // Exactly at the period's edge is not yet past it.
    let mut edge = event(Some(ada), 365);
    edge.at = now - TimeDelta::days(365);
    world.events.record(&edge).await.expect("records");

    let sweep =
        identity::IdentityRetention::new(Arc::new(world.events.clone()), TimeDelta::days(365));
    assert_eq!(sweep.context(), "identity");
    let ctx = RequestContext::system("retention", Purpose::Legal, now);
    let expired = |records| {
        vec![Expired {
            category: DataCategory::SecurityEvents,
            action: ExpiryAction::Deleted,
            records,
        }]
    };
    assert_eq!(
        sweep.sweep(&ctx, now, true).await.expect("counts"),
        expired(3)
    );
    assert_eq!(
        world.count("security_events").await,
        7,
        "a dry run deletes nothing"
    );
    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expired(3)
    );
    assert_eq!(world.count("security_events").await, 4);
    let left = world.events.events_of(ada, 10).await.expect("lists");
    assert_eq!(left, vec![kept[1].clone(), kept[0].clone(), edge]);
    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expired(0)
    );
    assert_eq!(
        sweep.sweep(&ctx, now, true).await.expect("counts"),
        expired(0)
    );
    world.drop().await;
}

async fn outbox_seals_the_token(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let sample = Sample::new("ada@example.com");
    world
        .accounts
        .create_practice(&sample.practice)
        .await
        .expect("stores");
    let user = sample.practice.user.id;
    let notice = |kind| Notice {
        user,
        kind,
        at: now(),
    };
    assert_eq!(
        world
            .outbox
            .latest_secret(user, "verify_email")
            .await
            .expect("reads"),
        None
    );

    let older = Sensitive::new("an-older-token".to_owned());
    world
        .outbox
        .send(&notice(NoticeKind::VerifyEmail { token: older }))
        .await
        .expect("queues");
    world
        .outbox
        .send(&notice(NoticeKind::VerifyEmail {
            token: sample.token.clone(),
        }))
        .await
        .expect("queues");
    world
        .outbox
        .send(&notice(NoticeKind::NewSignIn))
        .await
        .expect("queues");
    assert_eq!(world.count("outbox").await, 3);

    let rows = outbox::Entity::find()
        .all(world.db().connection())
        .await
        .expect("reads");
    let token = sample.token.expose().as_bytes();
    for row in &rows {
        match row.kind.as_str() {
            "verify_email" => {
                let sealed = row.payload_enc.as_deref().expect("a sealed payload");
                assert!(!contains(sealed, token));
                assert!(!contains(sealed, b"an-older-token"));
            }
            "new_sign_in" => assert_eq!(row.payload_enc, None),
            other => panic!("unexpected kind {other}"),
        }
        assert_eq!(row.user_id, user.as_uuid());
        assert_eq!(row.sent_at, None);
    }

    assert_eq!(
        world
            .outbox
            .latest_secret(user, "verify_email")
            .await
            .expect("reads"),
        Some(sample.token.clone()),
        "the newest token"
    );
    assert_eq!(
        world
            .outbox
            .latest_secret(user, "new_sign_in")
            .await
            .expect("reads"),
        None
    );
    assert_eq!(
        world
            .outbox
            .latest_secret(UserId::new(), "verify_email")
            .await
            .expect("reads"),
        None
    );

    // Shredding the person's key makes the sealed token unreadable for good.
    world
        .keyring
        .shred_subject(
            sample.practice.organisation.id,
            sample.practice.user.subject,
        )
        .await
        .expect("shreds");
    assert!(
        world
            .outbox
            .latest_secret(user, "verify_email")
            .await
            .is_err()
    );

    // A notice to nobody is refused.
    let err = world
        .outbox
        .send(&Notice {
            user: UserId::new(),
            kind: NoticeKind::VerifyEmail {
                token: Sensitive::new("x".to_owned()),
            },
            at: now(),
        })
        .await
        .expect_err("no such account");
    assert!(matches!(err, RepositoryError::Unavailable(_)));
    world.drop().await;
}
