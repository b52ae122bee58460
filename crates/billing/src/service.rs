//! The billing service: every billing operation, its authorisation, its audit
//! event and its one transaction.
//!
//! ```text
//! actor -> role (platform operator / practice admin / provider for plan status)
//!       -> rules (money, plan, state machine) -> processor (outside the transaction,
//!          with our id as its idempotency key) -> AuditSink -> Changes (one commit)
//! ```
//!
//! Who may do what (item 11): the platform operator manages plans, tax rates and
//! ad-hoc invoices, voids and refunds; a practice's admins manage its account,
//! cards, subscription and pay its invoices; its providers read the plan status;
//! nobody else (clients included) sees the practice's billing. A practice the
//! actor is not a member of is [`BillingError::NotFound`].
//!
//! D12 (non-discrimination): nothing here reads consent or rights-request state. The
//! billing crate does not depend on `consent` or `data-rights`, and `cargo xtask
//! tidy` keeps it that way.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kernel::{AuditSink, OrganisationId, RequestContext, UserId};
use uuid::Uuid;

use crate::model::{
    BillTo, BillingAccount, Interval, Invoice, InvoiceStatus, Limit, Payment, PaymentMethod,
    PlanLimits, PlanTerms, PlanVersion, ProcessorEvent, Refund, Subscription,
    SubscriptionStatus, TaxRateEntry, WebhookOutcome,
};
use crate::money::{Currency, Money, MoneyError};
use crate::ports::{
    BillingNotifier, BillingRepository, InvoicePage, PaymentProcessor, PracticeUsage,
    ProcessorError, RepositoryError,
};
use crate::values::{Country, InvalidInput, Label, PlanCode, ProcessorToken, TaxRate};

/// Audit resource kinds of billing.
pub mod resource {
    /// A plan.
    pub const PLAN: &str = "plan";
    /// A tax rate.
    pub const TAX_RATE: &str = "tax_rate";
    /// A practice's billing account.
    pub const BILLING_ACCOUNT: &str = "billing_account";
    /// A payment method.
    pub const PAYMENT_METHOD: &str = "payment_method";
    /// A subscription.
    pub const SUBSCRIPTION: &str = "subscription";
    /// An invoice.
    pub const INVOICE: &str = "invoice";
    /// A payment.
    pub const PAYMENT: &str = "payment";
    /// A refund.
    pub const REFUND: &str = "refund";
    /// A processor event.
    pub const PROCESSOR_EVENT: &str = "processor_event";
}

/// Why a billing operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// No such practice, plan version, invoice or card the actor may see (404).
    #[error("not found")]
    NotFound,
    /// The actor may see the practice but not do this (403). The text names the rule.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The input broke a rule (422); nothing changed.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A plan code that names no plan (422).
    #[error("plan_code: no plan has this code")]
    UnknownPlan,
    /// The practice's plan allows no more of `limit` (409).
    #[error("the plan allows at most {max} {}", .limit.as_str())]
    LimitReached {
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: u32,
        /// The plan's code.
        plan: PlanCode,
    },
    /// The change conflicts with the stored state (409): a refund above what was
    /// charged, a second subscription, an invoice no longer open.
    #[error("{0}")]
    Conflict(&'static str),
    /// The card was declined or needs the card holder (402); the failed payment is
    /// recorded on the invoice.
    #[error("the payment was not completed: {code}")]
    PaymentFailed {
        /// The processor's decline code, or `requires_action`.
        code: String,
        /// The payment recorded.
        payment: Uuid,
    },
    /// A processor event delivered a second time with the same signature (400).
    #[error("this delivery was already received")]
    Replay,
    /// The processor refused the request (an unknown token) (422).
    #[error("{0}")]
    ProcessorRejected(&'static str),
    /// Storage, the processor or the audit log is unavailable (503).
    #[error("billing is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<RepositoryError> for BillingError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Conflict(rule) => Self::Conflict(rule),
            RepositoryError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

impl From<ProcessorError> for BillingError {
    fn from(e: ProcessorError) -> Self {
        match e {
            ProcessorError::Rejected(reason) => Self::ProcessorRejected(reason),
            ProcessorError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

impl From<MoneyError> for BillingError {
    fn from(e: MoneyError) -> Self {
        Self::Invalid(InvalidInput::new("amount", e.rule()))
    }
}

/// How billing behaves: the dunning schedule and how long invoices are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingConfig {
    /// After the n-th failed attempt, the next is `dunning_schedule[n-1]` later;
    /// after the last, the invoice is uncollectible and the subscription canceled.
    pub dunning_schedule: Vec<Duration>,
    /// How long invoices are kept, and on what ground.
    pub invoice_retention: crate::personal_data::InvoiceRetention,
    /// Days an ad-hoc invoice gives to pay.
    pub payment_terms_days: u32,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            dunning_schedule: vec![Duration::days(1), Duration::days(3), Duration::days(7)],
            invoice_retention: crate::personal_data::InvoiceRetention::default(),
            payment_terms_days: 14,
        }
    }
}

/// The ports billing works through.
#[derive(Clone)]
pub struct BillingPorts {
    /// Where billing is stored.
    pub repository: Arc<dyn BillingRepository>,
    /// The payment processor.
    pub processor: Arc<dyn PaymentProcessor>,
    /// Billing notices.
    pub notifier: Arc<dyn BillingNotifier>,
    /// The practice's usage, for plan limits.
    pub usage: Arc<dyn PracticeUsage>,
    /// The audit log.
    pub audit: Arc<dyn AuditSink>,
}

/// A line of an ad-hoc invoice, as the operator gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualLine {
    /// What it is for.
    pub description: Label<200>,
    /// How many, 1 to 10,000.
    pub quantity: u32,
    /// The price of one; never negative.
    pub unit_amount: Money,
}

/// A subscription after a change, with the invoice and payment the change made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChange {
    /// The subscription.
    pub subscription: Subscription,
    /// The invoice the change issued, if it issued one.
    pub invoice: Option<Invoice>,
    /// The payment attempted, if one was.
    pub payment: Option<Payment>,
}

