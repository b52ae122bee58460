//! What every response carries (request id, security headers) and the one error
//! shape, for failures the router itself produces.

use serde_json::Value;
use tests::both_databases;

fn assert_edge_headers(resp: &reqwest::Response) -> String {
    let h = resp.headers();
    let id = h
        .get("x-request-id")
        .expect("X-Request-Id")
        .to_str()
        .expect("ASCII");
    uuid::Uuid::parse_str(id).expect("the request id is a UUID");
    assert_eq!(h.get("cache-control").expect("Cache-Control"), "no-store");
    assert_eq!(h.get("x-content-type-options").expect("nosniff"), "nosniff");
    id.to_owned()
}

async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let id = assert_edge_headers(&resp);
    assert_eq!(
        resp.headers().get("content-type").expect("a content type"),
        "application/problem+json"
    );
    let body: Value = resp.json().await.expect("a JSON problem");
    for field in ["type", "title", "status", "detail", "request_id"] {
        assert!(body.get(field).is_some(), "problem lacks {field}: {body}");
    }
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], id.as_str(), "body and header ids agree");
    body
}

both_databases!(async fn every_response_has_an_id_and_security_headers(app) {
    let first = assert_edge_headers(&app.get("/healthz").await);
    let second = assert_edge_headers(&app.get("/healthz").await);
    assert_ne!(first, second, "each request gets its own id");
    assert_edge_headers(&app.get("/docs").await);
    app.stop().await;
});

both_databases!(async fn unknown_routes_are_404_problems(app) {
    let body = assert_problem(app.get("/v1/no-such-thing").await, 404).await;
    assert_eq!(body["type"], "urn:custodia:problem:not-found");
    app.stop().await;
});

both_databases!(async fn wrong_methods_are_405_with_allow(app) {
    let resp = app.client.post(app.url("/healthz")).send().await.expect("answers");
    let allow = resp.headers().get("allow").expect("Allow").to_str().expect("ASCII").to_owned();
    assert!(allow.contains("GET"), "Allow: {allow}");
    assert!(!allow.contains("POST"), "Allow: {allow}");
    assert_problem(resp, 405).await;
    app.stop().await;
});

both_databases!(async fn oversized_bodies_are_413_problems(app) {
    let resp = app
        .client
        .post(app.url("/healthz"))
        .header("content-type", "application/json")
        .body(vec![b' '; 65_537])
        .send()
        .await
        .expect("answers");
    assert_problem(resp, 413).await;
    app.stop().await;
});

both_databases!(async fn a_number_or_boolean_for_a_string_field_is_refused_before_any_operation(app) {
    // poem-openapi alone would read `false` as the string "false".
    for body in [serde_json::json!({ "email": false }), serde_json::json!({ "email": 12345 })] {
        let resp = app.client.post(app.url("/v1/email-verification-requests")).json(&body).send().await.expect("answers");
        let problem = assert_problem(resp, 422).await;
        assert_eq!(problem["detail"], "The field `email` must be a string.");
    }
    let token = app.signed_in_provider("typed@example.com").await;
    let resp = app.client.patch(app.url("/v1/me")).bearer_auth(&token)
        .json(&serde_json::json!({ "name": true })).send().await.expect("answers");
    assert_problem(resp, 422).await;
    let me: Value = app.client.get(app.url("/v1/me")).bearer_auth(&token).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(me["user"]["name"], "Test Provider", "nothing changed");
    app.stop().await;
});
