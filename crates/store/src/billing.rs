//! The billing context's ports: [`SeaOrmBillingRepository`] (billing's
//! `BillingRepository` on the `billing_*` tables), [`SeaOrmPracticeUsage`] (the
//! `PracticeUsage` counts, read from identity's `memberships` and `users`) and
//! [`SeaOrmIdempotencyStore`] (the HTTP layer's `Idempotency-Key`s on
//! `idempotency_keys`).
//!
//! Money is stored as integer minor units beside the ISO 4217 code and read back
//! with `Money::from_minor`, so an amount of 17 significant digits comes back
//! exactly on SQLite and PostgreSQL alike; a tax rate is its decimal string.
//!
//! A bill-to address (a practice's account, and each invoice as issued) is sealed
//! as JSON with the practice's own billing key: the data key of the subject whose
//! id is the practice's id, under the practice. It is not a person's key, so
//! erasing the billing contact never shreds it; instead the contact is anonymised
//! in place ([`BillingRepository::erase_contact`]). The JSON is a private shape of
//! this module and is parsed back through the domain's validating parsers; a sealed
//! value that does not open or parse is [`RepositoryError::Unavailable`]. Sealing
//! happens *before* a transaction begins (it may create the key, which writes, and
//! SQLite has one writer).
//!
//! [`BillingRepository::commit`] applies one `Changes` batch in one transaction,
//! every statement of which is a write, so SQLite holds its write lock from the
//! first statement and PostgreSQL takes row locks as it goes: the account upsert,
//! the cards (a new default first unsets the practice's other defaults), the
//! subscription (an update is conditional on the stored version; a second live
//! subscription breaks the unique index on `live_organisation_id`), the new
//! invoices (each takes the practice's next number with one
//! `INSERT ... ON CONFLICT DO UPDATE SET last_number = last_number + 1 RETURNING`
//! on its counter row, which concurrent commits take in turns, so numbers have no
//! gaps and a rolled-back commit gives its numbers back), invoice and payment
//! updates (conditional on their versions), refunds and the processor event. An
//! update matches its row by id, practice (and invoice, or number) and the version
//! it replaces, so a stale or misdirected one is a conflict. Any failure rolls the
//! whole batch back.
//!
//! A practice's subscription is its live one if it has one, else its latest.
//! Due work is read along two partial indexes over live subscriptions (period
//! ended; dunning attempt due), each cut at the limit, and merged oldest due first.
//! Erasing a billing contact reads and re-seals their accounts first, then writes
//! each only where its ciphertext is still the one read (else it starts again).

mod entity;
mod idempotency;
#[cfg(test)]
mod tests;
mod usage;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use async_trait::async_trait;
use billing::model::{
    BillTo, BillingAccount, CardBrand, Dunning, Interval, Invoice, InvoiceLine, InvoiceStatus,
    InvoiceTax, LineKind, NewInvoice, Payment, PaymentMethod, PaymentStatus, PlanLimits, PlanTerms,
    PlanVersion, Refund, Subscription, SubscriptionStatus, TaxRateEntry, WebhookEvent,
    WebhookOutcome,
};
use billing::ports::{
    BillingRepository, Changes, ContactErasure, InvoicePage, RepositoryError, Write,
};
use billing::values::{BillingEmail, Country, Label, PlanCode, TaxRate};
use billing::{Currency, Money};
use chrono::{DateTime, FixedOffset, Utc};
use crypto::{FieldBinding, Keyring, SubjectCipher};
use kernel::{OrganisationId, Sensitive, SubjectId, UserId};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query, SelectStatement};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, SqlErr, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::entity::{
    billing_account, billing_invoice, billing_invoice_counter, billing_payment,
    billing_payment_method, billing_plan, billing_plan_version, billing_refund,
    billing_subscription, billing_tax_rate, billing_webhook_event,
};
pub use self::idempotency::{IdempotencyBegin, SeaOrmIdempotencyStore};
pub use self::usage::SeaOrmPracticeUsage;
use crate::Database;
use crate::rows::{finish, stored, utc};

/// Field binding of a sealed account bill-to (bound to the practice's id, the
/// row's key).
const ACCOUNT_FIELD: &str = "billing_account.bill_to";
/// Field binding of a sealed invoice bill-to (bound to the invoice's id).
const INVOICE_FIELD: &str = "billing_invoice.bill_to";

const PLAN_VERSIONS: &str = "billing_plan_versions";
const TAX_RATES: &str = "billing_tax_rates";
const ACCOUNTS: &str = "billing_accounts";
const PAYMENT_METHODS: &str = "billing_payment_methods";
const SUBSCRIPTIONS: &str = "billing_subscriptions";
const INVOICES: &str = "billing_invoices";
const PAYMENTS: &str = "billing_payments";
const REFUNDS: &str = "billing_refunds";
const WEBHOOK_EVENTS: &str = "billing_webhook_events";

const PLAN_CODE_TAKEN: &str = "a plan with this code exists already";
const PLAN_EXISTS: &str = "a plan with this id exists already";
const PLAN_CHANGED: &str = "the plan changed meanwhile; read it again";
const SUBSCRIPTION_CHANGED: &str = "the subscription changed meanwhile; read it again";
const SUBSCRIPTION_LIVE: &str = "the practice already has a live subscription";
const SUBSCRIPTION_EXISTS: &str = "a subscription with this id exists already";
const PAYMENT_METHOD_EXISTS: &str = "a payment method with this id exists already";
const INVOICE_EXISTS: &str = "an invoice with this id exists already";
const INVOICE_CHANGED: &str = "the invoice changed meanwhile; read it again";
const PAYMENT_CHANGED: &str = "the payment changed meanwhile; read it again";
const PAYMENT_EXISTS: &str = "a payment with this id exists already";
const CHARGE_RECORDED: &str = "this processor charge was already recorded";
const REFUND_EXISTS: &str = "a refund with this id exists already";
const PROCESSOR_REFUND_RECORDED: &str = "this processor refund was already recorded";
const EVENT_RECORDED: &str = "this processor event was already recorded";
const ACCOUNT_CHANGED: &str = "the billing account changed meanwhile; erase the contact again";

/// The most invoices one page holds (the HTTP contract's bound).
const MAX_INVOICE_PAGE: u32 = 100;
/// How often an erasure re-reads accounts that changed between its read and its
/// transaction before it reports a conflict.
const ERASURE_ATTEMPTS: usize = 3;

/// Billing's plans, tax rates, accounts, cards, subscriptions, invoices, payments,
/// refunds and processor events on Custodia's database, every bill-to sealed by
/// the [`Keyring`] under the practice's billing key.
#[derive(Debug, Clone)]
pub struct SeaOrmBillingRepository {
    db: Database,
    keyring: Keyring,
}

impl SeaOrmBillingRepository {
    /// The repository on `db`, sealing with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }
}

/// Why a write was refused, or a row could not be read. Never names a value.
#[derive(Debug, thiserror::Error)]
enum Fault {
    /// A number does not fit the database's integers (or a stored one the domain's).
    #[error("a billing number is out of range")]
    OutOfRange,
    /// A value could not be encoded.
    #[error("a billing value could not be encoded")]
    Encoding,
    /// What was handed in breaks the port's contract (a first version other than
    /// 1, an amount in another currency than its invoice's).
    #[error("a billing write does not follow the repository's contract")]
    Inconsistent,
    /// A stored row does not decode.
    #[error("a row of {0} is malformed")]
    Corrupt(&'static str),
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(err))
}

fn corrupt(table: &'static str) -> RepositoryError {
    unavailable(Fault::Corrupt(table))
}

fn inconsistent() -> RepositoryError {
    unavailable(Fault::Inconsistent)
}

fn out_of_range() -> RepositoryError {
    unavailable(Fault::OutOfRange)
}

