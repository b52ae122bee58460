//! Billing over HTTP (issue #7), end to end on both databases: plans and their
//! versions, exact money on the wire, trials, proration, cancellation, plan
//! limits, gapless invoice numbers under concurrency, tax, cards (never card
//! numbers), dunning, the processor's signed webhook, refunds, Idempotency-Key,
//! roles, D12 and the audit trail of every money-moving operation.

use kernel::Clock as _;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{TestApp, both_databases, both_databases_with_clock};

/// A practice whose owner (org_admin and provider) is signed in.
struct Practice {
    email: String,
    admin: String,
    org: String,
    owner_id: String,
}

impl Practice {
    async fn new(app: &TestApp, email: &str) -> Self {
        let admin = app.signed_in_provider(email).await;
        let org = app.organisation_of(&admin).await;
        let owner_id = app.member_id(&admin, email).await;
        Self {
            email: email.to_owned(),
            admin,
            org,
            owner_id,
        }
    }

    /// `/v1/organisations/{org}/billing` + `rest`.
    fn billing(&self, rest: &str) -> String {
        format!("/v1/organisations/{}/billing{rest}", self.org)
    }

    /// `/v1/operator/organisations/{org}/invoices` + `rest`.
    fn operator_invoices(&self, rest: &str) -> String {
        format!("/v1/operator/organisations/{}/invoices{rest}", self.org)
    }

    /// A fresh session, after the clock moved past the last one's lifetime.
    async fn sign_in_again(&mut self, app: &TestApp) {
        self.admin = app.sign_in(&self.email).await;
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    app.call(method, path, Some(token), body.as_ref()).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    call(app, Method::GET, path, token, None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    call(app, Method::POST, path, token, Some(body)).await
}

fn money(amount: &str, currency: &str) -> Value {
    json!({ "amount": amount, "currency": currency })
}

/// Creates a monthly plan (as the operator) and returns it.
async fn plan(app: &TestApp, operator: &str, code: &str, price: Value, extra: Value) -> Value {
    let mut body = json!({ "code": code, "name": format!("Plan {code}"), "price": price, "interval": "month" });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (status, plan) = post(app, "/v1/operator/plans", operator, body).await;
    assert_eq!(status, 201, "{plan}");
    plan
}

/// Writes the practice's billing account, billed in `country`.
async fn account(app: &TestApp, p: &Practice, country: &str) -> Value {
    let body = json!({
        "legal_name": "Harbour Physiotherapy Ltd",
        "contact_name": "Ada Lovelace",
        "email": "billing@harbour.example",
        "address_lines": ["1 Quay Street"],
        "city": "Hamburg",
        "postal_code": "20095",
        "country": country,
    });
    let (status, account) = call(
        app,
        Method::PUT,
        &p.billing("/account"),
        &p.admin,
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{account}");
    account
}

async fn card(app: &TestApp, p: &Practice, token: &str) -> Value {
    let (status, card) = post(
        app,
        &p.billing("/payment-methods"),
        &p.admin,
        json!({ "token": token }),
    )
    .await;
    assert_eq!(status, 201, "{card}");
    card
}

async fn subscribe(app: &TestApp, p: &Practice, code: &str) -> (u16, Value) {
    post(
        app,
        &p.billing("/subscription"),
        &p.admin,
        json!({ "plan_code": code }),
    )
    .await
}

async fn run_billing(app: &TestApp, operator: &str) -> Value {
    let (status, report) = post(app, "/v1/operator/billing-runs", operator, json!({})).await;
    assert_eq!(status, 200, "{report}");
    report
}

async fn subscription(app: &TestApp, p: &Practice) -> Value {
    let (status, s) = get(app, &p.billing("/subscription"), &p.admin).await;
    assert_eq!(status, 200, "{s}");
    s
}

async fn invoices(app: &TestApp, p: &Practice) -> Vec<Value> {
    let (status, page) = get(app, &p.billing("/invoices?limit=100"), &p.admin).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").clone()
}

fn days(n: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::days(n)
}

both_databases_with_clock!(async fn a_revised_price_applies_to_subscribers_at_their_renewal(app, clock) at "2026-01-01T00:00:00Z" {
    let operator = app.operator_session("operator@example.com").await;
    let mut p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    let (status, change) = subscribe(&app, &p, "basic").await;
    assert_eq!(status, 201, "{change}");
    assert_eq!(change["subscription"]["status"], "active");
    assert_eq!(change["subscription"]["plan_version"], 1);
    assert_eq!(change["subscription"]["current_period_end"], "2026-02-01T00:00:00+00:00");
    assert_eq!(change["invoice"]["total"], money("30.00", "EUR"));
    assert_eq!(change["invoice"]["status"], "paid");
    assert_eq!(change["payment"]["status"], "succeeded");

    // A new version at a new price: the plan shows it, the subscriber keeps theirs.
    let revision = json!({ "name": "Basic", "price": money("45.00", "EUR"), "interval": "month" });
    let (status, revised) = post(&app, "/v1/operator/plans/basic/versions", &operator, revision.clone()).await;
    assert_eq!(status, 201, "{revised}");
    assert_eq!(revised["version"], 2);
    assert_eq!(revised["price"], money("45.00", "EUR"));
    assert_eq!(revised["available"], true);
    let (status, shown) = get(&app, "/v1/plans/basic", &p.admin).await;
    assert_eq!((status, shown["version"].clone()), (200, json!(2)));
    let (_, list) = get(&app, "/v1/plans", &operator).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let current = subscription(&app, &p).await;
    assert_eq!((current["plan_version"].clone(), current["price"].clone()), (json!(1), money("30.00", "EUR")));
    let (status, _) = post(&app, "/v1/operator/plans/nothing-here/versions", &operator, revision.clone()).await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, "/v1/plans/nothing-here", &operator).await;
    assert_eq!(status, 404);
    let (status, _) = post(&app, "/v1/operator/plans/basic/versions", &p.admin, revision).await;
    assert_eq!(status, 403, "a practice admin is not the operator");

    // Nothing is due before the period ends.
    assert_eq!(run_billing(&app, &operator).await["renewed"], 0);
    clock.advance(days(31) + chrono::TimeDelta::seconds(1));
    let operator = app.operator_session("operator@example.com").await;
    p.sign_in_again(&app).await;
    let report = run_billing(&app, &operator).await;
    assert_eq!(report["renewed"], 1, "{report}");
    let renewed = subscription(&app, &p).await;
    assert_eq!(renewed["plan_version"], 2);
    assert_eq!(renewed["price"], money("45.00", "EUR"));
    assert_eq!(renewed["current_period_start"], "2026-02-01T00:00:00+00:00");
    assert_eq!(renewed["current_period_end"], "2026-03-01T00:00:00+00:00");
    let all = invoices(&app, &p).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["number"], 2);
    assert_eq!(all[0]["total"], money("45.00", "EUR"));
    assert_eq!(all[0]["status"], "paid");
    assert_eq!(all[1]["total"], money("30.00", "EUR"));
    // The run is idempotent: nothing more is due.
    assert_eq!(run_billing(&app, &operator).await["renewed"], 0);
    app.stop().await;
});

both_databases!(async fn money_is_exact_on_the_wire_and_refused_rather_than_rounded(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    // 17 significant digits, JPY without and KWD with three minor units.
    plan(&app, &operator, "huge", money("123456789012345.67", "EUR"), json!({})).await;
    plan(&app, &operator, "yen", money("1200", "JPY"), json!({})).await;
    plan(&app, &operator, "dinar", money("1.5", "KWD"), json!({})).await;
    for (code, expected) in [
        ("huge", money("123456789012345.67", "EUR")),
        ("yen", money("1200", "JPY")),
        ("dinar", money("1.500", "KWD")),
    ] {
        let (status, shown) = get(&app, &format!("/v1/plans/{code}"), &p.admin).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["price"], expected, "{code}");
    }
    let refused = [
        (money("12.345", "EUR"), "more decimal places"),
        (money("1.5", "JPY"), "more decimal places"),
        (money("1.2345", "KWD"), "more decimal places"),
        (money("-1.00", "EUR"), "negative"),
        (money("12.00", "XYZ"), "currency"),
        (money("twelve", "EUR"), "decimal number"),
    ];
    for (n, (price, rule)) in refused.into_iter().enumerate() {
        let body = json!({ "code": format!("bad-{n}"), "name": "Bad", "price": price, "interval": "month" });
        let (status, problem) = post(&app, "/v1/operator/plans", &operator, body).await;
        assert_eq!(status, 422, "{price} {problem}");
        assert_eq!(problem["type"], "urn:custodia:problem:validation-failed");
        let detail = problem["detail"].as_str().expect("a detail");
        assert!(detail.contains("`price`") && detail.contains(rule), "{detail}");
        assert!(!detail.contains(price["amount"].as_str().expect("amount")), "the value is never quoted: {detail}");
    }
    let (_, list) = get(&app, "/v1/plans", &operator).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 3, "nothing refused was stored");
    // An unknown plan code, and one that is not a code at all.
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    for code in ["no-such-plan", "Not A Code"] {
        let (status, problem) = subscribe(&app, &p, code).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().expect("detail").contains("`plan_code`"), "{problem}");
    }
    // The amount charged keeps every digit.
    let (status, change) = subscribe(&app, &p, "huge").await;
    assert_eq!(status, 201, "{change}");
    assert_eq!(change["invoice"]["total"], money("123456789012345.67", "EUR"));
    assert_eq!(change["payment"]["amount"], money("123456789012345.67", "EUR"));
    let (_, detail) = get(&app, &p.billing(&format!("/invoices/{}", change["invoice"]["id"].as_str().expect("id"))), &p.admin).await;
    assert_eq!(detail["invoice"]["amount_paid"], money("123456789012345.67", "EUR"));
    app.stop().await;
});

