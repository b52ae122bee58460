//! Billing over HTTP (issue #7): plans and tax rates (the platform operator), a
//! practice's billing account, cards, subscription, plan status and invoices (its
//! admins; the plan status also its providers), the operator's ad-hoc invoices,
//! refunds and billing runs, and the payment processor's signed webhook.
//!
//! Input is parsed at the edge into billing's values (`Money::parse`,
//! `Currency::parse`, `PlanCode::parse`, `Country::parse`, `TaxRate::new`,
//! `Label::parse`, `BillingEmail::parse`, `ProcessorToken::parse`): a value that
//! does not parse is 422 naming the field and the rule, never the value (which
//! may be a card number typed by mistake). [`BillingError`] is mapped to HTTP
//! here and nowhere else, with two problem types of its own:
//! `plan-limit-reached` (409, with `limit`, `max` and `plan`) and
//! `payment-failed` (402, with `payment_id`). Operations that charge, invoice,
//! refund or run billing take an `Idempotency-Key` ([`crate::idempotency`]).
//!
//! The service audits what it does; a billing write it refuses (403, or 404 for
//! another practice) is recorded here as a denied event, so every attempt to
//! move money leaves a trace.

pub mod operator;
pub mod practice;
pub mod views;

use billing::model::{BillTo, Limit};
use billing::values::{BillingEmail, Country, InvalidInput, Label};
use billing::{BillingError, Currency, Money, MoneyError};
use kernel::{AuditAction, AuditEvent, AuditOutcome, RequestContext, ResourceRef};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use uuid::Uuid;

use self::views::{BillingAccountRequest, MoneyInput};
use crate::problem::{ApiError, Problem, ProblemExtensions, ProblemKind};
use crate::state::AppState;

pub use self::operator::BillingOperatorApi;
pub use self::practice::BillingApi;

/// The problem for a billing refusal.
fn problem(err: BillingError) -> Problem {
    match err {
        BillingError::NotFound => Problem::new(
            ProblemKind::NotFound,
            "No such practice, plan, invoice or card (or none you may see).",
        ),
        BillingError::Forbidden(rule) => Problem::new(ProblemKind::Forbidden, format!("{rule}.")),
        BillingError::Invalid(e) => invalid_problem(e),
        BillingError::UnknownPlan => Problem::new(
            ProblemKind::Unprocessable,
            "`plan_code`: no plan has this code; nothing was stored.",
        ),
        BillingError::ProcessorRejected(reason) => Problem::new(
            ProblemKind::Unprocessable,
            format!("{reason}; nothing was stored."),
        ),
        BillingError::LimitReached { limit, max, plan } => limit_problem(limit, max, plan.as_str()),
        BillingError::Conflict(rule) => Problem::new(
            ProblemKind::Conflict,
            format!("{rule}; nothing was changed."),
        ),
        BillingError::PaymentFailed { code, payment } => {
            let mut problem = Problem::new(
                ProblemKind::PaymentFailed,
                format!(
                    "The payment was not completed: `{}`. It is recorded on the invoice, which \
                     stays open.",
                    decline_code(&code)
                ),
            );
            problem.extensions = Some(Box::new(ProblemExtensions {
                payment_id: Some(payment),
                ..ProblemExtensions::default()
            }));
            problem
        }
        BillingError::Replay => Problem::new(
            ProblemKind::BadRequest,
            "This delivery was already received; nothing was changed.",
        ),
        BillingError::Unavailable(source) => {
            tracing::error!(error = %source, "billing unavailable");
            Problem::new(
                ProblemKind::Unavailable,
                "Billing is temporarily unavailable; nothing was charged or changed.",
            )
        }
    }
}

/// A processor's decline code as shown: `snake_case` ASCII only, or `declined`.
fn decline_code(code: &str) -> &str {
    let plain = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain { code } else { "declined" }
}

/// The 409 `plan-limit-reached` problem.
fn limit_problem(limit: Limit, max: u32, plan: &str) -> Problem {
    let mut problem = Problem::new(
        ProblemKind::PlanLimitReached,
        format!("The plan `{plan}` allows at most {max} {}.", limit.as_str()),
    );
    problem.extensions = Some(Box::new(ProblemExtensions {
        limit: Some(limit.as_str().to_owned()),
        max: Some(max),
        plan: Some(plan.to_owned()),
        payment_id: None,
    }));
    problem
}

fn invalid_problem(e: InvalidInput) -> Problem {
    Problem::new(
        ProblemKind::Unprocessable,
        format!("`{}`: {}; nothing was stored.", e.field, e.rule),
    )
}

impl From<BillingError> for ApiError {
    fn from(err: BillingError) -> Self {
        let problem = problem(err);
        let body = Json(problem);
        match body.0.status {
            400 => Self::BadRequest(body),
            403 => Self::Forbidden(body),
            404 => Self::NotFound(body),
            // A decline outside the operations that charge (which answer with
            // [`ChargeError`]) cannot happen; it would be a conflict with the state.
            402 | 409 => Self::Conflict(body),
            422 => Self::Unprocessable(body),
            503 => Self::Unavailable(body),
            _ => Self::Internal(body),
        }
    }
}

