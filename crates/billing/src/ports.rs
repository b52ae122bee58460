//! The ports billing works through: its repository, the payment processor, the
//! notifier for billing notices, and the practice's usage (for plan limits).
//!
//! Every write the service makes is one [`Changes`] batch, which the repository
//! applies in one transaction or not at all: nothing is half-applied.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{OrganisationId, UserId};
use uuid::Uuid;

use crate::model::{
    BillingAccount, CardBrand, Invoice, NewInvoice, Payment, PaymentMethod, PlanVersion, Refund,
    Subscription, TaxRateEntry, WebhookEvent,
};
use crate::money::Money;
use crate::values::{Country, PlanCode, ProcessorToken};

/// Why the repository failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A rule the store enforces atomically was broken: a version that moved on, a
    /// second live subscription, a plan code taken, an event id already recorded.
    /// The text names the rule.
    #[error("{0}")]
    Conflict(&'static str),
    /// The database is unavailable. The detail is for operators' logs.
    #[error("billing is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One write of an entity with an optimistic-concurrency version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<T> {
    /// A new row; its `version` is 1.
    Insert(T),
    /// A changed row; its `version` is the stored version + 1, and the write is a
    /// [`RepositoryError::Conflict`] if the stored version is not `version - 1`.
    Update(T),
}

/// Everything one billing operation writes, applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The practice's billing account (replaced as a whole).
    pub account: Option<BillingAccount>,
    /// Payment methods added (made default when `is_default`, which unsets the
    /// others of the practice in the same transaction).
    pub new_payment_methods: Vec<PaymentMethod>,
    /// Payment methods removed, by id.
    pub removed_payment_methods: Vec<Uuid>,
    /// The subscription written.
    pub subscription: Option<Write<Subscription>>,
    /// Invoices created: each gets the practice's next number, without gaps.
    pub new_invoices: Vec<NewInvoice>,
    /// Invoices changed (status, amounts paid or refunded).
    pub invoices: Vec<Invoice>,
    /// Payments written.
    pub payments: Vec<Write<Payment>>,
    /// Refunds made.
    pub refunds: Vec<Refund>,
    /// The processor event that caused this, recorded once by id (a second record
    /// of the same id is a [`RepositoryError::Conflict`]).
    pub webhook_event: Option<WebhookEvent>,
}

impl Changes {
    /// Whether nothing would be written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A page of invoices, newest first, and the number to continue below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePage {
    /// The invoices.
    pub items: Vec<Invoice>,
    /// The number of the last invoice listed, when more follow.
    pub next_before: Option<u64>,
}