/// A write's error: a unique-key violation is the port's conflict, with
/// `on_column` when the violated index covers `column` (both databases name it in
/// their message: SQLite the column, PostgreSQL the index, named after it), else
/// with `otherwise`.
fn unique_conflict(
    err: DbErr,
    column: &str,
    on_column: &'static str,
    otherwise: &'static str,
) -> RepositoryError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains(column) => {
            RepositoryError::Conflict(on_column)
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict(otherwise),
        _ => unavailable(err),
    }
}

/// A write's error: any unique-key violation is the conflict `rule`.
fn conflict_or_unavailable(err: DbErr, rule: &'static str) -> RepositoryError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict(rule),
        _ => unavailable(err),
    }
}

/// The subject whose data key is the practice's billing key.
const fn billing_subject(organisation: OrganisationId) -> SubjectId {
    SubjectId::from_uuid(organisation.as_uuid())
}

fn signed(value: u32) -> Result<i32, RepositoryError> {
    i32::try_from(value).map_err(|_| out_of_range())
}

/// A stored version: from 1.
fn version_of(raw: i32, table: &'static str) -> Result<u32, RepositoryError> {
    u32::try_from(raw)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| corrupt(table))
}

fn unsigned(raw: i32, table: &'static str) -> Result<u32, RepositoryError> {
    u32::try_from(raw).map_err(|_| corrupt(table))
}

fn limit_of(raw: Option<i64>, table: &'static str) -> Result<Option<u32>, RepositoryError> {
    raw.map(|v| u32::try_from(v).map_err(|_| corrupt(table)))
        .transpose()
}

fn limits_of(
    active_clients: Option<i64>,
    providers: Option<i64>,
    table: &'static str,
) -> Result<PlanLimits, RepositoryError> {
    Ok(PlanLimits {
        active_clients: limit_of(active_clients, table)?,
        providers: limit_of(providers, table)?,
    })
}

/// The stored form of an amount.
fn minor_of(money: &Money) -> Result<i64, RepositoryError> {
    money.minor().map_err(|_| out_of_range())
}

/// The stored form of an amount that must be in `currency`.
fn minor_in(money: &Money, currency: Currency) -> Result<i64, RepositoryError> {
    if money.currency() == currency {
        minor_of(money)
    } else {
        Err(inconsistent())
    }
}

fn currency_of(code: &str, table: &'static str) -> Result<Currency, RepositoryError> {
    Currency::parse(code).map_err(|_| corrupt(table))
}

fn money_of(minor: i64, currency: Currency, table: &'static str) -> Result<Money, RepositoryError> {
    Money::from_minor(minor, currency).map_err(|_| corrupt(table))
}

fn rate_of(raw: &str, table: &'static str) -> Result<TaxRate, RepositoryError> {
    Decimal::from_str(raw)
        .ok()
        .and_then(|percent| TaxRate::new(percent).ok())
        .ok_or_else(|| corrupt(table))
}

fn opt_stored(at: Option<DateTime<Utc>>) -> Option<DateTime<FixedOffset>> {
    at.map(stored)
}

fn opt_utc(at: Option<DateTime<FixedOffset>>) -> Option<DateTime<Utc>> {
    at.map(utc)
}

/// A bill-to address as sealed: a private shape, parsed back through the domain's
/// parsers.
#[derive(Serialize, Deserialize)]
struct StoredBillTo {
    legal_name: String,
    contact_name: String,
    email: String,
    address_lines: Vec<String>,
    city: String,
    postal_code: String,
    country: String,
    tax_id: Option<String>,
}

impl StoredBillTo {
    fn of(bill_to: &BillTo) -> Self {
        Self {
            legal_name: bill_to.legal_name.as_str().to_owned(),
            contact_name: bill_to.contact_name.as_str().to_owned(),
            email: bill_to.email.as_str().to_owned(),
            address_lines: bill_to
                .address_lines
                .iter()
                .map(|line| line.as_str().to_owned())
                .collect(),
            city: bill_to.city.as_str().to_owned(),
            postal_code: bill_to.postal_code.as_str().to_owned(),
            country: bill_to.country.as_str().to_owned(),
            tax_id: bill_to.tax_id.as_ref().map(|t| t.as_str().to_owned()),
        }
    }

    /// The domain's value, or `None` when a field breaks its rule.
    fn parse(&self) -> Option<BillTo> {
        Some(BillTo {
            legal_name: Label::parse("legal_name", &self.legal_name).ok()?,
            contact_name: Label::parse("contact_name", &self.contact_name).ok()?,
            email: BillingEmail::parse(&self.email).ok()?,
            address_lines: self
                .address_lines
                .iter()
                .map(|line| Label::parse("address_lines", line).ok())
                .collect::<Option<_>>()?,
            city: Label::parse("city", &self.city).ok()?,
            postal_code: Label::parse("postal_code", &self.postal_code).ok()?,
            country: Country::parse(&self.country).ok()?,
            tax_id: match &self.tax_id {
                Some(t) => Some(Label::parse("tax_id", t).ok()?),
                None => None,
            },
        })
    }
}

/// Seals `bill_to` with the practice's billing key, bound to `binding`.
fn seal_bill_to(
    cipher: &SubjectCipher,
    binding: FieldBinding,
    bill_to: &BillTo,
) -> Result<Vec<u8>, RepositoryError> {
    let json = Sensitive::new(
        serde_json::to_vec(&StoredBillTo::of(bill_to)).map_err(|_| unavailable(Fault::Encoding))?,
    );
    cipher.seal(binding, json.expose()).map_err(unavailable)
}

const fn account_binding(organisation: Uuid) -> FieldBinding {
    FieldBinding::new(organisation, ACCOUNT_FIELD)
}

const fn invoice_binding(invoice: Uuid) -> FieldBinding {
    FieldBinding::new(invoice, INVOICE_FIELD)
}

/// An invoice line as stored in the `lines` JSON; every amount in the invoice's
/// currency.
#[derive(Serialize, Deserialize)]
struct StoredLine {
    kind: String,
    description: String,
    quantity: u32,
    unit_amount_minor: i64,
    amount_minor: i64,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
}

