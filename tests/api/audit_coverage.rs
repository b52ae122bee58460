//! Audit coverage: every operation in `docs/openapi.json` is classified as touching
//! personal health data (and the record of accesses to it) or not, with why. Each
//! one that does is called, allowed and refused, and must leave an audit event
//! with the request's id and the right outcome. A new operation fails this test
//! until it is classified, and a health-data operation until it is audited.

use std::collections::BTreeSet;

use audit::ports::EventFilter;
use serde_json::{Value, json};
use tests::{TestApp, both_databases};

/// Operations that touch health data: that a person is a client of a practice,
/// their account and guardians, a practice's people, the export of a person's
/// data, and the audit log itself (who accessed whose data, disclosures). And
/// every billing write: what moves money (charges, refunds, invoices, billing
/// runs, the processor's events) and what decides it (plans, tax rates, the
/// billing account, cards, the subscription), allowed or refused. And every
/// step of a rights request: filing, the archive's download, an agent's
/// appointment, the privacy officer's queue, reads and decisions.
const AUDITED: [&str; 75] = [
    "createPlan",
    "revisePlan",
    "setTaxRate",
    "updateBillingAccount",
    "addPaymentMethod",
    "removePaymentMethod",
    "subscribe",
    "changePlan",
    "cancelSubscription",
    "resumeSubscription",
    "payInvoice",
    "createInvoice",
    "finalizeInvoice",
    "voidInvoice",
    "refundInvoice",
    "runBilling",
    "receiveProcessorEvent",
    "listClients",
    "getClient",
    "getCareTeam",
    "addCareTeamMember",
    "endCareTeamMembership",
    "breakGlass",
    "listBreakGlassGrants",
    "createRecord",
    "listRecords",
    "getRecord",
    "updateRecord",
    "listRecordVersions",
    "acceptAmendment",
    "denyAmendment",
    "attachDisagreement",
    "bookAppointment",
    "listAppointments",
    "updateAppointmentStatus",
    "getMyConsents",
    "changeMyConsent",
    "getMyConsentHistory",
    "createMyAuthorisation",
    "listMyAuthorisations",
    "getWardConsents",
    "changeWardConsent",
    "attestServiceAuthorisation",
    "checkClientConsent",
    "exportConsentLedger",
    "verifyConsentLedger",
    "revokeMyAuthorisation",
    "createClient",
    "linkGuardian",
    "reportClientUnder13",
    "listMembers",
    "removeMemberRole",
    "disableAccount",
    "enableAccount",
    "exportAccountData",
    "verifyAuditLog",
    "getAuditInclusionProof",
    "listAuditEvents",
    "getMyAccessReport",
    "listMyDisclosures",
    "listClientDisclosures",
    "recordDisclosure",
    "listAccessAlerts",
    "fileRightsRequest",
    "downloadRightsArchive",
    "appointAgent",
    "revokeAgent",
    "fileClientRightsRequest",
    "listRightsQueue",
    "getQueuedRightsRequest",
    "verifyRightsRequest",
    "extendRightsRequest",
    "denyRightsRequest",
    "executeRightsRequest",
    "getResearchExtract",
];

/// Audited operations on the caller's own data only: no one else can be refused
/// them (an API key is refused before any data is reached).
const SELF_ONLY: [&str; 11] = [
    "revokeMyAuthorisation",
    "getMyConsents",
    "changeMyConsent",
    "getMyConsentHistory",
    "createMyAuthorisation",
    "listMyAuthorisations",
    "exportAccountData",
    "getMyAccessReport",
    "listMyDisclosures",
    "appointAgent",
    "revokeAgent",
];

/// Audited operations no caller can be refused: the payment processor's webhook
/// has no caller but the processor, authenticated by its signature; a delivery
/// without a good one is refused (400) before anything is read or recorded.
const SIGNED: [&str; 1] = ["receiveProcessorEvent"];

