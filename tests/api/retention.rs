//! The retention engine end to end (R1): every period a context's data map
//! declares has a sweep, and the server's retention job, seven years on, deletes
//! or anonymises what expired in every context and nothing else, and audits the
//! run.

use kernel::personal_data::{DataMapEntry, Retention};
use kernel::{PersonalData as _, RequestContext};
use reqwest::Method;
use serde_json::{Value, json};
use tests::{TestApp, both_databases, both_databases_with_clock};

/// Every context's data map, as the server composes the contexts.
fn data_maps(app: &TestApp) -> Vec<(&'static str, Vec<DataMapEntry>)> {
    let state = app.state();
    let identity = state.identity().personal_data();
    let clinical = clinical::ClinicalPersonalData::new(state.clinical().repository().clone());
    let consent = consent::ConsentPersonalData::new(state.consent().clone());
    let billing = state.billing_personal_data();
    let audit = state.audit_personal_data();
    vec![
        (identity.context(), identity.describe()),
        (clinical.context(), clinical.describe()),
        (consent.context(), consent.describe()),
        (billing.context(), billing.describe()),
        (audit.context(), audit.describe()),
    ]
}

both_databases!(async fn every_declared_retention_period_has_a_sweep_that_reports_it(app) {
    let maps = data_maps(&app);
    let sweeps = app.state().retention_sweeps();
    let contexts: Vec<&str> = sweeps.iter().map(|s| s.context()).collect();
    assert_eq!(contexts, ["identity", "clinical", "consent", "billing", "audit"]);
    assert_eq!(data_rights::retention::uncovered(&maps, &contexts), vec![]);
    // And each sweep reports exactly its context's periods (a dry run on an empty
    // database reports every category it sweeps, with nothing expired).
    let ctx = RequestContext::system("retention", kernel::Purpose::Oversight, app.state().clock().now());
    for sweep in &sweeps {
        let reported: Vec<_> = sweep
            .sweep(&ctx, ctx.at(), true)
            .await
            .expect("a dry run")
            .into_iter()
            .map(|e| {
                assert_eq!(e.records, 0, "{}: nothing has expired yet", sweep.context());
                e.category
            })
            .collect();
        let (_, map) = maps
            .iter()
            .find(|(c, _)| *c == sweep.context())
            .expect("every sweep's context has a data map");
        let mut declared: Vec<_> = map
            .iter()
            .filter(|e| matches!(e.retention, Retention::Period { .. }))
            .map(|e| e.category)
            .collect();
        declared.dedup();
        let mut sorted = reported.clone();
        sorted.sort_by_key(|c| c.as_str());
        sorted.dedup();
        declared.sort_by_key(|c| c.as_str());
        declared.dedup();
        assert_eq!(sorted, declared, "{}", sweep.context());
    }
    app.stop().await;
});

/// One practice: its owner (org admin and provider), a client with a condition on
/// their chart, and a billing account with an issued invoice.
struct Practice {
    email: String,
    admin: String,
    org: String,
    client: tests::Member,
    invoice: String,
}

async fn practice(app: &TestApp, operator: &str, tag: &str) -> Practice {
    let email = format!("owner-{tag}@example.com");
    let admin = app.signed_in_provider(&email).await;
    let org = app.organisation_of(&admin).await;
    let client = app
        .signed_in_member(&admin, &format!("client-{tag}@example.com"), "client")
        .await;
    let records = format!("/v1/organisations/{org}/clients/{}/records", client.user_id);
    let condition = json!({"kind": "condition", "text": format!("Sciatica {tag}"),
        "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"});
    let (status, body) = app
        .call(Method::POST, &records, Some(&admin), Some(&condition))
        .await;
    assert_eq!(status, 201, "{body}");
    let account = json!({
        "legal_name": "Harbour Physiotherapy Ltd",
        "contact_name": format!("Ada {tag}"),
        "email": format!("billing-{tag}@harbour.example"),
        "address_lines": ["1 Quay Street"],
        "city": "Hamburg",
        "postal_code": "20095",
        "country": "DE",
    });
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/v1/organisations/{org}/billing/account"),
            Some(&admin),
            Some(&account),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let invoice = json!({ "currency": "EUR", "finalize": true,
        "lines": [{ "description": "Setup", "quantity": 1, "unit_amount": "100.00" }] });
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/v1/operator/organisations/{org}/invoices"),
            Some(operator),
            Some(&invoice),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["bill_to"]["contact_name"], format!("Ada {tag}"));
    Practice {
        email,
        admin,
        org,
        client,
        invoice: body["id"].as_str().expect("an id").to_owned(),
    }
}

/// The practice's invoice, as `admin` reads it.
async fn invoice(app: &TestApp, p: &Practice, admin: &str) -> Value {
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/v1/organisations/{}/billing/invoices/{}", p.org, p.invoice),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["invoice"].clone()
}

/// The client's conditions, as `admin` reads them.
async fn chart(app: &TestApp, p: &Practice, admin: &str) -> (u16, Value) {
    app.call(
        Method::GET,
        &format!(
            "/v1/organisations/{}/clients/{}/records/condition",
            p.org, p.client.user_id
        ),
        Some(admin),
        None,
    )
    .await
}

