//! The rights engine over HTTP (issue #8), on SQLite and PostgreSQL: a person's
//! access archive (its files, its digest, its FHIR Bundle validated), duplicates
//! and bad input, erasure with every record's fate, agents and guardians within
//! their authority, the privacy officer's verification, queue and extension,
//! rectification, restriction, objection and withdrawal through consent, the CCPA
//! right to know, the accounting of disclosures, privacy and security cases, and
//! the statements every answer carries.

use std::collections::BTreeMap;
use std::io::Read as _;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Member, TestApp, both_databases, both_databases_with_clock};

struct Practice {
    admin: String,
    organisation: String,
    officer: Member,
    provider: Member,
    client: Member,
    auditor: Member,
}

impl Practice {
    async fn new(app: &TestApp, tag: &str) -> Self {
        let admin = app
            .signed_in_provider(&format!("admin-{tag}@example.com"))
            .await;
        let organisation = app.organisation_of(&admin).await;
        let officer = app
            .signed_in_member(
                &admin,
                &format!("officer-{tag}@example.com"),
                "privacy_officer",
            )
            .await;
        let provider = app
            .signed_in_member(&admin, &format!("provider-{tag}@example.com"), "provider")
            .await;
        let auditor = app
            .signed_in_member(&admin, &format!("auditor-{tag}@example.com"), "auditor")
            .await;
        let client = app
            .signed_in_member(&admin, &format!("client-{tag}@example.com"), "client")
            .await;
        Self {
            admin,
            organisation,
            officer,
            provider,
            client,
            auditor,
        }
    }

    fn client_path(&self, rest: &str) -> String {
        format!(
            "/v1/organisations/{}/clients/{}{rest}",
            self.organisation, self.client.user_id
        )
    }

    fn queue(&self, rest: &str) -> String {
        format!(
            "/v1/organisations/{}/rights-requests{rest}",
            self.organisation
        )
    }

