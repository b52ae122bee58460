//! Billing's wire shapes, and their conversion from the domain at the edge.
//!
//! Money travels as `{"amount": "49.00", "currency": "EUR"}`: the amount a decimal
//! string with exactly the currency's minor units, never a float.

use billing::Money;
use billing::model::{
    BillTo, BillingAccount, CardBrand, Interval, Invoice, InvoiceLine, InvoiceStatus, LineKind,
    Payment, PaymentMethod, PaymentStatus, PlanLimits, PlanVersion, Refund, Subscription,
    SubscriptionStatus, TaxRateEntry, WebhookOutcome,
};
use billing::service::{InvoiceView, PlanStatus, RunReport, SubscriptionChange};
use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

/// An amount of money in a currency.
#[derive(Debug, Clone, Object)]
pub struct MoneyView {
    /// A decimal string with exactly the currency's minor units: `49.00`, JPY
    /// `1200`, KWD `1.500`.
    pub amount: String,
    /// The ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        let mut amount = money.amount();
        amount.rescale(money.currency().minor_units());
        Self {
            amount: amount.to_string(),
            currency: money.currency().code().to_owned(),
        }
    }
}

/// An amount of money as given: an exact decimal string in an ISO 4217 currency.
#[derive(Debug, Clone, Object)]
pub struct MoneyInput {
    /// A decimal string, e.g. `49.00`; at most as many decimals as the currency
    /// has minor units (EUR 2, JPY 0, KWD 3), never rounded.
    #[oai(validator(max_length = 40))]
    pub amount: String,
    /// An ISO 4217 code Custodia bills in, e.g. `EUR`.
    #[oai(validator(max_length = 8))]
    pub currency: String,
}

/// How often a plan bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum IntervalName {
    /// Every calendar month.
    Month,
    /// Every calendar year.
    Year,
}

impl IntervalName {
    /// The domain's interval.
    #[must_use]
    pub const fn domain(self) -> Interval {
        match self {
            Self::Month => Interval::Month,
            Self::Year => Interval::Year,
        }
    }

    const fn of(interval: Interval) -> Self {
        match interval {
            Interval::Month => Self::Month,
            Interval::Year => Self::Year,
        }
    }
}

/// What a plan allows; an absent limit is unlimited.
#[derive(Debug, Clone, Default, Object)]
pub struct LimitsView {
    /// The most active clients.
    #[oai(skip_serializing_if_is_none)]
    pub active_clients: Option<u32>,
    /// The most providers.
    #[oai(skip_serializing_if_is_none)]
    pub providers: Option<u32>,
}

impl From<PlanLimits> for LimitsView {
    fn from(limits: PlanLimits) -> Self {
        Self {
            active_clients: limits.active_clients,
            providers: limits.providers,
        }
    }
}

impl From<LimitsView> for PlanLimits {
    fn from(limits: LimitsView) -> Self {
        Self {
            active_clients: limits.active_clients,
            providers: limits.providers,
        }
    }
}

/// A plan, at its latest version.
#[derive(Debug, Clone, Object)]
pub struct PlanView {
    /// Its code.
    pub code: String,
    /// 1, 2, ...: a price (or any term) change is a new version.
    pub version: u32,
    /// Its name.
    pub name: String,
    /// The price per interval, before tax.
    pub price: MoneyView,
    /// How often it bills.
    pub interval: IntervalName,
    /// Days of free trial.
    pub trial_days: u32,
    /// What it allows.
    pub limits: LimitsView,
    /// Whether new subscriptions may choose it.
    pub available: bool,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
}

impl From<&PlanVersion> for PlanView {
    fn from(plan: &PlanVersion) -> Self {
        Self {
            code: plan.code.to_string(),
            version: plan.version,
            name: plan.terms.name.as_str().to_owned(),
            price: plan.terms.price.into(),
            interval: IntervalName::of(plan.terms.interval),
            trial_days: plan.terms.trial_days,
            limits: plan.terms.limits.into(),
            available: plan.available,
            created_at: plan.created_at,
        }
    }
}

/// The plans.
#[derive(Debug, Clone, Object)]
pub struct PlanList {
    /// The latest version of each, by code.
    pub items: Vec<PlanView>,
}

