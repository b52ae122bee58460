//! Identity over HTTP: sign-up with a practice, email verification, sign-in,
//! lockout, sessions and the caller's own account, on both databases.

use serde_json::{Value, json};
use tests::{TestApp, both_databases};

const PASSWORD: &str = "correct horse battery staple";

fn sign_up_body(email: &str) -> Value {
    json!({
        "name": "Ada Lovelace",
        "email": email,
        "profession": "Physiotherapist",
        "organisation_name": "Analytical Physio",
        "phone": "+442079460958",
        "password": PASSWORD,
        "region": "eu",
    })
}

async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("answers")
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
}

/// Signs up, verifies and signs in; returns (user id, bearer token).
async fn signed_in_provider(app: &TestApp, email: &str) -> (String, String) {
    let resp = post(app, "/v1/practices", &sign_up_body(email)).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.expect("JSON");
    let user_id = body["user"]["id"].as_str().expect("an id").to_owned();
    let token = app.verification_token(&user_id).await;
    let resp = post(app, "/v1/email-verifications", &json!({ "token": token })).await;
    assert_eq!(resp.status(), 204);
    let resp = post(
        app,
        "/v1/sessions",
        &json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.expect("JSON");
    (user_id, body["token"].as_str().expect("a token").to_owned())
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    resp.json().await.expect("a problem")
}

both_databases!(async fn a_provider_signs_up_verifies_signs_in_and_sees_themselves(app) {
    let resp = post(&app, "/v1/practices", &sign_up_body("Ada@Example.com")).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["user"]["status"], "pending_verification");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["organisation"]["region"], "eu");
    assert_eq!(body["organisation"]["marketing_mode"], "opt_in");
    let user_id = body["user"]["id"].as_str().expect("id").to_owned();

    // Not before the email is verified.
    let early = post(&app, "/v1/sessions", &json!({ "email": "ada@example.com", "password": PASSWORD })).await;
    problem(early, 403).await;

    let token = app.verification_token(&user_id).await;
    assert_eq!(post(&app, "/v1/email-verifications", &json!({ "token": token })).await.status(), 204);
    problem(post(&app, "/v1/email-verifications", &json!({ "token": token })).await, 410).await;

    let resp = post(&app, "/v1/sessions", &json!({ "email": "ADA@example.com", "password": PASSWORD })).await;
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("JSON");
    let bearer = session["token"].as_str().expect("token");
    assert!(bearer.len() >= 43, "at least 256 bits, base64url");
    let roles = session["roles"].as_array().expect("roles");
    assert!(roles.contains(&json!("org_admin")) && roles.contains(&json!("provider")));

    let me: Value = get_with(&app, "/v1/me", bearer).await.json().await.expect("JSON");
    assert_eq!(me["user"]["id"], user_id.as_str());
    assert_eq!(me["user"]["status"], "active");
    assert_eq!(me["user"]["name"], "Ada Lovelace");
    assert_eq!(me["memberships"].as_array().expect("list").len(), 2);
    app.stop().await;
});

both_databases!(async fn protected_operations_need_a_valid_session(app) {
    problem(app.get("/v1/me").await, 401).await;
    problem(get_with(&app, "/v1/me", "not-a-real-token").await, 401).await;
    problem(app.get("/v1/sessions").await, 401).await;
    app.stop().await;
});

both_databases!(async fn a_duplicate_email_is_409_and_changes_nothing(app) {
    assert_eq!(post(&app, "/v1/practices", &sign_up_body("dup@example.com")).await.status(), 201);
    let mut second = sign_up_body("DUP@example.com");
    second["organisation_name"] = json!("Another Practice");
    problem(post(&app, "/v1/practices", &second).await, 409).await;
    assert_eq!(app.count_rows("organisations").await, 1);
    assert_eq!(app.count_rows("users").await, 1);
    app.stop().await;
});

