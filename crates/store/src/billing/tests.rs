//! The billing adapters against migrated SQLite and PostgreSQL databases, with a
//! real keyring, and the identity adapter for the practices whose usage is
//! counted: each scenario runs on both (the PostgreSQL leg when
//! `CUSTODIA_TEST_POSTGRES_URL` is set).

use std::sync::Arc;

use billing::model::{
    BillTo, BillingAccount, CardBrand, Dunning, ERASED_CONTACT_EMAIL, ERASED_CONTACT_NAME,
    Interval, Invoice, InvoiceLine, InvoiceStatus, InvoiceTax, LineKind, NewInvoice, Payment,
    PaymentMethod, PaymentStatus, PlanLimits, PlanTerms, PlanVersion, Refund, Subscription,
    SubscriptionStatus, TaxRateEntry, WebhookEvent, WebhookOutcome,
};
use billing::ports::{
    BillingRepository, Changes, ContactErasure, PracticeUsage, RepositoryError, Write,
};
use billing::values::{BillingEmail, Country, Label, PlanCode, TaxRate};
use billing::{Currency, Money};
use chrono::{DateTime, TimeDelta, Utc};
use crypto::{BlindIndexer, IssuedToken, Keyring, MasterKey};
use identity::model::{AccountStatus, Membership, OneTimeToken, Organisation, TokenPurpose, User};
use identity::ports::{IdentityRepository, NewAccount, NewPractice, PeopleRepository};
use identity::values::{DataRegion, Email, MarketingMode, OrganisationName, PersonName};
use kernel::{OrganisationId, Role, SubjectId, SystemClock, UserId};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, EntityTrait as _, IntoActiveModel as _};
use uuid::Uuid;

use super::entity::billing_account;
use super::{
    IdempotencyBegin, SeaOrmBillingRepository, SeaOrmIdempotencyStore, SeaOrmPracticeUsage,
};
use crate::testing::{TestDatabase, a_user_row, contains, count_rows, raw_contents};
use crate::{Database, SeaOrmIdentityRepository, SeaOrmKeyStore};

/// Runs `scenario` on a fresh SQLite database and, when configured, PostgreSQL.
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(crate::testing::TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = crate::testing::TestDatabase::postgres().await {
                    super::$scenario(db).await;
                }
            }
        }
    )*};
}

on_both_databases!(
    plans_and_tax_rates_round_trip,
    accounts_and_payment_methods_round_trip,
    amounts_of_seventeen_digits_round_trip_exactly,
    concurrent_commits_number_invoices_without_gaps,
    a_stale_update_writes_nothing_of_its_batch,
    a_practice_has_one_live_subscription,
    due_subscriptions_come_oldest_first,
    invoices_page_newest_first_and_check_versions,
    payments_refunds_and_events_are_recorded_once,
    erasing_a_contact_anonymises_once,
    retention_anonymises_only_expired_invoices,
    billing_contacts_are_sealed_at_rest,
    a_bill_to_that_does_not_open_is_unavailable,
    idempotency_keys_replay_refuse_and_release,
    concurrent_begins_claim_a_key_once,
    usage_counts_members_in_use,
);

/// The adapters on one migrated database.
struct World {
    test_db: TestDatabase,
    identity: SeaOrmIdentityRepository,
    repo: Arc<SeaOrmBillingRepository>,
    keys: Arc<SeaOrmIdempotencyStore>,
    usage: SeaOrmPracticeUsage,
}

impl World {
    async fn new(test_db: TestDatabase) -> Self {
        let db = test_db.database().clone();
        db.migrate_up(None).await.expect("migrates");
        let master = MasterKey::generate().expect("randomness");
        let indexer = BlindIndexer::new(&master);
        let keyring = Keyring::new(
            master,
            Arc::new(SeaOrmKeyStore::new(db.clone())),
            Arc::new(SystemClock),
        );
        Self {
            identity: SeaOrmIdentityRepository::new(db.clone(), keyring.clone(), indexer),
            repo: Arc::new(SeaOrmBillingRepository::new(db.clone(), keyring.clone())),
            keys: Arc::new(SeaOrmIdempotencyStore::new(db.clone(), keyring)),
            usage: SeaOrmPracticeUsage::new(db),
            test_db,
        }
    }

    fn db(&self) -> &Database {
        self.test_db.database()
    }

    async fn count(&self, table: &str) -> u64 {
        count_rows(self.db(), table).await
    }

    async fn commit(&self, changes: Changes) -> Vec<Invoice> {
        self.repo.commit(changes).await.expect("commits")
    }

    /// The practice's counter, as stored (0 when it has none).
    async fn last_number(&self, organisation: OrganisationId) -> i64 {
        super::entity::billing_invoice_counter::Entity::find_by_id(organisation.as_uuid())
            .one(self.db().connection())
            .await
            .expect("reads")
            .map_or(0, |row| row.last_number)
    }

    async fn drop(self) {
        self.test_db.drop().await;
    }
}

/// A time with a microsecond part, far from round numbers.
const T0: DateTime<Utc> = DateTime::from_timestamp_micros(1_800_000_000_123_457).expect("valid");

fn at(days: i64) -> DateTime<Utc> {
    T0 + TimeDelta::days(days)
}

fn eur(amount: &str) -> Money {
    Money::parse(amount, Currency::EUR).expect("valid")
}

fn bill_to(contact: &str, email: &str) -> BillTo {
    BillTo {
        legal_name: Label::parse("legal_name", "Harbour Physiotherapy Ltd").expect("valid"),
        contact_name: Label::parse("contact_name", contact).expect("valid"),
        email: BillingEmail::parse(email).expect("valid"),
        address_lines: vec![
            Label::parse("address_lines", "1 Quay Street").expect("valid"),
            Label::parse("address_lines", "Suite 4").expect("valid"),
        ],
        city: Label::parse("city", "Galway").expect("valid"),
        postal_code: Label::parse("postal_code", "H91 X2Y3").expect("valid"),
        country: Country::parse("IE").expect("valid"),
        tax_id: Some(Label::parse("tax_id", "IE1234567T").expect("valid")),
    }
}

fn account(
    organisation: OrganisationId,
    contact: Option<UserId>,
    bill_to: BillTo,
) -> BillingAccount {
    BillingAccount {
        organisation,
        bill_to,
        contact_user: contact,
        processor_customer: Some(format!("cus_sandbox_{}", organisation.as_uuid().simple())),
        anonymised: false,
        updated_at: T0,
    }
}

fn plan(code: &str, price: Money, limits: PlanLimits) -> PlanVersion {
    PlanVersion {
        plan: Uuid::now_v7(),
        code: PlanCode::parse(code).expect("valid"),
        version: 1,
        terms: PlanTerms {
            name: Label::parse("name", "Practice Pro").expect("valid"),
            price,
            interval: Interval::Month,
            trial_days: 14,
            limits,
        },
        available: true,
        created_at: T0,
    }
}

fn card(
    organisation: OrganisationId,
    last4: &str,
    is_default: bool,
    by: Option<UserId>,
    day: i64,
) -> PaymentMethod {
    PaymentMethod {
        id: Uuid::now_v7(),
        organisation,
        processor_ref: format!("pm_sandbox_tok_{last4}"),
        brand: CardBrand::Visa,
        last4: last4.to_owned(),
        exp_month: 12,
        exp_year: 2030,
        is_default,
        added_by: by,
        created_at: at(day),
    }
}

