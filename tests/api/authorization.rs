//! Authorisation coverage: every operation in `docs/openapi.json` is either public
//! by design (listed here) or is proven to answer 401 without a session, and to
//! refuse a caller of the wrong role or practice (403, or 404 where existence must
//! not leak). A new operation fails this test until it is covered.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tests::{TestApp, both_databases};

/// Operations anyone may call, by design.
const PUBLIC: [&str; 10] = [
    "getHealth",
    "getReadiness",
    "createPractice",
    "verifyEmail",
    "requestEmailVerification",
    "createSession",
    "activateAccount",
    "confirmEmailChange",
    "requestPasswordReset",
    "resetPassword",
];

/// Every operation in the committed spec, with its method and path template.
fn operations() -> Vec<(String, String, String)> {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .expect("JSON");
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let id = op["operationId"]
                .as_str()
                .expect("every operation has an operationId");
            ops.push((id.to_owned(), method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// A concrete path for a template, every `{param}` a fresh UUID.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = app.client.request(method, app.url(path)).json(&json!({}));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("answers")
}

both_databases!(async fn every_protected_operation_answers_401_without_a_session(app) {
    let mut checked = 0;
    for (id, method, path) in operations() {
        if PUBLIC.contains(&id.as_str()) {
            continue;
        }
        for token in [None, Some("forged-token-that-was-never-issued")] {
            let resp = call(&app, &method, &concrete(&path), token).await;
            assert_eq!(resp.status(), 401, "{id} ({method} {path}) with {token:?}");
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
        }
        checked += 1;
    }
    assert!(checked > 0, "no protected operation was found");
    app.stop().await;
});

/// Operations whose only subject is the caller's own account: a caller of another
/// practice or role can only ever reach their own, so the wrong-caller check is
/// that another person's resource is invisible (404).
const OWN_ACCOUNT: [&str; 12] = [
    "getCurrentUser",
    "updateCurrentUser",
    "listSessions",
    "revokeAllSessions",
    "revokeSession",
    "listSecurityEvents",
    "getProfile",
    "replaceProfile",
    "getPreferences",
    "replacePreferences",
    "exportAccountData",
    "requestAccountDeletion",
];

/// Changes to the caller's own credentials, each re-authenticated by the current
/// password: a caller can only ever reach their own account, and a session without
/// that password is refused (403) and changes nothing.
const OWN_CREDENTIALS: [(&str, &str, &str); 6] = [
    ("startMfaEnrolment", "POST", "/v1/me/mfa/enrolment"),
    ("confirmMfaEnrolment", "POST", "/v1/me/mfa/confirmation"),
    (
        "regenerateRecoveryCodes",
        "POST",
        "/v1/me/mfa/recovery-codes",
    ),
    ("disableMfa", "POST", "/v1/me/mfa/deactivation"),
    ("changePassword", "PUT", "/v1/me/password"),
    ("requestEmailChange", "POST", "/v1/me/email-changes"),
];

/// A practice's settings: another practice's caller gets 404, a member without
/// the role 403 (`tests::credentials::organisation_settings_are_read_by_members_and_changed_by_its_admin`).
const ORGANISATION_SETTINGS: [&str; 2] = ["getOrganisation", "updateOrganisation"];

#[test]
fn every_operation_is_classified() {
    let classified: BTreeSet<&str> = PUBLIC
        .iter()
        .chain(OWN_ACCOUNT.iter())
        .chain(PRACTICE_PEOPLE.iter())
        .chain(OWN_CREDENTIALS.iter().map(|(id, _, _)| id))
        .chain(ORGANISATION_SETTINGS.iter())
        .copied()
        .collect();
    let missing: Vec<String> = operations()
        .into_iter()
        .map(|(id, _, _)| id)
        .filter(|id| !classified.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without an authorisation check: {missing:?}"
    );
}

both_databases!(async fn another_practices_caller_cannot_reach_a_persons_own_resources(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let bob = app.signed_in_provider("bob@example.com").await;
    // Bob's session id, from Bob's own list.
    let page: Value = app.client.get(app.url("/v1/sessions")).bearer_auth(&bob).send().await.expect("answers").json().await.expect("JSON");
    let bobs_session = page["items"][0]["id"].as_str().expect("id").to_owned();
    // Alice cannot revoke it: 404, as for an id that does not exist.
    let resp = call(&app, "DELETE", &format!("/v1/sessions/{bobs_session}"), Some(&alice)).await;
    assert_eq!(resp.status(), 404);
    let resp = call(&app, "DELETE", &format!("/v1/sessions/{}", uuid::Uuid::now_v7()), Some(&alice)).await;
    assert_eq!(resp.status(), 404);
    // Alice's own views never show Bob.
    let me: Value = app.client.get(app.url("/v1/me")).bearer_auth(&alice).send().await.expect("answers").json().await.expect("JSON");
    assert!(!me.to_string().contains("bob@example.com"));
    let sessions: Value = app.client.get(app.url("/v1/sessions")).bearer_auth(&alice).send().await.expect("answers").json().await.expect("JSON");
    assert!(!sessions.to_string().contains(&bobs_session));
    // Alice's writes land on Alice only; her reads and export never show Bob's.
    let resp = app.client.put(app.url("/v1/me/profile")).bearer_auth(&bob)
        .json(&json!({ "practice_information": "Bobs-Private-Practice" })).send().await.expect("answers");
    assert_eq!(resp.status(), 200);
    let resp = app.client.patch(app.url("/v1/me")).bearer_auth(&alice)
        .json(&json!({ "name": "Alice Only" })).send().await.expect("answers");
    assert_eq!(resp.status(), 200);
    for path in ["/v1/me/profile", "/v1/me/preferences", "/v1/me/account-data", "/v1/me/security-events"] {
        let body = app.client.get(app.url(path)).bearer_auth(&alice).send().await.expect("answers").text().await.expect("text");
        assert!(!body.contains("Bobs-Private-Practice") && !body.contains("bob@example.com") && !body.contains(&bobs_session), "{path}");
    }
    let bobs_me: Value = app.client.get(app.url("/v1/me")).bearer_auth(&bob).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(bobs_me["user"]["name"], "Test Provider", "Alice's change did not reach Bob");
    // Bob's session still works.
    assert_eq!(app.client.get(app.url("/v1/me")).bearer_auth(&bob).send().await.expect("answers").status(), 200);
    app.stop().await;
});

/// Operations on the people of a practice named in the path: a role that may not
/// do them answers 403 in its own practice, and another practice's caller 404.
const PRACTICE_PEOPLE: [&str; 8] = [
    "createClient",
    "linkGuardian",
    "reportClientUnder13",
    "addMember",
    "listMembers",
    "removeMemberRole",
    "disableAccount",
    "enableAccount",
];

/// Each of [`PRACTICE_PEOPLE`] as a valid request on `org`, about `client` (a
/// client of it) where it names a person.
fn practice_requests(org: &str, client: &str) -> Vec<(&'static str, &'static str, String, Value)> {
    let person = json!({ "name": "Someone New", "email": "someone@example.com" });
    vec![
        (
            "createClient",
            "POST",
            format!("/v1/organisations/{org}/clients"),
            json!({ "name": "Someone New", "email": "someone@example.com", "date_of_birth": "1990-01-01" }),
        ),
        (
            "linkGuardian",
            "POST",
            format!("/v1/organisations/{org}/clients/{client}/guardians"),
            person.clone(),
        ),
        (
            "reportClientUnder13",
            "POST",
            format!("/v1/organisations/{org}/clients/{client}/under-13-report"),
            json!({}),
        ),
        (
            "addMember",
            "POST",
            format!("/v1/organisations/{org}/members"),
            json!({ "name": "Someone New", "email": "someone@example.com", "role": "staff" }),
        ),
        (
            "listMembers",
            "GET",
            format!("/v1/organisations/{org}/members"),
            json!({}),
        ),
        (
            "removeMemberRole",
            "DELETE",
            format!("/v1/organisations/{org}/members/{client}/roles/client"),
            json!({}),
        ),
        (
            "disableAccount",
            "PUT",
            format!("/v1/organisations/{org}/members/{client}/disablement"),
            json!({}),
        ),
        (
            "enableAccount",
            "DELETE",
            format!("/v1/organisations/{org}/members/{client}/disablement"),
            json!({}),
        ),
    ]
}

async fn call_with(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("answers")
}

both_databases!(async fn practice_people_operations_refuse_the_wrong_role_and_the_wrong_practice(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let org = app.organisation_of(&admin).await;
    let client = app.signed_in_member(&admin, "client@example.com", "client").await;
    let staff = app.signed_in_member(&admin, "staff@example.com", "staff").await;
    let other_admin = app.signed_in_provider("other@example.com").await;
    let requests = practice_requests(&org, &client.user_id);
    let covered: BTreeSet<&str> = requests.iter().map(|(id, ..)| *id).collect();
    assert_eq!(covered, PRACTICE_PEOPLE.iter().copied().collect::<BTreeSet<_>>());
    for (id, method, path, body) in &requests {
        // Wrong role, own practice: 403 (staff and a client hold none of the roles).
        for caller in [&staff.token, &client.token] {
            let resp = call_with(&app, method, path, caller, body).await;
            assert_eq!(resp.status(), 403, "{id} ({method} {path}) by a wrong role");
        }
        // Wrong practice, even as its org_admin: 404, as for a practice that does not exist.
        let resp = call_with(&app, method, path, &other_admin, body).await;
        assert_eq!(resp.status(), 404, "{id} ({method} {path}) from another practice");
        let unknown: Value = resp.json().await.expect("a problem");
        let missing = path.replace(&org, &uuid::Uuid::now_v7().to_string());
        let resp = call_with(&app, method, &missing, &admin, body).await;
        assert_eq!(resp.status(), 404, "{id} on a practice that does not exist");
        let nonexistent: Value = resp.json().await.expect("a problem");
        assert_eq!(unknown["detail"], nonexistent["detail"]);
    }
    // Nothing was changed by the refused calls.
    assert_eq!(me_status(&app, &client.token).await, 200);
    assert_eq!(app.count_rows("deletion_flags").await, 0);
    assert_eq!(app.count_rows("guardianships").await, 0);
    app.stop().await;
});

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
        .status()
        .as_u16()
}
both_databases!(async fn credential_changes_refuse_a_session_without_the_accounts_password(app) {
    // A session (stolen, or someone else's at an unlocked screen) without the
    // account's password: every credential change is refused, 403, and nothing is
    // stored (a fresh caller each time, as five failures would lock the account: 429).
    for (n, (id, method, path)) in OWN_CREDENTIALS.into_iter().enumerate() {
        let alice = app.signed_in_provider(&format!("alice{n}@example.com")).await;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let body = json!({
            "password": "not the account's password",
            "current_password": "not the account's password",
            "new_password": "a brand new passphrase",
            "new_email": "carol@example.com",
            "code": "123456",
        });
        let resp = app.client.request(method, app.url(path)).bearer_auth(&alice).json(&body).send().await.expect("answers");
        assert_eq!(resp.status(), 403, "{id}");
    }
    assert_eq!(app.count_rows("mfa_credentials").await, 0);
    assert_eq!(app.count_rows("email_changes").await, 0);
    app.stop().await;
});

both_databases!(async fn another_practices_caller_cannot_see_or_change_its_settings(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let bob = app.signed_in_provider("bob@example.com").await;
    let me: Value = app.client.get(app.url("/v1/me")).bearer_auth(&bob).send().await.expect("answers").json().await.expect("JSON");
    let bobs_practice = me["memberships"][0]["organisation_id"].as_str().expect("id").to_owned();
    let path = format!("/v1/organisations/{bobs_practice}");
    assert_eq!(call(&app, "GET", &path, Some(&alice)).await.status(), 404);
    let resp = app.client.patch(app.url(&path)).bearer_auth(&alice).json(&json!({ "require_mfa": true })).send().await.expect("answers");
    assert_eq!(resp.status(), 404);
    let view: Value = app.client.get(app.url(&path)).bearer_auth(&bob).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(view["require_mfa"], false);
    app.stop().await;
});
