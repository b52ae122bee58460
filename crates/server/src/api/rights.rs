//! Data rights over HTTP (issue #8): a person files HIPAA, GDPR and CCPA
//! requests for themselves, a minor they are the guardian of, or a person who
//! appointed them as agent, follows them and downloads the answer; a provider
//! files for a client of the practice; the practice's privacy officer works the
//! queue; anyone (signed in or not) sends a privacy question or security
//! concern, which the platform's office works; and everyone reads the
//! statements every answer carries (D13).
//!
//! Input is parsed at the edge: a kind, regime, purpose or category that does
//! not parse, or a detail that does not fit the kind, is 422 naming the field.
//! [`RightsError`] is mapped to HTTP here and nowhere else, with two problem
//! types of its own: `authority-expired` and `authority-not-confirmed` (403).
//! The engine audits what it does and what it refuses.

pub mod cases;
pub mod requests;
pub mod views;

use data_rights::request::{RequestDetail, RequestKind};
use data_rights::service::{RightsError, resource};
use kernel::{
    AuditAction, AuditEvent, AuditOutcome, DataCategory, Purpose, Regime, RequestContext,
    ResourceRef,
};
use poem_openapi::SecurityScheme;
use poem_openapi::payload::Json;
use uuid::Uuid;

use self::views::RectificationBody;
use crate::auth::SessionAuth;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

pub use self::cases::PrivacyCaseApi;
pub use self::requests::RightsApi;

impl From<RightsError> for ApiError {
    fn from(err: RightsError) -> Self {
        match err {
            RightsError::NotFound => Self::new(
                ProblemKind::NotFound,
                "No such request, person, agent or case (or none you may see).",
            ),
            RightsError::Forbidden(rule) => Self::new(ProblemKind::Forbidden, format!("{rule}.")),
            RightsError::AuthorityExpired => Self::new(
                ProblemKind::AuthorityExpired,
                "The proof of authority has expired; the person may appoint the agent again. \
                 Nothing was filed.",
            ),
            RightsError::AuthorityNotConfirmed => Self::new(
                ProblemKind::AuthorityNotConfirmed,
                "The person has not confirmed this agent yet; nothing was filed.",
            ),
            RightsError::Invalid { field, message } => invalid(field, &message),
            RightsError::Conflict(rule) => Self::new(
                ProblemKind::Conflict,
                format!("{rule}; nothing was changed."),
            ),
            RightsError::Unavailable(source) => {
                tracing::error!(error = %source, "data rights unavailable");
                Self::Unavailable(Json(Problem::new(
                    ProblemKind::Unavailable,
                    "Data rights are temporarily unavailable; what was acknowledged is kept. \
                     Try again later.",
                )))
            }
        }
    }
}

/// Records a refusal the engine answers without auditing it (a member who is not
/// the practice's privacy officer, or not one of its providers: 403; another
/// practice's caller, or a request not of this practice: 404) as a denied event
/// on `kind` `id`, then passes the refusal on, so that every attempt at a
/// person's request leaves a trace. Any other outcome passes unchanged (the
/// engine audits what it does).
async fn audit_refusal<T>(
    state: &AppState,
    ctx: &RequestContext,
    action: AuditAction,
    id: Uuid,
    result: Result<T, RightsError>,
) -> Result<T, RightsError> {
    let reason = match &result {
        Err(RightsError::Forbidden(_)) => "not_permitted",
        Err(RightsError::NotFound) => "not_found",
        _ => return result,
    };
    let event = AuditEvent::new(
        ctx,
        action,
        ResourceRef::new(resource::REQUEST, id),
        None,
        AuditOutcome::Denied { reason },
    );
    match state.audit().sink().record(event).await {
        Ok(_) => result,
        Err(e) => Err(RightsError::Unavailable(Box::new(e))),
    }
}

/// 422 naming `field` and its rule.
fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::new(
        ProblemKind::Unprocessable,
        format!("`{field}`: {rule}; nothing was stored."),
    )
}

