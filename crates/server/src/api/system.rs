//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the
//! database answers and its schema is current) probes. Public by design.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::ApiTags;
use crate::problem::{ProbeError, Problem, ProblemKind};
use crate::state::AppState;

/// The system probes.
#[derive(Debug)]
pub struct SystemApi {
    state: AppState,
}

impl SystemApi {
    /// The probes over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The process is alive.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// The service can serve requests.
#[derive(Debug, Object)]
pub struct Readiness {
    /// Always `ready`.
    pub status: String,
    /// The database engine: `sqlite` or `postgres`.
    pub database: String,
}

/// Liveness answer.
#[derive(Debug, ApiResponse)]
pub enum HealthResponse {
    /// The process answers.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

/// Readiness answer.
#[derive(Debug, ApiResponse)]
pub enum ReadinessResponse {
    /// The database answers and every migration is applied.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
}

#[OpenApi(tag = "ApiTags::System")]
impl SystemApi {
    /// Liveness: the process answers.
    #[oai(path = "/healthz", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> HealthResponse {
        HealthResponse::Ok(Json(Health {
            status: "ok".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }))
    }

    /// Readiness: the database answers and its schema is current.
    #[oai(path = "/readyz", method = "get", operation_id = "getReadiness")]
    async fn readiness(&self) -> Result<ReadinessResponse, ProbeError> {
        let db = self.state.database();
        let unavailable = |detail: &str| {
            ProbeError::Unavailable(Json(Problem::new(ProblemKind::Unavailable, detail)))
        };
        if let Err(err) = db.ping().await {
            tracing::warn!(error = %err, "readiness: database unreachable");
            return Err(unavailable("The database is unreachable."));
        }
        match db.has_pending_migrations().await {
            Ok(false) => Ok(ReadinessResponse::Ready(Json(Readiness {
                status: "ready".to_owned(),
                database: db.backend().as_str().to_owned(),
            }))),
            Ok(true) => Err(unavailable("The database schema has pending migrations.")),
            Err(err) => {
                tracing::warn!(error = %err, "readiness: migration status unreadable");
                Err(unavailable("The database is unreachable."))
            }
        }
    }
}
