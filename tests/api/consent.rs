//! Consent over HTTP: a person's own consents (one call to give, one to take back),
//! a guardian's for their ward, a provider's attestation (S6) and consent checks
//! without evidence, Global Privacy Control, marketing preferences, HIPAA
//! authorisations, policy versions with material-change notices, the public
//! catalogue and sub-processor registry, and the auditor's ledger export and
//! verification.

use ring::digest;
use serde_json::{Value, json};
use tests::{TestApp, both_databases};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value, String) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("answers");
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, resp.json().await.unwrap_or(Value::Null), request_id)
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body, _) = call(app, reqwest::Method::GET, path, Some(token), None, &[]).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let (status, body, _) = call(
        app,
        reqwest::Method::POST,
        path,
        Some(token),
        Some(body),
        &[],
    )
    .await;
    (status, body)
}

fn purpose<'a>(overview: &'a Value, name: &str) -> &'a Value {
    overview["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == name)
        .expect("the purpose is listed")
}

async fn history_len(app: &TestApp, token: &str) -> usize {
    get(app, token, "/v1/me/consents/history").await["items"]
        .as_array()
        .expect("items")
        .len()
}

both_databases!(
    async fn a_person_gives_and_takes_back_consent_in_one_call_each(app) {
        let admin = app.signed_in_provider("admin-g@example.com").await;
        let client = app.signed_in_member(&admin, "client-g@example.com", "client").await;
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(purpose(&me, "research")["allowed"], false, "{me}");
        assert_eq!(purpose(&me, "research")["consent"], "opt_in");
        assert_eq!(purpose(&me, "research")["reason"], "consent_not_given");

        let (status, event) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "grant", "purpose": "research" })).await;
        assert_eq!(status, 201, "{event}");
        assert!(event["policy_version"].as_str().expect("a version").starts_with("privacy-notice@builtin-"));
        assert_eq!(event["authority"], "person");
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(purpose(&me, "research")["allowed"], true, "{me}");
        assert_eq!(purpose(&me, "research")["recorded"], "granted");

        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "withdraw", "purpose": "research" })).await;
        assert_eq!(status, 201);
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(purpose(&me, "research")["allowed"], false);
        assert_eq!(purpose(&me, "research")["reason"], "consent_withdrawn");

        // Bad input: a clear problem, and nothing recorded.
        let before = history_len(&app, &client.token).await;
        let (status, problem) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "withdraw", "purpose": "research" })).await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem["type"], "urn:custodia:problem:conflict");
        let (status, problem) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "withdraw", "purpose": "marketing_sms" })).await;
        assert_eq!(status, 409, "never given: {problem}");
        let (status, problem) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "grant", "purpose": "selling_data" })).await;
        assert_eq!(status, 422, "an unknown purpose: {problem}");
        let (status, problem) = post(&app, &client.token, "/v1/me/consents", &json!({
            "action": "grant", "purpose": "research",
            "effective_at": "2030-01-02T00:00:00Z", "expires_at": "2030-01-01T00:00:00Z",
        })).await;
        assert_eq!(status, 422, "expiry before effect: {problem}");
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "restrict" })).await;
        assert_eq!(status, 422, "a restriction names its category");
        assert_eq!(history_len(&app, &client.token).await, before);

        // Restriction (D4) and objection (D6).
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "restrict", "category": "health_record" })).await;
        assert_eq!(status, 201);
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(me["restrictions"], json!(["health_record"]));
        assert_eq!(purpose(&me, "treatment")["reason"], "restricted");
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "lift_restriction", "category": "health_record" })).await;
        assert_eq!(status, 201);
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "object", "purpose": "analytics" })).await;
        assert_eq!(status, 201);
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(purpose(&me, "analytics")["reason"], "objected");

        // A grant that ends on an event: the event is recorded as its expiry.
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "grant", "purpose": "research" })).await;
        assert_eq!(status, 201);
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "expire", "purpose": "research" })).await;
        assert_eq!(status, 201);
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(purpose(&me, "research")["reason"], "consent_expired");
        assert_eq!(purpose(&me, "research")["recorded"], "expired");
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "expire", "purpose": "research" })).await;
        assert_eq!(status, 409, "nothing in force to expire");

        let history = get(&app, &client.token, "/v1/me/consents/history").await;
        let items = history["items"].as_array().expect("items");
        assert_eq!(items.len(), 8, "the attestation recorded with the account, then seven changes");
        assert_eq!(items[0]["event"]["authority"], "provider_attesting");
        assert!(items[1]["evidence"]["client_address"].is_string(), "{history}");
        assert_eq!(items[2]["event"]["action"], "withdraw");
        app.stop().await;
    }
);

