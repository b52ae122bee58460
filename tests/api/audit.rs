//! The audit log over HTTP: verification and inclusion proofs for auditors, the
//! practice's events, a client's access report, the accounting of disclosures,
//! erasure and retention that leave the chains verifiable, and fail-closed
//! behaviour when the log cannot be written.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tests::{TestApp, both_databases, both_databases_with_clock};

async fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn verification(app: &TestApp, auditor: &str) -> Value {
    let (status, body) = get_json(app, auditor, "/v1/audit/verification").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// An org admin (and provider), an auditor, a privacy officer and two clients
/// of one practice.
struct Practice {
    admin: String,
    organisation: String,
    auditor: tests::Member,
    privacy_officer: tests::Member,
    client: tests::Member,
    other_client: tests::Member,
}

async fn practice(app: &TestApp, tag: &str) -> Practice {
    let admin = app
        .signed_in_provider(&format!("admin-{tag}@example.com"))
        .await;
    let organisation = app.organisation_of(&admin).await;
    let auditor = app
        .signed_in_member(&admin, &format!("auditor-{tag}@example.com"), "auditor")
        .await;
    let privacy_officer = app
        .signed_in_member(&admin, &format!("po-{tag}@example.com"), "privacy_officer")
        .await;
    let client = app
        .signed_in_member(&admin, &format!("client-{tag}@example.com"), "client")
        .await;
    let other_client = app
        .signed_in_member(&admin, &format!("other-{tag}@example.com"), "client")
        .await;
    Practice {
        admin,
        organisation,
        auditor,
        privacy_officer,
        client,
        other_client,
    }
}

both_databases!(
    async fn an_auditor_verifies_the_log_and_no_one_else_may(app) {
        let p = practice(&app, "v").await;
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        assert!(report["events"].as_u64().unwrap_or(0) >= 6, "{report}");
        assert!(report.get("first_break").is_none());
        for token in [&p.admin, &p.client.token, &p.privacy_officer.token] {
            let (status, body) = get_json(&app, token, "/v1/audit/verification").await;
            assert_eq!(status, 403, "{body}");
        }
        // The refusals are themselves in the log.
        let (status, page) = get_json(
            &app,
            &p.auditor.token,
            &format!("/v1/organisations/{}/audit-events?limit=500", p.organisation),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let denials = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["resource_kind"] == "audit_log" && e["outcome"] == "denied")
            .count();
        assert_eq!(denials, 3, "{page}");
        app.stop().await;
    }
);

both_databases!(
    async fn an_auditor_checks_an_inclusion_proof_with_nothing_but_the_proof(app) {
        let p = practice(&app, "p").await;
        let (_, page) = get_json(
            &app,
            &p.auditor.token,
            &format!("/v1/organisations/{}/audit-events", p.organisation),
        )
        .await;
        let event = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|e| e["action"] == "create")
            .expect("the client's creation was audited")
            .clone();
        let chain = event["chain_id"].as_str().expect("chain");
        let sequence = event["sequence"].as_u64().expect("sequence");
        let (status, proof) = get_json(
            &app,
            &p.auditor.token,
            &format!("/v1/audit/chains/{chain}/events/{sequence}/inclusion-proof"),
        )
        .await;
        assert_eq!(status, 200, "{proof}");

        // Everything below uses only the proof.
        let hex = |v: &Value| audit::Hash::from_hex(v.as_str().expect("hex")).expect("a hash");
        let encoding = STANDARD.decode(proof["encoding"].as_str().expect("encoding")).expect("b64");
        let leaf = audit::merkle::leaf_hash(&encoding);
        assert_eq!(leaf, hex(&event["hash"]));
        let path: Vec<audit::Hash> = proof["path"].as_array().expect("path").iter().map(hex).collect();
        let checkpoint = &proof["checkpoint"];
        let head = checkpoint["heads"]
            .as_array()
            .expect("heads")
            .iter()
            .find(|h| h["chain_id"] == chain)
            .expect("the checkpoint names the chain");
        let tree_size = proof["tree_size"].as_u64().expect("size");
        assert_eq!(head["size"].as_u64(), Some(tree_size));
        assert!(audit::merkle::verify_inclusion(
            &leaf,
            proof["leaf_index"].as_u64().expect("index"),
            tree_size,
            &path,
            &hex(&head["root"]),
        ));
        let signed = STANDARD.decode(checkpoint["signed_bytes"].as_str().expect("bytes")).expect("b64");
        // The signed bytes carry the root the path led to.
        let root = hex(&head["root"]);
        assert!(signed.windows(32).any(|w| w == root.as_bytes()));
        let signature = STANDARD.decode(checkpoint["signature"].as_str().expect("sig")).expect("b64");
        let key = STANDARD.decode(proof["signing_public_key"].as_str().expect("key")).expect("b64");
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
            .verify(&signed, &signature)
            .expect("the checkpoint's signature verifies");
        // A forged event does not verify against the same proof.
        let mut forged = encoding.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(!audit::merkle::verify_inclusion(
            &audit::merkle::leaf_hash(&forged),
            sequence - 1,
            tree_size,
            &path,
            &root,
        ));

        // Another practice's auditor cannot get a proof of this event.
        let other_admin = app.signed_in_provider("elsewhere-p@example.com").await;
        let other = app.signed_in_member(&other_admin, "aud2-p@example.com", "auditor").await;
        let (status, _) = get_json(
            &app,
            &other.token,
            &format!("/v1/audit/chains/{chain}/events/{sequence}/inclusion-proof"),
        )
        .await;
        assert_eq!(status, 404);
        app.stop().await;
    }
);