both_databases_with_clock!(async fn a_trial_converts_to_a_paid_period_at_its_end(app, clock) at "2026-03-10T09:00:00Z" {
    let operator = app.operator_session("operator@example.com").await;
    let mut p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "trial", money("20.00", "USD"), json!({ "trial_days": 14 })).await;
    account(&app, &p, "US").await;
    let (status, change) = subscribe(&app, &p, "trial").await;
    assert_eq!(status, 201, "{change}");
    assert_eq!(change["subscription"]["status"], "trialing");
    assert_eq!(change["subscription"]["trial_end"], "2026-03-24T09:00:00+00:00");
    assert!(change["invoice"].is_null() && change["payment"].is_null(), "a trial charges nothing: {change}");
    card(&app, &p, "tok_visa").await;
    let (_, status_view) = get(&app, &p.billing("/plan-status"), &p.admin).await;
    assert_eq!(status_view["status"], "trialing");
    assert_eq!(status_view["plan_code"], "trial");
    clock.advance(days(14) + chrono::TimeDelta::seconds(1));
    let operator = app.operator_session("operator@example.com").await;
    p.sign_in_again(&app).await;
    let report = run_billing(&app, &operator).await;
    assert_eq!(report["converted"], 1, "{report}");
    let converted = subscription(&app, &p).await;
    assert_eq!(converted["status"], "active");
    assert_eq!(converted["current_period_start"], "2026-03-24T09:00:00+00:00");
    assert_eq!(converted["current_period_end"], "2026-04-24T09:00:00+00:00");
    let all = invoices(&app, &p).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["total"], money("20.00", "USD"));
    assert_eq!(all[0]["status"], "paid");
    assert_eq!(app.notice_count(&p.owner_id, "billing_payment_succeeded").await, 1);
    app.stop().await;
});

