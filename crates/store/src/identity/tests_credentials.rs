//! The credential adapter against migrated SQLite and PostgreSQL databases, with a
//! real keyring: the TOTP secret sealed, time steps and recovery codes used once,
//! password reset and email change atomic.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use crypto::{BlindIndexer, IssuedToken, Keyring, MasterKey, TokenHash, TotpSecret};
use identity::model::{
    AccountStatus, Membership, OneTimeToken, Organisation, TokenPurpose, TokenRejection, User,
};
use identity::ports::{CredentialRepository, IdentityRepository, NewPractice, RepositoryError};
use identity::values::{DataRegion, Email, MarketingMode, OrganisationName, PersonName};
use kernel::{OrganisationId, Role, SubjectId, SystemClock, UserId};
use sea_orm::{ConnectionTrait, Statement};

use super::{SeaOrmCredentialRepository, SeaOrmIdentityRepository};
use crate::SeaOrmKeyStore;
use crate::testing::{TestDatabase, count_rows};

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
    the_totp_secret_is_sealed_and_each_step_is_accepted_once,
    recovery_codes_are_hashed_and_spent_once,
    a_reset_token_sets_the_password_once,
    an_email_change_switches_the_address_once_unless_it_was_taken,
);

/// The adapters on one migrated database.
struct World {
    test_db: TestDatabase,
    accounts: SeaOrmIdentityRepository,
    credentials: SeaOrmCredentialRepository,
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
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
            accounts: SeaOrmIdentityRepository::new(db.clone(), keyring.clone(), indexer.clone()),
            credentials: SeaOrmCredentialRepository::new(db, keyring, indexer),
            test_db,
        }
    }

    async fn count(&self, table: &str) -> u64 {
        count_rows(self.test_db.database(), table).await
    }

    /// Stores an active person with their practice; returns their id.
    async fn person(&self, email: &str) -> UserId {
        let at = now();
        let organisation = Organisation {
            id: OrganisationId::new(),
            name: OrganisationName::parse("Harbour Physiotherapy").expect("valid"),
            region: DataRegion::Eu,
            marketing_mode: MarketingMode::OptIn,
            require_mfa: false,
            created_at: at,
        };
        let user = User {
            id: UserId::new(),
            subject: SubjectId::new(),
            home_organisation: organisation.id,
            name: PersonName::parse("Ada Lovelace").expect("valid"),
            email: Email::parse(email).expect("valid"),
            phone: None,
            profession: None,
            status: AccountStatus::Active,
            email_verified_at: Some(at),
            created_at: at,
        };
        let (_, hash) = IssuedToken::generate().expect("randomness").into_parts();
        self.accounts
            .create_practice(&NewPractice {
                memberships: vec![Membership {
                    user: user.id,
                    organisation: organisation.id,
                    role: Role::Provider,
                    created_at: at,
                }],
                verification: OneTimeToken {
                    hash,
                    purpose: TokenPurpose::VerifyEmail,
                    user: user.id,
                    expires_at: at + TimeDelta::days(1),
                },
                password_hash: "old-hash".to_owned(),
                organisation,
                user: user.clone(),
            })
            .await
            .expect("stores the practice");
        user.id
    }

    /// A fresh token of `purpose` for `user`, expiring after `ttl`, and its text.
    fn token(user: UserId, purpose: TokenPurpose, ttl: TimeDelta) -> (String, OneTimeToken) {
        let (text, hash) = IssuedToken::generate().expect("randomness").into_parts();
        (
            text.into_inner(),
            OneTimeToken {
                hash,
                purpose,
                user,
                expires_at: now() + ttl,
            },
        )
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

async fn the_totp_secret_is_sealed_and_each_step_is_accepted_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let user = world.person("mfa@example.com").await;
    assert_eq!(world.credentials.mfa(user).await.expect("reads"), None);
    let secret = TotpSecret::generate().expect("randomness");
    assert!(
        world
            .credentials
            .start_mfa(user, &secret, now())
            .await
            .expect("stores")
    );
    // Starting again replaces the pending secret.
    let secret = TotpSecret::generate().expect("randomness");
    assert!(
        world
            .credentials
            .start_mfa(user, &secret, now())
            .await
            .expect("stores")
    );
    assert_eq!(world.count("mfa_credentials").await, 1);

    // Never in clear: neither the raw bytes nor the base32 text are in the row.
    let db = world.test_db.database();
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(
            db.connection().get_database_backend(),
            "SELECT secret_enc FROM mfa_credentials".to_owned(),
        ))
        .await
        .expect("reads");
    let sealed: Vec<u8> = rows[0].try_get("", "secret_enc").expect("bytes");
    assert!(!sealed.windows(20).any(|w| w == secret.as_bytes()));
    assert!(
        !sealed
            .windows(32)
            .any(|w| w == secret.to_base32().expose().as_bytes())
    );

    let pending = world
        .credentials
        .mfa(user)
        .await
        .expect("reads")
        .expect("pending");
    assert_eq!(pending.secret, secret);
    assert!(!pending.is_on());
    // No step is accepted before confirmation.
    assert!(
        !world
            .credentials
            .accept_step(user, 5)
            .await
            .expect("updates")
    );

    assert!(
        world
            .credentials
            .confirm_mfa(user, 100, &[], now())
            .await
            .expect("confirms")
    );
    assert!(
        !world
            .credentials
            .confirm_mfa(user, 101, &[], now())
            .await
            .expect("once")
    );
    let on = world
        .credentials
        .mfa(user)
        .await
        .expect("reads")
        .expect("on");
    assert!(on.is_on());
    assert_eq!(on.last_step, Some(100));
    // Replays and older steps are refused; a later step is accepted once.
    assert!(
        !world
            .credentials
            .accept_step(user, 100)
            .await
            .expect("updates")
    );
    assert!(
        !world
            .credentials
            .accept_step(user, 99)
            .await
            .expect("updates")
    );
    assert!(
        world
            .credentials
            .accept_step(user, 101)
            .await
            .expect("updates")
    );
    assert!(
        !world
            .credentials
            .accept_step(user, 101)
            .await
            .expect("updates")
    );
    // Enrolment cannot restart while MFA is on.
    let other = TotpSecret::generate().expect("randomness");
    assert!(
        !world
            .credentials
            .start_mfa(user, &other, now())
            .await
            .expect("reads")
    );
    assert_eq!(
        world
            .credentials
            .mfa(user)
            .await
            .expect("reads")
            .map(|m| m.secret),
        Some(secret)
    );
    world.drop().await;
}