fn subscription(
    organisation: OrganisationId,
    price: Money,
    status: SubscriptionStatus,
    ends: i64,
) -> Subscription {
    Subscription {
        id: Uuid::now_v7(),
        organisation,
        plan: Uuid::now_v7(),
        plan_code: PlanCode::parse("pro").expect("valid"),
        plan_version: 1,
        price,
        interval: Interval::Month,
        limits: PlanLimits {
            active_clients: Some(5),
            providers: None,
        },
        status,
        current_period_start: at(ends - 30),
        current_period_end: at(ends),
        trial_end: None,
        cancel_at_period_end: false,
        ended_at: None,
        credit: Money::zero(price.currency()),
        dunning: None,
        created_at: at(ends - 30),
        version: 1,
    }
}

/// `s` as its next version.
fn next<T: Clone>(s: &T, change: impl FnOnce(&mut T)) -> T {
    let mut s = s.clone();
    change(&mut s);
    s
}

fn new_invoice(
    organisation: OrganisationId,
    unit: Money,
    bill: Option<BillTo>,
    contact: Option<UserId>,
) -> NewInvoice {
    let currency = unit.currency();
    let amount = unit.times(Decimal::from(2)).expect("fits");
    let rate = TaxRate::new(Decimal::new(23, 0)).expect("valid");
    let tax = amount.times(Decimal::new(23, 2)).expect("fits");
    NewInvoice {
        id: Uuid::now_v7(),
        organisation,
        subscription: None,
        status: InvoiceStatus::Open,
        currency,
        lines: vec![InvoiceLine {
            kind: LineKind::Manual,
            description: Label::parse("description", "Onboarding workshop").expect("valid"),
            quantity: 2,
            unit_amount: unit,
            amount,
            period: Some((at(0), at(30))),
        }],
        subtotal: amount,
        tax: InvoiceTax {
            country: Country::parse("IE").expect("valid"),
            name: "VAT".to_owned(),
            rate,
            amount: tax,
        },
        total: amount.plus(tax).expect("fits"),
        bill_to: bill,
        contact_user: contact,
        created_at: at(0),
        due_at: at(14),
    }
}

fn payment(invoice: &Invoice, amount: Money, charge: &str) -> Payment {
    Payment {
        id: Uuid::now_v7(),
        organisation: invoice.body.organisation,
        invoice: invoice.body.id,
        payment_method: None,
        amount,
        status: PaymentStatus::Succeeded,
        processor_charge: Some(charge.to_owned()),
        failure_code: None,
        refunded: Money::zero(amount.currency()),
        created_at: at(1),
        last_event_at: None,
        version: 1,
    }
}

fn invoice_changes(invoice: NewInvoice) -> Changes {
    Changes {
        new_invoices: vec![invoice],
        ..Changes::default()
    }
}

fn tax_rate(country: &str, percent: Decimal, name: &str) -> TaxRateEntry {
    TaxRateEntry {
        country: Country::parse(country).expect("valid"),
        rate: TaxRate::new(percent).expect("valid"),
        name: Label::parse("name", name).expect("valid"),
        updated_at: T0,
    }
}

fn conflict(result: Result<impl std::fmt::Debug, RepositoryError>) -> &'static str {
    match result {
        Err(RepositoryError::Conflict(rule)) => rule,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn plans_and_tax_rates_round_trip(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let limits = PlanLimits {
        active_clients: Some(25),
        providers: Some(3),
    };
    let pro = plan("pro", eur("49.00"), limits);
    let basic = plan(
        "basic",
        Money::parse("1200", Currency::JPY).expect("valid"),
        PlanLimits::default(),
    );
    world.repo.create_plan(&pro).await.expect("creates");
    world.repo.create_plan(&basic).await.expect("creates");
    assert_eq!(
        conflict(
            world
                .repo
                .create_plan(&plan("pro", eur("1.00"), limits))
                .await
        ),
        "a plan with this code exists already"
    );
    assert_eq!(
        world.repo.plan(&pro.code).await.expect("reads"),
        Some(pro.clone())
    );

    let v2 = PlanVersion {
        version: 2,
        terms: PlanTerms {
            price: eur("59.00"),
            interval: Interval::Year,
            trial_days: 0,
            limits: PlanLimits {
                active_clients: None,
                providers: Some(10),
            },
            ..pro.terms.clone()
        },
        available: false,
        created_at: at(1),
        ..pro.clone()
    };
    world.repo.add_plan_version(&v2).await.expect("adds");
    assert_eq!(
        conflict(world.repo.add_plan_version(&v2).await),
        "the plan changed meanwhile; read it again"
    );
    assert_eq!(
        conflict(
            world
                .repo
                .add_plan_version(&PlanVersion {
                    version: 4,
                    ..v2.clone()
                })
                .await
        ),
        "the plan changed meanwhile; read it again"
    );
    assert_eq!(
        world.repo.plan(&pro.code).await.expect("reads"),
        Some(v2.clone())
    );
    assert_eq!(
        world.repo.plan_version(pro.plan, 1).await.expect("reads"),
        Some(pro.clone())
    );
    assert_eq!(
        world.repo.plan_version(pro.plan, 2).await.expect("reads"),
        Some(v2.clone())
    );
    assert_eq!(
        world.repo.plan_version(pro.plan, 3).await.expect("reads"),
        None
    );
    assert_eq!(world.repo.plans().await.expect("reads"), vec![basic, v2]);
    assert_eq!(
        world
            .repo
            .plan(&PlanCode::parse("gold").expect("valid"))
            .await
            .expect("reads"),
        None
    );

    let de = tax_rate("DE", Decimal::new(19, 0), "VAT");
    let us = tax_rate("US", Decimal::new(8875, 3), "Sales tax");
    world.repo.set_tax_rate(&de).await.expect("sets");
    world.repo.set_tax_rate(&us).await.expect("sets");
    let de2 = TaxRateEntry {
        rate: TaxRate::new(Decimal::new(7, 0)).expect("valid"),
        name: Label::parse("name", "MwSt").expect("valid"),
        updated_at: at(2),
        ..de
    };
    world.repo.set_tax_rate(&de2).await.expect("replaces");
    assert_eq!(
        world.repo.tax_rate(de.country).await.expect("reads"),
        Some(de2.clone())
    );
    assert_eq!(
        world
            .repo
            .tax_rate(Country::parse("FR").expect("valid"))
            .await
            .expect("reads"),
        None
    );
    assert_eq!(world.repo.tax_rates().await.expect("reads"), vec![de2, us]);
    world.drop().await;
}

async fn accounts_and_payment_methods_round_trip(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    let other = OrganisationId::new();
    let contact = UserId::new();
    assert_eq!(world.repo.account(practice).await.expect("reads"), None);

    let first = account(
        practice,
        Some(contact),
        bill_to("Olive Owner", "olive@harbour.example"),
    );
    world
        .commit(Changes {
            account: Some(first.clone()),
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world.repo.account(practice).await.expect("reads"),
        Some(first.clone())
    );
    let replaced = BillingAccount {
        bill_to: BillTo {
            address_lines: vec![Label::parse("address_lines", "2 Dock Road").expect("valid")],
            tax_id: None,
            ..bill_to("Bea Books", "books@harbour.example")
        },
        contact_user: None,
        processor_customer: None,
        updated_at: at(1),
        ..first.clone()
    };
    world
        .commit(Changes {
            account: Some(replaced.clone()),
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world.repo.account(practice).await.expect("reads"),
        Some(replaced)
    );
    assert_eq!(
        world
            .repo
            .accounts_of_contact(contact)
            .await
            .expect("reads"),
        vec![]
    );
    world
        .commit(Changes {
            account: Some(first.clone()),
            ..Changes::default()
        })
        .await;
    let elsewhere = account(
        other,
        Some(contact),
        bill_to("Olive Owner", "olive@other.example"),
    );
    world
        .commit(Changes {
            account: Some(elsewhere.clone()),
            ..Changes::default()
        })
        .await;
    let mut both = vec![first.clone(), elsewhere];
    both.sort_by_key(|a| a.organisation);
    assert_eq!(
        world
            .repo
            .accounts_of_contact(contact)
            .await
            .expect("reads"),
        both
    );

    // A new default unsets the others; the list is default first, then newest.
    let a = card(practice, "4242", true, Some(contact), 1);
    world
        .commit(Changes {
            new_payment_methods: vec![a.clone()],
            ..Changes::default()
        })
        .await;
    let b = card(practice, "4444", true, None, 2);
    let c = card(practice, "0002", false, Some(contact), 3);
    let theirs = card(other, "9995", true, Some(contact), 4);
    world
        .commit(Changes {
            new_payment_methods: vec![b.clone(), c.clone(), theirs.clone()],
            ..Changes::default()
        })
        .await;
    let a_now = PaymentMethod {
        is_default: false,
        ..a.clone()
    };
    assert_eq!(
        world.repo.payment_methods(practice).await.expect("reads"),
        vec![b.clone(), c.clone(), a_now.clone()]
    );
    assert_eq!(
        world.repo.payment_methods(other).await.expect("reads"),
        vec![theirs.clone()]
    );
    assert_eq!(
        world
            .repo
            .payment_methods_added_by(contact)
            .await
            .expect("reads"),
        vec![a_now.clone(), c.clone(), theirs]
    );
    world
        .commit(Changes {
            removed_payment_methods: vec![b.id],
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world.repo.payment_methods(practice).await.expect("reads"),
        vec![c.clone(), a_now]
    );
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    new_payment_methods: vec![c],
                    ..Changes::default()
                })
                .await
        ),
        "a payment method with this id exists already"
    );
    world.drop().await;
}