both_databases_with_clock!(async fn upgrades_are_prorated_and_a_downgrade_credits_the_renewal(app, clock) at "2026-01-01T00:00:00Z" {
    let operator = app.operator_session("operator@example.com").await;
    let mut p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    plan(&app, &operator, "pro", money("62.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    assert_eq!(subscribe(&app, &p, "basic").await.0, 201);

    // Day 10 of 31: 21 days left. Pro for them is 62.00 × 21/31 = 42.00; basic's
    // unused 30.00 × 21/31 = 20.3225… is credited as 20.32.
    clock.advance(days(10));
    p.sign_in_again(&app).await;
    let (status, up) = post(&app, &p.billing("/subscription/plan-change"), &p.admin, json!({ "plan_code": "pro" })).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["subscription"]["plan_code"], "pro");
    assert_eq!(up["subscription"]["current_period_end"], "2026-02-01T00:00:00+00:00");
    let lines = up["invoice"]["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["kind"], "proration_charge");
    assert_eq!(lines[0]["amount"], money("42.00", "EUR"));
    assert_eq!(lines[1]["kind"], "proration_credit");
    assert_eq!(lines[1]["amount"], money("-20.32", "EUR"));
    assert_eq!(up["invoice"]["subtotal"], money("21.68", "EUR"));
    assert_eq!(up["invoice"]["total"], money("21.68", "EUR"));
    assert_eq!(up["invoice"]["status"], "paid");
    assert_eq!(up["payment"]["amount"], money("21.68", "EUR"));

    // Day 20: 11 days left. Pro's unused 62.00 × 11/31 = 22.00 against basic's
    // 30.00 × 11/31 = 10.645… → 10.65: a credit of 11.35 and no invoice.
    clock.advance(days(10));
    p.sign_in_again(&app).await;
    let (status, down) = post(&app, &p.billing("/subscription/plan-change"), &p.admin, json!({ "plan_code": "basic" })).await;
    assert_eq!(status, 200, "{down}");
    assert!(down["invoice"].is_null(), "{down}");
    assert_eq!(down["subscription"]["credit"], money("11.35", "EUR"));
    assert_eq!(invoices(&app, &p).await.len(), 2);

    // The renewal applies the credit: 30.00 − 11.35 = 18.65.
    clock.set(chrono::DateTime::parse_from_rfc3339("2026-02-01T00:00:01Z").expect("a time").into());
    let operator = app.operator_session("operator@example.com").await;
    p.sign_in_again(&app).await;
    assert_eq!(run_billing(&app, &operator).await["renewed"], 1);
    let all = invoices(&app, &p).await;
    let renewal = &all[0];
    assert_eq!(renewal["number"], 3);
    let lines = renewal["lines"].as_array().expect("lines");
    assert_eq!(lines[0]["kind"], "subscription");
    assert_eq!(lines[0]["amount"], money("30.00", "EUR"));
    assert_eq!(lines[1]["kind"], "applied_credit");
    assert_eq!(lines[1]["amount"], money("-11.35", "EUR"));
    assert_eq!(renewal["total"], money("18.65", "EUR"));
    assert_eq!(renewal["status"], "paid");
    assert_eq!(subscription(&app, &p).await["credit"], money("0.00", "EUR"));
    app.stop().await;
});

both_databases_with_clock!(async fn a_cancellation_takes_effect_at_the_period_end(app, clock) at "2026-01-15T12:00:00Z" {
    let operator = app.operator_session("operator@example.com").await;
    let mut p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    assert_eq!(subscribe(&app, &p, "basic").await.0, 201);
    let cancellation = p.billing("/subscription/cancellation");
    let (status, s) = post(&app, &cancellation, &p.admin, json!({})).await;
    assert_eq!((status, s["cancel_at_period_end"].clone()), (200, json!(true)), "{s}");
    let (status, s) = call(&app, Method::DELETE, &cancellation, &p.admin, None).await;
    assert_eq!((status, s["cancel_at_period_end"].clone()), (200, json!(false)), "{s}");
    let (status, s) = post(&app, &cancellation, &p.admin, json!({})).await;
    assert_eq!((status, s["status"].clone()), (200, json!("active")));
    // Still active until the period ends.
    assert_eq!(run_billing(&app, &operator).await["canceled"], 0);
    clock.advance(days(31));
    let operator = app.operator_session("operator@example.com").await;
    p.sign_in_again(&app).await;
    let report = run_billing(&app, &operator).await;
    assert_eq!((report["canceled"].clone(), report["renewed"].clone()), (json!(1), json!(0)), "{report}");
    let ended = subscription(&app, &p).await;
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["ended_at"], "2026-02-15T12:00:00+00:00");
    assert_eq!(invoices(&app, &p).await.len(), 1, "no renewal invoice");
    assert_eq!(app.notice_count(&p.owner_id, "billing_subscription_ended").await, 1);
    // Ended: resuming is a conflict, and a new subscription may start.
    let (status, _) = call(&app, Method::DELETE, &cancellation, &p.admin, None).await;
    assert_eq!(status, 409);
    assert_eq!(subscribe(&app, &p, "basic").await.0, 201);
    app.stop().await;
});

both_databases!(async fn a_plan_limit_refuses_the_third_client_and_a_second_provider(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    // Without a subscription a practice has no limits.
    app.signed_in_member(&p.admin, "early@example.com", "client").await;
    plan(&app, &operator, "small", money("10.00", "EUR"), json!({ "limits": { "active_clients": 2, "providers": 1 } })).await;
    plan(&app, &operator, "tiny", money("5.00", "EUR"), json!({ "limits": { "active_clients": 1 } })).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    let (status, change) = subscribe(&app, &p, "small").await;
    assert_eq!(status, 201, "{change}");
    assert_eq!(change["subscription"]["limits"], json!({ "active_clients": 2, "providers": 1 }));
    app.signed_in_member(&p.admin, "second@example.com", "client").await;
    let clients = format!("/v1/organisations/{}/clients", p.org);
    let third = json!({ "name": "Third Client", "email": "third@example.com", "date_of_birth": "1990-01-01",
        "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" } });
    let (status, problem) = post(&app, &clients, &p.admin, third).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:custodia:problem:plan-limit-reached");
    assert_eq!(problem["title"], "Plan limit reached");
    assert_eq!(problem["detail"], "The plan `small` allows at most 2 active_clients.");
    assert_eq!((problem["limit"].clone(), problem["max"].clone(), problem["plan"].clone()), (json!("active_clients"), json!(2), json!("small")));
    // The owner is the one provider the plan allows.
    let members = format!("/v1/organisations/{}/members", p.org);
    let (status, problem) = post(&app, &members, &p.admin, json!({ "name": "Second Provider", "email": "doc@example.com", "role": "provider" })).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["limit"], "providers");
    assert_eq!(problem["detail"], "The plan `small` allows at most 1 providers.");
    // Other roles are not limited.
    let (status, _) = post(&app, &members, &p.admin, json!({ "name": "Front Desk", "email": "desk@example.com", "role": "staff" })).await;
    assert_eq!(status, 202);
    let (_, status_view) = get(&app, &p.billing("/plan-status"), &p.admin).await;
    assert_eq!(status_view["usage"], json!({ "active_clients": 2, "providers": 1 }));
    assert_eq!(status_view["limits"], json!({ "active_clients": 2, "providers": 1 }));
    // A plan the practice already exceeds is refused, naming the limit.
    let (status, problem) = post(&app, &p.billing("/subscription/plan-change"), &p.admin, json!({ "plan_code": "tiny" })).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["limit"], "active_clients");
    assert_eq!(problem["max"], 1);
    assert_eq!(subscription(&app, &p).await["plan_code"], "small");
    app.stop().await;
});

both_databases!(async fn ten_concurrent_invoices_are_numbered_one_to_ten(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    let other = Practice::new(&app, "other@example.com").await;
    account(&app, &p, "FR").await;
    account(&app, &other, "FR").await;
    let body = json!({ "currency": "EUR", "lines": [{ "description": "Onboarding", "quantity": 1, "unit_amount": "99.00" }], "finalize": true });
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url(&p.operator_invoices(""));
            let operator = operator.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let resp = client.post(url).bearer_auth(operator).json(&body).send().await.expect("answers");
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.expect("JSON"))
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        let (status, invoice) = task.await.expect("the task finishes");
        assert_eq!(status, 201, "{invoice}");
        numbers.push(invoice["number"].as_u64().expect("a number"));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=10).collect::<Vec<u64>>());
    let listed = invoices(&app, &p).await;
    let shown: Vec<&str> = listed.iter().map(|i| i["display_number"].as_str().expect("display")).collect();
    let expected: Vec<String> = (1..=10).rev().map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(shown, expected);
    // Another practice's numbering is its own, and pages continue below `next_before`.
    let (status, first) = post(&app, &other.operator_invoices(""), &operator, body).await;
    assert_eq!((status, first["number"].clone()), (201, json!(1)));
    let (_, page) = get(&app, &p.billing("/invoices?limit=4"), &p.admin).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 4);
    assert_eq!(page["next_before"], 7);
    let (_, rest) = get(&app, &p.billing("/invoices?limit=100&before=7"), &p.admin).await;
    assert_eq!(rest["items"][0]["number"], 6);
    assert_eq!(rest["items"].as_array().expect("items").len(), 6);
    app.stop().await;
});

