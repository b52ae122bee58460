//! The people of a practice over HTTP, on both databases: client accounts and
//! their activation, the age gate and guardians (O1), members and roles, and
//! disabling an account.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tests::{TEST_PASSWORD, TestApp, both_databases, both_databases_with_clock};

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.expect("answers")
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    send(app, reqwest::Method::POST, path, token, Some(body)).await
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    resp.json().await.expect("a problem")
}

fn client_body(email: &str, born: &str) -> Value {
    json!({
        "name": "Grace Hopper",
        "email": email,
        "phone": "+15555550123",
        "date_of_birth": born,
        "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" },
    })
}

/// The answer to enrolling `email`, the same for a new and an existing account.
async fn notified(resp: reqwest::Response, email: &str) {
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body, json!({ "email": email, "status": "notified" }));
}

/// Creates a client in `org` (a new account); returns their id, as the practice
/// reads it from its member list.
async fn create_client(app: &TestApp, token: &str, org: &str, email: &str, born: &str) -> String {
    let resp = post(
        app,
        &format!("/v1/organisations/{org}/clients"),
        Some(token),
        &client_body(email, born),
    )
    .await;
    notified(resp, &email.to_lowercase()).await;
    app.member_id(token, &email.to_lowercase()).await
}

/// `token`'s pending invitations.
async fn invitations(app: &TestApp, token: &str) -> Vec<Value> {
    let resp = send(
        app,
        reqwest::Method::GET,
        "/v1/me/invitations",
        Some(token),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON");
    body["items"].as_array().expect("items").clone()
}

/// Accepts `token`'s only pending invitation.
async fn accept_only_invitation(app: &TestApp, token: &str) {
    let pending = invitations(app, token).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let id = pending[0]["id"].as_str().expect("id");
    let resp = post(
        app,
        &format!("/v1/me/invitations/{id}/acceptance"),
        Some(token),
        &json!({}),
    )
    .await;
    assert_eq!(resp.status(), 204);
}

/// The ids of the members of `admin`'s practice.
async fn member_ids(app: &TestApp, admin: &str) -> Vec<String> {
    let org = app.organisation_of(admin).await;
    let resp = send(
        app,
        reqwest::Method::GET,
        &format!("/v1/organisations/{org}/members?limit=200"),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.expect("JSON");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["user"]["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn user_id_of(app: &TestApp, token: &str) -> String {
    let body: Value = me(app, token).await.json().await.expect("JSON");
    body["user"]["id"].as_str().expect("id").to_owned()
}

async fn activate(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    post(
        app,
        "/v1/account-activations",
        None,
        &json!({ "token": token, "password": password }),
    )
    .await
}

async fn sign_in(app: &TestApp, email: &str, org: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "email": email, "password": TEST_PASSWORD });
    if let Some(org) = org {
        body["organisation_id"] = json!(org);
    }
    post(app, "/v1/sessions", None, &body).await
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    send(app, reqwest::Method::GET, "/v1/me", Some(token), None).await
}

both_databases!(async fn a_provider_creates_a_client_who_activates_with_a_token(app) {
    let provider = app.signed_in_provider("ada@example.com").await;
    let org = app.organisation_of(&provider).await;
    let client = create_client(&app, &provider, &org, "Grace@Example.com", "1990-12-09").await;
    let token = app.activation_token(&client).await;

    // Not yet: no password, and the account is pending.
    problem(sign_in(&app, "grace@example.com", None).await, 401).await;
    // A weak password is refused by rule and leaves the token unused.
    let weak = problem(activate(&app, &token, "password1234").await, 422).await;
    assert!(weak["detail"].as_str().expect("detail").contains("`password`"));
    assert!(!weak.to_string().contains("password1234"));
    problem(activate(&app, "not-a-token-that-was-issued", TEST_PASSWORD).await, 404).await;
    assert_eq!(activate(&app, &token, TEST_PASSWORD).await.status(), 204);
    problem(activate(&app, &token, TEST_PASSWORD).await, 410).await;

    let resp = sign_in(&app, "grace@example.com", None).await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("JSON");
    assert_eq!(session["roles"], json!(["client"]));
    assert_eq!(session["session"]["organisation_id"], org.as_str());
    let body: Value = me(&app, session["token"].as_str().expect("token")).await.json().await.expect("JSON");
    assert_eq!(body["user"]["status"], "active");
    assert_eq!(body["user"]["email"], "grace@example.com");
    assert_eq!(body["user"]["name"], "Grace Hopper");
    assert_eq!(body["user"]["phone"], "+15555550123");
    assert!(body["user"]["email_verified_at"].is_string(), "the token proved the address");
    // The date of birth is stored sealed, never in clear.
    assert_eq!(app.count_rows("birth_dates").await, 1);

    // The same client again: 409; bad input: 422 naming the field, nothing stored.
    let clients = format!("/v1/organisations/{org}/clients");
    problem(post(&app, &clients, Some(&provider), &client_body("grace@example.com", "1990-12-09")).await, 409).await;
    let users = app.count_rows("users").await;
    let future = problem(post(&app, &clients, Some(&provider), &client_body("kid@example.com", "2999-01-01")).await, 422).await;
    assert_eq!(future["detail"], "`date_of_birth` must not be in the future");
    let old = problem(post(&app, &clients, Some(&provider), &client_body("old@example.com", "1800-01-01")).await, 422).await;
    assert!(old["detail"].as_str().expect("detail").contains("date_of_birth"));
    let unreal = problem(post(&app, &clients, Some(&provider), &client_body("feb@example.com", "2001-02-30")).await, 422).await;
    assert!(unreal["detail"].as_str().expect("detail").contains("date_of_birth"), "{unreal}");
    let missing = problem(post(&app, &clients, Some(&provider), &json!({ "name": "No Birth", "email": "nb@example.com", "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" } })).await, 422).await;
    assert!(missing["detail"].as_str().expect("detail").contains("date_of_birth"));
    assert_eq!(app.count_rows("users").await, users);
    app.stop().await;
});

