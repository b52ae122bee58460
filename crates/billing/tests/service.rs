//! The billing service over the in-memory repository and the sandbox processor:
//! proration, renewal at a new price, dunning, processor events, refunds, limits,
//! roles and the personal-data port. Storage and HTTP are tested in `store` and
//! `tests/`.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use billing::memory::MemoryBillingRepository;
use billing::model::{
    BillTo, Interval, InvoiceStatus, Limit, LineKind, PaymentStatus, PlanLimits, PlanTerms,
    ProcessorEvent, SubscriptionStatus, WebhookOutcome,
};
use billing::personal_data::{BillingPersonalData, InvoiceRetention, SubjectDirectory};
use billing::ports::{
    BillingNotice, BillingNotifier, BillingRepository, PracticeUsage, RepositoryError,
};
use billing::sandbox::SandboxProcessor;
use billing::service::{BillingConfig, BillingPorts, EventReceipt};
use billing::values::{BillingEmail, Country, Label, PlanCode, ProcessorToken, TaxRate};
use billing::{BillingError, BillingService, Currency, Money};
use chrono::{DateTime, Duration, Utc};
use kernel::personal_data::RecordFate;
use kernel::{
    Actor, AuditAction, AuditError, AuditEvent, AuditReceipt, AuditSink, ClientInfo,
    OrganisationId, PersonalData, Purpose, RequestContext, RequestId, Role, RoleSet, SubjectId,
    UserId,
};
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Default)]
struct Audit(Mutex<Vec<AuditEvent>>);

#[async_trait]
impl AuditSink for Audit {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        let mut events = self.0.lock().expect("lock");
        events.push(event);
        Ok(AuditReceipt {
            chain: Uuid::nil(),
            sequence: events.len() as u64,
        })
    }
}

#[derive(Default)]
struct Notices(Mutex<Vec<(OrganisationId, BillingNotice)>>);

#[async_trait]
impl BillingNotifier for Notices {
    async fn notify(
        &self,
        organisation: OrganisationId,
        notice: &BillingNotice,
    ) -> Result<(), RepositoryError> {
        self.0
            .lock()
            .expect("lock")
            .push((organisation, notice.clone()));
        Ok(())
    }
}

#[derive(Default)]
struct Usage {
    clients: AtomicU64,
}

#[async_trait]
impl PracticeUsage for Usage {
    async fn active_clients(&self, _: OrganisationId) -> Result<u64, RepositoryError> {
        Ok(self.clients.load(Ordering::SeqCst))
    }
    async fn providers(&self, _: OrganisationId) -> Result<u64, RepositoryError> {
        Ok(1)
    }
}

struct Directory(UserId, SubjectId);

#[async_trait]
impl SubjectDirectory for Directory {
    async fn user_of(&self, subject: SubjectId) -> Result<Option<UserId>, RepositoryError> {
        Ok((subject == self.1).then_some(self.0))
    }
}

struct World {
    repo: Arc<MemoryBillingRepository>,
    audit: Arc<Audit>,
    notices: Arc<Notices>,
    usage: Arc<Usage>,
    service: BillingService,
    org: OrganisationId,
    admin: UserId,
    operator: UserId,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid time")
        .with_timezone(&Utc)
}

fn eur(s: &str) -> Money {
    Money::parse(s, Currency::EUR).expect("valid amount")
}

fn terms(name: &str, price: Money, trial_days: u32, clients: Option<u32>) -> PlanTerms {
    PlanTerms {
        name: Label::parse("name", name).expect("valid name"),
        price,
        interval: Interval::Month,
        trial_days,
        limits: PlanLimits {
            active_clients: clients,
            providers: None,
        },
    }
}

fn bill_to(contact: &str) -> BillTo {
    BillTo {
        legal_name: Label::parse("legal_name", "Physio Berlin GmbH").expect("valid"),
        contact_name: Label::parse("contact_name", contact).expect("valid"),
        email: BillingEmail::parse("billing@physio.example").expect("valid"),
        address_lines: vec![Label::parse("address_lines", "Hauptstr. 1").expect("valid")],
        city: Label::parse("city", "Berlin").expect("valid"),
        postal_code: Label::parse("postal_code", "10115").expect("valid"),
        country: Country::parse("DE").expect("valid"),
        tax_id: None,
    }
}