both_databases!(
    async fn a_client_sees_who_accessed_their_record_by_name_and_role(app) {
        let p = practice(&app, "r").await;
        let (status, report) = get_json(&app, &p.client.token, "/v1/me/access-report").await;
        assert_eq!(status, 200, "{report}");
        let items = report["items"].as_array().expect("items");
        let creation = items
            .iter()
            .find(|e| e["action"] == "create" && e["record_kind"] == "client_account")
            .expect("the creation of the client's account is reported");
        assert_eq!(creation["name"], "Test Provider");
        assert!(creation["roles"].as_array().expect("roles").contains(&json!("provider")));
        assert_eq!(creation["organisation_id"], p.organisation.as_str());
        assert_eq!(creation["outcome"], "allowed");
        // Nothing about the other client: not their events, not their id.
        let text = report.to_string();
        assert!(!text.contains(&p.other_client.user_id), "{text}");
        let (_, other) = get_json(&app, &p.other_client.token, "/v1/me/access-report").await;
        assert_eq!(
            other["items"].as_array().expect("items").iter().filter(|e| e["action"] == "create" && e["record_kind"] == "client_account").count(),
            1
        );
        // Reading the report was itself recorded, and appears on the next read.
        let (_, again) = get_json(&app, &p.client.token, "/v1/me/access-report?limit=1").await;
        assert_eq!(again["items"][0]["record_kind"], "access_report");
        assert!(again["next_cursor"].is_string());
        let cursor = again["next_cursor"].as_str().expect("cursor").to_owned();
        let (status, _) = get_json(
            &app,
            &p.other_client.token,
            &format!("/v1/me/access-report?cursor={cursor}"),
        )
        .await;
        assert_eq!(status, 400, "a cursor of another person's report is refused");
        app.stop().await;
    }
);