both_databases!(async fn invoices_apply_the_billing_countrys_tax_rate_exactly(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    let (status, rate) = call(&app, Method::PUT, "/v1/operator/tax-rates/DE", &operator, Some(json!({ "rate": "19", "name": "VAT" }))).await;
    assert_eq!(status, 200, "{rate}");
    assert_eq!((rate["country"].clone(), rate["rate"].clone(), rate["name"].clone()), (json!("DE"), json!("19"), json!("VAT")));
    for (path, body) in [
        ("/v1/operator/tax-rates/DE", json!({ "rate": "19.12345", "name": "VAT" })),
        ("/v1/operator/tax-rates/DE", json!({ "rate": "101", "name": "VAT" })),
        ("/v1/operator/tax-rates/DE", json!({ "rate": "nineteen", "name": "VAT" })),
        ("/v1/operator/tax-rates/XX", json!({ "rate": "19", "name": "VAT" })),
    ] {
        let (status, problem) = call(&app, Method::PUT, path, &operator, Some(body)).await;
        assert_eq!(status, 422, "{path} {problem}");
    }
    let (_, rates) = get(&app, "/v1/operator/tax-rates", &operator).await;
    assert_eq!(rates["items"].as_array().expect("items").len(), 1);
    assert_eq!(rates["items"][0]["rate"], "19", "the refused rates changed nothing");
    account(&app, &p, "DE").await;
    // 100.00 + 3 × 33.33 = 199.99; 19% of it is 37.9981, rounded once to 38.00.
    let body = json!({ "currency": "EUR", "finalize": true, "lines": [
        { "description": "Setup", "quantity": 1, "unit_amount": "100.00" },
        { "description": "Training session", "quantity": 3, "unit_amount": "33.33" },
    ]});
    let (status, invoice) = post(&app, &p.operator_invoices(""), &operator, body).await;
    assert_eq!(status, 201, "{invoice}");
    assert_eq!(invoice["lines"][1]["amount"], money("99.99", "EUR"));
    assert_eq!(invoice["subtotal"], money("199.99", "EUR"));
    assert_eq!(invoice["tax"], json!({ "country": "DE", "name": "VAT", "rate": "19", "amount": money("38.00", "EUR") }));
    assert_eq!(invoice["total"], money("237.99", "EUR"));
    assert_eq!(invoice["amount_due"], money("237.99", "EUR"));
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["bill_to"]["country"], "DE");
    // The currency's minor units hold in tax too: JPY 0, KWD 3.
    let yen = json!({ "currency": "JPY", "lines": [{ "description": "Seat", "quantity": 1, "unit_amount": "1200" }] });
    let (_, invoice) = post(&app, &p.operator_invoices(""), &operator, yen).await;
    assert_eq!(invoice["tax"]["amount"], money("228", "JPY"));
    assert_eq!(invoice["total"], money("1428", "JPY"));
    assert_eq!(invoice["status"], "draft");
    let dinar = json!({ "currency": "KWD", "lines": [{ "description": "Seat", "quantity": 1, "unit_amount": "1.500" }] });
    let (_, invoice) = post(&app, &p.operator_invoices(""), &operator, dinar).await;
    assert_eq!(invoice["tax"]["amount"], money("0.285", "KWD"));
    assert_eq!(invoice["total"], money("1.785", "KWD"));
    // A draft is finalized, then voided; it keeps its number.
    let id = invoice["id"].as_str().expect("id").to_owned();
    let (status, open) = post(&app, &p.operator_invoices(&format!("/{id}/finalization")), &operator, json!({})).await;
    assert_eq!((status, open["status"].clone()), (200, json!("open")));
    let (status, void) = post(&app, &p.operator_invoices(&format!("/{id}/void")), &operator, json!({})).await;
    assert_eq!((status, void["status"].clone(), void["number"].clone()), (200, json!("void"), json!(3)));
    let (status, _) = post(&app, &p.operator_invoices(&format!("/{id}/finalization")), &operator, json!({})).await;
    assert_eq!(status, 409, "a void invoice is not issued again");
    // Bad lines are refused, naming the field.
    for (lines, field) in [
        (json!([{ "description": "x", "quantity": 1, "unit_amount": "1.001" }]), "unit_amount"),
        (json!([{ "description": "x", "quantity": 1, "unit_amount": "-1.00" }]), "unit_amount"),
        (json!([{ "description": "4242 4242 4242 4242", "quantity": 1, "unit_amount": "1.00" }]), "description"),
    ] {
        let (status, problem) = post(&app, &p.operator_invoices(""), &operator, json!({ "currency": "EUR", "lines": lines })).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().expect("detail").contains(field), "{problem}");
    }
    let (status, _) = post(&app, &p.operator_invoices(""), &operator, json!({ "currency": "XYZ", "lines": [{ "description": "x", "quantity": 1, "unit_amount": "1" }] })).await;
    assert_eq!(status, 422);
    assert_eq!(invoices(&app, &p).await.len(), 3);
    app.stop().await;
});

