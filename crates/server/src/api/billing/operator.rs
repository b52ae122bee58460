//! The platform operator's billing: plans and their versions, tax rates, ad-hoc
//! invoices, refunds and billing runs; the plans as practice admins see them; and
//! the payment processor's webhook, authenticated by its signature alone.

use billing::BillingService;
use billing::model::{PlanTerms, ProcessorEvent};
use billing::service::{EventReceipt, ManualLine, resource};
use billing::values::{PlanCode, TaxRate};
use billing::{BillingError, Money};
use chrono::DateTime;
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, OrganisationId, Purpose, RequestContext,
    ResourceRef,
};
use poem::Request;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use super::views::{
    BillingRunRequest, BillingRunView, EventOutcomeName, EventReceiptView, InvoiceDto,
    NewInvoiceRequest, NewPlanRequest, PlanList, PlanRevisionRequest, PlanView, RefundRequest,
    RefundView, TaxRateList, TaxRateRequest, TaxRateView,
};
use super::{audit_refusal, currency, invalid, label, money};
use crate::api::ApiTags;
use crate::api::identity::{Created, Found};
use crate::auth::SessionAuth;
use crate::edge::RawBody;
use crate::idempotency::Idempotent;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// The header carrying a processor event's signature.
pub const SIGNATURE_HEADER: &str = "Custodia-Processor-Signature";
/// How far a signed timestamp may be from the server's clock, either way.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// The audit resource kind of a billing run the operator started.
pub const BILLING_RUN: &str = "billing_run";

/// The operator's billing operations, and the processor's webhook.
#[derive(Debug)]
pub struct BillingOperatorApi {
    state: AppState,
}

impl BillingOperatorApi {
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

/// A stable id for a plan code or a country in audit events of refused writes
/// (the plan may not exist): the first 16 bytes of SHA-256 over it.
fn named_ref(kind: &str, name: &str) -> Uuid {
    crate::api::clinical::list_key(&format!("billing-{kind}:{name}"), &[])
}

/// The terms of a plan version, parsed.
fn terms(
    name: &str,
    price: &super::views::MoneyInput,
    interval: super::views::IntervalName,
    trial_days: u32,
    limits: super::views::LimitsView,
) -> Result<PlanTerms, ApiError> {
    Ok(PlanTerms {
        name: label("name", name)?,
        price: money("price", price)?,
        interval: interval.domain(),
        trial_days,
        limits: limits.into(),
    })
}

/// The 400 for a processor delivery refused before anything is read.
fn bad_delivery(detail: &str) -> ApiError {
    ApiError::new(
        ProblemKind::BadRequest,
        format!("{detail} Nothing was changed."),
    )
}

/// A processor event as delivered.
#[derive(Debug, Deserialize)]
struct EventBody {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: EventObject,
}

#[derive(Debug, Deserialize)]
struct EventObject {
    id: String,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    failure_code: Option<String>,
}

/// Short printable ASCII: ids, types and codes from the processor.
fn plain(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The event a verified delivery carries, or why it is not one.
fn processor_event(body: &[u8], signed_at: i64) -> Result<ProcessorEvent, &'static str> {
    let event: EventBody = serde_json::from_slice(body).map_err(
        |_| "The body is not a processor event (`id`, `type`, `created`, `data.object.id`).",
    )?;
    if !plain(&event.id, 255) || !plain(&event.kind, 100) || !plain(&event.data.object.id, 255) {
        return Err(
            "The event's `id`, `type` or `data.object.id` is empty, too long or not printable ASCII.",
        );
    }
    let created = DateTime::from_timestamp(event.created, 0)
        .ok_or("The event's `created` is not a Unix time.")?;
    let failure_code = match event.data.object.failure_code {
        Some(code) if !plain(&code, 64) => {
            return Err(
                "The event's `data.object.failure_code` is too long or not printable ASCII.",
            );
        }
        other => other,
    };
    Ok(ProcessorEvent {
        id: event.id,
        kind: event.kind,
        object: Some(event.data.object.id),
        created,
        amount_minor: event.data.object.amount,
        failure_code,
        signed_at,
    })
}

/// The webhook's answer: 200 with the outcome.
#[derive(Debug, ApiResponse)]
pub enum EventAnswer {
    /// Received: the processor need not send it again.
    #[oai(status = 200)]
    Ok(Json<EventReceiptView>),
}

/// `201 Created`, or an answer held for an `Idempotency-Key`.
type CreatedOnce<T> = Idempotent<Created<T>>;
/// `200 OK`, or an answer held for an `Idempotency-Key`.
type FoundOnce<T> = Idempotent<Found<T>>;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Billing")]
impl BillingOperatorApi {
    /// Create a plan (platform operator). A code already taken is 409.
    #[oai(path = "/operator/plans", method = "post", operation_id = "createPlan")]
    async fn create_plan(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<NewPlanRequest>,
    ) -> Result<Created<PlanView>, ApiError> {
        let ctx = self.context(req, &auth);
        let b = body.0;
        let code = PlanCode::parse(&b.code).map_err(|e| invalid("code", e.rule))?;
        let terms = terms(&b.name, &b.price, b.interval, b.trial_days, b.limits)?;
        let result = self.billing().create_plan(&ctx, code, terms).await;
        let plan = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Create,
            resource::PLAN,
            named_ref("plan", &b.code),
            result,
        )
        .await?;
        Ok(Created::Created(Json((&plan).into())))
    }