async fn recovery_codes_are_hashed_and_spent_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let user = world.person("codes@example.com").await;
    let stranger = world.person("stranger@example.com").await;
    let secret = TotpSecret::generate().expect("randomness");
    world
        .credentials
        .start_mfa(user, &secret, now())
        .await
        .expect("stores");
    let first = [
        TokenHash::of_presented("AAAA"),
        TokenHash::of_presented("BBBB"),
    ];
    assert!(
        world
            .credentials
            .confirm_mfa(user, 1, &first, now())
            .await
            .expect("confirms")
    );
    assert_eq!(world.count("recovery_codes").await, 2);

    assert!(
        !world
            .credentials
            .use_recovery_code(stranger, &first[0], now())
            .await
            .expect("reads")
    );
    assert!(
        world
            .credentials
            .use_recovery_code(user, &first[0], now())
            .await
            .expect("spends")
    );
    assert!(
        !world
            .credentials
            .use_recovery_code(user, &first[0], now())
            .await
            .expect("once")
    );

    let second = [TokenHash::of_presented("CCCC")];
    world
        .credentials
        .replace_recovery_codes(user, &second, now())
        .await
        .expect("replaces");
    assert!(
        !world
            .credentials
            .use_recovery_code(user, &first[1], now())
            .await
            .expect("old gone")
    );
    assert!(
        world
            .credentials
            .use_recovery_code(user, &second[0], now())
            .await
            .expect("new works")
    );

    world.credentials.disable_mfa(user).await.expect("disables");
    assert_eq!(world.credentials.mfa(user).await.expect("reads"), None);
    assert_eq!(world.count("recovery_codes").await, 0);
    world.drop().await;
}