both_databases!(
    async fn disclosures_are_recorded_and_accounted_to_the_subject_and_privacy_officer(app) {
        let p = practice(&app, "d").await;
        let path = format!(
            "/v1/organisations/{}/clients/{}/disclosures",
            p.organisation, p.client.user_id
        );
        let body = json!({
            "recipient": "County Health Department",
            "description": "canary-disclosure-description-7731",
            "legal_basis": "45 CFR 164.512(b)",
            "purpose": "legal",
            "disclosed_at": "2026-01-15T10:00:00Z",
        });
        let resp = app.client.post(app.url(&path)).bearer_auth(&p.admin).json(&body).send().await.expect("answers");
        assert_eq!(resp.status(), 201);
        let recorded: Value = resp.json().await.expect("JSON");
        assert!(recorded["sequence"].as_u64().is_some());

        let (status, mine) = get_json(&app, &p.client.token, "/v1/me/disclosures").await;
        assert_eq!(status, 200);
        let items = mine["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{mine}");
        assert_eq!(items[0]["recipient"], "County Health Department");
        assert_eq!(items[0]["legal_basis"], "45 CFR 164.512(b)");
        assert_eq!(items[0]["purpose"], "legal");
        assert_eq!(items[0]["disclosed_at"], "2026-01-15T10:00:00+00:00");

        let (status, po) = get_json(&app, &p.privacy_officer.token, &path).await;
        assert_eq!(status, 200);
        assert_eq!(po["items"].as_array().map(Vec::len), Some(1));
        let (_, other) = get_json(&app, &p.other_client.token, "/v1/me/disclosures").await;
        assert_eq!(other["items"].as_array().map(Vec::len), Some(0));

        // Who may not: an auditor reads no accounting, a client records none, a
        // future date is refused, another practice sees nothing.
        let (status, _) = get_json(&app, &p.auditor.token, &path).await;
        assert_eq!(status, 403);
        let resp = app.client.post(app.url(&path)).bearer_auth(&p.client.token).json(&body).send().await.expect("answers");
        assert_eq!(resp.status(), 403);
        let mut future = body.clone();
        future["disclosed_at"] = json!("2999-01-01T00:00:00Z");
        let resp = app.client.post(app.url(&path)).bearer_auth(&p.admin).json(&future).send().await.expect("answers");
        assert_eq!(resp.status(), 422);
        let other_admin = app.signed_in_provider("elsewhere-d@example.com").await;
        let other_org = app.organisation_of(&other_admin).await;
        let resp = app
            .client
            .post(app.url(&format!("/v1/organisations/{other_org}/clients/{}/disclosures", p.client.user_id)))
            .bearer_auth(&other_admin)
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 404);
        let (_, mine) = get_json(&app, &p.client.token, "/v1/me/disclosures").await;
        assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "nothing was added");

        // The description is sealed at rest.
        let raw = app.raw_database_contents().await;
        assert!(
            !raw.iter().any(|(_, bytes)| bytes.windows(12).any(|w| w == b"canary-discl")),
            "the disclosure description is stored in plaintext"
        );
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        app.stop().await;
    }
);

both_databases!(
    async fn when_the_log_cannot_be_written_the_request_fails_closed(app) {
        let p = practice(&app, "f").await;
        let members = format!("/v1/organisations/{}/members", p.organisation);
        app.execute("ALTER TABLE audit_events RENAME TO audit_events_offline").await;
        let resp = app.client.get(app.url(&members)).bearer_auth(&p.admin).send().await.expect("answers");
        assert_eq!(resp.status(), 503);
        let body = resp.text().await.expect("a body");
        assert!(!body.contains("client-f@example.com"), "no data left: {body}");
        assert!(body.contains("unavailable"), "{body}");
        let (status, _) = get_json(&app, &p.client.token, "/v1/me/access-report").await;
        assert_eq!(status, 503);
        app.execute("ALTER TABLE audit_events_offline RENAME TO audit_events").await;
        let resp = app.client.get(app.url(&members)).bearer_auth(&p.admin).send().await.expect("answers");
        assert_eq!(resp.status(), 200, "the writer recovers once the log is back");
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        app.stop().await;
    }
);

