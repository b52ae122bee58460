//! `Idempotency-Key`: an operation a client may retry (a charge, an invoice, a
//! refund, a billing run) answers a retry with the first answer instead of doing
//! it twice.
//!
//! The key (1 to 255 visible ASCII characters) is scoped to the caller, the
//! operation and the path. Its first use claims it in
//! [`store::SeaOrmIdempotencyStore`] with the request's fingerprint (SHA-256 over
//! the method, the path and the body exactly as received); the operation runs and
//! its answer (status and body, 2xx or 4xx) is stored. A retry with the same key
//! and fingerprint gets that answer again with `Idempotent-Replayed: true`; the
//! same key with another request is a 422; the same key while the first request
//! still runs is a 409. A 5xx answer is not stored: the key is released and the
//! request can be retried. Keys are kept 24 hours (the billing job purges older
//! ones).

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use kernel::{OrganisationId, RequestContext};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Request, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{MetaHeader, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type as _;
use store::{IdempotencyBegin, SeaOrmIdempotencyStore};

use crate::edge::RawBody;
use crate::problem::{ApiError, PROBLEM_JSON, ProblemKind};

/// The request header carrying the key.
pub const KEY_HEADER: &str = "Idempotency-Key";
/// The response header marking a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// How long a key is remembered.
pub const KEY_LIFETIME: Duration = Duration::hours(24);

/// The answer of an operation that takes an `Idempotency-Key`: its own answer
/// `R`, or the answer a key already holds (the first answer replayed, or this
/// request's answer as stored). Documented as `R`, each response with the
/// optional `Idempotent-Replayed` header.
#[derive(Debug)]
pub enum Idempotent<R> {
    /// The operation's answer; no key was given.
    Answer(R),
    /// An answer held for a key, sent as it is.
    Held(Response),
}

impl<R: ApiResponse> ApiResponse for Idempotent<R> {
    fn meta() -> MetaResponses {
        let mut meta = R::meta();
        for response in &mut meta.responses {
            response.headers.push(MetaHeader {
                name: REPLAYED_HEADER.to_owned(),
                description: Some(
                    "`true` when this is the answer first given to a request with the same \
                     `Idempotency-Key` and body, replayed."
                        .to_owned(),
                ),
                required: false,
                deprecated: false,
                schema: MetaSchemaRef::Inline(Box::new(
                    String::schema_ref().unwrap_inline().clone(),
                )),
            });
        }
        meta
    }

    fn register(registry: &mut Registry) {
        R::register(registry);
    }
}

impl<R: IntoResponse> IntoResponse for Idempotent<R> {
    fn into_response(self) -> Response {
        match self {
            Self::Answer(answer) => answer.into_response(),
            Self::Held(response) => response,
        }
    }
}

/// Where keys are kept.
#[derive(Debug, Clone)]
pub struct Keys {
    store: SeaOrmIdempotencyStore,
}

impl Keys {
    /// The keys in `store`.
    #[must_use]
    pub const fn new(store: SeaOrmIdempotencyStore) -> Self {
        Self { store }
    }

    /// Forgets keys first used more than [`KEY_LIFETIME`] before `now`; returns how
    /// many.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<u64, billing::ports::RepositoryError> {
        self.store.purge_before(now - KEY_LIFETIME).await
    }

    /// Runs `operation` (named `operation_id`, on the request `req` by the caller
    /// of `ctx`) under the `Idempotency-Key` `key`, if one was given. The answer
    /// of a practice's request is sealed under the billing key of `organisation`.
    ///
    /// # Errors
    /// The operation's own error when no key was given; with a key, its errors
    /// are answers like any other and stored as such. A malformed key or one
    /// used with another request is 422, one still in progress 409, storage
    /// unavailable 503.
    pub async fn run<R, E, F>(
        &self,
        req: &Request,
        ctx: &RequestContext,
        operation_id: &str,
        key: Option<String>,
        organisation: Option<OrganisationId>,
        operation: F,
    ) -> Result<Idempotent<R>, E>
    where
        R: IntoResponse,
        E: IntoResponse + From<ApiError>,
        F: Future<Output = Result<R, E>>,
    {
        let Some(key) = key else {
            return operation.await.map(Idempotent::Answer);
        };
        if !valid_key(&key) {
            return Err(ApiError::new(
                ProblemKind::Unprocessable,
                "The `Idempotency-Key` header must be 1 to 255 visible ASCII characters.",
            )
            .into());
        }
        let path = req.uri().path();
        let scope = scope(ctx, operation_id, path);
        let fingerprint = fingerprint(req.method().as_str(), path, RawBody::of(req));
        let begun = self
            .store
            .begin(&scope, &key, fingerprint, organisation, ctx.at())
            .await
            .map_err(|e| unavailable(&e))?;
        match begun {
            IdempotencyBegin::Fresh => {}
            IdempotencyBegin::Replay { status, body } => {
                return Ok(Idempotent::Held(replayed(status, body)));
            }
            IdempotencyBegin::Mismatch => {
                return Err(ApiError::new(
                    ProblemKind::Unprocessable,
                    "The Idempotency-Key was already used with a different request.",
                )
                .into());
            }
            IdempotencyBegin::InProgress => {
                return Err(ApiError::new(
                    ProblemKind::Conflict,
                    "A request with this Idempotency-Key is still being answered; retry it \
                     once that one is done.",
                )
                .into());
            }
        }
        let response = match operation.await {
            Ok(answer) => answer.into_response(),
            Err(error) => error.into_response(),
        };
        if response.status().is_server_error() {
            // Not stored: the key is released so the request can be retried.
            if let Err(e) = self.store.abandon(&scope, &key).await {
                tracing::warn!(error = %e, "idempotency: a key was not released");
            }
            return Ok(Idempotent::Held(response));
        }
        let (parts, body) = response.into_parts();
        let bytes = match body.into_vec().await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "idempotency: an answer could not be read");
                let _ = self.store.abandon(&scope, &key).await;
                return Err(ApiError::new(
                    ProblemKind::Internal,
                    "Quote the request id to support.",
                )
                .into());
            }
        };
        if let Err(e) = self
            .store
            .complete(&scope, &key, parts.status.as_u16(), &bytes)
            .await
        {
            // The operation is done: answer it, and release the key so that a retry
            // is not refused as in progress (it would run again, as without a key).
            tracing::warn!(error = %e, "idempotency: an answer was not stored");
            let _ = self.store.abandon(&scope, &key).await;
        }
        Ok(Idempotent::Held(Response::from_parts(parts, bytes.into())))
    }
}

