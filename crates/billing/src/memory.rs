//! [`MemoryBillingRepository`]: the billing repository in memory, for the domain's
//! own tests. One lock makes every [`Changes`] batch atomic; it checks versions,
//! numbers invoices and refuses duplicates exactly as the database adapter does.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{OrganisationId, UserId};
use uuid::Uuid;

use crate::model::{
    BillingAccount, Invoice, PaymentMethod, PlanVersion, Refund, Subscription, SubscriptionStatus,
    TaxRateEntry, WebhookEvent,
};
use crate::money::Money;
use crate::ports::{
    BillingRepository, Changes, ContactErasure, InvoicePage, RepositoryError, Write,
};
use crate::values::{Country, PlanCode};

#[derive(Default, Clone)]
struct State {
    plans: Vec<PlanVersion>,
    tax: BTreeMap<Country, TaxRateEntry>,
    accounts: BTreeMap<Uuid, BillingAccount>,
    methods: Vec<PaymentMethod>,
    subscriptions: Vec<Subscription>,
    counters: BTreeMap<Uuid, u64>,
    invoices: Vec<Invoice>,
    payments: Vec<crate::model::Payment>,
    refunds: Vec<Refund>,
    events: BTreeMap<String, WebhookEvent>,
}

/// The billing repository in memory.
#[derive(Default)]
pub struct MemoryBillingRepository {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryBillingRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBillingRepository")
            .finish_non_exhaustive()
    }
}

impl MemoryBillingRepository {
    /// An empty repository.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every invoice number given to `organisation`, in order (for tests).
    #[must_use]
    pub fn invoice_numbers(&self, organisation: OrganisationId) -> Vec<u64> {
        let mut numbers: Vec<u64> = self
            .state()
            .invoices
            .iter()
            .filter(|i| i.body.organisation == organisation)
            .map(|i| i.number)
            .collect();
        numbers.sort_unstable();
        numbers
    }
}

fn apply(state: &mut State, changes: Changes) -> Result<Vec<Invoice>, RepositoryError> {
    if let Some(account) = changes.account {
        state
            .accounts
            .insert(account.organisation.as_uuid(), account);
    }
    for method in changes.new_payment_methods {
        if method.is_default {
            for other in state
                .methods
                .iter_mut()
                .filter(|m| m.organisation == method.organisation)
            {
                other.is_default = false;
            }
        }
        state.methods.push(method);
    }
    state
        .methods
        .retain(|m| !changes.removed_payment_methods.contains(&m.id));
    if let Some(write) = changes.subscription {
        match write {
            Write::Insert(subscription) => {
                if state
                    .subscriptions
                    .iter()
                    .any(|s| s.organisation == subscription.organisation && s.status.is_live())
                {
                    return Err(RepositoryError::Conflict(
                        "the practice already has a live subscription",
                    ));
                }
                state.subscriptions.push(subscription);
            }
            Write::Update(subscription) => {
                let stored = state
                    .subscriptions
                    .iter_mut()
                    .find(|s| s.id == subscription.id)
                    .filter(|s| s.version + 1 == subscription.version)
                    .ok_or(RepositoryError::Conflict(
                        "the subscription changed meanwhile; read it again",
                    ))?;
                *stored = subscription;
            }
        }
    }
    let mut created = Vec::new();
    for body in changes.new_invoices {
        let counter = state
            .counters
            .entry(body.organisation.as_uuid())
            .or_insert(0);
        *counter += 1;
        let zero = Money::zero(body.currency);
        let invoice = Invoice {
            number: *counter,
            amount_paid: zero,
            amount_refunded: zero,
            paid_at: None,
            closed_at: None,
            version: 1,
            body,
        };
        state.invoices.push(invoice.clone());
        created.push(invoice);
    }
    for invoice in changes.invoices {
        let stored = state
            .invoices
            .iter_mut()
            .find(|i| i.body.id == invoice.body.id)
            .filter(|i| i.version + 1 == invoice.version)
            .ok_or(RepositoryError::Conflict(
                "the invoice changed meanwhile; read it again",
            ))?;
        *stored = invoice;
    }
    for write in changes.payments {
        match write {
            Write::Insert(payment) => state.payments.push(payment),
            Write::Update(payment) => {
                let stored = state
                    .payments
                    .iter_mut()
                    .find(|p| p.id == payment.id)
                    .filter(|p| p.version + 1 == payment.version)
                    .ok_or(RepositoryError::Conflict(
                        "the payment changed meanwhile; read it again",
                    ))?;
                *stored = payment;
            }
        }
    }
    state.refunds.extend(changes.refunds);
    if let Some(event) = changes.webhook_event {
        if state.events.contains_key(&event.id) {
            return Err(RepositoryError::Conflict(
                "this processor event was already recorded",
            ));
        }
        state.events.insert(event.id.clone(), event);
    }
    Ok(created)
}