impl World {
    fn new() -> Self {
        let repo = Arc::new(MemoryBillingRepository::new());
        let audit = Arc::new(Audit::default());
        let notices = Arc::new(Notices::default());
        let usage = Arc::new(Usage::default());
        let service = BillingService::new(
            BillingPorts {
                repository: repo.clone(),
                processor: Arc::new(SandboxProcessor),
                notifier: notices.clone(),
                usage: usage.clone(),
                audit: audit.clone(),
            },
            BillingConfig::default(),
        );
        Self {
            repo,
            audit,
            notices,
            usage,
            service,
            org: OrganisationId::new(),
            admin: UserId::new(),
            operator: UserId::new(),
        }
    }

    fn ctx(&self, actor: Actor, org: Option<OrganisationId>, when: &str) -> RequestContext {
        RequestContext::new(
            actor,
            org,
            Purpose::Operations,
            RequestId::new(),
            ClientInfo::default(),
            at(when),
        )
    }

    fn admin(&self, when: &str) -> RequestContext {
        self.ctx(
            Actor::Member {
                user: self.admin,
                roles: RoleSet::only(Role::OrgAdmin),
            },
            Some(self.org),
            when,
        )
    }

    fn operator(&self, when: &str) -> RequestContext {
        self.ctx(
            Actor::PlatformOperator {
                user: self.operator,
            },
            None,
            when,
        )
    }

    fn system(&self, when: &str) -> RequestContext {
        RequestContext::system("billing", Purpose::Payment, at(when))
    }

    /// Plans `basic` (30 EUR/month) and `pro` (90 EUR/month), VAT 19 % in DE, and
    /// the practice's account with `token` on file.
    async fn practice(&self, token: &str) {
        let op = self.operator("2026-01-01T00:00:00Z");
        self.service
            .create_plan(
                &op,
                PlanCode::parse("basic").expect("code"),
                terms("Basic", eur("30.00"), 0, Some(2)),
            )
            .await
            .expect("basic");
        self.service
            .create_plan(
                &op,
                PlanCode::parse("pro").expect("code"),
                terms("Pro", eur("90.00"), 0, None),
            )
            .await
            .expect("pro");
        self.service
            .set_tax_rate(
                &op,
                Country::parse("DE").expect("country"),
                TaxRate::new(Decimal::from(19)).expect("rate"),
                Label::parse("name", "VAT").expect("name"),
            )
            .await
            .expect("tax");
        let admin = self.admin("2026-01-01T00:00:00Z");
        self.service
            .save_account(&admin, self.org, bill_to("Anna Admin"), None)
            .await
            .expect("account");
        self.service
            .add_payment_method(
                &admin,
                self.org,
                ProcessorToken::parse(token).expect("token"),
            )
            .await
            .expect("card");
    }

    fn failed_notices(&self) -> usize {
        self.notices
            .0
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, n)| matches!(n, BillingNotice::PaymentFailed { .. }))
            .count()
    }
}

fn code(s: &str) -> PlanCode {
    PlanCode::parse(s).expect("code")
}

#[tokio::test]
async fn a_paid_subscription_is_invoiced_with_tax_and_charged_at_once() {
    let w = World::new();
    w.practice("tok_visa").await;
    let change = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    assert_eq!(change.subscription.status, SubscriptionStatus::Active);
    assert_eq!(
        change.subscription.current_period_end,
        at("2026-02-01T00:00:00Z")
    );
    let invoice = change.invoice.expect("an invoice");
    assert_eq!(invoice.number, 1);
    assert_eq!(invoice.body.subtotal, eur("30.00"));
    assert_eq!(invoice.body.tax.amount, eur("5.70"));
    assert_eq!(invoice.body.total, eur("35.70"));
    let stored = w
        .repo
        .invoice(w.org, invoice.body.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.body.status, InvoiceStatus::Paid);
    assert_eq!(stored.amount_paid, eur("35.70"));
    assert_eq!(
        change.payment.expect("a payment").status,
        PaymentStatus::Succeeded
    );
    // Every money-moving step was audited, for the practice, as payment.
    let events = w.audit.0.lock().expect("lock");
    assert!(
        events
            .iter()
            .any(|e| e.resource.kind == "payment" && e.action == AuditAction::Create)
    );
    assert!(
        events
            .iter()
            .filter(|e| e.resource.kind != "plan" && e.resource.kind != "tax_rate")
            .all(|e| e.organisation == Some(w.org) && e.purpose == Purpose::Payment)
    );
}