both_databases!(
    async fn an_erased_subject_becomes_a_pseudonym_and_the_log_still_verifies(app) {
        let p = practice(&app, "e").await;
        let user: uuid::Uuid = p.client.user_id.parse().expect("a uuid");
        let as_client = kernel::RequestContext::new(
            kernel::Actor::Member {
                user: kernel::UserId::from_uuid(user),
                roles: kernel::RoleSet::only(kernel::Role::Client),
            },
            None,
            kernel::Purpose::SubjectRequest,
            kernel::RequestId::new(),
            kernel::ClientInfo::default(),
            app.state().clock().now(),
        );
        let (account, _) = app.state().identity().me(&as_client).await.expect("the account");
        let subject = account.subject.as_uuid();
        let ctx = kernel::RequestContext::system(
            "data-rights",
            kernel::Purpose::SubjectRequest,
            app.state().clock().now(),
        );
        app.state()
            .audit()
            .erase_subject(&ctx, kernel::SubjectId::from_uuid(subject), Some(kernel::UserId::from_uuid(user)))
            .await
            .expect("erased");
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        assert!(report["pseudonymised"].as_u64().unwrap_or(0) > 0, "{report}");
        let (_, page) = get_json(
            &app,
            &p.auditor.token,
            &format!("/v1/organisations/{}/audit-events?limit=500", p.organisation),
        )
        .await;
        let text = page.to_string();
        assert!(!text.contains(&subject.to_string()), "the subject's id is gone");
        assert!(!text.contains(&p.client.user_id), "the person's id is gone as actor");
        assert!(page["items"].as_array().expect("items").iter().any(|e| e["subject_erased"] == true));
        app.stop().await;
    }
);

both_databases_with_clock!(
    async fn events_past_six_years_are_blanked_and_the_chains_still_verify(app, clock) at "2026-01-05T09:00:00Z" {
        let p = practice(&app, "t").await;
        let before = verification(&app, &p.auditor.token).await;
        assert_eq!(before["pruned"], 0);
        clock.advance(chrono::TimeDelta::days(6 * 365 + 10));
        server::jobs::sweep(app.state()).await;
        // Sessions ended long ago: the auditor signs in again.
        let resp = app
            .client
            .post(app.url("/v1/sessions"))
            .json(&json!({
                "email": "auditor-t@example.com",
                "password": tests::TEST_PASSWORD,
                "organisation_id": p.organisation,
            }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 201);
        let session: Value = resp.json().await.expect("JSON");
        let token = session["token"].as_str().expect("token");
        let after = verification(&app, token).await;
        assert_eq!(after["intact"], true, "{after}");
        assert!(after["pruned"].as_u64().unwrap_or(0) >= before["events"].as_u64().unwrap_or(0), "{after}");
        // The blanked events no longer list.
        let (_, page) = get_json(
            &app,
            token,
            &format!("/v1/organisations/{}/audit-events?limit=500", p.organisation),
        )
        .await;
        assert!(page["items"].as_array().expect("items").iter().all(|e| e["at"].as_str() > Some("2031")));
        app.stop().await;
    }
);

both_databases!(
    async fn verification_reports_the_first_link_an_attacker_broke(app) {
        let p = practice(&app, "x").await;
        let (_, page) = get_json(
            &app,
            &p.auditor.token,
            &format!("/v1/organisations/{}/audit-events?limit=500", p.organisation),
        )
        .await;
        let created = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["action"] == "create")
            .min_by_key(|e| e["sequence"].as_u64())
            .expect("a creation")
            .clone();
        // Someone with database access rewrites why the practice's records were
        // created (the start-up's own event, publishing the privacy notice, belongs
        // to no practice and is left alone).
        app.execute(
            "UPDATE audit_events SET purpose = 'research' \
             WHERE action = 'create' AND organisation_id IS NOT NULL",
        )
        .await;
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], false, "{report}");
        let first = &report["first_break"];
        assert_eq!(first["problem"], "hash_mismatch", "{report}");
        assert_eq!(first["chain_id"], created["chain_id"]);
        assert_eq!(first["sequence"], created["sequence"], "the first edited event is named");
        app.stop().await;
    }
);

