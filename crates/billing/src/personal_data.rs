//! [`BillingPersonalData`]: the kernel's [`kernel::PersonalData`] port for billing,
//! and how long invoices are kept ([`InvoiceRetention`]).

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use kernel::personal_data::{
    DataMapEntry, ErasureOutcome, ExportedRecord, PersonalDataError, RecordFate, Rectification,
    RestrictionScope, Retention, Source,
};
use kernel::{
    DataCategory, LegalGround, PersonalData, Purpose, Regime, RequestContext, ResourceRef,
    SubjectId, UserId,
};
use serde_json::{Value, json};

use crate::model::BillTo;
use crate::ports::{BillingRepository, Changes, RepositoryError};
use crate::values::{BillingEmail, Label};

/// How long invoices are kept after they are issued, and the legal ground.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRetention {
    /// The period, in days.
    pub days: u32,
    /// Why: the law that requires it.
    pub ground: LegalGround,
}

/// Seven years, in days (7 × 365 + 2 leap days).
pub const SEVEN_YEARS_DAYS: u32 = 2_557;

impl Default for InvoiceRetention {
    fn default() -> Self {
        Self {
            days: SEVEN_YEARS_DAYS,
            ground: LegalGround::new(
                Regime::Gdpr,
                "GDPR Art. 17(3)(b) and Art. 6(1)(c); 26 CFR 1.6001-1(e); Council Directive 2006/112/EC Art. 247",
                "Tax and accounting law requires invoices to be kept, as issued, for seven years.",
            ),
        }
    }
}

/// Finds the person behind a data subject (identity's mapping), so billing can
/// find the accounts, invoices and cards linked to them.
#[async_trait]
pub trait SubjectDirectory: Send + Sync + 'static {
    /// The user who is `subject`, if there is one.
    async fn user_of(&self, subject: SubjectId) -> Result<Option<UserId>, RepositoryError>;
}

/// Billing's part of the rights engine's [`PersonalData`] port.
///
/// # Export schema
///
/// - `billing_account` (category `billing`, id = the practice): `{"organisation",
///   "bill_to": {"legal_name", "contact_name", "email", "address_lines", "city",
///   "postal_code", "country", "tax_id"}, "updated_at"}` for each practice whose
///   billing contact the person is;
/// - `invoice` (category `billing`): `{"organisation", "number", "status",
///   "currency", "total", "created_at", "bill_to"}` for each invoice addressed to
///   them (amounts as decimal strings);
/// - `payment_method` (category `payment`): `{"organisation", "brand", "last4",
///   "exp_month", "exp_year", "created_at"}` for each card they added. No card
///   number exists to export.
///
/// # Erasure (R2)
///
/// The accounts they are the contact of are anonymised (their name and email
/// replaced; the practice's legal name, address and tax id stay). Cards they added
/// lose the link to them. Invoices addressed to them are retained, as issued, on
/// the configured [`InvoiceRetention`] ground until their retention ends.
///
/// # Rectification
///
/// `billing_account` fields `contact_name` and `email` can be corrected.
///
/// # Restriction
///
/// Billing data is needed to perform the practice's contract and to meet tax law
/// (GDPR Art. 18(2) keeps storage and legal claims); billing uses no data for any
/// other purpose, so a restriction changes nothing here and is reported as such.
pub struct BillingPersonalData {
    repo: Arc<dyn BillingRepository>,
    directory: Arc<dyn SubjectDirectory>,
    retention: InvoiceRetention,
}

impl std::fmt::Debug for BillingPersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingPersonalData")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl BillingPersonalData {
    /// The port over `repo`, finding people through `directory`.
    #[must_use]
    pub fn new(
        repo: Arc<dyn BillingRepository>,
        directory: Arc<dyn SubjectDirectory>,
        retention: InvoiceRetention,
    ) -> Self {
        Self {
            repo,
            directory,
            retention,
        }
    }

    async fn user(&self, subject: SubjectId) -> Result<Option<UserId>, PersonalDataError> {
        self.directory.user_of(subject).await.map_err(unavailable)
    }
}

fn unavailable(e: RepositoryError) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(e))
}

/// A bill-to address as exported.
#[must_use]
pub fn bill_to_json(bill_to: &BillTo) -> Value {
    json!({
        "legal_name": bill_to.legal_name.as_str(),
        "contact_name": bill_to.contact_name.as_str(),
        "email": bill_to.email.as_str(),
        "address_lines": bill_to.address_lines.iter().map(Label::as_str).collect::<Vec<_>>(),
        "city": bill_to.city.as_str(),
        "postal_code": bill_to.postal_code.as_str(),
        "country": bill_to.country.as_str(),
        "tax_id": bill_to.tax_id.as_ref().map(Label::as_str),
    })
}

const ACCOUNT: &str = "billing_account";
const INVOICE: &str = "invoice";
const PAYMENT_METHOD: &str = "payment_method";