/// An invoice with its payments and refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceView {
    /// The invoice.
    pub invoice: Invoice,
    /// Its payments, oldest first.
    pub payments: Vec<Payment>,
    /// Its refunds, oldest first.
    pub refunds: Vec<Refund>,
}

/// What a provider sees of the practice's billing: the plan and whether it is in
/// good standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStatus {
    /// The plan's code, if the practice has a subscription.
    pub plan_code: Option<PlanCode>,
    /// The plan's name.
    pub plan_name: Option<String>,
    /// The subscription's status.
    pub status: Option<SubscriptionStatus>,
    /// When the current period ends.
    pub current_period_end: Option<DateTime<Utc>>,
    /// The limits in force.
    pub limits: PlanLimits,
    /// Active clients now.
    pub active_clients: u64,
    /// Providers now.
    pub providers: u64,
}

/// What receiving a processor event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReceipt {
    /// First delivery: recorded with this outcome.
    Recorded(WebhookOutcome),
    /// The event id was already recorded (a redelivery); nothing changed.
    Duplicate,
}

/// What one run of the billing job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunReport {
    /// Subscriptions renewed and paid.
    pub renewed: u32,
    /// Trials converted to paid periods.
    pub converted: u32,
    /// Payment attempts that failed (dunning started or continued).
    pub failed: u32,
    /// Subscriptions canceled (at period end, or after dunning failed).
    pub canceled: u32,
    /// Trials expired without a card.
    pub expired: u32,
}

/// The billing service.
#[derive(Clone)]
pub struct BillingService {
    ports: BillingPorts,
    config: BillingConfig,
}

impl std::fmt::Debug for BillingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for BillingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingPorts")
            .field("processor", &self.processor.name())
            .finish_non_exhaustive()
    }
}

#[allow(clippy::todo, unused_variables, dead_code, reason = "skeleton being filled in")]
impl BillingService {
    /// A service over `ports`.
    #[must_use]
    pub fn new(ports: BillingPorts, config: BillingConfig) -> Self {
        Self { ports, config }
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &BillingConfig {
        &self.config
    }

    // ---- Plans and tax rates (platform operator) ----

    /// Creates a plan (operator). A taken code is a conflict.
    pub async fn create_plan(
        &self,
        ctx: &RequestContext,
        code: PlanCode,
        terms: PlanTerms,
    ) -> Result<PlanVersion, BillingError> {
        todo!()
    }

    /// Writes a plan's next version (operator): subscriptions keep their version
    /// until renewal. `available: false` withdraws it from new subscriptions.
    pub async fn revise_plan(
        &self,
        ctx: &RequestContext,
        code: &PlanCode,
        terms: PlanTerms,
        available: bool,
    ) -> Result<PlanVersion, BillingError> {
        todo!()
    }

    /// The latest version of every plan (operator, or a practice admin).
    pub async fn plans(&self, ctx: &RequestContext) -> Result<Vec<PlanVersion>, BillingError> {
        todo!()
    }

    /// The latest version of one plan (operator, or a practice admin).
    pub async fn plan(
        &self,
        ctx: &RequestContext,
        code: &PlanCode,
    ) -> Result<PlanVersion, BillingError> {
        todo!()
    }

    /// Sets a country's tax rate (operator).
    pub async fn set_tax_rate(
        &self,
        ctx: &RequestContext,
        country: Country,
        rate: TaxRate,
        name: Label<40>,
    ) -> Result<TaxRateEntry, BillingError> {
        todo!()
    }

    /// Every configured tax rate (operator).
    pub async fn tax_rates(&self, ctx: &RequestContext) -> Result<Vec<TaxRateEntry>, BillingError> {
        todo!()
    }

    // ---- The practice's account and cards (admins) ----

    /// The practice's billing account (admins, operator).
    pub async fn account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Option<BillingAccount>, BillingError> {
        todo!()
    }

    /// Writes the practice's billing contact (admins); creates the processor's
    /// customer on first use. `contact_user` is the member who is the contact.
    pub async fn save_account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        bill_to: BillTo,
        contact_user: Option<UserId>,
    ) -> Result<BillingAccount, BillingError> {
        todo!()
    }