/// 422 naming `field` and its rule.
fn invalid(field: &'static str, rule: &'static str) -> ApiError {
    ApiError::Unprocessable(Json(invalid_problem(InvalidInput::new(field, rule))))
}

/// The error answers of an operation that charges the practice's card: every
/// [`ApiError`], and 402 when the card is declined or needs its holder.
#[derive(Debug, ApiResponse)]
pub enum ChargeError {
    /// The request is malformed.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Authentication is required.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Json<Problem>),
    /// The card was declined or needs its holder (`payment-failed`); the payment
    /// is recorded on the invoice.
    #[oai(status = 402, content_type = "application/problem+json")]
    PaymentFailed(Json<Problem>),
    /// Not allowed.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource (or one the caller may not know exists).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Conflicts with the current state, or a plan limit (`plan-limit-reached`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than allowed (answered by the edge).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON (answered by the edge).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Breaks a validation rule.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// A fault of Custodia's.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency is unavailable; nothing was done.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<ApiError> for ChargeError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::BadRequest(p) => Self::BadRequest(p),
            ApiError::Unauthenticated(p) => Self::Unauthenticated(p),
            ApiError::Forbidden(p) => Self::Forbidden(p),
            ApiError::NotFound(p) => Self::NotFound(p),
            ApiError::Conflict(p) | ApiError::Gone(p) => Self::Conflict(p),
            ApiError::PayloadTooLarge(p) => Self::PayloadTooLarge(p),
            ApiError::UnsupportedMediaType(p) => Self::UnsupportedMediaType(p),
            ApiError::Unprocessable(p) => Self::Unprocessable(p),
            ApiError::TooManyRequests(p, _) | ApiError::Unavailable(p) => Self::Unavailable(p),
            ApiError::Internal(p) => Self::Internal(p),
        }
    }
}

impl From<BillingError> for ChargeError {
    fn from(err: BillingError) -> Self {
        if matches!(err, BillingError::PaymentFailed { .. }) {
            return Self::PaymentFailed(Json(problem(err)));
        }
        ApiError::from(err).into()
    }
}

/// An exact amount in `field` (`price`, `amount`): a known currency, no more
/// decimals than it has, and never negative.
fn money(field: &'static str, input: &MoneyInput) -> Result<Money, ApiError> {
    let currency = currency(field, &input.currency)?;
    Money::parse(&input.amount, currency)
        .and_then(Money::non_negative)
        .map_err(|e| invalid(field, e.rule()))
}

/// A currency Custodia bills in.
fn currency(field: &'static str, code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).map_err(|e: MoneyError| invalid(field, e.rule()))
}

/// A label of at most `MAX` characters.
fn label<const MAX: usize>(field: &'static str, text: &str) -> Result<Label<MAX>, ApiError> {
    Label::parse(field, text).map_err(|e| ApiError::Unprocessable(Json(invalid_problem(e))))
}

fn country(field: &'static str, code: &str) -> Result<Country, ApiError> {
    Country::parse(code).map_err(|e| invalid(field, e.rule))
}

/// The billing contact as given.
fn bill_to(b: &BillingAccountRequest) -> Result<BillTo, ApiError> {
    if !(1..=2).contains(&b.address_lines.len()) {
        return Err(invalid("address_lines", "must be one or two lines"));
    }
    Ok(BillTo {
        legal_name: label("legal_name", &b.legal_name)?,
        contact_name: label("contact_name", &b.contact_name)?,
        email: BillingEmail::parse(&b.email)
            .map_err(|e| ApiError::Unprocessable(Json(invalid_problem(e))))?,
        address_lines: b
            .address_lines
            .iter()
            .map(|line| label("address_lines", line))
            .collect::<Result<_, _>>()?,
        city: label("city", &b.city)?,
        postal_code: label("postal_code", &b.postal_code)?,
        country: country("country", &b.country)?,
        tax_id: b
            .tax_id
            .as_deref()
            .map(|t| label("tax_id", t))
            .transpose()?,
    })
}

/// Records a billing write the service refused (403, or 404 for a practice the
/// caller is not in) as a denied audit event of `kind` `id`, then passes the
/// refusal on. Any other outcome passes unchanged (the service audits what it
/// does).
async fn audit_refusal<T>(
    state: &AppState,
    ctx: &RequestContext,
    action: AuditAction,
    kind: &'static str,
    id: Uuid,
    result: Result<T, BillingError>,
) -> Result<T, BillingError> {
    let reason = match &result {
        Err(BillingError::Forbidden(_)) => "not_billing_role",
        Err(BillingError::NotFound) => "not_found",
        _ => return result,
    };
    let event = AuditEvent::new(
        ctx,
        action,
        ResourceRef::new(kind, id),
        None,
        AuditOutcome::Denied { reason },
    );
    match state.audit().sink().record(event).await {
        Ok(_) => result,
        Err(e) => Err(BillingError::Unavailable(Box::new(e))),
    }
}