both_databases!(
    async fn two_server_processes_append_to_one_database_and_both_chains_verify(app) {
        let p = practice(&app, "m").await;
        let (url, data_dir) = app.data();
        // A second server on the same database and keys: its own writer and chain.
        let config = server::Config::try_from_args([
            "custodia",
            "--listen", "127.0.0.1:0",
            "--database-url", &url,
            "--data-dir", data_dir.to_str().expect("a UTF-8 path"),
            "--password-iterations", "1000",
            "--insecure-fast-password-hashing",
            "--migrate", "never",
        ])
        .expect("a valid configuration");
        let second = server::App::build(config).await.expect("a second process starts");
        assert_ne!(second.state().audit().log().chain(), app.state().audit().log().chain());
        let members = format!("/v1/organisations/{}/members", p.organisation);
        let mut tasks = Vec::new();
        for n in 0..40_u32 {
            let sink = second.state().audit().sink();
            tasks.push(tokio::spawn(async move {
                let ctx = kernel::RequestContext::system("load", kernel::Purpose::Operations, chrono::Utc::now());
                sink.record(kernel::AuditEvent::new(
                    &ctx,
                    kernel::AuditAction::Read,
                    kernel::ResourceRef::new("probe", uuid::Uuid::now_v7()),
                    None,
                    kernel::AuditOutcome::Allowed,
                ))
                .await
                .map(|receipt| (n, receipt))
            }));
        }
        for _ in 0..20 {
            let resp = app.client.get(app.url(&members)).bearer_auth(&p.admin).send().await.expect("answers");
            assert_eq!(resp.status(), 200);
        }
        for task in tasks {
            task.await.expect("joins").expect("durable on the second chain");
        }
        second.state().audit().log().checkpoint().await.expect("the second process signs");
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        assert!(report["chains"].as_u64().unwrap_or(0) >= 2, "{report}");
        // The newest checkpoint names both chains.
        let (_, page) = get_json(&app, &p.auditor.token, &format!("/v1/organisations/{}/audit-events", p.organisation)).await;
        let event = &page["items"][0];
        let (status, proof) = get_json(
            &app,
            &p.auditor.token,
            &format!(
                "/v1/audit/chains/{}/events/{}/inclusion-proof",
                event["chain_id"].as_str().expect("chain"),
                event["sequence"]
            ),
        )
        .await;
        assert_eq!(status, 200, "{proof}");
        let named: Vec<&str> = proof["checkpoint"]["heads"]
            .as_array()
            .expect("heads")
            .iter()
            .filter_map(|h| h["chain_id"].as_str())
            .collect();
        assert!(named.contains(&second.state().audit().log().chain().to_string().as_str()), "{named:?}");
        assert!(named.contains(&app.state().audit().log().chain().to_string().as_str()), "{named:?}");
        app.stop().await;
    }
);

both_databases!(
    async fn an_api_key_is_recorded_as_the_key_not_as_the_person_who_made_it(app) {
        let p = practice(&app, "k").await;
        let created: Value = app
            .client
            .post(app.url(&format!("/v1/organisations/{}/api-keys", p.organisation)))
            .bearer_auth(&p.admin)
            .json(&json!({ "name": "EHR sync", "role": "org_admin" }))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        let key = created["secret"].as_str().expect("a secret");
        let key_id = created["key"]["id"].as_str().expect("an id");
        let resp = app
            .client
            .get(app.url(&format!("/v1/organisations/{}/members", p.organisation)))
            .bearer_auth(key)
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 200);
        let request_id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        let (_, page) = get_json(
            &app,
            &p.auditor.token,
            &format!("/v1/organisations/{}/audit-events?request_id={request_id}", p.organisation),
        )
        .await;
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{page}");
        let actor = &items[0]["actor"];
        assert_eq!(actor["kind"], "api_key", "{actor}");
        assert_eq!(actor["api_key_id"], key_id);
        assert!(actor["user_id"].is_null(), "the key's creator is not named as acting");
        assert!(actor["roles"].as_array().expect("roles").contains(&json!("org_admin")));
        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        app.stop().await;
    }
);