/// Operations that touch no health data, and why. Security events (sign-ins,
/// failures, account changes) are kept by identity's own log (U6).
const NOT_HEALTH_DATA: [(&str, &str); 68] = [
    ("listPlans", "the plans on offer: no one's data"),
    ("getPlan", "the plans on offer: no one's data"),
    ("listTaxRates", "tax rates per country: no one's data"),
    (
        "getBillingAccount",
        "the practice's billing contact, read by its admins; changes are audited",
    ),
    (
        "listPaymentMethods",
        "the practice's cards (brand, last four digits, expiry); changes are audited",
    ),
    (
        "getSubscription",
        "the practice's plan and standing; changes are audited",
    ),
    (
        "getPlanStatus",
        "the practice's plan, standing and head counts; no one's data",
    ),
    (
        "listInvoices",
        "the practice's invoices, read by its admins; every change is audited",
    ),
    (
        "getInvoice",
        "the practice's invoice, read by its admins; every change is audited",
    ),
    (
        "addExercise",
        "the practice's exercise library: templates, no one's data",
    ),
    (
        "listExercises",
        "the practice's exercise library: templates, no one's data",
    ),
    (
        "addSharedExercise",
        "the shared exercise library: templates, no one's data",
    ),
    ("listConsentPurposes", "the public purpose catalogue"),
    ("listSubProcessors", "the public sub-processor registry"),
    ("listPolicyVersions", "public policy versions"),
    (
        "publishPolicyVersion",
        "a public document; audited as a change",
    ),
    ("getConsentSettings", "practice settings"),
    (
        "updateConsentSettings",
        "practice settings; audited as a change",
    ),
    (
        "getMyCommunicationPreferences",
        "the caller's own marketing preferences",
    ),
    (
        "updateMyCommunicationPreferences",
        "the caller's own marketing preferences; each change is an audited consent event",
    ),
    ("getHealth", "a probe"),
    ("getReadiness", "a probe"),
    ("createPractice", "a provider's own sign-up"),
    ("verifyEmail", "proves an address; a security event"),
    ("requestEmailVerification", "sends a token; reveals nothing"),
    ("createSession", "sign-in; a security event"),
    (
        "createOperatorSession",
        "operator sign-in; a security event",
    ),
    ("endOperatorSession", "sign-out"),
    ("listPractices", "practice names and regions only"),
    (
        "activateAccount",
        "the person's own activation by token; a security event",
    ),
    (
        "confirmEmailChange",
        "the person's own address; a security event",
    ),
    ("requestPasswordReset", "sends a token; reveals nothing"),
    (
        "resetPassword",
        "the person's own credential; a security event",
    ),
    ("getCurrentUser", "the caller's own account"),
    ("updateCurrentUser", "the caller's own account"),
    ("listSessions", "the caller's own sessions"),
    ("revokeAllSessions", "the caller's own sessions"),
    ("revokeSession", "the caller's own session"),
    ("listSecurityEvents", "the caller's own security events"),
    ("getProfile", "the caller's own profile"),
    ("replaceProfile", "the caller's own profile"),
    ("getPreferences", "the caller's own preferences"),
    ("replacePreferences", "the caller's own preferences"),
    (
        "requestAccountDeletion",
        "the caller's own account; a security event",
    ),
    ("listMyInvitations", "the caller's own invitations"),
    ("acceptInvitation", "the caller's own invitation"),
    ("startMfaEnrolment", "the caller's own credential"),
    ("confirmMfaEnrolment", "the caller's own credential"),
    ("regenerateRecoveryCodes", "the caller's own credential"),
    ("disableMfa", "the caller's own credential"),
    ("changePassword", "the caller's own credential"),
    ("requestEmailChange", "the caller's own credential"),
    ("getOrganisation", "practice settings"),
    ("updateOrganisation", "practice settings"),
    ("addMember", "staff roles (clients go through createClient)"),
    ("createApiKey", "integration credentials"),
    ("listApiKeys", "integration credentials"),
    ("revokeApiKey", "integration credentials"),
    (
        "listRightsRequests",
        "the caller's own rights requests; filing and downloading are audited",
    ),
    (
        "getRightsRequest",
        "the caller's own rights request; filing and downloading are audited",
    ),
    (
        "listAgents",
        "the caller's own agents; appointing and revoking are audited",
    ),
    (
        "listAuthorities",
        "the caller's own appointments as agent; filing on them is audited",
    ),
    (
        "listMyPrivacyCases",
        "the caller's own privacy and security cases",
    ),
    (
        "getPrivacyCase",
        "a question to the privacy office: the reporter's own, or read by the office (audited)",
    ),
    (
        "reportPrivacyCase",
        "a question or concern sent to the privacy office by anyone; audited as a creation",
    ),
    (
        "listOpenPrivacyCases",
        "the privacy office's queue of questions and concerns; audited as a listing",
    ),
    (
        "advancePrivacyCase",
        "the privacy office's answer to a question or concern; audited as a change",
    ),
    (
        "getPrivacyStatements",
        "the public statements: controller, legal bases, right to complain",
    ),
];

