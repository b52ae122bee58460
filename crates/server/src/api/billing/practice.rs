//! A practice's billing: its account, cards, subscription, plan status and
//! invoices. Its admins manage them; its providers read the plan status; the
//! platform operator reads them; anyone of another practice gets 404.

use billing::BillingService;
use billing::service::resource;
use billing::values::{PlanCode, ProcessorToken};
use kernel::{AuditAction, OrganisationId, Purpose, RequestContext, Role, UserId};
use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::views::{
    BillingAccountRequest, BillingAccountView, InvoiceDetailView, InvoiceDto, InvoicePageView,
    PaymentMethodList, PaymentMethodRequest, PaymentMethodView, PlanChoice, PlanStatusView,
    SubscriptionChangeView, SubscriptionView,
};
use super::{ChargeError, audit_refusal, bill_to, invalid};
use crate::api::ApiTags;
use crate::api::identity::{Created, Done, Found};
use crate::auth::SessionAuth;
use crate::idempotency::Idempotent;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// The practice-side billing operations.
#[derive(Debug)]
pub struct BillingApi {
    state: AppState,
}

impl BillingApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }

    fn billing(&self) -> &BillingService {
        self.state.billing()
    }

    fn context(&self, req: &Request, auth: &SessionAuth) -> RequestContext {
        auth.context(&self.state, req, Purpose::Payment)
    }
}

/// `201 Created`, or an answer held for an `Idempotency-Key`.
type CreatedOnce<T> = Idempotent<Created<T>>;
/// `200 OK`, or an answer held for an `Idempotency-Key`.
type FoundOnce<T> = Idempotent<Found<T>>;

/// The billing account, when the practice has one.
#[derive(Debug, ApiResponse)]
pub enum AccountAnswer {
    /// The account.
    #[oai(status = 200)]
    Ok(Json<BillingAccountView>),
}

