//! The billing model: plans and their versions, a practice's billing account and
//! payment methods, subscriptions, invoices, payments, refunds and processor
//! events. Plain data; the rules live in [`crate::service`].

use chrono::{DateTime, Months, Utc};
use kernel::{OrganisationId, UserId};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::money::{Currency, Money};
use crate::values::{BillingEmail, Country, Label, PlanCode, TaxRate};

/// How often a plan bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Every calendar month.
    Month,
    /// Every calendar year.
    Year,
}

impl Interval {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// Parses [`Interval::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    /// The end of the period that starts at `start`. A month from the 31st ends on
    /// the last day of a shorter month (chrono's calendar-month arithmetic), and a
    /// period that starts on 29 February ends on 28 February in a common year.
    #[must_use]
    pub fn period_end(self, start: DateTime<Utc>) -> DateTime<Utc> {
        let months = match self {
            Self::Month => Months::new(1),
            Self::Year => Months::new(12),
        };
        start.checked_add_months(months).unwrap_or(start)
    }
}

/// What a plan allows. `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct PlanLimits {
    /// The most active clients the practice may have.
    pub active_clients: Option<u32>,
    /// The most providers the practice may have.
    pub providers: Option<u32>,
}

/// A limit a plan sets, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// [`PlanLimits::active_clients`].
    ActiveClients,
    /// [`PlanLimits::providers`].
    Providers,
}

impl Limit {
    /// The limit's stable name, which a refusal names.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ActiveClients => "active_clients",
            Self::Providers => "providers",
        }
    }

    /// This limit's value in `limits`.
    #[must_use]
    pub const fn of(self, limits: &PlanLimits) -> Option<u32> {
        match self {
            Self::ActiveClients => limits.active_clients,
            Self::Providers => limits.providers,
        }
    }
}

/// The most trial days a plan may give.
pub const MAX_TRIAL_DAYS: u32 = 365;

/// What one version of a plan offers, at what price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTerms {
    /// The name shown to practices.
    pub name: Label<100>,
    /// The price per interval, before tax. Never negative.
    pub price: Money,
    /// How often it bills.
    pub interval: Interval,
    /// Days of free trial before the first charge, 0 to [`MAX_TRIAL_DAYS`].
    pub trial_days: u32,
    /// What it allows.
    pub limits: PlanLimits,
}

/// One version of a plan. A price (or any term) change is a new version; a
/// subscription keeps the version it has until its next renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanVersion {
    /// The plan (the same across versions).
    pub plan: Uuid,
    /// Its code (the same across versions).
    pub code: PlanCode,
    /// 1, 2, ...
    pub version: u32,
    /// The terms.
    pub terms: PlanTerms,
    /// Whether new subscriptions may choose the plan.
    pub available: bool,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
}

/// A country's tax rate, which invoices to practices billed there apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRateEntry {
    /// The billing country.
    pub country: Country,
    /// The rate.
    pub rate: TaxRate,
    /// The tax's name on invoices, e.g. `VAT` or `Sales tax`.
    pub name: Label<40>,
    /// When it was set.
    pub updated_at: DateTime<Utc>,
}

/// Who an invoice is addressed to. Kept on each invoice as issued (tax law wants
/// the invoice as it was), and as the practice's current billing contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillTo {
    /// The practice's legal name.
    pub legal_name: Label<200>,
    /// The person to contact about billing.
    pub contact_name: Label<100>,
    /// Where billing notices go.
    pub email: BillingEmail,
    /// Street address, one or two lines.
    pub address_lines: Vec<Label<100>>,
    /// City.
    pub city: Label<100>,
    /// Postal code.
    pub postal_code: Label<40>,
    /// Billing country: decides the tax rate.
    pub country: Country,
    /// VAT or other tax identifier, if any.
    pub tax_id: Option<Label<40>>,
}

/// What an erased contact's name becomes.
pub const ERASED_CONTACT_NAME: &str = "Erased contact";
/// What an erased contact's email becomes (the `.invalid` top-level domain never
/// resolves, RFC 2606).
pub const ERASED_CONTACT_EMAIL: &str = "erased@anonymised.invalid";