both_databases!(async fn the_same_person_is_a_provider_in_one_practice_and_a_client_in_another(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let alices_practice = app.organisation_of(&alice).await;
    let bob = app.signed_in_provider("bob@example.com").await;
    let bobs_practice = app.organisation_of(&bob).await;

    let resp = post(&app, &format!("/v1/organisations/{bobs_practice}/clients"), Some(&bob), &client_body("alice@example.com", "1985-05-05")).await;
    // The same answer as for a new account: nothing of Alice's comes back.
    notified(resp, "alice@example.com").await;
    // No second account, and no activation token for the existing one.
    assert_eq!(app.count_rows("users").await, 2);
    // Alice accepts the invitation from her own account.
    let pending = invitations(&app, &alice).await;
    assert_eq!(pending[0]["organisation_id"], bobs_practice.as_str());
    assert_eq!(pending[0]["role"], "client");
    accept_only_invitation(&app, &alice).await;
    assert!(invitations(&app, &alice).await.is_empty());
    // Already a client of Bob's practice: 409.
    problem(post(&app, &format!("/v1/organisations/{bobs_practice}/clients"), Some(&bob), &client_body("alice@example.com", "1985-05-05")).await, 409).await;

    // Alice signs in to each practice with the roles she holds there.
    let resp = sign_in(&app, "alice@example.com", Some(&bobs_practice)).await;
    assert_eq!(resp.status(), 201);
    let as_client: Value = resp.json().await.expect("JSON");
    assert_eq!(as_client["roles"], json!(["client"]));
    let resp = sign_in(&app, "alice@example.com", Some(&alices_practice)).await;
    let as_provider: Value = resp.json().await.expect("JSON");
    assert_eq!(as_provider["roles"], json!(["org_admin", "provider"]));
    let body: Value = me(&app, &alice).await.json().await.expect("JSON");
    let roles: Vec<(String, String)> = body["memberships"].as_array().expect("memberships").iter()
        .map(|m| (m["organisation_id"].as_str().expect("org").to_owned(), m["role"].as_str().expect("role").to_owned()))
        .collect();
    assert!(roles.contains(&(bobs_practice.clone(), "client".to_owned())));
    assert!(roles.contains(&(alices_practice.clone(), "provider".to_owned())));
    // She was told, and it is on her security record.
    let resp = send(&app, reqwest::Method::GET, "/v1/me/security-events", Some(&alice), None).await;
    assert_eq!(resp.status(), 200);
    let events: Value = resp.json().await.expect("JSON");
    assert!(events["items"].as_array().expect("items").iter().any(|e| e["kind"] == "role_granted"));
    // As a client of Bob's practice she cannot create clients there.
    let as_client_token = as_client["token"].as_str().expect("token");
    problem(post(&app, &format!("/v1/organisations/{bobs_practice}/clients"), Some(as_client_token), &client_body("carol@example.com", "1990-01-01")).await, 403).await;
    app.stop().await;
});