both_databases!(
    async fn repeated_denials_and_broad_access_raise_alerts_for_the_auditor(app) {
        let p = practice(&app, "u").await;
        let staff = app.signed_in_member(&p.admin, "staff-u@example.com", "staff").await;
        let members = format!("/v1/organisations/{}/members", p.organisation);
        for _ in 0..5 {
            let (status, _) = get_json(&app, &staff.token, &members).await;
            assert_eq!(status, 403);
        }
        let alerts_path = format!("/v1/organisations/{}/access-alerts", p.organisation);
        let (status, alerts) = get_json(&app, &p.auditor.token, &alerts_path).await;
        assert_eq!(status, 200, "{alerts}");
        let items = alerts["items"].as_array().expect("items");
        let denial = items
            .iter()
            .find(|a| a["kind"] == "repeated_denials")
            .unwrap_or_else(|| panic!("five refusals raise an alert: {alerts}"));
        assert_eq!(denial["actor_id"], staff.user_id.as_str());
        assert_eq!(denial["count"], 5);
        // The provider created two clients: two different people, an alert at 2.
        let (_, broad) = get_json(&app, &p.privacy_officer.token, &format!("{alerts_path}?max_subjects=2")).await;
        assert!(
            broad["items"].as_array().expect("items").iter().any(|a| a["kind"] == "broad_access"),
            "{broad}"
        );
        // Nobody else: staff get 403, another practice 404.
        let (status, _) = get_json(&app, &staff.token, &alerts_path).await;
        assert_eq!(status, 403);
        let other_admin = app.signed_in_provider("elsewhere-u@example.com").await;
        let other = app.signed_in_member(&other_admin, "aud-u2@example.com", "auditor").await;
        let (status, _) = get_json(&app, &other.token, &alerts_path).await;
        assert_eq!(status, 404);
        app.stop().await;
    }
);