impl BillTo {
    /// This billing address with the contact person removed (R2): their name and
    /// email are replaced; the practice's legal name, address, country and tax id
    /// stay, because they identify the practice, not the person, and invoices need
    /// them.
    #[must_use]
    pub fn anonymised(&self) -> Self {
        Self {
            contact_name: Label::parse("contact_name", ERASED_CONTACT_NAME)
                .unwrap_or_else(|_| self.contact_name.clone()),
            email: BillingEmail::parse(ERASED_CONTACT_EMAIL).unwrap_or_else(|_| self.email.clone()),
            ..self.clone()
        }
    }
}

/// A practice's billing account: its contact, and its customer at the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccount {
    /// The practice.
    pub organisation: OrganisationId,
    /// The billing contact, as the invoices will carry it.
    pub bill_to: BillTo,
    /// The member who is the billing contact, if they are a user: the data subject
    /// whose export and erasure cover this account.
    pub contact_user: Option<UserId>,
    /// The processor's customer id, once created.
    pub processor_customer: Option<String>,
    /// Whether the contact was anonymised by an erasure (the account then awaits a
    /// new contact before it can bill again).
    pub anonymised: bool,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A card brand, as the processor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardBrand {
    /// Visa.
    Visa,
    /// Mastercard.
    Mastercard,
    /// American Express.
    Amex,
    /// Discover.
    Discover,
    /// Any other brand.
    Other,
}

impl CardBrand {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
            Self::Other => "other",
        }
    }

    /// Parses [`CardBrand::as_str`]'s output; anything else is `Other`.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "visa" => Self::Visa,
            "mastercard" => Self::Mastercard,
            "amex" => Self::Amex,
            "discover" => Self::Discover,
            _ => Self::Other,
        }
    }
}

/// A card on file: the processor's reference and what may be shown (C5). Never the
/// card number or CVC, which Custodia never receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    /// Our id.
    pub id: Uuid,
    /// The practice.
    pub organisation: OrganisationId,
    /// The processor's payment-method reference.
    pub processor_ref: String,
    /// The brand.
    pub brand: CardBrand,
    /// The last four digits.
    pub last4: String,
    /// Expiry month, 1 to 12.
    pub exp_month: u32,
    /// Expiry year, e.g. 2030.
    pub exp_year: i32,
    /// Whether charges use it.
    pub is_default: bool,
    /// Who added it.
    pub added_by: Option<UserId>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// In the free trial.
    Trialing,
    /// Paid up.
    Active,
    /// A payment failed; dunning is retrying it.
    PastDue,
    /// Ended at the end of a period by the practice, or by failed dunning.
    Canceled,
    /// The trial ended without a payment method.
    Expired,
}

impl SubscriptionStatus {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        }
    }

    /// Parses [`SubscriptionStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Trialing,
            Self::Active,
            Self::PastDue,
            Self::Canceled,
            Self::Expired,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the subscription is still running (not canceled or expired).
    #[must_use]
    pub const fn is_live(self) -> bool {
        matches!(self, Self::Trialing | Self::Active | Self::PastDue)
    }
}

/// Dunning in progress: which invoice is being retried, how often it failed, and
/// when the next attempt is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dunning {
    /// The unpaid invoice.
    pub invoice: Uuid,
    /// Failed attempts so far (1 after the first failure).
    pub failed_attempts: u32,
    /// When the next attempt is due; `None` once the schedule is exhausted.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A practice's subscription to a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Its id.
    pub id: Uuid,
    /// The practice.
    pub organisation: OrganisationId,
    /// The plan.
    pub plan: Uuid,
    /// The plan's code.
    pub plan_code: PlanCode,
    /// The plan version whose terms apply until the next renewal.
    pub plan_version: u32,
    /// The price locked in for the current period (the version's price).
    pub price: Money,
    /// The billing interval.
    pub interval: Interval,
    /// The limits in force.
    pub limits: PlanLimits,
    /// The status.
    pub status: SubscriptionStatus,
    /// The current period's start.
    pub current_period_start: DateTime<Utc>,
    /// The current period's end: the next renewal.
    pub current_period_end: DateTime<Utc>,
    /// When the trial ends, if there is one.
    pub trial_end: Option<DateTime<Utc>>,
    /// Whether it ends at the current period's end instead of renewing.
    pub cancel_at_period_end: bool,
    /// When it was canceled or expired.
    pub ended_at: Option<DateTime<Utc>>,
    /// Credit from downgrades, applied to the next invoices. Never negative.
    pub credit: Money,
    /// Dunning in progress.
    pub dunning: Option<Dunning>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version: 1 when created, +1 per write.
    pub version: u32,
}