both_databases!(async fn only_providers_and_org_admins_create_clients(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let org = app.organisation_of(&admin).await;
    let clients = format!("/v1/organisations/{org}/clients");
    for (email, role) in [
        ("staff@example.com", "staff"),
        ("auditor@example.com", "auditor"),
        ("privacy@example.com", "privacy_officer"),
        ("client@example.com", "client"),
    ] {
        let member = app.signed_in_member(&admin, email, role).await;
        let resp = post(&app, &clients, Some(&member.token), &client_body("new@example.com", "1990-01-01")).await;
        let body = problem(resp, 403).await;
        assert_eq!(body["type"], "urn:custodia:problem:forbidden", "{role}");
    }
    // A provider without org_admin may.
    let provider = app.signed_in_member(&admin, "doc@example.com", "provider").await;
    assert_eq!(post(&app, &clients, Some(&provider.token), &client_body("new@example.com", "1990-01-01")).await.status(), 202);
    app.stop().await;
});

both_databases_with_clock!(async fn activation_tokens_expire_after_a_week(app, clock) at "2026-11-23T12:00:00Z" {
    let provider = app.signed_in_provider("ada@example.com").await;
    let org = app.organisation_of(&provider).await;
    let client = create_client(&app, &provider, &org, "late@example.com", "1990-01-01").await;
    let token = app.activation_token(&client).await;
    clock.advance(TimeDelta::days(7));
    problem(activate(&app, &token, TEST_PASSWORD).await, 410).await;
    app.stop().await;
});

both_databases_with_clock!(async fn a_client_under_13_activates_only_once_a_guardian_is_linked(app, clock) at "2026-11-22T23:59:00Z" {
    let provider = app.signed_in_provider("ada@example.com").await;
    let org = app.organisation_of(&provider).await;
    // Thirteen on 23 November 2026 (UTC), one minute from now.
    let kid = create_client(&app, &provider, &org, "kid@example.com", "2013-11-23").await;
    // Twelve for another year.
    let young = create_client(&app, &provider, &org, "young@example.com", "2014-01-10").await;
    let kid_token = app.activation_token(&kid).await;
    let young_token = app.activation_token(&young).await;

    let refused = problem(activate(&app, &kid_token, TEST_PASSWORD).await, 403).await;
    assert_eq!(refused["type"], "urn:custodia:problem:guardian-required");
    assert_eq!(refused["title"], "A guardian must be linked first");
    // The birthday, in UTC: exactly 13 today is allowed, with the same token.
    clock.advance(TimeDelta::minutes(2));
    assert_eq!(activate(&app, &kid_token, TEST_PASSWORD).await.status(), 204);

    problem(activate(&app, &young_token, TEST_PASSWORD).await, 403).await;
    // A provider links a new guardian; the guardian gets their own token.
    let guardians = format!("/v1/organisations/{org}/clients/{young}/guardians");
    let resp = post(&app, &guardians, Some(&provider), &json!({ "name": "Pat Parent", "email": "parent@example.com", "phone": "+15555550199" })).await;
    notified(resp, "parent@example.com").await;
    let guardian_id = app.member_id(&provider, "parent@example.com").await;
    assert_eq!(app.count_rows("guardianships").await, 1);
    // Now the minor activates, with the token kept from before.
    assert_eq!(activate(&app, &young_token, TEST_PASSWORD).await.status(), 204);
    // The guardian activates their own account and signs in to the practice as a client.
    let guardian_token = app.activation_token(&guardian_id).await;
    assert_eq!(activate(&app, &guardian_token, TEST_PASSWORD).await.status(), 204);
    let resp = sign_in(&app, "parent@example.com", Some(&org)).await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("JSON");
    assert_eq!(session["roles"], json!(["client"]));

    // Only a client homed in this practice can be given a guardian.
    let stranger = uuid::Uuid::now_v7();
    problem(post(&app, &format!("/v1/organisations/{org}/clients/{stranger}/guardians"), Some(&provider), &json!({ "name": "X", "email": "x@example.com" })).await, 404).await;
    app.stop().await;
});

both_databases_with_clock!(async fn a_client_born_on_29_february_turns_13_on_1_march(app, clock) at "2025-02-28T12:00:00Z" {
    let provider = app.signed_in_provider("ada@example.com").await;
    let org = app.organisation_of(&provider).await;
    let leapling = create_client(&app, &provider, &org, "leap@example.com", "2012-02-29").await;
    let token = app.activation_token(&leapling).await;
    problem(activate(&app, &token, TEST_PASSWORD).await, 403).await;
    clock.advance(TimeDelta::hours(12));
    assert_eq!(activate(&app, &token, TEST_PASSWORD).await.status(), 204);
    app.stop().await;
});