both_databases!(
    async fn a_provider_attests_then_checks_consent_without_seeing_the_evidence(app) {
        let admin = app.signed_in_provider("admin-p@example.com").await;
        let org = app.organisation_of(&admin).await;
        let client = app.signed_in_member(&admin, "client-p@example.com", "client").await;
        let checks = format!("/v1/organisations/{org}/clients/{}/consent-checks", client.user_id);
        let treat = json!({ "purpose": "treatment", "category": "health_record" });
        // Creating the client recorded the attestation (S6) with the account.
        let history = get(&app, &client.token, "/v1/me/consents/history").await;
        assert_eq!(history["items"][0]["event"]["authority"], "provider_attesting", "{history}");
        assert_eq!(history["items"][0]["event"]["recipient"], "custodia");
        assert_eq!(history["items"][0]["event"]["channel"], "paper");

        // A client cannot be created without it; nothing is stored.
        let users = app.count_rows("users").await;
        let (status, problem) = post(&app, &admin, &format!("/v1/organisations/{org}/clients"), &json!({ "name": "No Attestation", "email": "na@example.com", "date_of_birth": "1990-01-01" })).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().expect("detail").contains("service_authorisation"), "{problem}");
        let (status, problem) = post(&app, &admin, &format!("/v1/organisations/{org}/clients"), &json!({ "name": "Future", "email": "fu@example.com", "date_of_birth": "1990-01-01", "service_authorisation": { "obtained_at": "2999-01-01T00:00:00Z", "channel": "paper" } })).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(app.count_rows("users").await, users);

        // The provider may attest again (a renewed form, or after a failed write).
        let attest = format!("/v1/organisations/{org}/clients/{}/service-authorisation", client.user_id);
        let (status, problem) = post(&app, &admin, &attest, &json!({ "obtained_at": "2999-01-01T00:00:00Z", "channel": "paper" })).await;
        assert_eq!(status, 422, "{problem}");
        let (status, event) = post(&app, &admin, &attest, &json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "paper", "document_reference": "form-2026-17" })).await;
        assert_eq!(status, 201, "{event}");
        assert_eq!(event["authority"], "provider_attesting");
        assert_eq!(event["recipient"], "custodia");

        let (status, check) = post(&app, &admin, &checks, &treat).await;
        assert_eq!(status, 200);
        assert_eq!(check["allowed"], true, "{check}");
        assert_eq!(check["basis"]["citation"], "45 CFR 164.506(c)");
        assert!(check.get("evidence").is_none(), "no evidence for providers: {check}");
        let text = check.to_string();
        assert!(!text.contains("form-2026-17") && !text.contains("user_agent"));

        // The client sees when it was attested.
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert!(me["service_authorised_at"].is_string(), "{me}");

        // Another practice, and the client themselves, cannot ask.
        let stranger = app.signed_in_provider("stranger-p@example.com").await;
        let stranger_org = app.organisation_of(&stranger).await;
        let (status, _) = post(&app, &stranger, &checks, &treat).await;
        assert_eq!(status, 404);
        let (status, _) = post(&app, &stranger, &format!("/v1/organisations/{stranger_org}/clients/{}/consent-checks", client.user_id), &treat).await;
        assert_eq!(status, 404);
        let (status, _) = post(&app, &client.token, &checks, &treat).await;
        assert_eq!(status, 403);
        app.stop().await;
    }
);