async fn amounts_of_seventeen_digits_round_trip_exactly(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    for (amount, currency) in [
        ("123456789012345.67", Currency::EUR),
        ("12345678901234567", Currency::JPY),
        ("12345678901234.567", Currency::KWD),
    ] {
        let practice = OrganisationId::new();
        let money = Money::parse(amount, currency).expect("valid");
        assert_eq!(money.minor().expect("fits"), 12_345_678_901_234_567);
        let small = Money::parse("1", currency).expect("valid");

        let p = plan(
            &format!("big-{}", currency.code().to_lowercase()),
            money,
            PlanLimits::default(),
        );
        world.repo.create_plan(&p).await.expect("creates");
        assert_eq!(
            world
                .repo
                .plan(&p.code)
                .await
                .expect("reads")
                .expect("stored")
                .terms
                .price,
            money
        );

        let s = Subscription {
            credit: money,
            ..subscription(practice, money, SubscriptionStatus::Active, 10)
        };
        // One line of the amount itself, untaxed, so the total is the amount.
        let body = NewInvoice {
            lines: vec![InvoiceLine {
                kind: LineKind::Subscription,
                description: Label::parse("description", "A very large plan").expect("valid"),
                quantity: 1,
                unit_amount: money,
                amount: money,
                period: None,
            }],
            subtotal: money,
            tax: InvoiceTax {
                country: Country::parse("KW").expect("valid"),
                name: "None".to_owned(),
                rate: TaxRate::ZERO,
                amount: Money::zero(currency),
            },
            total: money,
            ..new_invoice(practice, small, None, None)
        };
        let created = world
            .commit(Changes {
                subscription: Some(Write::Insert(s.clone())),
                new_invoices: vec![body],
                ..Changes::default()
            })
            .await;
        let invoice = created[0].clone();
        let paid = payment(&invoice, money, &format!("ch_{}", currency.code()));
        let settled = next(&invoice, |i| {
            i.amount_paid = money;
            i.amount_refunded = money;
            i.body.status = InvoiceStatus::Paid;
            i.paid_at = Some(at(1));
            i.version = 2;
        });
        let refund = Refund {
            id: Uuid::now_v7(),
            organisation: practice,
            payment: paid.id,
            invoice: invoice.body.id,
            amount: money,
            processor_refund: format!("re_{}", currency.code()),
            reason: None,
            created_at: at(2),
        };
        world
            .commit(Changes {
                invoices: vec![settled.clone()],
                payments: vec![Write::Insert(paid.clone())],
                refunds: vec![refund.clone()],
                ..Changes::default()
            })
            .await;

        assert_eq!(
            world.repo.subscription(practice).await.expect("reads"),
            Some(s)
        );
        let read = world
            .repo
            .invoice(practice, invoice.body.id)
            .await
            .expect("reads")
            .expect("stored");
        assert_eq!(read, settled);
        assert_eq!(read.body.total.amount().to_string(), amount);
        assert_eq!(read.body.lines[0].amount, money);
        assert_eq!(
            world.repo.payments(invoice.body.id).await.expect("reads"),
            vec![paid]
        );
        let refunds = world.repo.refunds(invoice.body.id).await.expect("reads");
        assert_eq!(refunds, vec![refund]);
        assert_eq!(refunds[0].amount.amount().to_string(), amount);
    }
    world.drop().await;
}

async fn concurrent_commits_number_invoices_without_gaps(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    let other = OrganisationId::new();
    let bill = bill_to("Olive Owner", "olive@harbour.example");
    // No counter row yet: the first commits race to create it.
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let repo = world.repo.clone();
            let organisation = if i % 5 == 4 { other } else { practice };
            let invoice = new_invoice(organisation, eur("10.00"), Some(bill.clone()), None);
            tokio::spawn(async move { repo.commit(invoice_changes(invoice)).await })
        })
        .collect();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for task in tasks {
        let created = task.await.expect("joins").expect("commits");
        assert_eq!(created.len(), 1);
        let invoice = &created[0];
        if invoice.body.organisation == practice {
            ours.push(invoice.number);
        } else {
            theirs.push(invoice.number);
        }
    }
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, (1..=20).collect::<Vec<u64>>());
    assert_eq!(theirs, (1..=5).collect::<Vec<u64>>());
    assert_eq!(world.last_number(practice).await, 20);
    assert_eq!(world.last_number(other).await, 5);
    let stored: Vec<u64> = world
        .repo
        .invoices(practice, None, 100)
        .await
        .expect("reads")
        .items
        .iter()
        .map(|i| i.number)
        .collect();
    assert_eq!(stored, (1..=20).rev().collect::<Vec<u64>>());

    // Several new invoices in one batch are numbered in the order given.
    let batch = world
        .commit(Changes {
            new_invoices: vec![
                new_invoice(practice, eur("1.00"), None, None),
                new_invoice(other, eur("2.00"), None, None),
                new_invoice(practice, eur("3.00"), None, None),
            ],
            ..Changes::default()
        })
        .await;
    let numbers: Vec<(OrganisationId, u64)> = batch
        .iter()
        .map(|i| (i.body.organisation, i.number))
        .collect();
    assert_eq!(numbers, vec![(practice, 21), (other, 6), (practice, 22)]);
    assert_eq!(batch[2].body.subtotal, eur("6.00"));
    world.drop().await;
}