/// The subject behind a member.
async fn subject_of(app: &TestApp, user_id: &str) -> kernel::SubjectId {
    let user = kernel::UserId::from_uuid(user_id.parse().expect("a uuid"));
    let ctx = RequestContext::new(
        kernel::Actor::Member {
            user,
            roles: kernel::RoleSet::EMPTY,
        },
        None,
        kernel::Purpose::SubjectRequest,
        kernel::RequestId::new(),
        kernel::ClientInfo::default(),
        app.state().clock().now(),
    );
    app.state()
        .identity()
        .me(&ctx)
        .await
        .expect("the account")
        .0
        .subject
}

both_databases_with_clock!(
    async fn seven_years_on_the_retention_job_expires_what_is_old_and_nothing_else(app, clock) at "2026-01-05T09:00:00Z" {
        let state = app.state().clone();
        // Then: a practice whose client's care ended that day, and a person who
        // consented and was erased.
        let operator = app.operator_session("operator@example.com").await;
        let old = practice(&app, &operator, "old").await;
        let owner = app.member_id(&old.admin, &old.email).await;
        let today = state.clock().now().date_naive();
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/v1/organisations/{}/clients/{}/care-team/{owner}/ending", old.org, old.client.user_id),
                Some(&old.admin),
                Some(&json!({ "ends_on": today })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let leaver = app.signed_in_member(&old.admin, "leaver@example.com", "client").await;
        let (status, _) = app
            .call(Method::POST, "/v1/me/consents", Some(&leaver.token), Some(&json!({ "action": "grant", "purpose": "research" })))
            .await;
        assert_eq!(status, 201);
        let leaver_subject = subject_of(&app, &leaver.user_id).await;
        let rights = RequestContext::system("rights", kernel::Purpose::SubjectRequest, state.clock().now());
        let port = consent::ConsentPersonalData::new(state.consent().clone());
        let leaver_events = port
            .export(&rights, leaver_subject)
            .await
            .expect("exports")
            .iter()
            .filter(|r| r.resource.kind == "consent_event")
            .count() as u64;
        assert!(leaver_events >= 2, "the attestation and the grant");
        port.erase(&rights, leaver_subject).await.expect("erases");
        assert_eq!(app.count_rows("consent_erasures").await, 1);
        let old_security_events = app.count_rows("security_events").await;
        let old_records = app.count_rows("clinical_records").await;
        assert!(old_records >= 1);

        // Seven years (2,557 days) and a month later: a new practice, the same work.
        clock.advance(chrono::TimeDelta::days(2_557 + 30));
        let operator = app.operator_session("operator@example.com").await;
        let new = practice(&app, &operator, "new").await;
        let old_admin = app.sign_in(&old.email).await;
        let security_events = app.count_rows("security_events").await;
        let consent_events = app.count_rows("consent_events").await;
        let records = app.count_rows("clinical_records").await;
        let issued = invoice(&app, &old, &old_admin).await;
        assert_eq!(issued["bill_to"]["contact_name"], "Ada old");

        server::jobs::sweep(&state).await;

        // Security events: the old ones only.
        assert_eq!(app.count_rows("security_events").await, security_events - old_security_events);
        // Billing: the old invoice is kept without the person; the new one as issued.
        let anonymised = invoice(&app, &old, &old_admin).await;
        assert!(anonymised["bill_to"].is_null(), "{anonymised}");
        for kept in ["number", "lines", "total", "status", "created_at"] {
            assert_eq!(anonymised[kept], issued[kept], "{kept}");
        }
        assert_eq!(invoice(&app, &new, &new.admin).await["bill_to"]["contact_name"], "Ada new");
        // Clinical: the dormant chart is gone, the new one is read as before.
        assert_eq!(app.count_rows("clinical_records").await, records - old_records);
        let (status, page) = chart(&app, &new, &new.admin).await;
        assert_eq!(status, 200);
        assert!(page.to_string().contains("Sciatica new"), "{page}");
        // Consent: the erased person's pseudonymised chain is gone; the rest verify.
        assert_eq!(app.count_rows("consent_erasures").await, 0);
        assert_eq!(app.count_rows("consent_events").await, consent_events - leaver_events);
        let (url, data_dir) = app.data();
        let config = server::Config::try_from_args([
            "custodia",
            "--database-url", &url,
            "--data-dir", data_dir.to_str().expect("a UTF-8 path"),
        ])
        .expect("a valid configuration");
        let ledger = server::consent_for_verification(&config).await.expect("opens");
        let ledger = consent::service::verify_repository(ledger.as_ref()).await.expect("reads");
        assert!(ledger.is_intact(), "{ledger:?}");
        // Audit: events past six years are blanked, and the chains still verify.
        let events = state
            .audit()
            .repository()
            .events(state.audit().log().chain(), 0, u32::MAX)
            .await
            .expect("the log reads");
        let report = audit::verify::verify_repository(state.audit().repository().as_ref(), state.audit().trusted_keys())
            .await
            .expect("the log reads");
        assert!(report.is_intact(), "{report:?}");
        assert!(report.pruned > 0, "{report:?}");
        // The run itself is audited once, as the system, about no one.
        let runs: Vec<_> = events
            .iter()
            .filter(|e| e.resource_kind == server::jobs::RETENTION_RUN)
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].action, "erase");
        assert_eq!(runs[0].purpose, "oversight");
        assert!(runs[0].subject.is_none() && runs[0].organisation.is_none());
        assert_eq!(runs[0].resource_id, uuid::Uuid::nil());

        // A second run finds nothing more, and is audited too.
        let before = (app.count_rows("security_events").await, app.count_rows("clinical_records").await);
        server::jobs::sweep(&state).await;
        assert_eq!(before, (app.count_rows("security_events").await, app.count_rows("clinical_records").await));
        app.stop().await;
    }
);