both_databases!(
    async fn a_persons_part_of_the_log_is_exported_then_pseudonymised_and_the_log_still_verifies(app) {
        use kernel::PersonalData as _;
        use kernel::personal_data::RecordFate;
        let p = practice(&app, "pd").await;
        let client_path = format!("/v1/organisations/{}/clients/{}", p.organisation, p.client.user_id);
        let records = format!("{client_path}/records");
        let condition = json!({"kind": "condition", "text": "Low back pain", "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"});
        let (status, body) = app.call(reqwest::Method::POST, &records, Some(&p.admin), Some(&condition)).await;
        assert_eq!(status, 201, "{body}");
        // The provider reads the client's record, the client reads their own, and
        // the practice records a disclosure of it.
        let record = format!("{records}/condition/{}", body["id"].as_str().expect("an id"));
        let (status, _) = app.call(reqwest::Method::GET, &record, Some(&p.admin), None).await;
        assert_eq!(status, 200);
        let (status, _) = app.call(reqwest::Method::GET, &record, Some(&p.client.token), None).await;
        assert_eq!(status, 200);
        let disclosure = json!({
            "recipient": "County Health Department",
            "description": "Notifiable condition report",
            "legal_basis": "45 CFR 164.512(b)",
            "purpose": "legal",
            "disclosed_at": "2026-01-15T10:00:00Z",
        });
        let (status, body) = app.call(reqwest::Method::POST, &format!("{client_path}/disclosures"), Some(&p.admin), Some(&disclosure)).await;
        assert_eq!(status, 201, "{body}");

        // The subject behind the client, as the rights engine would know it.
        let user: uuid::Uuid = p.client.user_id.parse().expect("a uuid");
        let as_client = kernel::RequestContext::new(
            kernel::Actor::Member { user: kernel::UserId::from_uuid(user), roles: kernel::RoleSet::only(kernel::Role::Client) },
            None,
            kernel::Purpose::SubjectRequest,
            kernel::RequestId::new(),
            kernel::ClientInfo::default(),
            app.state().clock().now(),
        );
        let (account, _) = app.state().identity().me(&as_client).await.expect("the account");
        let subject = account.subject;
        let about = || async {
            app.state().audit().repository()
                .list_events(audit::ports::EventFilter::Subject(subject.as_uuid()), chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, None, 500)
                .await
                .expect("the log reads")
        };
        let by = || async {
            app.state().audit().repository()
                .list_events(audit::ports::EventFilter::Actor(user), chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, None, 500)
                .await
                .expect("the log reads")
        };
        let port = app.state().audit_personal_data().clone();
        let ctx = kernel::RequestContext::system("rights", kernel::Purpose::SubjectRequest, app.state().clock().now());

        let held = about().await;
        let performed = by().await;
        assert!(!performed.is_empty(), "the client's own read");
        let export = port.export(&ctx, subject).await.expect("export");
        assert_eq!(about().await.len(), held.len(), "the export records no event itself");
        let events: Vec<_> = export.iter().filter(|r| r.resource.kind == "access_event").collect();
        for e in &held {
            let id = audit::personal_data::event_ref(e.chain, e.sequence);
            assert!(events.iter().any(|r| r.resource.id == id && r.data["about_you"] == true), "{e:?}");
        }
        for e in &performed {
            let id = audit::personal_data::event_ref(e.chain, e.sequence);
            assert!(events.iter().any(|r| r.resource.id == id && r.data["by_you"] == true), "{e:?}");
        }
        let provider_read = events
            .iter()
            .find(|r| r.data["action"] == "read" && r.data["resource_kind"] == "condition" && r.data["by_you"] == false && r.data["roles"].as_array().is_some_and(|roles| roles.contains(&json!("provider"))))
            .unwrap_or_else(|| panic!("the provider's read: {export:?}"));
        assert_eq!(provider_read.data["organisation"], p.organisation.as_str());
        assert_eq!(provider_read.data["actor_kind"], "member");
        assert!(provider_read.data["actor"].is_string());
        assert!(events.iter().any(|r| r.data["action"] == "read" && r.data["by_you"] == true && r.data["about_you"] == true && r.data["actor"] == p.client.user_id.as_str()), "the client's own read");
        let disclosures: Vec<_> = export.iter().filter(|r| r.resource.kind == "disclosure").collect();
        assert_eq!(disclosures.len(), 1, "{export:?}");
        assert_eq!(disclosures[0].data["recipient"], "County Health Department");
        assert_eq!(disclosures[0].data["description"], "Notifiable condition report");
        assert_eq!(disclosures[0].data["purpose"], "legal");
        let text = serde_json::to_string(&export).expect("JSON");
        assert!(!text.contains(&p.other_client.user_id), "nothing of the other client");

        let outcomes = port.erase(&ctx, subject).await.expect("erased");
        assert_eq!(outcomes.len(), export.len(), "every exported record is reported");
        for outcome in &outcomes {
            match outcome.resource.kind {
                "access_event" => assert!(
                    matches!(&outcome.fate, RecordFate::Retained { until: Some(_), ground } if ground.citation.contains("164.316")),
                    "{outcome:?}"
                ),
                _ => assert_eq!(outcome.fate, RecordFate::Deleted),
            }
        }
        assert!(about().await.is_empty(), "no event names the subject any more");
        assert!(by().await.is_empty(), "nor the person as actor");
        assert!(port.export(&ctx, subject).await.expect("export").is_empty());
        assert!(port.erase(&ctx, subject).await.expect("again").is_empty(), "idempotent");

        let report = verification(&app, &p.auditor.token).await;
        assert_eq!(report["intact"], true, "{report}");
        assert!(report["pseudonymised"].as_u64().unwrap_or(0) >= held.len() as u64, "{report}");
        let (_, page) = get_json(&app, &p.auditor.token, &format!("/v1/organisations/{}/audit-events?limit=500", p.organisation)).await;
        let text = page.to_string();
        assert!(!text.contains(&subject.as_uuid().to_string()), "the subject's id is gone");
        assert!(!text.contains(&p.client.user_id), "the person's id is gone as actor");
        let (status, mine) = get_json(&app, &p.privacy_officer.token, &format!("{client_path}/disclosures")).await;
        assert_eq!(status, 200, "{mine}");
        assert_eq!(mine["items"].as_array().map(Vec::len), Some(0), "the sealed details went with the key");
        app.stop().await;
    }
);
