//! The probes, the spec and the docs page, served with no setup.

use serde_json::Value;
use tests::both_databases;

both_databases!(async fn health_answers(app) {
    let resp = app.get("/healthz").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["status"], "ok");
    app.stop().await;
});

both_databases!(async fn readiness_reports_the_database(app) {
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["status"], "ready");
    let expected = match app.backend {
        tests::Backend::Sqlite => "sqlite",
        tests::Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
    app.stop().await;
});

both_databases!(async fn the_spec_is_served_and_matches_the_committed_document(app) {
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), 200);
    let served: Value = resp.json().await.expect("JSON");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json exists"),
    )
    .expect("docs/openapi.json is JSON");
    assert_eq!(served, committed, "run `cargo xtask openapi`");
    assert_eq!(served["openapi"], "3.0.0");
    app.stop().await;
});

both_databases!(async fn swagger_ui_is_served(app) {
    let resp = app.get("/docs").await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("text");
    assert!(html.contains("swagger"), "not the Swagger UI page");
    app.stop().await;
});