fn lines_json(lines: &[InvoiceLine], currency: Currency) -> Result<String, RepositoryError> {
    let stored = lines
        .iter()
        .map(|line| {
            Ok(StoredLine {
                kind: line.kind.as_str().to_owned(),
                description: line.description.as_str().to_owned(),
                quantity: line.quantity,
                unit_amount_minor: minor_in(&line.unit_amount, currency)?,
                amount_minor: minor_in(&line.amount, currency)?,
                period_start: line.period.map(|(start, _)| start),
                period_end: line.period.map(|(_, end)| end),
            })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
    serde_json::to_string(&stored).map_err(|_| unavailable(Fault::Encoding))
}

fn lines_of(json: &str, currency: Currency) -> Result<Vec<InvoiceLine>, RepositoryError> {
    let stored: Vec<StoredLine> = serde_json::from_str(json).map_err(|_| corrupt(INVOICES))?;
    stored
        .into_iter()
        .map(|line| {
            let period = match (line.period_start, line.period_end) {
                (Some(start), Some(end)) => Some((start, end)),
                (None, None) => None,
                _ => return Err(corrupt(INVOICES)),
            };
            Ok(InvoiceLine {
                kind: LineKind::parse(&line.kind).ok_or_else(|| corrupt(INVOICES))?,
                description: Label::parse("description", &line.description)
                    .map_err(|_| corrupt(INVOICES))?,
                quantity: line.quantity,
                unit_amount: money_of(line.unit_amount_minor, currency, INVOICES)?,
                amount: money_of(line.amount_minor, currency, INVOICES)?,
                period,
            })
        })
        .collect()
}

/// A plan version's row.
fn plan_version_row(
    plan: &PlanVersion,
) -> Result<billing_plan_version::ActiveModel, RepositoryError> {
    let terms = &plan.terms;
    Ok(billing_plan_version::ActiveModel {
        plan_id: Set(plan.plan),
        version: Set(signed(plan.version)?),
        name: Set(terms.name.as_str().to_owned()),
        price_minor: Set(minor_of(&terms.price)?),
        currency: Set(terms.price.currency().code().to_owned()),
        interval: Set(terms.interval.as_str().to_owned()),
        trial_days: Set(signed(terms.trial_days)?),
        limit_active_clients: Set(terms.limits.active_clients.map(i64::from)),
        limit_providers: Set(terms.limits.providers.map(i64::from)),
        available: Set(plan.available),
        created_at: Set(stored(plan.created_at)),
    })
}

/// A plan version as the plan queries read it: the plan's row joined to one of
/// its versions.
#[derive(Debug, FromQueryResult)]
struct PlanRow {
    id: Uuid,
    code: String,
    version: i32,
    name: String,
    price_minor: i64,
    currency: String,
    interval: String,
    trial_days: i32,
    limit_active_clients: Option<i64>,
    limit_providers: Option<i64>,
    available: bool,
    created_at: DateTime<FixedOffset>,
}

fn plan_of(row: PlanRow) -> Result<PlanVersion, RepositoryError> {
    let bad = |_| corrupt(PLAN_VERSIONS);
    let currency = currency_of(&row.currency, PLAN_VERSIONS)?;
    Ok(PlanVersion {
        plan: row.id,
        code: PlanCode::parse(&row.code).map_err(bad)?,
        version: version_of(row.version, PLAN_VERSIONS)?,
        terms: PlanTerms {
            name: Label::parse("name", &row.name).map_err(bad)?,
            price: money_of(row.price_minor, currency, PLAN_VERSIONS)?,
            interval: Interval::parse(&row.interval).ok_or_else(|| corrupt(PLAN_VERSIONS))?,
            trial_days: unsigned(row.trial_days, PLAN_VERSIONS)?,
            limits: limits_of(row.limit_active_clients, row.limit_providers, PLAN_VERSIONS)?,
        },
        available: row.available,
        created_at: utc(row.created_at),
    })
}

/// Plans joined to their latest version (`latest`), or to every version.
fn plan_select(latest: bool) -> SelectStatement {
    use billing_plan::{Column as P, Entity as Plans};
    use billing_plan_version::{Column as V, Entity as Versions};
    let mut on = Expr::col((Versions, V::PlanId)).equals((Plans, P::Id));
    if latest {
        on = on.and(Expr::col((Versions, V::Version)).equals((Plans, P::LatestVersion)));
    }
    Query::select()
        .column((Plans, P::Id))
        .column((Plans, P::Code))
        .columns([
            (Versions, V::Version),
            (Versions, V::Name),
            (Versions, V::PriceMinor),
            (Versions, V::Currency),
            (Versions, V::Interval),
            (Versions, V::TrialDays),
            (Versions, V::LimitActiveClients),
            (Versions, V::LimitProviders),
            (Versions, V::Available),
            (Versions, V::CreatedAt),
        ])
        .from(Plans)
        .inner_join(Versions, on)
        .to_owned()
}

/// The rows `stmt` selects, as `T`.
async fn select_rows<T: FromQueryResult>(
    conn: &impl ConnectionTrait,
    stmt: &SelectStatement,
) -> Result<Vec<T>, RepositoryError> {
    let backend = conn.get_database_backend();
    T::find_by_statement(backend.build(stmt))
        .all(conn)
        .await
        .map_err(unavailable)
}

fn tax_rate_of(row: billing_tax_rate::Model) -> Result<TaxRateEntry, RepositoryError> {
    Ok(TaxRateEntry {
        country: Country::parse(&row.country).map_err(|_| corrupt(TAX_RATES))?,
        rate: rate_of(&row.rate, TAX_RATES)?,
        name: Label::parse("name", &row.name).map_err(|_| corrupt(TAX_RATES))?,
        updated_at: utc(row.updated_at),
    })
}

fn payment_method_row(
    method: &PaymentMethod,
) -> Result<billing_payment_method::ActiveModel, RepositoryError> {
    Ok(billing_payment_method::ActiveModel {
        id: Set(method.id),
        organisation_id: Set(method.organisation.as_uuid()),
        processor_ref: Set(method.processor_ref.clone()),
        brand: Set(method.brand.as_str().to_owned()),
        last4: Set(method.last4.clone()),
        exp_month: Set(signed(method.exp_month)?),
        exp_year: Set(method.exp_year),
        is_default: Set(method.is_default),
        added_by: Set(method.added_by.map(|u| u.as_uuid())),
        created_at: Set(stored(method.created_at)),
    })
}

fn payment_method_of(row: billing_payment_method::Model) -> Result<PaymentMethod, RepositoryError> {
    Ok(PaymentMethod {
        id: row.id,
        organisation: OrganisationId::from_uuid(row.organisation_id),
        processor_ref: row.processor_ref,
        brand: CardBrand::parse(&row.brand),
        last4: row.last4,
        exp_month: unsigned(row.exp_month, PAYMENT_METHODS)?,
        exp_year: row.exp_year,
        is_default: row.is_default,
        added_by: row.added_by.map(UserId::from_uuid),
        created_at: utc(row.created_at),
    })
}

fn subscription_row(
    s: &Subscription,
) -> Result<billing_subscription::ActiveModel, RepositoryError> {
    let organisation = s.organisation.as_uuid();
    Ok(billing_subscription::ActiveModel {
        id: Set(s.id),
        organisation_id: Set(organisation),
        plan_id: Set(s.plan),
        plan_code: Set(s.plan_code.as_str().to_owned()),
        plan_version: Set(signed(s.plan_version)?),
        price_minor: Set(minor_of(&s.price)?),
        currency: Set(s.price.currency().code().to_owned()),
        interval: Set(s.interval.as_str().to_owned()),
        limit_active_clients: Set(s.limits.active_clients.map(i64::from)),
        limit_providers: Set(s.limits.providers.map(i64::from)),
        status: Set(s.status.as_str().to_owned()),
        current_period_start: Set(stored(s.current_period_start)),
        current_period_end: Set(stored(s.current_period_end)),
        trial_end: Set(opt_stored(s.trial_end)),
        cancel_at_period_end: Set(s.cancel_at_period_end),
        ended_at: Set(opt_stored(s.ended_at)),
        credit_minor: Set(minor_of(&s.credit)?),
        credit_currency: Set(s.credit.currency().code().to_owned()),
        dunning_invoice_id: Set(s.dunning.map(|d| d.invoice)),
        dunning_failed_attempts: Set(s.dunning.map(|d| signed(d.failed_attempts)).transpose()?),
        dunning_next_attempt_at: Set(s.dunning.and_then(|d| d.next_attempt_at).map(stored)),
        created_at: Set(stored(s.created_at)),
        version: Set(signed(s.version)?),
        live_organisation_id: Set(s.status.is_live().then_some(organisation)),
    })
}

fn subscription_of(row: billing_subscription::Model) -> Result<Subscription, RepositoryError> {
    let t = SUBSCRIPTIONS;
    let currency = currency_of(&row.currency, t)?;
    let dunning = match row.dunning_invoice_id {
        Some(invoice) => Some(Dunning {
            invoice,
            failed_attempts: unsigned(row.dunning_failed_attempts.ok_or_else(|| corrupt(t))?, t)?,
            next_attempt_at: opt_utc(row.dunning_next_attempt_at),
        }),
        None => None,
    };
    let status = SubscriptionStatus::parse(&row.status).ok_or_else(|| corrupt(t))?;
    if status.is_live() != row.live_organisation_id.is_some() {
        return Err(corrupt(t));
    }
    Ok(Subscription {
        id: row.id,
        organisation: OrganisationId::from_uuid(row.organisation_id),
        plan: row.plan_id,
        plan_code: PlanCode::parse(&row.plan_code).map_err(|_| corrupt(t))?,
        plan_version: version_of(row.plan_version, t)?,
        price: money_of(row.price_minor, currency, t)?,
        interval: Interval::parse(&row.interval).ok_or_else(|| corrupt(t))?,
        limits: limits_of(row.limit_active_clients, row.limit_providers, t)?,
        status,
        current_period_start: utc(row.current_period_start),
        current_period_end: utc(row.current_period_end),
        trial_end: opt_utc(row.trial_end),
        cancel_at_period_end: row.cancel_at_period_end,
        ended_at: opt_utc(row.ended_at),
        credit: money_of(row.credit_minor, currency_of(&row.credit_currency, t)?, t)?,
        dunning,
        created_at: utc(row.created_at),
        version: version_of(row.version, t)?,
    })
}

fn payment_row(p: &Payment) -> Result<billing_payment::ActiveModel, RepositoryError> {
    let currency = p.amount.currency();
    Ok(billing_payment::ActiveModel {
        id: Set(p.id),
        organisation_id: Set(p.organisation.as_uuid()),
        invoice_id: Set(p.invoice),
        payment_method_id: Set(p.payment_method),
        amount_minor: Set(minor_of(&p.amount)?),
        currency: Set(currency.code().to_owned()),
        status: Set(p.status.as_str().to_owned()),
        processor_charge: Set(p.processor_charge.clone()),
        failure_code: Set(p.failure_code.clone()),
        refunded_minor: Set(minor_in(&p.refunded, currency)?),
        created_at: Set(stored(p.created_at)),
        last_event_at: Set(opt_stored(p.last_event_at)),
        version: Set(signed(p.version)?),
    })
}

fn payment_of(row: billing_payment::Model) -> Result<Payment, RepositoryError> {
    let currency = currency_of(&row.currency, PAYMENTS)?;
    Ok(Payment {
        id: row.id,
        organisation: OrganisationId::from_uuid(row.organisation_id),
        invoice: row.invoice_id,
        payment_method: row.payment_method_id,
        amount: money_of(row.amount_minor, currency, PAYMENTS)?,
        status: PaymentStatus::parse(&row.status).ok_or_else(|| corrupt(PAYMENTS))?,
        processor_charge: row.processor_charge,
        failure_code: row.failure_code,
        refunded: money_of(row.refunded_minor, currency, PAYMENTS)?,
        created_at: utc(row.created_at),
        last_event_at: opt_utc(row.last_event_at),
        version: version_of(row.version, PAYMENTS)?,
    })
}

fn refund_row(r: &Refund) -> Result<billing_refund::ActiveModel, RepositoryError> {
    Ok(billing_refund::ActiveModel {
        id: Set(r.id),
        organisation_id: Set(r.organisation.as_uuid()),
        payment_id: Set(r.payment),
        invoice_id: Set(r.invoice),
        amount_minor: Set(minor_of(&r.amount)?),
        currency: Set(r.amount.currency().code().to_owned()),
        processor_refund: Set(r.processor_refund.clone()),
        reason: Set(r.reason.as_ref().map(|l| l.as_str().to_owned())),
        created_at: Set(stored(r.created_at)),
    })
}

fn refund_of(row: billing_refund::Model) -> Result<Refund, RepositoryError> {
    let currency = currency_of(&row.currency, REFUNDS)?;
    Ok(Refund {
        id: row.id,
        organisation: OrganisationId::from_uuid(row.organisation_id),
        payment: row.payment_id,
        invoice: row.invoice_id,
        amount: money_of(row.amount_minor, currency, REFUNDS)?,
        processor_refund: row.processor_refund,
        reason: row
            .reason
            .as_deref()
            .map(|r| Label::parse("reason", r))
            .transpose()
            .map_err(|_| corrupt(REFUNDS))?,
        created_at: utc(row.created_at),
    })
}

fn webhook_event_row(e: &WebhookEvent) -> billing_webhook_event::ActiveModel {
    billing_webhook_event::ActiveModel {
        id: Set(e.id.clone()),
        kind: Set(e.kind.clone()),
        object: Set(e.object.clone()),
        created: Set(stored(e.created)),
        signed_at: Set(e.signed_at),
        received_at: Set(stored(e.received_at)),
        outcome: Set(e.outcome.as_str().to_owned()),
    }
}

fn webhook_event_of(row: billing_webhook_event::Model) -> Result<WebhookEvent, RepositoryError> {
    Ok(WebhookEvent {
        id: row.id,
        kind: row.kind,
        object: row.object,
        created: utc(row.created),
        signed_at: row.signed_at,
        received_at: utc(row.received_at),
        outcome: WebhookOutcome::parse(&row.outcome).ok_or_else(|| corrupt(WEBHOOK_EVENTS))?,
    })
}

/// The row of an invoice: `body` as prepared, and what payment made of it so far.
fn invoice_row(
    body: &NewInvoice,
    state: &InvoiceState,
    bill_to_enc: Option<Vec<u8>>,
) -> Result<billing_invoice::ActiveModel, RepositoryError> {
    let currency = body.currency;
    if body.bill_to.is_some() != bill_to_enc.is_some() {
        return Err(inconsistent());
    }
    Ok(billing_invoice::ActiveModel {
        id: Set(body.id),
        organisation_id: Set(body.organisation.as_uuid()),
        number: Set(i64::try_from(state.number).map_err(|_| out_of_range())?),
        subscription_id: Set(body.subscription),
        status: Set(body.status.as_str().to_owned()),
        currency: Set(currency.code().to_owned()),
        lines: Set(lines_json(&body.lines, currency)?),
        subtotal_minor: Set(minor_in(&body.subtotal, currency)?),
        tax_country: Set(body.tax.country.as_str().to_owned()),
        tax_name: Set(body.tax.name.clone()),
        tax_rate: Set(body.tax.rate.percent().to_string()),
        tax_minor: Set(minor_in(&body.tax.amount, currency)?),
        total_minor: Set(minor_in(&body.total, currency)?),
        amount_paid_minor: Set(minor_in(&state.amount_paid, currency)?),
        amount_refunded_minor: Set(minor_in(&state.amount_refunded, currency)?),
        bill_to_enc: Set(bill_to_enc),
        contact_user_id: Set(body.contact_user.map(|u| u.as_uuid())),
        created_at: Set(stored(body.created_at)),
        due_at: Set(stored(body.due_at)),
        paid_at: Set(opt_stored(state.paid_at)),
        closed_at: Set(opt_stored(state.closed_at)),
        version: Set(signed(state.version)?),
    })
}

/// What an invoice holds beyond its body.
struct InvoiceState {
    number: u64,
    amount_paid: Money,
    amount_refunded: Money,
    paid_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    version: u32,
}

impl InvoiceState {
    fn of(invoice: &Invoice) -> Self {
        Self {
            number: invoice.number,
            amount_paid: invoice.amount_paid,
            amount_refunded: invoice.amount_refunded,
            paid_at: invoice.paid_at,
            closed_at: invoice.closed_at,
            version: invoice.version,
        }
    }

    /// A new invoice's: nothing paid, version 1; the number is given in the
    /// transaction.
    fn fresh(currency: Currency) -> Self {
        Self {
            number: 0,
            amount_paid: Money::zero(currency),
            amount_refunded: Money::zero(currency),
            paid_at: None,
            closed_at: None,
            version: 1,
        }
    }
}

/// A `Changes` batch turned into rows, every bill-to sealed: all that is left to
/// do happens in the transaction.
struct Prepared {
    account: Option<billing_account::ActiveModel>,
    removed_payment_methods: Vec<Uuid>,
    new_payment_methods: Vec<billing_payment_method::ActiveModel>,
    subscription: Option<VersionedRow<billing_subscription::ActiveModel>>,
    new_invoices: Vec<(NewInvoice, billing_invoice::ActiveModel)>,
    invoices: Vec<VersionedRow<billing_invoice::ActiveModel>>,
    payments: Vec<VersionedRow<billing_payment::ActiveModel>>,
    refunds: Vec<billing_refund::ActiveModel>,
    webhook_event: Option<billing_webhook_event::ActiveModel>,
}

/// A row with an optimistic-concurrency version, to insert or to update.
struct VersionedRow<R> {
    /// The row's id.
    id: Uuid,
    /// Its practice: an update matches only a row of the same practice.
    organisation: Uuid,
    /// `None` to insert; else the stored version the update expects.
    expected: Option<i32>,
    /// The row as it becomes.
    row: R,
}

/// The stored version expected by an update of an entity to `version` (an
/// insert's is 1): `version - 1`, itself at least 1.
fn expected_version(write: Write<u32>) -> Result<Option<i32>, RepositoryError> {
    match write {
        Write::Insert(1) => Ok(None),
        Write::Insert(_) => Err(inconsistent()),
        Write::Update(version) => version
            .checked_sub(1)
            .filter(|v| *v >= 1)
            .ok_or_else(inconsistent)
            .and_then(signed)
            .map(Some),
    }
}

/// The entity of a write, and the version it writes.
fn written<T>(write: &Write<T>, version: impl Fn(&T) -> u32) -> (&T, Write<u32>) {
    match write {
        Write::Insert(t) => (t, Write::Insert(version(t))),
        Write::Update(t) => (t, Write::Update(version(t))),
    }
}

impl SeaOrmBillingRepository {
    /// The practice's billing cipher, resolved once per batch.
    async fn cipher<'a>(
        &self,
        ciphers: &'a mut HashMap<OrganisationId, SubjectCipher>,
        organisation: OrganisationId,
    ) -> Result<&'a SubjectCipher, RepositoryError> {
        match ciphers.entry(organisation) {
            Entry::Occupied(known) => Ok(known.into_mut()),
            Entry::Vacant(slot) => {
                let cipher = self
                    .keyring
                    .subject_cipher(organisation, billing_subject(organisation))
                    .await
                    .map_err(unavailable)?;
                Ok(slot.insert(cipher))
            }
        }
    }

    /// Opens a sealed bill-to.
    async fn open_bill_to(
        &self,
        binding: FieldBinding,
        envelope: &[u8],
        table: &'static str,
    ) -> Result<BillTo, RepositoryError> {
        let json = self
            .keyring
            .decrypt(binding, envelope)
            .await
            .map_err(unavailable)?;
        // A serde error may quote the value; it is not passed on.
        let stored: StoredBillTo =
            serde_json::from_slice(json.expose()).map_err(|_| corrupt(table))?;
        stored.parse().ok_or_else(|| corrupt(table))
    }

    async fn account_of(
        &self,
        row: billing_account::Model,
    ) -> Result<BillingAccount, RepositoryError> {
        let bill_to = self
            .open_bill_to(
                account_binding(row.organisation_id),
                &row.bill_to_enc,
                ACCOUNTS,
            )
            .await?;
        Ok(BillingAccount {
            organisation: OrganisationId::from_uuid(row.organisation_id),
            bill_to,
            contact_user: row.contact_user_id.map(UserId::from_uuid),
            processor_customer: row.processor_customer,
            anonymised: row.anonymised,
            updated_at: utc(row.updated_at),
        })
    }

    async fn invoice_of(&self, row: billing_invoice::Model) -> Result<Invoice, RepositoryError> {
        let t = INVOICES;
        let currency = currency_of(&row.currency, t)?;
        let bill_to = match &row.bill_to_enc {
            Some(envelope) => Some(
                self.open_bill_to(invoice_binding(row.id), envelope, t)
                    .await?,
            ),
            None => None,
        };
        let body = NewInvoice {
            id: row.id,
            organisation: OrganisationId::from_uuid(row.organisation_id),
            subscription: row.subscription_id,
            status: InvoiceStatus::parse(&row.status).ok_or_else(|| corrupt(t))?,
            currency,
            lines: lines_of(&row.lines, currency)?,
            subtotal: money_of(row.subtotal_minor, currency, t)?,
            tax: InvoiceTax {
                country: Country::parse(&row.tax_country).map_err(|_| corrupt(t))?,
                name: row.tax_name,
                rate: rate_of(&row.tax_rate, t)?,
                amount: money_of(row.tax_minor, currency, t)?,
            },
            total: money_of(row.total_minor, currency, t)?,
            bill_to,
            contact_user: row.contact_user_id.map(UserId::from_uuid),
            created_at: utc(row.created_at),
            due_at: utc(row.due_at),
        };
        Ok(Invoice {
            body,
            number: u64::try_from(row.number).map_err(|_| corrupt(t))?,
            amount_paid: money_of(row.amount_paid_minor, currency, t)?,
            amount_refunded: money_of(row.amount_refunded_minor, currency, t)?,
            paid_at: opt_utc(row.paid_at),
            closed_at: opt_utc(row.closed_at),
            version: version_of(row.version, t)?,
        })
    }

    async fn invoices_of(
        &self,
        rows: Vec<billing_invoice::Model>,
    ) -> Result<Vec<Invoice>, RepositoryError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.invoice_of(row).await?);
        }
        Ok(out)
    }

    /// Turns `changes` into rows and seals every bill-to, before any transaction.
    async fn prepare(&self, changes: Changes) -> Result<Prepared, RepositoryError> {
        let mut ciphers = HashMap::new();
        let account = match &changes.account {
            Some(account) => {
                let cipher = self.cipher(&mut ciphers, account.organisation).await?;
                let organisation = account.organisation.as_uuid();
                let sealed = seal_bill_to(cipher, account_binding(organisation), &account.bill_to)?;
                Some(billing_account::ActiveModel {
                    organisation_id: Set(organisation),
                    bill_to_enc: Set(sealed),
                    contact_user_id: Set(account.contact_user.map(|u| u.as_uuid())),
                    processor_customer: Set(account.processor_customer.clone()),
                    anonymised: Set(account.anonymised),
                    updated_at: Set(stored(account.updated_at)),
                })
            }
            None => None,
        };
        let new_payment_methods = changes
            .new_payment_methods
            .iter()
            .map(payment_method_row)
            .collect::<Result<_, _>>()?;
        let subscription = match &changes.subscription {
            Some(write) => {
                let (s, version) = written(write, |s| s.version);
                Some(VersionedRow {
                    id: s.id,
                    organisation: s.organisation.as_uuid(),
                    expected: expected_version(version)?,
                    row: subscription_row(s)?,
                })
            }
            None => None,
        };
        let mut new_invoices = Vec::with_capacity(changes.new_invoices.len());
        for invoice in changes.new_invoices {
            let sealed = match &invoice.bill_to {
                Some(bill_to) => {
                    let cipher = self.cipher(&mut ciphers, invoice.organisation).await?;
                    Some(seal_bill_to(cipher, invoice_binding(invoice.id), bill_to)?)
                }
                None => None,
            };
            let row = invoice_row(&invoice, &InvoiceState::fresh(invoice.currency), sealed)?;
            new_invoices.push((invoice, row));
        }
        let mut invoices = Vec::with_capacity(changes.invoices.len());
        for invoice in &changes.invoices {
            let body = &invoice.body;
            let sealed = match &body.bill_to {
                Some(bill_to) => {
                    let cipher = self.cipher(&mut ciphers, body.organisation).await?;
                    Some(seal_bill_to(cipher, invoice_binding(body.id), bill_to)?)
                }
                None => None,
            };
            invoices.push(VersionedRow {
                id: body.id,
                organisation: body.organisation.as_uuid(),
                expected: expected_version(Write::Update(invoice.version))?,
                row: invoice_row(body, &InvoiceState::of(invoice), sealed)?,
            });
        }
        let payments = changes
            .payments
            .iter()
            .map(|write| {
                let (p, version) = written(write, |p| p.version);
                Ok(VersionedRow {
                    id: p.id,
                    organisation: p.organisation.as_uuid(),
                    expected: expected_version(version)?,
                    row: payment_row(p)?,
                })
            })
            .collect::<Result<_, RepositoryError>>()?;
        Ok(Prepared {
            account,
            removed_payment_methods: changes.removed_payment_methods,
            new_payment_methods,
            subscription,
            new_invoices,
            invoices,
            payments,
            refunds: changes
                .refunds
                .iter()
                .map(refund_row)
                .collect::<Result<_, _>>()?,
            webhook_event: changes.webhook_event.as_ref().map(webhook_event_row),
        })
    }

    /// The live subscription of a practice, if any.
    async fn live_subscription(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<billing_subscription::Model>, RepositoryError> {
        billing_subscription::Entity::find()
            .filter(billing_subscription::Column::LiveOrganisationId.eq(organisation.as_uuid()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)
    }

    /// One attempt of an erasure of `user` as a billing contact: the accounts read
    /// and re-sealed outside the transaction, written inside it only where they did
    /// not change meanwhile. `None` when one did, and the attempt was rolled back.
    async fn try_erase_contact(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<Option<ContactErasure>, RepositoryError> {
        use billing_account::Column as A;
        let rows = billing_account::Entity::find()
            .filter(A::ContactUserId.eq(user.as_uuid()))
            .order_by_asc(A::OrganisationId)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let mut ciphers = HashMap::new();
        let mut rewrites = Vec::with_capacity(rows.len());
        for row in rows {
            let organisation = OrganisationId::from_uuid(row.organisation_id);
            let account = self.account_of(row.clone()).await?;
            let cipher = self.cipher(&mut ciphers, organisation).await?;
            let sealed = seal_bill_to(
                cipher,
                account_binding(row.organisation_id),
                &account.bill_to.anonymised(),
            )?;
            rewrites.push((row, sealed));
        }
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            let mut erased = ContactErasure::default();
            for (row, sealed) in rewrites {
                let changed = billing_account::Entity::update_many()
                    .col_expr(A::BillToEnc, Expr::value(sealed))
                    .col_expr(A::ContactUserId, Expr::value(Option::<Uuid>::None))
                    .col_expr(A::Anonymised, Expr::value(true))
                    .col_expr(A::UpdatedAt, Expr::value(stored(at)))
                    .filter(A::OrganisationId.eq(row.organisation_id))
                    .filter(A::ContactUserId.eq(user.as_uuid()))
                    .filter(A::BillToEnc.eq(row.bill_to_enc))
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?
                    .rows_affected;
                if changed != 1 {
                    return Ok(None);
                }
                erased
                    .accounts
                    .push(OrganisationId::from_uuid(row.organisation_id));
            }
            let methods = billing_payment_method::Entity::update_many()
                .col_expr(
                    billing_payment_method::Column::AddedBy,
                    Expr::value(Option::<Uuid>::None),
                )
                .filter(billing_payment_method::Column::AddedBy.eq(user.as_uuid()))
                .into_query()
                .returning(Query::returning().column(Alias::new("id")))
                .to_owned();
            for row in txn.query_all(&methods).await.map_err(unavailable)? {
                erased
                    .payment_methods
                    .push(row.try_get("", "id").map_err(unavailable)?);
            }
            erased.payment_methods.sort_unstable();
            // An account that became the user's between the read and this
            // transaction is left for the next attempt.
            let left = billing_account::Entity::find()
                .select_only()
                .column(A::OrganisationId)
                .filter(A::ContactUserId.eq(user.as_uuid()))
                .limit(1)
                .into_tuple::<Uuid>()
                .one(&txn)
                .await
                .map_err(unavailable)?;
            Ok(left.is_none().then_some(erased))
        }
        .await;
        match work {
            Ok(Some(erased)) => finish(txn, Ok(Some(erased)), unavailable).await,
            Ok(None) => {
                let _ = txn.rollback().await;
                Ok(None)
            }
            Err(err) => finish(txn, Err(err), unavailable).await,
        }
    }
}

/// Gives the practice's next invoice number: bumps its counter row, inserting it
/// at 1 when missing, in one statement whose row lock (PostgreSQL) or write lock
/// (SQLite) concurrent commits take in turns.
async fn next_number(
    txn: &DatabaseTransaction,
    organisation: Uuid,
) -> Result<i64, RepositoryError> {
    use billing_invoice_counter::{Column as C, Entity};
    let stmt = Entity::insert(billing_invoice_counter::ActiveModel {
        organisation_id: Set(organisation),
        last_number: Set(1),
    })
    .on_conflict(
        OnConflict::column(C::OrganisationId)
            .value(C::LastNumber, Expr::col((Entity, C::LastNumber)).add(1))
            .to_owned(),
    )
    .into_query()
    .returning_col(C::LastNumber)
    .to_owned();
    let row = txn
        .query_one(&stmt)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| corrupt("billing_invoice_counters"))?;
    row.try_get("", "last_number").map_err(unavailable)
}