/// A new plan (platform operator).
#[derive(Debug, Clone, Object)]
pub struct NewPlanRequest {
    /// 1 to 40 lowercase letters, digits, `-` or `_`, starting with a letter or digit.
    #[oai(validator(max_length = 40))]
    pub code: String,
    /// The name shown to practices, 1 to 100 characters.
    #[oai(validator(max_length = 100))]
    pub name: String,
    /// The price per interval, before tax; never negative.
    pub price: MoneyInput,
    /// How often it bills.
    pub interval: IntervalName,
    /// Days of free trial, 0 to 365 (default 0).
    #[oai(default, validator(maximum(value = "365")))]
    pub trial_days: u32,
    /// What it allows; absent limits are unlimited.
    #[oai(default)]
    pub limits: LimitsView,
}

/// A plan's next version (platform operator).
#[derive(Debug, Clone, Object)]
pub struct PlanRevisionRequest {
    /// The name shown to practices, 1 to 100 characters.
    #[oai(validator(max_length = 100))]
    pub name: String,
    /// The price per interval, before tax; never negative. Subscribers keep the
    /// price they have until their next renewal.
    pub price: MoneyInput,
    /// How often it bills.
    pub interval: IntervalName,
    /// Days of free trial, 0 to 365 (default 0).
    #[oai(default, validator(maximum(value = "365")))]
    pub trial_days: u32,
    /// What it allows; absent limits are unlimited.
    #[oai(default)]
    pub limits: LimitsView,
    /// Whether new subscriptions may choose it (default true).
    #[oai(default = "yes")]
    pub available: bool,
}

const fn yes() -> bool {
    true
}

/// A country's tax rate (platform operator).
#[derive(Debug, Clone, Object)]
pub struct TaxRateRequest {
    /// The rate in percent as a decimal string, 0 to 100 with at most 4 decimals,
    /// e.g. `19` or `8.875`.
    #[oai(validator(max_length = 20))]
    pub rate: String,
    /// The tax's name on invoices, e.g. `VAT`, 1 to 40 characters.
    #[oai(validator(max_length = 40))]
    pub name: String,
}

/// A country's tax rate.
#[derive(Debug, Clone, Object)]
pub struct TaxRateView {
    /// The billing country (ISO 3166-1 alpha-2).
    pub country: String,
    /// The rate in percent, e.g. `19`.
    pub rate: String,
    /// The tax's name on invoices.
    pub name: String,
    /// When it was set.
    pub updated_at: DateTime<Utc>,
}

impl From<&TaxRateEntry> for TaxRateView {
    fn from(entry: &TaxRateEntry) -> Self {
        Self {
            country: entry.country.as_str().to_owned(),
            rate: entry.rate.percent().normalize().to_string(),
            name: entry.name.as_str().to_owned(),
            updated_at: entry.updated_at,
        }
    }
}

/// The tax rates.
#[derive(Debug, Clone, Object)]
pub struct TaxRateList {
    /// Every configured rate, by country.
    pub items: Vec<TaxRateView>,
}

/// A practice's billing contact, as given.
#[derive(Debug, Clone, Object)]
pub struct BillingAccountRequest {
    /// The practice's legal name, 1 to 200 characters.
    #[oai(validator(max_length = 200))]
    pub legal_name: String,
    /// The person to contact about billing, 1 to 100 characters.
    #[oai(validator(max_length = 100))]
    pub contact_name: String,
    /// Where billing notices go.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Street address: one or two lines of 1 to 100 characters.
    #[oai(validator(min_items = 1, max_items = 2))]
    pub address_lines: Vec<String>,
    /// City, 1 to 100 characters.
    #[oai(validator(max_length = 100))]
    pub city: String,
    /// Postal code, 1 to 40 characters.
    #[oai(validator(max_length = 40))]
    pub postal_code: String,
    /// Billing country (ISO 3166-1 alpha-2, upper case): decides the tax rate.
    #[oai(validator(max_length = 2))]
    pub country: String,
    /// VAT or other tax identifier, 1 to 40 characters.
    #[oai(skip_serializing_if_is_none, validator(max_length = 40))]
    pub tax_id: Option<String>,
    /// The member of the practice who is the billing contact; the caller when
    /// absent.
    #[oai(skip_serializing_if_is_none)]
    pub contact_user_id: Option<Uuid>,
}