both_databases!(async fn cards_are_tokens_and_a_card_number_is_never_stored(app) {
    let p = Practice::new(&app, "owner@example.com").await;
    // Nothing yet: no account, no subscription, no plan status but usage.
    assert_eq!(get(&app, &p.billing("/account"), &p.admin).await.0, 404);
    assert_eq!(get(&app, &p.billing("/subscription"), &p.admin).await.0, 404);
    let (status, view) = get(&app, &p.billing("/plan-status"), &p.admin).await;
    assert_eq!(status, 200);
    assert!(view["plan_code"].is_null() && view["status"].is_null(), "{view}");
    assert_eq!(view["usage"], json!({ "active_clients": 0, "providers": 1 }));
    // A card needs a billing account first.
    let (status, _) = post(&app, &p.billing("/payment-methods"), &p.admin, json!({ "token": "tok_visa" })).await;
    assert_eq!(status, 409);
    account(&app, &p, "GB").await;
    let visa = card(&app, &p, "tok_visa").await;
    assert_eq!((visa["brand"].clone(), visa["last4"].clone(), visa["exp_month"].clone(), visa["exp_year"].clone(), visa["is_default"].clone()),
        (json!("visa"), json!("4242"), json!(12), json!(2030), json!(true)));
    let master = card(&app, &p, "tok_mastercard").await;
    assert_eq!((master["last4"].clone(), master["is_default"].clone()), (json!("4444"), json!(true)));
    let (_, list) = get(&app, &p.billing("/payment-methods"), &p.admin).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], master["id"], "the default first");
    assert_eq!(items[1]["is_default"], false);
    for pan in ["4242 4242 4242 4242", "4242424242424242", "4242-4242-4242-4242"] {
        let (status, problem) = post(&app, &p.billing("/payment-methods"), &p.admin, json!({ "token": pan })).await;
        assert_eq!(status, 422, "{problem}");
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains(::billing::values::NO_CARD_NUMBERS), "{detail}");
        assert!(!detail.contains("4242"), "{detail}");
    }
    let (status, problem) = call(&app, Method::PUT, &p.billing("/account"), &p.admin, Some(json!({
        "legal_name": "Card 4242 4242 4242 4242 Ltd", "contact_name": "Ada", "email": "billing@harbour.example",
        "address_lines": ["1 Quay Street"], "city": "London", "postal_code": "E1 6AN", "country": "GB",
    }))).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().expect("detail").contains(::billing::values::NO_CARD_NUMBERS));
    let (status, problem) = post(&app, &p.billing("/payment-methods"), &p.admin, json!({ "token": "tok_never_issued" })).await;
    assert_eq!(status, 422, "{problem}");
    for (place, bytes) in app.raw_database_contents().await {
        for pan in ["4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242"] {
            assert!(!bytes.windows(pan.len()).any(|w| w == pan.as_bytes()), "{pan:?} stored in {place}");
        }
    }
    let (status, _) = call(&app, Method::DELETE, &p.billing(&format!("/payment-methods/{}", visa["id"].as_str().expect("id"))), &p.admin, None).await;
    assert_eq!(status, 204);
    let (_, list) = get(&app, &p.billing("/payment-methods"), &p.admin).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let (status, _) = call(&app, Method::DELETE, &p.billing(&format!("/payment-methods/{}", uuid::Uuid::now_v7())), &p.admin, None).await;
    assert_eq!(status, 404);
    // The account as written, without the processor's customer id.
    let (status, shown) = get(&app, &p.billing("/account"), &p.admin).await;
    assert_eq!(status, 200);
    assert_eq!(shown["contact_user_id"], p.owner_id.as_str());
    assert!(!shown.to_string().contains("cus_sandbox"), "{shown}");
    app.stop().await;
});

both_databases_with_clock!(async fn a_declined_card_is_402_then_dunning_ends_the_subscription(app, clock) at "2026-05-01T08:00:00Z" {
    let operator = app.operator_session("operator@example.com").await;
    let mut p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("49.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa_declined").await;
    let (status, problem) = subscribe(&app, &p, "basic").await;
    assert_eq!(status, 402, "{problem}");
    assert_eq!(problem["type"], "urn:custodia:problem:payment-failed");
    assert!(problem["detail"].as_str().expect("detail").contains("card_declined"), "{problem}");
    let payment_id = problem["payment_id"].as_str().expect("a payment id").to_owned();
    let s = subscription(&app, &p).await;
    assert_eq!(s["status"], "past_due");
    assert_eq!(s["dunning"]["failed_attempts"], 1);
    assert_eq!(s["dunning"]["next_attempt_at"], "2026-05-02T08:00:00+00:00");
    let invoice_id = s["dunning"]["invoice_id"].as_str().expect("an invoice").to_owned();
    let (_, detail) = get(&app, &p.billing(&format!("/invoices/{invoice_id}")), &p.admin).await;
    assert_eq!(detail["invoice"]["status"], "open");
    assert_eq!(detail["payments"][0]["id"], payment_id.as_str());
    assert_eq!(detail["payments"][0]["failure_code"], "card_declined");
    assert_eq!(app.notice_count(&p.owner_id, "billing_payment_failed").await, 1);
    let summary = app.notice_summary(&p.owner_id, "billing_payment_failed").await.expect("a notice");
    assert!(summary.contains("49.00 EUR") && summary.contains("INV-000001"), "{summary}");
    // Paying by hand is declined too, and recorded.
    let (status, _) = post(&app, &p.billing(&format!("/invoices/{invoice_id}/payments")), &p.admin, json!({})).await;
    assert_eq!(status, 402);
    // Retries after 1, 3 and 7 more days; the fourth failure ends it.
    for (n, wait) in [(2, 1), (3, 3), (4, 7)] {
        clock.advance(days(wait));
        let operator = app.operator_session("operator@example.com").await;
        let report = run_billing(&app, &operator).await;
        assert_eq!(report["failed"], 1, "attempt {n}: {report}");
        p.sign_in_again(&app).await;
        let s = subscription(&app, &p).await;
        if n < 4 {
            assert_eq!((s["status"].clone(), s["dunning"]["failed_attempts"].clone()), (json!("past_due"), json!(n)), "{s}");
        } else {
            assert_eq!(s["status"], "canceled", "{s}");
            assert_eq!(report["canceled"], 1);
        }
    }
    let (_, detail) = get(&app, &p.billing(&format!("/invoices/{invoice_id}")), &p.admin).await;
    assert_eq!(detail["invoice"]["status"], "uncollectible");
    assert_eq!(detail["payments"].as_array().expect("payments").len(), 5);
    assert_eq!(app.notice_count(&p.owner_id, "billing_payment_failed").await, 5);
    let last = app.notice_summary(&p.owner_id, "billing_payment_failed").await.expect("a notice");
    assert!(last.contains("No further attempt"), "{last}");
    app.stop().await;
});