async fn a_stale_update_writes_nothing_of_its_batch(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    let s = subscription(practice, eur("49.00"), SubscriptionStatus::Active, 10);
    let created = world
        .commit(Changes {
            subscription: Some(Write::Insert(s.clone())),
            new_invoices: vec![new_invoice(practice, eur("49.00"), None, None)],
            ..Changes::default()
        })
        .await;
    let first = created[0].clone();
    let v2 = next(&s, |s| {
        s.cancel_at_period_end = true;
        s.version = 2;
    });
    world
        .commit(Changes {
            subscription: Some(Write::Update(v2.clone())),
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world.repo.subscription(practice).await.expect("reads"),
        Some(v2.clone())
    );

    // A batch with a valid account, card, invoice, payment and event, and a
    // subscription update from a stale read: nothing of it is stored.
    let stale = next(&s, |s| {
        s.status = SubscriptionStatus::PastDue;
        s.version = 2;
    });
    let invoice = new_invoice(
        practice,
        eur("5.00"),
        Some(bill_to("Olive Owner", "o@h.example")),
        None,
    );
    let batch = Changes {
        account: Some(account(
            practice,
            None,
            bill_to("Olive Owner", "o@h.example"),
        )),
        new_payment_methods: vec![card(practice, "4242", true, None, 1)],
        subscription: Some(Write::Update(stale)),
        new_invoices: vec![invoice.clone()],
        payments: vec![Write::Insert(payment(&first, eur("1.00"), "ch_stale"))],
        webhook_event: Some(WebhookEvent {
            id: "evt_stale".to_owned(),
            kind: "charge.succeeded".to_owned(),
            object: Some("ch_stale".to_owned()),
            created: at(1),
            signed_at: 1_800_000_000,
            received_at: at(1),
            outcome: WebhookOutcome::Applied,
        }),
        ..Changes::default()
    };
    assert_eq!(
        conflict(world.repo.commit(batch).await),
        "the subscription changed meanwhile; read it again"
    );
    assert_eq!(
        world
            .repo
            .invoice(practice, invoice.id)
            .await
            .expect("reads"),
        None
    );
    assert_eq!(
        world.last_number(practice).await,
        1,
        "the counter did not move"
    );
    assert_eq!(world.count("billing_invoices").await, 1);
    assert_eq!(world.count("billing_accounts").await, 0);
    assert_eq!(world.count("billing_payment_methods").await, 0);
    assert_eq!(world.count("billing_payments").await, 0);
    assert_eq!(world.count("billing_webhook_events").await, 0);
    assert_eq!(
        world.repo.subscription(practice).await.expect("reads"),
        Some(v2)
    );

    // The next invoice takes the number the failed batch gave back.
    let created = world.commit(invoice_changes(invoice)).await;
    assert_eq!(created[0].number, 2);

    // Stale invoice and payment updates conflict likewise.
    let paid = payment(&first, eur("1.00"), "ch_1");
    world
        .commit(Changes {
            payments: vec![Write::Insert(paid.clone())],
            ..Changes::default()
        })
        .await;
    let stale_invoice = next(&first, |i| {
        i.body.status = InvoiceStatus::Void;
        i.version = 3;
    });
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    invoices: vec![stale_invoice],
                    ..Changes::default()
                })
                .await
        ),
        "the invoice changed meanwhile; read it again"
    );
    let stale_payment = next(&paid, |p| {
        p.status = PaymentStatus::Failed;
        p.version = 3;
    });
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    payments: vec![Write::Update(stale_payment)],
                    ..Changes::default()
                })
                .await
        ),
        "the payment changed meanwhile; read it again"
    );
    // A current version of another practice's, or another invoice's, row is not
    // this row.
    let elsewhere = next(&paid, |p| {
        p.organisation = OrganisationId::new();
        p.version = 2;
    });
    let other_invoice = next(&paid, |p| {
        p.invoice = Uuid::now_v7();
        p.version = 2;
    });
    for moved in [elsewhere, other_invoice] {
        assert_eq!(
            conflict(
                world
                    .repo
                    .commit(Changes {
                        payments: vec![Write::Update(moved)],
                        ..Changes::default()
                    })
                    .await
            ),
            "the payment changed meanwhile; read it again"
        );
    }
    let current = world
        .repo
        .subscription(practice)
        .await
        .expect("reads")
        .expect("stored");
    let taken = next(&current, |s| {
        s.organisation = OrganisationId::new();
        s.version += 1;
    });
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    subscription: Some(Write::Update(taken)),
                    ..Changes::default()
                })
                .await
        ),
        "the subscription changed meanwhile; read it again"
    );
    assert_eq!(
        world.repo.payments(first.body.id).await.expect("reads"),
        vec![paid]
    );
    world.drop().await;
}

async fn a_practice_has_one_live_subscription(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    assert_eq!(
        world.repo.subscription(practice).await.expect("reads"),
        None
    );
    let first = subscription(practice, eur("49.00"), SubscriptionStatus::Trialing, 10);
    world
        .commit(Changes {
            subscription: Some(Write::Insert(first.clone())),
            ..Changes::default()
        })
        .await;
    for status in [
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
    ] {
        let second = subscription(practice, eur("9.00"), status, 20);
        assert_eq!(
            conflict(
                world
                    .repo
                    .commit(Changes {
                        subscription: Some(Write::Insert(second)),
                        ..Changes::default()
                    })
                    .await
            ),
            "the practice already has a live subscription"
        );
    }
    // An ended subscription may be stored beside the live one.
    let ended = Subscription {
        ended_at: Some(at(-40)),
        created_at: at(-70),
        ..subscription(practice, eur("9.00"), SubscriptionStatus::Expired, -40)
    };
    world
        .commit(Changes {
            subscription: Some(Write::Insert(ended.clone())),
            ..Changes::default()
        })
        .await;
    // Concurrent subscribes of another practice: exactly one is live.
    let other = OrganisationId::new();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let repo = world.repo.clone();
            let s = subscription(other, eur("49.00"), SubscriptionStatus::Active, 10);
            tokio::spawn(async move {
                repo.commit(Changes {
                    subscription: Some(Write::Insert(s)),
                    ..Changes::default()
                })
                .await
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.expect("joins") {
            Ok(_) => stored += 1,
            Err(RepositoryError::Conflict(rule)) => {
                assert_eq!(rule, "the practice already has a live subscription");
            }
            Err(other) => panic!("unexpected failure: {other}"),
        }
    }
    assert_eq!(stored, 1);

    // Once the first ends, a new one may start, and is the one read.
    let canceled = next(&first, |s| {
        s.status = SubscriptionStatus::Canceled;
        s.ended_at = Some(at(10));
        s.version = 2;
    });
    let renewed = Subscription {
        created_at: at(10),
        ..subscription(practice, eur("59.00"), SubscriptionStatus::Active, 40)
    };
    world
        .commit(Changes {
            subscription: Some(Write::Update(canceled.clone())),
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world.repo.subscription(practice).await.expect("reads"),
        Some(canceled.clone())
    );
    // Making the canceled one live again while another is live conflicts.
    world
        .commit(Changes {
            subscription: Some(Write::Insert(renewed.clone())),
            ..Changes::default()
        })
        .await;
    let revived = next(&canceled, |s| {
        s.status = SubscriptionStatus::Active;
        s.version = 3;
    });
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    subscription: Some(Write::Update(revived)),
                    ..Changes::default()
                })
                .await
        ),
        "the practice already has a live subscription"
    );
    assert_eq!(
        world.repo.subscription(practice).await.expect("reads"),
        Some(renewed)
    );
    world.drop().await;
}