both_databases!(
    async fn a_guardian_decides_for_a_minor_and_anyone_else_is_refused_and_audited(app) {
        let admin = app.signed_in_provider("admin-m@example.com").await;
        let org = app.organisation_of(&admin).await;
        let auditor = app.signed_in_member(&admin, "auditor-m@example.com", "auditor").await;
        let stranger = app.signed_in_member(&admin, "stranger-m@example.com", "client").await;
        let (status, _, _) = call(&app, reqwest::Method::POST, &format!("/v1/organisations/{org}/clients"), Some(&admin), Some(&json!({
            "name": "Kid", "email": "kid-m@example.com", "date_of_birth": "2020-01-01",
            "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" },
        })), &[]).await;
        assert_eq!(status, 202);
        let child = app.member_id(&admin, "kid-m@example.com").await;
        let (status, _) = post(&app, &admin, &format!("/v1/organisations/{org}/clients/{child}/guardians"), &json!({ "name": "Pat Parent", "email": "parent-m@example.com" })).await;
        assert_eq!(status, 202);
        let guardian_id = app.member_id(&admin, "parent-m@example.com").await;
        let token = app.activation_token(&guardian_id).await;
        let (status, _) = post(&app, "", "/v1/account-activations", &json!({ "token": token, "password": tests::TEST_PASSWORD })).await;
        assert_eq!(status, 204);
        let (status, session, _) = call(&app, reqwest::Method::POST, "/v1/sessions", None, Some(&json!({
            "email": "parent-m@example.com", "password": tests::TEST_PASSWORD, "organisation_id": org,
        })), &[]).await;
        assert_eq!(status, 201, "{session}");
        let guardian = session["token"].as_str().expect("token").to_owned();

        let ward = format!("/v1/me/wards/{child}/consents");
        let grant = json!({ "action": "grant", "purpose": "research" });
        let (status, event) = post(&app, &guardian, &ward, &grant).await;
        assert_eq!(status, 201, "{event}");
        assert_eq!(event["authority"], "guardian");
        assert_eq!(event["acted_by"], guardian_id.as_str());
        let overview = get(&app, &guardian, &ward).await;
        assert_eq!(purpose(&overview, "research")["allowed"], true, "{overview}");

        // Someone with no authority: 403, and the attempt is in the audit log.
        let (status, problem, request_id) = call(&app, reqwest::Method::POST, &ward, Some(&stranger.token), Some(&grant), &[]).await;
        assert_eq!(status, 403, "{problem}");
        let events = get(&app, &auditor.token, &format!("/v1/organisations/{org}/audit-events?request_id={request_id}")).await;
        let items = events["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{events}");
        assert_eq!(items[0]["outcome"], "denied");
        assert_eq!(items[0]["denied_reason"], "no_authority");
        let (status, _, _) = call(&app, reqwest::Method::GET, &format!("/v1/me/wards/{}/consents", stranger.user_id), Some(&guardian), None, &[]).await;
        assert_eq!(status, 403, "a guardian of one child is not a guardian of another");
        app.stop().await;
    }
);

both_databases!(
    async fn global_privacy_control_records_one_opt_out_and_do_not_track_changes_nothing(app) {
        let admin = app.signed_in_provider("admin-gpc@example.com").await;
        let client = app.signed_in_member(&admin, "client-gpc@example.com", "client").await;
        let (status, _, _) = call(&app, reqwest::Method::GET, "/v1/me", Some(&client.token), None, &[("DNT", "1")]).await;
        assert_eq!(status, 200);
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(me["opted_out_of_sharing"], false, "DNT is not acted upon");
        assert_eq!(purpose(&me, "analytics")["allowed"], true);
        for _ in 0..2 {
            let (status, _, _) = call(&app, reqwest::Method::GET, "/v1/me", Some(&client.token), None, &[("Sec-GPC", "1")]).await;
            assert_eq!(status, 200);
        }
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(me["opted_out_of_sharing"], true, "{me}");
        assert_eq!(purpose(&me, "analytics")["reason"], "opted_out");
        let history = get(&app, &client.token, "/v1/me/consents/history").await;
        let items = history["items"].as_array().expect("items");
        assert_eq!(items.len(), 2, "the attestation, then the opt-out recorded once: {history}");
        assert_eq!(items[1]["event"]["channel"], "global_privacy_control");
        app.stop().await;
    }
);

