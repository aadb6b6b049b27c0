//! `/healthz` and `/readyz`.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::error::ApiError;
use super::models::{ApiTags, Health};
use super::problem::problem_responses;
use super::state::AppState;
use crate::domain::AuthError;
use crate::storage::{self, StorageError};

pub struct HealthApi;

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Up.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

problem_responses!(NotReady: 503);

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// 200 while the process runs; touches nothing else.
    #[oai(path = "/healthz", method = "get", operation_id = "getHealth")]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Ok(Json(Health {
            status: "ok".to_owned(),
        }))
    }

    /// Readiness
    ///
    /// 200 when the database answers; 503 `service_unavailable` when it does not.
    #[oai(path = "/readyz", method = "get", operation_id = "getReadiness")]
    async fn readyz(&self, state: Data<&AppState>) -> Result<HealthResponse, NotReady> {
        if storage::ping(&state.db).await {
            Ok(HealthResponse::Ok(Json(Health {
                status: "ok".to_owned(),
            })))
        } else {
            Err(
                ApiError::Domain(AuthError::Storage(StorageError::Unavailable(
                    sea_orm::DbErr::Custom("the database did not answer a ping".to_owned()),
                )))
                .into(),
            )
        }
    }
}
