//! Clinical records over HTTP: the care team keeps a client's chart; the client
//! reads it, logs adherence, messages and asks for amendments; anyone else gets
//! 404 exactly as for an unknown id, unless they break the glass; every access is
//! audited and every byte of health data is sealed at rest.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Member, TestApp, both_databases, both_databases_with_clock};

/// A practice: its admin (also a provider, who created the client and so is on
/// their care team), a second provider not on it, an auditor and a client.
struct Practice {
    admin: String,
    organisation: String,
    outsider: Member,
    auditor: Member,
    client: Member,
}

impl Practice {
    fn client_path(&self, rest: &str) -> String {
        format!(
            "/v1/organisations/{}/clients/{}{rest}",
            self.organisation, self.client.user_id
        )
    }
}

async fn practice(app: &TestApp, tag: &str) -> Practice {
    let admin = app
        .signed_in_provider(&format!("admin-{tag}@example.com"))
        .await;
    let organisation = app.organisation_of(&admin).await;
    let outsider = app
        .signed_in_member(&admin, &format!("provider-{tag}@example.com"), "provider")
        .await;
    let auditor = app
        .signed_in_member(&admin, &format!("auditor-{tag}@example.com"), "auditor")
        .await;
    let client = app
        .signed_in_member(&admin, &format!("client-{tag}@example.com"), "client")
        .await;
    Practice {
        admin,
        organisation,
        outsider,
        auditor,
        client,
    }
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    app.call(Method::POST, path, Some(token), Some(body)).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    app.call(Method::GET, path, Some(token), None).await
}

fn condition(text: &str) -> Value {
    json!({"kind": "condition", "text": text, "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"})
}