/// The statements of one `Changes` batch, in its transaction; every one a write.
async fn write_changes(
    txn: &DatabaseTransaction,
    prepared: Prepared,
) -> Result<Vec<Invoice>, RepositoryError> {
    if let Some(account) = prepared.account {
        use billing_account::Column as A;
        billing_account::Entity::insert(account)
            .on_conflict(
                OnConflict::column(A::OrganisationId)
                    .update_columns([
                        A::BillToEnc,
                        A::ContactUserId,
                        A::ProcessorCustomer,
                        A::Anonymised,
                        A::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
    }

    if !prepared.removed_payment_methods.is_empty() {
        billing_payment_method::Entity::delete_many()
            .filter(billing_payment_method::Column::Id.is_in(prepared.removed_payment_methods))
            .exec(txn)
            .await
            .map_err(unavailable)?;
    }
    for row in prepared.new_payment_methods {
        use billing_payment_method::Column as M;
        if let (Set(true), Set(organisation)) = (&row.is_default, &row.organisation_id) {
            billing_payment_method::Entity::update_many()
                .col_expr(M::IsDefault, Expr::value(false))
                .filter(M::OrganisationId.eq(*organisation))
                .filter(M::IsDefault.eq(true))
                .exec(txn)
                .await
                .map_err(unavailable)?;
        }
        billing_payment_method::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(|e| conflict_or_unavailable(e, PAYMENT_METHOD_EXISTS))?;
    }

    if let Some(write) = prepared.subscription {
        write_subscription(txn, write).await?;
    }

    let mut created = Vec::with_capacity(prepared.new_invoices.len());
    for (body, mut row) in prepared.new_invoices {
        let number = next_number(txn, body.organisation.as_uuid()).await?;
        row.number = Set(number);
        billing_invoice::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(|e| conflict_or_unavailable(e, INVOICE_EXISTS))?;
        let currency = body.currency;
        created.push(Invoice {
            body,
            number: u64::try_from(number).map_err(|_| corrupt(INVOICES))?,
            amount_paid: Money::zero(currency),
            amount_refunded: Money::zero(currency),
            paid_at: None,
            closed_at: None,
            version: 1,
        });
    }

    for write in prepared.invoices {
        use billing_invoice::Column as I;
        let mut row = write.row;
        // What the invoice was issued with stays as it is, its number included.
        let number = row.number.take().ok_or_else(inconsistent)?;
        row.id = NotSet;
        row.organisation_id = NotSet;
        row.created_at = NotSet;
        let changed = billing_invoice::Entity::update_many()
            .set(row)
            .filter(I::Id.eq(write.id))
            .filter(I::OrganisationId.eq(write.organisation))
            .filter(I::Number.eq(number))
            .filter(I::Version.eq(write.expected))
            .exec(txn)
            .await
            .map_err(unavailable)?
            .rows_affected;
        if changed != 1 {
            return Err(RepositoryError::Conflict(INVOICE_CHANGED));
        }
    }

    for write in prepared.payments {
        write_payment(txn, write).await?;
    }

    for row in prepared.refunds {
        billing_refund::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(|e| {
                unique_conflict(
                    e,
                    "processor_refund",
                    PROCESSOR_REFUND_RECORDED,
                    REFUND_EXISTS,
                )
            })?;
    }

    if let Some(event) = prepared.webhook_event {
        billing_webhook_event::Entity::insert(event)
            .exec_without_returning(txn)
            .await
            .map_err(|e| conflict_or_unavailable(e, EVENT_RECORDED))?;
    }
    Ok(created)
}

/// Inserts a subscription, or updates it where its stored version is the expected
/// one. Either breaks the unique index when another of the practice's is live.
async fn write_subscription(
    txn: &DatabaseTransaction,
    write: VersionedRow<billing_subscription::ActiveModel>,
) -> Result<(), RepositoryError> {
    use billing_subscription::Column as S;
    let live = |e| {
        unique_conflict(
            e,
            "live_organisation_id",
            SUBSCRIPTION_LIVE,
            SUBSCRIPTION_EXISTS,
        )
    };
    let mut row = write.row;
    let Some(expected) = write.expected else {
        return billing_subscription::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map(drop)
            .map_err(live);
    };
    // What the subscription was created with stays as it is.
    row.id = NotSet;
    row.organisation_id = NotSet;
    row.created_at = NotSet;
    let changed = billing_subscription::Entity::update_many()
        .set(row)
        .filter(S::Id.eq(write.id))
        .filter(S::OrganisationId.eq(write.organisation))
        .filter(S::Version.eq(expected))
        .exec(txn)
        .await
        .map_err(live)?
        .rows_affected;
    if changed == 1 {
        Ok(())
    } else {
        Err(RepositoryError::Conflict(SUBSCRIPTION_CHANGED))
    }
}

/// Inserts a payment, or updates it where its stored version is the expected one.
async fn write_payment(
    txn: &DatabaseTransaction,
    write: VersionedRow<billing_payment::ActiveModel>,
) -> Result<(), RepositoryError> {
    use billing_payment::Column as P;
    let charge = |e| unique_conflict(e, "processor_charge", CHARGE_RECORDED, PAYMENT_EXISTS);
    let mut row = write.row;
    let Some(expected) = write.expected else {
        return billing_payment::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map(drop)
            .map_err(charge);
    };
    // What the payment was created for stays as it is.
    let invoice = row.invoice_id.take().ok_or_else(inconsistent)?;
    row.id = NotSet;
    row.organisation_id = NotSet;
    row.created_at = NotSet;
    let changed = billing_payment::Entity::update_many()
        .set(row)
        .filter(P::Id.eq(write.id))
        .filter(P::OrganisationId.eq(write.organisation))
        .filter(P::InvoiceId.eq(invoice))
        .filter(P::Version.eq(expected))
        .exec(txn)
        .await
        .map_err(charge)?
        .rows_affected;
    if changed == 1 {
        Ok(())
    } else {
        Err(RepositoryError::Conflict(PAYMENT_CHANGED))
    }
}

#[async_trait]
impl BillingRepository for SeaOrmBillingRepository {
    async fn commit(&self, changes: Changes) -> Result<Vec<Invoice>, RepositoryError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = self.prepare(changes).await?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = write_changes(&txn, prepared).await;
        finish(txn, work, unavailable).await
    }

    async fn create_plan(&self, plan: &PlanVersion) -> Result<(), RepositoryError> {
        if plan.version != 1 {
            return Err(inconsistent());
        }
        let version = plan_version_row(plan)?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            billing_plan::Entity::insert(billing_plan::ActiveModel {
                id: Set(plan.plan),
                code: Set(plan.code.as_str().to_owned()),
                latest_version: Set(1),
                created_at: Set(stored(plan.created_at)),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(|e| unique_conflict(e, "code", PLAN_CODE_TAKEN, PLAN_EXISTS))?;
            billing_plan_version::Entity::insert(version)
                .exec_without_returning(&txn)
                .await
                .map(drop)
                .map_err(|e| conflict_or_unavailable(e, PLAN_EXISTS))
        }
        .await;
        finish(txn, work, unavailable).await
    }

    async fn add_plan_version(&self, plan: &PlanVersion) -> Result<(), RepositoryError> {
        use billing_plan::Column as P;
        let previous = plan
            .version
            .checked_sub(1)
            .filter(|v| *v >= 1)
            .ok_or_else(inconsistent)?;
        let (latest, previous) = (signed(plan.version)?, signed(previous)?);
        let version = plan_version_row(plan)?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = async {
            let changed = billing_plan::Entity::update_many()
                .col_expr(P::LatestVersion, Expr::value(latest))
                .filter(P::Id.eq(plan.plan))
                .filter(P::Code.eq(plan.code.as_str()))
                .filter(P::LatestVersion.eq(previous))
                .exec(&txn)
                .await
                .map_err(unavailable)?
                .rows_affected;
            if changed != 1 {
                return Err(RepositoryError::Conflict(PLAN_CHANGED));
            }
            billing_plan_version::Entity::insert(version)
                .exec_without_returning(&txn)
                .await
                .map(drop)
                .map_err(|e| conflict_or_unavailable(e, PLAN_CHANGED))
        }
        .await;
        finish(txn, work, unavailable).await
    }

    async fn plan(&self, code: &PlanCode) -> Result<Option<PlanVersion>, RepositoryError> {
        let stmt = plan_select(true)
            .and_where(
                Expr::col((billing_plan::Entity, billing_plan::Column::Code)).eq(code.as_str()),
            )
            .to_owned();
        select_rows::<PlanRow>(self.db.connection(), &stmt)
            .await?
            .into_iter()
            .next()
            .map(plan_of)
            .transpose()
    }

    async fn plan_version(
        &self,
        plan: Uuid,
        version: u32,
    ) -> Result<Option<PlanVersion>, RepositoryError> {
        let Ok(version) = i32::try_from(version) else {
            return Ok(None);
        };
        let stmt = plan_select(false)
            .and_where(Expr::col((billing_plan::Entity, billing_plan::Column::Id)).eq(plan))
            .and_where(
                Expr::col((
                    billing_plan_version::Entity,
                    billing_plan_version::Column::Version,
                ))
                .eq(version),
            )
            .to_owned();
        select_rows::<PlanRow>(self.db.connection(), &stmt)
            .await?
            .into_iter()
            .next()
            .map(plan_of)
            .transpose()
    }

    async fn plans(&self) -> Result<Vec<PlanVersion>, RepositoryError> {
        let stmt = plan_select(true)
            .order_by(
                (billing_plan::Entity, billing_plan::Column::Code),
                Order::Asc,
            )
            .to_owned();
        select_rows::<PlanRow>(self.db.connection(), &stmt)
            .await?
            .into_iter()
            .map(plan_of)
            .collect()
    }

    async fn set_tax_rate(&self, rate: &TaxRateEntry) -> Result<(), RepositoryError> {
        use billing_tax_rate::Column as T;
        billing_tax_rate::Entity::insert(billing_tax_rate::ActiveModel {
            country: Set(rate.country.as_str().to_owned()),
            rate: Set(rate.rate.percent().to_string()),
            name: Set(rate.name.as_str().to_owned()),
            updated_at: Set(stored(rate.updated_at)),
        })
        .on_conflict(
            OnConflict::column(T::Country)
                .update_columns([T::Rate, T::Name, T::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(self.db.connection())
        .await
        .map(drop)
        .map_err(unavailable)
    }

    async fn tax_rate(&self, country: Country) -> Result<Option<TaxRateEntry>, RepositoryError> {
        billing_tax_rate::Entity::find_by_id(country.as_str().to_owned())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(tax_rate_of)
            .transpose()
    }

    async fn tax_rates(&self) -> Result<Vec<TaxRateEntry>, RepositoryError> {
        billing_tax_rate::Entity::find()
            .order_by_asc(billing_tax_rate::Column::Country)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(tax_rate_of)
            .collect()
    }

    async fn account(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<BillingAccount>, RepositoryError> {
        let row = billing_account::Entity::find_by_id(organisation.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => self.account_of(row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn payment_methods(
        &self,
        organisation: OrganisationId,
    ) -> Result<Vec<PaymentMethod>, RepositoryError> {
        use billing_payment_method::Column as M;
        billing_payment_method::Entity::find()
            .filter(M::OrganisationId.eq(organisation.as_uuid()))
            .order_by_desc(M::IsDefault)
            .order_by_desc(M::CreatedAt)
            .order_by_desc(M::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(payment_method_of)
            .collect()
    }

    async fn subscription(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<Subscription>, RepositoryError> {
        use billing_subscription::Column as S;
        // The live one if there is one (at most one: the unique index), else the
        // latest ended one.
        let row = match self.live_subscription(organisation).await? {
            Some(row) => Some(row),
            None => billing_subscription::Entity::find()
                .filter(S::OrganisationId.eq(organisation.as_uuid()))
                .order_by_desc(S::CreatedAt)
                .order_by_desc(S::Id)
                .one(self.db.connection())
                .await
                .map_err(unavailable)?,
        };
        row.map(subscription_of).transpose()
    }

    async fn due_subscriptions(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Subscription>, RepositoryError> {
        use billing_subscription::Column as S;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = stored(now);
        let conn = self.db.connection();
        // Two reads, each along its partial index over live rows: the `limit`
        // first due by period end, and the `limit` first due by dunning. The
        // `limit` first due overall are among them.
        let by_period = billing_subscription::Entity::find()
            .filter(S::LiveOrganisationId.is_not_null())
            .filter(S::CurrentPeriodEnd.lte(now))
            .order_by_asc(S::CurrentPeriodEnd)
            .order_by_asc(S::Id)
            .limit(u64::from(limit))
            .all(conn)
            .await
            .map_err(unavailable)?;
        let by_dunning = billing_subscription::Entity::find()
            .filter(S::LiveOrganisationId.is_not_null())
            .filter(S::DunningNextAttemptAt.is_not_null())
            .filter(S::DunningNextAttemptAt.lte(now))
            .order_by_asc(S::DunningNextAttemptAt)
            .order_by_asc(S::Id)
            .limit(u64::from(limit))
            .all(conn)
            .await
            .map_err(unavailable)?;
        let mut seen = HashSet::new();
        let mut due: Vec<(DateTime<FixedOffset>, billing_subscription::Model)> = Vec::new();
        for row in by_period.into_iter().chain(by_dunning) {
            if !seen.insert(row.id) {
                continue;
            }
            let at = [Some(row.current_period_end), row.dunning_next_attempt_at]
                .into_iter()
                .flatten()
                .filter(|at| *at <= now)
                .min()
                .ok_or_else(|| corrupt(SUBSCRIPTIONS))?;
            due.push((at, row));
        }
        due.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.id.cmp(&y.id)));
        due.truncate(limit as usize);
        due.into_iter()
            .map(|(_, row)| subscription_of(row))
            .collect()
    }

    async fn invoice(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Option<Invoice>, RepositoryError> {
        let row = billing_invoice::Entity::find_by_id(id)
            .filter(billing_invoice::Column::OrganisationId.eq(organisation.as_uuid()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => self.invoice_of(row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn invoices(
        &self,
        organisation: OrganisationId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<InvoicePage, RepositoryError> {
        use billing_invoice::Column as I;
        let size = limit.clamp(1, MAX_INVOICE_PAGE);
        let mut query =
            billing_invoice::Entity::find().filter(I::OrganisationId.eq(organisation.as_uuid()));
        if let Some(before) = before {
            // A bound beyond every stored number lists from the newest.
            if let Ok(before) = i64::try_from(before) {
                query = query.filter(I::Number.lt(before));
            }
        }
        let mut rows = query
            .order_by_desc(I::Number)
            .limit(u64::from(size) + 1)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let items = self.invoices_of(rows).await?;
        let next_before = if more {
            items.last().map(|invoice| invoice.number)
        } else {
            None
        };
        Ok(InvoicePage { items, next_before })
    }

    async fn payments(&self, invoice: Uuid) -> Result<Vec<Payment>, RepositoryError> {
        use billing_payment::Column as P;
        billing_payment::Entity::find()
            .filter(P::InvoiceId.eq(invoice))
            .order_by_asc(P::CreatedAt)
            .order_by_asc(P::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(payment_of)
            .collect()
    }

    async fn payment_by_charge(&self, charge: &str) -> Result<Option<Payment>, RepositoryError> {
        billing_payment::Entity::find()
            .filter(billing_payment::Column::ProcessorCharge.eq(charge))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(payment_of)
            .transpose()
    }

    async fn refunds(&self, invoice: Uuid) -> Result<Vec<Refund>, RepositoryError> {
        use billing_refund::Column as R;
        billing_refund::Entity::find()
            .filter(R::InvoiceId.eq(invoice))
            .order_by_asc(R::CreatedAt)
            .order_by_asc(R::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(refund_of)
            .collect()
    }

    async fn webhook_event(&self, id: &str) -> Result<Option<WebhookEvent>, RepositoryError> {
        billing_webhook_event::Entity::find_by_id(id.to_owned())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(webhook_event_of)
            .transpose()
    }

    async fn accounts_of_contact(
        &self,
        user: UserId,
    ) -> Result<Vec<BillingAccount>, RepositoryError> {
        use billing_account::Column as A;
        let rows = billing_account::Entity::find()
            .filter(A::ContactUserId.eq(user.as_uuid()))
            .order_by_asc(A::OrganisationId)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.account_of(row).await?);
        }
        Ok(out)
    }

    async fn invoices_of_contact(&self, user: UserId) -> Result<Vec<Invoice>, RepositoryError> {
        use billing_invoice::Column as I;
        let rows = billing_invoice::Entity::find()
            .filter(I::ContactUserId.eq(user.as_uuid()))
            .order_by_asc(I::OrganisationId)
            .order_by_asc(I::Number)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        self.invoices_of(rows).await
    }

    async fn payment_methods_added_by(
        &self,
        user: UserId,
    ) -> Result<Vec<PaymentMethod>, RepositoryError> {
        use billing_payment_method::Column as M;
        billing_payment_method::Entity::find()
            .filter(M::AddedBy.eq(user.as_uuid()))
            .order_by_asc(M::CreatedAt)
            .order_by_asc(M::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(payment_method_of)
            .collect()
    }

    async fn erase_contact(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<ContactErasure, RepositoryError> {
        for _ in 0..ERASURE_ATTEMPTS {
            if let Some(erased) = self.try_erase_contact(user, at).await? {
                return Ok(erased);
            }
        }
        Err(RepositoryError::Conflict(ACCOUNT_CHANGED))
    }

    async fn invoices_to_anonymise(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        billing_invoice::Entity::find()
            .filter(invoices_naming_someone_before(cutoff))
            .count(self.db.connection())
            .await
            .map_err(unavailable)
    }

    async fn anonymise_invoices_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        use billing_invoice::Column as I;
        billing_invoice::Entity::update_many()
            .col_expr(I::BillToEnc, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(I::ContactUserId, Expr::value(Option::<Uuid>::None))
            .col_expr(I::Version, Expr::col(I::Version).add(1))
            .filter(invoices_naming_someone_before(cutoff))
            .exec(self.db.connection())
            .await
            .map(|done| done.rows_affected)
            .map_err(unavailable)
    }
}

/// Invoices created before `cutoff` that still name who they were addressed to:
/// the retention sweep's (one statement, so it counts or changes them all at once).
fn invoices_naming_someone_before(cutoff: DateTime<Utc>) -> sea_orm::Condition {
    use billing_invoice::Column as I;
    sea_orm::Condition::all()
        .add(I::CreatedAt.lt(stored(cutoff)))
        .add(
            sea_orm::Condition::any()
                .add(I::BillToEnc.is_not_null())
                .add(I::ContactUserId.is_not_null()),
        )
}