/// The practice's billing contact (the processor's customer id is never shown).
#[derive(Debug, Clone, Object)]
pub struct BillingAccountView {
    /// The practice's legal name.
    pub legal_name: String,
    /// The person to contact about billing.
    pub contact_name: String,
    /// Where billing notices go.
    pub email: String,
    /// Street address.
    pub address_lines: Vec<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Billing country.
    pub country: String,
    /// Tax identifier.
    #[oai(skip_serializing_if_is_none)]
    pub tax_id: Option<String>,
    /// The member who is the billing contact.
    #[oai(skip_serializing_if_is_none)]
    pub contact_user_id: Option<Uuid>,
    /// Whether the contact was anonymised by an erasure (name a new contact).
    pub anonymised: bool,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&BillingAccount> for BillingAccountView {
    fn from(account: &BillingAccount) -> Self {
        let b = BillToView::from(&account.bill_to);
        Self {
            legal_name: b.legal_name,
            contact_name: b.contact_name,
            email: b.email,
            address_lines: b.address_lines,
            city: b.city,
            postal_code: b.postal_code,
            country: b.country,
            tax_id: b.tax_id,
            contact_user_id: account.contact_user.map(|u| u.as_uuid()),
            anonymised: account.anonymised,
            updated_at: account.updated_at,
        }
    }
}

/// Who an invoice is addressed to, as issued.
#[derive(Debug, Clone, Object)]
pub struct BillToView {
    /// The practice's legal name.
    pub legal_name: String,
    /// The contact person.
    pub contact_name: String,
    /// The contact's email.
    pub email: String,
    /// Street address.
    pub address_lines: Vec<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Billing country.
    pub country: String,
    /// Tax identifier.
    #[oai(skip_serializing_if_is_none)]
    pub tax_id: Option<String>,
}

impl From<&BillTo> for BillToView {
    fn from(b: &BillTo) -> Self {
        Self {
            legal_name: b.legal_name.as_str().to_owned(),
            contact_name: b.contact_name.as_str().to_owned(),
            email: b.email.as_str().to_owned(),
            address_lines: b
                .address_lines
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            city: b.city.as_str().to_owned(),
            postal_code: b.postal_code.as_str().to_owned(),
            country: b.country.as_str().to_owned(),
            tax_id: b.tax_id.as_ref().map(|t| t.as_str().to_owned()),
        }
    }
}

/// A card by the processor's token.
#[derive(Debug, Clone, Object)]
pub struct PaymentMethodRequest {
    /// The token the payment processor gave for the card (never the card number,
    /// which is refused), e.g. `tok_visa` in the sandbox.
    #[oai(validator(max_length = 100))]
    pub token: String,
}

/// A card brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CardBrandName {
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

impl CardBrandName {
    const fn of(brand: CardBrand) -> Self {
        match brand {
            CardBrand::Visa => Self::Visa,
            CardBrand::Mastercard => Self::Mastercard,
            CardBrand::Amex => Self::Amex,
            CardBrand::Discover => Self::Discover,
            CardBrand::Other => Self::Other,
        }
    }
}

/// A card on file: what may be shown of it.
#[derive(Debug, Clone, Object)]
pub struct PaymentMethodView {
    /// Its id.
    pub id: Uuid,
    /// The brand.
    pub brand: CardBrandName,
    /// The last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u32,
    /// Expiry year.
    pub exp_year: i32,
    /// Whether charges use it.
    pub is_default: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl From<&PaymentMethod> for PaymentMethodView {
    fn from(m: &PaymentMethod) -> Self {
        Self {
            id: m.id,
            brand: CardBrandName::of(m.brand),
            last4: m.last4.clone(),
            exp_month: m.exp_month,
            exp_year: m.exp_year,
            is_default: m.is_default,
            created_at: m.created_at,
        }
    }
}

/// The practice's cards.
#[derive(Debug, Clone, Object)]
pub struct PaymentMethodList {
    /// The default first, then newest first.
    pub items: Vec<PaymentMethodView>,
}

/// A plan to subscribe or move to.
#[derive(Debug, Clone, Object)]
pub struct PlanChoice {
    /// The plan's code.
    #[oai(validator(max_length = 40))]
    pub plan_code: String,
}

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SubscriptionStatusName {
    /// In the free trial.
    Trialing,
    /// Paid up.
    Active,
    /// A payment failed; dunning is retrying it.
    PastDue,
    /// Ended (at a period's end, or after dunning failed).
    Canceled,
    /// The trial ended without a card.
    Expired,
}

impl SubscriptionStatusName {
    const fn of(status: SubscriptionStatus) -> Self {
        match status {
            SubscriptionStatus::Trialing => Self::Trialing,
            SubscriptionStatus::Active => Self::Active,
            SubscriptionStatus::PastDue => Self::PastDue,
            SubscriptionStatus::Canceled => Self::Canceled,
            SubscriptionStatus::Expired => Self::Expired,
        }
    }
}

/// Dunning in progress.
#[derive(Debug, Clone, Object)]
pub struct DunningView {
    /// The unpaid invoice.
    pub invoice_id: Uuid,
    /// Failed attempts so far.
    pub failed_attempts: u32,
    /// When the next attempt is due; absent once the schedule is exhausted.
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A practice's subscription.
#[derive(Debug, Clone, Object)]
pub struct SubscriptionView {
    /// Its id.
    pub id: Uuid,
    /// The plan's code.
    pub plan_code: String,
    /// The plan version whose terms apply until the next renewal.
    pub plan_version: u32,
    /// The price locked in for the current period.
    pub price: MoneyView,
    /// How often it bills.
    pub interval: IntervalName,
    /// The limits in force.
    pub limits: LimitsView,
    /// Its status.
    pub status: SubscriptionStatusName,
    /// The current period's start.
    pub current_period_start: DateTime<Utc>,
    /// The current period's end: the next renewal.
    pub current_period_end: DateTime<Utc>,
    /// When the trial ends, if there is one.
    #[oai(skip_serializing_if_is_none)]
    pub trial_end: Option<DateTime<Utc>>,
    /// Whether it ends at the current period's end instead of renewing.
    pub cancel_at_period_end: bool,
    /// When it ended.
    #[oai(skip_serializing_if_is_none)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Credit from downgrades, applied to the next invoices.
    pub credit: MoneyView,
    /// Dunning in progress.
    #[oai(skip_serializing_if_is_none)]
    pub dunning: Option<DunningView>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id,
            plan_code: s.plan_code.to_string(),
            plan_version: s.plan_version,
            price: s.price.into(),
            interval: IntervalName::of(s.interval),
            limits: s.limits.into(),
            status: SubscriptionStatusName::of(s.status),
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            trial_end: s.trial_end,
            cancel_at_period_end: s.cancel_at_period_end,
            ended_at: s.ended_at,
            credit: s.credit.into(),
            dunning: s.dunning.map(|d| DunningView {
                invoice_id: d.invoice,
                failed_attempts: d.failed_attempts,
                next_attempt_at: d.next_attempt_at,
            }),
            created_at: s.created_at,
        }
    }
}

/// A subscription after a change, with the invoice and payment the change made.
#[derive(Debug, Clone, Object)]
pub struct SubscriptionChangeView {
    /// The subscription.
    pub subscription: SubscriptionView,
    /// The invoice the change issued, if it issued one.
    #[oai(skip_serializing_if_is_none)]
    pub invoice: Option<InvoiceDto>,
    /// The payment attempted, if one was.
    #[oai(skip_serializing_if_is_none)]
    pub payment: Option<PaymentView>,
}

impl From<&SubscriptionChange> for SubscriptionChangeView {
    fn from(change: &SubscriptionChange) -> Self {
        Self {
            subscription: (&change.subscription).into(),
            invoice: change.invoice.as_ref().map(Into::into),
            payment: change.payment.as_ref().map(Into::into),
        }
    }
}

/// How much of what the plan limits the practice uses now.
#[derive(Debug, Clone, Object)]
pub struct UsageView {
    /// Active clients.
    pub active_clients: u64,
    /// Providers.
    pub providers: u64,
}

/// The practice's plan and its standing (admins and providers).
#[derive(Debug, Clone, Object)]
pub struct PlanStatusView {
    /// The plan's code; absent without a subscription.
    #[oai(skip_serializing_if_is_none)]
    pub plan_code: Option<String>,
    /// The plan's name.
    #[oai(skip_serializing_if_is_none)]
    pub plan_name: Option<String>,
    /// The subscription's status.
    #[oai(skip_serializing_if_is_none)]
    pub status: Option<SubscriptionStatusName>,
    /// When the current period ends.
    #[oai(skip_serializing_if_is_none)]
    pub current_period_end: Option<DateTime<Utc>>,
    /// The limits in force (none without a subscription).
    pub limits: LimitsView,
    /// What the practice uses now.
    pub usage: UsageView,
}

impl From<&PlanStatus> for PlanStatusView {
    fn from(s: &PlanStatus) -> Self {
        Self {
            plan_code: s.plan_code.as_ref().map(ToString::to_string),
            plan_name: s.plan_name.clone(),
            status: s.status.map(SubscriptionStatusName::of),
            current_period_end: s.current_period_end,
            limits: s.limits.into(),
            usage: UsageView {
                active_clients: s.active_clients,
                providers: s.providers,
            },
        }
    }
}

/// Where an invoice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum InvoiceStatusName {
    /// Being prepared.
    Draft,
    /// Issued, awaiting payment.
    Open,
    /// Paid in full.
    Paid,
    /// Cancelled; keeps its number.
    Void,
    /// Written off after dunning failed.
    Uncollectible,
}