/// A signed processor event about `charge`.
fn event(id: &str, kind: &str, created: i64, charge: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "id": id, "type": kind, "created": created, "data": { "object": { "id": charge } } }))
        .expect("JSON")
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/v1/billing/processor-events"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        req = req.header("Custodia-Processor-Signature", signature);
    }
    let resp = req.send().await.expect("answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

both_databases_with_clock!(async fn a_signed_webhook_settles_a_payment_once_and_in_order(app, clock) at "2026-06-01T10:00:00Z" {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("49.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa_action_required").await;
    let (status, problem) = subscribe(&app, &p, "basic").await;
    assert_eq!(status, 402, "{problem}");
    assert!(problem["detail"].as_str().expect("detail").contains("requires_action"), "{problem}");
    let payment = uuid::Uuid::parse_str(problem["payment_id"].as_str().expect("payment")).expect("a uuid");
    let charge = format!("ch_sandbox_{}", payment.simple());
    assert_eq!(app.notice_count(&p.owner_id, "billing_payment_requires_action").await, 1);
    let invoice_id = invoices(&app, &p).await[0]["id"].as_str().expect("id").to_owned();
    let invoice_path = p.billing(&format!("/invoices/{invoice_id}"));
    let (_, before) = get(&app, &invoice_path, &p.admin).await;
    assert_eq!(before["payments"][0]["status"], "requires_action");
    assert_eq!(before["invoice"]["status"], "open");
    let now = || clock.now().timestamp();
    let events = app.count_rows("billing_webhook_events").await;

    // Refused deliveries change nothing: no signature, a wrong one, a stale one,
    // a body that is not an event.
    let succeeded = event("evt_1", "charge.succeeded", now(), &charge);
    let signature = app.processor_signature(now(), &succeeded);
    let tampered = event("evt_1", "charge.succeeded", now(), "ch_sandbox_someone_else");
    for (body, header) in [
        (succeeded.clone(), None),
        (tampered, Some(signature.clone())),
        (succeeded.clone(), Some(app.processor_signature(now() - 301, &succeeded))),
        (succeeded.clone(), Some(app.processor_signature(now() + 301, &succeeded))),
        (succeeded.clone(), Some(format!("t={},v1=zz", now()))),
        (b"{\"id\": 5}".to_vec(), Some(app.processor_signature(now(), b"{\"id\": 5}"))),
    ] {
        let (status, problem) = deliver(&app, &body, header.as_deref()).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["type"], "urn:custodia:problem:bad-request");
    }
    assert_eq!(app.count_rows("billing_webhook_events").await, events);
    let (_, unchanged) = get(&app, &invoice_path, &p.admin).await;
    assert_eq!(unchanged["invoice"]["status"], "open");

    // The signed event settles the payment.
    let (status, receipt) = deliver(&app, &succeeded, Some(&signature)).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt, json!({ "received": true, "outcome": "applied" }));
    let (_, paid) = get(&app, &invoice_path, &p.admin).await;
    assert_eq!(paid["invoice"]["status"], "paid");
    assert_eq!(paid["payments"][0]["status"], "succeeded");
    assert_eq!(subscription(&app, &p).await["status"], "active");
    // The exact delivery again is a replay: 400, nothing changes.
    let (status, _) = deliver(&app, &succeeded, Some(&signature)).await;
    assert_eq!(status, 400);
    // The same event redelivered later with a new signature: a duplicate.
    clock.advance(chrono::TimeDelta::seconds(10));
    let (status, receipt) = deliver(&app, &succeeded, Some(&app.processor_signature(now(), &succeeded))).await;
    assert_eq!((status, receipt["outcome"].clone()), (200, json!("duplicate")));
    // An older event arriving after the newer one changes nothing.
    let older = event("evt_0", "charge.failed", now() - 100, &charge);
    let (status, receipt) = deliver(&app, &older, Some(&app.processor_signature(now(), &older))).await;
    assert_eq!((status, receipt["outcome"].clone()), (200, json!("stale")));
    let (_, after) = get(&app, &invoice_path, &p.admin).await;
    assert_eq!(after["payments"][0]["status"], "succeeded");
    assert_eq!(after["invoice"]["status"], "paid");
    // An object Custodia does not hold is recorded, changing nothing; an event
    // type it does not act on is ignored.
    let unknown = event("evt_2", "charge.succeeded", now(), "ch_sandbox_00000000000000000000000000000000");
    let (status, receipt) = deliver(&app, &unknown, Some(&app.processor_signature(now(), &unknown))).await;
    assert_eq!((status, receipt["outcome"].clone()), (200, json!("unknown_object")));
    let other = event("evt_3", "customer.updated", now(), "cus_sandbox_x");
    let (status, receipt) = deliver(&app, &other, Some(&app.processor_signature(now(), &other))).await;
    assert_eq!((status, receipt["outcome"].clone()), (200, json!("ignored")));
    assert_eq!(app.count_rows("billing_webhook_events").await, events + 4);
    assert_eq!(app.notice_count(&p.owner_id, "billing_payment_succeeded").await, 1);
    app.stop().await;
});

both_databases!(async fn refunds_never_exceed_what_was_paid(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    let (_, change) = subscribe(&app, &p, "basic").await;
    let invoice = change["invoice"]["id"].as_str().expect("an invoice").to_owned();
    let refunds = p.operator_invoices(&format!("/{invoice}/refunds"));
    let (status, refund) = post(&app, &refunds, &operator, json!({ "amount": money("10.00", "EUR"), "reason": "Goodwill" })).await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!((refund["amount"].clone(), refund["reason"].clone()), (money("10.00", "EUR"), json!("Goodwill")));
    let (status, problem) = post(&app, &refunds, &operator, json!({ "amount": money("20.01", "EUR") })).await;
    assert_eq!(status, 409, "{problem}");
    for amount in [money("-1.00", "EUR"), money("1.001", "EUR"), money("1.00", "XYZ")] {
        let (status, _) = post(&app, &refunds, &operator, json!({ "amount": amount })).await;
        assert_eq!(status, 422);
    }
    let (status, _) = post(&app, &refunds, &operator, json!({ "amount": money("20.00", "EUR") })).await;
    assert_eq!(status, 201);
    let (status, _) = post(&app, &refunds, &operator, json!({ "amount": money("0.01", "EUR") })).await;
    assert_eq!(status, 409);
    let (_, detail) = get(&app, &p.billing(&format!("/invoices/{invoice}")), &p.admin).await;
    assert_eq!(detail["invoice"]["amount_refunded"], money("30.00", "EUR"));
    assert_eq!(detail["refunds"].as_array().expect("refunds").len(), 2);
    assert_eq!(detail["payments"][0]["refunded"], money("30.00", "EUR"));
    // The practice cannot refund itself.
    let (status, _) = post(&app, &refunds, &p.admin, json!({ "amount": money("1.00", "EUR") })).await;
    assert_eq!(status, 403);
    app.stop().await;
});

async fn with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("answers");
    let status = resp.status().as_u16();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (status, replayed, resp.json().await.unwrap_or(Value::Null))
}

both_databases!(async fn an_idempotency_key_replays_the_first_answer(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    account(&app, &p, "FR").await;
    let path = p.operator_invoices("");
    let body = json!({ "currency": "EUR", "lines": [{ "description": "Onboarding", "quantity": 1, "unit_amount": "99.00" }] });
    let (status, replayed, first) = with_key(&app, &path, &operator, "key-1", &body).await;
    assert_eq!((status, replayed), (201, None), "{first}");
    let (status, replayed, again) = with_key(&app, &path, &operator, "key-1", &body).await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")));
    assert_eq!(again, first, "the first answer, replayed");
    assert_eq!(invoices(&app, &p).await.len(), 1, "one invoice");
    let mut other = body.clone();
    other["lines"][0]["unit_amount"] = json!("98.00");
    let (status, _, problem) = with_key(&app, &path, &operator, "key-1", &other).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["detail"], "The Idempotency-Key was already used with a different request.");
    for bad in ["k".repeat(256), "with space".to_owned()] {
        let (status, _, _) = with_key(&app, &path, &operator, &bad, &body).await;
        assert_eq!(status, 422);
    }
    // A refusal (4xx) is an answer too, replayed as given; another key runs anew.
    let bad_body = json!({ "currency": "XYZ", "lines": [{ "description": "x", "quantity": 1, "unit_amount": "1" }] });
    let (status, _, first) = with_key(&app, &path, &operator, "key-2", &bad_body).await;
    assert_eq!(status, 422);
    let (status, replayed, again) = with_key(&app, &path, &operator, "key-2", &bad_body).await;
    assert_eq!((status, replayed.as_deref()), (422, Some("true")));
    assert_eq!(again["detail"], first["detail"]);
    let (status, _, second) = with_key(&app, &path, &operator, "key-3", &body).await;
    assert_eq!((status, second["number"].clone()), (201, json!(2)));
    // Keys are the caller's: the same key from another caller is its own.
    let other_operator = app.operator_session("second-operator@example.com").await;
    let (status, replayed, third) = with_key(&app, &path, &other_operator, "key-1", &body).await;
    assert_eq!((status, replayed, third["number"].clone()), (201, None, json!(3)));
    // Eight concurrent first uses of one key: one runs, each other one is told it
    // is still running (409) or gets its answer replayed; one invoice.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, token, body) = (app.client.clone(), app.url(&path), operator.clone(), body.clone());
            tokio::spawn(async move {
                let resp = client.post(url).bearer_auth(token).header("Idempotency-Key", "key-4").json(&body).send().await.expect("answers");
                (resp.status().as_u16(), resp.headers().contains_key("idempotent-replayed"))
            })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        match task.await.expect("the task finishes") {
            (201, false) => fresh += 1,
            (201, true) | (409, false) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request ran");
    assert_eq!(invoices(&app, &p).await.len(), 4);
    app.stop().await;
});

