//! The edge middleware every request passes through, outermost first.
//!
//! It gives each request an id (`X-Request-Id`, also in every problem body and log
//! line), records the client's address and user agent for the
//! [`kernel::RequestContext`], turns every failure, including poem's own
//! rejections and panics, into `application/problem+json` (naming, from the spec,
//! the parameter or body field at fault, never quoting the input), refuses bodies
//! over the limit with 413 whether or not they declare a length, adds `Allow` to
//! 405 answers, sets the security headers, and writes one access-log line per
//! request. An operation's own problem (`Err(ApiError)`) is passed on as written.
//! A JSON body whose top-level fields have the wrong JSON type is refused (422)
//! before any operation runs: poem-openapi would read `false` into a string field.
//!
//! The access log names the operation (its `operationId`), never the raw path or
//! query, so nothing a client typed into a URL reaches the log.

use std::time::Instant;

use kernel::{ClientInfo, RequestId};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::OperationId;
use poem_openapi::error::{ParsePathError, ParseRequestPayloadError};

use crate::problem::{Culprit, PROBLEM_JSON, Problem};
use crate::routes::RouteTable;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being served on this task, if any.
#[must_use]
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(|id| *id).ok()
}

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The edge middleware. See the module docs.
#[derive(Debug, Clone)]
pub struct Edge {
    routes: std::sync::Arc<RouteTable>,
    max_body_bytes: usize,
    country_header: Option<std::sync::Arc<str>>,
}

impl Edge {
    /// The edge for an API whose paths and methods are `routes`, refusing bodies
    /// over `max_body_bytes` with 413.
    #[must_use]
    pub fn new(routes: RouteTable, max_body_bytes: usize) -> Self {
        Self {
            routes: std::sync::Arc::new(routes),
            max_body_bytes,
            country_header: None,
        }
    }

    /// Reads the client's country from `header`, set by a trusted proxy. Only an
    /// ISO two-letter code is kept.
    #[must_use]
    pub fn with_country_header(mut self, header: Option<&str>) -> Self {
        self.country_header = header.map(Into::into);
        self
    }
}

impl<E: Endpoint> Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        EdgeEndpoint {
            inner,
            routes: self.routes.clone(),
            max_body_bytes: self.max_body_bytes,
            country_header: self.country_header.clone(),
        }
    }
}

/// The endpoint produced by [`Edge`].
#[derive(Debug)]
pub struct EdgeEndpoint<E> {
    inner: E,
    routes: std::sync::Arc<RouteTable>,
    max_body_bytes: usize,
    country_header: Option<std::sync::Arc<str>>,
}

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let request_id = RequestId::new();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let client = ClientInfo::new(
            req.remote_addr()
                .as_socket_addr()
                .map(std::net::SocketAddr::ip),
            req.headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        )
        .with_country(
            self.country_header
                .as_deref()
                .and_then(|h| req.headers().get(h))
                .and_then(|v| v.to_str().ok()),
        );
        req.extensions_mut().insert(request_id);
        req.extensions_mut().insert(client);

        let (outcome, body) = match buffer_body(req, self.max_body_bytes).await {
            Ok((_, body))
                if let Some(fault) =
                    self.routes
                        .type_fault(method.as_str(), &path, body.as_ref()) =>
            {
                let problem =
                    REQUEST_ID.sync_scope(request_id, || Problem::from_body_fault(&fault));
                (Ok(problem_response(&problem)), Some(body))
            }
            Ok((req, body)) => (
                REQUEST_ID
                    .scope(request_id, self.inner.call(req))
                    .await
                    .map(IntoResponse::into_response),
                Some(body),
            ),
            Err(err) => (Err(err), None),
        };
        let (mut resp, operation) = match outcome {
            Ok(resp) => {
                let resp = resp.into_response();
                let op = resp.data::<OperationId>().map(|op| op.0);
                (resp, op)
            }
            // An operation's own error (`Err(ApiError)`): poem-openapi wraps its
            // response in a poem::Error; answer with that response as written.
            Err(err) if err.is_from_response() => {
                let op = err.data::<OperationId>().map(|op| op.0);
                (err.into_response(), op)
            }
            Err(err) => {
                let op = err.data::<OperationId>().map(|op| op.0);
                let body = body.as_ref().map_or(&[][..], AsRef::as_ref);
                let culprit = self.culprit(&err, method.as_str(), &path, body);
                let problem = REQUEST_ID
                    .sync_scope(request_id, || Problem::from_poem_error_with(&err, &culprit));
                if problem.status >= 500 {
                    tracing::error!(request_id = %request_id, error = %err, "request failed");
                }
                (problem_response(&problem), op)
            }
        };

        if resp.status().is_client_error() || resp.status().is_server_error() {
            resp = ensure_problem(resp, request_id);
        }
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self.routes.allow(&path)
            && let Ok(value) = HeaderValue::from_str(&allow)
        {
            resp.headers_mut().insert(header::ALLOW, value);
        }
        set_security_headers(&mut resp, request_id);

        let status = resp.status().as_u16();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            request_id = %request_id,
            method = %method,
            operation = operation.unwrap_or("unmatched"),
            status,
            elapsed_ms,
            "request"
        );
        Ok(resp)
    }
}