/// Where an invoice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Being prepared; its lines may change.
    Draft,
    /// Issued and awaiting payment.
    Open,
    /// Paid in full.
    Paid,
    /// Cancelled; keeps its number.
    Void,
    /// Written off after dunning failed.
    Uncollectible,
}

impl InvoiceStatus {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
            Self::Uncollectible => "uncollectible",
        }
    }

    /// Parses [`InvoiceStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Open,
            Self::Paid,
            Self::Void,
            Self::Uncollectible,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Why an invoice line is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A subscription period.
    Subscription,
    /// The prorated charge for a new plan's rest of the period.
    ProrationCharge,
    /// The prorated credit for an old plan's unused rest of the period (negative).
    ProrationCredit,
    /// Credit carried from earlier downgrades (negative).
    AppliedCredit,
    /// Anything else the platform operator bills.
    Manual,
}

impl LineKind {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscription => "subscription",
            Self::ProrationCharge => "proration_charge",
            Self::ProrationCredit => "proration_credit",
            Self::AppliedCredit => "applied_credit",
            Self::Manual => "manual",
        }
    }

    /// Parses [`LineKind::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Subscription,
            Self::ProrationCharge,
            Self::ProrationCredit,
            Self::AppliedCredit,
            Self::Manual,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    /// Why it is there.
    pub kind: LineKind,
    /// What it is for.
    pub description: Label<200>,
    /// How many, at least 1.
    pub quantity: u32,
    /// The price of one, in the invoice's currency (negative only for credits).
    pub unit_amount: Money,
    /// `quantity × unit_amount`, exact.
    pub amount: Money,
    /// The service period it covers, if any.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The tax an invoice applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceTax {
    /// The billing country whose rate applies.
    pub country: Country,
    /// The tax's name.
    pub name: String,
    /// The rate.
    pub rate: TaxRate,
    /// `subtotal × rate / 100`, rounded once with [`crate::money::ROUNDING`].
    pub amount: Money,
}

/// An invoice as the service prepares it. The store gives it its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    /// Its id.
    pub id: Uuid,
    /// The practice billed.
    pub organisation: OrganisationId,
    /// The subscription it bills, if any.
    pub subscription: Option<Uuid>,
    /// Its status.
    pub status: InvoiceStatus,
    /// The currency of every amount on it.
    pub currency: Currency,
    /// The lines.
    pub lines: Vec<InvoiceLine>,
    /// Sum of the lines.
    pub subtotal: Money,
    /// The tax.
    pub tax: InvoiceTax,
    /// `subtotal + tax`. Never negative.
    pub total: Money,
    /// Who it is addressed to, as issued.
    pub bill_to: Option<BillTo>,
    /// The billing contact it was addressed to, if they are a user.
    pub contact_user: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When payment is due.
    pub due_at: DateTime<Utc>,
}

/// A stored invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Everything the service prepared.
    pub body: NewInvoice,
    /// Its number: 1, 2, 3, ... per practice, without gaps.
    pub number: u64,
    /// Paid so far.
    pub amount_paid: Money,
    /// Refunded so far.
    pub amount_refunded: Money,
    /// When it was paid in full.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was voided or written off.
    pub closed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version: 1 when created, +1 per write.
    pub version: u32,
}

impl Invoice {
    /// The number as printed: `INV-000042`.
    #[must_use]
    pub fn display_number(&self) -> String {
        format!("INV-{:06}", self.number)
    }

