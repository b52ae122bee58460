//! Authorisation coverage: every operation in `docs/openapi.json` is either public
//! by design (listed here) or is proven to answer 401 without a session, and to
//! refuse a caller of the wrong role or practice (403, or 404 where existence must
//! not leak). A new operation fails this test until it is covered.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tests::{TestApp, both_databases};

/// Operations anyone may call, by design. The payment processor's webhook has no
/// session: its signature authenticates it (`tests::billing`: a missing, wrong or
/// stale signature is 400 and changes nothing). Anyone, signed in or not, may
/// send a privacy question or security concern (an invalid session is taken as
/// none) and read the statements every rights answer carries.
const PUBLIC: [&str; 17] = [
    "receiveProcessorEvent",
    "listConsentPurposes",
    "listSubProcessors",
    "listPolicyVersions",
    "getHealth",
    "getReadiness",
    "createPractice",
    "verifyEmail",
    "requestEmailVerification",
    "createSession",
    "createOperatorSession",
    "activateAccount",
    "confirmEmailChange",
    "requestPasswordReset",
    "resetPassword",
    "reportPrivacyCase",
    "getPrivacyStatements",
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
/// that another person's resource is invisible (404). Rights requests are filed
/// by the caller for themselves, a minor they are the guardian of, or a person
/// who appointed them: anyone else is 404, audited
/// (`tests::audit_coverage`, `tests::data_rights_smoke`).
const OWN_ACCOUNT: [&str; 33] = [
    "getMyConsents",
    "changeMyConsent",
    "getMyConsentHistory",
    "getMyCommunicationPreferences",
    "updateMyCommunicationPreferences",
    "createMyAuthorisation",
    "listMyAuthorisations",
    "revokeMyAuthorisation",
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
    "listMyInvitations",
    "acceptInvitation",
    "getMyAccessReport",
    "listMyDisclosures",
    "fileRightsRequest",
    "listRightsRequests",
    "getRightsRequest",
    "downloadRightsArchive",
    "appointAgent",
    "listAgents",
    "revokeAgent",
    "listAuthorities",
    "listMyPrivacyCases",
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

/// Operations on a practice named in the path, for its administrators only: another
/// practice's administrator gets 404 (existence must not leak), a member without
/// `org_admin`, an API key of another role, and the platform operator get 403.
const PRACTICE_ADMIN: [&str; 3] = ["createApiKey", "listApiKeys", "revokeApiKey"];

/// The audit log's oversight operations: a role that may not (staff, clients,
/// providers for verification) gets 403 in its own practice, and another practice's
/// caller 404 for anything naming a practice, a client or an event
/// (`tests::audit::an_auditor_verifies_the_log_and_no_one_else_may`,
/// `an_auditor_checks_an_inclusion_proof_with_nothing_but_the_proof`,
/// `disclosures_are_recorded_and_accounted_to_the_subject_and_privacy_officer`,
/// `repeated_denials_and_broad_access_raise_alerts_for_the_auditor`,
/// `tests::audit_coverage`).
const AUDIT_OVERSIGHT: [&str; 8] = [
    "exportConsentLedger",
    "verifyConsentLedger",
    "verifyAuditLog",
    "listAccessAlerts",
    "getAuditInclusionProof",
    "listAuditEvents",
    "listClientDisclosures",
    "recordDisclosure",
];

/// Consent on someone else's behalf, or a practice's: a guardian alone acts for
/// their ward (anyone else 403, audited:
/// `tests::consent::a_guardian_decides_for_a_minor_and_anyone_else_is_refused_and_audited`);
/// a provider of the client's practice attests and checks (another practice 404, a
/// client 403: `a_provider_attests_then_checks_consent_without_seeing_the_evidence`,
/// `consent_operations_refuse_the_wrong_practice_and_role`); a practice's members
/// read its settings and its admin changes them; only the platform operator
/// publishes a policy (`policy_versions_are_public_and_a_material_change_notifies_people`).
const CONSENT: [&str; 7] = [
    "getWardConsents",
    "changeWardConsent",
    "attestServiceAuthorisation",
    "checkClientConsent",
    "getConsentSettings",
    "updateConsentSettings",
    "publishPolicyVersion",
];

/// Clinical records: a client's data is reached by the client, their care team,
/// the practice's admins and break-glass holders, and by no one else: another
/// member of the practice gets 404 as for an unknown client
/// (`tests::clinical::outsiders_get_404_exactly_as_for_an_unknown_client`), and so
/// does another practice's caller for every operation naming the practice
/// (`clinical_operations_refuse_other_practices` below); practice-wide lists refuse
/// roles without a clinical duty with 403; only the platform operator adds to the
/// shared exercise library.
const CLINICAL: [&str; 21] = [
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
    "addExercise",
    "listExercises",
    "addSharedExercise",
];

/// The platform operator's operations: every member (and API key) gets 403.
const OPERATOR: [&str; 2] = ["listPractices", "endOperatorSession"];

/// A practice's billing: its admins (and, reading, the platform operator) only;
/// its providers read the plan status; clients, staff and providers otherwise get
/// 403; another practice's caller 404
/// (`billing_operations_refuse_other_practices_and_roles` below,
/// `tests::billing::billing_answers_each_role_as_the_contract_says`).
const BILLING_PRACTICE: [&str; 14] = [
    "getBillingAccount",
    "updateBillingAccount",
    "addPaymentMethod",
    "listPaymentMethods",
    "removePaymentMethod",
    "subscribe",
    "changePlan",
    "cancelSubscription",
    "resumeSubscription",
    "getSubscription",
    "getPlanStatus",
    "listInvoices",
    "getInvoice",
    "payInvoice",
];

/// The platform operator's billing (plans, tax rates, ad-hoc invoices, refunds,
/// billing runs): every member, even a practice's admin, and every API key gets
/// 403.
const BILLING_OPERATOR: [&str; 9] = [
    "createPlan",
    "revisePlan",
    "setTaxRate",
    "listTaxRates",
    "createInvoice",
    "finalizeInvoice",
    "voidInvoice",
    "refundInvoice",
    "runBilling",
];

/// Rights requests of a practice's clients: its providers (and admins, privacy
/// officer) file for a client; its privacy officer alone works the queue. A
/// member without the role gets 403 in its own practice, another practice's
/// caller 404 (`rights_operations_refuse_other_practices_and_roles` below).
const RIGHTS_PRACTICE: [&str; 8] = [
    "fileClientRightsRequest",
    "listRightsQueue",
    "getQueuedRightsRequest",
    "verifyRightsRequest",
    "extendRightsRequest",
    "denyRightsRequest",
    "executeRightsRequest",
    "getResearchExtract",
];

/// Privacy and security cases are worked by the platform's office (the
/// operator): every member and API key gets 403; a case is read by its
/// reporter or the office, anyone else gets 404
/// (`privacy_cases_are_worked_by_the_office_alone` below).
const PRIVACY_OFFICE: [&str; 3] = [
    "listOpenPrivacyCases",
    "advancePrivacyCase",
    "getPrivacyCase",
];

/// The plans on offer: the platform operator and practice admins read them;
/// other members get 403.
const BILLING_PLANS: [&str; 2] = ["listPlans", "getPlan"];

#[test]
fn every_operation_is_classified() {
    let classified: BTreeSet<&str> = PUBLIC
        .iter()
        .chain(OWN_ACCOUNT.iter())
        .chain(PRACTICE_PEOPLE.iter())
        .chain(OWN_CREDENTIALS.iter().map(|(id, _, _)| id))
        .chain(ORGANISATION_SETTINGS.iter())
        .chain(PRACTICE_ADMIN.iter())
        .chain(OPERATOR.iter())
        .chain(AUDIT_OVERSIGHT.iter())
        .chain(CONSENT.iter())
        .chain(CLINICAL.iter())
        .chain(BILLING_PRACTICE.iter())
        .chain(BILLING_OPERATOR.iter())
        .chain(BILLING_PLANS.iter())
        .chain(RIGHTS_PRACTICE.iter())
        .chain(PRIVACY_OFFICE.iter())
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

both_databases!(async fn only_the_invited_person_sees_and_accepts_their_invitation(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let bob = app.signed_in_provider("bob@example.com").await;
    let bobs_practice = app.organisation_of(&bob).await;
    let resp = app.client.post(app.url(&format!("/v1/organisations/{bobs_practice}/members")))
        .bearer_auth(&bob).json(&json!({ "name": "Alice", "email": "alice@example.com", "role": "auditor" }))
        .send().await.expect("answers");
    assert_eq!(resp.status(), 202);
    let mine: Value = app.client.get(app.url("/v1/me/invitations")).bearer_auth(&alice).send().await.expect("answers").json().await.expect("JSON");
    let invitation = mine["items"][0]["id"].as_str().expect("an invitation").to_owned();
    // Bob (who sent it) neither lists nor accepts it: 404, as for an unknown id.
    let bobs: Value = app.client.get(app.url("/v1/me/invitations")).bearer_auth(&bob).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(bobs["items"], json!([]));
    let resp = call(&app, "POST", &format!("/v1/me/invitations/{invitation}/acceptance"), Some(&bob)).await;
    assert_eq!(resp.status(), 404);
    let resp = call(&app, "POST", &format!("/v1/me/invitations/{}/acceptance", uuid::Uuid::now_v7()), Some(&alice)).await;
    assert_eq!(resp.status(), 404);
    // Still pending for Alice, who alone accepts it.
    let resp = call(&app, "POST", &format!("/v1/me/invitations/{invitation}/acceptance"), Some(&alice)).await;
    assert_eq!(resp.status(), 204);
    app.stop().await;
});

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
            json!({ "name": "Someone New", "email": "someone@example.com", "date_of_birth": "1990-01-01", "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" } }),
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

/// The concrete path of a practice-admin operation on `org`.
fn practice_path(template: &str, org: &str) -> String {
    concrete(&template.replace("{organisation_id}", org))
}

/// `call` with a schema-valid body, so only authorisation can refuse it.
async fn call_valid(app: &TestApp, method: &str, path: &str, token: &str) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    app.client
        .request(method, app.url(path))
        .json(&json!({ "name": "integration", "role": "staff" }))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
}

both_databases!(async fn practice_admin_operations_refuse_other_practices_roles_and_operators(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let alices_org = app.organisation_of(&alice).await;
    let bob = app.signed_in_provider("bob@example.com").await;
    let bobs_org = app.organisation_of(&bob).await;
    // An auditor key of Alice's practice.
    let created: Value = app.client.post(app.url(&format!("/v1/organisations/{alices_org}/api-keys")))
        .bearer_auth(&alice).json(&json!({ "name": "audit", "role": "auditor" }))
        .send().await.expect("answers").json().await.expect("JSON");
    let auditor_key = created["secret"].as_str().expect("a secret").to_owned();
    app.signed_in_provider("operator@example.com").await;
    app.grant_operator("operator@example.com").await;
    let resp = app.client.post(app.url("/v1/operator/sessions"))
        .json(&json!({ "email": "operator@example.com", "password": tests::TEST_PASSWORD }))
        .send().await.expect("answers");
    let operator_session: Value = resp.json().await.expect("JSON");
    let operator_session = operator_session["token"].as_str().expect("a token").to_owned();
    let mut checked = 0;
    for (id, method, path) in operations() {
        if !PRACTICE_ADMIN.contains(&id.as_str()) {
            continue;
        }
        // Bob, an administrator elsewhere: Alice's practice does not exist for him.
        let resp = call_valid(&app, &method, &practice_path(&path, &alices_org), &bob).await;
        assert_eq!(resp.status(), 404, "{id} by another practice's admin");
        // Alice's auditor key: the wrong role.
        let resp = call_valid(&app, &method, &practice_path(&path, &alices_org), &auditor_key).await;
        assert_eq!(resp.status(), 403, "{id} by an auditor key");
        // The operator is no member of any practice.
        let resp = call_valid(&app, &method, &practice_path(&path, &bobs_org), &operator_session).await;
        assert_eq!(resp.status(), 403, "{id} by the platform operator");
        checked += 1;
    }
    assert_eq!(checked, PRACTICE_ADMIN.len());
    // A member without org_admin: Bob loses the role (by hand until the members
    // API exists) and signs in again.
    app.execute("DELETE FROM memberships WHERE role = 'org_admin'").await;
    let resp = app.client.post(app.url("/v1/sessions"))
        .json(&json!({ "email": "bob@example.com", "password": tests::TEST_PASSWORD }))
        .send().await.expect("answers");
    let provider: Value = resp.json().await.expect("JSON");
    let provider = provider["token"].as_str().expect("a token").to_owned();
    for (id, method, path) in operations() {
        if PRACTICE_ADMIN.contains(&id.as_str()) {
            let resp = call_valid(&app, &method, &practice_path(&path, &bobs_org), &provider).await;
            assert_eq!(resp.status(), 403, "{id} by a provider");
        }
    }
    app.stop().await;
});

both_databases!(async fn operator_operations_refuse_members_and_keys(app) {
    let alice = app.signed_in_provider("alice@example.com").await;
    let org = app.organisation_of(&alice).await;
    let created: Value = app.client.post(app.url(&format!("/v1/organisations/{org}/api-keys")))
        .bearer_auth(&alice).json(&json!({ "name": "admin key", "role": "org_admin" }))
        .send().await.expect("answers").json().await.expect("JSON");
    let admin_key = created["secret"].as_str().expect("a secret").to_owned();
    let mut checked = 0;
    for (id, method, path) in operations() {
        if !OPERATOR.contains(&id.as_str()) {
            continue;
        }
        for token in [&alice, &admin_key] {
            let resp = call(&app, &method, &concrete(&path), Some(token)).await;
            assert_eq!(resp.status(), 403, "{id} by a member or key");
        }
        checked += 1;
    }
    assert_eq!(checked, OPERATOR.len());
    app.stop().await;
});

both_databases!(async fn an_api_key_reaches_no_ones_own_account(app) {
    // A key acts for its practice, not as the person who created it: every
    // operation on "my own account" refuses it, so none can reach its creator's.
    let alice = app.signed_in_provider("alice@example.com").await;
    let org = app.organisation_of(&alice).await;
    let created: Value = app.client.post(app.url(&format!("/v1/organisations/{org}/api-keys")))
        .bearer_auth(&alice).json(&json!({ "name": "admin key", "role": "org_admin" }))
        .send().await.expect("answers").json().await.expect("JSON");
    let key = created["secret"].as_str().expect("a secret").to_owned();
    let own: Vec<&str> = OWN_ACCOUNT.iter().copied().chain(OWN_CREDENTIALS.iter().map(|(id, _, _)| *id)).collect();
    let mut checked = 0;
    for (id, method, path) in operations() {
        if !own.contains(&id.as_str()) {
            continue;
        }
        // One body valid for each of them, so only authorisation can refuse it.
        let body = json!({
            "password": tests::TEST_PASSWORD, "current_password": tests::TEST_PASSWORD,
            "name": "Key Holder", "new_password": "a brand new passphrase",
            "new_email": "key-holder@example.com", "code": "123456",
            "language": "en", "time_zone": "UTC", "units": "metric", "theme": "system",
            "exercise_reminders": true,
            "action": "object", "purpose": "analytics",
            "information": "i", "disclosers": "d", "recipients": "r", "purpose_statement": "p",
            "expiry": {}, "signer": "s", "signed_at": "2026-01-01T00:00:00Z",
            "revocation_statement": "r", "conditioning_statement": "c", "redisclosure_statement": "r",
            "kind": "access", "regime": "gdpr",
            "agent_user_id": uuid::Uuid::now_v7(), "document_ref": "POA-1",
            "expires_at": "2099-01-01T00:00:00Z",
        });
        let resp = call_with(&app, &method, &concrete(&path), &key, &body).await;
        assert_eq!(resp.status(), 403, "{id} with an API key");
        checked += 1;
    }
    assert_eq!(checked, own.len());
    // Alice's account is as it was.
    let me: Value = app.client.get(app.url("/v1/me")).bearer_auth(&alice).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(me["user"]["name"], "Test Provider");
    assert_eq!(me["user"]["status"], "active");
    app.stop().await;
});

both_databases!(async fn consent_operations_refuse_the_wrong_practice_and_role(app) {
    let admin = app.signed_in_provider("owner-c@example.com").await;
    let org = app.organisation_of(&admin).await;
    let client = app.signed_in_member(&admin, "client-c@example.com", "client").await;
    let staff = app.signed_in_member(&admin, "staff-c@example.com", "staff").await;
    let other_admin = app.signed_in_provider("other-c@example.com").await;
    let attest = format!("/v1/organisations/{org}/clients/{}/service-authorisation", client.user_id);
    let body = json!({ "obtained_at": "2026-01-05T10:00:00Z", "channel": "paper" });
    for caller in [&staff.token, &client.token] {
        assert_eq!(call_with(&app, "POST", &attest, caller, &body).await.status(), 403);
    }
    assert_eq!(call_with(&app, "POST", &attest, &other_admin, &body).await.status(), 404);
    let settings = format!("/v1/organisations/{org}/consent-settings");
    let change = json!({ "marketing_mode": "opt_out", "opt_in_required": [], "regime": "hipaa" });
    assert_eq!(call_with(&app, "GET", &settings, &other_admin, &json!({})).await.status(), 404);
    assert_eq!(call_with(&app, "PUT", &settings, &other_admin, &change).await.status(), 404);
    assert_eq!(call_with(&app, "GET", &settings, &client.token, &json!({})).await.status(), 403);
    assert_eq!(call_with(&app, "PUT", &settings, &staff.token, &change).await.status(), 403);
    assert_eq!(call_with(&app, "GET", &settings, &staff.token, &json!({})).await.status(), 403);
    // Nothing changed: no attestation, default settings.
    let view: Value = app.client.get(app.url(&settings)).bearer_auth(&admin).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(view["marketing_mode"], "opt_in");
    let history: Value = app.client.get(app.url("/v1/me/consents/history")).bearer_auth(&client.token).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(history["items"].as_array().expect("items").len(), 1, "only the attestation made with the account: {history}");
    app.stop().await;
});

/// A schema-valid body for each clinical operation that takes one, so the refusal
/// tested is the authorisation, not the input.
fn clinical_body(id: &str, provider: &str) -> Value {
    let condition = json!({"kind": "condition", "text": "Back pain", "status": "active"});
    let exercise =
        json!({"name": "Bridge", "instructions": "Lift the hips.", "body_region": "lumbar spine"});
    match id {
        "createRecord" => condition,
        "updateRecord" => json!({"expected_version": 1, "content": condition}),
        "addCareTeamMember" => json!({"provider_id": provider}),
        "breakGlass" => json!({"reason": "Emergency", "minutes": 5}),
        "denyAmendment" => json!({"reason": "No"}),
        "attachDisagreement" => json!({"statement": "I disagree"}),
        "bookAppointment" => json!({"provider_id": provider, "starts_at": "2026-12-01T10:00:00Z",
            "ends_at": "2026-12-01T11:00:00Z", "time_zone": "UTC"}),
        "updateAppointmentStatus" => json!({"status": "cancelled", "expected_version": 1}),
        "addExercise" | "addSharedExercise" => exercise,
        _ => json!({}),
    }
}

both_databases!(async fn clinical_operations_refuse_other_practices(app) {
    let admin = app.signed_in_provider("owner-k@example.com").await;
    let org = app.organisation_of(&admin).await;
    let client = app.signed_in_member(&admin, "client-k@example.com", "client").await;
    let provider = app.member_id(&admin, "owner-k@example.com").await;
    let other_admin = app.signed_in_provider("other-k@example.com").await;
    let records = app.count_rows("clinical_records").await;
    for (id, method, template) in operations() {
        if !CLINICAL.contains(&id.as_str()) {
            continue;
        }
        let path = template
            .replace("{organisation_id}", &org)
            .replace("{client_id}", &client.user_id)
            .replace("{provider_id}", &provider)
            .replace("{kind}", "condition");
        let path = concrete(&path);
        let body = clinical_body(&id, &provider);
        let status = call_with(&app, &method, &path, &other_admin, &body).await.status();
        let expected = if id == "addSharedExercise" { 403 } else { 404 };
        assert_eq!(status, expected, "{id} {method} {path}");
        if id == "addSharedExercise" {
            assert_eq!(call_with(&app, &method, &path, &admin, &body).await.status(), 403, "a member is not the operator");
        }
    }
    assert_eq!(app.count_rows("clinical_records").await, records, "nothing was written");
    app.stop().await;
});

/// A schema-valid body for each billing operation that takes one, so the refusal
/// tested is the authorisation, not the input.
fn billing_body(id: &str) -> Value {
    let price = json!({ "amount": "30.00", "currency": "EUR" });
    match id {
        "updateBillingAccount" => json!({
            "legal_name": "Harbour Ltd", "contact_name": "Ada", "email": "billing@harbour.example",
            "address_lines": ["1 Quay Street"], "city": "Hamburg", "postal_code": "20095", "country": "DE",
        }),
        "addPaymentMethod" => json!({ "token": "tok_visa" }),
        "subscribe" | "changePlan" => json!({ "plan_code": "basic" }),
        "createPlan" => {
            json!({ "code": "other", "name": "Other", "price": price, "interval": "month" })
        }
        "revisePlan" => json!({ "name": "Basic", "price": price, "interval": "month" }),
        "setTaxRate" => json!({ "rate": "19", "name": "VAT" }),
        "createInvoice" => {
            json!({ "currency": "EUR", "lines": [{ "description": "Setup", "quantity": 1, "unit_amount": "10.00" }] })
        }
        "refundInvoice" => json!({ "amount": price }),
        _ => json!({}),
    }
}

both_databases!(async fn billing_operations_refuse_other_practices_and_roles(app) {
    let admin = app.signed_in_provider("owner-b@example.com").await;
    let org = app.organisation_of(&admin).await;
    let provider = app.signed_in_member(&admin, "provider-b@example.com", "provider").await;
    let client = app.signed_in_member(&admin, "client-b@example.com", "client").await;
    let staff = app.signed_in_member(&admin, "staff-b@example.com", "staff").await;
    let other_admin = app.signed_in_provider("other-b@example.com").await;
    let created: Value = app.client.post(app.url(&format!("/v1/organisations/{org}/api-keys")))
        .bearer_auth(&admin).json(&json!({ "name": "admin key", "role": "org_admin" }))
        .send().await.expect("answers").json().await.expect("JSON");
    let admin_key = created["secret"].as_str().expect("a secret").to_owned();
    let operator = app.operator_session("operator-b@example.com").await;
    let plan = json!({ "code": "basic", "name": "Basic", "price": { "amount": "30.00", "currency": "EUR" }, "interval": "month" });
    assert_eq!(call_with(&app, "POST", "/v1/operator/plans", &operator, &plan).await.status(), 201);
    let mut checked = 0;
    for (id, method, template) in operations() {
        let path = concrete(&template.replace("{organisation_id}", &org).replace("{plan_code}", "basic").replace("{country}", "DE"));
        let body = billing_body(&id);
        if BILLING_PRACTICE.contains(&id.as_str()) {
            let status = call_with(&app, &method, &path, &other_admin, &body).await.status();
            assert_eq!(status, 404, "{id} by another practice's admin");
            for (who, caller) in [("a client", &client.token), ("staff", &staff.token)] {
                let status = call_with(&app, &method, &path, caller, &body).await.status();
                assert_eq!(status, 403, "{id} by {who}");
            }
            let status = call_with(&app, &method, &path, &provider.token, &body).await.status();
            let expected = if id == "getPlanStatus" { 200 } else { 403 };
            assert_eq!(status, expected, "{id} by a provider");
            checked += 1;
        } else if BILLING_OPERATOR.contains(&id.as_str()) {
            for (who, caller) in [("a practice admin", &admin), ("an admin key", &admin_key), ("a provider", &provider.token)] {
                let status = call_with(&app, &method, &path, caller, &body).await.status();
                assert_eq!(status, 403, "{id} by {who}");
            }
            checked += 1;
        } else if BILLING_PLANS.contains(&id.as_str()) {
            for (who, caller) in [("a provider", &provider.token), ("a client", &client.token), ("staff", &staff.token)] {
                let status = call_with(&app, &method, &path, caller, &body).await.status();
                assert_eq!(status, 403, "{id} by {who}");
            }
            assert_eq!(call_with(&app, &method, &path, &admin, &body).await.status(), 200, "{id} by a practice admin");
            checked += 1;
        }
    }
    assert_eq!(checked, BILLING_PRACTICE.len() + BILLING_OPERATOR.len() + BILLING_PLANS.len());
    // Nothing the refused calls asked for was stored.
    for table in ["billing_accounts", "billing_payment_methods", "billing_subscriptions", "billing_invoices", "billing_tax_rates", "billing_refunds"] {
        assert_eq!(app.count_rows(table).await, 0, "{table}");
    }
    assert_eq!(app.count_rows("billing_plans").await, 1);
    app.stop().await;
});

/// A schema-valid body for each rights operation of a practice that takes one.
fn rights_body(id: &str) -> Value {
    match id {
        "fileClientRightsRequest" => json!({ "kind": "access", "regime": "gdpr" }),
        "verifyRightsRequest" => json!({ "outcome": "verified" }),
        "denyRightsRequest" => {
            json!({ "reason": "No", "citation": "GDPR Art. 12(5)", "statement": "Manifestly unfounded." })
        }
        _ => json!({}),
    }
}

both_databases!(async fn rights_operations_refuse_other_practices_and_roles(app) {
    let admin = app.signed_in_provider("owner-r@example.com").await;
    let org = app.organisation_of(&admin).await;
    let client = app.signed_in_member(&admin, "client-r@example.com", "client").await;
    let staff = app.signed_in_member(&admin, "staff-r@example.com", "staff").await;
    let provider = app.signed_in_member(&admin, "provider-r@example.com", "provider").await;
    let officer = app.signed_in_member(&admin, "po-r@example.com", "privacy_officer").await;
    let other_admin = app.signed_in_provider("other-r@example.com").await;
    // A request waiting for the officer, filed by the practice's provider.
    let filed = format!("/v1/organisations/{org}/clients/{}/rights-requests", client.user_id);
    let resp = call_with(&app, "POST", &filed, &provider.token, &json!({ "kind": "erasure", "regime": "gdpr" })).await;
    assert_eq!(resp.status(), 201);
    let request: Value = resp.json().await.expect("JSON");
    assert_eq!(request["status"], "awaiting_verification");
    let request_id = request["id"].as_str().expect("an id").to_owned();
    let mut checked = 0;
    for (id, method, template) in operations() {
        if !RIGHTS_PRACTICE.contains(&id.as_str()) {
            continue;
        }
        let path = template
            .replace("{organisation_id}", &org)
            .replace("{user_id}", &client.user_id)
            .replace("{id}", &request_id);
        let path = if id == "getResearchExtract" { format!("{path}?purpose=research") } else { path };
        let body = rights_body(&id);
        // Another practice's admin: the practice does not exist for them.
        let status = call_with(&app, &method, &path, &other_admin, &body).await.status();
        assert_eq!(status, 404, "{id} by another practice's admin");
        // A client and staff: the wrong role.
        for (who, caller) in [("a client", &client.token), ("staff", &staff.token)] {
            let status = call_with(&app, &method, &path, caller, &body).await.status();
            assert_eq!(status, 403, "{id} by {who}");
        }
        // A provider files, and does not work the queue.
        if id != "fileClientRightsRequest" {
            let status = call_with(&app, &method, &path, &provider.token, &body).await.status();
            assert_eq!(status, 403, "{id} by a provider");
        }
        checked += 1;
    }
    assert_eq!(checked, RIGHTS_PRACTICE.len());
    // The refused calls changed nothing: the request still waits, alone.
    let queue: Value = app.client.get(app.url(&format!("/v1/organisations/{org}/rights-requests")))
        .bearer_auth(&officer.token).send().await.expect("answers").json().await.expect("JSON");
    let items = queue["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{queue}");
    assert_eq!(items[0]["status"], "awaiting_verification");
    app.stop().await;
});

both_databases!(async fn privacy_cases_are_worked_by_the_office_alone(app) {
    let admin = app.signed_in_provider("owner-p@example.com").await;
    let org = app.organisation_of(&admin).await;
    let client = app.signed_in_member(&admin, "client-p@example.com", "client").await;
    let staff = app.signed_in_member(&admin, "staff-p@example.com", "staff").await;
    let created: Value = app.client.post(app.url(&format!("/v1/organisations/{org}/api-keys")))
        .bearer_auth(&admin).json(&json!({ "name": "admin key", "role": "org_admin" }))
        .send().await.expect("answers").json().await.expect("JSON");
    let admin_key = created["secret"].as_str().expect("a secret").to_owned();
    let operator = app.operator_session("operator-p@example.com").await;
    let question = json!({ "kind": "privacy_question", "message": "Who sees my notes?" });
    let resp = call_with(&app, "POST", "/v1/privacy-cases", &client.token, &question).await;
    assert_eq!(resp.status(), 201);
    let case: Value = resp.json().await.expect("JSON");
    let case_id = case["id"].as_str().expect("an id").to_owned();
    let advance = json!({ "status": "in_progress" });
    let mut checked = 0;
    for (id, method, template) in operations() {
        if !PRIVACY_OFFICE.contains(&id.as_str()) {
            continue;
        }
        let path = template.replace("{id}", &case_id);
        let body = if id == "advancePrivacyCase" { advance.clone() } else { json!({}) };
        // Someone else's case does not exist for a member; the office's work is
        // refused to every member and key.
        let expected = if id == "getPrivacyCase" { 404 } else { 403 };
        for (who, caller) in [("staff", &staff.token), ("a practice admin", &admin), ("an admin key", &admin_key)] {
            let status = call_with(&app, &method, &path, caller, &body).await.status();
            assert_eq!(status, expected, "{id} by {who}");
        }
        checked += 1;
    }
    assert_eq!(checked, PRIVACY_OFFICE.len());
    // The reporter reads their own; the office reads and works it.
    let mine = format!("/v1/privacy-cases/{case_id}");
    assert_eq!(call_with(&app, "GET", &mine, &client.token, &json!({})).await.status(), 200);
    let open: Value = app.client.get(app.url("/v1/operator/privacy-cases")).bearer_auth(&operator)
        .send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(open["items"][0]["status"], "open", "nothing changed: {open}");
    let resp = call_with(&app, "POST", &format!("/v1/operator/privacy-cases/{case_id}/status"), &operator, &advance).await;
    assert_eq!(resp.status(), 200);
    // Anyone may send one without a session, with an address to answer.
    let anonymous = json!({ "kind": "security_concern", "message": "Someone signed in as me", "reply_to": "me@example.org" });
    let resp = app.client.post(app.url("/v1/privacy-cases")).json(&anonymous).send().await.expect("answers");
    assert_eq!(resp.status(), 201);
    let resp = app.client.post(app.url("/v1/privacy-cases")).json(&question).send().await.expect("answers");
    assert_eq!(resp.status(), 422, "no address to answer");
    app.stop().await;
});