both_databases!(async fn billing_answers_each_role_as_the_contract_says(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    let other = Practice::new(&app, "other@example.com").await;
    let provider = app.signed_in_member(&p.admin, "doc@example.com", "provider").await;
    let client = app.signed_in_member(&p.admin, "client@example.com", "client").await;
    let staff = app.signed_in_member(&p.admin, "desk@example.com", "staff").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    account(&app, &p, "FR").await;
    card(&app, &p, "tok_visa").await;
    assert_eq!(subscribe(&app, &p, "basic").await.0, 201);
    let (status, view) = get(&app, &p.billing("/plan-status"), &provider.token).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["plan_code"].clone(), view["status"].clone()), (json!("basic"), json!("active")));
    for path in ["/subscription", "/account", "/invoices", "/payment-methods"] {
        assert_eq!(get(&app, &p.billing(path), &provider.token).await.0, 403, "{path} by a provider");
        assert_eq!(get(&app, &p.billing(path), &client.token).await.0, 403, "{path} by a client");
        assert_eq!(get(&app, &p.billing(path), &staff.token).await.0, 403, "{path} by staff");
        assert_eq!(get(&app, &p.billing(path), &other.admin).await.0, 404, "{path} by another practice");
    }
    assert_eq!(get(&app, &p.billing("/plan-status"), &client.token).await.0, 403);
    assert_eq!(get(&app, &p.billing("/plan-status"), &other.admin).await.0, 404);
    let (status, _) = post(&app, &p.billing("/subscription/cancellation"), &provider.token, json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(subscription(&app, &p).await["cancel_at_period_end"], false);
    // The operator reads a practice's subscription and invoices, but manages
    // none of its cards or subscription.
    assert_eq!(get(&app, &p.billing("/subscription"), &operator).await.0, 200);
    assert_eq!(get(&app, &p.billing("/invoices"), &operator).await.0, 200);
    let (status, _) = post(&app, &p.billing("/subscription/cancellation"), &operator, json!({})).await;
    assert_eq!(status, 403);
    // Plans are for the operator and practice admins.
    assert_eq!(get(&app, "/v1/plans", &p.admin).await.0, 200);
    assert_eq!(get(&app, "/v1/plans", &provider.token).await.0, 403);
    assert_eq!(get(&app, "/v1/operator/tax-rates", &p.admin).await.0, 403);
    // The contact is a member of the practice (not a client, not someone else's).
    for contact in [client.user_id.as_str(), other.owner_id.as_str()] {
        let (status, problem) = call(&app, Method::PUT, &p.billing("/account"), &p.admin, Some(json!({
            "legal_name": "Harbour Ltd", "contact_name": "Ada", "email": "billing@harbour.example",
            "address_lines": ["1 Quay Street"], "city": "Hamburg", "postal_code": "20095", "country": "DE",
            "contact_user_id": contact,
        }))).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["detail"].as_str().expect("detail").contains("contact_user_id"));
    }
    app.stop().await;
});

both_databases_with_clock!(async fn exercising_a_privacy_right_never_changes_the_price(app, clock) at "2026-01-01T00:00:00Z" {
    // D12: two practices on the same plan; one admin exercises their rights (a
    // consent change, an export of their data), the other does not. Both renew
    // at the plan's price.
    let operator = app.operator_session("operator@example.com").await;
    let mut exercising = Practice::new(&app, "exercising@example.com").await;
    let mut quiet = Practice::new(&app, "quiet@example.com").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    for p in [&exercising, &quiet] {
        account(&app, p, "FR").await;
        card(&app, p, "tok_visa").await;
        assert_eq!(subscribe(&app, p, "basic").await.0, 201);
    }
    for action in ["grant", "withdraw"] {
        let (status, consent) = post(&app, "/v1/me/consents", &exercising.admin, json!({ "action": action, "purpose": "research" })).await;
        assert_eq!(status, 201, "{action}: {consent}");
    }
    let (status, _) = get(&app, "/v1/me/account-data", &exercising.admin).await;
    assert_eq!(status, 200);
    clock.advance(days(32));
    let operator = app.operator_session("operator@example.com").await;
    assert_eq!(run_billing(&app, &operator).await["renewed"], 2);
    for p in [&mut exercising, &mut quiet] {
        p.sign_in_again(&app).await;
        let renewal = &invoices(&app, p).await[0];
        assert_eq!(renewal["number"], 2);
        assert_eq!(renewal["total"], money("30.00", "EUR"));
        assert_eq!(renewal["status"], "paid");
        let s = subscription(&app, p).await;
        assert_eq!((s["status"].clone(), s["price"].clone()), (json!("active"), money("30.00", "EUR")));
    }
    app.stop().await;
});

/// The allowed audit events recorded for the request that got `response`.
async fn allowed_events(app: &TestApp, response: &reqwest::Response) -> usize {
    use audit::ports::EventFilter;
    let id: uuid::Uuid = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a uuid");
    app.state()
        .audit()
        .repository()
        .list_events(
            EventFilter::Request(id),
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            None,
            100,
        )
        .await
        .expect("the log reads")
        .into_iter()
        .filter(|e| e.denied.is_none())
        .count()
}

async fn audited(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
    expected: u16,
) -> Value {
    let resp = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status().as_u16(), expected, "{path}");
    let events = allowed_events(app, &resp).await;
    assert!(events >= 1, "{path} left no audit event");
    resp.json().await.unwrap_or(Value::Null)
}