async fn due_subscriptions_come_oldest_first(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let now = at(100);
    let price = eur("49.00");
    let renew_early = subscription(OrganisationId::new(), price, SubscriptionStatus::Active, 90);
    let renew_late = subscription(
        OrganisationId::new(),
        price,
        SubscriptionStatus::Trialing,
        99,
    );
    let not_yet = subscription(
        OrganisationId::new(),
        price,
        SubscriptionStatus::Active,
        101,
    );
    let dunning = Subscription {
        dunning: Some(Dunning {
            invoice: Uuid::now_v7(),
            failed_attempts: 1,
            next_attempt_at: Some(at(95)),
        }),
        ..subscription(
            OrganisationId::new(),
            price,
            SubscriptionStatus::PastDue,
            120,
        )
    };
    let dunning_later = Subscription {
        dunning: Some(Dunning {
            invoice: Uuid::now_v7(),
            failed_attempts: 2,
            next_attempt_at: Some(at(103)),
        }),
        ..subscription(
            OrganisationId::new(),
            price,
            SubscriptionStatus::PastDue,
            120,
        )
    };
    let exhausted = Subscription {
        dunning: Some(Dunning {
            invoice: Uuid::now_v7(),
            failed_attempts: 3,
            next_attempt_at: None,
        }),
        ..subscription(
            OrganisationId::new(),
            price,
            SubscriptionStatus::PastDue,
            97,
        )
    };
    let ended = Subscription {
        ended_at: Some(at(50)),
        ..subscription(
            OrganisationId::new(),
            price,
            SubscriptionStatus::Canceled,
            50,
        )
    };
    for s in [
        &renew_early,
        &renew_late,
        &not_yet,
        &dunning,
        &dunning_later,
        &exhausted,
        &ended,
    ] {
        world
            .commit(Changes {
                subscription: Some(Write::Insert(s.clone())),
                ..Changes::default()
            })
            .await;
    }
    let due = world.repo.due_subscriptions(now, 10).await.expect("reads");
    assert_eq!(
        due,
        vec![
            renew_early.clone(),
            dunning.clone(),
            exhausted.clone(),
            renew_late
        ]
    );
    assert_eq!(
        world.repo.due_subscriptions(now, 2).await.expect("reads"),
        vec![renew_early, dunning.clone()]
    );
    assert_eq!(
        world.repo.due_subscriptions(now, 0).await.expect("reads"),
        vec![]
    );
    assert_eq!(
        world
            .repo
            .due_subscriptions(at(0), 10)
            .await
            .expect("reads"),
        vec![]
    );
    assert_eq!(
        world
            .repo
            .subscription(dunning.organisation)
            .await
            .expect("reads"),
        Some(dunning)
    );
    world.drop().await;
}

async fn invoices_page_newest_first_and_check_versions(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    let contact = UserId::new();
    let bill = bill_to("Olive Owner", "olive@harbour.example");
    let mut all = Vec::new();
    for i in 0..5 {
        let body = NewInvoice {
            created_at: at(i),
            ..new_invoice(
                practice,
                eur("10.00"),
                Some(bill.clone()),
                (i % 2 == 0).then_some(contact),
            )
        };
        all.extend(world.commit(invoice_changes(body)).await);
    }
    world
        .commit(invoice_changes(new_invoice(
            OrganisationId::new(),
            eur("1.00"),
            None,
            Some(contact),
        )))
        .await;
    let page = world.repo.invoices(practice, None, 2).await.expect("reads");
    assert_eq!(page.items, vec![all[4].clone(), all[3].clone()]);
    assert_eq!(page.next_before, Some(4));
    let page = world
        .repo
        .invoices(practice, Some(4), 2)
        .await
        .expect("reads");
    assert_eq!(page.items, vec![all[2].clone(), all[1].clone()]);
    assert_eq!(page.next_before, Some(2));
    let page = world
        .repo
        .invoices(practice, Some(2), 2)
        .await
        .expect("reads");
    assert_eq!(page.items, vec![all[0].clone()]);
    assert_eq!(page.next_before, None);
    let page = world
        .repo
        .invoices(practice, Some(u64::MAX), 0)
        .await
        .expect("reads");
    assert_eq!(
        page.items,
        vec![all[4].clone()],
        "a limit below 1 reads one"
    );

    // Only the practice's own invoice is found.
    assert_eq!(
        world
            .repo
            .invoice(OrganisationId::new(), all[0].body.id)
            .await
            .expect("reads"),
        None
    );
    assert_eq!(
        world
            .repo
            .invoice(practice, all[0].body.id)
            .await
            .expect("reads"),
        Some(all[0].clone())
    );
    let of_contact = world
        .repo
        .invoices_of_contact(contact)
        .await
        .expect("reads");
    assert_eq!(of_contact.len(), 4);
    assert!(
        of_contact
            .iter()
            .filter(|i| i.body.organisation == practice)
            .map(|i| i.number)
            .eq([1, 3, 5])
    );

    // An update changes what may change, and keeps the number.
    let voided = next(&all[1], |i| {
        i.body.status = InvoiceStatus::Void;
        i.closed_at = Some(at(7));
        i.version = 2;
    });
    world
        .commit(Changes {
            invoices: vec![voided.clone()],
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world
            .repo
            .invoice(practice, voided.body.id)
            .await
            .expect("reads"),
        Some(voided.clone())
    );
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    invoices: vec![voided.clone()],
                    ..Changes::default()
                })
                .await
        ),
        "the invoice changed meanwhile; read it again"
    );
    // An invoice of another practice, or under another number, is not updated.
    let renumbered = next(&voided, |i| {
        i.number = 9;
        i.version = 3;
    });
    let elsewhere = next(&voided, |i| {
        i.body.organisation = OrganisationId::new();
        i.version = 3;
    });
    for moved in [renumbered, elsewhere] {
        assert_eq!(
            conflict(
                world
                    .repo
                    .commit(Changes {
                        invoices: vec![moved],
                        ..Changes::default()
                    })
                    .await
            ),
            "the invoice changed meanwhile; read it again"
        );
    }
    assert_eq!(
        world
            .repo
            .invoice(practice, voided.body.id)
            .await
            .expect("reads"),
        Some(voided)
    );
    world.drop().await;
}