impl InvoiceStatusName {
    const fn of(status: InvoiceStatus) -> Self {
        match status {
            InvoiceStatus::Draft => Self::Draft,
            InvoiceStatus::Open => Self::Open,
            InvoiceStatus::Paid => Self::Paid,
            InvoiceStatus::Void => Self::Void,
            InvoiceStatus::Uncollectible => Self::Uncollectible,
        }
    }
}

/// Why an invoice line is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LineKindName {
    /// A subscription period.
    Subscription,
    /// The prorated charge for a new plan's rest of the period.
    ProrationCharge,
    /// The prorated credit for the old plan's unused rest of the period.
    ProrationCredit,
    /// Credit carried from earlier plan changes.
    AppliedCredit,
    /// Anything else the platform operator bills.
    Manual,
}

impl LineKindName {
    const fn of(kind: LineKind) -> Self {
        match kind {
            LineKind::Subscription => Self::Subscription,
            LineKind::ProrationCharge => Self::ProrationCharge,
            LineKind::ProrationCredit => Self::ProrationCredit,
            LineKind::AppliedCredit => Self::AppliedCredit,
            LineKind::Manual => Self::Manual,
        }
    }
}

/// One invoice line.
#[derive(Debug, Clone, Object)]
pub struct InvoiceLineView {
    /// Why it is there.
    pub kind: LineKindName,
    /// What it is for.
    pub description: String,
    /// How many.
    pub quantity: u32,
    /// The price of one (negative only for credits).
    pub unit_amount: MoneyView,
    /// `quantity × unit_amount`, exact.
    pub amount: MoneyView,
    /// The service period's start, if any.
    #[oai(skip_serializing_if_is_none)]
    pub period_start: Option<DateTime<Utc>>,
    /// The service period's end, if any.
    #[oai(skip_serializing_if_is_none)]
    pub period_end: Option<DateTime<Utc>>,
}