#[async_trait]
impl BillingRepository for MemoryBillingRepository {
    async fn commit(&self, changes: Changes) -> Result<Vec<Invoice>, RepositoryError> {
        let mut state = self.state();
        // Apply to a copy: a failure leaves nothing behind.
        let mut next = state.clone();
        let created = apply(&mut next, changes)?;
        *state = next;
        Ok(created)
    }

    async fn create_plan(&self, plan: &PlanVersion) -> Result<(), RepositoryError> {
        let mut state = self.state();
        if state.plans.iter().any(|p| p.code == plan.code) {
            return Err(RepositoryError::Conflict("a plan with this code exists"));
        }
        state.plans.push(plan.clone());
        Ok(())
    }

    async fn add_plan_version(&self, plan: &PlanVersion) -> Result<(), RepositoryError> {
        let mut state = self.state();
        let latest = state
            .plans
            .iter()
            .filter(|p| p.plan == plan.plan)
            .map(|p| p.version)
            .max();
        if latest.map(|v| v + 1) != Some(plan.version) {
            return Err(RepositoryError::Conflict(
                "the plan has a newer version; read it again",
            ));
        }
        state.plans.push(plan.clone());
        Ok(())
    }

    async fn plan(&self, code: &PlanCode) -> Result<Option<PlanVersion>, RepositoryError> {
        Ok(self
            .state()
            .plans
            .iter()
            .filter(|p| &p.code == code)
            .max_by_key(|p| p.version)
            .cloned())
    }

    async fn plan_version(
        &self,
        plan: Uuid,
        version: u32,
    ) -> Result<Option<PlanVersion>, RepositoryError> {
        Ok(self
            .state()
            .plans
            .iter()
            .find(|p| p.plan == plan && p.version == version)
            .cloned())
    }

    async fn plans(&self) -> Result<Vec<PlanVersion>, RepositoryError> {
        let state = self.state();
        let mut latest: BTreeMap<PlanCode, PlanVersion> = BTreeMap::new();
        for plan in &state.plans {
            if latest
                .get(&plan.code)
                .is_none_or(|p| p.version < plan.version)
            {
                latest.insert(plan.code.clone(), plan.clone());
            }
        }
        Ok(latest.into_values().collect())
    }

    async fn set_tax_rate(&self, rate: &TaxRateEntry) -> Result<(), RepositoryError> {
        self.state().tax.insert(rate.country, rate.clone());
        Ok(())
    }

    async fn tax_rate(&self, country: Country) -> Result<Option<TaxRateEntry>, RepositoryError> {
        Ok(self.state().tax.get(&country).cloned())
    }

    async fn tax_rates(&self) -> Result<Vec<TaxRateEntry>, RepositoryError> {
        Ok(self.state().tax.values().cloned().collect())
    }

