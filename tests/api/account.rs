//! Self-service over HTTP (C2, U1, D9): profile, preferences, account details,
//! the account-data export, the deletion request, a new verification email; the
//! identity context's `PersonalData` (describe, export, rectify, erase) behind the
//! API; and the security-event retention sweep. On both databases.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use kernel::personal_data::{PersonalDataError, RecordFate, Rectification};
use kernel::{
    Actor, ClientInfo, ManualClock, PersonalData as _, Purpose, RequestContext, RequestId,
    ResourceRef, RoleSet, SubjectId, UserId,
};
use serde_json::{Value, json};
use tests::{Backend, TEST_PASSWORD, TestApp, both_databases};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("answers")
}

async fn json_of(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    resp.json().await.expect("JSON")
}

async fn me(app: &TestApp, token: &str) -> Value {
    json_of(
        send(app, reqwest::Method::GET, "/v1/me", Some(token), None).await,
        200,
    )
    .await
}

/// The subject id behind a bearer token, as the rights engine would know it.
async fn subject_of(app: &TestApp, token: &str) -> (UserId, SubjectId) {
    let id = me(app, token).await["user"]["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a UUID");
    let user = UserId::from_uuid(id);
    let ctx = context(Actor::Member {
        user,
        roles: RoleSet::EMPTY,
    });
    let (found, _) = app.state().identity().me(&ctx).await.expect("the account");
    (user, found.subject)
}

fn context(actor: Actor) -> RequestContext {
    RequestContext::new(
        actor,
        None,
        Purpose::SubjectRequest,
        RequestId::new(),
        ClientInfo::default(),
        Utc::now(),
    )
}

fn rights_engine() -> RequestContext {
    RequestContext::system("rights-test", Purpose::SubjectRequest, Utc::now())
}

async fn sign_in(app: &TestApp, email: &str) -> reqwest::Response {
    send(
        app,
        reqwest::Method::POST,
        "/v1/sessions",
        None,
        Some(json!({ "email": email, "password": TEST_PASSWORD })),
    )
    .await
}

both_databases!(async fn profile_round_trips_sealed_and_bad_input_changes_nothing(app) {
    let token = app.signed_in_provider("ada@example.com").await;
    let empty = json_of(send(&app, reqwest::Method::GET, "/v1/me/profile", Some(&token), None).await, 200).await;
    assert_eq!(empty["credentials"], json!([]));
    assert!(empty.get("picture_url").is_none());

    let profile = json!({
        "picture_url": "https://cdn.example.com/people/ada.jpg",
        "credentials": [{ "title": "Doctor of Physical Therapy", "issuer": "State Board", "licence_number": "PT-CANARY-7781" }],
        "practice_information": "Mon-Fri 9-17\nCanaryStreet 12",
    });
    let saved = json_of(send(&app, reqwest::Method::PUT, "/v1/me/profile", Some(&token), Some(profile.clone())).await, 200).await;
    assert_eq!(saved, profile);
    let read = json_of(send(&app, reqwest::Method::GET, "/v1/me/profile", Some(&token), None).await, 200).await;
    assert_eq!(read, profile);

    // A picture that is not https is refused, naming the field; nothing changes.
    let resp = send(&app, reqwest::Method::PUT, "/v1/me/profile", Some(&token),
        Some(json!({ "picture_url": "http://cdn.example.com/ada.jpg" }))).await;
    assert_eq!(resp.status(), 422);
    let problem: Value = resp.json().await.expect("JSON");
    assert!(problem["detail"].as_str().expect("detail").contains("picture_url"));
    assert!(!problem.to_string().contains("cdn.example.com"), "the value is never echoed");
    let resp = send(&app, reqwest::Method::PUT, "/v1/me/profile", Some(&token),
        Some(json!({ "credentials": vec![json!({ "title": "X" }); 21] }))).await;
    assert_eq!(resp.status(), 422);
    let read = json_of(send(&app, reqwest::Method::GET, "/v1/me/profile", Some(&token), None).await, 200).await;
    assert_eq!(read, profile);

    // The profile is sealed at rest.
    for (place, bytes) in app.raw_database_contents().await {
        for canary in ["PT-CANARY-7781", "CanaryStreet", "cdn.example.com"] {
            assert!(!store::testing::contains(&bytes, canary.as_bytes()), "{canary} in clear in {place}");
        }
    }
    app.stop().await;
});

