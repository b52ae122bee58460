//! The edge's error mapping, driven through the real middleware stack with a
//! test-only API that has what the spine's public API does not yet: a JSON body,
//! a UUID path parameter and a handler that panics.

use poem::http::{HeaderMap, StatusCode, header};
use poem::middleware::CatchPanic;
use poem::test::{TestClient, TestResponse};
use poem::{Body, Endpoint, EndpointExt, Route};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService};
use serde_json::Value;

use super::{Edge, REQUEST_ID_HEADER};
use crate::problem::{ApiError, PROBLEM_JSON, ProblemKind};
use crate::routes::RouteTable;

/// Small, so an oversized body is cheap to build.
const MAX_BODY: usize = 1024;

/// Health data a client might send where it does not belong.
const DIAGNOSIS: &str = "F32.1 major depressive";

#[derive(Debug, Object)]
struct NewThing {
    name: String,
    count: u32,
}

#[derive(Debug, Object)]
struct Thing {
    id: uuid::Uuid,
    name: String,
    count: u32,
}

#[derive(Debug, ApiResponse)]
enum Created {
    #[oai(status = 201)]
    Created(Json<Thing>),
}

#[derive(Debug, ApiResponse)]
enum Found {
    #[oai(status = 200)]
    Found(Json<Thing>),
}

#[derive(Debug)]
struct ThingsApi;

#[OpenApi]
impl ThingsApi {
    #[oai(path = "/v1/things", method = "post", operation_id = "createThing")]
    async fn create(&self, body: Json<NewThing>) -> Result<Created, ApiError> {
        Ok(Created::Created(Json(Thing {
            id: uuid::Uuid::nil(),
            name: body.0.name,
            count: body.0.count,
        })))
    }

    #[oai(
        path = "/v1/things/:thing_id",
        method = "get",
        operation_id = "getThing"
    )]
    async fn get(
        &self,
        #[oai(name = "thing_id")] thing_id: Path<uuid::Uuid>,
    ) -> Result<Found, ApiError> {
        if thing_id.0.is_nil() {
            Ok(Found::Found(Json(Thing {
                id: thing_id.0,
                name: "nil".to_owned(),
                count: 0,
            })))
        } else {
            Err(ApiError::new(ProblemKind::NotFound, "No such thing."))
        }
    }

    #[oai(path = "/v1/panic", method = "get", operation_id = "panics")]
    async fn panics(&self) -> Result<Found, ApiError> {
        panic!("{DIAGNOSIS} leaked into a panic message")
    }
}

/// The test API behind the same stack as [`crate::app::endpoint`].
fn client() -> TestClient<impl Endpoint> {
    let service = OpenApiService::new(ThingsApi, "t", "1");
    let spec = service.spec();
    TestClient::new(
        Route::new()
            .nest("/", service)
            .with(CatchPanic::new())
            .with(Edge::new(RouteTable::from_spec(&spec), MAX_BODY)),
    )
}

/// A problem answer as the client sees it.
#[derive(Debug)]
struct Answer {
    headers: HeaderMap,
    raw: String,
    body: Value,
}

/// Checks everything every problem must have, and returns it for more checks.
async fn problem(resp: TestResponse, status: StatusCode, kind: &str) -> Answer {
    let resp = resp.0;
    assert_eq!(resp.status(), status);
    let headers = resp.headers().clone();
    let raw = resp.into_body().into_string().await.expect("a UTF-8 body");
    assert_eq!(
        headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(PROBLEM_JSON.as_bytes()),
        "content type of {raw}"
    );
    let body: Value = serde_json::from_str(&raw).expect("a JSON problem");
    for field in ["type", "title", "status", "detail", "request_id"] {
        assert!(
            body.get(field).is_some(),
            "the problem lacks {field}: {raw}"
        );
    }
    assert_eq!(
        body["type"],
        format!("urn:custodia:problem:{kind}"),
        "{raw}"
    );
    assert_eq!(body["status"], status.as_u16(), "{raw}");
    let id = headers
        .get(REQUEST_ID_HEADER)
        .expect("X-Request-Id")
        .to_str()
        .expect("an ASCII request id");
    assert!(!id.is_empty());
    assert_eq!(body["request_id"], id, "body and header ids agree");
    assert_eq!(
        headers.get(header::CACHE_CONTROL).expect("Cache-Control"),
        "no-store"
    );
    assert_eq!(
        headers
            .get(header::X_CONTENT_TYPE_OPTIONS)
            .expect("nosniff"),
        "nosniff"
    );
    Answer { headers, raw, body }
}

fn detail(answer: &Answer) -> &str {
    answer.body["detail"].as_str().expect("a string detail")
}