    /// What is still owed: `total - amount_paid`.
    #[must_use]
    pub fn amount_due(&self) -> Money {
        self.body
            .total
            .minus(self.amount_paid)
            .unwrap_or(self.body.total)
    }
}

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Sent to the processor, no answer yet (a crash between sending and recording
    /// leaves this; the processor's webhook settles it).
    Pending,
    /// The processor needs the card holder to act (e.g. 3-D Secure); a webhook
    /// settles it.
    RequiresAction,
    /// Money moved.
    Succeeded,
    /// Declined.
    Failed,
}

impl PaymentStatus {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses [`PaymentStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::RequiresAction,
            Self::Succeeded,
            Self::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether a later event may still change it.
    #[must_use]
    pub const fn is_settled(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// One attempt to collect an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Its id; also the idempotency key sent to the processor.
    pub id: Uuid,
    /// The practice.
    pub organisation: OrganisationId,
    /// The invoice it pays.
    pub invoice: Uuid,
    /// The card charged.
    pub payment_method: Option<Uuid>,
    /// The amount.
    pub amount: Money,
    /// Where it is.
    pub status: PaymentStatus,
    /// The processor's charge reference.
    pub processor_charge: Option<String>,
    /// The processor's decline code, e.g. `card_declined`. Never card data.
    pub failure_code: Option<String>,
    /// Refunded so far.
    pub refunded: Money,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The processor time of the last event applied to it, so an older event that
    /// arrives later changes nothing.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version: 1 when created, +1 per write.
    pub version: u32,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Its id; also the idempotency key sent to the processor.
    pub id: Uuid,
    /// The practice.
    pub organisation: OrganisationId,
    /// The payment refunded.
    pub payment: Uuid,
    /// The invoice.
    pub invoice: Uuid,
    /// The amount, positive.
    pub amount: Money,
    /// The processor's refund reference.
    pub processor_refund: String,
    /// Why (shown to the practice).
    pub reason: Option<Label<200>>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What receiving a processor event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// It changed the object it names.
    Applied,
    /// It is older than the last event applied to its object; nothing changed.
    Stale,
    /// It names an object Custodia does not hold; recorded, nothing changed.
    UnknownObject,
    /// A type Custodia does not act on; recorded, nothing changed.
    Ignored,
}

impl WebhookOutcome {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::UnknownObject => "unknown_object",
            Self::Ignored => "ignored",
        }
    }

    /// Parses [`WebhookOutcome::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Applied,
            Self::Stale,
            Self::UnknownObject,
            Self::Ignored,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One processor event, as recorded. Holds no payload beyond these fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The processor's event id: the idempotency key of delivery.
    pub id: String,
    /// Its type, e.g. `charge.succeeded`.
    pub kind: String,
    /// The processor object it names, e.g. a charge reference.
    pub object: Option<String>,
    /// When the processor created it.
    pub created: DateTime<Utc>,
    /// The signed timestamp of the delivery that brought it.
    pub signed_at: i64,
    /// When Custodia received it.
    pub received_at: DateTime<Utc>,
    /// What it did.
    pub outcome: WebhookOutcome,
}

/// A processor event, as the server parsed it from a verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorEvent {
    /// The event id.
    pub id: String,
    /// The type.
    pub kind: String,
    /// The object it names.
    pub object: Option<String>,
    /// When the processor created it.
    pub created: DateTime<Utc>,
    /// For refund events, the amount in minor units.
    pub amount_minor: Option<i64>,
    /// For failures, the decline code.
    pub failure_code: Option<String>,
    /// The signed timestamp of this delivery.
    pub signed_at: i64,
}

/// A percentage of a period left, as a fraction: `remaining / whole` seconds.
#[must_use]
pub fn remaining_fraction(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (u32, u32) {
    let whole = (end - start).num_seconds().max(1);
    let remaining = (end - now).num_seconds().clamp(0, whole);
    // Whole days keep the proration legible on the invoice; periods are at most a
    // year, so both fit in u32.
    let to_days = |s: i64| u32::try_from((s + 86_399) / 86_400).unwrap_or(u32::MAX);
    (to_days(remaining).min(to_days(whole)), to_days(whole))
}

/// The exact line amount `quantity × unit`.
///
/// # Errors
/// When the product overflows.
pub fn line_amount(quantity: u32, unit: Money) -> Result<Money, crate::MoneyError> {
    unit.times(Decimal::from(quantity))
}
