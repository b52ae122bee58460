//! The billing context's adapters that live in the composition root: billing
//! notices sent to the practice's admins through identity's outbox, and the
//! subject-to-person lookup billing's `PersonalData` port finds people by.

use std::sync::Arc;

use async_trait::async_trait;
use billing::ports::{BillingNotice, BillingNotifier, RepositoryError};
use identity::IdentityService;
use kernel::{Clock, OrganisationId, Role};

/// Sends each [`BillingNotice`] to every active `org_admin` of the practice, as a
/// practice notice in identity's outbox (its sentence sealed there like any
/// notice's content). No card data and no health data are in it.
pub struct IdentityBillingNotices {
    identity: IdentityService,
    clock: Arc<dyn Clock>,
}

impl IdentityBillingNotices {
    /// The adapter over `identity`.
    #[must_use]
    pub fn new(identity: IdentityService, clock: Arc<dyn Clock>) -> Self {
        Self { identity, clock }
    }
}

impl std::fmt::Debug for IdentityBillingNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityBillingNotices")
            .finish_non_exhaustive()
    }
}

/// The notice's sentence.
#[must_use]
pub fn summary(notice: &BillingNotice) -> String {
    match notice {
        BillingNotice::PaymentFailed {
            invoice_number,
            amount_due,
            attempt,
            next_attempt_at,
        } => {
            let next = next_attempt_at.map_or_else(
                || "No further attempt will be made.".to_owned(),
                |at| {
                    format!(
                        "The next attempt is on {}.",
                        at.format("%Y-%m-%d %H:%M UTC")
                    )
                },
            );
            format!(
                "The payment of {amount_due} for invoice {invoice_number} failed (attempt \
                 {attempt}). {next}"
            )
        }
        BillingNotice::PaymentRequiresAction { invoice_number } => format!(
            "The payment for invoice {invoice_number} needs the card holder to confirm it \
             with the card issuer."
        ),
        BillingNotice::PaymentSucceeded {
            invoice_number,
            amount,
        } => format!("Invoice {invoice_number} was paid: {amount}."),
        BillingNotice::SubscriptionEnded { plan_code, status } => {
            format!("The subscription to the plan `{plan_code}` ended ({status}).")
        }
    }
}

#[async_trait]
impl BillingNotifier for IdentityBillingNotices {
    async fn notify(
        &self,
        organisation: OrganisationId,
        notice: &BillingNotice,
    ) -> Result<(), RepositoryError> {
        self.identity
            .notify_role_holders(
                organisation,
                Role::OrgAdmin,
                notice.kind(),
                &summary(notice),
                self.clock.now(),
            )
            .await
            .map(drop)
            .map_err(|e| RepositoryError::Unavailable(Box::new(e)))
    }
}

/// Finds the person behind a data subject through identity's accounts, for
/// [`billing::personal_data::BillingPersonalData`] and (in [`crate::audit`])
/// [`audit::personal_data::AuditPersonalData`]. An erased account is still found:
/// its invoices are retained and reported, its events pseudonymised.
pub struct IdentitySubjects {
    accounts: Arc<dyn identity::ports::AccountRepository>,
}

impl IdentitySubjects {
    /// The lookup over identity's account repository.
    #[must_use]
    pub fn new(accounts: Arc<dyn identity::ports::AccountRepository>) -> Self {
        Self { accounts }
    }

    /// The account of `subject`, erased or not, and whether it is erased.
    pub(crate) async fn account_of_subject(
        &self,
        subject: kernel::SubjectId,
    ) -> Result<Option<(kernel::UserId, bool)>, identity::ports::RepositoryError> {
        self.accounts.account_of_subject(subject).await
    }
}

impl std::fmt::Debug for IdentitySubjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySubjects").finish_non_exhaustive()
    }
}

#[async_trait]
impl billing::personal_data::SubjectDirectory for IdentitySubjects {
    async fn user_of(
        &self,
        subject: kernel::SubjectId,
    ) -> Result<Option<kernel::UserId>, RepositoryError> {
        self.accounts
            .account_of_subject(subject)
            .await
            .map(|found| found.map(|(user, _erased)| user))
            .map_err(|e| RepositoryError::Unavailable(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_say_what_happened_and_what_follows() {
        let failed = BillingNotice::PaymentFailed {
            invoice_number: "INV-000003".to_owned(),
            amount_due: "49.00 EUR".to_owned(),
            attempt: 2,
            next_attempt_at: chrono::DateTime::from_timestamp(1_767_225_600, 0),
        };
        assert_eq!(
            summary(&failed),
            "The payment of 49.00 EUR for invoice INV-000003 failed (attempt 2). The next \
             attempt is on 2026-01-01 00:00 UTC."
        );
        let ended = BillingNotice::SubscriptionEnded {
            plan_code: "pro".to_owned(),
            status: "canceled",
        };
        assert_eq!(
            summary(&ended),
            "The subscription to the plan `pro` ended (canceled)."
        );
    }
}