both_databases!(
    async fn marketing_preferences_follow_the_practice_mode_and_transactional_notices_stay_on(app) {
        let admin = app.signed_in_provider("admin-mk@example.com").await;
        let org = app.organisation_of(&admin).await;
        let client = app.signed_in_member(&admin, "client-mk@example.com", "client").await;
        let (status, _) = post(&app, &admin, &format!("/v1/organisations/{org}/clients/{}/service-authorisation", client.user_id), &json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "verbal" })).await;
        assert_eq!(status, 201);
        let prefs = get(&app, &client.token, "/v1/me/communication-preferences").await;
        assert_eq!(prefs, json!({ "marketing_email": false, "marketing_sms": false, "transactional": true }), "opt-in by default (U4)");

        let settings = format!("/v1/organisations/{org}/consent-settings");
        assert_eq!(get(&app, &admin, &settings).await["marketing_mode"], "opt_in");
        let (status, body, _) = call(&app, reqwest::Method::PUT, &settings, Some(&client.token), Some(&json!({ "marketing_mode": "opt_out", "opt_in_required": [], "regime": "hipaa" })), &[]).await;
        assert_eq!(status, 403, "{body}");
        let (status, body, _) = call(&app, reqwest::Method::PUT, &settings, Some(&admin), Some(&json!({ "marketing_mode": "opt_out", "opt_in_required": ["analytics"], "regime": "gdpr" })), &[]).await;
        assert_eq!(status, 200, "{body}");
        let prefs = get(&app, &client.token, "/v1/me/communication-preferences").await;
        assert_eq!(prefs["marketing_email"], true, "opt-out practice: {prefs}");
        let me = get(&app, &client.token, "/v1/me/consents").await;
        assert_eq!(me["regime"], "gdpr");
        assert_eq!(purpose(&me, "analytics")["consent"], "opt_in", "made stricter");

        let before = history_len(&app, &client.token).await;
        let (status, prefs, _) = call(&app, reqwest::Method::PUT, "/v1/me/communication-preferences", Some(&client.token), Some(&json!({ "marketing_sms": false })), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(prefs, json!({ "marketing_email": true, "marketing_sms": false, "transactional": true }));
        assert_eq!(history_len(&app, &client.token).await, before + 1, "one event to say no (D7)");
        let (status, prefs, _) = call(&app, reqwest::Method::PUT, "/v1/me/communication-preferences", Some(&client.token), Some(&json!({ "marketing_sms": true })), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(prefs["marketing_sms"], true);
        assert_eq!(history_len(&app, &client.token).await, before + 2, "one event to say yes again");
        app.stop().await;
    }
);

fn authorisation() -> Value {
    json!({
        "information": "Exercise adherence logs for 2026",
        "disclosers": "Sunrise Physio",
        "recipients": "Acme Research Institute",
        "purpose": "third_party_sharing",
        "purpose_statement": "An outcome study of home-exercise programs",
        "recipient_name": "Acme Research Institute",
        "expiry": { "date": "2031-01-01T00:00:00Z" },
        "signer": "Grace Hopper",
        "signed_at": "2026-01-05T10:00:00Z",
        "revocation_statement": "You may revoke this authorisation at any time by writing to us.",
        "conditioning_statement": "Your treatment does not depend on signing.",
        "redisclosure_statement": "The recipient may redisclose the information, which may then no longer be protected.",
    })
}

both_databases!(
    async fn a_hipaa_authorisation_needs_every_element_and_grants_until_revoked(app) {
        let admin = app.signed_in_provider("admin-a@example.com").await;
        let org = app.organisation_of(&admin).await;
        let client = app.signed_in_member(&admin, "client-a@example.com", "client").await;
        let mut incomplete = authorisation();
        incomplete["revocation_statement"] = json!("  ");
        let (status, problem) = post(&app, &client.token, "/v1/me/authorisations", &incomplete).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().expect("detail").contains("right to revoke"), "{problem}");
        let mut no_expiry = authorisation();
        no_expiry["expiry"] = json!({});
        let (status, _) = post(&app, &client.token, "/v1/me/authorisations", &no_expiry).await;
        assert_eq!(status, 422);
        assert_eq!(history_len(&app, &client.token).await, 1, "nothing recorded but the attestation");

        let (status, recorded) = post(&app, &client.token, "/v1/me/authorisations", &authorisation()).await;
        assert_eq!(status, 201, "{recorded}");
        let id = recorded["id"].as_str().expect("id").to_owned();
        assert_eq!(recorded["grant"]["recipient"], "Acme Research Institute");
        let list = get(&app, &client.token, "/v1/me/authorisations").await;
        assert_eq!(list["items"][0]["revocation_statement"], authorisation()["revocation_statement"]);

        let checks = format!("/v1/organisations/{org}/clients/{}/consent-checks", client.user_id);
        let share = json!({ "purpose": "third_party_sharing", "category": "exercise_programs", "recipient": "Acme Research Institute" });
        let (_, check) = post(&app, &admin, &checks, &share).await;
        assert_eq!(check["allowed"], true, "{check}");
        let (_, check) = post(&app, &admin, &checks, &json!({ "purpose": "third_party_sharing", "category": "exercise_programs", "recipient": "Someone Else" })).await;
        assert_eq!(check["allowed"], false, "only the named recipient");

        let revoke = format!("/v1/me/authorisations/{id}/revocation");
        let (status, _) = post(&app, &client.token, &revoke, &json!({})).await;
        assert_eq!(status, 201);
        let (_, check) = post(&app, &admin, &checks, &share).await;
        assert_eq!(check["allowed"], false);
        assert_eq!(check["reason"], "consent_withdrawn");
        let (status, _) = post(&app, &client.token, &revoke, &json!({})).await;
        assert_eq!(status, 409, "already revoked");
        let (status, _) = post(&app, &client.token, &format!("/v1/me/authorisations/{}/revocation", uuid::Uuid::nil()), &json!({})).await;
        assert_eq!(status, 404);
        app.stop().await;
    }
);