    /// A condition record in the client's chart; returns its id.
    async fn condition(&self, app: &TestApp, text: &str) -> String {
        let (status, body) = post(
            app,
            &self.admin,
            &self.client_path("/records"),
            &json!({"kind": "condition", "text": text, "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("an id").to_owned()
    }

    async fn audit_events(&self, app: &TestApp) -> Vec<Value> {
        let (status, page) = get(
            app,
            &self.auditor.token,
            &format!(
                "/v1/organisations/{}/audit-events?limit=500",
                self.organisation
            ),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().expect("items").clone()
    }
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    app.call(Method::POST, path, Some(token), Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    app.call(Method::GET, path, Some(token), None).await
}

async fn file(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    post(app, token, "/v1/rights-requests", body).await
}

/// Downloads an archive: its bytes, its announced digest, and its files.
async fn download(
    app: &TestApp,
    token: &str,
    id: &str,
) -> (u16, String, BTreeMap<String, Vec<u8>>, Vec<u8>) {
    let resp = app
        .client
        .get(app.url(&format!("/v1/rights-requests/{id}/archive")))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers");
    let status = resp.status().as_u16();
    if status == 200 {
        assert_eq!(resp.headers()["content-type"], "application/zip");
    }
    let digest = resp
        .headers()
        .get("x-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = resp.bytes().await.expect("a body").to_vec();
    let mut files = BTreeMap::new();
    if status == 200 {
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).expect("a ZIP archive");
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).expect("an entry");
            let name = entry.name().expect("a UTF-8 name").into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("readable");
            files.insert(name, content);
        }
    }
    (status, digest, files, bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether an RFC 3339 time in an answer is the instant `expected`.
fn at(value: &Value, expected: &str) -> bool {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339");
    value.as_str().is_some_and(|s| parse(s) == parse(expected))
}

fn json_file(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(
        files
            .get(name)
            .unwrap_or_else(|| panic!("{name} in the archive")),
    )
    .expect("JSON")
}

fn assert_statements(view: &Value) {
    let statements = &view["statements"];
    assert!(
        statements["controller"]["name"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{statements}"
    );
    assert!(
        statements["controller"]["privacy_officer_email"]
            .as_str()
            .is_some_and(|s| s.contains('@'))
    );
    assert!(
        statements["right_to_complain"]
            .as_str()
            .is_some_and(|s| s.contains("supervisory authority"))
    );
    let processing = statements["processing"].as_array().expect("activities");
    assert_eq!(processing.len(), 13, "every purpose");
    for activity in processing {
        let regimes: Vec<&str> = activity["grounds"]
            .as_array()
            .expect("grounds")
            .iter()
            .filter_map(|g| g["regime"].as_str())
            .collect();
        assert_eq!(regimes, ["hipaa", "gdpr", "ccpa"], "{activity}");
    }
    assert!(
        processing.iter().any(|p| p["purpose"] == "research"
            && p["grounds"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["citation"] == "GDPR Art. 6(1)(a)"))),
        "{processing:?}"
    );
}

both_databases!(async fn a_person_gets_an_archive_of_everything_with_its_digest_and_a_valid_fhir_bundle(app) {
    let p = Practice::new(&app, "access").await;
    p.condition(&app, "Chronic low back pain").await;
    // Someone reads the chart, so the access report has a line.
    let (status, _) = get(&app, &p.admin, &p.client_path("/records/condition")).await;
    assert_eq!(status, 200);
    let (status, _) = post(&app, &p.client.token, "/v1/me/consents", &json!({"action": "grant", "purpose": "research"})).await;
    assert_eq!(status, 201);

    let (status, view) = file(&app, &p.client.token, &json!({"kind": "access", "regime": "gdpr"})).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["requester"]["kind"], "subject");
    assert_eq!(view["result"]["kind"], "archive");
    assert_statements(&view);
    let history: Vec<&str> = view["history"].as_array().expect("history").iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["received", "verified", "in_progress", "completed"]);
    let id = view["id"].as_str().expect("an id");

    let (status, digest, files, bytes) = download(&app, &p.client.token, id).await;
    assert_eq!(status, 200);
    assert_eq!(digest, sha256_hex(&bytes), "the header states the archive's digest");
    assert_eq!(view["result"]["sha256"], digest, "the digest stored with the request");
    for name in ["export.json", "schema.json", "fhir-bundle.json", "consent-history.json", "access-report.json", "disclosures.json", "statements.json"] {
        assert!(files.contains_key(name), "{name} in {:?}", files.keys());
    }
    let export = json_file(&files, "export.json");
    assert_eq!(export["schema"], "urn:custodia:rights-export:1");
    let contexts: Vec<&str> = export["contexts"].as_array().expect("contexts").iter().filter_map(|c| c["context"].as_str()).collect();
    for context in ["identity", "clinical", "consent", "billing", "audit"] {
        assert!(contexts.contains(&context), "{context} in {contexts:?}");
    }
    assert!(String::from_utf8_lossy(&files["export.json"]).contains("Chronic low back pain"));
    let consent = json_file(&files, "consent-history.json");
    assert!(consent.as_array().expect("events").iter().any(|e| e["data"]["purpose"] == "research"), "{consent}");
    let access = json_file(&files, "access-report.json");
    assert!(!access.as_array().expect("entries").is_empty(), "the chart read is in the access report");
    let bundle = json_file(&files, "fhir-bundle.json");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let checked = tokio::task::spawn_blocking(move || tests::fhir::validate(&[bundle])).await.expect("the validator ran");
    assert_eq!(checked, Ok(()), "the archive's Bundle is valid FHIR R4");

    // Nobody else downloads it, and the refusal is audited; the download was too.
    let (status, ..) = download(&app, &p.provider.token, id).await;
    assert_eq!(status, 404);
    let (status, ..) = download(&app, &p.officer.token, id).await;
    assert_eq!(status, 404, "the privacy officer works the request, not its content");
    let (status, listed) = get(&app, &p.client.token, "/v1/rights-requests").await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    app.stop().await;
});

both_databases!(async fn bad_input_changes_nothing_and_an_identical_open_request_is_the_first(app) {
    let p = Practice::new(&app, "bad").await;
    for body in [
        json!({"kind": "forget_me", "regime": "gdpr"}),
        json!({"kind": "access", "regime": "pipeda"}),
        json!({"kind": "ccpa_know", "regime": "gdpr"}),
        json!({"kind": "accounting_of_disclosures", "regime": "ccpa"}),
        json!({"kind": "withdrawal", "regime": "gdpr"}),
        json!({"kind": "objection", "regime": "gdpr", "purpose": "not_a_purpose"}),
        json!({"kind": "rectification", "regime": "gdpr", "rectification": {"context": "clinical", "resource_kind": "spaceship", "resource_id": uuid::Uuid::nil(), "field": "text", "value": "x"}}),
    ] {
        let (status, problem) = file(&app, &p.client.token, &body).await;
        assert_eq!(status, 422, "{body} → {problem}");
    }
    assert_eq!(app.count_rows("rights_requests").await, 0, "nothing stored");

    let erasure = json!({"kind": "erasure", "regime": "gdpr"});
    let (status, first) = file(&app, &p.client.token, &erasure).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["status"], "verified", "the person is verified; the officer carries it out");
    let (status, again) = file(&app, &p.client.token, &erasure).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (status, other) = file(&app, &p.client.token, &json!({"kind": "erasure", "regime": "ccpa"})).await;
    assert_eq!(status, 201, "another regime is another request");
    assert_ne!(other["id"], first["id"]);
    assert_eq!(app.count_rows("rights_requests").await, 2);
    // A request nobody may see is not found, like one that does not exist.
    let path = format!("/v1/rights-requests/{}", first["id"].as_str().expect("id"));
    assert_eq!(get(&app, &p.provider.token, &path).await.0, 404);
    assert_eq!(get(&app, &p.client.token, "/v1/rights-requests/00000000-0000-0000-0000-000000000000").await.0, 404);
    app.stop().await;
});

both_databases!(async fn erasure_states_each_records_fate_and_destroys_the_data_key(app) {
    let p = Practice::new(&app, "erase").await;
    p.condition(&app, "Tendinopathy").await;
    let (status, access) = file(&app, &p.client.token, &json!({"kind": "access", "regime": "gdpr"})).await;
    assert_eq!(status, 201);
    let (status, view) = file(&app, &p.client.token, &json!({"kind": "erasure", "regime": "gdpr"})).await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_str().expect("id").to_owned();
    // Only the practice's privacy officer carries it out.
    assert_eq!(post(&app, &p.provider.token, &p.queue(&format!("/{id}/execution")), &json!({})).await.0, 403);
    let (status, done) = post(&app, &p.officer.token, &p.queue(&format!("/{id}/execution")), &json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    assert_statements(&done);
    let outcomes = done["result"]["outcomes"].as_array().expect("outcomes");
    let fate = |kind: &str| outcomes.iter().filter(|o| o["resource_kind"] == kind).map(|o| o["fate"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    assert_eq!(fate("condition"), ["deleted"], "{outcomes:?}");
    assert_eq!(fate("account"), ["anonymised"]);
    assert_eq!(fate("subject_data_key"), ["deleted"]);
    let retained = done["result"]["retained"].as_array().expect("what was kept, and why");
    assert!(!retained.is_empty(), "the audit trail is kept on a legal ground");
    for kept in retained {
        assert!(kept["citation"].as_str().is_some_and(|c| !c.is_empty()), "{kept}");
        assert!(kept["statement"].as_str().is_some_and(|c| !c.is_empty()), "{kept}");
    }
    assert!(outcomes.iter().all(|o| o["fate"] != "retained" || o["ground"]["citation"].is_string()));
    // The person is gone: no sign-in, and their earlier archive is noise.
    let resp = app.client.post(app.url("/v1/sessions"))
        .json(&json!({"email": "client-erase@example.com", "password": tests::TEST_PASSWORD}))
        .send().await.expect("answers");
    assert_eq!(resp.status(), 401);
    use data_rights::ports::RightsRepository as _;
    let repository = store::SeaOrmRightsRepository::new(app.state().database().clone(), app.state().keyring().clone());
    let archive = repository
        .archive(data_rights::ids::RightsRequestId::from_uuid(access["id"].as_str().expect("id").parse().expect("uuid")))
        .await.expect("reads");
    assert_eq!(archive, None, "the data key is destroyed, so the archive cannot be opened");
    // Carrying it out again changes nothing.
    let (status, _) = post(&app, &p.officer.token, &p.queue(&format!("/{id}/execution")), &json!({})).await;
    assert_eq!(status, 409);
    app.stop().await;
});

both_databases!(async fn agents_act_only_within_a_confirmed_unexpired_proof(app) {
    let p = Practice::new(&app, "agent").await;
    let agent = app.signed_in_provider("agent@example.com").await;
    let agent_id = app.member_id(&agent, "agent@example.com").await;
    let (status, appointed) = post(&app, &p.client.token, "/v1/me/authorised-agents", &json!({
        "agent_user_id": agent_id, "document_ref": "POA-2026-118", "scope": ["access"], "expires_at": "2099-01-01T00:00:00Z",
    })).await;
    assert_eq!(status, 201, "{appointed}");
    assert_eq!(appointed["active"], true);
    assert!(appointed["confirmed_at"].is_string(), "appointing while signed in is the person's confirmation");
    let authority = appointed["id"].as_str().expect("id").to_owned();
    let (_, mine) = get(&app, &agent, "/v1/rights-authorities").await;
    assert_eq!(mine["items"][0]["id"], authority.as_str());

    // Inside the scope: filed, then verified by the officer, then carried out.
    let (status, view) = file(&app, &agent, &json!({"kind": "access", "regime": "ccpa", "authority_id": authority})).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["status"], "awaiting_verification");
    assert_eq!(view["requester"]["kind"], "authorised_agent");
    let id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(download(&app, &agent, &id).await.0, 404, "nothing is disclosed before verification");
    let (status, verified) = post(&app, &p.officer.token, &p.queue(&format!("/{id}/verification")), &json!({"outcome": "verified"})).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["status"], "completed");
    let (status, _, files, _) = download(&app, &agent, &id).await;
    assert_eq!(status, 200);
    assert!(files.contains_key("export.json"));

    // Outside the scope, someone else's proof, or an unknown one: not found.
    let (status, _) = file(&app, &agent, &json!({"kind": "erasure", "regime": "ccpa", "authority_id": authority})).await;
    assert_eq!(status, 404);
    let stranger = app.signed_in_provider("stranger@example.com").await;
    assert_eq!(file(&app, &stranger, &json!({"kind": "access", "regime": "ccpa", "authority_id": authority})).await.0, 404);
    assert_eq!(file(&app, &agent, &json!({"kind": "access", "regime": "ccpa", "authority_id": uuid::Uuid::now_v7()})).await.0, 404);

    // Revoked (ended now), the proof has expired: 403, audited.
    let (status, revoked) = app.call(Method::DELETE, &format!("/v1/me/authorised-agents/{authority}"), Some(&p.client.token), None).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["active"], false);
    let (status, problem) = file(&app, &agent, &json!({"kind": "access", "regime": "gdpr", "authority_id": authority})).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "urn:custodia:problem:authority-expired");
    let agent_org = app.organisation_of(&agent).await;
    let auditor = app.signed_in_member(&agent, "agent-auditor@example.com", "auditor").await;
    let (_, page) = get(&app, &auditor.token, &format!("/v1/organisations/{agent_org}/audit-events?limit=500")).await;
    assert!(page["items"].as_array().expect("items").iter().any(|e| e["resource_kind"] == "rights_authority"
        && e["denied_reason"] == "authority_expired"), "{page}");
    app.stop().await;
});

both_databases!(async fn guardians_and_providers_file_and_a_failed_verification_is_a_denial(app) {
    let p = Practice::new(&app, "guard").await;
    let (status, _) = post(&app, &p.admin, &p.client_path("/guardians"), &json!({"name": "Pat Parent", "email": "parent@example.com"})).await;
    assert_eq!(status, 202);
    let parent_id = app.member_id(&p.admin, "parent@example.com").await;
    let token = app.activation_token(&parent_id).await;
    let resp = app.client.post(app.url("/v1/account-activations"))
        .json(&json!({"token": token, "password": tests::TEST_PASSWORD})).send().await.expect("answers");
    assert_eq!(resp.status(), 204);
    let parent = app.sign_in("parent@example.com").await;

    let (status, view) = file(&app, &parent, &json!({"kind": "erasure", "regime": "gdpr", "minor_user_id": p.client.user_id})).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["requester"]["kind"], "guardian");
    assert_eq!(view["status"], "awaiting_verification");
    // Not their ward: not found.
    assert_eq!(file(&app, &parent, &json!({"kind": "access", "regime": "gdpr", "minor_user_id": p.provider.user_id})).await.0, 404);
    assert_eq!(file(&app, &p.provider.token, &json!({"kind": "access", "regime": "gdpr", "minor_user_id": p.client.user_id})).await.0, 404);

    // A provider files for their client; the client follows it too.
    let (status, filed) = post(&app, &p.provider.token, &p.client_path("/rights-requests"), &json!({"kind": "access", "regime": "hipaa"})).await;
    assert_eq!(status, 201, "{filed}");
    assert_eq!(filed["requester"]["kind"], "provider");
    let id = filed["id"].as_str().expect("id").to_owned();
    let (_, mine) = get(&app, &p.client.token, "/v1/rights-requests").await;
    assert!(mine["items"].as_array().expect("items").iter().any(|r| r["id"] == id.as_str()));
    let (status, queue) = get(&app, &p.officer.token, &p.queue("")).await;
    assert_eq!(status, 200);
    assert_eq!(queue["items"].as_array().expect("items").len(), 2);
    assert_eq!(get(&app, &p.provider.token, &p.queue("")).await.0, 403);

    let (status, denied) = post(&app, &p.officer.token, &p.queue(&format!("/{id}/verification")), &json!({"outcome": "failed"})).await;
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["status"], "denied");
    assert_eq!(denied["denial"]["citation"], "45 CFR 164.514(h)");
    assert_statements(&denied);
    let events = p.audit_events(&app).await;
    assert!(events.iter().any(|e| e["resource_kind"] == "rights_request" && e["denied_reason"] == "verification_failed"), "audited");
    // Final: no second verdict.
    assert_eq!(post(&app, &p.officer.token, &p.queue(&format!("/{id}/verification")), &json!({"outcome": "verified"})).await.0, 409);
    app.stop().await;
});