both_databases!(async fn bad_input_is_422_naming_the_rule_and_stores_nothing(app) {
    let cases = [
        ("password", json!("short"), "must be at least 12 characters"),
        ("password", json!("password1234"), "is too common"),
        ("email", json!("not-an-email"), "`email` does not have the documented format"),
        ("phone", json!("0207 946 0958"), "`phone` does not have the documented format"),
        ("region", json!("mars"), "`region` must be one of"),
    ];
    for (field, value, rule) in cases {
        let mut body = sign_up_body("rules@example.com");
        body[field] = value;
        let p = problem(post(&app, "/v1/practices", &body).await, 422).await;
        assert!(p["detail"].as_str().expect("detail").contains(rule), "{field}: {p}");
    }
    let mut body = sign_up_body("long@example.com");
    body["name"] = json!("n".repeat(201));
    problem(post(&app, "/v1/practices", &body).await, 422).await;
    assert_eq!(app.count_rows("users").await, 0);
    app.stop().await;
});

both_databases!(async fn repeated_failures_lock_the_account_with_retry_after(app) {
    let (_, _) = signed_in_provider(&app, "lock@example.com").await;
    let wrong = json!({ "email": "lock@example.com", "password": "wrong password here" });
    for _ in 0..4 {
        problem(post(&app, "/v1/sessions", &wrong).await, 401).await;
    }
    let locked = post(&app, "/v1/sessions", &wrong).await;
    let retry: u64 = locked.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry > 0 && retry <= 15 * 60);
    problem(locked, 429).await;
    // Even the right password is refused while locked.
    let right = json!({ "email": "lock@example.com", "password": PASSWORD });
    problem(post(&app, "/v1/sessions", &right).await, 429).await;
    app.stop().await;
});

both_databases!(async fn unknown_accounts_and_wrong_passwords_look_the_same(app) {
    let (_, _) = signed_in_provider(&app, "same@example.com").await;
    let a = problem(post(&app, "/v1/sessions", &json!({ "email": "nobody@example.com", "password": PASSWORD })).await, 401).await;
    let b = problem(post(&app, "/v1/sessions", &json!({ "email": "same@example.com", "password": "wrong password here" })).await, 401).await;
    assert_eq!(a["detail"], b["detail"]);
    assert_eq!(a["type"], b["type"]);
    app.stop().await;
});

both_databases!(async fn sessions_are_listed_and_revoked(app) {
    let (_, first) = signed_in_provider(&app, "sess@example.com").await;
    let resp = post(&app, "/v1/sessions", &json!({ "email": "sess@example.com", "password": PASSWORD })).await;
    let second: Value = resp.json().await.expect("JSON");
    let second_token = second["token"].as_str().expect("token").to_owned();
    let second_id = second["session"]["id"].as_str().expect("id").to_owned();

    let page: Value = get_with(&app, "/v1/sessions", &first).await.json().await.expect("JSON");
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    assert!(page.get("next_cursor").is_none(), "absent on the last page");
    assert!(!page.to_string().contains(&second_token), "tokens are never listed");

    let resp = app.client.delete(app.url(&format!("/v1/sessions/{second_id}"))).bearer_auth(&first).send().await.expect("answers");
    assert_eq!(resp.status(), 204);
    problem(get_with(&app, "/v1/me", &second_token).await, 401).await;
    assert_eq!(get_with(&app, "/v1/me", &first).await.status(), 200);
    // Revoking it again, or an id that is not the caller's, is 404.
    let resp = app.client.delete(app.url(&format!("/v1/sessions/{second_id}"))).bearer_auth(&first).send().await.expect("answers");
    problem(resp, 404).await;

    let resp = app.client.delete(app.url("/v1/sessions")).bearer_auth(&first).send().await.expect("answers");
    assert_eq!(resp.status(), 204);
    problem(get_with(&app, "/v1/me", &first).await, 401).await;
    app.stop().await;
});

both_databases!(async fn security_events_record_sign_ins_and_failures(app) {
    let (_, token) = signed_in_provider(&app, "events@example.com").await;
    problem(post(&app, "/v1/sessions", &json!({ "email": "events@example.com", "password": "wrong password here" })).await, 401).await;
    let page: Value = get_with(&app, "/v1/me/security-events", &token).await.json().await.expect("JSON");
    let kinds: Vec<&str> = page["items"].as_array().expect("items").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"sign_in_failed"), "{kinds:?}");
    for kind in ["sign_in_succeeded", "email_verified", "account_created"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let first = &page["items"][0];
    assert_eq!(first["client_address"], "127.0.0.1");
    app.stop().await;
});

both_databases!(async fn verification_tokens_that_do_not_exist_are_404(app) {
    problem(post(&app, "/v1/email-verifications", &json!({ "token": "x".repeat(43) })).await, 404).await;
    app.stop().await;
});