    async fn account(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<BillingAccount>, RepositoryError> {
        Ok(self.state().accounts.get(&organisation.as_uuid()).cloned())
    }

    async fn payment_methods(
        &self,
        organisation: OrganisationId,
    ) -> Result<Vec<PaymentMethod>, RepositoryError> {
        let mut methods: Vec<PaymentMethod> = self
            .state()
            .methods
            .iter()
            .filter(|m| m.organisation == organisation)
            .cloned()
            .collect();
        methods.sort_by(|a, b| {
            b.is_default
                .cmp(&a.is_default)
                .then(b.created_at.cmp(&a.created_at))
                .then(b.id.cmp(&a.id))
        });
        Ok(methods)
    }

    async fn subscription(
        &self,
        organisation: OrganisationId,
    ) -> Result<Option<Subscription>, RepositoryError> {
        Ok(self
            .state()
            .subscriptions
            .iter()
            .filter(|s| s.organisation == organisation)
            .max_by_key(|s| (s.created_at, s.id))
            .cloned())
    }

    async fn due_subscriptions(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Subscription>, RepositoryError> {
        let mut due: Vec<(DateTime<Utc>, Subscription)> = self
            .state()
            .subscriptions
            .iter()
            .filter_map(|s| due_at(s).filter(|at| *at <= now).map(|at| (at, s.clone())))
            .collect();
        due.sort_by_key(|(at, s)| (*at, s.id));
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, s)| s)
            .collect())
    }

    async fn invoice(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Option<Invoice>, RepositoryError> {
        Ok(self
            .state()
            .invoices
            .iter()
            .find(|i| i.body.id == id && i.body.organisation == organisation)
            .cloned())
    }

    async fn invoices(
        &self,
        organisation: OrganisationId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<InvoicePage, RepositoryError> {
        let mut items: Vec<Invoice> = self
            .state()
            .invoices
            .iter()
            .filter(|i| i.body.organisation == organisation)
            .filter(|i| before.is_none_or(|b| i.number < b))
            .cloned()
            .collect();
        items.sort_by_key(|i| std::cmp::Reverse(i.number));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = items.len() > limit;
        items.truncate(limit);
        let next_before = if more {
            items.last().map(|i| i.number)
        } else {
            None
        };
        Ok(InvoicePage { items, next_before })
    }

    async fn payments(&self, invoice: Uuid) -> Result<Vec<crate::model::Payment>, RepositoryError> {
        Ok(self
            .state()
            .payments
            .iter()
            .filter(|p| p.invoice == invoice)
            .cloned()
            .collect())
    }

    async fn payment_by_charge(
        &self,
        charge: &str,
    ) -> Result<Option<crate::model::Payment>, RepositoryError> {
        Ok(self
            .state()
            .payments
            .iter()
            .find(|p| p.processor_charge.as_deref() == Some(charge))
            .cloned())
    }

    async fn refunds(&self, invoice: Uuid) -> Result<Vec<Refund>, RepositoryError> {
        Ok(self
            .state()
            .refunds
            .iter()
            .filter(|r| r.invoice == invoice)
            .cloned()
            .collect())
    }

    async fn webhook_event(&self, id: &str) -> Result<Option<WebhookEvent>, RepositoryError> {
        Ok(self.state().events.get(id).cloned())
    }

    async fn accounts_of_contact(
        &self,
        user: UserId,
    ) -> Result<Vec<BillingAccount>, RepositoryError> {
        Ok(self
            .state()
            .accounts
            .values()
            .filter(|a| a.contact_user == Some(user))
            .cloned()
            .collect())
    }

    async fn invoices_of_contact(&self, user: UserId) -> Result<Vec<Invoice>, RepositoryError> {
        Ok(self
            .state()
            .invoices
            .iter()
            .filter(|i| i.body.contact_user == Some(user))
            .cloned()
            .collect())
    }

    async fn payment_methods_added_by(
        &self,
        user: UserId,
    ) -> Result<Vec<PaymentMethod>, RepositoryError> {
        Ok(self
            .state()
            .methods
            .iter()
            .filter(|m| m.added_by == Some(user))
            .cloned()
            .collect())
    }

    async fn erase_contact(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<ContactErasure, RepositoryError> {
        let mut state = self.state();
        let mut erased = ContactErasure::default();
        for account in state
            .accounts
            .values_mut()
            .filter(|a| a.contact_user == Some(user))
        {
            account.bill_to = account.bill_to.anonymised();
            account.contact_user = None;
            account.anonymised = true;
            account.updated_at = at;
            erased.accounts.push(account.organisation);
        }
        for method in state
            .methods
            .iter_mut()
            .filter(|m| m.added_by == Some(user))
        {
            method.added_by = None;
            erased.payment_methods.push(method.id);
        }
        Ok(erased)
    }

    async fn invoices_to_anonymise(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        Ok(self
            .state()
            .invoices
            .iter()
            .filter(|i| names_someone_before(i, cutoff))
            .count() as u64)
    }

    async fn anonymise_invoices_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        let mut state = self.state();
        let mut changed = 0;
        for invoice in state
            .invoices
            .iter_mut()
            .filter(|i| names_someone_before(i, cutoff))
        {
            invoice.body.bill_to = None;
            invoice.body.contact_user = None;
            invoice.version += 1;
            changed += 1;
        }
        Ok(changed)
    }
}

/// Whether `invoice` was created before `cutoff` and still names who it was
/// addressed to.
fn names_someone_before(invoice: &Invoice, cutoff: DateTime<Utc>) -> bool {
    invoice.body.created_at < cutoff
        && (invoice.body.bill_to.is_some() || invoice.body.contact_user.is_some())
}

/// When a subscription next has work due, if it has any.
fn due_at(s: &Subscription) -> Option<DateTime<Utc>> {
    match s.status {
        SubscriptionStatus::Trialing | SubscriptionStatus::Active => Some(s.current_period_end),
        SubscriptionStatus::PastDue => s.dunning.and_then(|d| d.next_attempt_at),
        SubscriptionStatus::Canceled | SubscriptionStatus::Expired => None,
    }
}