/// The practice's audit events (read by its auditor).
async fn audit_events(app: &TestApp, p: &Practice) -> Vec<Value> {
    let (status, page) = get(
        app,
        &p.auditor.token,
        &format!(
            "/v1/organisations/{}/audit-events?limit=500",
            p.organisation
        ),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").clone()
}

async fn exercise(app: &TestApp, p: &Practice, name: &str) -> String {
    let (status, body) = post(
        app,
        &p.admin,
        &format!("/v1/organisations/{}/exercises", p.organisation),
        &json!({"name": name, "instructions": "Lie on your back, lift the hips.", "body_region": "lumbar spine", "equipment": ["mat"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

fn program(exercise: &str, reps: i64) -> Value {
    json!({"kind": "exercise_program", "title": "Core", "starts_on": "2026-01-01",
    "items": [
        {"exercise": exercise, "prescription": {"sets": 3, "repetitions": reps, "hold_seconds": 0, "per_week": 5}, "notes": "Slowly"},
        {"exercise": exercise, "prescription": {"sets": 2, "repetitions": 0, "hold_seconds": 30, "per_week": 5}}
    ]})
}

both_databases!(
    async fn the_care_team_keeps_the_chart_and_the_client_reads_it(app) {
        let p = practice(&app, "chart").await;
        let records = p.client_path("/records");
        for i in 0..5 {
            let (status, body) = post(&app, &p.admin, &records, &condition(&format!("Back pain {i}"))).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["content"]["kind"], "condition");
            assert_eq!(body["content"]["code"]["code"], "M54.5");
            assert_eq!(body["version"], 1);
        }
        for other in [
            json!({"kind": "medication", "name": "Ibuprofen", "dose": "400 mg", "frequency": "twice daily", "status": "active"}),
            json!({"kind": "allergy", "substance": "Penicillin", "reaction": "Rash", "severity": "moderate", "status": "active"}),
            json!({"kind": "history_entry", "text": "Knee surgery", "occurred_on": "2019-05-01"}),
            json!({"kind": "status_note", "text": "Improving steadily"}),
            json!({"kind": "treatment_plan", "title": "Back", "goals": ["Walk 5 km"], "interventions": ["Core work"], "status": "active"}),
            json!({"kind": "demographics", "sex": "female", "preferred_language": "en"}),
        ] {
            let (status, body) = post(&app, &p.admin, &records, &other).await;
            assert_eq!(status, 201, "{other}: {body}");
        }
        // Paged with cursors, oldest first, every record once.
        let mut seen = Vec::new();
        let mut path = p.client_path("/records/condition?limit=2");
        loop {
            let (status, page) = get(&app, &p.admin, &path).await;
            assert_eq!(status, 200, "{page}");
            for item in page["items"].as_array().expect("items") {
                seen.push(item["content"]["text"].as_str().expect("text").to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => path = p.client_path(&format!("/records/condition?limit=2&cursor={cursor}")),
                None => break,
            }
        }
        assert_eq!(seen, (0..5).map(|i| format!("Back pain {i}")).collect::<Vec<_>>());
        // A cursor from another list is refused.
        let (_, first) = get(&app, &p.admin, &p.client_path("/records/condition?limit=2")).await;
        let cursor = first["next_cursor"].as_str().expect("a cursor");
        let (status, _) = get(&app, &p.admin, &p.client_path(&format!("/records/medication?cursor={cursor}"))).await;
        assert_eq!(status, 400);

        // The client reads their own chart, and cannot write a condition.
        let (status, page) = get(&app, &p.client.token, &p.client_path("/records/medication")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"][0]["content"]["dose"], "400 mg");
        let (status, body) = post(&app, &p.client.token, &records, &condition("Self-diagnosed")).await;
        assert_eq!(status, 403, "{body}");
        let (status, who) = get(&app, &p.client.token, &p.client_path("")).await;
        assert_eq!(status, 200, "{who}");
        assert_eq!(who["email"], "client-chart@example.com");
        let (status, team) = get(&app, &p.client.token, &p.client_path("/care-team")).await;
        assert_eq!(status, 200, "{team}");
        assert_eq!(team["members"].as_array().map(Vec::len), Some(1));

        // Every read was audited with the client's subject and why.
        let events = audit_events(&app, &p).await;
        let reads: Vec<&Value> = events
            .iter()
            .filter(|e| e["resource_kind"] == "medication" && e["action"] == "list")
            .collect();
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert_eq!(reads[0]["purpose"], "subject_request");
        assert_eq!(reads[0]["outcome"], "allowed");
        let treatment = events
            .iter()
            .filter(|e| e["resource_kind"] == "condition" && e["purpose"] == "treatment")
            .count();
        assert!(treatment >= 5 + 3, "creates and pages audited: {treatment}");
        app.stop().await;
    }
);

both_databases!(
    async fn outsiders_get_404_exactly_as_for_an_unknown_client(app) {
        let p = practice(&app, "out").await;
        let (status, _) = post(&app, &p.admin, &p.client_path("/records"), &condition("Sciatica")).await;
        assert_eq!(status, 201);
        let unknown = format!(
            "/v1/organisations/{}/clients/{}/records/condition",
            p.organisation,
            uuid::Uuid::now_v7()
        );
        let (status_unknown, body_unknown) = get(&app, &p.outsider.token, &unknown).await;
        let (status_hidden, body_hidden) = get(&app, &p.outsider.token, &p.client_path("/records/condition")).await;
        assert_eq!((status_unknown, status_hidden), (404, 404));
        assert_eq!(body_unknown["type"], body_hidden["type"]);
        assert_eq!(body_unknown["detail"], body_hidden["detail"]);
        // A write to a client outside the care team is 404 and stores nothing.
        let before = app.count_rows("clinical_records").await;
        let (status, _) = post(&app, &p.outsider.token, &p.client_path("/records"), &condition("Outsider's note")).await;
        assert_eq!(status, 404);
        assert_eq!(app.count_rows("clinical_records").await, before);
        // Their client list does not reveal the client.
        let clients = format!("/v1/organisations/{}/clients", p.organisation);
        let (status, page) = get(&app, &p.outsider.token, &clients).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"], json!([]));
        let (_, page) = get(&app, &p.admin, &clients).await;
        assert_eq!(page["items"][0]["client_id"], p.client.user_id);
        // The refusal is audited on the client's subject.
        let denied = audit_events(&app, &p)
            .await
            .into_iter()
            .filter(|e| e["outcome"] == "denied" && e["resource_kind"] == "condition")
            .count();
        assert!(denied >= 2, "the read and the write were refused on the record");

        // On the care team they see the chart; once their membership ends, they do not.
        let (status, body) = post(&app, &p.admin, &p.client_path("/care-team"), &json!({"provider_id": p.outsider.user_id})).await;
        assert_eq!(status, 201, "{body}");
        let (status, _) = get(&app, &p.outsider.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 200);
        let (status, _) = post(&app, &p.admin, &p.client_path("/care-team"), &json!({"provider_id": p.outsider.user_id})).await;
        assert_eq!(status, 409, "on the team already");
        let (status, _) = post(&app, &p.admin, &p.client_path("/care-team"), &json!({"provider_id": p.client.user_id})).await;
        assert_eq!(status, 422, "a client is not a provider");
        let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
        let (status, body) = post(
            &app,
            &p.admin,
            &p.client_path(&format!("/care-team/{}/ending", p.outsider.user_id)),
            &json!({"ends_on": yesterday}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = get(&app, &p.outsider.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 404);
        app.stop().await;
    }
);

both_databases_with_clock!(
    async fn break_glass_is_time_boxed_audited_and_listed(app, clock) at "2026-03-01T09:00:00Z" {
        let p = practice(&app, "glass").await;
        let (status, _) = post(&app, &p.admin, &p.client_path("/records"), &condition("Epilepsy")).await;
        assert_eq!(status, 201);
        let (status, body) = post(&app, &p.outsider.token, &p.client_path("/break-glass"), &json!({"reason": "Seizure in the waiting room", "minutes": 5})).await;
        assert_eq!(status, 201, "{body}");
        let (status, _) = get(&app, &p.outsider.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 200);
        let (status, _) = post(&app, &p.client.token, &p.client_path("/break-glass"), &json!({"reason": "Me", "minutes": 30})).await;
        assert_eq!(status, 403, "the client does not break their own glass");
        let grants = format!("/v1/organisations/{}/break-glass-grants", p.organisation);
        let (status, page) = get(&app, &p.admin, &grants).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"][0]["reason"], "Seizure in the waiting room");
        assert_eq!(page["items"][0]["holder_id"], p.outsider.user_id);
        let (status, _) = get(&app, &p.outsider.token, &grants).await;
        assert_eq!(status, 403);
        let break_glass_reads = audit_events(&app, &p)
            .await
            .into_iter()
            .filter(|e| e["purpose"] == "break_glass" && e["resource_kind"] == "condition")
            .count();
        assert_eq!(break_glass_reads, 1);
        clock.advance(chrono::Duration::minutes(6));
        let (status, _) = get(&app, &p.outsider.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 404, "the grant has expired");
        app.stop().await;
    }
);

both_databases!(
    async fn bad_input_is_422_and_stores_nothing(app) {
        let p = practice(&app, "bad").await;
        let exercise = exercise(&app, &p, "Bridge").await;
        let (status, prog) = post(&app, &p.admin, &p.client_path("/records"), &program(&exercise, 10)).await;
        assert_eq!(status, 201, "{prog}");
        let tables = ["clinical_records", "clinical_record_versions", "clinical_appointments"];
        let mut before = Vec::new();
        for t in tables {
            before.push(app.count_rows(t).await);
        }
        let future_birth = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
        let (status, body) = post(
            &app,
            &p.admin,
            &format!("/v1/organisations/{}/clients", p.organisation),
            &json!({"name": "Future Person", "email": "future@example.com", "date_of_birth": future_birth,
                "service_authorisation": {"obtained_at": "2000-01-01T00:00:00Z", "channel": "paper"}}),
        )
        .await;
        assert_eq!(status, 422, "a date of birth in the future: {body}");
        let records = p.client_path("/records");
        let cases = [
            (json!({"kind": "adherence_log", "program": prog["id"], "program_version": 1, "performed_on": "2026-01-02", "completed": [0], "pain": 11}), "pain"),
            (json!({"kind": "condition", "text": "canary-bad-1", "code": {"system": "loinc", "code": "1234-5"}, "status": "active"}), "code system"),
            (program(&exercise, -1), "repetitions"),
            (json!({"kind": "condition", "text": "x".repeat(2001), "status": "active"}), "2000"),
            (json!({"kind": "status_note", "text": "   "}), "text"),
        ];
        for (body, rule) in cases {
            let token = if body["kind"] == "adherence_log" { &p.client.token } else { &p.admin };
            let (status, problem) = post(&app, token, &records, &body).await;
            assert_eq!(status, 422, "{body}: {problem}");
            assert_eq!(problem["type"], "urn:custodia:problem:validation-failed");
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.to_lowercase().contains(rule), "{detail} names {rule}");
            assert!(!detail.contains("canary-bad-1"), "{detail}");
        }
        let provider = app.member_id(&p.admin, "admin-bad@example.com").await;
        let (status, body) = post(
            &app,
            &p.admin,
            &p.client_path("/appointments"),
            &json!({"provider_id": provider, "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T09:00:00Z", "time_zone": "Europe/Paris"}),
        )
        .await;
        assert_eq!(status, 422, "an appointment ending before it starts: {body}");
        let (status, _) = post(
            &app,
            &p.admin,
            &p.client_path("/appointments"),
            &json!({"provider_id": provider, "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:00:00Z", "time_zone": "Mars/Olympus"}),
        )
        .await;
        assert_eq!(status, 422, "an unknown time zone");
        for (t, n) in tables.iter().zip(before) {
            assert_eq!(app.count_rows(t).await, n, "{t}: nothing stored");
        }
        app.stop().await;
    }
);

both_databases!(
    async fn programs_keep_their_versions_and_the_client_logs_adherence(app) {
        let p = practice(&app, "prog").await;
        let exercise = exercise(&app, &p, "Bridge").await;
        let (status, v1) = post(&app, &p.admin, &p.client_path("/records"), &program(&exercise, 10)).await;
        assert_eq!(status, 201, "{v1}");
        assert_eq!(v1["content"]["items"][0]["name"], "Bridge", "the name comes from the library");
        let id = v1["id"].as_str().expect("id");
        let log = json!({"kind": "adherence_log", "program": id, "program_version": 1, "performed_on": "2026-01-02", "completed": [0, 1], "pain": 3, "comment": "Easier today"});
        let (status, body) = post(&app, &p.client.token, &p.client_path("/records"), &log).await;
        assert_eq!(status, 201, "{body}");
        let (status, _) = post(&app, &p.client.token, &p.client_path("/records"), &json!({"kind": "adherence_log", "program": id, "program_version": 1, "performed_on": "2026-01-02", "completed": [5], "pain": 3})).await;
        assert_eq!(status, 422, "an item the program does not have");
        let path = p.client_path(&format!("/records/exercise_program/{id}"));
        let (status, v2) = app
            .call(Method::PUT, &path, Some(&p.admin), Some(&json!({"expected_version": 1, "content": program(&exercise, 12)})))
            .await;
        assert_eq!(status, 200, "{v2}");
        assert_eq!(v2["version"], 2);
        let (status, _) = app
            .call(Method::PUT, &path, Some(&p.admin), Some(&json!({"expected_version": 1, "content": program(&exercise, 15)})))
            .await;
        assert_eq!(status, 409, "a stale version");
        let (status, versions) = get(&app, &p.client.token, &format!("{path}/versions")).await;
        assert_eq!(status, 200, "{versions}");
        let reps: Vec<&Value> = versions["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|v| &v["content"]["items"][0]["prescription"]["repetitions"])
            .collect();
        assert_eq!(reps, [&json!(10), &json!(12)]);
        // A log against the old version is still accepted.
        let (status, _) = post(&app, &p.client.token, &p.client_path("/records"), &log).await;
        assert_eq!(status, 201);
        let (status, logs) = get(&app, &p.admin, &p.client_path("/records/adherence_log")).await;
        assert_eq!(status, 200);
        assert_eq!(logs["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(logs["items"][0]["content"]["pain"], 3);
        app.stop().await;
    }
);

both_databases!(
    async fn a_provider_cannot_be_double_booked(app) {
        let p = practice(&app, "appt").await;
        let provider = app.member_id(&p.admin, "admin-appt@example.com").await;
        let book = |start: &str, end: &str| {
            json!({"provider_id": provider, "starts_at": start, "ends_at": end, "time_zone": "America/New_York",
                "telehealth_url": "https://meet.example.org/room/1", "reason": "Review"})
        };
        let path = p.client_path("/appointments");
        let (status, first) = post(&app, &p.admin, &path, &book("2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z")).await;
        assert_eq!(status, 201, "{first}");
        assert_eq!(first["time_zone"], "America/New_York");
        let (status, body) = post(&app, &p.admin, &path, &book("2026-12-01T15:30:00Z", "2026-12-01T16:30:00Z")).await;
        assert_eq!(status, 409, "{body}");
        let (status, _) = post(&app, &p.admin, &path, &book("2026-12-01T16:00:00Z", "2026-12-01T17:00:00Z")).await;
        assert_eq!(status, 201, "back to back is fine");
        // The client cancels the first; its slot is free again.
        let id = first["id"].as_str().expect("id");
        let (status, cancelled) = app
            .call(Method::PUT, &p.client_path(&format!("/appointments/{id}/status")), Some(&p.client.token), Some(&json!({"status": "cancelled", "expected_version": 1})))
            .await;
        assert_eq!(status, 200, "{cancelled}");
        let (status, _) = app
            .call(Method::PUT, &p.client_path(&format!("/appointments/{id}/status")), Some(&p.client.token), Some(&json!({"status": "arrived", "expected_version": 2})))
            .await;
        assert_eq!(status, 403, "the client may only cancel");
        let (status, _) = post(&app, &p.admin, &path, &book("2026-12-01T15:30:00Z", "2026-12-01T16:00:00Z")).await;
        assert_eq!(status, 201);
        let (status, page) = get(&app, &p.client.token, &path).await;
        assert_eq!(status, 200);
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
        app.stop().await;
    }
);

both_databases!(
    async fn messages_and_amendments_run_between_the_client_and_the_care_team(app) {
        let p = practice(&app, "amend").await;
        let records = p.client_path("/records");
        let (status, _) = post(&app, &p.client.token, &records, &json!({"kind": "message", "text": "Is Tuesday fine?"})).await;
        assert_eq!(status, 201);
        let (status, _) = post(&app, &p.admin, &records, &json!({"kind": "message", "text": "Yes, 10:00."})).await;
        assert_eq!(status, 201);
        let (_, messages) = get(&app, &p.client.token, &p.client_path("/records/message")).await;
        assert_eq!(messages["items"][0]["content"]["sender"], p.client.user_id);
        assert_eq!(messages["items"][1]["content"]["text"], "Yes, 10:00.");
        let (status, _) = get(&app, &p.outsider.token, &p.client_path("/records/message")).await;
        assert_eq!(status, 404);

        let (_, medication) = post(&app, &p.admin, &records, &json!({"kind": "medication", "name": "Ibuprofen", "dose": "400 mg", "frequency": "daily", "status": "active"})).await;
        let target = medication["id"].as_str().expect("id");
        let (status, body) = post(&app, &p.client.token, &records, &json!({"kind": "amendment", "target": target, "field": "colour", "proposed": "red", "reason": "x"})).await;
        assert_eq!(status, 422, "no such field: {body}");
        let (status, amendment) = post(&app, &p.client.token, &records, &json!({"kind": "amendment", "target": target, "field": "dose", "proposed": "200 mg", "reason": "I take 200 mg"})).await;
        assert_eq!(status, 201, "{amendment}");
        assert_eq!(amendment["content"]["status"], "proposed");
        assert_eq!(amendment["content"]["target_kind"], "medication");
        let accept = p.client_path(&format!("/amendments/{}/acceptance", amendment["id"].as_str().expect("id")));
        let (status, outcome) = post(&app, &p.admin, &accept, &json!({})).await;
        assert_eq!(status, 200, "{outcome}");
        assert_eq!(outcome["record"]["content"]["dose"], "200 mg");
        assert_eq!(outcome["record"]["version"], 2);
        assert_eq!(outcome["amendment"]["content"]["applied_version"], 2);
        let (status, _) = post(&app, &p.admin, &accept, &json!({})).await;
        assert_eq!(status, 409, "decided already");
        let (_, versions) = get(&app, &p.client.token, &p.client_path(&format!("/records/medication/{target}/versions"))).await;
        assert_eq!(versions["items"][0]["content"]["dose"], "400 mg", "history kept");

        let (_, second) = post(&app, &p.client.token, &records, &json!({"kind": "amendment", "target": target, "field": "frequency", "proposed": "weekly", "reason": "Less often"})).await;
        let id = second["id"].as_str().expect("id");
        let disagree = p.client_path(&format!("/amendments/{id}/disagreement"));
        let (status, _) = post(&app, &p.client.token, &disagree, &json!({"statement": "Too early"})).await;
        assert_eq!(status, 409, "nothing to disagree with yet");
        let (status, denied) = post(&app, &p.admin, &p.client_path(&format!("/amendments/{id}/denial")), &json!({"reason": "Prescribed daily"})).await;
        assert_eq!(status, 200, "{denied}");
        let (_, seen) = get(&app, &p.client.token, &p.client_path(&format!("/records/amendment/{id}"))).await;
        assert_eq!(seen["content"]["denial_reason"], "Prescribed daily");
        let (status, _) = post(&app, &p.client.token, &disagree, &json!({"statement": "I disagree"})).await;
        assert_eq!(status, 200);
        let (status, _) = post(&app, &p.client.token, &disagree, &json!({"statement": "Again"})).await;
        assert_eq!(status, 409, "once");
        app.stop().await;
    }
);

both_databases!(
    async fn consent_refusals_are_403_and_a_failed_audit_fails_the_request(app) {
        let p = practice(&app, "gate").await;
        let (status, _) = post(&app, &p.admin, &p.client_path("/records"), &condition("Asthma")).await;
        assert_eq!(status, 201);
        // The client restricts processing of their health record (D4).
        let (status, body) = post(&app, &p.client.token, "/v1/me/consents", &json!({"action": "restrict", "category": "health_record"})).await;
        assert!(status == 201 || status == 200, "{status} {body}");
        let (status, problem) = get(&app, &p.admin, &p.client_path("/records/condition")).await;
        assert_eq!(status, 403, "{problem}");
        assert!(problem["detail"].as_str().unwrap_or_default().contains("restricted"), "{problem}");
        let refused = audit_events(&app, &p)
            .await
            .into_iter()
            .any(|e| e["resource_kind"] == "condition" && e["outcome"] == "denied");
        assert!(refused, "the refusal is audited");
        // The client still reads their own.
        let (status, _) = get(&app, &p.client.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 200);
        // Without the audit log, nothing is read or written.
        app.execute("ALTER TABLE audit_events RENAME TO audit_events_offline").await;
        let (status, body) = get(&app, &p.client.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 503);
        assert!(!body.to_string().contains("Asthma"), "{body}");
        let before = app.count_rows("clinical_records").await;
        let (status, _) = post(&app, &p.client.token, &p.client_path("/records"), &json!({"kind": "message", "text": "hello"})).await;
        assert_eq!(status, 503);
        assert_eq!(app.count_rows("clinical_records").await, before);
        app.execute("ALTER TABLE audit_events_offline RENAME TO audit_events").await;
        app.stop().await;
    }
);

both_databases!(
    async fn health_data_and_identifying_fields_are_sealed_at_rest(app) {
        let p = practice(&app, "canary").await;
        let exercise = exercise(&app, &p, "Clamshell").await;
        let records = p.client_path("/records");
        let canary = |n: u32| format!("zqx-canary-{n}-jvk");
        let bodies = [
            json!({"kind": "condition", "text": canary(1), "status": "active"}),
            json!({"kind": "medication", "name": canary(2), "dose": canary(3), "frequency": canary(4), "status": "active"}),
            json!({"kind": "allergy", "substance": canary(5), "reaction": canary(6), "status": "active"}),
            json!({"kind": "history_entry", "text": canary(7)}),
            json!({"kind": "status_note", "text": canary(8)}),
            json!({"kind": "treatment_plan", "title": canary(9), "goals": [canary(10)], "interventions": [canary(11)], "status": "active"}),
            json!({"kind": "demographics", "gender_identity": canary(12), "address": {"lines": [canary(13)], "city": canary(14)}}),
            json!({"kind": "exercise_program", "title": canary(15), "starts_on": "2026-01-01", "items": [{"exercise": exercise, "prescription": {"sets": 1, "repetitions": 5, "hold_seconds": 0, "per_week": 3}, "notes": canary(16)}]}),
            json!({"kind": "message", "text": canary(17)}),
        ];
        for body in &bodies {
            let (status, answer) = post(&app, &p.admin, &records, body).await;
            assert_eq!(status, 201, "{answer}");
        }
        let (status, _) = post(&app, &p.client.token, &records, &json!({"kind": "message", "text": canary(18)})).await;
        assert_eq!(status, 201);
        let provider = app.member_id(&p.admin, "admin-canary@example.com").await;
        let (status, _) = post(&app, &p.admin, &p.client_path("/appointments"), &json!({"provider_id": provider,
            "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:00:00Z", "time_zone": "Europe/Paris",
            "location": canary(19), "reason": canary(20), "telehealth_url": format!("https://meet.example.org/{}", canary(21))})).await;
        assert_eq!(status, 201);
        let (status, _) = post(&app, &p.outsider.token, &p.client_path("/break-glass"), &json!({"reason": canary(22), "minutes": 5})).await;
        assert_eq!(status, 201);
        // The API gives them back...
        let (_, page) = get(&app, &p.admin, &p.client_path("/records/condition")).await;
        assert_eq!(page["items"][0]["content"]["text"], canary(1));
        // ...and the database holds none of them in the clear.
        let contents = app.raw_database_contents().await;
        assert!(!contents.is_empty());
        for n in 1..=22 {
            let needle = canary(n);
            for (name, bytes) in &contents {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} is in plaintext in {name}"
                );
            }
        }
        app.stop().await;
    }
);

both_databases!(
    async fn the_rights_engines_port_exports_fhir_corrects_restricts_and_erases_a_stored_chart(app) {
        use kernel::PersonalData as _;
        use kernel::personal_data::{Rectification, RestrictionScope};
        let p = practice(&app, "rights").await;
        let exercise = exercise(&app, &p, "Bird dog").await;
        let records = p.client_path("/records");
        let mut ids = std::collections::BTreeMap::new();
        for body in [
            condition("Chronic low back pain"),
            json!({"kind": "medication", "name": "Naproxen", "dose": "250 mg", "frequency": "twice daily", "status": "active"}),
            json!({"kind": "allergy", "substance": "Latex", "reaction": "Hives", "severity": "mild", "status": "active"}),
            json!({"kind": "history_entry", "text": "Lumbar strain", "occurred_on": "2024-02-01"}),
            json!({"kind": "status_note", "text": "Sleeping better"}),
            json!({"kind": "treatment_plan", "title": "Back", "goals": ["Lift 10 kg"], "interventions": ["Graded loading"], "status": "active"}),
            json!({"kind": "demographics", "sex": "male", "preferred_language": "es-MX", "address": {"lines": ["2 Elm St"], "city": "Austin", "postal_code": "78701", "country": "US"}}),
            program(&exercise, 8),
            json!({"kind": "message", "text": "Remember the exercises"}),
        ] {
            let (status, answer) = post(&app, &p.admin, &records, &body).await;
            assert_eq!(status, 201, "{answer}");
            ids.insert(body["kind"].as_str().expect("kind").to_owned(), answer["id"].as_str().expect("id").to_owned());
        }
        let (status, _) = post(&app, &p.client.token, &records, &json!({"kind": "adherence_log", "program": ids["exercise_program"], "program_version": 1, "performed_on": "2026-01-03", "completed": [0], "pain": 2})).await;
        assert_eq!(status, 201);
        let provider = app.member_id(&p.admin, "admin-rights@example.com").await;
        let (status, _) = post(&app, &p.admin, &p.client_path("/appointments"), &json!({"provider_id": provider,
            "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T10:45:00Z", "time_zone": "America/Chicago", "telehealth_url": "https://meet.example.org/r"})).await;
        assert_eq!(status, 201);

        let port = clinical::personal_data::ClinicalPersonalData::new(app.state().clinical().repository().clone());
        let ctx = kernel::RequestContext::system("rights", kernel::Purpose::SubjectRequest, chrono::Utc::now());
        // The subject id is not on the API: read it behind it.
        let subject = app
            .state()
            .clinical()
            .repository()
            .client(
                kernel::OrganisationId::from_uuid(p.organisation.parse().expect("uuid")),
                kernel::UserId::from_uuid(p.client.user_id.parse().expect("uuid")),
            )
            .await
            .expect("reads")
            .expect("a client")
            .client
            .subject;
        let exported = port.export(&ctx, subject).await.expect("exports");
        let bundle = exported
            .iter()
            .find(|r| r.resource.kind == clinical::personal_data::FHIR_BUNDLE)
            .map(|r| r.data.clone())
            .expect("a FHIR bundle");
        let types: std::collections::BTreeSet<String> = bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["resource"]["resourceType"].as_str().map(str::to_owned))
            .collect();
        for t in ["Patient", "Condition", "MedicationStatement", "AllergyIntolerance", "CarePlan", "Appointment", "Communication"] {
            assert!(types.contains(t), "{t} in {types:?}");
        }
        let checked = tokio::task::spawn_blocking(move || tests::fhir::validate(&[bundle]))
            .await
            .expect("the validator ran");
        assert_eq!(checked, Ok(()), "the export's Bundle is valid FHIR R4");

        // A correction is a new version; the old one stays readable.
        let medication = ids["medication"].parse().expect("uuid");
        port.rectify(&ctx, subject, Rectification {
            resource: kernel::ResourceRef::new("medication", medication),
            field: "dose".to_owned(),
            value: json!("500 mg"),
        })
        .await
        .expect("corrected");
        let (_, versions) = get(&app, &p.client.token, &p.client_path(&format!("/records/medication/{medication}/versions"))).await;
        let doses: Vec<&Value> = versions["items"].as_array().expect("items").iter().map(|v| &v["content"]["dose"]).collect();
        assert_eq!(doses, [&json!("250 mg"), &json!("500 mg")]);

        // A restriction stops the care team, not the client.
        port.restrict(&ctx, subject, RestrictionScope::All, false).await.expect("restricted");
        let (status, problem) = get(&app, &p.admin, &p.client_path("/records/condition")).await;
        assert_eq!(status, 403, "{problem}");
        let (status, _) = get(&app, &p.client.token, &p.client_path("/records/condition")).await;
        assert_eq!(status, 200);
        port.restrict(&ctx, subject, RestrictionScope::All, true).await.expect("lifted");
        let (status, _) = get(&app, &p.admin, &p.client_path("/records/condition")).await;
        assert_eq!(status, 200);

        // Erasure deletes every clinical row of the subject, once.
        let outcomes = port.erase(&ctx, subject).await.expect("erased");
        assert!(outcomes.len() >= 12, "{outcomes:?}");
        assert!(port.erase(&ctx, subject).await.expect("erased again").is_empty());
        assert_eq!(app.count_rows("clinical_records").await, 0);
        assert_eq!(app.count_rows("clinical_record_versions").await, 0);
        assert_eq!(app.count_rows("clinical_appointments").await, 0);
        let (status, page) = get(&app, &p.admin, &p.client_path("/records/condition")).await;
        assert_eq!(status, 200);
        assert_eq!(page["items"], json!([]));
        app.stop().await;
    }
);
