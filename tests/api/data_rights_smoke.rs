//! Data rights end to end, on the real server: a client asks for their data and
//! downloads it; a request the edge cannot parse is refused naming the field.

use std::io::Read as _;

use serde_json::{Value, json};
use tests::both_databases;

both_databases!(async fn a_client_files_an_access_request_and_downloads_the_archive(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let client = app.signed_in_member(&admin, "client@example.com", "client").await;
    let org = app.organisation_of(&admin).await;
    // Something in the chart, so the export has health data to carry.
    let condition = json!({"kind": "condition", "text": "Back pain", "status": "active"});
    let (status, _) = app.call(reqwest::Method::POST, &format!("/v1/organisations/{org}/clients/{}/records", client.user_id), Some(&admin), Some(&condition)).await;
    assert_eq!(status, 201);

    let access = json!({ "kind": "access", "regime": "gdpr" });
    let (status, filed) = app.call(reqwest::Method::POST, "/v1/rights-requests", Some(&client.token), Some(&access)).await;
    assert_eq!(status, 201, "{filed}");
    assert_eq!(filed["kind"], "access");
    assert_eq!(filed["regime"], "gdpr");
    assert_eq!(filed["status"], "completed", "{filed}");
    assert_eq!(filed["requester"]["kind"], "subject");
    assert_eq!(filed["requester"]["user_id"], client.user_id.as_str());
    assert_eq!(filed["organisation_id"], org.as_str());
    assert_eq!(filed["result"]["kind"], "archive");
    let statuses: Vec<&str> = filed["history"].as_array().expect("a history").iter()
        .map(|h| h["status"].as_str().expect("a status")).collect();
    assert_eq!(statuses.first(), Some(&"received"));
    assert_eq!(statuses.last(), Some(&"completed"));
    assert!(filed["statements"]["right_to_complain"].as_str().expect("a statement").contains("complaint"));
    assert!(!filed["statements"]["processing"].as_array().expect("activities").is_empty());
    let id = filed["id"].as_str().expect("an id").to_owned();
    let sha256 = filed["result"]["sha256"].as_str().expect("a digest").to_owned();

    // The same request again, while it is open, would be the same one; this one
    // is completed, so a second access request is a new one.
    let (status, again) = app.call(reqwest::Method::POST, "/v1/rights-requests", Some(&client.token), Some(&access)).await;
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["id"], filed["id"]);

    // Listed and read back by the client.
    let (status, mine) = app.call(reqwest::Method::GET, "/v1/rights-requests", Some(&client.token), None).await;
    assert_eq!(status, 200);
    assert!(mine["items"].as_array().expect("items").iter().any(|r| r["id"] == filed["id"]));
    let (status, one) = app.call(reqwest::Method::GET, &format!("/v1/rights-requests/{id}"), Some(&client.token), None).await;
    assert_eq!((status, &one["id"]), (200, &filed["id"]));

    // The download: a ZIP whose SHA-256 is the one announced.
    let resp = app.client.get(app.url(&format!("/v1/rights-requests/{id}/archive")))
        .bearer_auth(&client.token).send().await.expect("answers");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    assert_eq!(resp.headers()["x-content-sha256"].to_str().expect("ascii"), sha256);
    let bytes = resp.bytes().await.expect("the archive").to_vec();
    assert_eq!(server::rights::sha256_hex(&bytes), sha256);
    assert_eq!(filed["result"]["bytes"], bytes.len());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    let names: Vec<String> = archive.file_names().map(|n| n.expect("a UTF-8 name").into_owned()).collect();
    for expected in ["export.json", "schema.json", "fhir-bundle.json", "consent-history.json", "statements.json"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    let mut export = String::new();
    archive.by_name("export.json").expect("export.json").read_to_string(&mut export).expect("UTF-8");
    let export: Value = serde_json::from_str(&export).expect("JSON");
    assert_eq!(export["schema"], "urn:custodia:rights-export:1");
    assert!(export.to_string().contains("Back pain"), "the chart is exported");
    let mut bundle = String::new();
    archive.by_name("fhir-bundle.json").expect("the bundle").read_to_string(&mut bundle).expect("UTF-8");
    let bundle: Value = serde_json::from_str(&bundle).expect("JSON");
    assert_eq!(bundle["resourceType"], "Bundle");

    // Nobody else downloads it: 404, as for a request that does not exist.
    let staff = app.signed_in_member(&admin, "staff@example.com", "staff").await;
    let resp = app.client.get(app.url(&format!("/v1/rights-requests/{id}/archive")))
        .bearer_auth(&staff.token).send().await.expect("answers");
    assert_eq!(resp.status(), 404);
    let (status, _) = app.call(reqwest::Method::GET, &format!("/v1/rights-requests/{id}"), Some(&staff.token), None).await;
    assert_eq!(status, 404);
    app.stop().await;
});

both_databases!(async fn a_request_the_edge_cannot_parse_is_refused_naming_the_field(app) {
    let admin = app.signed_in_provider("owner@example.com").await;
    let client = app.signed_in_member(&admin, "client@example.com", "client").await;
    for (body, field) in [
        (json!({ "kind": "everything", "regime": "gdpr" }), "`kind`"),
        (json!({ "kind": "access", "regime": "lgpd" }), "`regime`"),
        (json!({ "kind": "access", "regime": "gdpr", "purpose": "analytics" }), "`purpose`"),
        (json!({ "kind": "objection", "regime": "gdpr" }), "`purpose`"),
        (json!({ "kind": "ccpa_know", "regime": "gdpr" }), "`kind`"),
        (json!({ "kind": "access", "regime": "gdpr", "minor_user_id": client.user_id, "authority_id": client.user_id }), "`authority_id`"),
    ] {
        let (status, problem) = app.call(reqwest::Method::POST, "/v1/rights-requests", Some(&client.token), Some(&body)).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["type"], "urn:custodia:problem:validation-failed");
        assert!(problem["detail"].as_str().expect("a detail").contains(field), "{body}: {problem}");
    }
    // Nothing was filed.
    let (status, mine) = app.call(reqwest::Method::GET, "/v1/rights-requests", Some(&client.token), None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["items"], json!([]));
    // The statements are public.
    let (status, statements) = app.call(reqwest::Method::GET, "/v1/privacy-statements", None, None).await;
    assert_eq!(status, 200);
    assert!(statements["controller"]["privacy_officer_email"].is_string());
    app.stop().await;
});