async fn a_reset_token_sets_the_password_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let user = world.person("reset@example.com").await;
    world
        .accounts
        .record_failure(user, 1, now() + TimeDelta::minutes(15))
        .await
        .expect("locks");
    let (text, token) = World::token(user, TokenPurpose::ResetPassword, TimeDelta::hours(1));
    world.accounts.issue_token(&token).await.expect("stores");
    let (_, expired) = World::token(user, TokenPurpose::ResetPassword, TimeDelta::seconds(-1));
    world.accounts.issue_token(&expired).await.expect("stores");

    let unknown = TokenHash::of_presented("no such token");
    assert_eq!(
        world
            .credentials
            .reset_password(&unknown, "new-hash", now())
            .await
            .expect("reads"),
        Err(TokenRejection::Unknown)
    );
    assert_eq!(
        world
            .credentials
            .reset_password(&expired.hash, "new-hash", now())
            .await
            .expect("reads"),
        Err(TokenRejection::Expired)
    );
    let (_, before) = world
        .accounts
        .user_with_credentials(user)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(before.password_hash.as_deref(), Some("old-hash"));
    assert!(before.locked_until.is_some());

    let presented = TokenHash::of_presented(&text);
    assert_eq!(
        world
            .credentials
            .reset_password(&presented, "new-hash", now())
            .await
            .expect("resets"),
        Ok(user)
    );
    let (_, after) = world
        .accounts
        .user_with_credentials(user)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(after.password_hash.as_deref(), Some("new-hash"));
    assert_eq!((after.failed_attempts, after.locked_until), (0, None));
    assert_eq!(
        world
            .credentials
            .reset_password(&presented, "other-hash", now())
            .await
            .expect("reads"),
        Err(TokenRejection::Used)
    );
    world.drop().await;
}

async fn an_email_change_switches_the_address_once_unless_it_was_taken(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let user = world.person("old@example.com").await;
    let new = Email::parse("new@example.com").expect("valid");
    let (_, token) = World::token(user, TokenPurpose::ChangeEmail, TimeDelta::hours(24));
    world
        .credentials
        .start_email_change(&token, &new, now())
        .await
        .expect("stores");
    // Until redeemed, the old address stays.
    assert!(
        world
            .accounts
            .find_by_email(&new)
            .await
            .expect("reads")
            .is_none()
    );

    let (_, clash) = World::token(user, TokenPurpose::ChangeEmail, TimeDelta::hours(24));
    let wanted = Email::parse("wanted@example.com").expect("valid");
    world
        .credentials
        .start_email_change(&clash, &wanted, now())
        .await
        .expect("stores");
    world.person("wanted@example.com").await;
    // Taken meanwhile: Duplicate, and the token is not consumed (still Duplicate).
    for _ in 0..2 {
        assert!(matches!(
            world.credentials.change_email(&clash.hash, now()).await,
            Err(RepositoryError::Duplicate)
        ));
    }

    let (changed, previous) = world
        .credentials
        .change_email(&token.hash, now())
        .await
        .expect("reads")
        .expect("redeems");
    assert_eq!(changed, user);
    assert_eq!(previous.as_str(), "old@example.com");
    let (found, _) = world
        .accounts
        .find_by_email(&new)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!((found.id, found.email.as_str()), (user, "new@example.com"));
    let old = Email::parse("old@example.com").expect("valid");
    assert!(
        world
            .accounts
            .find_by_email(&old)
            .await
            .expect("reads")
            .is_none()
    );
    assert_eq!(
        world
            .credentials
            .change_email(&token.hash, now())
            .await
            .expect("reads"),
        Err(TokenRejection::Used)
    );
    assert_eq!(
        world.count("email_changes").await,
        1,
        "only the clashing change is left"
    );
    world.drop().await;
}