fn operation_ids() -> Vec<String> {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .expect("JSON");
    spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("operations").values())
        .map(|op| op["operationId"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn every_operation_is_classified_for_audit() {
    let audited: BTreeSet<&str> = AUDITED.into_iter().collect();
    let other: BTreeSet<&str> = NOT_HEALTH_DATA.iter().map(|(id, _)| *id).collect();
    assert!(
        audited.is_disjoint(&other),
        "classified twice: {:?}",
        audited.intersection(&other)
    );
    let missing: Vec<String> = operation_ids()
        .into_iter()
        .filter(|id| !audited.contains(id.as_str()) && !other.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "operations not classified for audit: {missing:?}"
    );
    let stale: Vec<&str> = audited
        .union(&other)
        .filter(|id| !operation_ids().iter().any(|o| o == *id))
        .copied()
        .collect();
    assert!(
        stale.is_empty(),
        "classified but not in the spec: {stale:?}"
    );
}

/// One call: the operation, the request, and the outcome its event must record.
struct Call {
    id: &'static str,
    method: &'static str,
    path: String,
    token: String,
    body: Value,
    status: u16,
    outcome: &'static str,
}

async fn send(app: &TestApp, call: &Call) -> String {
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("a method");
    let mut req = app
        .client
        .request(method, app.url(&call.path))
        .bearer_auth(&call.token);
    if call.method != "GET" && call.method != "DELETE" {
        req = req.json(&call.body);
    }
    let resp = req.send().await.expect("answers");
    let request_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(
        status, call.status,
        "{} ({} {}): {text}",
        call.id, call.method, call.path
    );
    request_id
}

async fn outcomes_of(app: &TestApp, request_id: &str) -> Vec<String> {
    let id: uuid::Uuid = request_id.parse().expect("a UUID request id");
    let since = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    app.state()
        .audit()
        .repository()
        .list_events(EventFilter::Request(id), since, None, 100)
        .await
        .expect("the log reads")
        .into_iter()
        .map(|e| {
            if e.denied.is_some() {
                "denied"
            } else {
                "allowed"
            }
            .to_owned()
        })
        .collect()
}

both_databases!(
    async fn every_health_data_operation_writes_an_event_allowed_and_denied(app) {
        let admin = app.signed_in_provider("owner@example.com").await;
        let org = app.organisation_of(&admin).await;
        let staff = app.signed_in_member(&admin, "staff@example.com", "staff").await;
        let auditor = app.signed_in_member(&admin, "auditor@example.com", "auditor").await;
        let officer = app.signed_in_member(&admin, "po@example.com", "privacy_officer").await;
        let client = app.signed_in_member(&admin, "client@example.com", "client").await;
        let minor = app.signed_in_member(&admin, "second@example.com", "client").await;
        let helper = app.signed_in_member(&admin, "helper@example.com", "staff").await;
        let other_admin = app.signed_in_provider("other@example.com").await;
        let c = &client.user_id;
        let m = &minor.user_id;
        let (_, events) = {
            let resp = app
                .client
                .get(app.url(&format!("/v1/organisations/{org}/audit-events")))
                .bearer_auth(&auditor.token)
                .send()
                .await
                .expect("answers");
            (resp.status(), resp.json::<Value>().await.expect("JSON"))
        };
        let event = &events["items"][0];
        let proof = format!(
            "/v1/audit/chains/{}/events/{}/inclusion-proof",
            event["chain_id"].as_str().expect("chain"),
            event["sequence"]
        );
        let disclosure = json!({
            "recipient": "State registry",
            "description": "immunisation record",
            "legal_basis": "45 CFR 164.512(b)",
            "purpose": "legal",
            "disclosed_at": "2026-01-15T10:00:00Z",
        });
        let person = json!({ "name": "A Guardian", "email": "guardian@example.com" });
        let new_client = json!({ "name": "New Client", "email": "new@example.com", "date_of_birth": "1990-01-01", "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" } });
        let call = |id, method, path: String, token: &str, body: Value, status, outcome| Call {
            id,
            method,
            path,
            token: token.to_owned(),
            body,
            status,
            outcome,
        };
        let none = || json!({});
        // A guardian for `minor`, signed in to the practice.
        let resp = app.client.post(app.url(&format!("/v1/organisations/{org}/clients/{m}/guardians")))
            .bearer_auth(&admin).json(&json!({ "name": "Ward Guardian", "email": "ward-guardian@example.com" }))
            .send().await.expect("answers");
        assert_eq!(resp.status(), 202);
        let guardian_id = app.member_id(&admin, "ward-guardian@example.com").await;
        let token = app.activation_token(&guardian_id).await;
        let resp = app.client.post(app.url("/v1/account-activations"))
            .json(&json!({ "token": token, "password": tests::TEST_PASSWORD })).send().await.expect("answers");
        assert_eq!(resp.status(), 204);
        let session: Value = app.client.post(app.url("/v1/sessions"))
            .json(&json!({ "email": "ward-guardian@example.com", "password": tests::TEST_PASSWORD, "organisation_id": org }))
            .send().await.expect("answers").json().await.expect("JSON");
        let guardian = session["token"].as_str().expect("a token").to_owned();
        let authorisation = json!({
            "information": "Adherence logs", "disclosers": "The practice", "recipients": "A study",
            "purpose": "research", "purpose_statement": "A study", "expiry": { "event": "the end of the study" },
            "signer": "Test Client", "signed_at": "2026-01-05T10:00:00Z",
            "revocation_statement": "You may revoke this at any time.",
            "conditioning_statement": "Care does not depend on it.",
            "redisclosure_statement": "It may be redisclosed.",
        });
        let authorised: Value = app.client.post(app.url("/v1/me/authorisations")).bearer_auth(&client.token)
            .json(&authorisation).send().await.expect("answers").json().await.expect("JSON");
        let revocation = format!("/v1/me/authorisations/{}/revocation", authorised["id"].as_str().expect("an id"));
        let grant = json!({ "action": "grant", "purpose": "research" });
        let check = json!({ "purpose": "treatment", "category": "health_record" });
        let attestation = json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "paper" });
        // A chart to read and change: a condition, a medication with two amendment
        // requests from the client, an appointment, and two more providers (one to
        // join and leave the care team, one to break the glass).
        let cp = format!("/v1/organisations/{org}/clients/{c}");
        let owner = app.member_id(&admin, "owner@example.com").await;
        let joiner = app.signed_in_member(&admin, "joiner@example.com", "provider").await;
        let glass = app.signed_in_member(&admin, "glass@example.com", "provider").await;
        let created = |(status, body): (u16, Value)| {
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().expect("an id").to_owned()
        };
        let condition = json!({"kind": "condition", "text": "Back pain", "status": "active"});
        let cond = created(app.call(reqwest::Method::POST, &format!("{cp}/records"), Some(&admin), Some(&condition)).await);
        let medication = json!({"kind": "medication", "name": "Ibuprofen", "dose": "400 mg", "frequency": "daily", "status": "active"});
        let med = created(app.call(reqwest::Method::POST, &format!("{cp}/records"), Some(&admin), Some(&medication)).await);
        let amend = |field: &str, value: &str| json!({"kind": "amendment", "target": med, "field": field, "proposed": value, "reason": "Wrong"});
        let a1 = created(app.call(reqwest::Method::POST, &format!("{cp}/records"), Some(&client.token), Some(&amend("dose", "200 mg"))).await);
        let a2 = created(app.call(reqwest::Method::POST, &format!("{cp}/records"), Some(&client.token), Some(&amend("frequency", "weekly"))).await);
        let booking = |hour: u32| json!({"provider_id": owner, "starts_at": format!("2026-12-01T{hour:02}:00:00Z"),
            "ends_at": format!("2026-12-01T{hour:02}:30:00Z"), "time_zone": "UTC"});
        let appt = created(app.call(reqwest::Method::POST, &format!("{cp}/appointments"), Some(&admin), Some(&booking(9))).await);
        let update = json!({"expected_version": 1, "content": condition});
        let joins = json!({"provider_id": joiner.user_id});
        let reason = json!({"reason": "Collapsed in the waiting room", "minutes": 10});
        let status_change = json!({"status": "arrived", "expected_version": 1});
        let clinical_calls = vec![
            call("listClients", "GET", format!("/v1/organisations/{org}/clients"), &admin, none(), 200, "allowed"),
            call("listClients", "GET", format!("/v1/organisations/{org}/clients"), &staff.token, none(), 403, "denied"),
            call("getClient", "GET", cp.clone(), &admin, none(), 200, "allowed"),
            call("getClient", "GET", cp.clone(), &staff.token, none(), 404, "denied"),
            call("getCareTeam", "GET", format!("{cp}/care-team"), &client.token, none(), 200, "allowed"),
            call("getCareTeam", "GET", format!("{cp}/care-team"), &staff.token, none(), 404, "denied"),
            call("addCareTeamMember", "POST", format!("{cp}/care-team"), &admin, joins.clone(), 201, "allowed"),
            call("addCareTeamMember", "POST", format!("{cp}/care-team"), &staff.token, joins, 404, "denied"),
            call("endCareTeamMembership", "POST", format!("{cp}/care-team/{}/ending", joiner.user_id), &admin, none(), 200, "allowed"),
            call("endCareTeamMembership", "POST", format!("{cp}/care-team/{}/ending", joiner.user_id), &staff.token, none(), 404, "denied"),
            call("breakGlass", "POST", format!("{cp}/break-glass"), &glass.token, reason.clone(), 201, "allowed"),
            call("breakGlass", "POST", format!("{cp}/break-glass"), &staff.token, reason, 403, "denied"),
            call("listBreakGlassGrants", "GET", format!("/v1/organisations/{org}/break-glass-grants"), &admin, none(), 200, "allowed"),
            call("listBreakGlassGrants", "GET", format!("/v1/organisations/{org}/break-glass-grants"), &staff.token, none(), 403, "denied"),
            call("createRecord", "POST", format!("{cp}/records"), &admin, condition.clone(), 201, "allowed"),
            call("createRecord", "POST", format!("{cp}/records"), &staff.token, condition, 404, "denied"),
            call("listRecords", "GET", format!("{cp}/records/condition"), &client.token, none(), 200, "allowed"),
            call("listRecords", "GET", format!("{cp}/records/condition"), &staff.token, none(), 404, "denied"),
            call("getRecord", "GET", format!("{cp}/records/condition/{cond}"), &admin, none(), 200, "allowed"),
            call("getRecord", "GET", format!("{cp}/records/condition/{cond}"), &staff.token, none(), 404, "denied"),
            call("updateRecord", "PUT", format!("{cp}/records/condition/{cond}"), &admin, update.clone(), 200, "allowed"),
            call("updateRecord", "PUT", format!("{cp}/records/condition/{cond}"), &staff.token, update, 404, "denied"),
            call("listRecordVersions", "GET", format!("{cp}/records/condition/{cond}/versions"), &admin, none(), 200, "allowed"),
            call("listRecordVersions", "GET", format!("{cp}/records/condition/{cond}/versions"), &staff.token, none(), 404, "denied"),
            call("acceptAmendment", "POST", format!("{cp}/amendments/{a1}/acceptance"), &staff.token, none(), 404, "denied"),
            call("acceptAmendment", "POST", format!("{cp}/amendments/{a1}/acceptance"), &admin, none(), 200, "allowed"),
            call("denyAmendment", "POST", format!("{cp}/amendments/{a2}/denial"), &staff.token, json!({"reason": "No"}), 404, "denied"),
            call("denyAmendment", "POST", format!("{cp}/amendments/{a2}/denial"), &admin, json!({"reason": "No"}), 200, "allowed"),
            call("attachDisagreement", "POST", format!("{cp}/amendments/{a2}/disagreement"), &staff.token, json!({"statement": "I disagree"}), 404, "denied"),
            call("attachDisagreement", "POST", format!("{cp}/amendments/{a2}/disagreement"), &client.token, json!({"statement": "I disagree"}), 200, "allowed"),
            call("bookAppointment", "POST", format!("{cp}/appointments"), &admin, booking(11), 201, "allowed"),
            call("bookAppointment", "POST", format!("{cp}/appointments"), &staff.token, booking(13), 404, "denied"),
            call("listAppointments", "GET", format!("{cp}/appointments"), &client.token, none(), 200, "allowed"),
            call("listAppointments", "GET", format!("{cp}/appointments"), &staff.token, none(), 404, "denied"),
            call("updateAppointmentStatus", "PUT", format!("{cp}/appointments/{appt}/status"), &staff.token, status_change.clone(), 404, "denied"),
            call("updateAppointmentStatus", "PUT", format!("{cp}/appointments/{appt}/status"), &admin, status_change, 200, "allowed"),
        ];
        let calls = vec![
            call("getMyConsents", "GET", "/v1/me/consents".to_owned(), &client.token, none(), 200, "allowed"),
            call("changeMyConsent", "POST", "/v1/me/consents".to_owned(), &client.token, grant.clone(), 201, "allowed"),
            call("getMyConsentHistory", "GET", "/v1/me/consents/history".to_owned(), &client.token, none(), 200, "allowed"),
            call("createMyAuthorisation", "POST", "/v1/me/authorisations".to_owned(), &client.token, authorisation, 201, "allowed"),
            call("listMyAuthorisations", "GET", "/v1/me/authorisations".to_owned(), &client.token, none(), 200, "allowed"),
            call("revokeMyAuthorisation", "POST", revocation, &client.token, none(), 201, "allowed"),
            call("getWardConsents", "GET", format!("/v1/me/wards/{m}/consents"), &guardian, none(), 200, "allowed"),
            call("getWardConsents", "GET", format!("/v1/me/wards/{m}/consents"), &client.token, none(), 403, "denied"),
            call("changeWardConsent", "POST", format!("/v1/me/wards/{m}/consents"), &guardian, grant.clone(), 201, "allowed"),
            call("changeWardConsent", "POST", format!("/v1/me/wards/{m}/consents"), &client.token, grant, 403, "denied"),
            call("attestServiceAuthorisation", "POST", format!("/v1/organisations/{org}/clients/{c}/service-authorisation"), &admin, attestation.clone(), 201, "allowed"),
            call("attestServiceAuthorisation", "POST", format!("/v1/organisations/{org}/clients/{c}/service-authorisation"), &staff.token, attestation, 403, "denied"),
            call("checkClientConsent", "POST", format!("/v1/organisations/{org}/clients/{c}/consent-checks"), &admin, check.clone(), 200, "allowed"),
            call("checkClientConsent", "POST", format!("/v1/organisations/{org}/clients/{c}/consent-checks"), &staff.token, check, 403, "denied"),
            call("exportConsentLedger", "GET", "/v1/consent/ledger".to_owned(), &auditor.token, none(), 200, "allowed"),
            call("exportConsentLedger", "GET", "/v1/consent/ledger".to_owned(), &staff.token, none(), 403, "denied"),
            call("verifyConsentLedger", "GET", "/v1/consent/verification".to_owned(), &auditor.token, none(), 200, "allowed"),
            call("verifyConsentLedger", "GET", "/v1/consent/verification".to_owned(), &staff.token, none(), 403, "denied"),
            call("createClient", "POST", format!("/v1/organisations/{org}/clients"), &admin, new_client.clone(), 202, "allowed"),
            call("createClient", "POST", format!("/v1/organisations/{org}/clients"), &staff.token, new_client, 403, "denied"),
            call("linkGuardian", "POST", format!("/v1/organisations/{org}/clients/{c}/guardians"), &admin, person.clone(), 202, "allowed"),
            call("linkGuardian", "POST", format!("/v1/organisations/{org}/clients/{c}/guardians"), &staff.token, person, 403, "denied"),
            call("listMembers", "GET", format!("/v1/organisations/{org}/members"), &admin, none(), 200, "allowed"),
            call("listMembers", "GET", format!("/v1/organisations/{org}/members"), &staff.token, none(), 403, "denied"),
            call("listMembers", "GET", format!("/v1/organisations/{org}/members"), &other_admin, none(), 404, "denied"),
            call("exportAccountData", "GET", "/v1/me/account-data".to_owned(), &client.token, none(), 200, "allowed"),
            call("getMyAccessReport", "GET", "/v1/me/access-report".to_owned(), &client.token, none(), 200, "allowed"),
            call("listMyDisclosures", "GET", "/v1/me/disclosures".to_owned(), &client.token, none(), 200, "allowed"),
            call("disableAccount", "PUT", format!("/v1/organisations/{org}/members/{c}/disablement"), &staff.token, none(), 403, "denied"),
            call("disableAccount", "PUT", format!("/v1/organisations/{org}/members/{c}/disablement"), &admin, none(), 204, "allowed"),
            call("enableAccount", "DELETE", format!("/v1/organisations/{org}/members/{c}/disablement"), &staff.token, none(), 403, "denied"),
            call("enableAccount", "DELETE", format!("/v1/organisations/{org}/members/{c}/disablement"), &admin, none(), 204, "allowed"),
            call("removeMemberRole", "DELETE", format!("/v1/organisations/{org}/members/{}/roles/staff", helper.user_id), &staff.token, none(), 403, "denied"),
            call("removeMemberRole", "DELETE", format!("/v1/organisations/{org}/members/{}/roles/staff", helper.user_id), &admin, none(), 204, "allowed"),
            call("verifyAuditLog", "GET", "/v1/audit/verification".to_owned(), &auditor.token, none(), 200, "allowed"),
            call("verifyAuditLog", "GET", "/v1/audit/verification".to_owned(), &staff.token, none(), 403, "denied"),
            call("getAuditInclusionProof", "GET", proof.clone(), &auditor.token, none(), 200, "allowed"),
            call("getAuditInclusionProof", "GET", proof, &staff.token, none(), 403, "denied"),
            call("listAuditEvents", "GET", format!("/v1/organisations/{org}/audit-events"), &officer.token, none(), 200, "allowed"),
            call("listAuditEvents", "GET", format!("/v1/organisations/{org}/audit-events"), &staff.token, none(), 403, "denied"),
            call("listAccessAlerts", "GET", format!("/v1/organisations/{org}/access-alerts"), &auditor.token, none(), 200, "allowed"),
            call("listAccessAlerts", "GET", format!("/v1/organisations/{org}/access-alerts"), &staff.token, none(), 403, "denied"),
            call("recordDisclosure", "POST", format!("/v1/organisations/{org}/clients/{c}/disclosures"), &officer.token, disclosure.clone(), 201, "allowed"),
            call("recordDisclosure", "POST", format!("/v1/organisations/{org}/clients/{c}/disclosures"), &staff.token, disclosure.clone(), 403, "denied"),
            call("recordDisclosure", "POST", format!("/v1/organisations/{org}/clients/{c}/disclosures"), &other_admin, disclosure, 404, "denied"),
            call("listClientDisclosures", "GET", format!("/v1/organisations/{org}/clients/{c}/disclosures"), &officer.token, none(), 200, "allowed"),
            call("listClientDisclosures", "GET", format!("/v1/organisations/{org}/clients/{c}/disclosures"), &staff.token, none(), 403, "denied"),
            call("reportClientUnder13", "POST", format!("/v1/organisations/{org}/clients/{m}/under-13-report"), &staff.token, none(), 403, "denied"),
            call("reportClientUnder13", "POST", format!("/v1/organisations/{org}/clients/{m}/under-13-report"), &admin, none(), 204, "allowed"),
        ];
        let mut allowed = BTreeSet::new();
        let mut denied = BTreeSet::new();
        for call in clinical_calls.iter().chain(&calls) {
            let request_id = send(&app, call).await;
            let outcomes = outcomes_of(&app, &request_id).await;
            assert!(
                outcomes.iter().any(|o| o == call.outcome),
                "{} ({} {}) left no {} event: {outcomes:?}",
                call.id,
                call.method,
                call.path,
                call.outcome
            );
            if call.outcome == "allowed" {
                allowed.insert(call.id);
            } else {
                denied.insert(call.id);
            }
        }
        exercise_billing(&app, &admin, &org, &staff.token, &mut allowed, &mut denied).await;
        // The client's session ended when their account was disabled above.
        let client_token = app.sign_in("client@example.com").await;
        let people = RightsPeople {
            admin: &admin,
            org: &org,
            client: &client_token,
            client_id: &client.user_id,
            minor: m,
            staff: &staff.token,
            officer: &officer.token,
            agent: &auditor.user_id,
        };
        exercise_rights(&app, &people, &mut allowed, &mut denied).await;
        let all: BTreeSet<&str> = AUDITED.into_iter().collect();
        assert_eq!(allowed, all, "every audited operation was exercised allowed");
        let exempt: BTreeSet<&str> = SELF_ONLY.into_iter().chain(SIGNED).collect();
        let refusable: BTreeSet<&str> = all.difference(&exempt).copied().collect();
        assert_eq!(denied, refusable, "every refusable operation was exercised refused");
        app.stop().await;
    }
);

