//! The `PeopleRepository` adapter on both databases: sealed dates of birth,
//! activation, the last org admin under concurrency, and suspension ending
//! sessions with the status in one transaction.

use identity::model::{DeletionFlag, Guardianship, Invitation, RoleRemoval};
use identity::ports::{AccountRepository, NewAccount, PeopleRepository};
use identity::values::DateOfBirth;

use super::*;

on_both_databases!(
    a_created_account_keeps_its_birth_date_sealed_and_activates_once,
    two_admins_removing_each_other_leave_one,
    suspending_ends_sessions_and_a_second_flag_changes_nothing,
    only_the_home_practices_guardian_counts_and_invitations_are_accepted_once_and_erased,
    active_holders_of_a_role_are_listed_and_told_by_a_sealed_practice_notice,
);

/// A client account in `practice`, born on `born`, pending activation.
fn client_account(
    practice: &NewPractice,
    email: &str,
    born: &str,
) -> (NewAccount, Sensitive<String>) {
    let at = now();
    let user = User {
        id: UserId::new(),
        subject: SubjectId::new(),
        home_organisation: practice.organisation.id,
        name: PersonName::parse("Canary Birthday-ZX81").expect("valid"),
        email: Email::parse(email).expect("valid"),
        phone: None,
        profession: None,
        status: AccountStatus::PendingVerification,
        email_verified_at: None,
        created_at: at,
    };
    let (token, hash) = IssuedToken::generate().expect("randomness").into_parts();
    let date = chrono::NaiveDate::parse_from_str(born, "%Y-%m-%d").expect("a date");
    let account = NewAccount {
        memberships: vec![Membership {
            user: user.id,
            organisation: practice.organisation.id,
            role: Role::Client,
            created_at: at,
        }],
        date_of_birth: Some(DateOfBirth::parse(date, at.date_naive()).expect("valid")),
        guardianship: None,
        activation: OneTimeToken {
            hash,
            purpose: TokenPurpose::ActivateAccount,
            user: user.id,
            expires_at: at + TimeDelta::days(7),
        },
        user,
    };
    (account, token)
}

async fn a_created_account_keeps_its_birth_date_sealed_and_activates_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice("owner@example.com").await;
    let (account, token) = client_account(&practice, "kid@example.com", "2004-07-19");
    world
        .accounts
        .create_account(&account)
        .await
        .expect("stores");
    // The same email again is a duplicate, and stores nothing.
    let (again, _) = client_account(&practice, "KID@example.com", "2004-07-19");
    assert!(matches!(
        world.accounts.create_account(&again).await,
        Err(RepositoryError::Duplicate)
    ));
    assert_eq!(world.count("users").await, 2);
    assert_eq!(world.count("birth_dates").await, 1);

    let id = account.user.id;
    let born = world
        .accounts
        .date_of_birth(id)
        .await
        .expect("reads")
        .expect("recorded");
    assert_eq!(born.to_stored(), "2004-07-19");
    for (place, bytes) in &stored_bytes(&world).await {
        for canary in ["2004-07-19", "Canary Birthday-ZX81"] {
            assert!(
                !contains(bytes, canary.as_bytes()),
                "{canary:?} in clear in {place}"
            );
        }
    }

    // Two concurrent activations: one wins, and the account is active with its password.
    let hash = TokenHash::of_presented(token.expose());
    let at = now();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let accounts = world.accounts.clone();
            tokio::spawn(async move {
                accounts
                    .activate(&hash, "$pbkdf2-sha256$i=1000,l=32$c2FsdA$aGFzaA", at)
                    .await
                    .expect("reads")
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the task finishes"));
    }
    assert!(outcomes.contains(&Ok(id)), "{outcomes:?}");
    assert!(
        outcomes.contains(&Err(TokenRejection::Used)),
        "{outcomes:?}"
    );
    let (user, credentials) = world
        .accounts
        .user_with_credentials(id)
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(user.status, AccountStatus::Active);
    assert_eq!(user.email_verified_at, Some(at));
    assert!(credentials.password_hash.is_some());
    assert_eq!(
        world
            .accounts
            .token_owner(&hash, TokenPurpose::ActivateAccount, at)
            .await
            .expect("reads"),
        Err(TokenRejection::Used)
    );
    // A verification token is not an activation token.
    let verification = practice.verification.hash;
    assert_eq!(
        world
            .accounts
            .token_owner(&verification, TokenPurpose::ActivateAccount, at)
            .await
            .expect("reads"),
        Err(TokenRejection::Unknown)
    );

    // A guardian link, once.
    assert!(!world.accounts.has_guardian(id).await.expect("reads"));
    let link = Guardianship {
        minor: id,
        guardian: practice.user.id,
        organisation: practice.organisation.id,
        linked_by: practice.user.id,
        linked_at: now(),
    };
    world.accounts.link_guardian(&link).await.expect("links");
    assert!(world.accounts.has_guardian(id).await.expect("reads"));
    assert!(matches!(
        world.accounts.link_guardian(&link).await,
        Err(RepositoryError::Duplicate)
    ));
    world.drop().await;
}