both_databases_with_clock!(async fn the_queue_shows_what_nears_its_due_date_and_an_extension_moves_it(app, clock) at "2027-01-31T09:00:00Z" {
    let p = Practice::new(&app, "queue").await;
    let (status, view) = file(&app, &p.client.token, &json!({"kind": "erasure", "regime": "gdpr"})).await;
    assert_eq!(status, 201);
    assert!(at(&view["due_at"], "2027-02-28T09:00:00Z"), "31 January is due on the last day of February");
    assert!(at(&view["extended_due_at"], "2027-04-30T09:00:00Z"));
    let id = view["id"].as_str().expect("id").to_owned();
    let (_, nearing) = get(&app, &p.officer.token, &p.queue("?nearing=true")).await;
    assert_eq!(nearing["items"].as_array().expect("items").len(), 0);
    clock.advance(chrono::Duration::days(22));
    let officer = app.sign_in("officer-queue@example.com").await;
    let (_, nearing) = get(&app, &officer, &p.queue("?nearing=true")).await;
    let items = nearing["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{nearing}");
    assert_eq!(items[0]["nearing"], true);
    let (status, extended) = post(&app, &officer, &p.queue(&format!("/{id}/extension")), &json!({})).await;
    assert_eq!(status, 200, "{extended}");
    assert_eq!(extended["status"], "extended");
    assert!(at(&extended["due_at"], "2027-04-30T09:00:00Z"));
    let (_, nearing) = get(&app, &officer, &p.queue("?nearing=true")).await;
    assert_eq!(nearing["items"].as_array().expect("items").len(), 0);
    app.stop().await;
});