/// A plan code as given: 422 naming `plan_code` when it does not parse.
fn plan_code(choice: &PlanChoice) -> Result<PlanCode, ApiError> {
    PlanCode::parse(&choice.plan_code).map_err(|e| invalid("plan_code", e.rule))
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Billing")]
impl BillingApi {
    /// The practice's billing account (its admins, the platform operator); 404
    /// until one is written.
    #[oai(
        path = "/organisations/:organisation_id/billing/account",
        method = "get",
        operation_id = "getBillingAccount"
    )]
    async fn get_billing_account(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<AccountAnswer, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let account = self
            .billing()
            .account(&ctx, organisation)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ProblemKind::NotFound,
                    "The practice has no billing account yet.",
                )
            })?;
        Ok(AccountAnswer::Ok(Json((&account).into())))
    }

    /// Write the practice's billing contact (its admins): who invoices are
    /// addressed to, and the country whose tax applies. The contact is a member of
    /// the practice (the caller when `contact_user_id` is absent). A card number
    /// typed into any field is refused.
    #[oai(
        path = "/organisations/:organisation_id/billing/account",
        method = "put",
        operation_id = "updateBillingAccount"
    )]
    async fn update_billing_account(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<BillingAccountRequest>,
    ) -> Result<Found<BillingAccountView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let bill_to = bill_to(&body.0)?;
        let contact = body.0.contact_user_id.map(UserId::from_uuid);
        // Only checked for a caller acting in the practice: anyone else is refused
        // by the service without learning who its members are.
        if let Some(contact) = contact
            && ctx.organisation() == Some(organisation)
            && ctx.actor().has_role(Role::OrgAdmin)
            && !self
                .state
                .identity()
                .holds_any(
                    contact,
                    organisation,
                    &[
                        Role::OrgAdmin,
                        Role::Provider,
                        Role::Staff,
                        Role::PrivacyOfficer,
                        Role::Auditor,
                    ],
                )
                .await?
        {
            return Err(invalid(
                "contact_user_id",
                "must be a member of the practice (not a client)",
            ));
        }
        let result = self
            .billing()
            .save_account(&ctx, organisation, bill_to, contact)
            .await;
        let account = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::BILLING_ACCOUNT,
            organisation.as_uuid(),
            result,
        )
        .await?;
        Ok(Found::Ok(Json((&account).into())))
    }

    /// Add a card by the payment processor's token (its admins); it becomes the
    /// default. Custodia never receives card numbers: one sent in `token` is
    /// refused (422). Needs a billing account (409).
    #[oai(
        path = "/organisations/:organisation_id/billing/payment-methods",
        method = "post",
        operation_id = "addPaymentMethod"
    )]
    async fn add_payment_method(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<PaymentMethodRequest>,
    ) -> Result<Created<PaymentMethodView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let token = ProcessorToken::parse(&body.0.token).map_err(|e| invalid(e.field, e.rule))?;
        let result = self
            .billing()
            .add_payment_method(&ctx, organisation, token)
            .await;
        let method = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Create,
            resource::PAYMENT_METHOD,
            organisation.as_uuid(),
            result,
        )
        .await?;
        Ok(Created::Created(Json((&method).into())))
    }

    /// The practice's cards, the default first (its admins).
    #[oai(
        path = "/organisations/:organisation_id/billing/payment-methods",
        method = "get",
        operation_id = "listPaymentMethods"
    )]
    async fn list_payment_methods(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<PaymentMethodList>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let methods = self.billing().payment_methods(&ctx, organisation).await?;
        Ok(Found::Ok(Json(PaymentMethodList {
            items: methods.iter().map(Into::into).collect(),
        })))
    }

    /// Remove a card (its admins).
    #[oai(
        path = "/organisations/:organisation_id/billing/payment-methods/:payment_method_id",
        method = "delete",
        operation_id = "removePaymentMethod"
    )]
    async fn remove_payment_method(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        payment_method_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let result = self
            .billing()
            .remove_payment_method(&ctx, organisation, payment_method_id.0)
            .await;
        audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Delete,
            resource::PAYMENT_METHOD,
            payment_method_id.0,
            result,
        )
        .await?;
        Ok(Done::NoContent)
    }

    /// Subscribe the practice to a plan (its admins). With trial days it is
    /// `trialing` until the trial ends; without, the first period is invoiced and
    /// charged now: a declined card is 402 (the subscription is kept `past_due`,
    /// the invoice open, and dunning retries it). A live subscription is 409.
    #[oai(
        path = "/organisations/:organisation_id/billing/subscription",
        method = "post",
        operation_id = "subscribe"
    )]
    async fn subscribe(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// Retries with the same key and body get the first answer (24 hours).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<PlanChoice>,
    ) -> Result<CreatedOnce<SubscriptionChangeView>, ChargeError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let operation = async {
            let code = plan_code(&body.0)?;
            let result = self.billing().subscribe(&ctx, organisation, &code).await;
            let change = audit_refusal(
                &self.state,
                &ctx,
                AuditAction::Create,
                resource::SUBSCRIPTION,
                organisation.as_uuid(),
                result,
            )
            .await?;
            Ok::<_, ChargeError>(Created::Created(Json((&change).into())))
        };
        Box::pin(self.state.idempotency().run(
            req,
            &ctx,
            "subscribe",
            idempotency_key.0,
            Some(organisation),
            operation,
        ))
        .await
    }

    /// Move the subscription to another plan now (its admins), prorated by the
    /// days left in the period: an upgrade invoices and charges the difference, a
    /// downgrade credits it to the next invoices. A plan whose limits the practice
    /// already exceeds is 409 `plan-limit-reached`.
    #[oai(
        path = "/organisations/:organisation_id/billing/subscription/plan-change",
        method = "post",
        operation_id = "changePlan"
    )]
    async fn change_plan(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// Retries with the same key and body get the first answer (24 hours).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<PlanChoice>,
    ) -> Result<FoundOnce<SubscriptionChangeView>, ChargeError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let operation = async {
            let code = plan_code(&body.0)?;
            let result = self.billing().change_plan(&ctx, organisation, &code).await;
            let change = audit_refusal(
                &self.state,
                &ctx,
                AuditAction::Update,
                resource::SUBSCRIPTION,
                organisation.as_uuid(),
                result,
            )
            .await?;
            Ok::<_, ChargeError>(Found::Ok(Json((&change).into())))
        };
        Box::pin(self.state.idempotency().run(
            req,
            &ctx,
            "changePlan",
            idempotency_key.0,
            Some(organisation),
            operation,
        ))
        .await
    }

    /// Cancel the subscription at the end of the current period (its admins).
    #[oai(
        path = "/organisations/:organisation_id/billing/subscription/cancellation",
        method = "post",
        operation_id = "cancelSubscription"
    )]
    async fn cancel_subscription(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<SubscriptionView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let result = self.billing().cancel(&ctx, organisation).await;
        let subscription = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::SUBSCRIPTION,
            organisation.as_uuid(),
            result,
        )
        .await?;
        Ok(Found::Ok(Json((&subscription).into())))
    }

    /// Take back a cancellation before the period ends (its admins).
    #[oai(
        path = "/organisations/:organisation_id/billing/subscription/cancellation",
        method = "delete",
        operation_id = "resumeSubscription"
    )]
    async fn resume_subscription(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<SubscriptionView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let result = self.billing().resume(&ctx, organisation).await;
        let subscription = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::SUBSCRIPTION,
            organisation.as_uuid(),
            result,
        )
        .await?;
        Ok(Found::Ok(Json((&subscription).into())))
    }

    /// The practice's subscription, live or ended (its admins, the platform
    /// operator); 404 when it never had one.
    #[oai(
        path = "/organisations/:organisation_id/billing/subscription",
        method = "get",
        operation_id = "getSubscription"
    )]
    async fn get_subscription(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<SubscriptionView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let subscription = self
            .billing()
            .subscription(&ctx, organisation)
            .await?
            .ok_or_else(|| {
                ApiError::new(ProblemKind::NotFound, "The practice has no subscription.")
            })?;
        Ok(Found::Ok(Json((&subscription).into())))
    }

    /// The practice's plan, its standing, its limits and what it uses now (its
    /// admins and providers).
    #[oai(
        path = "/organisations/:organisation_id/billing/plan-status",
        method = "get",
        operation_id = "getPlanStatus"
    )]
    async fn get_plan_status(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<PlanStatusView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let status = self.billing().plan_status(&ctx, organisation).await?;
        Ok(Found::Ok(Json((&status).into())))
    }

    /// The practice's invoices, newest first (its admins, the platform operator).
    #[oai(
        path = "/organisations/:organisation_id/billing/invoices",
        method = "get",
        operation_id = "listInvoices"
    )]
    async fn list_invoices(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// Only invoices numbered below this: the previous page's `next_before`.
        #[oai(validator(minimum(value = "1"), maximum(value = "9007199254740991")))]
        before: Query<Option<u64>>,
        /// 1 to 100, default 20.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Found<InvoicePageView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let page = self
            .billing()
            .invoices(&ctx, organisation, before.0, limit.0.unwrap_or(20))
            .await?;
        Ok(Found::Ok(Json(InvoicePageView {
            items: page.items.iter().map(InvoiceDto::from).collect(),
            next_before: page.next_before,
        })))
    }

    /// One invoice with its payments and refunds (its admins, the platform
    /// operator).
    #[oai(
        path = "/organisations/:organisation_id/billing/invoices/:invoice_id",
        method = "get",
        operation_id = "getInvoice"
    )]
    async fn get_invoice(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        invoice_id: Path<Uuid>,
    ) -> Result<Found<InvoiceDetailView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let view = self
            .billing()
            .invoice(&ctx, organisation, invoice_id.0)
            .await?;
        Ok(Found::Ok(Json((&view).into())))
    }

    /// Charge an open invoice to the practice's default card (its admins). A
    /// declined card is 402 (the failed payment is recorded); an invoice that is
    /// not open is 409.
    #[oai(
        path = "/organisations/:organisation_id/billing/invoices/:invoice_id/payments",
        method = "post",
        operation_id = "payInvoice"
    )]
    async fn pay_invoice(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        invoice_id: Path<Uuid>,
        /// Retries with the same key and body get the first answer (24 hours).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<FoundOnce<InvoiceDetailView>, ChargeError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let operation = async {
            let result = self
                .billing()
                .pay_invoice(&ctx, organisation, invoice_id.0)
                .await;
            let view = audit_refusal(
                &self.state,
                &ctx,
                AuditAction::Create,
                resource::PAYMENT,
                invoice_id.0,
                result,
            )
            .await?;
            Ok::<_, ChargeError>(Found::Ok(Json((&view).into())))
        };
        Box::pin(self.state.idempotency().run(
            req,
            &ctx,
            "payInvoice",
            idempotency_key.0,
            Some(organisation),
            operation,
        ))
        .await
    }
}