async fn payments_refunds_and_events_are_recorded_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    let invoice = world
        .commit(invoice_changes(new_invoice(
            practice,
            eur("10.00"),
            None,
            None,
        )))
        .await
        .remove(0);
    let failed = Payment {
        status: PaymentStatus::Failed,
        failure_code: Some("card_declined".to_owned()),
        processor_charge: None,
        payment_method: Some(Uuid::now_v7()),
        ..payment(&invoice, invoice.body.total, "unused")
    };
    let pending = Payment {
        status: PaymentStatus::RequiresAction,
        created_at: at(2),
        ..payment(&invoice, invoice.body.total, "ch_action")
    };
    world
        .commit(Changes {
            payments: vec![
                Write::Insert(failed.clone()),
                Write::Insert(pending.clone()),
            ],
            ..Changes::default()
        })
        .await;
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    payments: vec![Write::Insert(payment(&invoice, eur("1.00"), "ch_action"))],
                    ..Changes::default()
                })
                .await
        ),
        "this processor charge was already recorded"
    );
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    payments: vec![Write::Insert(failed.clone())],
                    ..Changes::default()
                })
                .await
        ),
        "a payment with this id exists already"
    );
    assert_eq!(
        world
            .repo
            .payment_by_charge("ch_action")
            .await
            .expect("reads"),
        Some(pending.clone())
    );
    assert_eq!(
        world
            .repo
            .payment_by_charge("ch_none")
            .await
            .expect("reads"),
        None
    );

    let event = WebhookEvent {
        id: "evt_1".to_owned(),
        kind: "charge.succeeded".to_owned(),
        object: Some("ch_action".to_owned()),
        created: at(3),
        signed_at: 1_800_000_123,
        received_at: at(3),
        outcome: WebhookOutcome::Applied,
    };
    let succeeded = next(&pending, |p| {
        p.status = PaymentStatus::Succeeded;
        p.last_event_at = Some(at(3));
        p.refunded = eur("2.50");
        p.version = 2;
    });
    let paid = next(&invoice, |i| {
        i.body.status = InvoiceStatus::Paid;
        i.amount_paid = i.body.total;
        i.amount_refunded = eur("2.50");
        i.paid_at = Some(at(3));
        i.version = 2;
    });
    let refund = Refund {
        id: Uuid::now_v7(),
        organisation: practice,
        payment: pending.id,
        invoice: invoice.body.id,
        amount: eur("2.50"),
        processor_refund: "re_1".to_owned(),
        reason: Some(Label::parse("reason", "Goodwill").expect("valid")),
        created_at: at(4),
    };
    world
        .commit(Changes {
            invoices: vec![paid.clone()],
            payments: vec![Write::Update(succeeded.clone())],
            refunds: vec![refund.clone()],
            webhook_event: Some(event.clone()),
            ..Changes::default()
        })
        .await;
    assert_eq!(
        world.repo.webhook_event("evt_1").await.expect("reads"),
        Some(event.clone())
    );
    assert_eq!(
        world.repo.webhook_event("evt_2").await.expect("reads"),
        None
    );
    assert_eq!(
        world.repo.payments(invoice.body.id).await.expect("reads"),
        vec![failed, succeeded]
    );
    assert_eq!(
        world.repo.refunds(invoice.body.id).await.expect("reads"),
        vec![refund.clone()]
    );
    assert_eq!(
        world
            .repo
            .invoice(practice, invoice.body.id)
            .await
            .expect("reads"),
        Some(paid)
    );

    // A redelivered event, or a refund recorded twice, changes nothing.
    let again = next(&event, |e| {
        e.signed_at += 60;
        e.outcome = WebhookOutcome::Ignored;
    });
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    webhook_event: Some(again),
                    ..Changes::default()
                })
                .await
        ),
        "this processor event was already recorded"
    );
    let twice = Refund {
        id: Uuid::now_v7(),
        ..refund.clone()
    };
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    refunds: vec![twice],
                    ..Changes::default()
                })
                .await
        ),
        "this processor refund was already recorded"
    );
    assert_eq!(
        conflict(
            world
                .repo
                .commit(Changes {
                    refunds: vec![Refund {
                        processor_refund: "re_2".to_owned(),
                        ..refund
                    }],
                    ..Changes::default()
                })
                .await
        ),
        "a refund with this id exists already"
    );
    assert_eq!(world.count("billing_refunds").await, 1);
    assert_eq!(world.count("billing_webhook_events").await, 1);
    world.drop().await;
}

async fn erasing_a_contact_anonymises_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let contact = UserId::new();
    let colleague = UserId::new();
    let practice = OrganisationId::new();
    let other = OrganisationId::new();
    let bystander = OrganisationId::new();
    let bill = bill_to("Olive Owner", "olive@harbour.example");
    let ours = account(practice, Some(contact), bill.clone());
    let theirs = account(
        other,
        Some(contact),
        bill_to("Olive Owner", "olive@other.example"),
    );
    let unrelated = account(
        bystander,
        Some(colleague),
        bill_to("Bea Books", "bea@b.example"),
    );
    let mine = card(practice, "4242", true, Some(contact), 1);
    let not_mine = card(practice, "4444", false, Some(colleague), 2);
    let invoice = world
        .commit(Changes {
            account: Some(ours.clone()),
            new_payment_methods: vec![mine.clone(), not_mine.clone()],
            new_invoices: vec![new_invoice(
                practice,
                eur("10.00"),
                Some(bill),
                Some(contact),
            )],
            ..Changes::default()
        })
        .await
        .remove(0);
    world
        .commit(Changes {
            account: Some(theirs.clone()),
            ..Changes::default()
        })
        .await;
    world
        .commit(Changes {
            account: Some(unrelated.clone()),
            ..Changes::default()
        })
        .await;

    let erased = world
        .repo
        .erase_contact(contact, at(9))
        .await
        .expect("erases");
    let mut accounts = vec![practice, other];
    accounts.sort_unstable();
    assert_eq!(
        erased,
        ContactErasure {
            accounts,
            payment_methods: vec![mine.id],
        }
    );
    for before in [&ours, &theirs] {
        let after = world
            .repo
            .account(before.organisation)
            .await
            .expect("reads")
            .expect("kept");
        assert_eq!(after.bill_to.contact_name.as_str(), ERASED_CONTACT_NAME);
        assert_eq!(after.bill_to.email.as_str(), ERASED_CONTACT_EMAIL);
        assert_eq!(
            after,
            BillingAccount {
                bill_to: before.bill_to.anonymised(),
                contact_user: None,
                anonymised: true,
                updated_at: at(9),
                ..before.clone()
            }
        );
    }
    assert_eq!(
        world.repo.account(bystander).await.expect("reads"),
        Some(unrelated)
    );
    assert_eq!(
        world
            .repo
            .accounts_of_contact(contact)
            .await
            .expect("reads"),
        vec![]
    );
    assert_eq!(
        world
            .repo
            .payment_methods_added_by(contact)
            .await
            .expect("reads"),
        vec![]
    );
    assert_eq!(
        world.repo.payment_methods(practice).await.expect("reads"),
        vec![
            PaymentMethod {
                added_by: None,
                ..mine
            },
            not_mine
        ]
    );
    // Invoices are retained as issued.
    assert_eq!(
        world
            .repo
            .invoices_of_contact(contact)
            .await
            .expect("reads"),
        vec![invoice]
    );

    // Once more: nothing left to change.
    assert_eq!(
        world
            .repo
            .erase_contact(contact, at(10))
            .await
            .expect("erases"),
        ContactErasure::default()
    );
    assert_eq!(
        world
            .repo
            .account(practice)
            .await
            .expect("reads")
            .map(|a| a.updated_at),
        Some(at(9))
    );
    world.drop().await;
}