both_databases!(async fn withdrawal_objection_and_restriction_go_through_consent_and_rectification_through_the_chart(app) {
    let p = Practice::new(&app, "consent").await;
    let record = p.condition(&app, "Tendonitis").await;
    let (status, _) = post(&app, &p.client.token, "/v1/me/consents", &json!({"action": "grant", "purpose": "research"})).await;
    assert_eq!(status, 201);
    let check = |purpose: &'static str, category: &'static str| json!({"purpose": purpose, "category": category});
    let (_, before) = post(&app, &p.admin, &p.client_path("/consent-checks"), &check("research", "health_record")).await;
    assert_eq!(before["allowed"], true, "{before}");
    let (status, view) = file(&app, &p.client.token, &json!({"kind": "withdrawal", "regime": "gdpr", "purpose": "research"})).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["status"], "completed");
    assert_eq!(view["result"]["kind"], "applied");
    let (_, after) = post(&app, &p.admin, &p.client_path("/consent-checks"), &check("research", "health_record")).await;
    assert_eq!(after["allowed"], false, "the next request sees the withdrawal: {after}");
    // Withdrawing again: the ledger has nothing to end; the request waits for the officer.
    let (status, again) = file(&app, &p.client.token, &json!({"kind": "withdrawal", "regime": "gdpr", "purpose": "research"})).await;
    assert_eq!(status, 201);
    assert_eq!(again["status"], "in_progress", "{again}");

    let (status, objection) = file(&app, &p.client.token, &json!({"kind": "objection", "regime": "gdpr", "purpose": "analytics"})).await;
    assert_eq!(status, 201);
    assert_eq!(objection["status"], "completed", "{objection}");
    let (status, restriction) = file(&app, &p.client.token, &json!({"kind": "restriction", "regime": "gdpr", "categories": ["health_record"]})).await;
    assert_eq!(status, 201);
    assert_eq!(restriction["status"], "completed", "{restriction}");
    let (_, history) = get(&app, &p.client.token, "/v1/me/consents/history").await;
    let actions: Vec<String> = history["items"].as_array().expect("events").iter()
        .filter_map(|e| e["event"]["action"].as_str().map(str::to_owned)).collect();
    for action in ["withdraw", "object", "restrict"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }

    // The restriction holds from the next request on: the care team no longer writes.
    let (status, _) = post(&app, &p.admin, &p.client_path("/records"),
        &json!({"kind": "condition", "text": "Another", "status": "active"})).await;
    assert_eq!(status, 403);

    // Rectification: the officer carries it out through the chart, which keeps history.
    let (status, view) = file(&app, &p.client.token, &json!({"kind": "rectification", "regime": "gdpr",
        "rectification": {"context": "clinical", "resource_kind": "condition", "resource_id": record, "field": "text", "value": "Tendinopathy"}})).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["status"], "verified");
    let id = view["id"].as_str().expect("id").to_owned();
    let (status, done) = post(&app, &p.officer.token, &p.queue(&format!("/{id}/execution")), &json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    // The client still reads their own (restricted) chart.
    let (status, corrected) = get(&app, &p.client.token, &p.client_path(&format!("/records/condition/{record}"))).await;
    assert_eq!(status, 200);
    assert_eq!(corrected["content"]["text"], "Tendinopathy", "{corrected}");
    assert_eq!(corrected["version"], 2, "the correction is a new version; the first is kept");
    app.stop().await;
});