#[async_trait]
impl PersonalData for BillingPersonalData {
    fn context(&self) -> &'static str {
        "billing"
    }

    fn describe(&self) -> Vec<DataMapEntry> {
        vec![
            DataMapEntry {
                category: DataCategory::Billing,
                description: Cow::Borrowed(
                    "The practice's billing contact (name, email, postal address, tax id) and the invoices addressed to them, as issued",
                ),
                sources: vec![Source::Subject],
                purposes: vec![Purpose::Payment],
                recipients: vec![Cow::Borrowed("platform operator (billing)")],
                retention: Retention::Period {
                    days: self.retention.days,
                    ground: self.retention.ground.clone(),
                },
            },
            DataMapEntry {
                category: DataCategory::Payment,
                description: Cow::Borrowed(
                    "Cards on file: the payment processor's token, card brand, last four digits and expiry; never the card number or CVC",
                ),
                sources: vec![Source::SubProcessor],
                purposes: vec![Purpose::Payment],
                recipients: vec![Cow::Borrowed("payment processor")],
                retention: Retention::WhileActive,
            },
        ]
    }

    async fn export(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError> {
        let Some(user) = self.user(subject).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for account in self
            .repo
            .accounts_of_contact(user)
            .await
            .map_err(unavailable)?
        {
            out.push(ExportedRecord {
                category: DataCategory::Billing,
                resource: ResourceRef::new(ACCOUNT, account.organisation.as_uuid()),
                created_at: account.updated_at,
                data: json!({
                    "organisation": account.organisation.as_uuid(),
                    "bill_to": bill_to_json(&account.bill_to),
                    "updated_at": account.updated_at,
                }),
            });
        }
        for invoice in self
            .repo
            .invoices_of_contact(user)
            .await
            .map_err(unavailable)?
        {
            out.push(ExportedRecord {
                category: DataCategory::Billing,
                resource: ResourceRef::new(INVOICE, invoice.body.id),
                created_at: invoice.body.created_at,
                data: json!({
                    "organisation": invoice.body.organisation.as_uuid(),
                    "number": invoice.display_number(),
                    "status": invoice.body.status.as_str(),
                    "currency": invoice.body.currency.code(),
                    "total": invoice.body.total.amount().to_string(),
                    "created_at": invoice.body.created_at,
                    "bill_to": invoice.body.bill_to.as_ref().map(bill_to_json),
                }),
            });
        }
        for method in self
            .repo
            .payment_methods_added_by(user)
            .await
            .map_err(unavailable)?
        {
            out.push(ExportedRecord {
                category: DataCategory::Payment,
                resource: ResourceRef::new(PAYMENT_METHOD, method.id),
                created_at: method.created_at,
                data: json!({
                    "organisation": method.organisation.as_uuid(),
                    "brand": method.brand.as_str(),
                    "last4": method.last4,
                    "exp_month": method.exp_month,
                    "exp_year": method.exp_year,
                    "created_at": method.created_at,
                }),
            });
        }
        Ok(out)
    }

    async fn rectify(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        change: Rectification,
    ) -> Result<(), PersonalDataError> {
        let user = self
            .user(subject)
            .await?
            .ok_or(PersonalDataError::NotFound)?;
        if change.resource.kind != ACCOUNT {
            return Err(PersonalDataError::Invalid(Cow::Borrowed(
                "only a billing account's contact can be corrected; invoices are kept as issued",
            )));
        }
        let mut account = self
            .repo
            .accounts_of_contact(user)
            .await
            .map_err(unavailable)?
            .into_iter()
            .find(|a| a.organisation.as_uuid() == change.resource.id)
            .ok_or(PersonalDataError::NotFound)?;
        let text = change
            .value
            .as_str()
            .ok_or(PersonalDataError::Invalid(Cow::Borrowed(
                "the corrected value must be a string",
            )))?;
        let invalid =
            |e: crate::values::InvalidInput| PersonalDataError::Invalid(Cow::Owned(e.to_string()));
        match change.field.as_str() {
            "contact_name" => {
                account.bill_to.contact_name =
                    Label::parse("contact_name", text).map_err(invalid)?;
            }
            "email" => account.bill_to.email = BillingEmail::parse(text).map_err(invalid)?,
            _ => {
                return Err(PersonalDataError::Invalid(Cow::Borrowed(
                    "the field must be `contact_name` or `email`",
                )));
            }
        }
        account.updated_at = ctx.at();
        self.repo
            .commit(Changes {
                account: Some(account),
                ..Changes::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn erase(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError> {
        let Some(user) = self.user(subject).await? else {
            return Ok(Vec::new());
        };
        let invoices = self
            .repo
            .invoices_of_contact(user)
            .await
            .map_err(unavailable)?;
        let erased = self
            .repo
            .erase_contact(user, ctx.at())
            .await
            .map_err(unavailable)?;
        let mut outcomes = Vec::new();
        for organisation in erased.accounts {
            outcomes.push(ErasureOutcome {
                category: DataCategory::Billing,
                resource: ResourceRef::new(ACCOUNT, organisation.as_uuid()),
                fate: RecordFate::Anonymised,
            });
        }
        for method in erased.payment_methods {
            outcomes.push(ErasureOutcome {
                category: DataCategory::Payment,
                resource: ResourceRef::new(PAYMENT_METHOD, method),
                fate: RecordFate::Anonymised,
            });
        }
        for invoice in invoices {
            outcomes.push(ErasureOutcome {
                category: DataCategory::Billing,
                resource: ResourceRef::new(INVOICE, invoice.body.id),
                fate: RecordFate::Retained {
                    ground: self.retention.ground.clone(),
                    until: Some(
                        invoice.body.created_at + Duration::days(i64::from(self.retention.days)),
                    ),
                },
            });
        }
        Ok(outcomes)
    }

    async fn restrict(
        &self,
        _ctx: &RequestContext,
        _subject: SubjectId,
        _scope: RestrictionScope,
        _lift: bool,
    ) -> Result<(), PersonalDataError> {
        // See the type's documentation: billing processes nothing a restriction
        // could stop (contract and legal obligation only).
        Ok(())
    }
}