both_databases!(
    async fn policy_versions_are_public_and_a_material_change_notifies_people(app) {
        let (status, body, _) = call(&app, reqwest::Method::GET, "/v1/policies", None, None, &[]).await;
        assert_eq!(status, 200);
        let builtin = body["items"][0].clone();
        assert_eq!(builtin["document"], "privacy-notice");
        assert_eq!(builtin["content_sha256"].as_str().expect("hash").len(), 64);

        let admin = app.signed_in_provider("operator@example.com").await;
        let client = app.signed_in_member(&admin, "client-pol@example.com", "client").await;
        let (status, _) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "grant", "purpose": "research" })).await;
        assert_eq!(status, 201);
        let new = json!({
            "document": "privacy-notice", "version": "2026-12-01",
            "effective_at": chrono::Utc::now().to_rfc3339(), "content": "New text", "material": true,
            "summary": "We now share de-identified data with researchers.",
        });
        let (status, _) = post(&app, &admin, "/v1/policies", &new).await;
        assert_eq!(status, 403, "a practice admin is not the operator");

        app.grant_operator("operator@example.com").await;
        let (status, session, _) = call(&app, reqwest::Method::POST, "/v1/operator/sessions", None, Some(&json!({ "email": "operator@example.com", "password": tests::TEST_PASSWORD })), &[]).await;
        assert_eq!(status, 201, "{session}");
        let operator = session["token"].as_str().expect("token").to_owned();
        let outbox = app.count_rows("outbox").await;
        let (status, published) = post(&app, &operator, "/v1/policies", &new).await;
        assert_eq!(status, 201, "{published}");
        assert!(published["notified"].as_u64().expect("count") >= 1, "{published}");
        assert_eq!(published["version"]["content_sha256"], sha256_hex(b"New text").as_str());
        assert_eq!(
            app.count_rows("outbox").await,
            outbox + published["notified"].as_u64().expect("count"),
            "one notice per person told"
        );
        let (status, _) = post(&app, &operator, "/v1/policies", &new).await;
        assert_eq!(status, 409, "a version is published once");

        let (status, event) = post(&app, &client.token, "/v1/me/consents", &json!({ "action": "grant", "purpose": "marketing_email" })).await;
        assert_eq!(status, 201);
        assert_eq!(event["policy_version"], "privacy-notice@2026-12-01", "new consents cite the new version");
        app.stop().await;
    }
);

both_databases!(
    async fn the_catalogue_and_the_sub_processors_are_public(app) {
        let (status, catalogue, _) = call(&app, reqwest::Method::GET, "/v1/consent/purposes", None, None, &[]).await;
        assert_eq!(status, 200);
        let items = catalogue["items"].as_array().expect("items");
        assert_eq!(items.len(), 9);
        let research = items.iter().find(|p| p["purpose"] == "research").expect("research");
        assert_eq!(research["hipaa_authorisation_required"], true);
        assert_eq!(research["gdpr_health_condition"], "GDPR Art. 9(2)(a)");
        assert_eq!(research["bases"].as_array().expect("bases").len(), 3);
        let (status, registry, _) = call(&app, reqwest::Method::GET, "/v1/sub-processors", None, None, &[]).await;
        assert_eq!(status, 200);
        let payments = registry["items"].as_array().expect("items").iter().find(|p| p["name"] == "payments").expect("payments");
        assert!(payments["categories"].as_array().expect("categories").contains(&json!("payment")));
        app.stop().await;
    }
);