/// 1 to 255 visible ASCII characters.
fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The caller (person, and API key if one was used), the operation and the path.
fn scope(ctx: &RequestContext, operation_id: &str, path: &str) -> String {
    let caller = match (ctx.actor().user(), ctx.api_key()) {
        (Some(user), Some(key)) => format!("{}+key:{key}", user.as_uuid()),
        (Some(user), None) => user.as_uuid().to_string(),
        (None, Some(key)) => format!("key:{key}"),
        (None, None) => "anonymous".to_owned(),
    };
    format!("{caller} {operation_id} {path}")
}

/// SHA-256 over the method, the path and the body, each length-prefixed.
fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [method.as_bytes(), path.as_bytes(), body] {
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(digest.finish().as_ref());
    out
}

/// A stored answer, sent again.
fn replayed(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json; charset=utf-8"
    } else {
        PROBLEM_JSON
    };
    let mut response = Response::builder()
        .status(status)
        .content_type(content_type)
        .body(body);
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    if status == StatusCode::NO_CONTENT {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
}

fn unavailable(error: &billing::ports::RepositoryError) -> ApiError {
    tracing::error!(error = %error, "idempotency keys unavailable");
    ApiError::new(
        ProblemKind::Unavailable,
        "The service is temporarily unavailable; nothing was done. Retry with the same \
         Idempotency-Key.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_1_to_255() {
        assert!(valid_key("a"));
        assert!(valid_key("0193a5b2-7c1e-7d3a-9f0e-2b4c6d8e0f12"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("with space"));
        assert!(!valid_key("tab\there"));
        assert!(!valid_key("é"));
    }

    #[test]
    fn fingerprints_tell_method_path_and_body_apart() {
        let base = fingerprint("POST", "/v1/x", b"{}");
        assert_eq!(base, fingerprint("POST", "/v1/x", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/v1/x", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/y", b"{}"));
        assert_ne!(base, fingerprint("POST", "/v1/x", b"{ }"));
        // Lengths are part of it: moving bytes between parts changes it.
        assert_ne!(
            fingerprint("POST", "/v1/x{", b"}"),
            fingerprint("POST", "/v1/x", b"{}")
        );
    }

    #[test]
    fn replays_are_marked_and_keep_their_status() {
        let r = replayed(402, b"{}".to_vec());
        assert_eq!(r.status(), 402);
        assert_eq!(r.headers()[REPLAYED_HEADER], "true");
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let r = replayed(201, b"{}".to_vec());
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("application/json")
        );
    }
}