    /// Adds a card by the processor's token (admins) and makes it the default. Needs
    /// a billing account.
    pub async fn add_payment_method(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        token: ProcessorToken,
    ) -> Result<PaymentMethod, BillingError> {
        todo!()
    }

    /// The practice's cards (admins).
    pub async fn payment_methods(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Vec<PaymentMethod>, BillingError> {
        todo!()
    }

    /// Removes a card (admins).
    pub async fn remove_payment_method(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<(), BillingError> {
        todo!()
    }

    // ---- Subscriptions (admins) ----

    /// Subscribes the practice to a plan (admins). With trial days, it is trialing
    /// until the trial ends; without, the first period is invoiced and charged now.
    pub async fn subscribe(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        code: &PlanCode,
    ) -> Result<SubscriptionChange, BillingError> {
        todo!()
    }

    /// Moves the subscription to another plan now, prorated by the days left in
    /// the period: an upgrade invoices and charges the difference, a downgrade
    /// credits it to the next invoices. A plan whose limits the practice already
    /// exceeds is refused, naming the limit.
    pub async fn change_plan(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        code: &PlanCode,
    ) -> Result<SubscriptionChange, BillingError> {
        todo!()
    }

    /// Cancels at the end of the current period (admins).
    pub async fn cancel(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Subscription, BillingError> {
        todo!()
    }

    /// Takes back a cancellation before the period ends (admins).
    pub async fn resume(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Subscription, BillingError> {
        todo!()
    }

    /// The practice's subscription (admins, operator).
    pub async fn subscription(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Option<Subscription>, BillingError> {
        todo!()
    }

    /// The plan and its standing (admins and providers).
    pub async fn plan_status(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<PlanStatus, BillingError> {
        todo!()
    }

    /// Refuses one more of `limit` when the practice's plan is at its limit. A
    /// practice without a subscription has no plan limits.
    pub async fn ensure_room(
        &self,
        organisation: OrganisationId,
        limit: Limit,
    ) -> Result<(), BillingError> {
        todo!()
    }

    // ---- Invoices ----

    /// The practice's invoices, newest first (admins, operator).
    pub async fn invoices(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<InvoicePage, BillingError> {
        todo!()
    }

    /// One invoice with its payments and refunds (admins, operator).
    pub async fn invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        todo!()
    }

    /// An ad-hoc invoice (operator), in `currency`, taxed at the practice's billing
    /// country's rate; a draft unless `finalize`.
    pub async fn create_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        currency: Currency,
        lines: Vec<ManualLine>,
        finalize: bool,
    ) -> Result<Invoice, BillingError> {
        todo!()
    }

    /// Issues a draft (operator): draft -> open.
    pub async fn finalize_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Invoice, BillingError> {
        todo!()
    }

    /// Voids a draft or open invoice (operator); it keeps its number.
    pub async fn void_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Invoice, BillingError> {
        todo!()
    }

    /// Charges an open invoice to the default card (admins).
    pub async fn pay_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        todo!()
    }

    /// Refunds part or all of what an invoice was paid (operator). More than was
    /// paid and not yet refunded is a conflict.
    pub async fn refund(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        invoice: Uuid,
        amount: Money,
        reason: Option<Label<200>>,
    ) -> Result<Refund, BillingError> {
        todo!()
    }

    // ---- Processor events and the billing job ----

    /// Applies a verified processor event: once per event id, and never an event
    /// older than the last one applied to its object. An object Custodia does not
    /// hold is recorded with no change. The same id with the same signed timestamp
    /// is [`BillingError::Replay`].
    pub async fn handle_event(
        &self,
        ctx: &RequestContext,
        event: ProcessorEvent,
    ) -> Result<EventReceipt, BillingError> {
        todo!()
    }

    /// Does the work due at `ctx.at()`: renewals (at the plan's latest version),
    /// trial ends, cancellations at period end, dunning retries. At most `limit`
    /// subscriptions (operator or the system).
    pub async fn run_due(
        &self,
        ctx: &RequestContext,
        limit: u32,
    ) -> Result<RunReport, BillingError> {
        todo!()
    }
}

#[allow(dead_code, reason = "skeleton being filled in")]
const fn _interval_used(_: Interval, _: InvoiceStatus) {}