fn sha256_hex(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

both_databases!(
    async fn an_auditor_exports_a_ledger_that_verifies_on_its_own(app) {
        let admin = app.signed_in_provider("admin-l@example.com").await;
        let auditor = app.signed_in_member(&admin, "auditor-l@example.com", "auditor").await;
        let client = app.signed_in_member(&admin, "client-l@example.com", "client").await;
        for body in [
            json!({ "action": "grant", "purpose": "research" }),
            json!({ "action": "withdraw", "purpose": "research" }),
            json!({ "action": "object", "purpose": "analytics" }),
        ] {
            let (status, _) = post(&app, &client.token, "/v1/me/consents", &body).await;
            assert_eq!(status, 201);
        }
        // Another practice's people are not in this practice's export.
        let other = app.signed_in_provider("admin-l2@example.com").await;
        let other_client = app.signed_in_member(&other, "client-l2@example.com", "client").await;
        let other_org = app.organisation_of(&other).await;
        let (status, _) = post(&app, &other, &format!("/v1/organisations/{other_org}/clients/{}/service-authorisation", other_client.user_id), &json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "paper" })).await;
        assert_eq!(status, 201);
        let org = app.organisation_of(&admin).await;
        let (status, _) = post(&app, &admin, &format!("/v1/organisations/{org}/clients/{}/service-authorisation", client.user_id), &json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "paper" })).await;
        assert_eq!(status, 201);

        let mut items = Vec::new();
        let mut path = "/v1/consent/ledger?limit=2".to_owned();
        loop {
            let page = get(&app, &auditor.token, &path).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/consent/ledger?limit=2&after={cursor}"),
                None => break,
            }
        }
        assert_eq!(items.len(), 5, "the client's five events (two attestations), not the other practice's");
        let mut prev = "0".repeat(64);
        for (i, e) in items.iter().enumerate() {
            assert_eq!(e["sequence"], i as u64 + 1);
            assert_eq!(e["prev_hash"], prev.as_str());
            let encoding = unhex(e["encoding"].as_str().expect("encoding"));
            assert_eq!(sha256_hex(&encoding), e["hash"].as_str().expect("hash"), "the hash covers the encoding");
            prev = e["hash"].as_str().expect("hash").to_owned();
        }
        assert!(!items.iter().any(|e| e["chain_id"] == client.user_id.as_str()), "chains are pseudonymous");
        let text = serde_json::to_string(&items).expect("json");
        assert!(!text.contains("user_agent") && !text.contains("127.0.0.1"), "no evidence in the export");

        let report = get(&app, &auditor.token, "/v1/consent/verification").await;
        assert_eq!(report["intact"], true, "{report}");
        assert!(report["chains"].as_u64().expect("chains") >= 2);
        for token in [&admin, &client.token] {
            let (status, _, _) = call(&app, reqwest::Method::GET, "/v1/consent/verification", Some(token), None, &[]).await;
            assert_eq!(status, 403);
            let (status, _, _) = call(&app, reqwest::Method::GET, "/v1/consent/ledger", Some(token), None, &[]).await;
            assert_eq!(status, 403);
        }
        let (status, _, _) = call(&app, reqwest::Method::GET, "/v1/consent/ledger?after=nonsense", Some(&auditor.token), None, &[]).await;
        assert_eq!(status, 400, "a cursor not issued is malformed");
        app.stop().await;
    }
);

both_databases!(
    async fn an_event_edited_in_the_database_is_named_by_both_verifiers(app) {
        let admin = app.signed_in_provider("admin-t@example.com").await;
        let auditor = app.signed_in_member(&admin, "auditor-t@example.com", "auditor").await;
        let client = app.signed_in_member(&admin, "client-t@example.com", "client").await;
        for body in [
            json!({ "action": "grant", "purpose": "research" }),
            json!({ "action": "withdraw", "purpose": "research" }),
        ] {
            let (status, _) = post(&app, &client.token, "/v1/me/consents", &body).await;
            assert_eq!(status, 201);
        }
        assert_eq!(get(&app, &auditor.token, "/v1/consent/verification").await["intact"], true);
        // Someone with database access turns the withdrawal (after the attestation
        // and the grant) back into a grant.
        app.execute("UPDATE consent_events SET action = 'grant' WHERE sequence = 3").await;
        let report = get(&app, &auditor.token, "/v1/consent/verification").await;
        assert_eq!(report["intact"], false, "{report}");
        let breaks = report["breaks"].as_array().expect("breaks");
        assert_eq!(breaks.len(), 1, "{report}");
        assert_eq!(breaks[0]["sequence"], 3);
        assert_eq!(breaks[0]["problem"], "hash_mismatch");

        // What `cargo xtask verify consent` runs, on the same database.
        let (url, data_dir) = app.data();
        let config = server::Config::try_from_args([
            "custodia",
            "--database-url", &url,
            "--data-dir", data_dir.to_str().expect("a UTF-8 path"),
        ])
        .expect("a valid configuration");
        let repository = server::consent_for_verification(&config).await.expect("opens");
        let offline = consent::service::verify_repository(repository.as_ref()).await.expect("reads");
        assert_eq!(offline.breaks.len(), 1);
        assert_eq!(offline.breaks[0].1.sequence, 3);
        assert!(offline.projection_mismatches.is_empty(), "the projection itself is in step");
        app.stop().await;
    }
);