impl From<&InvoiceLine> for InvoiceLineView {
    fn from(line: &InvoiceLine) -> Self {
        Self {
            kind: LineKindName::of(line.kind),
            description: line.description.as_str().to_owned(),
            quantity: line.quantity,
            unit_amount: line.unit_amount.into(),
            amount: line.amount.into(),
            period_start: line.period.map(|(start, _)| start),
            period_end: line.period.map(|(_, end)| end),
        }
    }
}

/// The tax an invoice applies.
#[derive(Debug, Clone, Object)]
pub struct InvoiceTaxView {
    /// The billing country whose rate applies.
    pub country: String,
    /// The tax's name.
    pub name: String,
    /// The rate in percent.
    pub rate: String,
    /// `subtotal × rate / 100`, rounded once, half away from zero.
    pub amount: MoneyView,
}

/// An invoice.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Invoice")]
pub struct InvoiceDto {
    /// Its id.
    pub id: Uuid,
    /// Its number: 1, 2, 3, ... per practice, without gaps.
    pub number: u64,
    /// The number as printed, e.g. `INV-000042`.
    pub display_number: String,
    /// Its status.
    pub status: InvoiceStatusName,
    /// The subscription it bills, if any.
    #[oai(skip_serializing_if_is_none)]
    pub subscription_id: Option<Uuid>,
    /// The currency of every amount on it.
    pub currency: String,
    /// The lines.
    pub lines: Vec<InvoiceLineView>,
    /// Sum of the lines.
    pub subtotal: MoneyView,
    /// The tax.
    pub tax: InvoiceTaxView,
    /// `subtotal + tax`.
    pub total: MoneyView,
    /// Paid so far.
    pub amount_paid: MoneyView,
    /// Refunded so far.
    pub amount_refunded: MoneyView,
    /// Still owed.
    pub amount_due: MoneyView,
    /// Who it is addressed to, as issued.
    #[oai(skip_serializing_if_is_none)]
    pub bill_to: Option<BillToView>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When payment is due.
    pub due_at: DateTime<Utc>,
    /// When it was paid in full.
    #[oai(skip_serializing_if_is_none)]
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was voided or written off.
    #[oai(skip_serializing_if_is_none)]
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<&Invoice> for InvoiceDto {
    fn from(invoice: &Invoice) -> Self {
        let body = &invoice.body;
        Self {
            id: body.id,
            number: invoice.number,
            display_number: invoice.display_number(),
            status: InvoiceStatusName::of(body.status),
            subscription_id: body.subscription,
            currency: body.currency.code().to_owned(),
            lines: body.lines.iter().map(Into::into).collect(),
            subtotal: body.subtotal.into(),
            tax: InvoiceTaxView {
                country: body.tax.country.as_str().to_owned(),
                name: body.tax.name.clone(),
                rate: body.tax.rate.percent().normalize().to_string(),
                amount: body.tax.amount.into(),
            },
            total: body.total.into(),
            amount_paid: invoice.amount_paid.into(),
            amount_refunded: invoice.amount_refunded.into(),
            amount_due: invoice.amount_due().into(),
            bill_to: body.bill_to.as_ref().map(Into::into),
            created_at: body.created_at,
            due_at: body.due_at,
            paid_at: invoice.paid_at,
            closed_at: invoice.closed_at,
        }
    }
}

/// A page of invoices.
#[derive(Debug, Clone, Object)]
pub struct InvoicePageView {
    /// Newest (highest number) first.
    pub items: Vec<InvoiceDto>,
    /// Pass as `before` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_before: Option<u64>,
}

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PaymentStatusName {
    /// Sent to the processor, no answer yet.
    Pending,
    /// The card holder must act; the processor's event settles it.
    RequiresAction,
    /// Money moved.
    Succeeded,
    /// Declined.
    Failed,
}

impl PaymentStatusName {
    const fn of(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Pending => Self::Pending,
            PaymentStatus::RequiresAction => Self::RequiresAction,
            PaymentStatus::Succeeded => Self::Succeeded,
            PaymentStatus::Failed => Self::Failed,
        }
    }
}

