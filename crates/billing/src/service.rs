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
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, AuditSink, OrganisationId, Purpose,
    RequestContext, ResourceRef, Role, UserId,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::model::{
    BillTo, BillingAccount, Dunning, Invoice, InvoiceLine, InvoiceStatus, InvoiceTax, Limit,
    LineKind, MAX_TRIAL_DAYS, NewInvoice, Payment, PaymentMethod, PaymentStatus, PlanLimits,
    PlanTerms, PlanVersion, ProcessorEvent, Refund, Subscription, SubscriptionStatus, TaxRateEntry,
    WebhookEvent, WebhookOutcome, line_amount, remaining_fraction,
};
use crate::money::{Currency, Money, MoneyError};
use crate::ports::{
    BillingNotice, BillingNotifier, BillingRepository, Changes, ChargeOutcome, ChargeRequest,
    InvoicePage, PaymentProcessor, PracticeUsage, ProcessorError, RepositoryError, Write,
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

    /// The repository (for the rights engine's port and the seed).
    #[must_use]
    pub fn repository(&self) -> &Arc<dyn BillingRepository> {
        &self.ports.repository
    }

    fn repo(&self) -> &dyn BillingRepository {
        &*self.ports.repository
    }

    // ---- Plans and tax rates (platform operator) ----

    /// Creates a plan (operator). A taken code is a conflict.
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `Invalid`, `Conflict`, `Unavailable`.
    pub async fn create_plan(
        &self,
        ctx: &RequestContext,
        code: PlanCode,
        terms: PlanTerms,
    ) -> Result<PlanVersion, BillingError> {
        require_operator(ctx)?;
        check_terms(&terms)?;
        let plan = PlanVersion {
            plan: Uuid::now_v7(),
            code,
            version: 1,
            terms,
            available: true,
            created_at: ctx.at(),
        };
        self.audit(ctx, None, AuditAction::Create, resource::PLAN, plan.plan)
            .await?;
        self.repo().create_plan(&plan).await?;
        Ok(plan)
    }

    /// Writes a plan's next version (operator): subscriptions keep their version
    /// until renewal. `available: false` withdraws it from new subscriptions.
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `NotFound`, `Invalid`, `Conflict`, `Unavailable`.
    pub async fn revise_plan(
        &self,
        ctx: &RequestContext,
        code: &PlanCode,
        terms: PlanTerms,
        available: bool,
    ) -> Result<PlanVersion, BillingError> {
        require_operator(ctx)?;
        check_terms(&terms)?;
        let latest = self
            .repo()
            .plan(code)
            .await?
            .ok_or(BillingError::NotFound)?;
        let plan = PlanVersion {
            plan: latest.plan,
            code: latest.code,
            version: latest.version + 1,
            terms,
            available,
            created_at: ctx.at(),
        };
        self.audit(ctx, None, AuditAction::Update, resource::PLAN, plan.plan)
            .await?;
        self.repo().add_plan_version(&plan).await?;
        Ok(plan)
    }

    /// The latest version of every plan (operator, or a practice admin).
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `Unavailable`.
    pub async fn plans(&self, ctx: &RequestContext) -> Result<Vec<PlanVersion>, BillingError> {
        require_plan_reader(ctx)?;
        Ok(self.repo().plans().await?)
    }

    /// The latest version of one plan (operator, or a practice admin).
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `NotFound`, `Unavailable`.
    pub async fn plan(
        &self,
        ctx: &RequestContext,
        code: &PlanCode,
    ) -> Result<PlanVersion, BillingError> {
        require_plan_reader(ctx)?;
        self.repo().plan(code).await?.ok_or(BillingError::NotFound)
    }

    /// Sets a country's tax rate (operator).
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `Unavailable`.
    pub async fn set_tax_rate(
        &self,
        ctx: &RequestContext,
        country: Country,
        rate: TaxRate,
        name: Label<40>,
    ) -> Result<TaxRateEntry, BillingError> {
        require_operator(ctx)?;
        let entry = TaxRateEntry {
            country,
            rate,
            name,
            updated_at: ctx.at(),
        };
        self.audit(
            ctx,
            None,
            AuditAction::Update,
            resource::TAX_RATE,
            country_id(country),
        )
        .await?;
        self.repo().set_tax_rate(&entry).await?;
        Ok(entry)
    }

    /// Every configured tax rate (operator).
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `Unavailable`.
    pub async fn tax_rates(&self, ctx: &RequestContext) -> Result<Vec<TaxRateEntry>, BillingError> {
        require_operator(ctx)?;
        Ok(self.repo().tax_rates().await?)
    }

    // ---- The practice's account and cards (admins) ----

    /// The practice's billing account (admins, operator).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Option<BillingAccount>, BillingError> {
        require_admin_or_operator(ctx, organisation)?;
        Ok(self.repo().account(organisation).await?)
    }

    /// Writes the practice's billing contact (admins); creates the processor's
    /// customer on first use. `contact_user` is the member who is the contact
    /// (the caller when `None`).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn save_account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        bill_to: BillTo,
        contact_user: Option<UserId>,
    ) -> Result<BillingAccount, BillingError> {
        require_admin(ctx, organisation)?;
        let existing = self.repo().account(organisation).await?;
        let processor_customer = match existing.and_then(|a| a.processor_customer) {
            Some(customer) => customer,
            None => self.ports.processor.create_customer(organisation).await?,
        };
        let account = BillingAccount {
            organisation,
            bill_to,
            contact_user: contact_user.or_else(|| ctx.actor().user()),
            processor_customer: Some(processor_customer),
            anonymised: false,
            updated_at: ctx.at(),
        };
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Update,
            resource::BILLING_ACCOUNT,
            organisation.as_uuid(),
        )
        .await?;
        self.repo()
            .commit(Changes {
                account: Some(account.clone()),
                ..Changes::default()
            })
            .await?;
        Ok(account)
    }

    /// Adds a card by the processor's token (admins) and makes it the default. Needs
    /// a billing account.
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Conflict` (no account),
    /// `ProcessorRejected` (an unknown token), `Unavailable`.
    pub async fn add_payment_method(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        token: ProcessorToken,
    ) -> Result<PaymentMethod, BillingError> {
        require_admin(ctx, organisation)?;
        let customer = self
            .repo()
            .account(organisation)
            .await?
            .and_then(|a| a.processor_customer)
            .ok_or(BillingError::Conflict(
                "the practice needs a billing account before a card can be added",
            ))?;
        let card = self
            .ports
            .processor
            .attach_payment_method(&customer, &token)
            .await?;
        let method = PaymentMethod {
            id: Uuid::now_v7(),
            organisation,
            processor_ref: card.processor_ref,
            brand: card.brand,
            last4: card.last4,
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            is_default: true,
            added_by: ctx.actor().user(),
            created_at: ctx.at(),
        };
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Create,
            resource::PAYMENT_METHOD,
            method.id,
        )
        .await?;
        self.repo()
            .commit(Changes {
                new_payment_methods: vec![method.clone()],
                ..Changes::default()
            })
            .await?;
        Ok(method)
    }

    /// The practice's cards (admins).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn payment_methods(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Vec<PaymentMethod>, BillingError> {
        require_admin(ctx, organisation)?;
        Ok(self.repo().payment_methods(organisation).await?)
    }

    /// Removes a card (admins). Charges then use the newest remaining card.
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn remove_payment_method(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<(), BillingError> {
        require_admin(ctx, organisation)?;
        let methods = self.repo().payment_methods(organisation).await?;
        if !methods.iter().any(|m| m.id == id) {
            return Err(BillingError::NotFound);
        }
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Delete,
            resource::PAYMENT_METHOD,
            id,
        )
        .await?;
        self.repo()
            .commit(Changes {
                removed_payment_methods: vec![id],
                ..Changes::default()
            })
            .await?;
        Ok(())
    }

    // ---- Subscriptions (admins) ----

    /// Subscribes the practice to a plan (admins). With trial days, it is trialing
    /// until the trial ends; a free plan is active at once; otherwise the first
    /// period is invoiced and charged now (a decline leaves it past due, in
    /// dunning, and is [`BillingError::PaymentFailed`]).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `UnknownPlan`, `Invalid`,
    /// `LimitReached`, `Conflict`, `PaymentFailed`, `Unavailable`.
    pub async fn subscribe(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        code: &PlanCode,
    ) -> Result<SubscriptionChange, BillingError> {
        require_admin(ctx, organisation)?;
        let plan = self.offered_plan(code).await?;
        if let Some(current) = self.repo().subscription(organisation).await?
            && current.status.is_live()
        {
            return Err(BillingError::Conflict(
                "the practice already has a live subscription; change its plan instead",
            ));
        }
        self.check_usage_fits(organisation, &plan).await?;
        let now = ctx.at();
        let terms = &plan.terms;
        let trialing = terms.trial_days > 0;
        let period_end = if trialing {
            now + Duration::days(i64::from(terms.trial_days))
        } else {
            terms.interval.period_end(now)
        };
        let mut subscription = Subscription {
            id: Uuid::now_v7(),
            organisation,
            plan: plan.plan,
            plan_code: plan.code.clone(),
            plan_version: plan.version,
            price: terms.price,
            interval: terms.interval,
            limits: terms.limits,
            status: if trialing {
                SubscriptionStatus::Trialing
            } else {
                SubscriptionStatus::Active
            },
            current_period_start: now,
            current_period_end: period_end,
            trial_end: trialing.then_some(period_end),
            cancel_at_period_end: false,
            ended_at: None,
            credit: Money::zero(terms.price.currency()),
            dunning: None,
            created_at: now,
            version: 1,
        };
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Create,
            resource::SUBSCRIPTION,
            subscription.id,
        )
        .await?;
        if trialing || terms.price.amount().is_zero() {
            self.repo()
                .commit(Changes {
                    subscription: Some(Write::Insert(subscription.clone())),
                    ..Changes::default()
                })
                .await?;
            return Ok(SubscriptionChange {
                subscription,
                invoice: None,
                payment: None,
            });
        }
        let (account, method) = self.payer(organisation).await?;
        let line = period_line(&plan, now, period_end)?;
        let invoice = self
            .prepare_invoice(
                &account,
                Some(subscription.id),
                vec![line],
                now,
                now,
                InvoiceStatus::Open,
            )
            .await?;
        let created = self
            .repo()
            .commit(Changes {
                subscription: Some(Write::Insert(subscription.clone())),
                new_invoices: vec![invoice],
                ..Changes::default()
            })
            .await?;
        let invoice = created.into_iter().next().ok_or(BillingError::Conflict(
            "the invoice was not created; try again",
        ))?;
        subscription.version = 1;
        let collected = self
            .collect(
                ctx,
                &account,
                Some(&method),
                invoice,
                Some(subscription),
                true,
            )
            .await?;
        collected.into_change()
    }

    /// Moves the subscription to another plan now, prorated by the days left in
    /// the period: an upgrade invoices and charges the difference, a downgrade
    /// credits it to the next invoices. A plan whose limits the practice already
    /// exceeds is refused, naming the limit. A plan with another interval starts a
    /// new period now, crediting the old one's unused days.
    ///
    /// # Errors
    /// [`BillingError`]: as [`BillingService::subscribe`].
    pub async fn change_plan(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        code: &PlanCode,
    ) -> Result<SubscriptionChange, BillingError> {
        require_admin(ctx, organisation)?;
        let plan = self.offered_plan(code).await?;
        let current = self.live_subscription(organisation).await?;
        if current.status == SubscriptionStatus::PastDue {
            return Err(BillingError::Conflict(
                "settle the unpaid invoice before changing plans",
            ));
        }
        if current.plan == plan.plan && current.plan_version == plan.version {
            return Err(BillingError::Conflict(
                "the subscription is already on this plan version",
            ));
        }
        if current.price.currency() != plan.terms.price.currency() {
            return Err(BillingError::Conflict(
                "the new plan bills in another currency; cancel and subscribe instead",
            ));
        }
        self.check_usage_fits(organisation, &plan).await?;
        let now = ctx.at();
        let mut next = current.clone();
        next.plan = plan.plan;
        next.plan_code = plan.code.clone();
        next.plan_version = plan.version;
        next.price = plan.terms.price;
        next.limits = plan.terms.limits;
        next.version = current.version + 1;
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Update,
            resource::SUBSCRIPTION,
            current.id,
        )
        .await?;
        if current.status == SubscriptionStatus::Trialing {
            // A trial is free: the new plan applies from now, no proration.
            next.interval = plan.terms.interval;
            self.repo()
                .commit(Changes {
                    subscription: Some(Write::Update(next.clone())),
                    ..Changes::default()
                })
                .await?;
            return Ok(SubscriptionChange {
                subscription: next,
                invoice: None,
                payment: None,
            });
        }
        let (remaining, whole) = remaining_fraction(
            current.current_period_start,
            current.current_period_end,
            now,
        );
        let credit = current.price.share(remaining, whole)?;
        let (charge, period) = if plan.terms.interval == current.interval {
            (
                plan.terms.price.share(remaining, whole)?,
                (now, current.current_period_end),
            )
        } else {
            let end = plan.terms.interval.period_end(now);
            next.interval = plan.terms.interval;
            next.current_period_start = now;
            next.current_period_end = end;
            (plan.terms.price, (now, end))
        };
        let currency = charge.currency();
        let mut lines = Vec::new();
        if !charge.amount().is_zero() {
            lines.push(InvoiceLine {
                kind: LineKind::ProrationCharge,
                description: label(&format!(
                    "{} for {} of {} days",
                    plan.terms.name.as_str(),
                    days_between(period.0, period.1).min(whole),
                    whole
                )),
                quantity: 1,
                unit_amount: charge,
                amount: charge,
                period: Some(period),
            });
        }
        if !credit.amount().is_zero() {
            let negative = Money::zero(currency).minus(credit)?;
            lines.push(InvoiceLine {
                kind: LineKind::ProrationCredit,
                description: label(&format!(
                    "Unused time on {} ({remaining} of {whole} days)",
                    current.plan_code
                )),
                quantity: 1,
                unit_amount: negative,
                amount: negative,
                period: Some((now, current.current_period_end)),
            });
        }
        let net = lines
            .iter()
            .try_fold(Money::zero(currency), |sum, l| sum.plus(l.amount))?;
        if !net.is_negative() && !net.amount().is_zero() {
            let applied = min_money(next.credit, net)?;
            if !applied.amount().is_zero() {
                let negative = Money::zero(currency).minus(applied)?;
                lines.push(credit_line(negative));
                next.credit = next.credit.minus(applied)?;
            }
        }
        let total = lines
            .iter()
            .try_fold(Money::zero(currency), |sum, l| sum.plus(l.amount))?;
        if total.is_negative() || total.amount().is_zero() {
            // A downgrade: the difference is credit for the next invoices.
            next.credit = next.credit.minus(total)?;
            self.repo()
                .commit(Changes {
                    subscription: Some(Write::Update(next.clone())),
                    ..Changes::default()
                })
                .await?;
            return Ok(SubscriptionChange {
                subscription: next,
                invoice: None,
                payment: None,
            });
        }
        let (account, method) = self.payer(organisation).await?;
        let invoice = self
            .prepare_invoice(
                &account,
                Some(next.id),
                lines,
                now,
                now,
                InvoiceStatus::Open,
            )
            .await?;
        let created = self
            .repo()
            .commit(Changes {
                subscription: Some(Write::Update(next.clone())),
                new_invoices: vec![invoice],
                ..Changes::default()
            })
            .await?;
        let invoice = created.into_iter().next().ok_or(BillingError::Conflict(
            "the invoice was not created; try again",
        ))?;
        let collected = self
            .collect(ctx, &account, Some(&method), invoice, Some(next), true)
            .await?;
        collected.into_change()
    }

    /// Cancels at the end of the current period (admins).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Conflict`, `Unavailable`.
    pub async fn cancel(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Subscription, BillingError> {
        self.set_cancel(ctx, organisation, true).await
    }

    /// Takes back a cancellation before the period ends (admins).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Conflict`, `Unavailable`.
    pub async fn resume(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Subscription, BillingError> {
        self.set_cancel(ctx, organisation, false).await
    }

    async fn set_cancel(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        cancel: bool,
    ) -> Result<Subscription, BillingError> {
        require_admin(ctx, organisation)?;
        let current = self.live_subscription(organisation).await?;
        if current.cancel_at_period_end == cancel {
            return Err(BillingError::Conflict(if cancel {
                "the subscription is already set to end with this period"
            } else {
                "the subscription is not set to end"
            }));
        }
        let mut next = current;
        next.cancel_at_period_end = cancel;
        next.version += 1;
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Update,
            resource::SUBSCRIPTION,
            next.id,
        )
        .await?;
        self.repo()
            .commit(Changes {
                subscription: Some(Write::Update(next.clone())),
                ..Changes::default()
            })
            .await?;
        Ok(next)
    }

    /// The practice's subscription (admins, operator).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn subscription(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Option<Subscription>, BillingError> {
        require_admin_or_operator(ctx, organisation)?;
        Ok(self.repo().subscription(organisation).await?)
    }

    /// The plan and its standing (admins and providers).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn plan_status(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<PlanStatus, BillingError> {
        match practice_reader(ctx, organisation)? {
            Reader::Operator | Reader::Admin | Reader::Provider => {}
        }
        let subscription = self.repo().subscription(organisation).await?;
        let plan_name = match &subscription {
            Some(s) => self
                .repo()
                .plan_version(s.plan, s.plan_version)
                .await?
                .map(|p| p.terms.name.as_str().to_owned()),
            None => None,
        };
        Ok(PlanStatus {
            plan_code: subscription.as_ref().map(|s| s.plan_code.clone()),
            plan_name,
            status: subscription.as_ref().map(|s| s.status),
            current_period_end: subscription.as_ref().map(|s| s.current_period_end),
            limits: subscription.as_ref().map(|s| s.limits).unwrap_or_default(),
            active_clients: self.ports.usage.active_clients(organisation).await?,
            providers: self.ports.usage.providers(organisation).await?,
        })
    }

    /// Refuses one more of `limit` when the practice's plan is at its limit. The
    /// limits of the practice's latest subscription apply, live or ended; a
    /// practice that never subscribed has no plan limits.
    ///
    /// # Errors
    /// [`BillingError::LimitReached`], `Unavailable`.
    pub async fn ensure_room(
        &self,
        organisation: OrganisationId,
        limit: Limit,
    ) -> Result<(), BillingError> {
        let Some(subscription) = self.repo().subscription(organisation).await? else {
            return Ok(());
        };
        let Some(max) = limit.of(&subscription.limits) else {
            return Ok(());
        };
        let used = self.usage(organisation, limit).await?;
        if used >= u64::from(max) {
            return Err(BillingError::LimitReached {
                limit,
                max,
                plan: subscription.plan_code,
            });
        }
        Ok(())
    }

    async fn usage(&self, organisation: OrganisationId, limit: Limit) -> Result<u64, BillingError> {
        Ok(match limit {
            Limit::ActiveClients => self.ports.usage.active_clients(organisation).await?,
            Limit::Providers => self.ports.usage.providers(organisation).await?,
        })
    }

    async fn check_usage_fits(
        &self,
        organisation: OrganisationId,
        plan: &PlanVersion,
    ) -> Result<(), BillingError> {
        for limit in [Limit::ActiveClients, Limit::Providers] {
            if let Some(max) = limit.of(&plan.terms.limits)
                && self.usage(organisation, limit).await? > u64::from(max)
            {
                return Err(BillingError::LimitReached {
                    limit,
                    max,
                    plan: plan.code.clone(),
                });
            }
        }
        Ok(())
    }

    // ---- Invoices ----

    /// The practice's invoices, newest first (admins, operator).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn invoices(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<InvoicePage, BillingError> {
        require_admin_or_operator(ctx, organisation)?;
        Ok(self
            .repo()
            .invoices(organisation, before, limit.clamp(1, 100))
            .await?)
    }

    /// One invoice with its payments and refunds (admins, operator).
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Unavailable`.
    pub async fn invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        require_admin_or_operator(ctx, organisation)?;
        self.view(organisation, id).await
    }

    async fn view(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        let invoice = self
            .repo()
            .invoice(organisation, id)
            .await?
            .ok_or(BillingError::NotFound)?;
        Ok(InvoiceView {
            payments: self.repo().payments(id).await?,
            refunds: self.repo().refunds(id).await?,
            invoice,
        })
    }

    /// An ad-hoc invoice (operator), in `currency`, taxed at the practice's billing
    /// country's rate; a draft unless `finalize`.
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `Invalid`, `Conflict` (no billing account),
    /// `Unavailable`.
    pub async fn create_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        currency: Currency,
        lines: Vec<ManualLine>,
        finalize: bool,
    ) -> Result<Invoice, BillingError> {
        require_operator(ctx)?;
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(InvalidInput::new("lines", "an invoice has 1 to 100 lines").into());
        }
        let mut invoice_lines = Vec::with_capacity(lines.len());
        for line in lines {
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(InvalidInput::new("lines[].quantity", "must be 1 to 10000").into());
            }
            if line.unit_amount.currency() != currency {
                return Err(InvalidInput::new(
                    "lines[].unit_amount",
                    "must be in the invoice's currency",
                )
                .into());
            }
            let unit = line
                .unit_amount
                .non_negative()
                .map_err(|e| InvalidInput::new("lines[].unit_amount", e.rule()))?;
            invoice_lines.push(InvoiceLine {
                kind: LineKind::Manual,
                description: line.description,
                quantity: line.quantity,
                unit_amount: unit,
                amount: line_amount(line.quantity, unit)?,
                period: None,
            });
        }
        let account = self
            .repo()
            .account(organisation)
            .await?
            .ok_or(BillingError::Conflict(
                "the practice has no billing account to address the invoice to",
            ))?;
        let now = ctx.at();
        let due = now + Duration::days(i64::from(self.config.payment_terms_days));
        let status = if finalize {
            InvoiceStatus::Open
        } else {
            InvoiceStatus::Draft
        };
        let invoice = self
            .prepare_invoice(&account, None, invoice_lines, now, due, status)
            .await?;
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Create,
            resource::INVOICE,
            invoice.id,
        )
        .await?;
        let created = self
            .repo()
            .commit(Changes {
                new_invoices: vec![invoice],
                ..Changes::default()
            })
            .await?;
        created.into_iter().next().ok_or(BillingError::Conflict(
            "the invoice was not created; try again",
        ))
    }

    /// Issues a draft (operator): draft -> open.
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `NotFound`, `Conflict`, `Unavailable`.
    pub async fn finalize_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Invoice, BillingError> {
        require_operator(ctx)?;
        let mut invoice = self.stored_invoice(organisation, id).await?;
        if invoice.body.status != InvoiceStatus::Draft {
            return Err(BillingError::Conflict(
                "only a draft invoice can be finalised",
            ));
        }
        invoice.body.status = InvoiceStatus::Open;
        invoice.version += 1;
        self.write_invoice(ctx, invoice, Changes::default()).await
    }

    /// Voids a draft or unpaid open invoice (operator); it keeps its number. A
    /// subscription in dunning over it leaves dunning.
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `NotFound`, `Conflict`, `Unavailable`.
    pub async fn void_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Invoice, BillingError> {
        require_operator(ctx)?;
        let mut invoice = self.stored_invoice(organisation, id).await?;
        let unpaid = invoice.amount_paid.amount().is_zero();
        if !matches!(
            invoice.body.status,
            InvoiceStatus::Draft | InvoiceStatus::Open
        ) || !unpaid
        {
            return Err(BillingError::Conflict(
                "only a draft or an unpaid open invoice can be voided",
            ));
        }
        let pending = self
            .repo()
            .payments(id)
            .await?
            .iter()
            .any(|p| !p.status.is_settled());
        if pending {
            return Err(BillingError::Conflict(
                "a payment of this invoice is awaiting the processor",
            ));
        }
        invoice.body.status = InvoiceStatus::Void;
        invoice.closed_at = Some(ctx.at());
        invoice.version += 1;
        let mut changes = Changes::default();
        if let Some(mut subscription) = self.repo().subscription(organisation).await?
            && subscription.dunning.is_some_and(|d| d.invoice == id)
        {
            subscription.dunning = None;
            if subscription.status == SubscriptionStatus::PastDue {
                subscription.status = SubscriptionStatus::Active;
            }
            subscription.version += 1;
            changes.subscription = Some(Write::Update(subscription));
        }
        self.write_invoice(ctx, invoice, changes).await
    }

    async fn stored_invoice(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Invoice, BillingError> {
        self.repo()
            .invoice(organisation, id)
            .await?
            .ok_or(BillingError::NotFound)
    }

    async fn write_invoice(
        &self,
        ctx: &RequestContext,
        invoice: Invoice,
        mut changes: Changes,
    ) -> Result<Invoice, BillingError> {
        self.audit(
            ctx,
            Some(invoice.body.organisation),
            AuditAction::Update,
            resource::INVOICE,
            invoice.body.id,
        )
        .await?;
        changes.invoices.push(invoice.clone());
        self.repo().commit(changes).await?;
        Ok(invoice)
    }

    /// Charges an open invoice to the practice's card (admins). A decline is
    /// recorded on the invoice and is [`BillingError::PaymentFailed`].
    ///
    /// # Errors
    /// [`BillingError`]: `NotFound`, `Forbidden`, `Conflict`, `PaymentFailed`,
    /// `Unavailable`.
    pub async fn pay_invoice(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<InvoiceView, BillingError> {
        require_admin(ctx, organisation)?;
        let invoice = self.stored_invoice(organisation, id).await?;
        if invoice.body.status != InvoiceStatus::Open {
            return Err(BillingError::Conflict("only an open invoice can be paid"));
        }
        if self
            .repo()
            .payments(id)
            .await?
            .iter()
            .any(|p| !p.status.is_settled())
        {
            return Err(BillingError::Conflict(
                "a payment of this invoice is awaiting the processor",
            ));
        }
        let (account, method) = self.payer(organisation).await?;
        let subscription = match invoice.body.subscription {
            Some(_) => self.repo().subscription(organisation).await?,
            None => None,
        }
        .filter(|s| Some(s.id) == invoice.body.subscription);
        let collected = self
            .collect(ctx, &account, Some(&method), invoice, subscription, false)
            .await?;
        if let Some(error) = collected.failure() {
            return Err(error);
        }
        self.view(organisation, id).await
    }

    /// Refunds part or all of what an invoice was paid (operator). More than was
    /// paid and not yet refunded is a conflict; the refund comes out of one
    /// payment.
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `NotFound`, `Invalid`, `Conflict`, `Unavailable`.
    pub async fn refund(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        invoice: Uuid,
        amount: Money,
        reason: Option<Label<200>>,
    ) -> Result<Refund, BillingError> {
        require_operator(ctx)?;
        let amount = amount
            .non_negative()
            .map_err(|e| InvalidInput::new("amount", e.rule()))?;
        if amount.amount().is_zero() {
            return Err(InvalidInput::new("amount", "a refund must be more than zero").into());
        }
        let mut stored = self.stored_invoice(organisation, invoice).await?;
        if amount.currency() != stored.body.currency {
            return Err(InvalidInput::new("amount", "must be in the invoice's currency").into());
        }
        let refundable = stored.amount_paid.minus(stored.amount_refunded)?;
        if amount.amount() > refundable.amount() {
            return Err(BillingError::Conflict(
                "the refund exceeds what was paid and not yet refunded",
            ));
        }
        let mut payment = self
            .repo()
            .payments(invoice)
            .await?
            .into_iter()
            .filter(|p| p.status == PaymentStatus::Succeeded)
            .find(|p| {
                p.amount
                    .minus(p.refunded)
                    .is_ok_and(|left| left.amount() >= amount.amount())
            })
            .ok_or(BillingError::Conflict(
                "no single payment covers this refund; refund each payment's part",
            ))?;
        let charge = payment
            .processor_charge
            .clone()
            .ok_or(BillingError::Conflict(
                "the payment has no processor charge",
            ))?;
        let id = Uuid::now_v7();
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Create,
            resource::REFUND,
            id,
        )
        .await?;
        let processor_refund = self.ports.processor.refund(&charge, amount, id).await?;
        let refund = Refund {
            id,
            organisation,
            payment: payment.id,
            invoice,
            amount,
            processor_refund,
            reason,
            created_at: ctx.at(),
        };
        payment.refunded = payment.refunded.plus(amount)?;
        payment.version += 1;
        stored.amount_refunded = stored.amount_refunded.plus(amount)?;
        stored.version += 1;
        self.repo()
            .commit(Changes {
                invoices: vec![stored],
                payments: vec![Write::Update(payment)],
                refunds: vec![refund.clone()],
                ..Changes::default()
            })
            .await?;
        Ok(refund)
    }

    // ---- Processor events and the billing job ----

    /// Applies a verified processor event: once per event id, and never an event
    /// older than the last one applied to its object. An object Custodia does not
    /// hold is recorded with no change. The same id with the same signed timestamp
    /// is [`BillingError::Replay`].
    ///
    /// # Errors
    /// [`BillingError`]: `Replay`, `Unavailable`.
    pub async fn handle_event(
        &self,
        ctx: &RequestContext,
        event: ProcessorEvent,
    ) -> Result<EventReceipt, BillingError> {
        if let Some(seen) = self.repo().webhook_event(&event.id).await? {
            return if seen.signed_at == event.signed_at {
                Err(BillingError::Replay)
            } else {
                Ok(EventReceipt::Duplicate)
            };
        }
        let mut record = WebhookEvent {
            id: event.id.clone(),
            kind: event.kind.clone(),
            object: event.object.clone(),
            created: event.created,
            signed_at: event.signed_at,
            received_at: ctx.at(),
            outcome: WebhookOutcome::Ignored,
        };
        let acts = matches!(
            event.kind.as_str(),
            "charge.succeeded" | "charge.failed" | "charge.refunded"
        );
        let payment = match (&event.object, acts) {
            (Some(object), true) => self.repo().payment_by_charge(object).await?,
            _ => None,
        };
        let mut changes = Changes::default();
        let mut notice = None;
        match payment {
            None if acts => record.outcome = WebhookOutcome::UnknownObject,
            None => {}
            Some(payment) if payment.last_event_at.is_some_and(|t| t >= event.created) => {
                record.outcome = WebhookOutcome::Stale;
            }
            Some(mut payment) => {
                let organisation = payment.organisation;
                let mut invoice = self.stored_invoice(organisation, payment.invoice).await?;
                let subscription = self
                    .repo()
                    .subscription(organisation)
                    .await?
                    .filter(|s| Some(s.id) == invoice.body.subscription);
                payment.last_event_at = Some(event.created);
                payment.version += 1;
                record.outcome = WebhookOutcome::Applied;
                match event.kind.as_str() {
                    "charge.succeeded" if !payment.status.is_settled() => {
                        let (p, i, s, n) = self.settle(
                            payment,
                            invoice,
                            subscription,
                            Settled::Paid,
                            ctx.at(),
                            true,
                        )?;
                        changes.payments.push(Write::Update(p));
                        changes.invoices.push(i);
                        changes.subscription = s.map(Write::Update);
                        notice = n;
                    }
                    "charge.failed" if !payment.status.is_settled() => {
                        let code = event
                            .failure_code
                            .clone()
                            .unwrap_or_else(|| "card_declined".to_owned());
                        let (p, i, s, n) = self.settle(
                            payment,
                            invoice,
                            subscription,
                            Settled::Failed(code),
                            ctx.at(),
                            true,
                        )?;
                        changes.payments.push(Write::Update(p));
                        changes.invoices.push(i);
                        changes.subscription = s.map(Write::Update);
                        notice = n;
                    }
                    "charge.refunded" if payment.status == PaymentStatus::Succeeded => {
                        // The processor reports the charge's refunded total; a refund
                        // made outside Custodia raises it.
                        let total = event
                            .amount_minor
                            .map(|m| Money::from_minor(m, payment.amount.currency()))
                            .transpose()?
                            .unwrap_or(payment.refunded);
                        if total.amount() > payment.refunded.amount()
                            && total.amount() <= payment.amount.amount()
                        {
                            let extra = total.minus(payment.refunded)?;
                            payment.refunded = total;
                            invoice.amount_refunded = invoice.amount_refunded.plus(extra)?;
                            invoice.version += 1;
                            changes.invoices.push(invoice);
                        }
                        changes.payments.push(Write::Update(payment));
                    }
                    _ => {
                        // Already settled by an earlier event or answer: remember the
                        // event's time so older ones stay stale, change nothing else.
                        changes.payments.push(Write::Update(payment));
                    }
                }
                self.audit(
                    ctx,
                    Some(organisation),
                    AuditAction::Update,
                    resource::PAYMENT,
                    changes.payments.first().map_or(Uuid::nil(), |w| match w {
                        Write::Insert(p) | Write::Update(p) => p.id,
                    }),
                )
                .await?;
                let organisation_notice = notice.take().map(|n| (organisation, n));
                changes.webhook_event = Some(record.clone());
                if let Some(receipt) = self.record_event(changes, &record.id).await? {
                    return Ok(receipt);
                }
                if let Some((organisation, notice)) = organisation_notice {
                    self.notify(organisation, &notice).await;
                }
                return Ok(EventReceipt::Recorded(record.outcome));
            }
        }
        changes.webhook_event = Some(record.clone());
        Ok(self
            .record_event(changes, &record.id)
            .await?
            .unwrap_or(EventReceipt::Recorded(record.outcome)))
    }

    /// Commits an event's changes with its record. A conflict is a duplicate when
    /// another delivery of the same event was recorded meanwhile (`Some`); any other
    /// conflict is the caller's error.
    async fn record_event(
        &self,
        changes: Changes,
        id: &str,
    ) -> Result<Option<EventReceipt>, BillingError> {
        match self.repo().commit(changes).await {
            Ok(_) => Ok(None),
            Err(RepositoryError::Conflict(rule)) => {
                if self.repo().webhook_event(id).await?.is_some() {
                    Ok(Some(EventReceipt::Duplicate))
                } else {
                    Err(BillingError::Conflict(rule))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Does the work due at `ctx.at()`: renewals (at the plan's latest version),
    /// trial ends, cancellations at period end, dunning retries. At most `limit`
    /// subscription steps (operator or the system).
    ///
    /// # Errors
    /// [`BillingError`]: `Forbidden`, `Unavailable`.
    pub async fn run_due(
        &self,
        ctx: &RequestContext,
        limit: u32,
    ) -> Result<RunReport, BillingError> {
        match ctx.actor() {
            Actor::PlatformOperator { .. } | Actor::System { .. } => {}
            Actor::Member { .. } => {
                return Err(BillingError::Forbidden(
                    "only the platform operator runs billing",
                ));
            }
            Actor::Anonymous => return Err(BillingError::NotFound),
        }
        let now = ctx.at();
        let mut report = RunReport::default();
        let mut steps = 0;
        // A subscription is stepped again only once it was written (a catch-up
        // renewal); one left as it was is not retried in the same run.
        let mut seen = std::collections::HashSet::new();
        while steps < limit {
            let due = self.repo().due_subscriptions(now, limit - steps).await?;
            let fresh: Vec<Subscription> = due
                .into_iter()
                .filter(|s| seen.insert((s.id, s.version)))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for subscription in fresh {
                steps += 1;
                self.step(ctx, subscription, &mut report).await?;
            }
        }
        Ok(report)
    }

    async fn step(
        &self,
        ctx: &RequestContext,
        subscription: Subscription,
        report: &mut RunReport,
    ) -> Result<(), BillingError> {
        let now = ctx.at();
        let organisation = subscription.organisation;
        let period_over = subscription.current_period_end <= now;
        if !subscription.status.is_live()
            || subscription.status != SubscriptionStatus::PastDue && !period_over
        {
            return Ok(());
        }
        // A dunning retry that is due.
        if subscription.status == SubscriptionStatus::PastDue {
            let Some(dunning) = subscription
                .dunning
                .filter(|d| d.next_attempt_at.is_some_and(|at| at <= now))
            else {
                return Ok(());
            };
            let invoice = self.stored_invoice(organisation, dunning.invoice).await?;
            if invoice.body.status != InvoiceStatus::Open {
                let mut next = subscription;
                next.dunning = None;
                next.status = SubscriptionStatus::Active;
                next.version += 1;
                self.repo()
                    .commit(Changes {
                        subscription: Some(Write::Update(next)),
                        ..Changes::default()
                    })
                    .await?;
                return Ok(());
            }
            let account = self.repo().account(organisation).await?;
            let method = self.default_method(organisation).await?;
            let Some(account) = account else {
                return Ok(());
            };

            let collected = self
                .collect(
                    ctx,
                    &account,
                    method.as_ref(),
                    invoice,
                    Some(subscription),
                    true,
                )
                .await?;
            if collected.failure().is_some() {
                report.failed += 1;
                if collected
                    .subscription
                    .as_ref()
                    .is_some_and(|s| s.status == SubscriptionStatus::Canceled)
                {
                    report.canceled += 1;
                }
            } else {
                report.renewed += 1;
            }
            return Ok(());
        }
        // The period ended.
        if subscription.cancel_at_period_end
            || subscription.status == SubscriptionStatus::Trialing
                && self.default_method(organisation).await?.is_none()
        {
            let ended = if subscription.cancel_at_period_end {
                report.canceled += 1;
                SubscriptionStatus::Canceled
            } else {
                report.expired += 1;
                SubscriptionStatus::Expired
            };
            let mut next = subscription;
            next.status = ended;
            next.ended_at = Some(next.current_period_end);
            next.dunning = None;
            next.version += 1;
            self.audit(
                ctx,
                Some(organisation),
                AuditAction::Update,
                resource::SUBSCRIPTION,
                next.id,
            )
            .await?;
            self.repo()
                .commit(Changes {
                    subscription: Some(Write::Update(next.clone())),
                    ..Changes::default()
                })
                .await?;
            self.notify(
                organisation,
                &BillingNotice::SubscriptionEnded {
                    plan_code: next.plan_code.to_string(),
                    status: ended.as_str(),
                },
            )
            .await;
            return Ok(());
        }
        // Renewal (or a trial's conversion) at the plan's latest version.
        let converting = subscription.status == SubscriptionStatus::Trialing;
        let plan = self
            .repo()
            .plan(&subscription.plan_code)
            .await?
            .ok_or(BillingError::NotFound)?;
        let start = subscription.current_period_end;
        let end = plan.terms.interval.period_end(start);
        let mut next = subscription;
        next.plan_version = plan.version;
        next.price = plan.terms.price;
        next.interval = plan.terms.interval;
        next.limits = plan.terms.limits;
        next.current_period_start = start;
        next.current_period_end = end;
        next.version += 1;
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Update,
            resource::SUBSCRIPTION,
            next.id,
        )
        .await?;
        if next.price.currency() != next.credit.currency() {
            next.credit = Money::zero(next.price.currency());
        }
        if plan.terms.price.amount().is_zero() {
            next.status = SubscriptionStatus::Active;
            self.repo()
                .commit(Changes {
                    subscription: Some(Write::Update(next)),
                    ..Changes::default()
                })
                .await?;
            report.renewed += 1;
            return Ok(());
        }
        let Some(account) = self.repo().account(organisation).await? else {
            return Ok(());
        };
        let mut lines = vec![period_line(&plan, start, end)?];
        let applied = min_money(next.credit, plan.terms.price)?;
        if !applied.amount().is_zero() {
            lines.push(credit_line(Money::zero(applied.currency()).minus(applied)?));
            next.credit = next.credit.minus(applied)?;
        }
        let invoice = self
            .prepare_invoice(
                &account,
                Some(next.id),
                lines,
                now,
                now,
                InvoiceStatus::Open,
            )
            .await?;
        let created = self
            .repo()
            .commit(Changes {
                subscription: Some(Write::Update(next.clone())),
                new_invoices: vec![invoice],
                ..Changes::default()
            })
            .await?;
        let Some(invoice) = created.into_iter().next() else {
            return Ok(());
        };
        let method = self.default_method(organisation).await?;
        let collected = self
            .collect(ctx, &account, method.as_ref(), invoice, Some(next), true)
            .await?;
        if collected.failure().is_some() {
            report.failed += 1;
        } else if converting {
            report.converted += 1;
        } else {
            report.renewed += 1;
        }
        Ok(())
    }

    // ---- Collecting money ----

    async fn offered_plan(&self, code: &PlanCode) -> Result<PlanVersion, BillingError> {
        let plan = self
            .repo()
            .plan(code)
            .await?
            .ok_or(BillingError::UnknownPlan)?;
        if plan.available {
            Ok(plan)
        } else {
            Err(InvalidInput::new("plan_code", "the plan is no longer offered").into())
        }
    }

    async fn live_subscription(
        &self,
        organisation: OrganisationId,
    ) -> Result<Subscription, BillingError> {
        self.repo()
            .subscription(organisation)
            .await?
            .filter(|s| s.status.is_live())
            .ok_or(BillingError::Conflict(
                "the practice has no live subscription",
            ))
    }

    async fn default_method(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<PaymentMethod>, BillingError> {
        let methods = self.repo().payment_methods(organisation).await?;
        Ok(methods
            .iter()
            .find(|m| m.is_default)
            .or_else(|| methods.first())
            .cloned())
    }

    async fn payer(
        &self,
        organisation: OrganisationId,
    ) -> Result<(BillingAccount, PaymentMethod), BillingError> {
        let account = self.repo().account(organisation).await?;
        let method = self.default_method(organisation).await?;
        match (account, method) {
            (Some(account), Some(method)) if account.processor_customer.is_some() => {
                Ok((account, method))
            }
            _ => Err(BillingError::Conflict(
                "the practice needs a billing account and a card on file",
            )),
        }
    }

    async fn prepare_invoice(
        &self,
        account: &BillingAccount,
        subscription: Option<Uuid>,
        lines: Vec<InvoiceLine>,
        now: DateTime<Utc>,
        due_at: DateTime<Utc>,
        status: InvoiceStatus,
    ) -> Result<NewInvoice, BillingError> {
        let currency = lines
            .first()
            .map(|l| l.amount.currency())
            .ok_or(InvalidInput::new("lines", "an invoice has 1 to 100 lines"))?;
        let subtotal = lines
            .iter()
            .try_fold(Money::zero(currency), |sum, l| sum.plus(l.amount))?;
        let country = account.bill_to.country;
        let (rate, name) = match self.repo().tax_rate(country).await? {
            Some(entry) => (entry.rate, entry.name.as_str().to_owned()),
            None => (TaxRate::ZERO, "No tax".to_owned()),
        };
        let tax = subtotal.times(rate.percent() / Decimal::ONE_HUNDRED)?;
        let total = subtotal.plus(tax)?.non_negative()?;
        Ok(NewInvoice {
            id: Uuid::now_v7(),
            organisation: account.organisation,
            subscription,
            status,
            currency,
            lines,
            subtotal,
            tax: InvoiceTax {
                country,
                name,
                rate,
                amount: tax,
            },
            total,
            bill_to: Some(account.bill_to.clone()),
            contact_user: account.contact_user,
            created_at: now,
            due_at,
        })
    }

    /// Charges `invoice` and records the outcome. `dunning` says whether a decline
    /// starts or advances the subscription's dunning schedule.
    async fn collect(
        &self,
        ctx: &RequestContext,
        account: &BillingAccount,
        method: Option<&PaymentMethod>,
        invoice: Invoice,
        subscription: Option<Subscription>,
        dunning: bool,
    ) -> Result<Collected, BillingError> {
        let organisation = invoice.body.organisation;
        let issued_version = invoice.version;
        let amount = invoice.amount_due();
        if !amount.is_negative() && amount.amount().is_zero() {
            // Nothing to charge (credit covered it): paid as issued.
            return self.settle_without_charge(ctx, invoice, subscription).await;
        }
        let mut payment = Payment {
            id: Uuid::now_v7(),
            organisation,
            invoice: invoice.body.id,
            payment_method: method.map(|m| m.id),
            amount,
            status: PaymentStatus::Pending,
            processor_charge: None,
            failure_code: None,
            refunded: Money::zero(amount.currency()),
            created_at: ctx.at(),
            last_event_at: None,
            version: 1,
        };
        self.audit(
            ctx,
            Some(organisation),
            AuditAction::Create,
            resource::PAYMENT,
            payment.id,
        )
        .await?;
        let outcome = match (method, &account.processor_customer) {
            (Some(method), Some(customer)) => {
                self.repo()
                    .commit(Changes {
                        payments: vec![Write::Insert(payment.clone())],
                        ..Changes::default()
                    })
                    .await?;
                payment.version += 1;
                self.ports
                    .processor
                    .charge(&ChargeRequest {
                        customer: customer.clone(),
                        payment_method: method.processor_ref.clone(),
                        amount,
                        idempotency_key: payment.id,
                        description: format!("Custodia {}", invoice.display_number()),
                    })
                    .await?
            }
            _ => {
                // No card to charge: recorded as a failed attempt.
                ChargeOutcome::Declined {
                    charge: None,
                    code: "no_payment_method".to_owned(),
                }
            }
        };
        let write = |p: Payment| {
            if p.version == 1 {
                Write::Insert(p)
            } else {
                Write::Update(p)
            }
        };
        let current = subscription.clone();
        let (payment, invoice, subscription, notice) = match outcome {
            ChargeOutcome::Succeeded { charge } => {
                payment.processor_charge = Some(charge);
                self.settle(
                    payment,
                    invoice,
                    subscription,
                    Settled::Paid,
                    ctx.at(),
                    dunning,
                )?
            }
            ChargeOutcome::Declined { charge, code } => {
                payment.processor_charge = charge;
                self.settle(
                    payment,
                    invoice,
                    subscription,
                    Settled::Failed(code),
                    ctx.at(),
                    dunning,
                )?
            }
            ChargeOutcome::RequiresAction { charge } => {
                payment.processor_charge = Some(charge);
                payment.status = PaymentStatus::RequiresAction;
                let notice = BillingNotice::PaymentRequiresAction {
                    invoice_number: invoice.display_number(),
                };
                (payment, invoice, None, Some(notice))
            }
        };
        let invoice_changed = invoice.version != issued_version;
        let mut changes = Changes {
            payments: vec![write(payment.clone())],
            subscription: subscription.clone().map(Write::Update),
            ..Changes::default()
        };
        if invoice_changed {
            changes.invoices.push(invoice.clone());
        }
        self.repo().commit(changes).await?;
        if let Some(notice) = &notice {
            self.notify(organisation, notice).await;
        }
        Ok(Collected {
            subscription: subscription.or(current),
            invoice,
            payment: Some(payment),
        })
    }

    async fn settle_without_charge(
        &self,
        ctx: &RequestContext,
        mut invoice: Invoice,
        subscription: Option<Subscription>,
    ) -> Result<Collected, BillingError> {
        let now = ctx.at();
        invoice.body.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(now);
        invoice.version += 1;
        let subscription = subscription.map(|mut s| {
            s.dunning = None;
            s.status = SubscriptionStatus::Active;
            s.version += 1;
            s
        });
        self.audit(
            ctx,
            Some(invoice.body.organisation),
            AuditAction::Update,
            resource::INVOICE,
            invoice.body.id,
        )
        .await?;
        self.repo()
            .commit(Changes {
                invoices: vec![invoice.clone()],
                subscription: subscription.clone().map(Write::Update),
                ..Changes::default()
            })
            .await?;
        Ok(Collected {
            subscription,
            invoice,
            payment: None,
        })
    }

    /// The writes that settle `payment` one way or the other: the payment, its
    /// invoice, the subscription, and the notice to send.
    #[allow(clippy::type_complexity, reason = "a private tuple of the four writes")]
    fn settle(
        &self,
        mut payment: Payment,
        mut invoice: Invoice,
        subscription: Option<Subscription>,
        settled: Settled,
        now: DateTime<Utc>,
        dunning: bool,
    ) -> Result<
        (
            Payment,
            Invoice,
            Option<Subscription>,
            Option<BillingNotice>,
        ),
        BillingError,
    > {
        let mut subscription = subscription;
        let notice;
        match settled {
            Settled::Paid => {
                payment.status = PaymentStatus::Succeeded;
                invoice.amount_paid = invoice.amount_paid.plus(payment.amount)?;
                if invoice.amount_paid.amount() >= invoice.body.total.amount() {
                    invoice.body.status = InvoiceStatus::Paid;
                    invoice.paid_at = Some(now);
                }
                invoice.version += 1;
                // Only a live subscription waiting on this payment changes; an
                // active one, or one that already ended, is left as it is.
                subscription = subscription
                    .filter(|s| {
                        s.status.is_live()
                            && (s.status != SubscriptionStatus::Active
                                || s.dunning.is_some_and(|d| d.invoice == invoice.body.id))
                    })
                    .map(|mut s| {
                        s.dunning = None;
                        s.status = SubscriptionStatus::Active;
                        s.trial_end = s.trial_end.filter(|t| *t > now);
                        s.version += 1;
                        s
                    });
                notice = Some(BillingNotice::PaymentSucceeded {
                    invoice_number: invoice.display_number(),
                    amount: format_money(payment.amount),
                });
            }
            Settled::Failed(code) => {
                payment.status = PaymentStatus::Failed;
                payment.failure_code = Some(code);
                let mut attempt = 1;
                let mut next_attempt_at = self.config.dunning_schedule.first().map(|d| now + *d);
                match subscription.as_mut() {
                    Some(s) if dunning && s.status.is_live() => {
                        let failed = s
                            .dunning
                            .filter(|d| d.invoice == invoice.body.id)
                            .map_or(1, |d| d.failed_attempts + 1);
                        attempt = failed;
                        next_attempt_at = usize::try_from(failed - 1)
                            .ok()
                            .and_then(|i| self.config.dunning_schedule.get(i))
                            .map(|d| now + *d);
                        s.dunning = Some(Dunning {
                            invoice: invoice.body.id,
                            failed_attempts: failed,
                            next_attempt_at,
                        });
                        s.status = SubscriptionStatus::PastDue;
                        if next_attempt_at.is_none() {
                            s.status = SubscriptionStatus::Canceled;
                            s.ended_at = Some(now);
                            invoice.body.status = InvoiceStatus::Uncollectible;
                            invoice.closed_at = Some(now);
                            invoice.version += 1;
                        }
                        s.version += 1;
                    }
                    _ => subscription = None,
                }
                notice = Some(BillingNotice::PaymentFailed {
                    invoice_number: invoice.display_number(),
                    amount_due: format_money(invoice.amount_due()),
                    attempt,
                    next_attempt_at,
                });
            }
        }
        Ok((payment, invoice, subscription, notice))
    }

    async fn notify(&self, organisation: OrganisationId, notice: &BillingNotice) {
        if let Err(e) = self.ports.notifier.notify(organisation, notice).await {
            tracing::warn!(error = %e, kind = notice.kind(), "a billing notice was not queued");
        }
    }

    async fn audit(
        &self,
        ctx: &RequestContext,
        organisation: Option<OrganisationId>,
        action: AuditAction,
        kind: &'static str,
        id: Uuid,
    ) -> Result<(), BillingError> {
        let ctx = ctx.with_purpose(Purpose::Payment);
        let mut event = AuditEvent::new(
            &ctx,
            action,
            ResourceRef::new(kind, id),
            None,
            AuditOutcome::Allowed,
        );
        if event.organisation.is_none() {
            event.organisation = organisation;
        }
        self.ports
            .audit
            .record(event)
            .await
            .map(drop)
            .map_err(|e| BillingError::Unavailable(Box::new(e)))
    }
}

/// How a payment settled.
enum Settled {
    Paid,
    Failed(String),
}

/// What collecting an invoice wrote.
struct Collected {
    subscription: Option<Subscription>,
    invoice: Invoice,
    payment: Option<Payment>,
}

impl Collected {
    fn failure(&self) -> Option<BillingError> {
        let payment = self.payment.as_ref()?;
        match payment.status {
            PaymentStatus::Failed => Some(BillingError::PaymentFailed {
                code: payment
                    .failure_code
                    .clone()
                    .unwrap_or_else(|| "card_declined".to_owned()),
                payment: payment.id,
            }),
            PaymentStatus::RequiresAction => Some(BillingError::PaymentFailed {
                code: "requires_action".to_owned(),
                payment: payment.id,
            }),
            PaymentStatus::Pending | PaymentStatus::Succeeded => None,
        }
    }

    fn into_change(self) -> Result<SubscriptionChange, BillingError> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        Ok(SubscriptionChange {
            subscription: self.subscription.ok_or(BillingError::Conflict(
                "the subscription was not written; read it again",
            ))?,
            invoice: Some(self.invoice),
            payment: self.payment,
        })
    }
}

/// The most lines an invoice has.
const MAX_LINES: usize = 100;
/// The largest quantity of one line.
const MAX_QUANTITY: u32 = 10_000;

/// Who is reading a practice's billing.
enum Reader {
    Operator,
    Admin,
    Provider,
}

fn practice_reader(
    ctx: &RequestContext,
    organisation: OrganisationId,
) -> Result<Reader, BillingError> {
    match ctx.actor() {
        Actor::PlatformOperator { .. } => Ok(Reader::Operator),
        Actor::Member { roles, .. }
            if ctx.organisation() == Some(organisation) && !roles.is_empty() =>
        {
            if roles.contains(Role::OrgAdmin) {
                Ok(Reader::Admin)
            } else if roles.contains(Role::Provider) {
                Ok(Reader::Provider)
            } else {
                Err(BillingError::Forbidden(
                    "the practice's billing is for its admins",
                ))
            }
        }
        _ => Err(BillingError::NotFound),
    }
}

fn require_admin(ctx: &RequestContext, organisation: OrganisationId) -> Result<(), BillingError> {
    match practice_reader(ctx, organisation)? {
        Reader::Admin => Ok(()),
        Reader::Operator | Reader::Provider => Err(BillingError::Forbidden(
            "only the practice's admins manage its billing",
        )),
    }
}

fn require_admin_or_operator(
    ctx: &RequestContext,
    organisation: OrganisationId,
) -> Result<(), BillingError> {
    match practice_reader(ctx, organisation)? {
        Reader::Admin | Reader::Operator => Ok(()),
        Reader::Provider => Err(BillingError::Forbidden(
            "providers see the plan status only",
        )),
    }
}

fn require_operator(ctx: &RequestContext) -> Result<(), BillingError> {
    match ctx.actor() {
        Actor::PlatformOperator { .. } => Ok(()),
        Actor::Member { .. } | Actor::System { .. } => Err(BillingError::Forbidden(
            "only the platform operator may do this",
        )),
        Actor::Anonymous => Err(BillingError::NotFound),
    }
}

fn require_plan_reader(ctx: &RequestContext) -> Result<(), BillingError> {
    match ctx.actor() {
        Actor::PlatformOperator { .. } => Ok(()),
        Actor::Member { roles, .. } if roles.contains(Role::OrgAdmin) => Ok(()),
        Actor::Member { .. } => Err(BillingError::Forbidden(
            "plans are shown to practice admins",
        )),
        Actor::System { .. } | Actor::Anonymous => Err(BillingError::NotFound),
    }
}

fn check_terms(terms: &PlanTerms) -> Result<(), BillingError> {
    terms
        .price
        .non_negative()
        .map_err(|e| InvalidInput::new("price", e.rule()))?;
    if terms.trial_days > MAX_TRIAL_DAYS {
        return Err(InvalidInput::new("trial_days", "must be 0 to 365").into());
    }
    Ok(())
}

/// A stable id for a country's tax-rate row in audit events.
fn country_id(country: Country) -> Uuid {
    let code = country.as_str().as_bytes();
    let mut bytes = [0u8; 16];
    bytes[14] = code.first().copied().unwrap_or(0);
    bytes[15] = code.get(1).copied().unwrap_or(0);
    Uuid::from_bytes(bytes)
}

fn label(text: &str) -> Label<200> {
    let cut: String = text.chars().take(200).collect();
    Label::parse("description", &cut)
        .unwrap_or_else(|_| Label::parse("description", "Subscription").expect("a valid label"))
}

fn period_line(
    plan: &PlanVersion,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<InvoiceLine, BillingError> {
    Ok(InvoiceLine {
        kind: LineKind::Subscription,
        description: label(&format!(
            "{} ({} to {})",
            plan.terms.name.as_str(),
            start.date_naive(),
            end.date_naive()
        )),
        quantity: 1,
        unit_amount: plan.terms.price,
        amount: line_amount(1, plan.terms.price)?,
        period: Some((start, end)),
    })
}

fn credit_line(negative: Money) -> InvoiceLine {
    InvoiceLine {
        kind: LineKind::AppliedCredit,
        description: label("Credit from an earlier plan change"),
        quantity: 1,
        unit_amount: negative,
        amount: negative,
        period: None,
    }
}

fn min_money(a: Money, b: Money) -> Result<Money, BillingError> {
    if a.currency() != b.currency() {
        return Err(MoneyError::CurrencyMismatch.into());
    }
    Ok(if a.amount() <= b.amount() { a } else { b })
}

fn days_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u32 {
    u32::try_from(((b - a).num_seconds().max(0) + 86_399) / 86_400).unwrap_or(u32::MAX)
}

/// `49.00 EUR`.
#[must_use]
pub fn format_money(money: Money) -> String {
    format!("{} {}", money.amount(), money.currency())
}