/// R1: invoices older than their retention period lose their bill-to and contact
/// (and nothing else, and no other invoice); a dry run counts them and changes
/// nothing; a second sweep finds nothing; a writer holding an invoice read before
/// conflicts instead of writing the bill-to back.
async fn retention_anonymises_only_expired_invoices(test_db: TestDatabase) {
    use billing::personal_data::InvoiceRetention;
    use billing::retention::BillingRetention;
    use kernel::personal_data::{Expired, ExpiryAction, RetentionSweep};
    use kernel::{DataCategory, Purpose, RequestContext};

    let world = World::new(test_db).await;
    let practice = OrganisationId::new();
    let contact = UserId::new();
    let bill = || Some(bill_to("Olive Owner", "olive@harbour.example"));
    let issued = |days: i64, bill_to: Option<BillTo>, contact: Option<UserId>| NewInvoice {
        created_at: at(days),
        due_at: at(days + 14),
        ..new_invoice(practice, eur("10.00"), bill_to, contact)
    };
    // Seven years is 2,557 days: created before `now - 2557 days` has expired.
    let invoices = world
        .commit(Changes {
            new_invoices: vec![
                issued(-3_000, bill(), Some(contact)),
                issued(-2_558, bill(), None),
                issued(-2_600, None, Some(contact)),
                issued(-2_900, None, None),
                issued(-2_557, bill(), Some(contact)),
                issued(-10, bill(), Some(contact)),
            ],
            ..Changes::default()
        })
        .await;
    let paid = payment(&invoices[0], eur("24.60"), "ch_retained");
    world
        .commit(Changes {
            payments: vec![Write::Insert(paid.clone())],
            ..Changes::default()
        })
        .await;
    let now = at(0);
    let sweep = BillingRetention::new(world.repo.clone(), InvoiceRetention::default());
    assert_eq!(sweep.context(), "billing");
    let ctx = RequestContext::system("retention", Purpose::Legal, now);
    let expired = |records| {
        vec![Expired {
            category: DataCategory::Billing,
            action: ExpiryAction::Anonymised,
            records,
        }]
    };
    let stored = || async {
        let mut out = Vec::new();
        for invoice in &invoices {
            out.push(
                world
                    .repo
                    .invoice(practice, invoice.body.id)
                    .await
                    .expect("reads")
                    .expect("kept"),
            );
        }
        out
    };

    assert_eq!(
        sweep.sweep(&ctx, now, true).await.expect("counts"),
        expired(3)
    );
    assert_eq!(stored().await, invoices, "a dry run changes nothing");

    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expired(3)
    );
    let after = stored().await;
    for (n, (after, before)) in after.iter().zip(&invoices).enumerate() {
        if n < 3 {
            let anonymised = Invoice {
                body: NewInvoice {
                    bill_to: None,
                    contact_user: None,
                    ..before.body.clone()
                },
                version: before.version + 1,
                ..before.clone()
            };
            assert_eq!(
                after, &anonymised,
                "invoice {n} is anonymised, the rest kept"
            );
        } else {
            assert_eq!(after, before, "invoice {n} is untouched");
        }
    }
    assert_eq!(
        world
            .repo
            .invoices_of_contact(contact)
            .await
            .expect("reads"),
        invoices[4..].to_vec()
    );
    assert_eq!(
        world.count("billing_invoices").await,
        6,
        "nothing is deleted"
    );
    assert_eq!(
        world
            .repo
            .payments(invoices[0].body.id)
            .await
            .expect("reads"),
        vec![paid]
    );
    assert_eq!(
        sweep.sweep(&ctx, now, false).await.expect("sweeps"),
        expired(0)
    );
    assert_eq!(
        sweep.sweep(&ctx, now, true).await.expect("counts"),
        expired(0)
    );

    // A writer that read the invoice before the sweep cannot write its bill-to back.
    let stale = next(&invoices[0], |i| {
        i.body.status = InvoiceStatus::Paid;
        i.version += 1;
    });
    conflict(
        world
            .repo
            .commit(Changes {
                invoices: vec![stale],
                ..Changes::default()
            })
            .await,
    );
    assert_eq!(stored().await, after);
    world.drop().await;
}

async fn billing_contacts_are_sealed_at_rest(test_db: TestDatabase) {
    const NAME: &str = "CanaryContact Qx7vZ";
    const EMAIL: &str = "canary.qx7vz@harbour.example";
    const REPLY: &str = "CanaryReply Wq4Lm";
    let world = World::new(test_db).await;
    a_user_row(world.db()).await;
    let practice = OrganisationId::new();
    let bill = bill_to(NAME, EMAIL);
    let created = world
        .commit(Changes {
            account: Some(account(practice, Some(UserId::new()), bill.clone())),
            new_invoices: vec![new_invoice(
                practice,
                eur("10.00"),
                Some(bill.clone()),
                None,
            )],
            ..Changes::default()
        })
        .await;
    let paid = next(&created[0], |i| {
        i.body.status = InvoiceStatus::Paid;
        i.version = 2;
    });
    world
        .commit(Changes {
            invoices: vec![paid.clone()],
            ..Changes::default()
        })
        .await;
    let keys = &world.keys;
    assert_eq!(
        keys.begin("scope", "key-1", [1; 32], Some(practice), T0)
            .await
            .expect("begins"),
        IdempotencyBegin::Fresh
    );
    let body = format!("{{\"contact_name\":\"{REPLY}\"}}");
    keys.complete("scope", "key-1", 201, body.as_bytes())
        .await
        .expect("completes");

    let contents = raw_contents(world.db(), world.test_db.url()).await;
    assert!(!contents.is_empty());
    for (place, bytes) in contents {
        for canary in [NAME, EMAIL, REPLY] {
            assert!(
                !contains(&bytes, canary.as_bytes()),
                "a canary is in clear in {place}"
            );
        }
    }
    // ...though it reads back through the adapters.
    let read = world
        .repo
        .account(practice)
        .await
        .expect("reads")
        .expect("stored");
    assert_eq!(read.bill_to, bill);
    assert_eq!(
        world
            .repo
            .invoice(practice, paid.body.id)
            .await
            .expect("reads"),
        Some(paid)
    );
    assert_eq!(
        keys.begin("scope", "key-1", [1; 32], Some(practice), T0)
            .await
            .expect("begins"),
        IdempotencyBegin::Replay {
            status: 201,
            body: body.into_bytes(),
        }
    );
    world.drop().await;
}

async fn a_bill_to_that_does_not_open_is_unavailable(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let (a, b) = (OrganisationId::new(), OrganisationId::new());
    for practice in [a, b] {
        world
            .commit(Changes {
                account: Some(account(
                    practice,
                    None,
                    bill_to("Olive Owner", "o@h.example"),
                )),
                ..Changes::default()
            })
            .await;
    }
    // A's ciphertext moved into B's row does not open there.
    let conn = world.db().connection();
    let theirs = billing_account::Entity::find_by_id(a.as_uuid())
        .one(conn)
        .await
        .expect("reads")
        .expect("stored");
    let mine = billing_account::Entity::find_by_id(b.as_uuid())
        .one(conn)
        .await
        .expect("reads")
        .expect("stored");
    let mut row = mine.into_active_model();
    row.bill_to_enc = Set(theirs.bill_to_enc);
    row.update(conn).await.expect("updates");
    assert!(matches!(
        world.repo.account(b).await,
        Err(RepositoryError::Unavailable(_))
    ));
    assert!(world.repo.account(a).await.expect("reads").is_some());
    world.drop().await;
}