/// One attempt to collect an invoice.
#[derive(Debug, Clone, Object)]
pub struct PaymentView {
    /// Its id.
    pub id: Uuid,
    /// The invoice it pays.
    pub invoice_id: Uuid,
    /// The amount.
    pub amount: MoneyView,
    /// Where it is.
    pub status: PaymentStatusName,
    /// The processor's decline code, e.g. `card_declined`.
    #[oai(skip_serializing_if_is_none)]
    pub failure_code: Option<String>,
    /// Refunded so far.
    pub refunded: MoneyView,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id,
            invoice_id: p.invoice,
            amount: p.amount.into(),
            status: PaymentStatusName::of(p.status),
            failure_code: p.failure_code.clone(),
            refunded: p.refunded.into(),
            created_at: p.created_at,
        }
    }
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, Object)]
pub struct RefundView {
    /// Its id.
    pub id: Uuid,
    /// The payment refunded.
    pub payment_id: Uuid,
    /// The invoice.
    pub invoice_id: Uuid,
    /// The amount.
    pub amount: MoneyView,
    /// Why.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> Self {
        Self {
            id: r.id,
            payment_id: r.payment,
            invoice_id: r.invoice,
            amount: r.amount.into(),
            reason: r.reason.as_ref().map(|l| l.as_str().to_owned()),
            created_at: r.created_at,
        }
    }
}