/// A session when one is sent and valid, else an anonymous caller: for what
/// anyone may do, signed in or not.
#[derive(Debug, SecurityScheme)]
pub enum OptionalSession {
    /// A person's (or an API key's) session.
    Session(SessionAuth),
    /// No valid session: an anonymous caller.
    #[oai(fallback)]
    Anonymous,
}

/// The regime named `raw`, or 422 naming `field`.
fn regime(field: &'static str, raw: &str) -> Result<Regime, ApiError> {
    Regime::parse(raw.trim()).ok_or_else(|| invalid(field, "must be `hipaa`, `gdpr` or `ccpa`"))
}

/// The kind named `raw`, or 422 naming `field`.
fn kind(field: &'static str, raw: &str) -> Result<RequestKind, ApiError> {
    RequestKind::parse(raw.trim()).ok_or_else(|| {
        invalid(
            field,
            "must be `access`, `rectification`, `erasure`, `restriction`, `portability`, \
             `objection`, `withdrawal`, `ccpa_know`, `ccpa_delete` or \
             `accounting_of_disclosures`",
        )
    })
}

fn purpose(raw: Option<&str>) -> Result<Purpose, ApiError> {
    let raw = raw.ok_or_else(|| invalid("purpose", "is needed for this kind of request"))?;
    Purpose::parse(raw.trim()).ok_or_else(|| invalid("purpose", "no such purpose"))
}

/// The detail fields of a filing, as sent.
#[derive(Debug, Clone, Copy)]
struct DetailInput<'a> {
    purpose: Option<&'a str>,
    recipient: Option<&'a str>,
    categories: Option<&'a [String]>,
    lift: Option<bool>,
    rectification: Option<&'a RectificationBody>,
}

