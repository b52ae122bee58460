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
    })
}

/// Creates a client in `org`; returns their id.
async fn create_client(app: &TestApp, token: &str, org: &str, email: &str, born: &str) -> String {
    let resp = post(
        app,
        &format!("/v1/organisations/{org}/clients"),
        Some(token),
        &client_body(email, born),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["account_created"], true);
    body["user_id"].as_str().expect("an id").to_owned()
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
    let missing = problem(post(&app, &clients, Some(&provider), &json!({ "name": "No Birth", "email": "nb@example.com" })).await, 422).await;
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
    assert_eq!(resp.status(), 201);
    let enrolled: Value = resp.json().await.expect("JSON");
    assert_eq!(enrolled["account_created"], false);
    // Only the id and the email typed come back: the rest is Alice's.
    assert!(enrolled.get("name").is_none() && enrolled.get("phone").is_none());
    // No second account, and no activation token for the existing one.
    assert_eq!(app.count_rows("users").await, 2);
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
    assert_eq!(post(&app, &clients, Some(&provider.token), &client_body("new@example.com", "1990-01-01")).await.status(), 201);
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
    assert_eq!(resp.status(), 201);
    let guardian: Value = resp.json().await.expect("JSON");
    assert_eq!(guardian["account_created"], true);
    let guardian_id = guardian["user_id"].as_str().expect("id").to_owned();
    assert_eq!(app.count_rows("guardianships").await, 1);
    // Linked twice: 409.
    problem(post(&app, &guardians, Some(&provider), &json!({ "name": "Pat Parent", "email": "parent@example.com" })).await, 409).await;
    // Now the minor activates, with the token kept from before.
    assert_eq!(activate(&app, &young_token, TEST_PASSWORD).await.status(), 204);
    // The guardian activates their own account and signs in to the practice as a client.
    let guardian_token = app.activation_token(&guardian_id).await;
    assert_eq!(activate(&app, &guardian_token, TEST_PASSWORD).await.status(), 204);
    let resp = sign_in(&app, "parent@example.com", Some(&org)).await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("JSON");
    assert_eq!(session["roles"], json!(["client"]));

    // Only a client of this practice can be given a guardian.
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
    assert_eq!(resp.status(), 201);
    let sam: Value = resp.json().await.expect("JSON");
    assert_eq!(sam["account_created"], true);
    let sam_id = sam["user_id"].as_str().expect("id").to_owned();
    assert!(!app.activation_token(&sam_id).await.is_empty());
    // An existing person just gains the role; twice is 409.
    let resp = post(&app, &members, Some(&admin), &json!({ "name": "O", "email": "outsider@example.com", "role": "auditor" })).await;
    assert_eq!(resp.status(), 201);
    let auditor: Value = resp.json().await.expect("JSON");
    assert_eq!(auditor["account_created"], false);
    let auditor_id = auditor["user_id"].as_str().expect("id").to_owned();
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
    assert_eq!(resp.status(), 201);
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
    let outsider_id: Value = resp.json().await.expect("JSON");
    let outsider_id = outsider_id["user_id"].as_str().expect("id");
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
    assert_eq!(resp.status(), 201);
    let linked: Value = resp.json().await.expect("JSON");
    assert_eq!(linked["account_created"], false);
    let users = app.count_rows("users").await;
    assert_eq!(users, 3, "no account was created for the parent");
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