/// An invoice with its payments and refunds.
#[derive(Debug, Clone, Object)]
pub struct InvoiceDetailView {
    /// The invoice.
    pub invoice: InvoiceDto,
    /// Its payments, oldest first.
    pub payments: Vec<PaymentView>,
    /// Its refunds, oldest first.
    pub refunds: Vec<RefundView>,
}

impl From<&InvoiceView> for InvoiceDetailView {
    fn from(v: &InvoiceView) -> Self {
        Self {
            invoice: (&v.invoice).into(),
            payments: v.payments.iter().map(Into::into).collect(),
            refunds: v.refunds.iter().map(Into::into).collect(),
        }
    }
}

/// One line of an ad-hoc invoice.
#[derive(Debug, Clone, Object)]
pub struct ManualLineRequest {
    /// What it is for, 1 to 200 characters.
    #[oai(validator(max_length = 200))]
    pub description: String,
    /// How many, 1 to 10,000.
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
    pub quantity: u32,
    /// The price of one, a decimal string in the invoice's currency; never negative.
    #[oai(validator(max_length = 40))]
    pub unit_amount: String,
}

/// An ad-hoc invoice (platform operator).
#[derive(Debug, Clone, Object)]
pub struct NewInvoiceRequest {
    /// The currency of every amount on it (ISO 4217).
    #[oai(validator(max_length = 8))]
    pub currency: String,
    /// The lines, 1 to 100.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub lines: Vec<ManualLineRequest>,
    /// Issue it at once (open) rather than keep it a draft (default false).
    #[oai(default)]
    pub finalize: bool,
}

/// A refund (platform operator).
#[derive(Debug, Clone, Object)]
pub struct RefundRequest {
    /// The amount, positive; at most what was paid and not yet refunded.
    pub amount: MoneyInput,
    /// Why, shown to the practice, 1 to 200 characters.
    #[oai(skip_serializing_if_is_none, validator(max_length = 200))]
    pub reason: Option<String>,
}

/// A billing run (platform operator).
#[derive(Debug, Clone, Object)]
pub struct BillingRunRequest {
    /// The most subscriptions to step, 1 to 1,000 (default 500).
    #[oai(
        default = "default_run_limit",
        validator(minimum(value = "1"), maximum(value = "1000"))
    )]
    pub limit: u32,
}

const fn default_run_limit() -> u32 {
    500
}

/// What a billing run did.
#[derive(Debug, Clone, Object)]
pub struct BillingRunView {
    /// Subscriptions renewed and paid (and dunning retries that succeeded).
    pub renewed: u32,
    /// Trials converted to paid periods.
    pub converted: u32,
    /// Payment attempts that failed.
    pub failed: u32,
    /// Subscriptions canceled.
    pub canceled: u32,
    /// Trials expired without a card.
    pub expired: u32,
}

impl From<RunReport> for BillingRunView {
    fn from(r: RunReport) -> Self {
        Self {
            renewed: r.renewed,
            converted: r.converted,
            failed: r.failed,
            canceled: r.canceled,
            expired: r.expired,
        }
    }
}

/// What receiving a processor event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventOutcomeName {
    /// It changed the payment it names.
    Applied,
    /// It is older than the last event applied to its payment; nothing changed.
    Stale,
    /// It names nothing Custodia holds; recorded, nothing changed.
    UnknownObject,
    /// A type Custodia does not act on; recorded, nothing changed.
    Ignored,
    /// The event was received before (a redelivery); nothing changed.
    Duplicate,
}

impl EventOutcomeName {
    /// The name of a recorded outcome.
    #[must_use]
    pub const fn of(outcome: WebhookOutcome) -> Self {
        match outcome {
            WebhookOutcome::Applied => Self::Applied,
            WebhookOutcome::Stale => Self::Stale,
            WebhookOutcome::UnknownObject => Self::UnknownObject,
            WebhookOutcome::Ignored => Self::Ignored,
        }
    }
}

/// The acknowledgement of a processor event.
#[derive(Debug, Clone, Object)]
pub struct EventReceiptView {
    /// Always `true`: the event need not be sent again.
    pub received: bool,
    /// What it did.
    pub outcome: EventOutcomeName,
}