/// Sends `call` and checks its event, recording the operation as exercised.
async fn exercise(
    app: &TestApp,
    call: &Call,
    allowed: &mut BTreeSet<&'static str>,
    denied: &mut BTreeSet<&'static str>,
) -> String {
    let request_id = send(app, call).await;
    let outcomes = outcomes_of(app, &request_id).await;
    assert!(
        outcomes.iter().any(|o| o == call.outcome),
        "{} ({} {}) left no {} event: {outcomes:?}",
        call.id,
        call.method,
        call.path,
        call.outcome
    );
    if call.outcome == "allowed" {
        allowed.insert(call.id);
    } else {
        denied.insert(call.id);
    }
    request_id
}

/// Every billing write, allowed (the practice's admin, the platform operator) and
/// refused (staff of the practice, the admin on the operator's operations); the
/// processor's event settling a payment that needed the card holder.
async fn exercise_billing(
    app: &TestApp,
    admin: &str,
    org: &str,
    staff: &str,
    allowed: &mut BTreeSet<&'static str>,
    denied: &mut BTreeSet<&'static str>,
) {
    let operator = app.operator_session("operator@example.com").await;
    let billing = |rest: &str| format!("/v1/organisations/{org}/billing{rest}");
    let invoices = |rest: &str| format!("/v1/operator/organisations/{org}/invoices{rest}");
    let call = |id, method, path: String, token: &str, body: Value, status, outcome| Call {
        id,
        method,
        path,
        token: token.to_owned(),
        body,
        status,
        outcome,
    };
    let price = |amount: &str| json!({ "amount": amount, "currency": "EUR" });
    let basic =
        json!({ "code": "basic", "name": "Basic", "price": price("30.00"), "interval": "month" });
    let pro = json!({ "code": "pro", "name": "Pro", "price": price("60.00"), "interval": "month" });
    let revision = json!({ "name": "Basic", "price": price("30.00"), "interval": "month" });
    let rate = json!({ "rate": "20", "name": "TVA" });
    let contact = json!({
        "legal_name": "Harbour Ltd", "contact_name": "Ada", "email": "billing@harbour.example",
        "address_lines": ["1 Quay Street"], "city": "Paris", "postal_code": "75001", "country": "FR",
    });
    let card = |token: &str| json!({ "token": token });
    let plan_code = |code: &str| json!({ "plan_code": code });
    let none = || json!({});
    // Plans, tax, the account, a card that needs its holder, and a subscription
    // whose first charge awaits the processor's event.
    let setup = vec![
        call(
            "createPlan",
            "POST",
            "/v1/operator/plans".to_owned(),
            &operator,
            basic,
            201,
            "allowed",
        ),
        call(
            "createPlan",
            "POST",
            "/v1/operator/plans".to_owned(),
            admin,
            pro.clone(),
            403,
            "denied",
        ),
        call(
            "createPlan",
            "POST",
            "/v1/operator/plans".to_owned(),
            &operator,
            pro,
            201,
            "allowed",
        ),
        call(
            "revisePlan",
            "POST",
            "/v1/operator/plans/basic/versions".to_owned(),
            &operator,
            revision.clone(),
            201,
            "allowed",
        ),
        call(
            "revisePlan",
            "POST",
            "/v1/operator/plans/basic/versions".to_owned(),
            admin,
            revision,
            403,
            "denied",
        ),
        call(
            "setTaxRate",
            "PUT",
            "/v1/operator/tax-rates/FR".to_owned(),
            &operator,
            rate.clone(),
            200,
            "allowed",
        ),
        call(
            "setTaxRate",
            "PUT",
            "/v1/operator/tax-rates/FR".to_owned(),
            admin,
            rate,
            403,
            "denied",
        ),
        call(
            "updateBillingAccount",
            "PUT",
            billing("/account"),
            admin,
            contact.clone(),
            200,
            "allowed",
        ),
        call(
            "updateBillingAccount",
            "PUT",
            billing("/account"),
            staff,
            contact,
            403,
            "denied",
        ),
        call(
            "addPaymentMethod",
            "POST",
            billing("/payment-methods"),
            admin,
            card("tok_visa_action_required"),
            201,
            "allowed",
        ),
        call(
            "addPaymentMethod",
            "POST",
            billing("/payment-methods"),
            staff,
            card("tok_visa"),
            403,
            "denied",
        ),
        call(
            "subscribe",
            "POST",
            billing("/subscription"),
            staff,
            plan_code("basic"),
            403,
            "denied",
        ),
        call(
            "subscribe",
            "POST",
            billing("/subscription"),
            admin,
            plan_code("basic"),
            402,
            "allowed",
        ),
    ];
    for c in &setup {
        exercise(app, c, allowed, denied).await;
    }
    // The processor confirms the charge: a signed event, applied and audited.
    let listed: Value = app
        .client
        .get(app.url(&billing("/invoices")))
        .bearer_auth(admin)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let first = listed["items"][0]["id"]
        .as_str()
        .expect("an invoice")
        .to_owned();
    let detail: Value = app
        .client
        .get(app.url(&billing(&format!("/invoices/{first}"))))
        .bearer_auth(admin)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let payment = uuid::Uuid::parse_str(detail["payments"][0]["id"].as_str().expect("a payment"))
        .expect("a uuid");
    let now = app.state().clock().now().timestamp();
    let event = serde_json::to_vec(
        &json!({ "id": "evt_coverage", "type": "charge.succeeded", "created": now,
        "data": { "object": { "id": format!("ch_sandbox_{}", payment.simple()) } } }),
    )
    .expect("JSON");
    let resp = app
        .client
        .post(app.url("/v1/billing/processor-events"))
        .header("content-type", "application/json")
        .header(
            "Custodia-Processor-Signature",
            app.processor_signature(now, &event),
        )
        .body(event)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let receipt: Value = resp.json().await.expect("JSON");
    assert_eq!(receipt["outcome"], "applied");
    assert!(
        outcomes_of(app, &request_id)
            .await
            .iter()
            .any(|o| o == "allowed"),
        "the applied event left no audit event"
    );
    allowed.insert("receiveProcessorEvent");
    // A card that pays, an ad-hoc invoice to pay, and a draft to issue and void.
    let pays = exercise(
        app,
        &call(
            "addPaymentMethod",
            "POST",
            billing("/payment-methods"),
            admin,
            card("tok_visa"),
            201,
            "allowed",
        ),
        allowed,
        denied,
    )
    .await;
    drop(pays);
    let issue = |finalize: bool| {
        json!({ "currency": "EUR", "finalize": finalize,
        "lines": [{ "description": "Setup", "quantity": 1, "unit_amount": "10.00" }] })
    };
    exercise(
        app,
        &call(
            "createInvoice",
            "POST",
            invoices(""),
            admin,
            issue(true),
            403,
            "denied",
        ),
        allowed,
        denied,
    )
    .await;
    let open = created_id(app, &invoices(""), &operator, &issue(true)).await;
    allowed.insert("createInvoice");
    let draft = created_id(app, &invoices(""), &operator, &issue(false)).await;
    let cards: Value = app
        .client
        .get(app.url(&billing("/payment-methods")))
        .bearer_auth(admin)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let old_card = cards["items"][1]["id"]
        .as_str()
        .expect("the first card")
        .to_owned();
    let refund = json!({ "amount": price("5.00") });
    let rest = vec![
        call(
            "payInvoice",
            "POST",
            billing(&format!("/invoices/{open}/payments")),
            staff,
            none(),
            403,
            "denied",
        ),
        call(
            "payInvoice",
            "POST",
            billing(&format!("/invoices/{open}/payments")),
            admin,
            none(),
            200,
            "allowed",
        ),
        call(
            "refundInvoice",
            "POST",
            invoices(&format!("/{first}/refunds")),
            admin,
            refund.clone(),
            403,
            "denied",
        ),
        call(
            "refundInvoice",
            "POST",
            invoices(&format!("/{first}/refunds")),
            &operator,
            refund,
            201,
            "allowed",
        ),
        call(
            "changePlan",
            "POST",
            billing("/subscription/plan-change"),
            staff,
            plan_code("pro"),
            403,
            "denied",
        ),
        call(
            "changePlan",
            "POST",
            billing("/subscription/plan-change"),
            admin,
            plan_code("pro"),
            200,
            "allowed",
        ),
        call(
            "cancelSubscription",
            "POST",
            billing("/subscription/cancellation"),
            staff,
            none(),
            403,
            "denied",
        ),
        call(
            "cancelSubscription",
            "POST",
            billing("/subscription/cancellation"),
            admin,
            none(),
            200,
            "allowed",
        ),
        call(
            "resumeSubscription",
            "DELETE",
            billing("/subscription/cancellation"),
            staff,
            none(),
            403,
            "denied",
        ),
        call(
            "resumeSubscription",
            "DELETE",
            billing("/subscription/cancellation"),
            admin,
            none(),
            200,
            "allowed",
        ),
        call(
            "finalizeInvoice",
            "POST",
            invoices(&format!("/{draft}/finalization")),
            admin,
            none(),
            403,
            "denied",
        ),
        call(
            "finalizeInvoice",
            "POST",
            invoices(&format!("/{draft}/finalization")),
            &operator,
            none(),
            200,
            "allowed",
        ),
        call(
            "voidInvoice",
            "POST",
            invoices(&format!("/{draft}/void")),
            admin,
            none(),
            403,
            "denied",
        ),
        call(
            "voidInvoice",
            "POST",
            invoices(&format!("/{draft}/void")),
            &operator,
            none(),
            200,
            "allowed",
        ),
        call(
            "removePaymentMethod",
            "DELETE",
            billing(&format!("/payment-methods/{old_card}")),
            staff,
            none(),
            403,
            "denied",
        ),
        call(
            "removePaymentMethod",
            "DELETE",
            billing(&format!("/payment-methods/{old_card}")),
            admin,
            none(),
            204,
            "allowed",
        ),
        call(
            "runBilling",
            "POST",
            "/v1/operator/billing-runs".to_owned(),
            admin,
            none(),
            403,
            "denied",
        ),
        call(
            "runBilling",
            "POST",
            "/v1/operator/billing-runs".to_owned(),
            &operator,
            none(),
            200,
            "allowed",
        ),
    ];
    for c in &rest {
        exercise(app, c, allowed, denied).await;
    }
}

