//! Liveness and readiness, for load balancers.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::common::{Answer, Svc, Tag, failed};
use crate::contract::Readiness;
use crate::dto;
use crate::ops::Operations;
use crate::problem::Failure;

#[derive(ApiResponse)]
enum HealthResponse {
    #[oai(status = 200)]
    Ok(Json<dto::HealthResponse>),
}

/// The operations of the `Health` tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// Liveness
    ///
    /// The process is up and serving. Unauthenticated and cheap.
    #[oai(
        path = "/healthz",
        method = "get",
        tag = "Tag::Health",
        operation_id = "healthz"
    )]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Ok(Json(dto::HealthResponse {
            status: "ok".into(),
        }))
    }

    /// Readiness
    ///
    /// 200 while this instance can serve: its store answers and its background workers
    /// (the notification worker) run. 503 otherwise, so a load balancer sends traffic
    /// elsewhere until it recovers. Unauthenticated and cheap.
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "Tag::Health",
        operation_id = "readyz"
    )]
    async fn readyz(
        &self,
        services: Svc<'_>,
        operations: Data<&Arc<Operations>>,
    ) -> Answer<HealthResponse, Readiness> {
        services.readiness.execute().await.map_err(failed)?;
        if let Some(failing) = operations.not_ready() {
            return Err(failed(Failure::not_ready(failing)));
        }
        Ok(HealthResponse::Ok(Json(dto::HealthResponse {
            status: "ready".into(),
        })))
    }
}