impl DetailInput<'_> {
    /// The first field sent that `kind` does not take, if any.
    fn stray(&self, kind: RequestKind) -> Option<&'static str> {
        let takes: &[&str] = match kind {
            RequestKind::Withdrawal => &["purpose", "recipient"],
            RequestKind::Objection => &["purpose"],
            RequestKind::Restriction => &["categories", "lift"],
            RequestKind::Rectification => &["rectification"],
            _ => &[],
        };
        [
            ("purpose", self.purpose.is_some()),
            ("recipient", self.recipient.is_some()),
            ("categories", self.categories.is_some()),
            ("lift", self.lift.is_some()),
            ("rectification", self.rectification.is_some()),
        ]
        .into_iter()
        .find(|(name, sent)| *sent && !takes.contains(name))
        .map(|(name, _)| name)
    }

    /// The detail of a request of `kind`, or 422 naming the field at fault.
    fn parse(&self, kind: RequestKind) -> Result<RequestDetail, ApiError> {
        if let Some(field) = self.stray(kind) {
            return Err(invalid(
                field,
                &format!("does not belong to a request of kind `{}`", kind.as_str()),
            ));
        }
        Ok(match kind {
            RequestKind::Withdrawal => RequestDetail::Withdrawal {
                purpose: purpose(self.purpose)?,
                recipient: self.recipient.map(|r| r.trim().to_owned()),
            },
            RequestKind::Objection => RequestDetail::Objection {
                purpose: purpose(self.purpose)?,
            },
            RequestKind::Restriction => {
                let mut categories = Vec::new();
                for raw in self.categories.unwrap_or_default() {
                    let category = DataCategory::parse(raw.trim())
                        .ok_or_else(|| invalid("categories", "no such category of data"))?;
                    if !categories.contains(&category) {
                        categories.push(category);
                    }
                }
                RequestDetail::Restriction {
                    categories,
                    lift: self.lift.unwrap_or(false),
                }
            }
            RequestKind::Rectification => {
                let r = self.rectification.ok_or_else(|| {
                    invalid("rectification", "is needed for a rectification request")
                })?;
                RequestDetail::Rectification {
                    context: r.context.trim().to_owned(),
                    resource_kind: r.resource_kind.trim().to_owned(),
                    resource_id: r.resource_id,
                    field: r.field.trim().to_owned(),
                    value: serde_json::to_string(&r.value)
                        .map_err(|_| invalid("value", "must be JSON"))?,
                }
            }
            RequestKind::Access
            | RequestKind::Erasure
            | RequestKind::Portability
            | RequestKind::CcpaKnow
            | RequestKind::CcpaDelete
            | RequestKind::AccountingOfDisclosures => RequestDetail::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none<'a>() -> DetailInput<'a> {
        DetailInput {
            purpose: None,
            recipient: None,
            categories: None,
            lift: None,
            rectification: None,
        }
    }

    fn status(result: Result<RequestDetail, ApiError>) -> (u16, String) {
        match result {
            Err(ApiError::Unprocessable(p)) => (422, p.0.detail),
            Err(other) => (0, format!("{other:?}")),
            Ok(detail) => (200, format!("{detail:?}")),
        }
    }

    #[test]
    fn each_kind_takes_its_own_detail_and_nothing_else() {
        assert_eq!(
            none().parse(RequestKind::Access).ok(),
            Some(RequestDetail::None)
        );
        let stray = DetailInput {
            purpose: Some("marketing_email"),
            ..none()
        };
        let (code, detail) = status(stray.parse(RequestKind::Access));
        assert_eq!(code, 422);
        assert!(detail.starts_with("`purpose`"), "{detail}");
        assert_eq!(
            stray.parse(RequestKind::Objection).ok(),
            Some(RequestDetail::Objection {
                purpose: Purpose::MarketingEmail
            })
        );
        let (code, detail) = status(none().parse(RequestKind::Withdrawal));
        assert_eq!((code, detail.starts_with("`purpose`")), (422, true));
        let unknown = DetailInput {
            purpose: Some("world_domination"),
            ..none()
        };
        assert_eq!(status(unknown.parse(RequestKind::Objection)).0, 422);
        let categories = ["health_record".to_owned(), "health_record".to_owned()];
        let restriction = DetailInput {
            categories: Some(&categories),
            ..none()
        };
        assert_eq!(
            restriction.parse(RequestKind::Restriction).ok(),
            Some(RequestDetail::Restriction {
                categories: vec![DataCategory::HealthRecord],
                lift: false
            })
        );
        assert_eq!(
            none().parse(RequestKind::Restriction).ok(),
            Some(RequestDetail::Restriction {
                categories: Vec::new(),
                lift: false
            })
        );
        let (code, detail) = status(none().parse(RequestKind::Rectification));
        assert_eq!((code, detail.starts_with("`rectification`")), (422, true));
        let body = RectificationBody {
            context: "clinical".into(),
            resource_kind: "condition".into(),
            resource_id: Uuid::nil(),
            field: "text".into(),
            value: serde_json::json!({"a": [1, 2]}),
        };
        let rectification = DetailInput {
            rectification: Some(&body),
            ..none()
        };
        let Ok(RequestDetail::Rectification { value, .. }) =
            rectification.parse(RequestKind::Rectification)
        else {
            panic!("a rectification");
        };
        assert_eq!(value, r#"{"a":[1,2]}"#);
    }

    #[test]
    fn unknown_kinds_and_regimes_name_their_field() {
        let Err(ApiError::Unprocessable(p)) = kind("kind", "everything") else {
            panic!("422");
        };
        assert!(p.0.detail.starts_with("`kind`"), "{}", p.0.detail);
        assert!(kind("kind", "ccpa_know").is_ok());
        let Err(ApiError::Unprocessable(p)) = regime("regime", "lgpd") else {
            panic!("422");
        };
        assert!(p.0.detail.starts_with("`regime`"), "{}", p.0.detail);
    }
}