both_databases!(async fn ccpa_know_and_the_accounting_of_disclosures_come_as_archives(app) {
    let p = Practice::new(&app, "know").await;
    p.condition(&app, "Plantar fasciitis").await;
    let (status, _) = post(&app, &p.officer.token, &p.client_path("/disclosures"), &json!({
        "recipient": "State registry", "description": "immunisation record", "legal_basis": "45 CFR 164.512(b)",
        "purpose": "legal", "disclosed_at": "2026-01-15T10:00:00Z",
    })).await;
    assert_eq!(status, 201);
    let (status, know) = file(&app, &p.client.token, &json!({"kind": "ccpa_know", "regime": "ccpa"})).await;
    assert_eq!(status, 201, "{know}");
    assert_eq!(know["status"], "completed");
    assert!(know["acknowledge_by"].is_string(), "CCPA acknowledgement deadline");
    let (_, _, files, _) = download(&app, &p.client.token, know["id"].as_str().expect("id")).await;
    let report = json_file(&files, "ccpa-know.json");
    let categories: Vec<&str> = report["report"]["categories"].as_array().expect("categories").iter().filter_map(|c| c["category"].as_str()).collect();
    assert!(categories.contains(&"health_record") && categories.contains(&"identity"), "{categories:?}");
    let health = report["report"]["categories"].as_array().expect("categories").iter().find(|c| c["category"] == "health_record").expect("health");
    for field in ["sources", "purposes", "recipients", "pieces"] {
        assert!(!health[field].as_array().expect(field).is_empty(), "{field}: {health}");
    }
    assert!(files.contains_key("statements.json"));

    let (status, accounting) = file(&app, &p.client.token, &json!({"kind": "accounting_of_disclosures", "regime": "hipaa"})).await;
    assert_eq!(status, 201, "{accounting}");
    let (_, _, files, _) = download(&app, &p.client.token, accounting["id"].as_str().expect("id")).await;
    assert!(String::from_utf8_lossy(&files["disclosures.json"]).contains("State registry"));
    app.stop().await;
});