async fn two_admins_removing_each_other_leave_one(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    for round in 0..5 {
        let practice = world.practice(&format!("first{round}@example.com")).await;
        let org = practice.organisation.id;
        let first = practice.user.id;
        let (mut second, _) = client_account(
            &practice,
            &format!("second{round}@example.com"),
            "1980-01-01",
        );
        second.memberships.push(Membership {
            user: second.user.id,
            organisation: org,
            role: Role::OrgAdmin,
            created_at: now(),
        });
        world
            .accounts
            .create_account(&second)
            .await
            .expect("stores");
        let second = second.user.id;
        let tasks: Vec<_> = [first, second]
            .into_iter()
            .map(|user| {
                let accounts = world.accounts.clone();
                tokio::spawn(async move { accounts.remove_role(org, user, Role::OrgAdmin).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            // SQLite may refuse the loser's write outright (busy): that is a refusal too.
            outcomes.push(task.await.expect("the task finishes").ok());
        }
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == Some(RoleRemoval::Removed))
                .count(),
            1,
            "{outcomes:?}"
        );
        let admins = world
            .accounts
            .members(org, None, 10)
            .await
            .expect("lists")
            .into_iter()
            .filter(|m| m.roles.contains(&Role::OrgAdmin))
            .count();
        assert_eq!(admins, 1);
        // The last one stays.
        let last = if outcomes[0] == Some(RoleRemoval::Removed) {
            second
        } else {
            first
        };
        assert_eq!(
            world
                .accounts
                .remove_role(org, last, Role::OrgAdmin)
                .await
                .expect("answers"),
            RoleRemoval::LastOrgAdmin
        );
        assert_eq!(
            world
                .accounts
                .remove_role(org, last, Role::Staff)
                .await
                .expect("answers"),
            RoleRemoval::NotHeld
        );
    }
    world.drop().await;
}

async fn suspending_ends_sessions_and_a_second_flag_changes_nothing(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = world.practice("owner@example.com").await;
    let user = practice.user.id;
    let at = now();
    for _ in 0..2 {
        let (_, token_hash) = IssuedToken::generate().expect("randomness").into_parts();
        world
            .sessions
            .insert(&Session {
                id: SessionId::new(),
                user,
                organisation: practice.organisation.id,
                token_hash,
                created_at: at,
                last_seen_at: at,
                expires_at: at + TimeDelta::hours(12),
                revoked_at: None,
                client_address: None,
                user_agent: None,
            })
            .await
            .expect("stores");
    }
    let ended = world
        .accounts
        .suspend(user, AccountStatus::Disabled, at, None)
        .await
        .expect("suspends");
    assert_eq!(ended, 2);
    assert!(
        world
            .sessions
            .live_sessions(user, at)
            .await
            .expect("reads")
            .is_empty()
    );
    assert_eq!(
        world.accounts.account_status(user).await.expect("reads"),
        Some(AccountStatus::Disabled)
    );
    assert!(world.accounts.enable(user).await.expect("enables"));
    assert!(
        !world.accounts.enable(user).await.expect("answers"),
        "only a disabled account"
    );

    let flag = DeletionFlag {
        user,
        organisation: practice.organisation.id,
        reported_by: user,
        flagged_at: at,
    };
    world
        .accounts
        .suspend(user, AccountStatus::Frozen, at, Some(&flag))
        .await
        .expect("freezes");
    assert_eq!(
        world.accounts.deletion_flag(user).await.expect("reads"),
        Some(flag)
    );
    assert!(
        !world.accounts.enable(user).await.expect("answers"),
        "a frozen account stays frozen"
    );
    // A second flag is a duplicate and changes nothing (the status stays frozen).
    let later = DeletionFlag {
        flagged_at: at + TimeDelta::hours(1),
        ..flag
    };
    assert!(matches!(
        world
            .accounts
            .suspend(user, AccountStatus::Disabled, at, Some(&later))
            .await,
        Err(RepositoryError::Duplicate)
    ));
    assert_eq!(
        world.accounts.account_status(user).await.expect("reads"),
        Some(AccountStatus::Frozen)
    );
    assert_eq!(
        world.accounts.deletion_flag(user).await.expect("reads"),
        Some(flag)
    );
    world.drop().await;
}

async fn only_the_home_practices_guardian_counts_and_invitations_are_accepted_once_and_erased(
    test_db: TestDatabase,
) {
    let world = World::new(test_db).await;
    let home = world.practice("home@example.com").await;
    let other = world.practice("other@example.com").await;
    let (account, _) = client_account(&home, "minor@example.com", "2020-01-01");
    let minor = account.user.id;
    world
        .accounts
        .create_account(&account)
        .await
        .expect("stores");

    // A guardianship recorded by another practice does not count.
    let mut link = Guardianship {
        minor,
        guardian: other.user.id,
        organisation: other.organisation.id,
        linked_by: other.user.id,
        linked_at: now(),
    };
    world.accounts.link_guardian(&link).await.expect("links");
    assert!(!world.accounts.has_guardian(minor).await.expect("reads"));
    link.guardian = home.user.id;
    link.organisation = home.organisation.id;
    world.accounts.link_guardian(&link).await.expect("links");
    assert!(world.accounts.has_guardian(minor).await.expect("reads"));

    // An invitation to `other`'s owner: nothing changes until they accept it.
    let invitation = Invitation {
        id: Uuid::now_v7(),
        user: other.user.id,
        organisation: home.organisation.id,
        role: Role::Client,
        guardian_of: Some(minor),
        invited_by: home.user.id,
        created_at: now(),
        accepted_at: None,
        declined_at: None,
    };
    world.accounts.invite(&invitation).await.expect("invites");
    // The same pending invitation again stores nothing new.
    let again = Invitation {
        id: Uuid::now_v7(),
        ..invitation
    };
    world.accounts.invite(&again).await.expect("invites");
    assert_eq!(
        world
            .accounts
            .invitations(other.user.id)
            .await
            .expect("reads"),
        vec![invitation]
    );
    let roles_before = world
        .accounts
        .memberships(other.user.id)
        .await
        .expect("reads");
    assert!(
        !roles_before
            .iter()
            .any(|m| m.organisation == home.organisation.id)
    );
    // Someone else cannot accept it; its owner can, once.
    assert_eq!(
        world
            .accounts
            .accept_invitation(home.user.id, invitation.id, now())
            .await
            .expect("reads"),
        None
    );
    let accepted = world
        .accounts
        .accept_invitation(other.user.id, invitation.id, now())
        .await
        .expect("accepts")
        .expect("pending");
    assert_eq!(accepted.id, invitation.id);
    assert_eq!(
        world
            .accounts
            .accept_invitation(other.user.id, invitation.id, now())
            .await
            .expect("reads"),
        None
    );
    let roles = world
        .accounts
        .memberships(other.user.id)
        .await
        .expect("reads");
    assert!(
        roles
            .iter()
            .any(|m| m.organisation == home.organisation.id && m.role == Role::Client)
    );
    // The guardianship it offered was already linked by another practice and
    // stays as it was (one row per minor and guardian).
    assert!(world.accounts.has_guardian(minor).await.expect("reads"));

    // Erasing the invitee deletes their invitations, reported as `invitation`.
    let erasure = world.accounts.erase(other.user.id).await.expect("erases");
    assert!(erasure.deleted.contains(&("invitation", invitation.id)));
    assert!(
        world
            .accounts
            .invitations(other.user.id)
            .await
            .expect("reads")
            .is_empty()
    );
    world.drop().await;
}

async fn active_holders_of_a_role_are_listed_and_told_by_a_sealed_practice_notice(
    test_db: TestDatabase,
) {
    use identity::ports::{IdentityRepository as _, Notifier as _};
    let world = World::new(test_db).await;
    let practice = world.practice("owner-h@example.com").await;
    let other = world.practice("other-h@example.com").await;
    let org = practice.organisation.id;
    // Pending until verified: not yet a holder.
    assert_eq!(
        world
            .accounts
            .active_holders(org, Role::OrgAdmin)
            .await
            .expect("reads"),
        Vec::<UserId>::new()
    );
    for p in [&practice, &other] {
        world
            .accounts
            .mark_email_verified(p.user.id, now())
            .await
            .expect("verifies");
    }
    let (client, _) = client_account(&practice, "client-h@example.com", "1980-01-01");
    world
        .accounts
        .create_account(&client)
        .await
        .expect("stores");
    assert_eq!(
        world
            .accounts
            .active_holders(org, Role::OrgAdmin)
            .await
            .expect("reads"),
        vec![practice.user.id],
        "the owner, not the pending client nor the other practice's owner"
    );
    assert_eq!(
        world
            .accounts
            .active_holders(org, Role::Client)
            .await
            .expect("reads"),
        Vec::<UserId>::new(),
        "the client is not active yet"
    );
    world
        .accounts
        .disable(practice.user.id, now())
        .await
        .expect("disables");
    assert_eq!(
        world
            .accounts
            .active_holders(org, Role::OrgAdmin)
            .await
            .expect("reads"),
        Vec::<UserId>::new()
    );

    let summary = "Canary-Summary-77: the payment for INV-000001 failed";
    world
        .outbox
        .send(&Notice {
            user: other.user.id,
            kind: NoticeKind::Practice {
                kind: "billing_payment_failed",
                summary: summary.to_owned(),
            },
            at: now(),
        })
        .await
        .expect("queues");
    let user = other.user.id;
    assert_eq!(
        world
            .outbox
            .latest_summary(user, "billing_payment_failed")
            .await
            .expect("reads")
            .map(Sensitive::into_inner),
        Some(summary.to_owned())
    );
    assert_eq!(
        world
            .outbox
            .count(user, "billing_payment_failed")
            .await
            .expect("reads"),
        1
    );
    assert_eq!(
        world
            .outbox
            .count(user, "billing_other")
            .await
            .expect("reads"),
        0
    );
    for (place, bytes) in &stored_bytes(&world).await {
        assert!(
            !contains(bytes, b"Canary-Summary-77"),
            "in clear in {place}"
        );
    }
    world.drop().await;
}