/// Where billing is stored.
#[async_trait]
pub trait BillingRepository: Send + Sync + 'static {
    /// Applies `changes` in one transaction, and returns the invoices created, with
    /// their numbers, in the order given.
    async fn commit(&self, changes: Changes) -> Result<Vec<Invoice>, RepositoryError>;

    /// Writes a plan's first version. A taken code is a conflict.
    async fn create_plan(&self, plan: &PlanVersion) -> Result<(), RepositoryError>;

    /// Writes a plan's next version: `version` must be the latest + 1 (else a
    /// conflict).
    async fn add_plan_version(&self, plan: &PlanVersion) -> Result<(), RepositoryError>;

    /// The latest version of the plan with `code`.
    async fn plan(&self, code: &PlanCode) -> Result<Option<PlanVersion>, RepositoryError>;

    /// One version of a plan.
    async fn plan_version(
        &self,
        plan: Uuid,
        version: u32,
    ) -> Result<Option<PlanVersion>, RepositoryError>;

    /// The latest version of every plan, by code.
    async fn plans(&self) -> Result<Vec<PlanVersion>, RepositoryError>;

    /// Sets (or replaces) a country's tax rate.
    async fn set_tax_rate(&self, rate: &TaxRateEntry) -> Result<(), RepositoryError>;

    /// A country's tax rate, if one is configured.
    async fn tax_rate(&self, country: Country) -> Result<Option<TaxRateEntry>, RepositoryError>;

    /// Every configured rate, by country.
    async fn tax_rates(&self) -> Result<Vec<TaxRateEntry>, RepositoryError>;

    /// A practice's billing account.
    async fn account(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<BillingAccount>, RepositoryError>;

    /// A practice's payment methods, default first, then newest first.
    async fn payment_methods(
        &self,
        organisation: OrganisationId,
    ) -> Result<Vec<PaymentMethod>, RepositoryError>;

    /// A practice's latest subscription (live or ended).
    async fn subscription(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<Subscription>, RepositoryError>;

    /// Subscriptions with work due at `now`: a period ended (renewal, cancellation,
    /// trial end) or a dunning attempt due. At most `limit`, oldest due first.
    async fn due_subscriptions(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Subscription>, RepositoryError>;

    /// One invoice of a practice.
    async fn invoice(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Option<Invoice>, RepositoryError>;

    /// A practice's invoices, newest (highest number) first, below `before`.
    async fn invoices(
        &self,
        organisation: OrganisationId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<InvoicePage, RepositoryError>;

    /// The payments of an invoice, oldest first.
    async fn payments(&self, invoice: Uuid) -> Result<Vec<Payment>, RepositoryError>;

    /// The payment with a processor charge reference.
    async fn payment_by_charge(&self, charge: &str) -> Result<Option<Payment>, RepositoryError>;

    /// The refunds of an invoice, oldest first.
    async fn refunds(&self, invoice: Uuid) -> Result<Vec<Refund>, RepositoryError>;

    /// A recorded processor event.
    async fn webhook_event(&self, id: &str) -> Result<Option<WebhookEvent>, RepositoryError>;

    /// Every billing account whose contact is `user` (export and erasure).
    async fn accounts_of_contact(
        &self,
        user: UserId,
    ) -> Result<Vec<BillingAccount>, RepositoryError>;

    /// Every invoice addressed to `user` (export and erasure).
    async fn invoices_of_contact(&self, user: UserId) -> Result<Vec<Invoice>, RepositoryError>;

    /// Every payment method `user` added (export and erasure).
    async fn payment_methods_added_by(
        &self,
        user: UserId,
    ) -> Result<Vec<PaymentMethod>, RepositoryError>;

    /// Erases `user` from billing in one transaction: the accounts they are the
    /// contact of get `anonymised_contact` (the practice's legal name, country and
    /// tax id stay: they identify the practice, not the person) and lose
    /// `contact_user`; payment methods they added lose `added_by`. Invoices are not
    /// touched here: they are retained on a legal ground. Returns what changed.
    async fn erase_contact(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<ContactErasure, RepositoryError>;

    /// How many invoices created before `cutoff` still name who they were addressed
    /// to (a bill-to or a contact user): what
    /// [`BillingRepository::anonymise_invoices_before`] would change.
    async fn invoices_to_anonymise(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// Removes the bill-to and the contact user of every invoice created before
    /// `cutoff` that still has one, bumping each one's version (a writer holding
    /// the old one conflicts instead of writing them back); its number, lines,
    /// amounts, status and dates stay. Returns how many changed; idempotent.
    async fn anonymise_invoices_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;
}

/// What [`BillingRepository::erase_contact`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactErasure {
    /// The practices whose account contact was anonymised.
    pub accounts: Vec<OrganisationId>,
    /// The payment methods whose `added_by` was removed.
    pub payment_methods: Vec<Uuid>,
}

/// Why the payment processor failed. A decline is not an error: it is a
/// [`ChargeOutcome::Declined`].
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// The processor refused the request as invalid (an unknown token, a refund
    /// larger than the charge). The text is the processor's reason, never card data.
    #[error("the payment processor refused the request: {0}")]
    Rejected(&'static str),
    /// The processor could not be reached or failed; the request may be retried
    /// with the same idempotency key.
    #[error("the payment processor is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A card as the processor describes it after tokenisation: all Custodia keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    /// The processor's payment-method reference.
    pub processor_ref: String,
    /// The brand.
    pub brand: CardBrand,
    /// The last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u32,
    /// Expiry year.
    pub exp_year: i32,
}

/// A charge request. `idempotency_key` is our payment's id, so a retry after a
/// crash never charges twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The processor's customer.
    pub customer: String,
    /// The processor's payment-method reference.
    pub payment_method: String,
    /// The amount, positive.
    pub amount: Money,
    /// The idempotency key.
    pub idempotency_key: Uuid,
    /// What the processor shows on the statement, e.g. `Custodia INV-000042`.
    pub description: String,
}

/// What a charge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Money moved.
    Succeeded {
        /// The charge reference.
        charge: String,
    },
    /// The card holder must act; a webhook settles the charge later.
    RequiresAction {
        /// The charge reference.
        charge: String,
    },
    /// Declined.
    Declined {
        /// The charge reference, if one was created.
        charge: Option<String>,
        /// The decline code, e.g. `card_declined`.
        code: String,
    },
}

/// The payment processor (C5: Custodia never sees card numbers; it sends tokens
/// and references).
#[async_trait]
pub trait PaymentProcessor: Send + Sync + 'static {
    /// The processor's name in the sub-processor registry, e.g. `sandbox`.
    fn name(&self) -> &'static str;

    /// Creates the processor's customer for a practice. Idempotent by practice.
    async fn create_customer(&self, organisation: OrganisationId)
    -> Result<String, ProcessorError>;

    /// Attaches a tokenised card to a customer and describes it.
    async fn attach_payment_method(
        &self,
        customer: &str,
        token: &ProcessorToken,
    ) -> Result<CardDetails, ProcessorError>;

    /// Charges a payment method.
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError>;

    /// Refunds (part of) a charge; returns the refund reference. Idempotent by
    /// `idempotency_key`.
    async fn refund(
        &self,
        charge: &str,
        amount: Money,
        idempotency_key: Uuid,
    ) -> Result<String, ProcessorError>;
}

/// A billing notice for a practice's admins and billing contact. Carries no card
/// data and no health data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingNotice {
    /// A payment failed; another attempt follows at `next_attempt_at`, if any.
    PaymentFailed {
        /// The invoice, as printed.
        invoice_number: String,
        /// The amount due, e.g. `49.00 EUR`.
        amount_due: String,
        /// Failed attempts so far.
        attempt: u32,
        /// The next attempt, if the schedule has one.
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// A payment needs the card holder to act.
    PaymentRequiresAction {
        /// The invoice, as printed.
        invoice_number: String,
    },
    /// An invoice was paid.
    PaymentSucceeded {
        /// The invoice, as printed.
        invoice_number: String,
        /// The amount paid.
        amount: String,
    },
    /// The subscription ended (canceled or expired).
    SubscriptionEnded {
        /// The plan's code.
        plan_code: String,
        /// `canceled` or `expired`.
        status: &'static str,
    },
}

impl BillingNotice {
    /// The notice's stable kind, e.g. `billing_payment_failed`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::PaymentFailed { .. } => "billing_payment_failed",
            Self::PaymentRequiresAction { .. } => "billing_payment_requires_action",
            Self::PaymentSucceeded { .. } => "billing_payment_succeeded",
            Self::SubscriptionEnded { .. } => "billing_subscription_ended",
        }
    }
}

/// Sends billing notices (the server adapts it to identity's outbox).
#[async_trait]
pub trait BillingNotifier: Send + Sync + 'static {
    /// Queues `notice` for the practice's admins.
    async fn notify(
        &self,
        organisation: OrganisationId,
        notice: &BillingNotice,
    ) -> Result<(), RepositoryError>;
}

/// How much of what a plan limits a practice uses now.
#[async_trait]
pub trait PracticeUsage: Send + Sync + 'static {
    /// Active clients of the practice.
    async fn active_clients(&self, organisation: OrganisationId) -> Result<u64, RepositoryError>;

    /// Active providers of the practice.
    async fn providers(&self, organisation: OrganisationId) -> Result<u64, RepositoryError>;
}