both_databases!(async fn privacy_questions_and_security_concerns_are_tracked_cases(app) {
    let p = Practice::new(&app, "cases").await;
    let operator = app.operator_session("office@example.com").await;
    let anonymous = app.call(Method::POST, "/v1/privacy-cases", None,
        Some(&json!({"kind": "security_concern", "message": "I think someone reads my messages", "reply_to": "worried@example.org"}))).await;
    assert_eq!(anonymous.0, 201, "{}", anonymous.1);
    assert_eq!(anonymous.1["status"], "open");
    let received = chrono::DateTime::parse_from_rfc3339(anonymous.1["received_at"].as_str().expect("time")).expect("time");
    let due = chrono::DateTime::parse_from_rfc3339(anonymous.1["due_at"].as_str().expect("time")).expect("time");
    assert_eq!(due - received, chrono::Duration::hours(72));
    for bad in [json!({"kind": "security_concern", "message": "help"}), json!({"kind": "complaint", "message": "x", "reply_to": "a@b.c"}), json!({"kind": "privacy_question", "message": "", "reply_to": "a@b.c"})] {
        assert_eq!(app.call(Method::POST, "/v1/privacy-cases", None, Some(&bad)).await.0, 422, "{bad}");
    }
    assert_eq!(app.count_rows("rights_cases").await, 1);
    let (status, question) = post(&app, &p.client.token, "/v1/privacy-cases", &json!({"kind": "privacy_question", "message": "Who can see my notes?"})).await;
    assert_eq!(status, 201);
    let id = question["id"].as_str().expect("id").to_owned();
    assert_eq!(get(&app, &p.client.token, "/v1/operator/privacy-cases").await.0, 403);
    let (status, open) = get(&app, &operator, "/v1/operator/privacy-cases").await;
    assert_eq!(status, 200);
    assert_eq!(open["items"].as_array().expect("items").len(), 2);
    let (status, resolved) = post(&app, &operator, &format!("/v1/operator/privacy-cases/{id}/status"), &json!({"status": "resolved", "note": "Only your care team."})).await;
    assert_eq!(status, 200, "{resolved}");
    let (_, mine) = get(&app, &p.client.token, "/v1/me/privacy-cases").await;
    assert_eq!(mine["items"][0]["status"], "resolved");
    assert_eq!(get(&app, &p.provider.token, &format!("/v1/privacy-cases/{id}")).await.0, 404);
    // The message is sealed at rest.
    let raw = app.raw_database_contents().await;
    assert!(!raw.iter().any(|(_, bytes)| bytes.windows(21).any(|w| w == b"Who can see my notes?")));
    app.stop().await;
});