#[tokio::test]
async fn an_upgrade_is_prorated_by_the_days_left_and_a_downgrade_becomes_credit() {
    let w = World::new();
    w.practice("tok_visa").await;
    w.service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    // 21 of January's 31 days are left on the 11th.
    let up = w
        .service
        .change_plan(&w.admin("2026-01-11T00:00:00Z"), w.org, &code("pro"))
        .await
        .expect("upgraded");
    let invoice = up.invoice.expect("a proration invoice");
    let amounts: Vec<(LineKind, Money)> = invoice
        .body
        .lines
        .iter()
        .map(|l| (l.kind, l.amount))
        .collect();
    // 90 × 21/31 = 60.967… → 60.97; 30 × 21/31 = 20.322… → 20.32 (half away from zero).
    assert_eq!(
        amounts,
        vec![
            (LineKind::ProrationCharge, eur("60.97")),
            (LineKind::ProrationCredit, eur("-20.32")),
        ]
    );
    assert_eq!(invoice.body.subtotal, eur("40.65"));
    assert_eq!(invoice.body.tax.amount, eur("7.72")); // 7.7235
    assert_eq!(invoice.body.total, eur("48.37"));
    assert_eq!(up.subscription.price, eur("90.00"));
    assert_eq!(
        up.subscription.current_period_end,
        at("2026-02-01T00:00:00Z"),
        "the period is kept"
    );

    // Back down on the 21st: 11 days left: credit 90 × 11/31 = 31.94, charge
    // 30 × 11/31 = 10.65: 21.29 of credit for the next invoice, nothing charged.
    let down = w
        .service
        .change_plan(&w.admin("2026-01-21T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("downgraded");
    assert!(down.invoice.is_none());
    assert_eq!(down.subscription.credit, eur("21.29"));

    // The renewal applies the credit: 30.00 − 21.29 = 8.71, + 19 % = 10.36 (1.6549).
    let report = w
        .service
        .run_due(&w.system("2026-02-01T00:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!(report.renewed, 1);
    let page = w.repo.invoices(w.org, None, 10).await.expect("invoices");
    let renewal = &page.items[0];
    assert_eq!(renewal.number, 3);
    assert_eq!(renewal.body.subtotal, eur("8.71"));
    assert_eq!(renewal.body.tax.amount, eur("1.65"));
    assert_eq!(renewal.body.total, eur("10.36"));
    assert_eq!(renewal.body.status, InvoiceStatus::Paid);
    let subscription = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("live");
    assert!(subscription.credit.amount().is_zero());
    assert_eq!(subscription.current_period_end, at("2026-03-01T00:00:00Z"));
    assert_eq!(w.repo.invoice_numbers(w.org), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_price_change_waits_for_the_renewal() {
    let w = World::new();
    w.practice("tok_visa").await;
    w.service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    let revised = w
        .service
        .revise_plan(
            &w.operator("2026-01-15T00:00:00Z"),
            &code("basic"),
            terms("Basic", eur("35.00"), 0, Some(2)),
            true,
        )
        .await
        .expect("revised");
    assert_eq!(revised.version, 2);
    let current = w
        .service
        .subscription(&w.admin("2026-01-16T00:00:00Z"), w.org)
        .await
        .expect("read")
        .expect("live");
    assert_eq!(current.price, eur("30.00"), "kept until renewal");
    assert_eq!(current.plan_version, 1);
    w.service
        .run_due(&w.system("2026-02-01T00:00:01Z"), 100)
        .await
        .expect("run");
    let renewed = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("live");
    assert_eq!(renewed.price, eur("35.00"));
    assert_eq!(renewed.plan_version, 2);
    let page = w.repo.invoices(w.org, None, 1).await.expect("invoices");
    assert_eq!(page.items[0].body.subtotal, eur("35.00"));
}

#[tokio::test]
async fn a_declined_card_runs_the_dunning_schedule_then_cancels() {
    let w = World::new();
    w.practice("tok_visa_declined").await;
    let error = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect_err("declined");
    assert!(
        matches!(&error, BillingError::PaymentFailed { code, .. } if code == "card_declined"),
        "{error:?}"
    );
    let s = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(s.status, SubscriptionStatus::PastDue);
    let dunning = s.dunning.expect("dunning");
    assert_eq!(dunning.failed_attempts, 1);
    assert_eq!(dunning.next_attempt_at, Some(at("2026-01-02T00:00:00Z")));
    assert_eq!(w.failed_notices(), 1);

    // Nothing is due before the next attempt.
    let early = w
        .service
        .run_due(&w.system("2026-01-01T12:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!(early.failed, 0);

    for (when, attempts, next) in [
        ("2026-01-02T00:00:00Z", 2, Some("2026-01-05T00:00:00Z")),
        ("2026-01-05T00:00:00Z", 3, Some("2026-01-12T00:00:00Z")),
    ] {
        let report = w.service.run_due(&w.system(when), 100).await.expect("run");
        assert_eq!(report.failed, 1, "{when}");
        let s = w
            .repo
            .subscription(w.org)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(s.status, SubscriptionStatus::PastDue);
        let d = s.dunning.expect("dunning");
        assert_eq!(d.failed_attempts, attempts);
        assert_eq!(d.next_attempt_at, next.map(at));
    }
    let last = w
        .service
        .run_due(&w.system("2026-01-12T00:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!((last.failed, last.canceled), (1, 1));
    let s = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(s.status, SubscriptionStatus::Canceled);
    let invoice = &w.repo.invoices(w.org, None, 1).await.expect("page").items[0];
    assert_eq!(invoice.body.status, InvoiceStatus::Uncollectible);
    assert_eq!(w.failed_notices(), 4);
    assert_eq!(
        w.repo
            .payments(invoice.body.id)
            .await
            .expect("payments")
            .len(),
        4
    );
}

#[tokio::test]
async fn a_new_card_during_dunning_pays_on_the_next_attempt() {
    let w = World::new();
    w.practice("tok_visa_insufficient_funds").await;
    let _ = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect_err("declined");
    w.service
        .add_payment_method(
            &w.admin("2026-01-01T10:00:00Z"),
            w.org,
            ProcessorToken::parse("tok_mastercard").expect("token"),
        )
        .await
        .expect("card");
    let report = w
        .service
        .run_due(&w.system("2026-01-02T00:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!(report.renewed, 1);
    let s = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert!(s.dunning.is_none());
}

fn event(id: &str, kind: &str, object: &str, created: &str, signed_at: i64) -> ProcessorEvent {
    ProcessorEvent {
        id: id.to_owned(),
        kind: kind.to_owned(),
        object: Some(object.to_owned()),
        created: at(created),
        amount_minor: None,
        failure_code: None,
        signed_at,
    }
}

#[tokio::test]
async fn processor_events_settle_once_in_order_and_never_go_back() {
    let w = World::new();
    w.practice("tok_visa_action_required").await;
    let error = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect_err("needs the card holder");
    let BillingError::PaymentFailed {
        code: reason,
        payment,
    } = error
    else {
        panic!("expected PaymentFailed, got {error:?}");
    };
    assert_eq!(reason, "requires_action");
    let charge = SandboxProcessor::charge_ref(payment);
    let sys = w.system("2026-01-01T00:05:00Z");

    let receipt = w
        .service
        .handle_event(
            &sys,
            event(
                "evt_1",
                "charge.succeeded",
                &charge,
                "2026-01-01T00:04:00Z",
                100,
            ),
        )
        .await
        .expect("applied");
    assert_eq!(receipt, EventReceipt::Recorded(WebhookOutcome::Applied));
    let invoice = &w.repo.invoices(w.org, None, 1).await.expect("page").items[0];
    assert_eq!(invoice.body.status, InvoiceStatus::Paid);
    let paid_version = invoice.version;

    // The exact delivery again: a replay.
    assert!(matches!(
        w.service
            .handle_event(
                &sys,
                event(
                    "evt_1",
                    "charge.succeeded",
                    &charge,
                    "2026-01-01T00:04:00Z",
                    100
                )
            )
            .await,
        Err(BillingError::Replay)
    ));
    // The same event redelivered (a new signature): a duplicate.
    assert_eq!(
        w.service
            .handle_event(
                &sys,
                event(
                    "evt_1",
                    "charge.succeeded",
                    &charge,
                    "2026-01-01T00:04:00Z",
                    160
                )
            )
            .await
            .expect("duplicate"),
        EventReceipt::Duplicate
    );
    // An older failure arriving late changes nothing.
    assert_eq!(
        w.service
            .handle_event(
                &sys,
                event(
                    "evt_0",
                    "charge.failed",
                    &charge,
                    "2026-01-01T00:03:00Z",
                    170
                )
            )
            .await
            .expect("stale"),
        EventReceipt::Recorded(WebhookOutcome::Stale)
    );
    // An object nobody holds is recorded, with no change.
    assert_eq!(
        w.service
            .handle_event(
                &sys,
                event(
                    "evt_2",
                    "charge.succeeded",
                    "ch_elsewhere",
                    "2026-01-01T00:04:30Z",
                    180
                )
            )
            .await
            .expect("recorded"),
        EventReceipt::Recorded(WebhookOutcome::UnknownObject)
    );
    assert_eq!(
        w.service
            .handle_event(
                &sys,
                event(
                    "evt_3",
                    "customer.updated",
                    "cus_x",
                    "2026-01-01T00:04:40Z",
                    190
                )
            )
            .await
            .expect("recorded"),
        EventReceipt::Recorded(WebhookOutcome::Ignored)
    );
    let invoice = &w.repo.invoices(w.org, None, 1).await.expect("page").items[0];
    assert_eq!(invoice.version, paid_version);
    assert_eq!(invoice.body.status, InvoiceStatus::Paid);
    let s = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(s.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn refunds_never_exceed_what_was_paid() {
    let w = World::new();
    w.practice("tok_visa").await;
    let change = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    let invoice = change.invoice.expect("invoice").body.id;
    let op = w.operator("2026-01-02T00:00:00Z");
    let refund = w
        .service
        .refund(&op, w.org, invoice, eur("20.00"), None)
        .await
        .expect("partial refund");
    assert_eq!(refund.amount, eur("20.00"));
    assert!(matches!(
        w.service
            .refund(&op, w.org, invoice, eur("15.71"), None)
            .await,
        Err(BillingError::Conflict(_))
    ));
    assert!(matches!(
        w.service
            .refund(&op, w.org, invoice, eur("-1.00"), None)
            .await,
        Err(BillingError::Invalid(_))
    ));
    w.service
        .refund(&op, w.org, invoice, eur("15.70"), None)
        .await
        .expect("the rest");
    let view = w.service.invoice(&op, w.org, invoice).await.expect("view");
    assert_eq!(view.invoice.amount_refunded, eur("35.70"));
    assert_eq!(view.refunds.len(), 2);
}

#[tokio::test]
async fn plan_limits_name_the_limit_and_roles_are_kept() {
    let w = World::new();
    w.practice("tok_visa").await;
    // No subscription: no plan limits.
    w.usage.clients.store(50, Ordering::SeqCst);
    w.service
        .ensure_room(w.org, Limit::ActiveClients)
        .await
        .expect("unlimited without a plan");
    // A plan smaller than the practice is refused, naming the limit.
    let refused = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect_err("too small");
    assert!(matches!(
        refused,
        BillingError::LimitReached {
            limit: Limit::ActiveClients,
            max: 2,
            ..
        }
    ));
    w.usage.clients.store(1, Ordering::SeqCst);
    w.service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    w.service
        .ensure_room(w.org, Limit::ActiveClients)
        .await
        .expect("room for a second");
    w.usage.clients.store(2, Ordering::SeqCst);
    let full = w
        .service
        .ensure_room(w.org, Limit::ActiveClients)
        .await
        .expect_err("full");
    assert_eq!(full.to_string(), "the plan allows at most 2 active_clients");

    // Roles: a provider sees the plan status and nothing else; a client nothing;
    // another practice's admin gets NotFound.
    let provider = w.ctx(
        Actor::Member {
            user: UserId::new(),
            roles: RoleSet::only(Role::Provider),
        },
        Some(w.org),
        "2026-01-02T00:00:00Z",
    );
    let status = w
        .service
        .plan_status(&provider, w.org)
        .await
        .expect("status");
    assert_eq!(status.status, Some(SubscriptionStatus::Active));
    assert_eq!(status.plan_code, Some(code("basic")));
    assert!(matches!(
        w.service.invoices(&provider, w.org, None, 10).await,
        Err(BillingError::Forbidden(_))
    ));
    let client = w.ctx(
        Actor::Member {
            user: UserId::new(),
            roles: RoleSet::only(Role::Client),
        },
        Some(w.org),
        "2026-01-02T00:00:00Z",
    );
    assert!(matches!(
        w.service.plan_status(&client, w.org).await,
        Err(BillingError::Forbidden(_))
    ));
    let stranger = w.ctx(
        Actor::Member {
            user: UserId::new(),
            roles: RoleSet::only(Role::OrgAdmin),
        },
        Some(OrganisationId::new()),
        "2026-01-02T00:00:00Z",
    );
    assert!(matches!(
        w.service.subscription(&stranger, w.org).await,
        Err(BillingError::NotFound)
    ));
    assert!(matches!(
        w.service
            .create_plan(
                &w.admin("2026-01-02T00:00:00Z"),
                code("sneaky"),
                terms("Sneaky", eur("0.00"), 0, None)
            )
            .await,
        Err(BillingError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_trial_converts_with_a_card_and_expires_without_one() {
    let w = World::new();
    w.practice("tok_visa").await;
    let op = w.operator("2026-01-01T00:00:00Z");
    w.service
        .create_plan(&op, code("trial"), terms("Trial", eur("50.00"), 14, None))
        .await
        .expect("plan");
    let change = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("trial"))
        .await
        .expect("trialing");
    assert_eq!(change.subscription.status, SubscriptionStatus::Trialing);
    assert!(change.invoice.is_none());
    let report = w
        .service
        .run_due(&w.system("2026-01-15T00:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!(report.converted, 1);
    let s = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("live");
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(s.current_period_end, at("2026-02-15T00:00:00Z"));

    // Another practice without a card: the trial expires.
    let other = World::new();
    other.practice("tok_visa").await;
    let card = other.repo.payment_methods(other.org).await.expect("cards")[0].id;
    other
        .service
        .create_plan(
            &other.operator("2026-01-01T00:00:00Z"),
            code("trial"),
            terms("Trial", eur("50.00"), 14, None),
        )
        .await
        .expect("plan");
    other
        .service
        .subscribe(
            &other.admin("2026-01-01T00:00:00Z"),
            other.org,
            &code("trial"),
        )
        .await
        .expect("trialing");
    other
        .service
        .remove_payment_method(&other.admin("2026-01-02T00:00:00Z"), other.org, card)
        .await
        .expect("removed");
    let report = other
        .service
        .run_due(&other.system("2026-01-15T00:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!(report.expired, 1);
    let s = other
        .repo
        .subscription(other.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(s.status, SubscriptionStatus::Expired);
}

#[tokio::test]
async fn cancellation_takes_effect_at_the_period_end() {
    let w = World::new();
    w.practice("tok_visa").await;
    w.service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    let canceled = w
        .service
        .cancel(&w.admin("2026-01-10T00:00:00Z"), w.org)
        .await
        .expect("canceled");
    assert!(canceled.cancel_at_period_end);
    assert_eq!(canceled.status, SubscriptionStatus::Active);
    let report = w
        .service
        .run_due(&w.system("2026-02-01T00:00:00Z"), 100)
        .await
        .expect("run");
    assert_eq!(report.canceled, 1);
    let s = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(s.status, SubscriptionStatus::Canceled);
    assert_eq!(s.ended_at, Some(at("2026-02-01T00:00:00Z")));
    assert_eq!(w.repo.invoice_numbers(w.org), vec![1], "no renewal invoice");
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let w = World::new();
    w.practice("tok_visa").await;
    let admin = w.admin("2026-01-01T00:00:00Z");
    assert!(matches!(
        w.service.subscribe(&admin, w.org, &code("nope")).await,
        Err(BillingError::UnknownPlan)
    ));
    assert!(matches!(
        w.service
            .create_plan(
                &w.operator("2026-01-01T00:00:00Z"),
                code("negative"),
                terms("Negative", eur("-1.00"), 0, None)
            )
            .await,
        Err(BillingError::Invalid(_))
    ));
    assert!(matches!(
        w.service
            .add_payment_method(
                &admin,
                w.org,
                ProcessorToken::parse("tok_never_issued").expect("shape")
            )
            .await,
        Err(BillingError::ProcessorRejected(_))
    ));
    assert!(w.repo.subscription(w.org).await.expect("read").is_none());
    assert!(w.repo.invoice_numbers(w.org).is_empty());
    assert_eq!(
        Currency::parse("XYZ").map(|_| ()),
        Err(billing::MoneyError::UnknownCurrency)
    );
    assert!(Money::exact(Decimal::from_str("1.005").expect("decimal"), Currency::EUR).is_err());
}

#[tokio::test]
async fn the_billing_contact_is_exported_and_anonymised_while_invoices_are_retained() {
    let w = World::new();
    w.practice("tok_visa").await;
    w.service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect("subscribed");
    let subject = SubjectId::new();
    let port = BillingPersonalData::new(
        w.repo.clone(),
        Arc::new(Directory(w.admin, subject)),
        InvoiceRetention::default(),
    );
    let ctx = w.system("2026-03-01T00:00:00Z");
    let export = port.export(&ctx, subject).await.expect("export");
    let kinds: Vec<&str> = export.iter().map(|r| r.resource.kind).collect();
    assert_eq!(kinds, vec!["billing_account", "invoice", "payment_method"]);
    assert_eq!(export[0].data["bill_to"]["contact_name"], "Anna Admin");
    let json =
        serde_json::to_string(&export.iter().map(|r| &r.data).collect::<Vec<_>>()).expect("json");
    assert!(!json.contains("4242424242424242"));

    let outcomes = port.erase(&ctx, subject).await.expect("erase");
    let retained: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match &o.fate {
            RecordFate::Retained { ground, until } => Some((o.resource.kind, ground, until)),
            _ => None,
        })
        .collect();
    assert_eq!(retained.len(), 1);
    assert_eq!(retained[0].0, "invoice");
    assert!(retained[0].1.citation.contains("Art. 17(3)(b)"));
    assert_eq!(
        *retained[0].2,
        Some(at("2026-01-01T00:00:00Z") + Duration::days(2_557))
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.fate == RecordFate::Anonymised)
            .count(),
        2
    );
    let account = w.repo.account(w.org).await.expect("read").expect("kept");
    assert_eq!(account.bill_to.contact_name.as_str(), "Erased contact");
    assert_eq!(account.bill_to.legal_name.as_str(), "Physio Berlin GmbH");
    assert!(account.contact_user.is_none());
    // The invoice keeps its addressee as issued (tax law), and erasure is idempotent.
    let invoice = &w.repo.invoices(w.org, None, 1).await.expect("page").items[0];
    assert_eq!(
        invoice
            .body
            .bill_to
            .as_ref()
            .expect("bill to")
            .contact_name
            .as_str(),
        "Anna Admin"
    );
    let again = port.erase(&ctx, subject).await.expect("again");
    assert!(again.iter().all(|o| o.fate != RecordFate::Anonymised));
}

#[tokio::test]
async fn a_late_success_for_an_ended_subscription_is_applied_to_its_invoice() {
    let w = World::new();
    w.practice("tok_visa_action_required").await;
    let error = w
        .service
        .subscribe(&w.admin("2026-01-01T00:00:00Z"), w.org, &code("basic"))
        .await
        .expect_err("needs the card holder");
    let BillingError::PaymentFailed { payment, .. } = error else {
        panic!("expected PaymentFailed, got {error:?}");
    };
    w.service
        .cancel(&w.admin("2026-01-02T00:00:00Z"), w.org)
        .await
        .expect("canceled at period end");
    w.service
        .run_due(&w.system("2026-02-01T00:00:00Z"), 100)
        .await
        .expect("run");
    let ended = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(ended.status, SubscriptionStatus::Canceled);
    let receipt = w
        .service
        .handle_event(
            &w.system("2026-02-02T00:00:00Z"),
            event(
                "evt_late",
                "charge.succeeded",
                &SandboxProcessor::charge_ref(payment),
                "2026-02-01T12:00:00Z",
                300,
            ),
        )
        .await
        .expect("recorded");
    assert_eq!(receipt, EventReceipt::Recorded(WebhookOutcome::Applied));
    let invoice = &w.repo.invoices(w.org, None, 1).await.expect("page").items[0];
    assert_eq!(invoice.body.status, InvoiceStatus::Paid);
    let after = w
        .repo
        .subscription(w.org)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(after, ended, "an ended subscription stays as it ended");
}