/// Creates an invoice as `operator`, checks its allowed event, returns its id.
async fn created_id(app: &TestApp, path: &str, operator: &str, body: &Value) -> String {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(operator)
        .json(body)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 201);
    let request_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        outcomes_of(app, &request_id)
            .await
            .iter()
            .any(|o| o == "allowed"),
        "createInvoice left no event"
    );
    let invoice: Value = resp.json().await.expect("JSON");
    invoice["id"].as_str().expect("an id").to_owned()
}

/// Who takes part in the rights requests of the coverage test.
struct RightsPeople<'a> {
    admin: &'a str,
    org: &'a str,
    client: &'a str,
    client_id: &'a str,
    minor: &'a str,
    staff: &'a str,
    officer: &'a str,
    agent: &'a str,
}

/// Every step of a rights request, allowed (the client, the practice's provider
/// and privacy officer) and refused (staff of the practice, a person who is not
/// the minor's guardian); last, as the client's erasure is carried out.
async fn exercise_rights(
    app: &TestApp,
    p: &RightsPeople<'_>,
    allowed: &mut BTreeSet<&'static str>,
    denied: &mut BTreeSet<&'static str>,
) {
    let call = |id, method, path: String, token: &str, body: Value, status, outcome| Call {
        id,
        method,
        path,
        token: token.to_owned(),
        body,
        status,
        outcome,
    };
    let client = p.client;
    let c = p.client_id;
    let org = p.org;
    let (status, access) = app
        .call(
            reqwest::Method::POST,
            "/v1/rights-requests",
            Some(client),
            Some(&json!({ "kind": "portability", "regime": "gdpr" })),
        )
        .await;
    assert_eq!(status, 201, "{access}");
    let archive = format!(
        "/v1/rights-requests/{}/archive",
        access["id"].as_str().expect("an id")
    );
    let filed = |(status, body): (u16, Value)| {
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("an id").to_owned()
    };
    let appointment = json!({ "agent_user_id": p.agent, "document_ref": "POA-2026-1", "expires_at": "2099-01-01T00:00:00Z" });
    let (status, agent) = app
        .call(
            reqwest::Method::POST,
            "/v1/me/authorised-agents",
            Some(client),
            Some(&appointment),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let agent = format!(
        "/v1/me/authorised-agents/{}",
        agent["id"].as_str().expect("an id")
    );
    let for_client = format!("/v1/organisations/{org}/clients/{c}/rights-requests");
    let erasure = json!({ "kind": "erasure", "regime": "gdpr" });
    let erase = filed(
        app.call(
            reqwest::Method::POST,
            &for_client,
            Some(p.admin),
            Some(&erasure),
        )
        .await,
    );
    let objection = json!({ "kind": "objection", "regime": "gdpr", "purpose": "marketing_email" });
    let object = filed(
        app.call(
            reqwest::Method::POST,
            &for_client,
            Some(p.admin),
            Some(&objection),
        )
        .await,
    );
    let queue = format!("/v1/organisations/{org}/rights-requests");
    let work = |id: &str, step: &str| format!("/v1/organisations/{org}/rights-requests/{id}{step}");
    let for_minor = json!({ "kind": "access", "regime": "gdpr", "minor_user_id": p.minor });
    let verified = json!({ "outcome": "verified" });
    let denial = json!({ "reason": "We do not send marketing email.", "citation": "GDPR Art. 12(5)", "statement": "There is nothing to object to." });
    let none = || json!({});
    let calls = vec![
        call(
            "fileRightsRequest",
            "POST",
            "/v1/rights-requests".to_owned(),
            client,
            json!({ "kind": "access", "regime": "hipaa" }),
            201,
            "allowed",
        ),
        call(
            "fileRightsRequest",
            "POST",
            "/v1/rights-requests".to_owned(),
            client,
            for_minor,
            404,
            "denied",
        ),
        call(
            "downloadRightsArchive",
            "GET",
            archive.clone(),
            client,
            none(),
            200,
            "allowed",
        ),
        call(
            "downloadRightsArchive",
            "GET",
            archive,
            p.staff,
            none(),
            404,
            "denied",
        ),
        call(
            "appointAgent",
            "POST",
            "/v1/me/authorised-agents".to_owned(),
            client,
            appointment,
            201,
            "allowed",
        ),
        call(
            "revokeAgent",
            "DELETE",
            agent,
            client,
            none(),
            200,
            "allowed",
        ),
        call(
            "fileClientRightsRequest",
            "POST",
            for_client.clone(),
            p.admin,
            json!({ "kind": "access", "regime": "ccpa" }),
            201,
            "allowed",
        ),
        call(
            "fileClientRightsRequest",
            "POST",
            for_client,
            p.staff,
            erasure,
            403,
            "denied",
        ),
        call(
            "getResearchExtract",
            "GET",
            format!("/v1/organisations/{org}/research-extract?purpose=research"),
            p.officer,
            none(),
            200,
            "allowed",
        ),
        call(
            "getResearchExtract",
            "GET",
            format!("/v1/organisations/{org}/research-extract?purpose=research"),
            p.staff,
            none(),
            403,
            "denied",
        ),
        call(
            "listRightsQueue",
            "GET",
            queue.clone(),
            p.officer,
            none(),
            200,
            "allowed",
        ),
        call(
            "listRightsQueue",
            "GET",
            queue,
            p.staff,
            none(),
            403,
            "denied",
        ),
        call(
            "getQueuedRightsRequest",
            "GET",
            work(&erase, ""),
            p.officer,
            none(),
            200,
            "allowed",
        ),
        call(
            "getQueuedRightsRequest",
            "GET",
            work(&erase, ""),
            p.staff,
            none(),
            403,
            "denied",
        ),
        call(
            "verifyRightsRequest",
            "POST",
            work(&erase, "/verification"),
            p.staff,
            verified.clone(),
            403,
            "denied",
        ),
        call(
            "verifyRightsRequest",
            "POST",
            work(&erase, "/verification"),
            p.officer,
            verified,
            200,
            "allowed",
        ),
        call(
            "extendRightsRequest",
            "POST",
            work(&erase, "/extension"),
            p.staff,
            none(),
            403,
            "denied",
        ),
        call(
            "extendRightsRequest",
            "POST",
            work(&erase, "/extension"),
            p.officer,
            none(),
            200,
            "allowed",
        ),
        call(
            "denyRightsRequest",
            "POST",
            work(&object, "/denial"),
            p.staff,
            denial.clone(),
            403,
            "denied",
        ),
        call(
            "denyRightsRequest",
            "POST",
            work(&object, "/denial"),
            p.officer,
            denial,
            200,
            "allowed",
        ),
        call(
            "executeRightsRequest",
            "POST",
            work(&erase, "/execution"),
            p.staff,
            none(),
            403,
            "denied",
        ),
        call(
            "executeRightsRequest",
            "POST",
            work(&erase, "/execution"),
            p.officer,
            none(),
            200,
            "allowed",
        ),
    ];
    for call in &calls {
        exercise(app, call, allowed, denied).await;
    }
}