both_databases!(
    async fn the_consent_export_is_the_full_history_and_erasure_keeps_only_the_pseudonymous_proof(app) {
        use kernel::PersonalData as _;
        let admin = app.signed_in_provider("admin-e@example.com").await;
        let org = app.organisation_of(&admin).await;
        let auditor = app.signed_in_member(&admin, "auditor-e@example.com", "auditor").await;
        let client = app.signed_in_member(&admin, "client-e@example.com", "client").await;
        let (status, _) = post(&app, &admin, &format!("/v1/organisations/{org}/clients/{}/service-authorisation", client.user_id), &json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "paper", "document_reference": "form-canary-77" })).await;
        assert_eq!(status, 201);
        let (status, _, _) = call(&app, reqwest::Method::POST, "/v1/me/consents", Some(&client.token), Some(&json!({ "action": "grant", "purpose": "research" })), &[("User-Agent", "canary-agent/9")]).await;
        assert_eq!(status, 201);
        let (status, _) = post(&app, &client.token, "/v1/me/authorisations", &authorisation()).await;
        assert_eq!(status, 201);

        let state = app.state();
        let ctx = kernel::RequestContext::system("rights", kernel::Purpose::SubjectRequest, state.clock().now());
        let user = kernel::UserId::from_uuid(client.user_id.parse().expect("a uuid"));
        let member_ctx = kernel::RequestContext::new(
            kernel::Actor::Member { user, roles: kernel::RoleSet::only(kernel::Role::Client) },
            None,
            kernel::Purpose::SubjectRequest,
            kernel::RequestId::new(),
            kernel::ClientInfo::default(),
            state.clock().now(),
        );
        let (me, _) = state.identity().me(&member_ctx).await.expect("the client");
        let port = consent::ConsentPersonalData::new(state.consent().clone());
        let exported = port.export(&ctx, me.subject).await.expect("exports");
        assert_eq!(exported.len(), 5, "two attestations, a grant, the authorisation's grant, the authorisation");
        let text = serde_json::to_string(&exported.iter().map(|r| &r.data).collect::<Vec<_>>()).expect("json");
        for canary in ["canary-agent/9", "form-canary-77", "Grace Hopper", "privacy-notice@builtin-"] {
            assert!(text.contains(canary), "the export holds {canary}");
        }

        let events = app.count_rows("consent_events").await;
        let outcomes = port.erase(&ctx, me.subject).await.expect("erases");
        let retained = outcomes.iter().filter(|o| matches!(o.fate, kernel::personal_data::RecordFate::Retained { .. })).count();
        let deleted = outcomes.iter().filter(|o| o.fate == kernel::personal_data::RecordFate::Deleted).count();
        assert_eq!((retained, deleted), (4, 5), "events kept on their ground; evidence and the authorisation deleted");
        assert_eq!(app.count_rows("consent_events").await, events, "the proof stays");
        assert_eq!(app.count_rows("consent_evidence").await, 0);
        assert_eq!(app.count_rows("consent_authorisations").await, 0);
        assert!(port.export(&ctx, me.subject).await.expect("exports").is_empty(), "nothing leads back to the person");
        let report = get(&app, &auditor.token, "/v1/consent/verification").await;
        assert_eq!(report["breaks"], json!([]), "the pseudonymous chain still verifies: {report}");
        assert!(port.erase(&ctx, me.subject).await.expect("again").is_empty(), "idempotent");
        app.stop().await;
    }
);