async fn post_json(body: &'static str) -> TestResponse {
    client()
        .post("/v1/things")
        .content_type("application/json")
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn a_valid_body_passes_through_the_edge_intact() {
    let resp = post_json(r#"{"name":"x","count":3}"#).await;
    resp.assert_status(StatusCode::CREATED);
    resp.assert_json(serde_json::json!({"id": uuid::Uuid::nil(), "name": "x", "count": 3}))
        .await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let answer = problem(
        post_json(r#"{"name":"#).await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    assert!(
        !answer.raw.contains("line 1"),
        "parser detail leaked: {}",
        answer.raw
    );
}

#[tokio::test]
async fn a_missing_field_is_422_and_named() {
    let answer = problem(
        post_json(r#"{"name":"x"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert!(detail(&answer).contains("`count`"), "{}", answer.raw);
}

#[tokio::test]
async fn a_wrong_type_is_422_and_never_echoes_the_value() {
    let answer = problem(
        post_json(r#"{"name":"x","count":"F32.1 major depressive"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert!(
        !answer.raw.contains("F32.1"),
        "input echoed: {}",
        answer.raw
    );
    assert!(
        !answer.raw.contains("depressive"),
        "input echoed: {}",
        answer.raw
    );
    assert!(detail(&answer).contains("`count`"), "{}", answer.raw);
}

#[tokio::test]
async fn a_bad_uuid_in_the_path_is_400_naming_the_parameter() {
    let resp = client().get("/v1/things/not-a-uuid").send().await;
    let answer = problem(resp, StatusCode::BAD_REQUEST, "bad-request").await;
    assert!(detail(&answer).contains("thing_id"), "{}", answer.raw);
    assert!(
        !answer.raw.contains("param0"),
        "internal name leaked: {}",
        answer.raw
    );
    assert!(
        !answer.raw.contains("not-a-uuid"),
        "input echoed: {}",
        answer.raw
    );
}

#[tokio::test]
async fn a_handlers_own_problem_carries_the_request_id() {
    client()
        .get(format!("/v1/things/{}", uuid::Uuid::nil()))
        .send()
        .await
        .assert_status_is_ok();
    let resp = client()
        .get(format!("/v1/things/{}", uuid::Uuid::max()))
        .send()
        .await;
    let answer = problem(resp, StatusCode::NOT_FOUND, "not-found").await;
    assert_eq!(detail(&answer), "No such thing.");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let resp = client()
        .post("/v1/things")
        .content_type("text/plain")
        .body(DIAGNOSIS)
        .send()
        .await;
    let answer = problem(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    assert!(
        !answer.raw.contains("text/plain"),
        "input echoed: {}",
        answer.raw
    );
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let resp = client().get("/v1/patients/Jane-Doe").send().await;
    let answer = problem(resp, StatusCode::NOT_FOUND, "not-found").await;
    assert!(!answer.raw.contains("Jane"), "input echoed: {}", answer.raw);
    assert!(answer.headers.get(header::ALLOW).is_none());
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let resp = client().delete("/v1/things").send().await;
    let answer = problem(resp, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
    let allow = answer
        .headers
        .get(header::ALLOW)
        .expect("an Allow header")
        .to_str()
        .expect("ASCII");
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    assert!(methods.contains(&"POST"), "Allow: {allow}");
    assert!(!methods.contains(&"DELETE"), "Allow: {allow}");
}

#[tokio::test]
async fn a_panic_is_500_and_its_message_stays_inside() {
    let resp = client().get("/v1/panic").send().await;
    let answer = problem(resp, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert!(
        !answer.raw.contains("F32.1"),
        "panic message leaked: {}",
        answer.raw
    );
    assert!(
        !answer.raw.contains("panic"),
        "panic message leaked: {}",
        answer.raw
    );
}

/// A body of `len` bytes with no `Content-Length`, as a chunked HTTP/1.1 upload
/// or an HTTP/2 stream arrives.
fn streamed(len: usize) -> Body {
    Body::from_async_read(std::io::Cursor::new(vec![b' '; len]))
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let resp = client()
        .post("/v1/things")
        .content_type("application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(streamed(MAX_BODY + 1))
        .send()
        .await;
    problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

#[tokio::test]
async fn a_streamed_body_without_any_length_header_is_limited_too() {
    let resp = client()
        .post("/v1/things")
        .content_type("application/json")
        .body(streamed(MAX_BODY + 1))
        .send()
        .await;
    problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_reading() {
    let resp = client()
        .post("/v1/things")
        .content_type("application/json")
        .header(header::CONTENT_LENGTH, (MAX_BODY + 1).to_string())
        .body(Body::empty())
        .send()
        .await;
    problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

#[tokio::test]
async fn a_streamed_body_at_the_limit_reaches_the_handler() {
    let json = br#"{"name":"x","count":3}"#;
    let mut padded = json.to_vec();
    padded.resize(MAX_BODY, b' ');
    let resp = client()
        .post("/v1/things")
        .content_type("application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_async_read(std::io::Cursor::new(padded)))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
}