both_databases!(async fn every_money_moving_operation_leaves_an_audit_event(app) {
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    let plan_body = json!({ "code": "basic", "name": "Basic", "price": money("30.00", "EUR"), "interval": "month" });
    audited(&app, Method::POST, "/v1/operator/plans", &operator, plan_body, 201).await;
    audited(&app, Method::POST, "/v1/operator/plans", &operator, json!({ "code": "pro", "name": "Pro", "price": money("60.00", "EUR"), "interval": "month" }), 201).await;
    audited(&app, Method::POST, "/v1/operator/plans/basic/versions", &operator, json!({ "name": "Basic", "price": money("30.00", "EUR"), "interval": "month" }), 201).await;
    audited(&app, Method::PUT, "/v1/operator/tax-rates/FR", &operator, json!({ "rate": "20", "name": "TVA" }), 200).await;
    audited(&app, Method::PUT, &p.billing("/account"), &p.admin, json!({
        "legal_name": "Harbour Ltd", "contact_name": "Ada", "email": "billing@harbour.example",
        "address_lines": ["1 Quay Street"], "city": "Paris", "postal_code": "75001", "country": "FR",
    }), 200).await;
    let declined = audited(&app, Method::POST, &p.billing("/payment-methods"), &p.admin, json!({ "token": "tok_visa_declined" }), 201).await;
    let subscribed = {
        let resp = app.client.post(app.url(&p.billing("/subscription"))).bearer_auth(&p.admin).json(&json!({ "plan_code": "basic" })).send().await.expect("answers");
        assert_eq!(resp.status(), 402, "a declined first charge");
        assert!(allowed_events(&app, &resp).await >= 2, "the subscription and the failed payment");
        resp
    };
    drop(subscribed);
    let invoice = invoices(&app, &p).await[0]["id"].as_str().expect("id").to_owned();
    audited(&app, Method::POST, &p.billing("/payment-methods"), &p.admin, json!({ "token": "tok_visa" }), 201).await;
    audited(&app, Method::DELETE, &p.billing(&format!("/payment-methods/{}", declined["id"].as_str().expect("id"))), &p.admin, json!({}), 204).await;
    audited(&app, Method::POST, &p.billing(&format!("/invoices/{invoice}/payments")), &p.admin, json!({}), 200).await;
    audited(&app, Method::POST, &p.billing("/subscription/plan-change"), &p.admin, json!({ "plan_code": "pro" }), 200).await;
    audited(&app, Method::POST, &p.billing("/subscription/cancellation"), &p.admin, json!({}), 200).await;
    audited(&app, Method::DELETE, &p.billing("/subscription/cancellation"), &p.admin, json!({}), 200).await;
    audited(&app, Method::POST, &p.operator_invoices(&format!("/{invoice}/refunds")), &operator, json!({ "amount": money("5.00", "EUR") }), 201).await;
    let draft = audited(&app, Method::POST, &p.operator_invoices(""), &operator, json!({ "currency": "EUR", "lines": [{ "description": "Setup", "quantity": 1, "unit_amount": "10.00" }] }), 201).await;
    let draft = draft["id"].as_str().expect("id").to_owned();
    audited(&app, Method::POST, &p.operator_invoices(&format!("/{draft}/finalization")), &operator, json!({}), 200).await;
    audited(&app, Method::POST, &p.operator_invoices(&format!("/{draft}/void")), &operator, json!({}), 200).await;
    audited(&app, Method::POST, "/v1/operator/billing-runs", &operator, json!({}), 200).await;
    // A refused attempt leaves a denied event.
    let resp = app.client.post(app.url(&p.operator_invoices(""))).bearer_auth(&p.admin)
        .json(&json!({ "currency": "EUR", "lines": [{ "description": "Setup", "quantity": 1, "unit_amount": "10.00" }] }))
        .send().await.expect("answers");
    assert_eq!(resp.status(), 403);
    let id: uuid::Uuid = resp.headers()["x-request-id"].to_str().expect("ascii").parse().expect("a uuid");
    let denied = app.state().audit().repository()
        .list_events(audit::ports::EventFilter::Request(id), chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, None, 10)
        .await.expect("the log reads");
    assert!(denied.iter().any(|e| e.denied.is_some()), "{denied:?}");
    app.stop().await;
});

both_databases!(async fn the_billing_contact_is_exported_then_anonymised_while_invoices_are_retained(app) {
    use kernel::PersonalData as _;
    use kernel::personal_data::RecordFate;
    let operator = app.operator_session("operator@example.com").await;
    let p = Practice::new(&app, "owner@example.com").await;
    plan(&app, &operator, "basic", money("30.00", "EUR"), json!({})).await;
    account(&app, &p, "DE").await;
    card(&app, &p, "tok_visa").await;
    let (status, change) = subscribe(&app, &p, "basic").await;
    assert_eq!(status, 201, "{change}");
    let invoice = change["invoice"]["id"].as_str().expect("an invoice").to_owned();

    // The subject behind the owner, as the rights engine would know it.
    let user = kernel::UserId::from_uuid(p.owner_id.parse().expect("a UUID"));
    let member = kernel::RequestContext::new(
        kernel::Actor::Member { user, roles: kernel::RoleSet::EMPTY },
        None,
        kernel::Purpose::SubjectRequest,
        kernel::RequestId::new(),
        kernel::ClientInfo::default(),
        app.state().clock().now(),
    );
    let (me, _) = app.state().identity().me(&member).await.expect("the account");
    let port = app.state().billing_personal_data().clone();
    let ctx = kernel::RequestContext::system("rights", kernel::Purpose::SubjectRequest, app.state().clock().now());

    let export = port.export(&ctx, me.subject).await.expect("export");
    let kinds: Vec<&str> = export.iter().map(|r| r.resource.kind).collect();
    assert_eq!(kinds, vec!["billing_account", "invoice", "payment_method"]);
    assert_eq!(export[0].data["bill_to"]["contact_name"], "Ada Lovelace");
    assert_eq!(export[1].data["number"], "INV-000001");
    assert_eq!(export[2].data["last4"], "4242");

    let outcomes = port.erase(&ctx, me.subject).await.expect("erase");
    let retained: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o.fate, RecordFate::Retained { .. }))
        .map(|o| o.resource.id.to_string())
        .collect();
    assert_eq!(retained, vec![invoice.clone()]);
    assert!(outcomes.iter().any(|o| o.resource.kind == "billing_account" && o.fate == RecordFate::Anonymised));

    // Over the API: the account's contact is anonymised, the invoice kept as issued.
    let (_, account) = get(&app, &p.billing("/account"), &p.admin).await;
    assert_eq!(account["contact_name"], "Erased contact");
    assert_eq!(account["legal_name"], "Harbour Physiotherapy Ltd");
    assert_eq!(account["anonymised"], true);
    let (_, detail) = get(&app, &p.billing(&format!("/invoices/{invoice}")), &p.admin).await;
    assert_eq!(detail["invoice"]["bill_to"]["contact_name"], "Ada Lovelace");
    // A second erasure changes nothing more.
    let again = port.erase(&ctx, me.subject).await.expect("again");
    assert!(again.iter().all(|o| o.fate != RecordFate::Anonymised));
    app.stop().await;
});