both_databases!(async fn preferences_default_replace_and_validate(app) {
    let token = app.signed_in_provider("grace@example.com").await;
    let defaults = json_of(send(&app, reqwest::Method::GET, "/v1/me/preferences", Some(&token), None).await, 200).await;
    assert_eq!(defaults, json!({
        "language": "en", "time_zone": "UTC", "units": "metric", "theme": "system", "exercise_reminders": true,
    }));
    let mine = json!({
        "language": "pt-br", "time_zone": "America/Argentina/Buenos_Aires", "units": "imperial",
        "theme": "dark", "exercise_reminders": false,
    });
    let saved = json_of(send(&app, reqwest::Method::PUT, "/v1/me/preferences", Some(&token), Some(mine)).await, 200).await;
    assert_eq!(saved["language"], "pt-BR", "normalised");
    for bad in [
        json!({ "language": "english", "time_zone": "UTC", "units": "metric", "theme": "dark", "exercise_reminders": true }),
        json!({ "language": "en", "time_zone": "Mars/Olympus_Mons", "units": "metric", "theme": "dark", "exercise_reminders": true }),
        json!({ "language": "en", "time_zone": "UTC", "units": "furlongs", "theme": "dark", "exercise_reminders": true }),
    ] {
        let resp = send(&app, reqwest::Method::PUT, "/v1/me/preferences", Some(&token), Some(bad)).await;
        assert_eq!(resp.status(), 422);
    }
    let read = json_of(send(&app, reqwest::Method::GET, "/v1/me/preferences", Some(&token), None).await, 200).await;
    assert_eq!(read, saved, "refused changes changed nothing");
    app.stop().await;
});