both_databases!(async fn a_client_found_to_be_under_13_is_frozen_and_flagged_for_deletion(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let client = app.signed_in_member(&admin, "kid@example.com", "client").await;
    let org = client.organisation_id.clone();
    let report = format!("/v1/organisations/{org}/clients/{}/under-13-report", client.user_id);
    assert_eq!(me(&app, &client.token).await.status(), 200);

    // Staff may not report; a privacy officer may.
    let staff = app.signed_in_member(&admin, "staff@example.com", "staff").await;
    problem(post(&app, &report, Some(&staff.token), &json!({})).await, 403).await;
    let officer = app.signed_in_member(&admin, "privacy@example.com", "privacy_officer").await;
    assert_eq!(post(&app, &report, Some(&officer.token), &json!({})).await.status(), 204);

    // The live session ends at once; sign-in is refused as for a wrong password.
    problem(me(&app, &client.token).await, 401).await;
    let refused = problem(sign_in(&app, "kid@example.com", None).await, 401).await;
    assert_eq!(refused["detail"], "The email or password is wrong.");
    assert_eq!(app.count_rows("deletion_flags").await, 1);
    assert!(app.security_event_kinds(&client.user_id).await.contains(&"account_frozen".to_owned()));
    // The child's erasure waits in the practice's rights queue for the officer.
    let queue: Value = send(&app, reqwest::Method::GET, &format!("/v1/organisations/{org}/rights-requests"), Some(&officer.token), None).await.json().await.expect("JSON");
    let items = queue["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{queue}");
    assert_eq!(items[0]["kind"], "erasure");
    assert_eq!(items[0]["status"], "awaiting_verification");
    // Reported again: 409; an admin cannot enable it back.
    problem(post(&app, &report, Some(&admin), &json!({})).await, 409).await;
    let members: Value = send(&app, reqwest::Method::GET, &format!("/v1/organisations/{org}/members"), Some(&admin), None).await.json().await.expect("JSON");
    let frozen = members["items"].as_array().expect("items").iter().find(|m| m["user"]["id"] == client.user_id.as_str()).expect("listed");
    assert_eq!(frozen["user"]["status"], "frozen");
    problem(send(&app, reqwest::Method::DELETE, &format!("/v1/organisations/{org}/members/{}/disablement", client.user_id), Some(&admin), None).await, 409).await;
    problem(sign_in(&app, "kid@example.com", None).await, 401).await;
    // A non-client (here, the staff member) cannot be reported as a client.
    problem(post(&app, &format!("/v1/organisations/{org}/clients/{}/under-13-report", staff.user_id), Some(&admin), &json!({})).await, 404).await;
    app.stop().await;
});

