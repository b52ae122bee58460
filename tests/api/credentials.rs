//! Strong sign-in and credential changes over HTTP, on both databases: TOTP MFA
//! (enrolment, replay, lockout, recovery codes), re-authentication, password
//! change, email change, password reset, and a practice's settings with its MFA
//! requirement.

use std::sync::Arc;

use chrono::{Duration, Utc};
use crypto::TotpSecret;
use crypto::totp::step_of;
use kernel::{Clock, ManualClock};
use serde_json::{Value, json};
use tests::{Backend, TEST_PASSWORD, TestApp, both_databases};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Runs one async test body against SQLite and, when configured, PostgreSQL, with
/// the server's time on a [`ManualClock`] the body can move.
macro_rules! both_databases_with_clock {
    (async fn $name:ident($app:ident, $clock:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: Backend) {
                let $clock = Arc::new(ManualClock::new(Utc::now()));
                let Some($app) = TestApp::spawn_with_clock(backend, $clock.clone()).await else {
                    eprintln!("CUSTODIA_TEST_POSTGRES_URL is not set: PostgreSQL leg skipped");
                    return;
                };
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("answers")
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    send(app, reqwest::Method::POST, path, token, body).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    resp.json().await.expect("a problem")
}

async fn json_of(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    resp.json().await.expect("JSON")
}

/// Signs up and signs in a provider; returns (user id, organisation id, token).
async fn provider(app: &TestApp, email: &str) -> (String, String, String) {
    let token = app.signed_in_provider(email).await;
    let me = json_of(get(app, "/v1/me", &token).await, 200).await;
    (
        me["user"]["id"].as_str().expect("id").to_owned(),
        me["memberships"][0]["organisation_id"]
            .as_str()
            .expect("organisation")
            .to_owned(),
        token,
    )
}

async fn sign_in(app: &TestApp, body: Value) -> reqwest::Response {
    post(app, "/v1/sessions", None, &body).await
}

fn code(secret: &TotpSecret, clock: &ManualClock) -> String {
    secret.code_at_step(step_of(clock.now().timestamp()))
}

/// Turns MFA on for the caller; returns the secret and the recovery codes.
async fn enable_mfa(app: &TestApp, clock: &ManualClock, token: &str) -> (TotpSecret, Vec<String>) {
    let setup = json_of(
        post(
            app,
            "/v1/me/mfa/enrolment",
            Some(token),
            &json!({ "password": TEST_PASSWORD }),
        )
        .await,
        201,
    )
    .await;
    let secret =
        TotpSecret::from_base32(setup["secret"].as_str().expect("secret")).expect("base32");
    let confirmed = json_of(
        post(
            app,
            "/v1/me/mfa/confirmation",
            Some(token),
            &json!({ "password": TEST_PASSWORD, "code": code(&secret, clock) }),
        )
        .await,
        200,
    )
    .await;
    let codes = confirmed["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    // The next code accepted must be of a later step.
    clock.advance(Duration::seconds(30));
    (secret, codes)
}

async fn event_kinds(app: &TestApp, token: &str) -> Vec<String> {
    let page = json_of(get(app, "/v1/me/security-events", token).await, 200).await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

both_databases_with_clock!(async fn mfa_is_enrolled_confirmed_and_then_required_at_sign_in(app, clock) {
    let (user, _, token) = provider(&app, "mfa@example.com").await;
    // Re-authentication: a wrong password is 403 and stores nothing.
    problem(post(&app, "/v1/me/mfa/enrolment", Some(&token), &json!({ "password": "not my password" })).await, 403).await;
    assert_eq!(app.count_rows("mfa_credentials").await, 0);

    let setup = json_of(post(&app, "/v1/me/mfa/enrolment", Some(&token), &json!({ "password": TEST_PASSWORD })).await, 201).await;
    let base32 = setup["secret"].as_str().expect("secret");
    assert_eq!(base32.len(), 32, "160 bits in base32 without padding");
    let uri = setup["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/Custodia:mfa%40example.com?secret="), "{uri}");
    assert!(uri.contains(base32) && uri.contains("digits=6") && uri.contains("period=30"));
    let secret = TotpSecret::from_base32(base32).expect("base32");

    // Pending: sign-in does not ask for a code yet.
    assert_eq!(sign_in(&app, json!({ "email": "mfa@example.com", "password": TEST_PASSWORD })).await.status(), 201);
    // A wrong code does not confirm.
    let wrong = format!("{:06}", (code(&secret, &clock).parse::<u32>().expect("digits") + 1) % 1_000_000);
    let p = problem(post(&app, "/v1/me/mfa/confirmation", Some(&token), &json!({ "password": TEST_PASSWORD, "code": wrong })).await, 422).await;
    assert!(p["detail"].as_str().expect("detail").contains("`code`"));

    let confirmed = json_of(post(&app, "/v1/me/mfa/confirmation", Some(&token), &json!({ "password": TEST_PASSWORD, "code": code(&secret, &clock) })).await, 200).await;
    assert_eq!(confirmed["recovery_codes"].as_array().expect("codes").len(), 10);
    assert_eq!(app.count_rows("recovery_codes").await, 10);
    // Enrolling again while on is a conflict.
    problem(post(&app, "/v1/me/mfa/enrolment", Some(&token), &json!({ "password": TEST_PASSWORD })).await, 409).await;

    // The password alone is no longer enough: 401 with its own problem type.
    let p = problem(sign_in(&app, json!({ "email": "mfa@example.com", "password": TEST_PASSWORD })).await, 401).await;
    assert_eq!(p["type"], "urn:custodia:problem:mfa-required");
    // The code used to confirm cannot be used again (same step).
    let replay = problem(sign_in(&app, json!({ "email": "mfa@example.com", "password": TEST_PASSWORD, "totp_code": code(&secret, &clock) })).await, 401).await;
    assert_eq!(replay["type"], "urn:custodia:problem:unauthenticated");

    clock.advance(Duration::seconds(30));
    let fresh = code(&secret, &clock);
    assert_eq!(sign_in(&app, json!({ "email": "mfa@example.com", "password": TEST_PASSWORD, "totp_code": fresh })).await.status(), 201);
    // Replayed within its window: refused.
    problem(sign_in(&app, json!({ "email": "mfa@example.com", "password": TEST_PASSWORD, "totp_code": fresh })).await, 401).await;
    // A wrong password with a good code is still a wrong password.
    clock.advance(Duration::seconds(30));
    problem(sign_in(&app, json!({ "email": "mfa@example.com", "password": "not my password", "totp_code": code(&secret, &clock) })).await, 401).await;

    // Once MFA is on, a credential change needs a current code with the password.
    clock.advance(Duration::seconds(30));
    let change = |totp: Option<String>| {
        let mut body = json!({ "password": TEST_PASSWORD, "new_email": "mfa2@example.com" });
        if let Some(totp) = totp {
            body["totp_code"] = json!(totp);
        }
        body
    };
    let p = problem(post(&app, "/v1/me/email-changes", Some(&token), &change(None)).await, 403).await;
    assert!(p["detail"].as_str().expect("detail").contains("totp_code"));
    assert_eq!(post(&app, "/v1/me/email-changes", Some(&token), &change(Some(code(&secret, &clock)))).await.status(), 202);

    let kinds = event_kinds(&app, &token).await;
    for kind in ["mfa_enrolment_started", "mfa_enabled", "sign_in_failed"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} missing from {kinds:?}");
    }
    assert!(app.notice_secret(&user, "mfa_enabled").await.is_none(), "the notice carries no secret");
    app.stop().await;
});

both_databases_with_clock!(async fn wrong_totp_codes_count_toward_the_lockout_until_429(app, clock) {
    let (_, _, token) = provider(&app, "lockmfa@example.com").await;
    let (secret, _) = enable_mfa(&app, &clock, &token).await;
    let good = code(&secret, &clock);
    let wrong = format!("{:06}", (good.parse::<u32>().expect("digits") + 7) % 1_000_000);
    let attempt = json!({ "email": "lockmfa@example.com", "password": TEST_PASSWORD, "totp_code": wrong });
    for _ in 0..4 {
        problem(sign_in(&app, attempt.clone()).await, 401).await;
    }
    let locked = sign_in(&app, attempt).await;
    let retry: u64 = locked.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry > 0 && retry <= 15 * 60);
    problem(locked, 429).await;
    // Even the right password and code are refused while locked.
    problem(sign_in(&app, json!({ "email": "lockmfa@example.com", "password": TEST_PASSWORD, "totp_code": good })).await, 429).await;
    let kinds = event_kinds(&app, &token).await;
    assert!(kinds.contains(&"account_locked".to_owned()), "{kinds:?}");
    app.stop().await;
});

both_databases_with_clock!(async fn recovery_codes_work_once_are_replaced_and_mfa_can_be_turned_off(app, clock) {
    let (user, _, token) = provider(&app, "recover@example.com").await;
    let (secret, codes) = enable_mfa(&app, &clock, &token).await;
    let with_code = |code: &str| json!({ "email": "recover@example.com", "password": TEST_PASSWORD, "recovery_code": code });
    // Typed in lower case without dashes, it still works, once.
    let typed = codes[0].to_lowercase().replace('-', "");
    assert_eq!(sign_in(&app, with_code(&typed)).await.status(), 201);
    problem(sign_in(&app, with_code(&codes[0])).await, 401).await;
    assert!(event_kinds(&app, &token).await.contains(&"recovery_code_used".to_owned()));
    assert!(app.notice_secret(&user, "recovery_code_used").await.is_none());

    // Regenerating needs a current code too, once MFA is on.
    problem(post(&app, "/v1/me/mfa/recovery-codes", Some(&token), &json!({ "password": TEST_PASSWORD })).await, 403).await;
    let fresh = json_of(post(&app, "/v1/me/mfa/recovery-codes", Some(&token), &json!({ "password": TEST_PASSWORD, "totp_code": code(&secret, &clock) })).await, 201).await;
    let fresh: Vec<String> = fresh["recovery_codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("code").to_owned()).collect();
    assert_eq!(fresh.len(), 10);
    // The old, unused codes stopped working; the new ones work.
    problem(sign_in(&app, with_code(&codes[1])).await, 401).await;
    assert_eq!(sign_in(&app, with_code(&fresh[0])).await.status(), 201);

    // Turning MFA off: password and a current code.
    clock.advance(Duration::seconds(30));
    problem(post(&app, "/v1/me/mfa/deactivation", Some(&token), &json!({ "password": "not my password", "totp_code": code(&secret, &clock) })).await, 403).await;
    assert_eq!(post(&app, "/v1/me/mfa/deactivation", Some(&token), &json!({ "password": TEST_PASSWORD, "totp_code": code(&secret, &clock) })).await.status(), 204);
    assert_eq!(app.count_rows("mfa_credentials").await, 0);
    assert_eq!(app.count_rows("recovery_codes").await, 0);
    assert_eq!(sign_in(&app, json!({ "email": "recover@example.com", "password": TEST_PASSWORD })).await.status(), 201);
    let kinds = event_kinds(&app, &token).await;
    for kind in ["recovery_codes_regenerated", "mfa_disabled"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} missing from {kinds:?}");
    }
    app.stop().await;
});

both_databases!(async fn a_password_change_needs_the_current_password_and_ends_other_sessions(app) {
    let (user, _, token) = provider(&app, "change@example.com").await;
    let other = json_of(sign_in(&app, json!({ "email": "change@example.com", "password": TEST_PASSWORD })).await, 201).await;
    let other = other["token"].as_str().expect("token").to_owned();
    let put = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move { send(app, reqwest::Method::PUT, "/v1/me/password", Some(&token), &body).await }
    };
    // A weak new password: 422, nothing changes.
    let p = problem(put(json!({ "current_password": TEST_PASSWORD, "new_password": "password1234" })).await, 422).await;
    assert!(p["detail"].as_str().expect("detail").contains("too common"));
    // A wrong current password: 403 (the session is valid; the proof is not), nothing changes.
    let p = problem(put(json!({ "current_password": "not my password", "new_password": NEW_PASSWORD })).await, 403).await;
    assert!(p["detail"].as_str().expect("detail").contains("nothing was changed"));
    assert_eq!(get(&app, "/v1/me", &other).await.status(), 200);
    assert_eq!(sign_in(&app, json!({ "email": "change@example.com", "password": TEST_PASSWORD })).await.status(), 201);

    assert_eq!(put(json!({ "current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD })).await.status(), 204);
    assert_eq!(get(&app, "/v1/me", &token).await.status(), 200, "this session stays");
    problem(get(&app, "/v1/me", &other).await, 401).await;
    problem(sign_in(&app, json!({ "email": "change@example.com", "password": TEST_PASSWORD })).await, 401).await;
    assert_eq!(sign_in(&app, json!({ "email": "change@example.com", "password": NEW_PASSWORD })).await.status(), 201);
    assert!(event_kinds(&app, &token).await.contains(&"password_changed".to_owned()));
    assert!(app.notice_secret(&user, "password_changed").await.is_none());
    app.stop().await;
});

both_databases!(async fn an_email_change_takes_effect_only_when_the_new_address_confirms(app) {
    let (user, _, token) = provider(&app, "old@example.com").await;
    let request = |password: &str, new_email: &str| json!({ "password": password, "new_email": new_email });
    problem(post(&app, "/v1/me/email-changes", Some(&token), &request("not my password", "new@example.com")).await, 403).await;
    assert_eq!(app.notice_address(&user, "confirm_email_change").await, None);
    // An address already registered: 409.
    app.signed_in_provider("taken@example.com").await;
    problem(post(&app, "/v1/me/email-changes", Some(&token), &request(TEST_PASSWORD, "taken@example.com")).await, 409).await;

    assert_eq!(post(&app, "/v1/me/email-changes", Some(&token), &request(TEST_PASSWORD, "New@Example.com")).await.status(), 202);
    // The notice goes to the new address, with the token.
    assert_eq!(app.notice_address(&user, "confirm_email_change").await.as_deref(), Some("new@example.com"));
    let change = app.notice_secret(&user, "confirm_email_change").await.expect("a token");
    // Until redeemed, the old address stays in force.
    assert_eq!(sign_in(&app, json!({ "email": "old@example.com", "password": TEST_PASSWORD })).await.status(), 201);
    problem(sign_in(&app, json!({ "email": "new@example.com", "password": TEST_PASSWORD })).await, 401).await;

    assert_eq!(post(&app, "/v1/email-change-confirmations", None, &json!({ "token": change })).await.status(), 204);
    problem(post(&app, "/v1/email-change-confirmations", None, &json!({ "token": change })).await, 410).await;
    problem(post(&app, "/v1/email-change-confirmations", None, &json!({ "token": "x".repeat(43) })).await, 404).await;
    assert_eq!(sign_in(&app, json!({ "email": "new@example.com", "password": TEST_PASSWORD })).await.status(), 201);
    problem(sign_in(&app, json!({ "email": "old@example.com", "password": TEST_PASSWORD })).await, 401).await;
    let me = json_of(get(&app, "/v1/me", &token).await, 200).await;
    assert_eq!(me["user"]["email"], "new@example.com");
    // The OLD address is told.
    assert_eq!(app.notice_address(&user, "email_changed").await.as_deref(), Some("old@example.com"));
    let kinds = event_kinds(&app, &token).await;
    for kind in ["email_change_requested", "email_changed"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} missing from {kinds:?}");
    }
    app.stop().await;
});

both_databases!(async fn an_address_taken_before_confirmation_is_409_and_the_old_one_stays(app) {
    let (user, _, token) = provider(&app, "first@example.com").await;
    assert_eq!(post(&app, "/v1/me/email-changes", Some(&token), &json!({ "password": TEST_PASSWORD, "new_email": "wanted@example.com" })).await.status(), 202);
    let change = app.notice_secret(&user, "confirm_email_change").await.expect("a token");
    // Someone else signs up with the address meanwhile.
    app.signed_in_provider("wanted@example.com").await;
    problem(post(&app, "/v1/email-change-confirmations", None, &json!({ "token": change })).await, 409).await;
    let me = json_of(get(&app, "/v1/me", &token).await, 200).await;
    assert_eq!(me["user"]["email"], "first@example.com");
    assert_eq!(sign_in(&app, json!({ "email": "first@example.com", "password": TEST_PASSWORD })).await.status(), 201);
    app.stop().await;
});

both_databases_with_clock!(async fn a_password_reset_token_works_once_and_expires_after_an_hour(app, clock) {
    let (user, _, token) = provider(&app, "reset@example.com").await;
    // Lock the account first: a reset clears the lockout.
    for _ in 0..5 {
        sign_in(&app, json!({ "email": "reset@example.com", "password": "not my password" })).await;
    }
    problem(sign_in(&app, json!({ "email": "reset@example.com", "password": TEST_PASSWORD })).await, 429).await;

    // The same answer whether or not the account exists.
    let known = post(&app, "/v1/password-resets", None, &json!({ "email": "reset@example.com" })).await;
    let unknown = post(&app, "/v1/password-resets", None, &json!({ "email": "nobody@example.com" })).await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(known.text().await.expect("body"), unknown.text().await.expect("body"));
    let reset = app.notice_secret(&user, "reset_password").await.expect("a reset token");

    let confirm = |token: &str, password: &str| json!({ "token": token, "new_password": password });
    // A weak password: 422, and the token is not consumed.
    problem(post(&app, "/v1/password-reset-confirmations", None, &confirm(&reset, "password1234")).await, 422).await;
    problem(post(&app, "/v1/password-reset-confirmations", None, &confirm(&"x".repeat(43), NEW_PASSWORD)).await, 404).await;
    assert_eq!(post(&app, "/v1/password-reset-confirmations", None, &confirm(&reset, NEW_PASSWORD)).await.status(), 204);
    problem(post(&app, "/v1/password-reset-confirmations", None, &confirm(&reset, NEW_PASSWORD)).await, 410).await;

    // Every session ended; the lock is cleared; the new password works.
    problem(get(&app, "/v1/me", &token).await, 401).await;
    problem(sign_in(&app, json!({ "email": "reset@example.com", "password": TEST_PASSWORD })).await, 401).await;
    let session = json_of(sign_in(&app, json!({ "email": "reset@example.com", "password": NEW_PASSWORD })).await, 201).await;
    let token = session["token"].as_str().expect("token").to_owned();
    let kinds = event_kinds(&app, &token).await;
    for kind in ["password_reset_requested", "password_reset"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} missing from {kinds:?}");
    }

    // A second token, redeemed after its hour: 410.
    assert_eq!(post(&app, "/v1/password-resets", None, &json!({ "email": "reset@example.com" })).await.status(), 202);
    let mut late = None;
    for _ in 0..100 {
        late = app.notice_secret(&user, "reset_password").await.filter(|t| *t != reset);
        if late.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let late = late.expect("a second reset token");
    clock.advance(Duration::minutes(61));
    problem(post(&app, "/v1/password-reset-confirmations", None, &confirm(&late, "yet another passphrase")).await, 410).await;
    app.stop().await;
});

both_databases!(async fn organisation_settings_are_read_by_members_and_changed_by_its_admin(app) {
    let (_, organisation, admin) = provider(&app, "admin@example.com").await;
    let (provider_id, other_organisation, other_admin) = provider(&app, "elsewhere@example.com").await;
    let path = format!("/v1/organisations/{organisation}");
    let view = json_of(get(&app, &path, &admin).await, 200).await;
    assert_eq!(view["marketing_mode"], "opt_in");
    assert_eq!(view["require_mfa"], false);

    let patch = |token: &str, body: Value| {
        let app = &app;
        let path = path.clone();
        let token = token.to_owned();
        async move { send(app, reqwest::Method::PATCH, &path, Some(&token), &body).await }
    };
    let changed = json_of(patch(&admin, json!({ "name": "Renamed Practice", "marketing_mode": "opt_out" })).await, 200).await;
    assert_eq!(changed["name"], "Renamed Practice");
    assert_eq!(changed["marketing_mode"], "opt_out");
    let view = json_of(get(&app, &path, &admin).await, 200).await;
    assert_eq!(view["name"], "Renamed Practice");
    assert!(event_kinds(&app, &admin).await.contains(&"organisation_settings_changed".to_owned()));

    // Another practice's admin: 404 for reading and for changing, as for no practice.
    problem(get(&app, &path, &other_admin).await, 404).await;
    problem(patch(&other_admin, json!({ "require_mfa": true })).await, 404).await;
    problem(get(&app, &format!("/v1/organisations/{}", uuid::Uuid::now_v7()), &admin).await, 404).await;

    // A provider of this practice who is not its org_admin: may read, may not change (403).
    let provider_uuid = uuid::Uuid::parse_str(&provider_id).expect("uuid");
    store::testing::add_membership(app.state().database(), provider_uuid, uuid::Uuid::parse_str(&organisation).expect("uuid"), "provider").await;
    let session = json_of(sign_in(&app, json!({ "email": "elsewhere@example.com", "password": TEST_PASSWORD, "organisation_id": organisation })).await, 201).await;
    let provider_here = session["token"].as_str().expect("token").to_owned();
    assert_eq!(get(&app, &path, &provider_here).await.status(), 200);
    problem(patch(&provider_here, json!({ "require_mfa": true })).await, 403).await;
    let view = json_of(get(&app, &path, &admin).await, 200).await;
    assert_eq!(view["require_mfa"], false, "nothing changed");
    assert_ne!(organisation, other_organisation);
    app.stop().await;
});

both_databases_with_clock!(async fn a_practice_that_requires_mfa_restricts_sessions_until_enrolment(app, clock) {
    let (_, organisation, admin) = provider(&app, "strict@example.com").await;
    let path = format!("/v1/organisations/{organisation}");
    let on = send(&app, reqwest::Method::PATCH, &path, Some(&admin), &json!({ "require_mfa": true })).await;
    assert_eq!(json_of(on, 200).await["require_mfa"], true);

    // The admin has no MFA: their session may now only enrol or sign out.
    let p = problem(get(&app, "/v1/me", &admin).await, 403).await;
    assert_eq!(p["type"], "urn:custodia:problem:mfa-enrolment-required");
    problem(get(&app, &path, &admin).await, 403).await;
    problem(get(&app, "/v1/sessions", &admin).await, 403).await;

    // Sign-in still succeeds (so the person can enrol), restricted the same way.
    let second = json_of(sign_in(&app, json!({ "email": "strict@example.com", "password": TEST_PASSWORD })).await, 201).await;
    assert_eq!(second["mfa_enrolment_required"], true);
    let second_token = second["token"].as_str().expect("token").to_owned();
    let second_id = second["session"]["id"].as_str().expect("id").to_owned();
    let p = problem(get(&app, "/v1/me", &second_token).await, 403).await;
    assert_eq!(p["type"], "urn:custodia:problem:mfa-enrolment-required");
    // Signing out is allowed.
    let out = app.client.delete(app.url(&format!("/v1/sessions/{second_id}"))).bearer_auth(&second_token).send().await.expect("answers");
    assert_eq!(out.status(), 204);
    problem(get(&app, "/v1/me", &second_token).await, 401).await;

    // Enrolment is allowed and lifts the restriction at once.
    let (secret, _) = enable_mfa(&app, &clock, &admin).await;
    assert_eq!(get(&app, "/v1/me", &admin).await.status(), 200);
    assert_eq!(get(&app, &path, &admin).await.status(), 200);
    // From now on sign-in needs the code, and gives a full session.
    let full = json_of(sign_in(&app, json!({ "email": "strict@example.com", "password": TEST_PASSWORD, "totp_code": code(&secret, &clock) })).await, 201).await;
    assert_eq!(full["mfa_enrolment_required"], false);
    assert_eq!(get(&app, "/v1/me", full["token"].as_str().expect("token")).await.status(), 200);
    app.stop().await;
});

both_databases!(async fn a_reset_asked_for_before_a_password_change_cannot_undo_it(app) {
    let (user, _, token) = provider(&app, "undo@example.com").await;
    assert_eq!(post(&app, "/v1/password-resets", None, &json!({ "email": "undo@example.com" })).await.status(), 202);
    let reset = app.notice_secret(&user, "reset_password").await.expect("a reset token");
    // The owner changes the password while the reset token is still unused...
    let resp = send(&app, reqwest::Method::PUT, "/v1/me/password", Some(&token),
        &json!({ "current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD })).await;
    assert_eq!(resp.status(), 204);
    // ...so the token is spent: whoever holds it cannot set another password.
    problem(post(&app, "/v1/password-reset-confirmations", None,
        &json!({ "token": reset, "new_password": "an attacker's passphrase" })).await, 410).await;
    assert_eq!(sign_in(&app, json!({ "email": "undo@example.com", "password": NEW_PASSWORD })).await.status(), 201);
    app.stop().await;
});

both_databases!(async fn a_password_reset_ends_pending_email_changes_and_operator_sessions(app) {
    let (user, _, token) = provider(&app, "victim@example.com").await;
    // Someone who knew the password asked to move the account to their address...
    let resp = post(&app, "/v1/me/email-changes", Some(&token),
        &json!({ "password": TEST_PASSWORD, "new_email": "thief@example.com" })).await;
    assert_eq!(resp.status(), 202);
    let change = app.notice_secret(&user, "confirm_email_change").await.expect("a token");
    // ...and holds an operator session of the same account.
    app.grant_operator("victim@example.com").await;
    let operator: Value = json_of(post(&app, "/v1/operator/sessions", None,
        &json!({ "email": "victim@example.com", "password": TEST_PASSWORD })).await, 201).await;
    let operator = operator["token"].as_str().expect("a token").to_owned();

    // The owner resets the password.
    assert_eq!(post(&app, "/v1/password-resets", None, &json!({ "email": "victim@example.com" })).await.status(), 202);
    let reset = app.notice_secret(&user, "reset_password").await.expect("a reset token");
    assert_eq!(post(&app, "/v1/password-reset-confirmations", None,
        &json!({ "token": reset, "new_password": NEW_PASSWORD })).await.status(), 204);

    // Every way back in is gone: the email change, the operator session, the session.
    problem(post(&app, "/v1/email-change-confirmations", None, &json!({ "token": change })).await, 410).await;
    assert_eq!(get(&app, "/v1/operator/practices", &operator).await.status(), 401);
    assert_eq!(get(&app, "/v1/me", &token).await.status(), 401);
    assert_eq!(sign_in(&app, json!({ "email": "victim@example.com", "password": NEW_PASSWORD })).await.status(), 201);
    app.stop().await;
});