both_databases!(async fn a_person_updates_their_details_and_it_is_recorded(app) {
    let token = app.signed_in_provider("mary@example.com").await;
    let updated = json_of(send(&app, reqwest::Method::PATCH, "/v1/me", Some(&token),
        Some(json!({ "name": "Mary Somerville", "phone": "+442079460000", "profession": "Occupational therapist" }))).await, 200).await;
    assert_eq!(updated["name"], "Mary Somerville");
    assert_eq!(updated["phone"], "+442079460000");
    // `null` is not a value the schema allows: refused, nothing changed.
    let resp = send(&app, reqwest::Method::PATCH, "/v1/me", Some(&token), Some(json!({ "phone": null }))).await;
    assert_eq!(resp.status(), 422);
    let current = me(&app, &token).await;
    assert_eq!(current["user"]["name"], "Mary Somerville");
    assert_eq!(current["user"]["profession"], "Occupational therapist");
    assert_eq!(current["user"]["phone"], "+442079460000");
    assert_eq!(current["user"]["email"], "mary@example.com", "the email is not changed here");

    // A bad phone is refused and nothing changes, the name included.
    let resp = send(&app, reqwest::Method::PATCH, "/v1/me", Some(&token),
        Some(json!({ "name": "Someone Else", "phone": "12345" }))).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(me(&app, &token).await["user"]["name"], "Mary Somerville");

    let events = json_of(send(&app, reqwest::Method::GET, "/v1/me/security-events", Some(&token), None).await, 200).await;
    let kinds: Vec<&str> = events["items"].as_array().expect("items").iter().map(|e| e["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "account_updated").count(), 1);
    app.stop().await;
});

both_databases!(async fn a_deletion_request_needs_the_password_then_deactivates_at_once(app) {
    let token = app.signed_in_provider("ida@example.com").await;
    let resp = send(&app, reqwest::Method::POST, "/v1/me/deletion-requests", Some(&token),
        Some(json!({ "password": "not the password at all" }))).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.count_rows("account_deletion_requests").await, 0);
    assert_eq!(app.count_rows("rights_requests").await, 0);
    assert_eq!(me(&app, &token).await["user"]["status"], "active", "nothing changed");

    let accepted = json_of(send(&app, reqwest::Method::POST, "/v1/me/deletion-requests", Some(&token),
        Some(json!({ "password": TEST_PASSWORD }))).await, 202).await;
    assert_eq!(accepted["status"], "received");
    assert_eq!(app.count_rows("account_deletion_requests").await, 1);
    // The erasure is filed with the rights engine, for the privacy officer.
    assert_eq!(app.count_rows("rights_requests").await, 1);
    // Every session ended at once; signing in again is refused.
    let resp = send(&app, reqwest::Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(sign_in(&app, "ida@example.com").await.status(), 401);
    app.stop().await;
});

both_databases!(async fn a_new_verification_token_can_be_requested_without_revealing_accounts(app) {
    let body = json!({
        "name": "Late Verifier", "email": "late@example.com", "profession": "Physiotherapist",
        "organisation_name": "Late Physio", "phone": "+15555550100", "password": TEST_PASSWORD, "region": "us",
    });
    let created = json_of(send(&app, reqwest::Method::POST, "/v1/practices", None, Some(body)).await, 201).await;
    let user_id = created["user"]["id"].as_str().expect("id").to_owned();
    let first = app.verification_token(&user_id).await;
    let outbox_before = app.count_rows("outbox").await;

    let resp = send(&app, reqwest::Method::POST, "/v1/email-verification-requests", None,
        Some(json!({ "email": "nobody@example.com" }))).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(app.count_rows("outbox").await, outbox_before, "nothing queued for an unknown address");

    let resp = send(&app, reqwest::Method::POST, "/v1/email-verification-requests", None,
        Some(json!({ "email": "LATE@example.com" }))).await;
    assert_eq!(resp.status(), 202);
    let second = app.verification_token(&user_id).await;
    assert_ne!(first, second);
    let resp = send(&app, reqwest::Method::POST, "/v1/email-verifications", None, Some(json!({ "token": second }))).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(sign_in(&app, "late@example.com").await.status(), 201);
    // Verified: a further request queues nothing.
    let outbox_now = app.count_rows("outbox").await;
    let resp = send(&app, reqwest::Method::POST, "/v1/email-verification-requests", None,
        Some(json!({ "email": "late@example.com" }))).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(app.count_rows("outbox").await, outbox_now);
    app.stop().await;
});

both_databases!(async fn the_account_export_holds_every_described_category_and_no_secret(app) {
    let token = app.signed_in_provider("export@example.com").await;
    send(&app, reqwest::Method::PUT, "/v1/me/profile", Some(&token),
        Some(json!({ "practice_information": "Harbour Road 1" }))).await;
    send(&app, reqwest::Method::PUT, "/v1/me/preferences", Some(&token),
        Some(json!({ "language": "fr", "time_zone": "Europe/Paris", "units": "metric", "theme": "light", "exercise_reminders": true }))).await;
    let export = json_of(send(&app, reqwest::Method::GET, "/v1/me/account-data", Some(&token), None).await, 200).await;
    let records = export["records"].as_array().expect("records");
    let kinds: BTreeSet<&str> = records.iter().map(|r| r["kind"].as_str().expect("kind")).collect();
    for kind in ["account", "membership", "credentials", "session", "security_event", "profile", "preferences", "notice"] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    let text = export.to_string();
    assert!(text.contains("export@example.com") && text.contains("Harbour Road 1"));
    assert!(!text.contains(&token), "never the bearer token");
    assert!(!text.contains("pbkdf2"), "never the password hash");

    // Every exported category is in the data map (the port's contract), and the
    // map states each category's retention: security events for their period, on
    // a cited ground; the rest while the account exists.
    let map = app.state().identity().personal_data().describe();
    let described: BTreeSet<String> = map.iter().map(|e| e.category.as_str().to_owned()).collect();
    for entry in &map {
        assert!(!entry.description.is_empty() && !entry.sources.is_empty() && !entry.purposes.is_empty(), "{entry:?}");
        match entry.category {
            kernel::DataCategory::SecurityEvents => assert!(
                matches!(&entry.retention, kernel::personal_data::Retention::Period { days: 365, ground } if !ground.citation.is_empty()),
                "{entry:?}"
            ),
            _ => assert_eq!(entry.retention, kernel::personal_data::Retention::WhileActive, "{entry:?}"),
        }
    }
    for record in records {
        assert!(described.contains(record["category"].as_str().expect("category")), "{record}");
    }
    app.stop().await;
});

both_databases!(async fn rectification_corrects_only_the_subjects_own_fields(app) {
    let token = app.signed_in_provider("rect@example.com").await;
    let other = app.signed_in_provider("other@example.com").await;
    let (user, subject) = subject_of(&app, &token).await;
    let (other_user, _) = subject_of(&app, &other).await;
    let data = app.state().identity().personal_data();
    let account = ResourceRef::new("account", user.as_uuid());

    data.rectify(&rights_engine(), subject, Rectification { resource: account, field: "name".to_owned(), value: json!("Corrected Name") })
        .await.expect("rectified");
    assert_eq!(me(&app, &token).await["user"]["name"], "Corrected Name");

    let refused = data.rectify(&rights_engine(), subject, Rectification { resource: account, field: "email".to_owned(), value: json!("x@example.com") }).await;
    assert!(matches!(refused, Err(PersonalDataError::Invalid(_))));
    let refused = data.rectify(&rights_engine(), subject, Rectification { resource: account, field: "phone".to_owned(), value: json!("123") }).await;
    assert!(matches!(refused, Err(PersonalDataError::Invalid(_))));
    // Another person's record, named through this subject: not found, unchanged.
    let refused = data.rectify(&rights_engine(), subject, Rectification {
        resource: ResourceRef::new("account", other_user.as_uuid()), field: "name".to_owned(), value: json!("Hijacked"),
    }).await;
    assert!(matches!(refused, Err(PersonalDataError::NotFound)));
    assert_eq!(me(&app, &other).await["user"]["name"], "Test Provider");
    app.stop().await;
});

both_databases!(async fn erasure_anonymises_deletes_and_pseudonymises_and_is_idempotent(app) {
    let token = app.signed_in_provider("erase-me@example.com").await;
    let keep = app.signed_in_provider("keep-me@example.com").await;
    send(&app, reqwest::Method::PUT, "/v1/me/profile", Some(&token),
        Some(json!({ "practice_information": "ErasureCanary Lane" }))).await;
    let (user, subject) = subject_of(&app, &token).await;
    let data = app.state().identity().personal_data();
    let events_before = app.count_rows("security_events").await;

    let outcomes = data.erase(&rights_engine(), subject).await.expect("erased");
    let fate_of = |kind: &str| outcomes.iter().filter(|o| o.resource.kind == kind).map(|o| o.fate.clone()).collect::<Vec<_>>();
    assert_eq!(fate_of("account"), vec![RecordFate::Anonymised]);
    for kind in ["session", "membership", "profile", "notice", "credentials", "one_time_token"] {
        let fates = fate_of(kind);
        assert!(!fates.is_empty() && fates.iter().all(|f| *f == RecordFate::Deleted), "{kind}: {fates:?}");
    }
    let events = fate_of("security_event");
    assert!(!events.is_empty());
    assert!(events.iter().all(|f| matches!(f, RecordFate::Retained { until: Some(_), ground } if ground.citation.contains("GDPR"))));

    // Over HTTP: the session is gone, sign-in fails, the address is free again.
    assert_eq!(send(&app, reqwest::Method::GET, "/v1/me", Some(&token), None).await.status(), 401);
    assert_eq!(sign_in(&app, "erase-me@example.com").await.status(), 401);
    let again = app.signed_in_provider("erase-me@example.com").await;
    let events = json_of(send(&app, reqwest::Method::GET, "/v1/me/security-events", Some(&again), None).await, 200).await;
    assert_eq!(events["items"].as_array().expect("items").len(), 3, "only the new account's own events");
    // The old events are kept, but no longer under the person's id.
    assert!(app.count_rows("security_events").await >= events_before);
    let as_erased = context(Actor::Member { user, roles: RoleSet::EMPTY });
    assert_eq!(app.state().identity().security_events(&as_erased, 100).await.expect("reads"), vec![]);
    let raw = app.raw_database_contents().await;
    for (place, bytes) in &raw {
        assert!(!store::testing::contains(bytes, b"ErasureCanary"), "profile left in {place}");
    }
    assert_eq!(data.export(&rights_engine(), subject).await.expect("exports"), vec![], "nothing left to export");
    // Everyone else is untouched.
    assert_eq!(me(&app, &keep).await["user"]["email"], "keep-me@example.com");

    // A repeat finds nothing more to delete.
    let repeat = data.erase(&rights_engine(), subject).await.expect("erased again");
    assert!(repeat.iter().all(|o| o.fate != RecordFate::Deleted), "{repeat:?}");
    app.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_are_swept_after_their_retention_period() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let start = Utc::now();
        let clock = Arc::new(ManualClock::new(start));
        let Some(app) = TestApp::spawn_with_clock(backend, clock.clone()).await else {
            continue;
        };
        app.signed_in_provider("old@example.com").await;
        let old_events = app.count_rows("security_events").await;
        assert!(
            old_events >= 3,
            "sign-up, verification and sign-in are recorded"
        );

        // Within the period (365 days by default), the sweep keeps them.
        clock.advance(TimeDelta::days(364));
        server::jobs::sweep(app.state()).await;
        assert_eq!(app.count_rows("security_events").await, old_events);

        // A day after it, the old ones go and a new one stays.
        clock.advance(TimeDelta::days(2));
        assert_eq!(sign_in(&app, "old@example.com").await.status(), 201);
        server::jobs::sweep(app.state()).await;
        assert_eq!(app.count_rows("security_events").await, 1);
        app.stop().await;
    }
}

both_databases!(async fn erasing_a_client_removes_their_birth_date_and_guardianships(app) {
    let provider = app.signed_in_provider("practice@example.com").await;
    let client = app.signed_in_member(&provider, "client@example.com", "client").await;
    let resp = send(&app, reqwest::Method::POST,
        &format!("/v1/organisations/{}/clients/{}/guardians", client.organisation_id, client.user_id),
        Some(&provider), Some(json!({ "name": "Pat Parent", "email": "parent@example.com" }))).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(app.count_rows("guardianships").await, 1);
    let (_, subject) = subject_of(&app, &client.token).await;
    let data = app.state().identity().personal_data();

    let exported = data.export(&rights_engine(), subject).await.expect("exports");
    let kinds: BTreeSet<&str> = exported.iter().map(|r| r.resource.kind).collect();
    assert!(kinds.contains("date_of_birth") && kinds.contains("guardianship"), "{kinds:?}");

    let birth_dates = app.count_rows("birth_dates").await;
    let outcomes = data.erase(&rights_engine(), subject).await.expect("erased");
    for kind in ["date_of_birth", "guardianship"] {
        assert!(outcomes.iter().any(|o| o.resource.kind == kind && o.fate == RecordFate::Deleted), "{kind}");
    }
    assert_eq!(app.count_rows("birth_dates").await, birth_dates - 1);
    assert_eq!(app.count_rows("guardianships").await, 0);
    // The provider's practice is untouched.
    assert_eq!(me(&app, &provider).await["user"]["email"], "practice@example.com");
    app.stop().await;
});

both_databases!(async fn erasure_deletes_the_second_factor_and_recovery_codes(app) {
    let token = app.signed_in_provider("mfa-erase@example.com").await;
    let setup = json_of(send(&app, reqwest::Method::POST, "/v1/me/mfa/enrolment", Some(&token),
        Some(json!({ "password": TEST_PASSWORD }))).await, 201).await;
    let secret = crypto::TotpSecret::from_base32(setup["secret"].as_str().expect("secret")).expect("base32");
    let code = secret.code_at_step(crypto::totp::step_of(Utc::now().timestamp()));
    json_of(send(&app, reqwest::Method::POST, "/v1/me/mfa/confirmation", Some(&token),
        Some(json!({ "password": TEST_PASSWORD, "code": code }))).await, 200).await;
    assert_eq!(app.count_rows("recovery_codes").await, 10);
    let (_, subject) = subject_of(&app, &token).await;
    let data = app.state().identity().personal_data();

    let exported = data.export(&rights_engine(), subject).await.expect("exports");
    let mfa = exported.iter().find(|r| r.resource.kind == "mfa_credential").expect("exported");
    assert_eq!(mfa.data["enabled"], true);
    assert!(!mfa.data.to_string().contains(setup["secret"].as_str().expect("secret")), "never the secret");

    let outcomes = data.erase(&rights_engine(), subject).await.expect("erased");
    let deleted = |kind: &str| outcomes.iter().filter(|o| o.resource.kind == kind && o.fate == RecordFate::Deleted).count();
    assert_eq!(deleted("mfa_credential"), 1);
    assert_eq!(deleted("recovery_code"), 10);
    assert_eq!(app.count_rows("recovery_codes").await, 0);
    assert_eq!(app.count_rows("mfa_credentials").await, 0);
    app.stop().await;
});

both_databases!(async fn an_account_created_for_a_child_cannot_be_verified_or_reset_past_the_age_gate(app) {
    let provider = app.signed_in_provider("gate@example.com").await;
    let org = app.organisation_of(&provider).await;
    json_of(send(&app, reqwest::Method::POST, &format!("/v1/organisations/{org}/clients"), Some(&provider),
        Some(json!({ "name": "Young Client", "email": "kid@example.com", "date_of_birth": "2020-01-01", "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" } }))).await, 202).await;
    let kid = app.member_id(&provider, "kid@example.com").await;
    let kid_id = UserId::from_uuid(kid.parse().expect("a UUID"));
    let outbox = store::OutboxNotifier::new(app.state().database().clone(), app.state().keyring().clone());

    // A verification email is only for self-registered accounts: nothing is queued.
    let resp = send(&app, reqwest::Method::POST, "/v1/email-verification-requests", None, Some(json!({ "email": "kid@example.com" }))).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(outbox.latest_secret(kid_id, "verify_email").await.expect("reads"), None);
    // Nor is a password reset for an account that was never activated.
    let resp = send(&app, reqwest::Method::POST, "/v1/password-resets", None, Some(json!({ "email": "kid@example.com" }))).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(app.notice_secret(&kid, "reset_password").await, None);
    // The account stays pending: the age gate at activation is the only way in.
    assert_eq!(sign_in(&app, "kid@example.com").await.status(), 401);
    app.stop().await;
});

both_databases!(async fn a_deletion_request_needs_the_second_factor_when_mfa_is_on(app) {
    let token = app.signed_in_provider("mfa-delete@example.com").await;
    let setup = json_of(send(&app, reqwest::Method::POST, "/v1/me/mfa/enrolment", Some(&token),
        Some(json!({ "password": TEST_PASSWORD }))).await, 201).await;
    let secret = crypto::TotpSecret::from_base32(setup["secret"].as_str().expect("secret")).expect("base32");
    let step = crypto::totp::step_of(Utc::now().timestamp());
    json_of(send(&app, reqwest::Method::POST, "/v1/me/mfa/confirmation", Some(&token),
        Some(json!({ "password": TEST_PASSWORD, "code": secret.code_at_step(step) }))).await, 200).await;

    let resp = send(&app, reqwest::Method::POST, "/v1/me/deletion-requests", Some(&token), Some(json!({ "password": TEST_PASSWORD }))).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.count_rows("account_deletion_requests").await, 0);
    let resp = send(&app, reqwest::Method::POST, "/v1/me/deletion-requests", Some(&token),
        Some(json!({ "password": TEST_PASSWORD, "totp_code": secret.code_at_step(step + 1) }))).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(app.count_rows("account_deletion_requests").await, 1);
    app.stop().await;
});
