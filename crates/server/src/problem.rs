//! One error shape for every failure: RFC 9457 `application/problem+json`.
//!
//! Handlers return [`ApiError`]; poem's own rejections (bad parameters, malformed
//! JSON, unknown routes, wrong methods, oversized bodies) are turned into the same
//! shape by the edge middleware through [`Problem::from_poem_error`]. The client
//! sees a stable `type`, a `title` and a `detail` written for it; internal detail is
//! only logged. Every `type` is listed in `docs/http-errors.md`.

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::edge::current_request_id;
use crate::routes::BodyFault;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:custodia:problem:not-found`.
    /// Stable: clients may branch on it.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a human. Never contains health data,
    /// secrets or internal detail.
    pub detail: String,
    /// The request's id, as in the `X-Request-Id` header: quote it to support.
    pub request_id: String,
    /// The members some types add (RFC 9457 extension members), beside the others.
    #[oai(flatten)]
    pub extensions: Option<Box<ProblemExtensions>>,
}

/// Extension members of some problem types, each present only on its type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Object)]
pub struct ProblemExtensions {
    /// For `plan-limit-reached`: the limit the plan sets (`active_clients` or
    /// `providers`).
    #[oai(skip_serializing_if_is_none)]
    pub limit: Option<String>,
    /// For `plan-limit-reached`: the limit's value.
    #[oai(skip_serializing_if_is_none)]
    pub max: Option<u32>,
    /// For `plan-limit-reached`: the plan's code.
    #[oai(skip_serializing_if_is_none)]
    pub plan: Option<String>,
    /// For `payment-failed`: the payment recorded on the invoice.
    #[oai(skip_serializing_if_is_none)]
    pub payment_id: Option<uuid::Uuid>,
}

/// The kinds of problem Custodia reports, with their status and title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the request is malformed (syntax, parameter format).
    BadRequest,
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: authenticated, but not allowed (where existence may be known).
    Forbidden,
    /// 404: no such resource, or one the caller may not know exists.
    NotFound,
    /// 405: the path exists; the method does not.
    MethodNotAllowed,
    /// 409: conflicts with the current state.
    Conflict,
    /// 410: a one-time token that has expired or been used.
    Gone,
    /// 413: the body is larger than allowed.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: well-formed, but breaks a rule.
    Unprocessable,
    /// 429: too many attempts; see `Retry-After`.
    TooManyRequests,
    /// 500: a fault of Custodia's.
    Internal,
    /// 503: a dependency (database, audit log) is unavailable; nothing was done.
    Unavailable,
    /// 403: a client under 13 cannot activate their account before a guardian is
    /// linked (O1).
    GuardianRequired,
    /// 401: the password was right; the account has MFA on, so a TOTP or recovery
    /// code is needed too.
    MfaRequired,
    /// 403: the practice requires MFA; until the caller enrols, the session may only
    /// enrol and sign out.
    MfaEnrolmentRequired,
    /// 409: the practice's plan allows no more of something (active clients,
    /// providers); the problem names the limit, its value and the plan.
    PlanLimitReached,
    /// 402: the card was declined or needs its holder; the failed payment is
    /// recorded on the invoice, which stays open.
    PaymentFailed,
    /// 403: an authorised agent's proof of authority has expired; the attempt is
    /// audited.
    AuthorityExpired,
    /// 403: the person has not confirmed the authorised agent yet.
    AuthorityNotConfirmed,
}

impl ProblemKind {
    /// The kind for an HTTP status (used for poem's own rejections).
    #[must_use]
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::BadRequest,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            410 => Self::Gone,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::Unprocessable,
            429 => Self::TooManyRequests,
            503 => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// The status code.
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::Gone => 410,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
            Self::GuardianRequired => 403,
            Self::MfaRequired => 401,
            Self::MfaEnrolmentRequired => 403,
            Self::PlanLimitReached => 409,
            Self::PaymentFailed => 402,
            Self::AuthorityExpired | Self::AuthorityNotConfirmed => 403,
        }
    }

    /// The stable slug used in the `type` URI.
    #[must_use]
    pub const fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::Gone => "gone",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Unprocessable => "validation-failed",
            Self::TooManyRequests => "too-many-requests",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::GuardianRequired => "guardian-required",
            Self::MfaRequired => "mfa-required",
            Self::MfaEnrolmentRequired => "mfa-enrolment-required",
            Self::PlanLimitReached => "plan-limit-reached",
            Self::PaymentFailed => "payment-failed",
            Self::AuthorityExpired => "authority-expired",
            Self::AuthorityNotConfirmed => "authority-not-confirmed",
        }
    }

    /// The title, the same for every occurrence.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "The request is malformed",
            Self::Unauthenticated => "Authentication is required",
            Self::Forbidden => "The operation is not allowed",
            Self::NotFound => "No such resource",
            Self::MethodNotAllowed => "The method is not allowed on this resource",
            Self::Conflict => "The request conflicts with the current state",
            Self::Gone => "The resource is no longer available",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The request body's media type is not supported",
            Self::Unprocessable => "The request breaks a validation rule",
            Self::TooManyRequests => "Too many requests",
            Self::Internal => "An internal error occurred",
            Self::Unavailable => "The service is temporarily unavailable",
            Self::GuardianRequired => "A guardian must be linked first",
            Self::MfaRequired => "A second factor is required",
            Self::MfaEnrolmentRequired => "MFA enrolment is required",
            Self::PlanLimitReached => "Plan limit reached",
            Self::PaymentFailed => "The payment was not completed",
            Self::AuthorityExpired => "The proof of authority has expired",
            Self::AuthorityNotConfirmed => "The person has not confirmed this agent",
        }
    }

    /// Every kind, for documentation tests.
    pub const ALL: [Self; 20] = [
        Self::BadRequest,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::Gone,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Unprocessable,
        Self::TooManyRequests,
        Self::Internal,
        Self::Unavailable,
        Self::GuardianRequired,
        Self::MfaRequired,
        Self::MfaEnrolmentRequired,
        Self::PlanLimitReached,
        Self::PaymentFailed,
        Self::AuthorityExpired,
        Self::AuthorityNotConfirmed,
    ];
}

impl Problem {
    /// A problem of `kind` with a detail written for the client.
    #[must_use]
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:custodia:problem:{}", kind.slug()),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: detail.into(),
            request_id: current_request_id()
                .map(|id| id.to_string())
                .unwrap_or_default(),
            extensions: None,
        }
    }

    /// The problem for one of poem's own rejections. Messages from poem and
    /// poem-openapi may quote the client's input (which may be health data), so
    /// only names Custodia chose (parameters, fields) are passed on.
    #[must_use]
    pub fn from_poem_error(err: &poem::Error) -> Self {
        Self::from_poem_error_with(err, &Culprit::default())
    }

    /// As [`Problem::from_poem_error`], naming the parameter or body field at fault
    /// from what the edge found out about the request.
    #[must_use]
    pub fn from_poem_error_with(err: &poem::Error, culprit: &Culprit<'_>) -> Self {
        use poem_openapi::error::{
            ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
        };

        if let Some(e) = err.downcast_ref::<ParseParamError>() {
            return Self::new(
                ProblemKind::BadRequest,
                format!("The parameter `{}` is missing or malformed.", e.name),
            );
        }
        if let Some(e) = err.downcast_ref::<ParsePathError>() {
            let detail = match path_param_name(e.name, &culprit.path_params) {
                Some(name) => format!("The path parameter `{name}` is malformed."),
                None => "A path parameter is malformed.".to_owned(),
            };
            return Self::new(ProblemKind::BadRequest, detail);
        }
        if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
            return payload_problem(&e.reason, culprit.body.as_ref());
        }
        if err.downcast_ref::<ContentTypeError>().is_some() {
            return Self::new(
                ProblemKind::UnsupportedMediaType,
                "Send the body as application/json.",
            );
        }
        let kind = ProblemKind::from_status(err.status());
        let detail = match kind {
            ProblemKind::NotFound => "No resource exists at this path.",
            ProblemKind::MethodNotAllowed => {
                "This path does not accept this method; the Allow header lists those it does."
            }
            ProblemKind::PayloadTooLarge => "The request body exceeds the configured limit.",
            ProblemKind::Unauthenticated => "Send a valid bearer token or API key.",
            ProblemKind::Internal => "Quote the request id to support.",
            _ => "The request was rejected.",
        };
        Self::new(kind, detail)
    }
}

impl Problem {
    /// The 422 for a body whose fields break the schema in the way `fault` says.
    #[must_use]
    pub fn from_body_fault(fault: &BodyFault) -> Self {
        payload_problem("", Some(fault))
    }
}

/// What the edge found out about a rejected request, so its problem can name the
/// part at fault. Every name comes from the API's own spec, never from the request.
#[derive(Debug, Clone, Default)]
pub struct Culprit<'a> {
    /// The spec names of the matched path template's parameters, in order.
    pub path_params: Vec<&'a str>,
    /// What is wrong with the JSON body's top-level fields, when that is known.
    pub body: Option<BodyFault>,
}

/// The client-facing name of the path parameter poem-openapi calls `reported`.
/// poem-openapi routes path parameters as `param0`, `param1`, … (template order)
/// and reports that name; clients know the template's. `None` when it cannot be
/// told, rather than an internal name.
fn path_param_name<'a>(reported: &'a str, template: &[&'a str]) -> Option<&'a str> {
    match reported.strip_prefix("param").map(str::parse::<usize>) {
        Some(Ok(index)) => template.get(index).copied(),
        _ => Some(reported),
    }
}

/// A body that is not JSON at all is malformed (400); JSON of the wrong shape breaks
/// the schema (422). The detail names the fields at fault when the edge found them.
fn payload_problem(reason: &str, fault: Option<&BodyFault>) -> Problem {
    if is_json_syntax_error(reason) {
        return Problem::new(
            ProblemKind::BadRequest,
            "The request body is not valid JSON.",
        );
    }
    let quoted = |names: &mut dyn Iterator<Item = &String>| {
        names
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let detail = match fault {
        Some(BodyFault::Missing(names)) if names.len() == 1 => format!(
            "The request body is missing the required field {}.",
            quoted(&mut names.iter())
        ),
        Some(BodyFault::Missing(names)) => format!(
            "The request body is missing the required fields {}.",
            quoted(&mut names.iter())
        ),
        Some(BodyFault::WrongType(fields)) => fields
            .iter()
            .map(|(name, kind)| format!("The field `{name}` must be {}.", kind.describe()))
            .collect::<Vec<_>>()
            .join(" "),
        Some(BodyFault::Rule(rules)) => rules
            .iter()
            .map(|(name, rule)| format!("`{name}` {rule}."))
            .collect::<Vec<_>>()
            .join(" "),
        None => "The request body does not match the operation's schema.".to_owned(),
    };
    Problem::new(ProblemKind::Unprocessable, detail)
}

/// serde_json's syntax errors (the only ones a parse into `Value` gives) end with
/// "at line N column M"; poem-openapi's schema errors never do.
fn is_json_syntax_error(reason: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    reason
        .rsplit_once(" column ")
        .and_then(|(head, column)| Some((head.rsplit_once(" at line ")?.1, column)))
        .is_some_and(|(line, column)| digits(line) && digits(column))
}

/// Every error an operation can answer. Each operation's spec lists these
/// responses, all `application/problem+json`.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Authentication is required.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Json<Problem>),
    /// Not allowed.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource (or one the caller may not know exists).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// A one-time token that expired or was used.
    #[oai(status = 410, content_type = "application/problem+json")]
    Gone(Json<Problem>),
    /// The body is larger than allowed (answered by the edge).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON (answered by the edge).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Breaks a validation rule.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many attempts.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A fault of Custodia's.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency is unavailable; nothing was done.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

/// The errors any operation that reads the database can answer, and no more:
/// for public probes that take no input.
#[derive(Debug, ApiResponse)]
pub enum ProbeError {
    /// A fault of Custodia's.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The database is unreachable or not migrated.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    /// An error of `kind` with a detail for the client.
    #[must_use]
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        let body = Json(Problem::new(kind, detail));
        match kind {
            ProblemKind::BadRequest => Self::BadRequest(body),
            // Answered by the edge for a path, never by an operation; should an
            // operation ever use it, it is reported as the fault it would be.
            ProblemKind::MethodNotAllowed => Self::Internal(body),
            ProblemKind::UnsupportedMediaType => Self::UnsupportedMediaType(body),
            ProblemKind::PayloadTooLarge => Self::PayloadTooLarge(body),
            ProblemKind::Unauthenticated | ProblemKind::MfaRequired => Self::Unauthenticated(body),
            ProblemKind::Forbidden
            | ProblemKind::GuardianRequired
            | ProblemKind::MfaEnrolmentRequired
            | ProblemKind::AuthorityExpired
            | ProblemKind::AuthorityNotConfirmed => Self::Forbidden(body),
            ProblemKind::NotFound => Self::NotFound(body),
            ProblemKind::Conflict | ProblemKind::PlanLimitReached => Self::Conflict(body),
            // Only the operations that charge a card answer 402, with their own
            // error type (`api::billing::ChargeError`); should another operation
            // ever use it, it is reported as the fault it would be.
            ProblemKind::PaymentFailed => Self::Internal(body),
            ProblemKind::Gone => Self::Gone(body),
            ProblemKind::Unprocessable => Self::Unprocessable(body),
            ProblemKind::TooManyRequests => Self::TooManyRequests(body, 60),
            ProblemKind::Internal => Self::Internal(body),
            ProblemKind::Unavailable => Self::Unavailable(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::routes::JsonKind;

    // The reasons below are the ones poem-openapi 5.1 and serde_json give.
    const SYNTAX: &str = "EOF while parsing a value at line 1 column 8";
    const MISSING: &str =
        r#"Type "integer_uint32" expects an input value. (occurred while parsing "NewThing")"#;
    const WRONG_TYPE: &str = r#"Expected input type "integer_uint32", found "F32.1 depression". (occurred while parsing "NewThing")"#;

    #[test]
    fn syntax_errors_are_400_and_schema_errors_422() {
        assert_eq!(payload_problem(SYNTAX, None).status, 400);
        assert_eq!(
            payload_problem("expected value at line 1 column 2", None).status,
            400
        );
        assert_eq!(payload_problem(MISSING, None).status, 422);
        assert_eq!(payload_problem(WRONG_TYPE, None).status, 422);
        assert_eq!(
            payload_problem(r#"failed to parse "X": unknown field `a`."#, None).status,
            422
        );
        assert_eq!(
            payload_problem(
                r#"Expected input type "X", found "at line 1 column 2"."#,
                None
            )
            .status,
            422
        );
    }

    #[test]
    fn fields_are_named_and_nothing_else_is_echoed() {
        let missing = BodyFault::Missing(vec!["count".to_owned()]);
        let p = payload_problem(MISSING, Some(&missing));
        assert_eq!(
            p.detail,
            "The request body is missing the required field `count`."
        );
        let wrong = BodyFault::WrongType(vec![("count".to_owned(), JsonKind::Integer)]);
        let p = payload_problem(WRONG_TYPE, Some(&wrong));
        assert_eq!(p.detail, "The field `count` must be an integer.");
        let p = payload_problem(WRONG_TYPE, None);
        assert!(!p.detail.contains("F32.1"), "{}", p.detail);
    }

    #[test]
    fn path_parameters_get_their_template_names_never_param_n() {
        assert_eq!(
            path_param_name("param1", &["org_id", "thing_id"]),
            Some("thing_id")
        );
        assert_eq!(path_param_name("param2", &["org_id"]), None);
        assert_eq!(path_param_name("thing_id", &[]), Some("thing_id"));
    }

    #[test]
    fn slugs_are_unique() {
        let mut slugs: Vec<_> = ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), ProblemKind::ALL.len());
    }
}
