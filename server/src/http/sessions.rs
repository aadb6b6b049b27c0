//! `/auth/sessions`: the caller's sessions (devices).

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::models::{ApiTags, Session};
use super::problem::problem_responses;
use super::security::AccessToken;
use super::state::AppState;

pub struct SessionsApi;

#[derive(ApiResponse)]
pub enum ListResponse {
    /// The caller's live sessions, newest login first.
    #[oai(status = 200)]
    Ok(Json<Vec<Session>>),
}

#[derive(ApiResponse)]
pub enum RevokedResponse {
    /// Revoked: its refresh tokens no longer work.
    #[oai(status = 204)]
    NoContent,
}

problem_responses!(ListError(bearer): 401, 503);
problem_responses!(RevokeOneError(bearer): 401, 404, 503);
problem_responses!(RevokeAllError(bearer): 401, 503);

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// List my sessions
    ///
    /// Every live session (one per login, on whatever device) of the access
    /// token's user, with `current: true` on the one making the call.
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: AccessToken,
    ) -> Result<ListResponse, ListError> {
        let mut sessions = state.sessions.list(&auth.0.sub, &auth.0.sid).await?;
        if state.faults.has(crate::faults::Fault::SessionsOldestFirst) {
            sessions.reverse();
        }
        Ok(ListResponse::Ok(Json(
            sessions.into_iter().map(Into::into).collect(),
        )))
    }

    /// Revoke one of my sessions
    ///
    /// Revokes the session (its whole refresh-token family): that device is
    /// logged out at its next refresh. Another user's, an unknown and an
    /// already revoked id are all 404 `session_not_found` (never 403), so
    /// nothing about other users' sessions is revealed.
    #[oai(
        path = "/auth/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke_one(
        &self,
        state: Data<&AppState>,
        auth: AccessToken,
        /// The session id (`id` from the list, `sid` of an access token).
        id: Path<String>,
    ) -> Result<RevokedResponse, RevokeOneError> {
        state.sessions.revoke_own(&auth.0.sub, &id.0).await?;
        Ok(RevokedResponse::NoContent)
    }

    /// Log out everywhere
    ///
    /// Revokes every session of the user, this one included. Access tokens
    /// already issued stay valid until they expire.
    #[oai(
        path = "/auth/sessions",
        method = "delete",
        operation_id = "revokeAllSessions"
    )]
    async fn revoke_all(
        &self,
        state: Data<&AppState>,
        auth: AccessToken,
    ) -> Result<RevokedResponse, RevokeAllError> {
        state.sessions.revoke_all(&auth.0.sub).await?;
        Ok(RevokedResponse::NoContent)
    }
}