    /// Write a plan's next version (platform operator). Subscribers keep the
    /// version they have until their next renewal; `available: false` withdraws
    /// the plan from new subscriptions.
    #[oai(
        path = "/operator/plans/:plan_code/versions",
        method = "post",
        operation_id = "revisePlan"
    )]
    async fn revise_plan(
        &self,
        req: &Request,
        auth: SessionAuth,
        plan_code: Path<String>,
        body: Json<PlanRevisionRequest>,
    ) -> Result<Created<PlanView>, ApiError> {
        let ctx = self.context(req, &auth);
        let b = body.0;
        let terms = terms(&b.name, &b.price, b.interval, b.trial_days, b.limits)?;
        // A code that does not parse names no plan.
        let result = match PlanCode::parse(&plan_code.0) {
            Ok(code) => {
                self.billing()
                    .revise_plan(&ctx, &code, terms, b.available)
                    .await
            }
            Err(_) => match ctx.actor() {
                Actor::PlatformOperator { .. } => Err(BillingError::NotFound),
                _ => Err(BillingError::Forbidden(
                    "only the platform operator may do this",
                )),
            },
        };
        let plan = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::PLAN,
            named_ref("plan", &plan_code.0),
            result,
        )
        .await?;
        Ok(Created::Created(Json((&plan).into())))
    }

    /// Every plan at its latest version (the platform operator, or a practice
    /// admin choosing one).
    #[oai(path = "/plans", method = "get", operation_id = "listPlans")]
    async fn list_plans(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<PlanList>, ApiError> {
        let ctx = self.context(req, &auth);
        let plans = self.billing().plans(&ctx).await?;
        Ok(Found::Ok(Json(PlanList {
            items: plans.iter().map(Into::into).collect(),
        })))
    }

    /// One plan at its latest version (the platform operator, or a practice
    /// admin); 404 for an unknown code.
    #[oai(path = "/plans/:plan_code", method = "get", operation_id = "getPlan")]
    async fn get_plan(
        &self,
        req: &Request,
        auth: SessionAuth,
        plan_code: Path<String>,
    ) -> Result<Found<PlanView>, ApiError> {
        let ctx = self.context(req, &auth);
        let plans = self.billing();
        let plan = match PlanCode::parse(&plan_code.0) {
            Ok(code) => plans.plan(&ctx, &code).await?,
            // A code that does not parse names no plan: 404 for whoever may read
            // plans, the same refusal as any other for whoever may not.
            Err(_) => {
                plans.plans(&ctx).await?;
                return Err(BillingError::NotFound.into());
            }
        };
        Ok(Found::Ok(Json((&plan).into())))
    }

    /// Set (or replace) a country's tax rate (platform operator). Invoices to
    /// practices billed in that country apply it from then on.
    #[oai(
        path = "/operator/tax-rates/:country",
        method = "put",
        operation_id = "setTaxRate"
    )]
    async fn set_tax_rate(
        &self,
        req: &Request,
        auth: SessionAuth,
        country: Path<String>,
        body: Json<TaxRateRequest>,
    ) -> Result<Found<TaxRateView>, ApiError> {
        let ctx = self.context(req, &auth);
        let code = super::country("country", &country.0)?;
        let rule = "must be a percentage from 0 to 100 with at most 4 decimal places";
        let rate = body
            .0
            .rate
            .trim()
            .parse::<Decimal>()
            .map_err(|_| invalid("rate", rule))
            .and_then(|p| TaxRate::new(p).map_err(|e| invalid("rate", e.rule)))?;
        let name = label("name", &body.0.name)?;
        let result = self.billing().set_tax_rate(&ctx, code, rate, name).await;
        let entry = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::TAX_RATE,
            named_ref("tax-rate", code.as_str()),
            result,
        )
        .await?;
        Ok(Found::Ok(Json((&entry).into())))
    }

    /// Every configured tax rate, by country (platform operator).
    #[oai(
        path = "/operator/tax-rates",
        method = "get",
        operation_id = "listTaxRates"
    )]
    async fn list_tax_rates(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<TaxRateList>, ApiError> {
        let ctx = self.context(req, &auth);
        let rates = self.billing().tax_rates(&ctx).await?;
        Ok(Found::Ok(Json(TaxRateList {
            items: rates.iter().map(Into::into).collect(),
        })))
    }

    /// Bill a practice for something other than its subscription (platform
    /// operator): a draft, or issued at once with `finalize`. Taxed at the rate of
    /// the practice's billing country; numbered in the practice's sequence without
    /// gaps.
    #[oai(
        path = "/operator/organisations/:organisation_id/invoices",
        method = "post",
        operation_id = "createInvoice"
    )]
    async fn create_invoice(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// Retries with the same key and body get the first answer (24 hours).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<NewInvoiceRequest>,
    ) -> Result<CreatedOnce<InvoiceDto>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let operation = async {
            let b = &body.0;
            let currency = currency("currency", &b.currency)?;
            let lines = b
                .lines
                .iter()
                .map(|line| {
                    Ok(ManualLine {
                        description: label("description", &line.description)?,
                        quantity: line.quantity,
                        unit_amount: Money::parse(&line.unit_amount, currency)
                            .and_then(Money::non_negative)
                            .map_err(|e| invalid("unit_amount", e.rule()))?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let result = self
                .billing()
                .create_invoice(&ctx, organisation, currency, lines, b.finalize)
                .await;
            let invoice = audit_refusal(
                &self.state,
                &ctx,
                AuditAction::Create,
                resource::INVOICE,
                organisation.as_uuid(),
                result,
            )
            .await?;
            Ok::<_, ApiError>(Created::Created(Json((&invoice).into())))
        };
        Box::pin(self.state.idempotency().run(
            req,
            &ctx,
            "createInvoice",
            idempotency_key.0,
            Some(organisation),
            operation,
        ))
        .await
    }

    /// Issue a draft invoice (platform operator): draft to open.
    #[oai(
        path = "/operator/organisations/:organisation_id/invoices/:invoice_id/finalization",
        method = "post",
        operation_id = "finalizeInvoice"
    )]
    async fn finalize_invoice(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        invoice_id: Path<Uuid>,
    ) -> Result<Found<InvoiceDto>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let result = self
            .billing()
            .finalize_invoice(&ctx, organisation, invoice_id.0)
            .await;
        let invoice = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::INVOICE,
            invoice_id.0,
            result,
        )
        .await?;
        Ok(Found::Ok(Json((&invoice).into())))
    }

    /// Void a draft or open invoice (platform operator); it keeps its number.
    #[oai(
        path = "/operator/organisations/:organisation_id/invoices/:invoice_id/void",
        method = "post",
        operation_id = "voidInvoice"
    )]
    async fn void_invoice(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        invoice_id: Path<Uuid>,
    ) -> Result<Found<InvoiceDto>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let result = self
            .billing()
            .void_invoice(&ctx, organisation, invoice_id.0)
            .await;
        let invoice = audit_refusal(
            &self.state,
            &ctx,
            AuditAction::Update,
            resource::INVOICE,
            invoice_id.0,
            result,
        )
        .await?;
        Ok(Found::Ok(Json((&invoice).into())))
    }

    /// Refund part or all of what an invoice was paid (platform operator). More
    /// than was paid and not yet refunded is 409.
    #[oai(
        path = "/operator/organisations/:organisation_id/invoices/:invoice_id/refunds",
        method = "post",
        operation_id = "refundInvoice"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "poem-openapi takes each path parameter and header as an argument"
    )]
    async fn refund_invoice(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        invoice_id: Path<Uuid>,
        /// Retries with the same key and body get the first answer (24 hours).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<RefundRequest>,
    ) -> Result<CreatedOnce<RefundView>, ApiError> {
        let ctx = self.context(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let operation = async {
            let amount = money("amount", &body.0.amount)?;
            let reason = body
                .0
                .reason
                .as_deref()
                .map(|r| label("reason", r))
                .transpose()?;
            let result = self
                .billing()
                .refund(&ctx, organisation, invoice_id.0, amount, reason)
                .await;
            let refund = audit_refusal(
                &self.state,
                &ctx,
                AuditAction::Create,
                resource::REFUND,
                invoice_id.0,
                result,
            )
            .await?;
            Ok::<_, ApiError>(Created::Created(Json((&refund).into())))
        };
        Box::pin(self.state.idempotency().run(
            req,
            &ctx,
            "refundInvoice",
            idempotency_key.0,
            Some(organisation),
            operation,
        ))
        .await
    }

    /// Do the billing work due now (platform operator): renewals at each plan's
    /// latest version, trial ends, cancellations at period end, dunning retries.
    /// The background job does the same on its interval.
    #[oai(
        path = "/operator/billing-runs",
        method = "post",
        operation_id = "runBilling"
    )]
    async fn run_billing(
        &self,
        req: &Request,
        auth: SessionAuth,
        /// Retries with the same key and body get the first answer (24 hours).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<BillingRunRequest>,
    ) -> Result<FoundOnce<BillingRunView>, ApiError> {
        let ctx = self.context(req, &auth);
        let run = Uuid::now_v7();
        let operation = async {
            let result = self.billing().run_due(&ctx, body.0.limit).await;
            let report = audit_refusal(
                &self.state,
                &ctx,
                AuditAction::Update,
                BILLING_RUN,
                run,
                result,
            )
            .await?;
            // The run itself is recorded, whether or not anything was due.
            let event = AuditEvent::new(
                &ctx,
                AuditAction::Update,
                ResourceRef::new(BILLING_RUN, run),
                None,
                AuditOutcome::Allowed,
            );
            self.state
                .audit()
                .sink()
                .record(event)
                .await
                .map_err(|e| BillingError::Unavailable(Box::new(e)))?;
            Ok::<_, ApiError>(Found::Ok(Json(report.into())))
        };
        Box::pin(self.state.idempotency().run(
            req,
            &ctx,
            "runBilling",
            idempotency_key.0,
            None,
            operation,
        ))
        .await
    }

    /// The payment processor's events (no session: the `Custodia-Processor-Signature`
    /// header, `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` under the
    /// webhook secret, authenticates it). A bad or missing signature, a timestamp
    /// more than 300 seconds from the server's clock, an exact replay (same event
    /// id and timestamp) or a body that is not an event is 400, and nothing
    /// changes. Each event id is applied once (a redelivery is `duplicate`), never
    /// over a newer event (`stale`); an object Custodia does not hold is recorded
    /// as `unknown_object`. Body: `{"id": "evt_...", "type": "charge.succeeded" |
    /// "charge.failed" | "charge.refunded" | ..., "created": <unix seconds>,
    /// "data": {"object": {"id": "<charge id>", "amount"?: <minor units>,
    /// "failure_code"?: "..."}}}`.
    #[oai(
        path = "/billing/processor-events",
        method = "post",
        operation_id = "receiveProcessorEvent"
    )]
    async fn receive_processor_event(
        &self,
        req: &Request,
        /// `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
        #[oai(name = "Custodia-Processor-Signature")]
        signature: Header<Option<String>>,
        // Read as any JSON: the signature covers the raw bytes, which are checked
        // before the event is read.
        _body: Json<serde_json::Value>,
    ) -> Result<EventAnswer, ApiError> {
        let raw = RawBody::of(req);
        let now = self.state.clock().now().timestamp();
        let Some(header) = signature.0 else {
            return Err(bad_delivery(
                "The `Custodia-Processor-Signature` header is missing.",
            ));
        };
        let signed_at = self
            .state
            .webhook_signer()
            .verify(&header, raw, now, SIGNATURE_TOLERANCE_SECS)
            .map_err(|e| {
                let detail = match e {
                    crypto::WebhookError::Malformed => {
                        "The `Custodia-Processor-Signature` header is malformed."
                    }
                    crypto::WebhookError::BadSignature => {
                        "The signature does not match the body."
                    }
                    crypto::WebhookError::Stale => {
                        "The signature's timestamp is more than 300 seconds from the server's clock."
                    }
                };
                bad_delivery(detail)
            })?;
        let event = processor_event(raw, signed_at).map_err(bad_delivery)?;
        let ctx = crate::auth::context(
            &self.state,
            req,
            Actor::System {
                component: "processor-webhook",
            },
            None,
            Purpose::Payment,
        );
        let outcome = match self.billing().handle_event(&ctx, event).await? {
            EventReceipt::Recorded(outcome) => EventOutcomeName::of(outcome),
            EventReceipt::Duplicate => EventOutcomeName::Duplicate,
        };
        Ok(EventAnswer::Ok(Json(EventReceiptView {
            received: true,
            outcome,
        })))
    }
}