both_databases!(async fn an_org_admin_adds_lists_and_removes_members(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let org = app.organisation_of(&admin).await;
    let members = format!("/v1/organisations/{org}/members");
    let outsider = app.signed_in_provider("outsider@example.com").await;

    // A new person gets an account and an activation token.
    let resp = post(&app, &members, Some(&admin), &json!({ "name": "Sam Staff", "email": "sam@example.com", "role": "staff" })).await;
    notified(resp, "sam@example.com").await;
    let sam_id = app.member_id(&admin, "sam@example.com").await;
    assert!(!app.activation_token(&sam_id).await.is_empty());
    // An existing person is invited, the same answer; they hold the role once
    // they accept; then adding them again is 409.
    let resp = post(&app, &members, Some(&admin), &json!({ "name": "O", "email": "outsider@example.com", "role": "auditor" })).await;
    notified(resp, "outsider@example.com").await;
    accept_only_invitation(&app, &outsider).await;
    let auditor_id = user_id_of(&app, &outsider).await;
    problem(post(&app, &members, Some(&admin), &json!({ "name": "O", "email": "outsider@example.com", "role": "auditor" })).await, 409).await;
    // Clients go through createClient.
    problem(post(&app, &members, Some(&admin), &json!({ "name": "C", "email": "c@example.com", "role": "client" })).await, 422).await;
    let doc = app.signed_in_member(&admin, "doc@example.com", "provider").await;

    // Listed by account id, decrypted, two per page.
    let page1: Value = send(&app, reqwest::Method::GET, &format!("{members}?limit=2"), Some(&admin), None).await.json().await.expect("JSON");
    assert_eq!(page1["items"].as_array().expect("items").len(), 2);
    let cursor = page1["next_cursor"].as_str().expect("a next page").to_owned();
    let page2: Value = send(&app, reqwest::Method::GET, &format!("{members}?limit=2&cursor={cursor}"), Some(&admin), None).await.json().await.expect("JSON");
    assert_eq!(page2["items"].as_array().expect("items").len(), 2);
    assert!(page2.get("next_cursor").is_none(), "four members: the last page");
    let listed: Vec<Value> = page1["items"].as_array().expect("items").iter().chain(page2["items"].as_array().expect("items")).cloned().collect();
    let ids: Vec<&str> = listed.iter().map(|m| m["user"]["id"].as_str().expect("id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "stable order by time-ordered id");
    let owner = listed.iter().find(|m| m["user"]["email"] == "owner@example.com").expect("the owner");
    assert_eq!(owner["roles"], json!(["org_admin", "provider"]));
    assert_eq!(owner["user"]["name"], "Test Provider");
    let outsider_row = listed.iter().find(|m| m["user"]["id"] == auditor_id.as_str()).expect("the auditor");
    assert_eq!(outsider_row["roles"], json!(["auditor"]), "only the roles held here");
    assert!(listed.iter().any(|m| m["user"]["id"] == sam_id.as_str() && m["roles"] == json!(["staff"])));
    // A cursor is bound to its list.
    let outsiders_org = app.organisation_of(&outsider).await;
    problem(send(&app, reqwest::Method::GET, &format!("/v1/organisations/{outsiders_org}/members?cursor={cursor}"), Some(&outsider), None).await, 400).await;
    problem(send(&app, reqwest::Method::GET, &format!("{members}?cursor=garbage"), Some(&admin), None).await, 400).await;

    // A provider without org_admin manages no one.
    problem(send(&app, reqwest::Method::GET, &members, Some(&doc.token), None).await, 403).await;
    problem(post(&app, &members, Some(&doc.token), &json!({ "name": "X", "email": "x@example.com", "role": "staff" })).await, 403).await;

    // Removing roles: never the last org_admin.
    let me_body: Value = me(&app, &admin).await.json().await.expect("JSON");
    let admin_id = me_body["user"]["id"].as_str().expect("id").to_owned();
    let role_path = |user: &str, role: &str| format!("{members}/{user}/roles/{role}");
    problem(send(&app, reqwest::Method::DELETE, &role_path(&admin_id, "org_admin"), Some(&admin), None).await, 409).await;
    assert_eq!(send(&app, reqwest::Method::DELETE, &role_path(&sam_id, "staff"), Some(&admin), None).await.status(), 204);
    problem(send(&app, reqwest::Method::DELETE, &role_path(&sam_id, "staff"), Some(&admin), None).await, 404).await;
    problem(send(&app, reqwest::Method::DELETE, &role_path(&doc.user_id, "provider"), Some(&doc.token), None).await, 403).await;
    // With a second org_admin, the first may step down.
    let resp = post(&app, &members, Some(&admin), &json!({ "name": "Doc", "email": "doc@example.com", "role": "org_admin" })).await;
    notified(resp, "doc@example.com").await;
    accept_only_invitation(&app, &doc.token).await;
    assert_eq!(send(&app, reqwest::Method::DELETE, &role_path(&admin_id, "org_admin"), Some(&admin), None).await.status(), 204);
    // The owner's session no longer carries org_admin; the new admin's does.
    problem(send(&app, reqwest::Method::GET, &members, Some(&admin), None).await, 403).await;
    let resp = sign_in(&app, "doc@example.com", Some(&org)).await;
    let doc_admin: Value = resp.json().await.expect("JSON");
    let doc_admin = doc_admin["token"].as_str().expect("token");
    problem(send(&app, reqwest::Method::DELETE, &role_path(&doc.user_id, "org_admin"), Some(doc_admin), None).await, 409).await;
    app.stop().await;
});

both_databases!(async fn disabling_an_account_ends_its_sessions_at_once(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let staff = app.signed_in_member(&admin, "staff@example.com", "staff").await;
    let org = staff.organisation_id.clone();
    let disablement = format!("/v1/organisations/{org}/members/{}/disablement", staff.user_id);
    assert_eq!(me(&app, &staff.token).await.status(), 200);
    // Another session of the same person, also live.
    let second: Value = sign_in(&app, "staff@example.com", Some(&org)).await.json().await.expect("JSON");
    let second = second["token"].as_str().expect("token").to_owned();

    // Not by the person themselves, nor by a non-admin.
    problem(send(&app, reqwest::Method::PUT, &disablement, Some(&staff.token), None).await, 403).await;
    assert_eq!(send(&app, reqwest::Method::PUT, &disablement, Some(&admin), None).await.status(), 204);
    // Every live bearer token answers 401 immediately.
    problem(me(&app, &staff.token).await, 401).await;
    problem(me(&app, &second).await, 401).await;
    problem(sign_in(&app, "staff@example.com", None).await, 401).await;
    let kinds = app.security_event_kinds(&staff.user_id).await;
    assert!(kinds.contains(&"account_disabled".to_owned()), "{kinds:?}");
    // Enabled again: sign-in works; the ended sessions stay ended.
    assert_eq!(send(&app, reqwest::Method::DELETE, &disablement, Some(&admin), None).await.status(), 204);
    problem(send(&app, reqwest::Method::DELETE, &disablement, Some(&admin), None).await, 409).await;
    problem(me(&app, &staff.token).await, 401).await;
    let resp = sign_in(&app, "staff@example.com", Some(&org)).await;
    assert_eq!(resp.status(), 201);
    let fresh: Value = resp.json().await.expect("JSON");
    assert_eq!(me(&app, fresh["token"].as_str().expect("token")).await.status(), 200);

    // An admin cannot disable themselves, nor an account homed in another practice
    // (even one that is a member here).
    let me_body: Value = me(&app, &admin).await.json().await.expect("JSON");
    let admin_id = me_body["user"]["id"].as_str().expect("id");
    problem(send(&app, reqwest::Method::PUT, &format!("/v1/organisations/{org}/members/{admin_id}/disablement"), Some(&admin), None).await, 409).await;
    let outsider = app.signed_in_provider("outsider@example.com").await;
    let resp = post(&app, &format!("/v1/organisations/{org}/members"), Some(&admin), &json!({ "name": "O", "email": "outsider@example.com", "role": "staff" })).await;
    notified(resp, "outsider@example.com").await;
    accept_only_invitation(&app, &outsider).await;
    let outsider_id = &user_id_of(&app, &outsider).await;
    problem(send(&app, reqwest::Method::PUT, &format!("/v1/organisations/{org}/members/{outsider_id}/disablement"), Some(&admin), None).await, 404).await;
    assert_eq!(me(&app, &outsider).await.status(), 200);
    app.stop().await;
});

both_databases_with_clock!(async fn an_existing_account_can_be_linked_as_a_guardian(app, _clock) at "2026-11-23T12:00:00Z" {
    let provider = app.signed_in_provider("ada@example.com").await;
    let org = app.organisation_of(&provider).await;
    // A parent who already has an account, as a provider of another practice.
    let parent = app.signed_in_provider("parent@example.com").await;
    let child = create_client(&app, &provider, &org, "child@example.com", "2020-01-01").await;
    let token = app.activation_token(&child).await;
    problem(activate(&app, &token, TEST_PASSWORD).await, 403).await;

    let guardians = format!("/v1/organisations/{org}/clients/{child}/guardians");
    // A client cannot be their own guardian.
    problem(post(&app, &guardians, Some(&provider), &json!({ "name": "Self", "email": "child@example.com" })).await, 409).await;
    let resp = post(&app, &guardians, Some(&provider), &json!({ "name": "Pat Parent", "email": "parent@example.com" })).await;
    notified(resp, "parent@example.com").await;
    let users = app.count_rows("users").await;
    assert_eq!(users, 3, "no account was created for the parent");
    // Nothing is linked until the parent accepts.
    assert_eq!(app.count_rows("guardianships").await, 0);
    problem(activate(&app, &token, TEST_PASSWORD).await, 403).await;
    let pending = invitations(&app, &parent).await;
    assert_eq!(pending[0]["guardian_of"], child.as_str());
    accept_only_invitation(&app, &parent).await;
    assert_eq!(app.count_rows("guardianships").await, 1);
    assert_eq!(activate(&app, &token, TEST_PASSWORD).await.status(), 204);
    // The parent signs in to this practice as a client, and keeps their own practice.
    let resp = sign_in(&app, "parent@example.com", Some(&org)).await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("JSON");
    assert_eq!(session["roles"], json!(["client"]));
    assert_eq!(me(&app, &parent).await.status(), 200);
    let resp = send(&app, reqwest::Method::GET, "/v1/me/security-events", Some(&parent), None).await;
    let events: Value = resp.json().await.expect("JSON");
    assert!(events["items"].as_array().expect("items").iter().any(|e| e["kind"] == "role_granted"));
    assert!(app.security_event_kinds(&child).await.contains(&"guardian_linked".to_owned()));
    app.stop().await;
});

both_databases!(async fn a_practice_cannot_take_hold_of_an_existing_account_by_email(app) {
    let victim = app.signed_in_provider("victim@example.com").await;
    let victims_practice = app.organisation_of(&victim).await;
    let victim_id = user_id_of(&app, &victim).await;
    let mallory = app.signed_in_provider("mallory@example.com").await;
    let org = app.organisation_of(&mallory).await;
    let births = app.count_rows("birth_dates").await;

    // Adding the victim as a member or a client answers exactly as for a new email.
    let members = format!("/v1/organisations/{org}/members");
    let clients = format!("/v1/organisations/{org}/clients");
    notified(post(&app, &members, Some(&mallory), &json!({ "name": "V", "email": "victim@example.com", "role": "staff" })).await, "victim@example.com").await;
    notified(post(&app, &members, Some(&mallory), &json!({ "name": "N", "email": "newcomer@example.com", "role": "staff" })).await, "newcomer@example.com").await;
    notified(post(&app, &clients, Some(&mallory), &client_body("victim@example.com", "2020-01-01")).await, "victim@example.com").await;

    // Nothing changed on the victim's account: no role, no date of birth, not listed.
    assert!(!member_ids(&app, &mallory).await.contains(&victim_id));
    assert_eq!(app.count_rows("birth_dates").await, births);
    let body: Value = me(&app, &victim).await.json().await.expect("JSON");
    assert_eq!(body["memberships"].as_array().expect("memberships").len(), 2, "{body}");
    problem(sign_in(&app, "victim@example.com", Some(&org)).await, 403).await;
    // The practice cannot freeze them, link a guardian to them, or disable them.
    problem(post(&app, &format!("{clients}/{victim_id}/under-13-report"), Some(&mallory), &json!({})).await, 404).await;
    problem(post(&app, &format!("{clients}/{victim_id}/guardians"), Some(&mallory), &json!({ "name": "G", "email": "g@example.com" })).await, 404).await;
    assert_eq!(me(&app, &victim).await.status(), 200);
    assert_eq!(app.count_rows("deletion_flags").await, 0);

    // The victim sees two invitations; nobody else can accept them.
    let pending = invitations(&app, &victim).await;
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(pending.iter().all(|i| i["organisation_id"] == org.as_str()));
    let staff_invitation = pending.iter().find(|i| i["role"] == "staff").expect("staff")["id"].as_str().expect("id").to_owned();
    assert!(invitations(&app, &mallory).await.is_empty());
    problem(post(&app, &format!("/v1/me/invitations/{staff_invitation}/acceptance"), Some(&mallory), &json!({})).await, 404).await;
    problem(post(&app, &format!("/v1/me/invitations/{}/acceptance", uuid::Uuid::now_v7()), Some(&victim), &json!({})).await, 404).await;
    assert!(!member_ids(&app, &mallory).await.contains(&victim_id));

    // Accepted, the role is theirs (once); the client invitation stays pending.
    assert_eq!(post(&app, &format!("/v1/me/invitations/{staff_invitation}/acceptance"), Some(&victim), &json!({})).await.status(), 204);
    problem(post(&app, &format!("/v1/me/invitations/{staff_invitation}/acceptance"), Some(&victim), &json!({})).await, 404).await;
    assert!(member_ids(&app, &mallory).await.contains(&victim_id));
    let left = invitations(&app, &victim).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["role"], "client");
    let resp = sign_in(&app, "victim@example.com", Some(&org)).await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("JSON");
    assert_eq!(session["roles"], json!(["staff"]));
    assert!(app.security_event_kinds(&victim_id).await.contains(&"role_granted".to_owned()));
    // Their invitations are in their own export, as identity data.
    let resp = send(&app, reqwest::Method::GET, "/v1/me/account-data", Some(&victim), None).await;
    assert_eq!(resp.status(), 200);
    let export: Value = resp.json().await.expect("JSON");
    let invited: Vec<&Value> = export["records"].as_array().expect("records").iter().filter(|r| r["kind"] == "invitation").collect();
    assert_eq!(invited.len(), 2, "{export}");
    assert!(invited.iter().all(|r| r["category"] == "identity"), "{invited:?}");
    // Their home practice stays theirs: still no one else can disable them.
    problem(send(&app, reqwest::Method::PUT, &format!("{members}/{victim_id}/disablement"), Some(&mallory), None).await, 404).await;
    assert_eq!(app.organisation_of(&victim).await, victims_practice);
    app.stop().await;
});

both_databases!(async fn only_the_home_practice_reports_a_client_as_under_13(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let alice_id = user_id_of(&app, &alice).await;
    let bob = app.signed_in_provider("bob@example.com").await;
    let bobs_practice = app.organisation_of(&bob).await;
    // Alice accepts to be a client of Bob's practice: a client there, homed elsewhere.
    notified(post(&app, &format!("/v1/organisations/{bobs_practice}/clients"), Some(&bob), &client_body("alice@example.com", "1985-05-05")).await, "alice@example.com").await;
    accept_only_invitation(&app, &alice).await;
    assert!(member_ids(&app, &bob).await.contains(&alice_id));

    // Bob's practice cannot freeze her: 404, and nothing changes.
    let report = format!("/v1/organisations/{bobs_practice}/clients/{alice_id}/under-13-report");
    problem(post(&app, &report, Some(&bob), &json!({})).await, 404).await;
    assert_eq!(app.count_rows("deletion_flags").await, 0);
    assert_eq!(me(&app, &alice).await.status(), 200);
    assert_eq!(sign_in(&app, "alice@example.com", None).await.status(), 201);
    // Nor link a guardian to her.
    problem(post(&app, &format!("/v1/organisations/{bobs_practice}/clients/{alice_id}/guardians"), Some(&bob), &json!({ "name": "G", "email": "g@example.com" })).await, 404).await;
    assert_eq!(app.count_rows("guardianships").await, 0);
    app.stop().await;
});

both_databases_with_clock!(async fn a_guardian_counts_only_when_linked_by_the_minors_home_practice(app, _clock) at "2026-11-23T12:00:00Z" {
    let provider = app.signed_in_provider("ada@example.com").await;
    let org = app.organisation_of(&provider).await;
    let child = create_client(&app, &provider, &org, "child@example.com", "2020-01-01").await;
    let token = app.activation_token(&child).await;
    // A stranger's practice enrols the child by email and links a guardian.
    let stranger = app.signed_in_provider("stranger@example.com").await;
    let strangers = app.organisation_of(&stranger).await;
    notified(post(&app, &format!("/v1/organisations/{strangers}/clients"), Some(&stranger), &client_body("child@example.com", "2000-01-01")).await, "child@example.com").await;
    problem(post(&app, &format!("/v1/organisations/{strangers}/clients/{child}/guardians"), Some(&stranger), &json!({ "name": "Fake", "email": "fake@example.com" })).await, 404).await;
    // No guardianship, no new account, and the age gate holds.
    assert_eq!(app.count_rows("guardianships").await, 0);
    assert_eq!(app.count_rows("users").await, 3);
    let refused = problem(activate(&app, &token, TEST_PASSWORD).await, 403).await;
    assert_eq!(refused["type"], "urn:custodia:problem:guardian-required");
    app.stop().await;
});

both_databases!(async fn disabling_needs_an_active_account_and_enabling_never_undoes_a_deletion_request(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let org = app.organisation_of(&admin).await;
    let disablement = |user: &str| format!("/v1/organisations/{org}/members/{user}/disablement");
    // A pending account (never activated; perhaps a child awaiting a guardian).
    let pending = create_client(&app, &admin, &org, "kid@example.com", "2020-01-01").await;
    problem(send(&app, reqwest::Method::PUT, &disablement(&pending), Some(&admin), None).await, 409).await;
    problem(send(&app, reqwest::Method::DELETE, &disablement(&pending), Some(&admin), None).await, 409).await;
    let refused = problem(activate(&app, &app.activation_token(&pending).await, TEST_PASSWORD).await, 403).await;
    assert_eq!(refused["type"], "urn:custodia:problem:guardian-required", "still pending");

    // Disabled twice: 409 the second time.
    let staff = app.signed_in_member(&admin, "staff@example.com", "staff").await;
    assert_eq!(send(&app, reqwest::Method::PUT, &disablement(&staff.user_id), Some(&admin), None).await.status(), 204);
    problem(send(&app, reqwest::Method::PUT, &disablement(&staff.user_id), Some(&admin), None).await, 409).await;

    // A person who asked for their account's deletion is not enabled again.
    let client = app.signed_in_member(&admin, "client@example.com", "client").await;
    let resp = post(&app, "/v1/me/deletion-requests", Some(&client.token), &json!({ "password": TEST_PASSWORD })).await;
    assert_eq!(resp.status(), 202);
    problem(send(&app, reqwest::Method::DELETE, &disablement(&client.user_id), Some(&admin), None).await, 409).await;
    problem(sign_in(&app, "client@example.com", None).await, 401).await;
    app.stop().await;
});