async fn idempotency_keys_replay_refuse_and_release(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let keys = &world.keys;
    let practice = Some(OrganisationId::new());
    let fresh = |scope: &'static str, key: &'static str, print: u8| {
        let keys = keys.clone();
        async move {
            keys.begin(scope, key, [print; 32], practice, T0)
                .await
                .expect("begins")
        }
    };
    assert_eq!(
        fresh("user/subscribe", "k1", 1).await,
        IdempotencyBegin::Fresh
    );
    assert_eq!(
        fresh("user/subscribe", "k1", 1).await,
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        fresh("user/subscribe", "k1", 2).await,
        IdempotencyBegin::Mismatch
    );
    // The same key in another scope is another key.
    assert_eq!(
        fresh("other/subscribe", "k1", 2).await,
        IdempotencyBegin::Fresh
    );

    keys.complete("user/subscribe", "k1", 201, b"{\"id\":1}")
        .await
        .expect("completes");
    let replay = IdempotencyBegin::Replay {
        status: 201,
        body: b"{\"id\":1}".to_vec(),
    };
    assert_eq!(fresh("user/subscribe", "k1", 1).await, replay);
    assert_eq!(
        fresh("user/subscribe", "k1", 2).await,
        IdempotencyBegin::Mismatch
    );
    // A completed key is neither completed again nor abandoned.
    keys.complete("user/subscribe", "k1", 500, b"other")
        .await
        .expect("completes");
    keys.abandon("user/subscribe", "k1")
        .await
        .expect("abandons");
    assert_eq!(fresh("user/subscribe", "k1", 1).await, replay);

    // An abandoned key can be used again, for any request.
    assert_eq!(fresh("user/pay", "k2", 1).await, IdempotencyBegin::Fresh);
    keys.abandon("user/pay", "k2").await.expect("abandons");
    assert_eq!(fresh("user/pay", "k2", 3).await, IdempotencyBegin::Fresh);

    // The platform's own requests are stored as they are.
    assert_eq!(
        keys.begin("operator/run", "k3", [4; 32], None, T0)
            .await
            .expect("begins"),
        IdempotencyBegin::Fresh
    );
    keys.complete("operator/run", "k3", 200, b"{\"renewed\":0}")
        .await
        .expect("completes");
    assert_eq!(
        keys.begin("operator/run", "k3", [4; 32], None, T0)
            .await
            .expect("begins"),
        IdempotencyBegin::Replay {
            status: 200,
            body: b"{\"renewed\":0}".to_vec(),
        }
    );

    // The purge deletes what was first used before the cutoff.
    assert_eq!(
        keys.begin("user/late", "k4", [5; 32], practice, at(2))
            .await
            .expect("begins"),
        IdempotencyBegin::Fresh
    );
    assert_eq!(keys.purge_before(at(1)).await.expect("purges"), 4);
    assert_eq!(world.count("idempotency_keys").await, 1);
    assert_eq!(
        fresh("user/subscribe", "k1", 2).await,
        IdempotencyBegin::Fresh
    );
    assert_eq!(keys.purge_before(at(1)).await.expect("purges"), 1);
    world.drop().await;
}

async fn concurrent_begins_claim_a_key_once(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let practice = Some(OrganisationId::new());
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let keys = world.keys.clone();
            tokio::spawn(async move {
                keys.begin("user/subscribe", "race", [7; 32], practice, T0)
                    .await
            })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        match task.await.expect("joins").expect("begins") {
            IdempotencyBegin::Fresh => fresh += 1,
            IdempotencyBegin::InProgress => {}
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(world.count("idempotency_keys").await, 1);
    world.drop().await;
}

/// A new practice whose owner is an org admin and a provider.
async fn practice(world: &World) -> OrganisationId {
    let organisation = Organisation {
        id: OrganisationId::new(),
        name: OrganisationName::parse("Harbour Physiotherapy").expect("valid"),
        region: DataRegion::Eu,
        marketing_mode: MarketingMode::OptOut,
        require_mfa: false,
        created_at: T0,
    };
    let user = person(organisation.id);
    let (_, hash) = IssuedToken::generate().expect("randomness").into_parts();
    let practice = NewPractice {
        memberships: [Role::OrgAdmin, Role::Provider]
            .into_iter()
            .map(|role| Membership {
                user: user.id,
                organisation: organisation.id,
                role,
                created_at: T0,
            })
            .collect(),
        verification: OneTimeToken {
            hash,
            purpose: TokenPurpose::VerifyEmail,
            user: user.id,
            expires_at: at(1),
        },
        password_hash: "$pbkdf2-sha256$i=600000,l=32$c2FsdA$aGFzaA".to_owned(),
        organisation,
        user,
    };
    world
        .identity
        .create_practice(&practice)
        .await
        .expect("stores the practice");
    practice.organisation.id
}

fn person(organisation: OrganisationId) -> User {
    User {
        id: UserId::new(),
        subject: SubjectId::new(),
        home_organisation: organisation,
        name: PersonName::parse("Casey Client").expect("valid"),
        email: Email::parse(&format!("{}@example.com", Uuid::now_v7().simple())).expect("valid"),
        phone: None,
        profession: None,
        status: AccountStatus::PendingVerification,
        email_verified_at: None,
        created_at: T0,
    }
}

/// A new account of `organisation` holding `roles`.
async fn member(world: &World, organisation: OrganisationId, roles: &[Role]) -> UserId {
    let user = person(organisation);
    let (_, hash) = IssuedToken::generate().expect("randomness").into_parts();
    world
        .identity
        .create_account(&NewAccount {
            memberships: roles
                .iter()
                .map(|role| Membership {
                    user: user.id,
                    organisation,
                    role: *role,
                    created_at: T0,
                })
                .collect(),
            date_of_birth: None,
            guardianship: None,
            activation: OneTimeToken {
                hash,
                purpose: TokenPurpose::ActivateAccount,
                user: user.id,
                expires_at: at(7),
            },
            user: user.clone(),
        })
        .await
        .expect("stores the account");
    user.id
}

async fn set_status(world: &World, user: UserId, status: AccountStatus) {
    use crate::identity::user::{Column as U, Entity as Users};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait as _, QueryFilter as _};
    Users::update_many()
        .col_expr(U::Status, Expr::value(status.as_str()))
        .filter(U::Id.eq(user.as_uuid()))
        .exec(world.db().connection())
        .await
        .expect("updates");
}

async fn usage_counts_members_in_use(test_db: TestDatabase) {
    let world = World::new(test_db).await;
    let ours = practice(&world).await;
    let theirs = practice(&world).await;
    assert_eq!(world.usage.active_clients(ours).await.expect("counts"), 0);
    assert_eq!(
        world.usage.providers(ours).await.expect("counts"),
        1,
        "the owner"
    );

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(member(&world, ours, &[Role::Client]).await);
    }
    let provider = member(&world, ours, &[Role::Provider]).await;
    member(&world, ours, &[Role::Provider, Role::Client]).await;
    member(&world, ours, &[Role::Staff]).await;
    member(&world, theirs, &[Role::Client]).await;
    member(&world, theirs, &[Role::Provider]).await;
    assert_eq!(world.usage.active_clients(ours).await.expect("counts"), 5);
    assert_eq!(world.usage.providers(ours).await.expect("counts"), 3);
    assert_eq!(world.usage.active_clients(theirs).await.expect("counts"), 1);
    assert_eq!(world.usage.providers(theirs).await.expect("counts"), 2);

    set_status(&world, clients[0], AccountStatus::Active).await;
    set_status(&world, clients[1], AccountStatus::Disabled).await;
    set_status(&world, clients[2], AccountStatus::Erased).await;
    set_status(&world, clients[3], AccountStatus::Frozen).await;
    set_status(&world, provider, AccountStatus::Disabled).await;
    assert_eq!(world.usage.active_clients(ours).await.expect("counts"), 2);
    assert_eq!(world.usage.providers(ours).await.expect("counts"), 2);
    // A membership removed no longer counts; the person's other roles stay.
    {
        use crate::identity::membership::{Column as M, Entity as Members};
        use sea_orm::{ColumnTrait as _, QueryFilter as _};
        Members::delete_many()
            .filter(M::UserId.eq(clients[0].as_uuid()))
            .exec(world.db().connection())
            .await
            .expect("deletes");
    }
    assert_eq!(world.usage.active_clients(ours).await.expect("counts"), 1);
    assert_eq!(world.usage.providers(ours).await.expect("counts"), 2);
    assert_eq!(world.usage.active_clients(theirs).await.expect("counts"), 1);
    world.drop().await;
}