both_databases!(async fn the_statements_name_the_controller_bases_and_the_right_to_complain(app) {
    let (status, statements) = app.call(Method::GET, "/v1/privacy-statements", None, None).await;
    assert_eq!(status, 200);
    assert_statements(&json!({"statements": statements}));
    app.stop().await;
});

both_databases!(async fn a_research_extract_holds_only_consenting_clients_with_no_identifier_left(app) {
    let p = Practice::new(&app, "research").await;
    let other = app.signed_in_member(&p.admin, "client-nothing@example.com", "client").await;
    p.condition(&app, "Frozen shoulder after a fall at 12 Elm Street").await;
    let (status, _) = post(&app, &p.admin, &p.client_path("/records"), &json!({"kind": "demographics", "sex": "female",
        "address": {"lines": ["12 Elm Street"], "city": "Cambridge", "postal_code": "02139", "country": "US"}})).await;
    assert_eq!(status, 201);
    let (status, _) = post(&app, &p.client.token, "/v1/me/consents", &json!({"action": "grant", "purpose": "research"})).await;
    assert_eq!(status, 201);
    let path = format!("/v1/organisations/{}/research-extract?purpose=research", p.organisation);
    assert_eq!(get(&app, &p.provider.token, &path).await.0, 403, "the privacy officer's");
    let bad = format!("/v1/organisations/{}/research-extract?purpose=treatment", p.organisation);
    assert_eq!(get(&app, &p.officer.token, &bad).await.0, 400, "the purpose is research or analytics");
    let (status, extract) = get(&app, &p.officer.token, &path).await;
    assert_eq!(status, 200, "{extract}");
    let subjects = extract["subjects"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 1, "only the client whose consent allows research: {extract}");
    assert!(extract["considered"].as_u64().expect("count") >= 2);
    let subject = &subjects[0];
    assert_eq!(subject["zip3"], "021");
    let age = chrono::Datelike::year(&chrono::Utc::now()) - 1990;
    assert_eq!(subject["age"], age.to_string(), "born on 1 January 1990: {subject}");
    assert!(subject["records"].as_array().expect("records").iter().any(|r| r["kind"] == "condition"));
    let text = extract.to_string();
    for identifier in ["Test Client", "client-research@example.com", "Elm Street", "Cambridge", "02139", "1990-01-01",
        "Frozen shoulder", p.client.user_id.as_str(), other.user_id.as_str(), p.organisation.as_str()] {
        assert!(!text.contains(identifier), "{identifier} in {text}");
    }
    let events = p.audit_events(&app).await;
    assert!(events.iter().any(|e| e["resource_kind"] == "research_extract" && e["purpose"] == "research"), "audited");
    app.stop().await;
});