impl<E> EdgeEndpoint<E> {
    /// Names, from the spec, the path parameter or body fields `err` is about.
    fn culprit<'a>(
        &'a self,
        err: &poem::Error,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Culprit<'a> {
        let mut culprit = Culprit::default();
        if err.is::<ParsePathError>() {
            culprit.path_params = self.routes.path_params(path);
        }
        if err.is::<ParseRequestPayloadError>() {
            culprit.body = self.routes.body_fault(method, path, body);
        }
        culprit
    }
}

/// Reads the body, refusing one over `max` bytes with 413: at once when
/// `Content-Length` says so, otherwise (chunked, or HTTP/2 without a length) on
/// reading its byte `max + 1`. Returns the request with its body restored and the
/// bytes, kept to name the fields at fault if the body is rejected.
async fn buffer_body(
    mut req: Request,
    max: usize,
) -> poem::Result<(Request, impl AsRef<[u8]> + Send + use<>)> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let bytes = req.take_body().into_bytes_limit(max).await?;
    req.set_body(bytes.clone());
    req.extensions_mut().insert(RawBody::new(bytes.clone()));
    Ok((req, bytes))
}

/// The request body exactly as received, kept by the edge for the operations that
/// must see the bytes themselves: a processor webhook's signature covers them,
/// and an `Idempotency-Key`'s fingerprint is taken over them.
#[derive(Clone)]
pub struct RawBody(std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>);

impl RawBody {
    fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(bytes))
    }

    /// The bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        (*self.0).as_ref()
    }

    /// The body of `req`, as the edge read it (empty when the edge did not run).
    #[must_use]
    pub fn of(req: &Request) -> &[u8] {
        req.extensions().get::<Self>().map_or(&[], Self::bytes)
    }
}

impl std::fmt::Debug for RawBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may hold anything the client sent: only its size is shown.
        write!(f, "RawBody({} bytes)", self.bytes().len())
    }
}

/// A response carrying `problem`.
pub fn problem_response(problem: &Problem) -> Response {
    let body = serde_json::json!({
        "type": problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "request_id": problem.request_id,
    });
    Response::builder()
        .status(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(PROBLEM_JSON)
        .body(body.to_string())
}

/// Replaces a non-problem error body (a panic, a middleware's plain text) by the
/// problem for its status. Problem bodies written by handlers pass unchanged.
fn ensure_problem(resp: Response, request_id: RequestId) -> Response {
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return resp;
    }
    let status = resp.status();
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let err = poem::Error::from_status(status);
    let problem = REQUEST_ID.sync_scope(request_id, || Problem::from_poem_error(&err));
    let mut replaced = problem_response(&problem);
    if let Some(value) = retry_after {
        replaced.headers_mut().insert(header::RETRY_AFTER, value);
    }
    replaced
}

fn set_security_headers(resp: &mut Response, request_id: RequestId) {
    let headers = resp.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests;
