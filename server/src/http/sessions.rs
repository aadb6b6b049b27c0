//! `/auth/sessions`: the caller's sessions (devices).

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::error::ApiError;
use super::models::{ApiTags, Session};
use super::problem::problem_responses;
use super::security::AccessToken;
use super::state::AppState;
use crate::domain::Timestamp;
use crate::domain::sessions::{SessionCursor, SessionPage};

pub struct SessionsApi;

#[derive(ApiResponse)]
pub enum ListResponse {
    /// A page of the caller's live sessions, newest login first.
    #[oai(status = 200)]
    Ok(
        Json<Vec<Session>>,
        /// `</auth/sessions?limit=N&cursor=C>; rel="next"` (RFC 8288) when
        /// more sessions follow; absent on the last page.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

/// The `cursor` of a next page: the last session's login time (ms) and id.
/// Clients treat it as opaque. Its pattern is published (on the `cursor`
/// parameter), so every value the document allows is one this service reads.
fn encode_cursor(cursor: &SessionCursor) -> String {
    format!("{}.{}", cursor.created_at.as_millis(), cursor.id)
}

fn decode_cursor(text: &str) -> Result<SessionCursor, ApiError> {
    let invalid = || ApiError::Validation("cursor: not a cursor this service gave out".to_owned());
    let (millis, id) = text.split_once('.').ok_or_else(invalid)?;
    if id.is_empty() {
        return Err(invalid());
    }
    Ok(SessionCursor {
        created_at: Timestamp::from_millis(millis.parse().map_err(|_| invalid())?),
        id: id.to_owned(),
    })
}

#[derive(ApiResponse)]
pub enum RevokedResponse {
    /// Revoked: its refresh tokens no longer work.
    #[oai(status = 204)]
    NoContent,
}

problem_responses!(ListError(bearer): 401, 422, 503);
problem_responses!(RevokeOneError(bearer): 401, 404, 503);
problem_responses!(RevokeAllError(bearer): 401, 503);

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// List my sessions
    ///
    /// The live sessions (one per login, on whatever device) of the access
    /// token's user, newest login first, with `current: true` on the one
    /// making the call. Paged: at most `limit` sessions (default 50, at most
    /// 100) per reply; when more follow, the `Link` header (`rel="next"`)
    /// gives the URL of the next page.
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: AccessToken,
        /// How many sessions per page: 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Where the page starts: the `cursor` of a previous reply's `Link`
        /// header; omit it for the first page.
        #[oai(validator(pattern = r"^[0-9]{1,15}\.[0-9A-Za-z-]{1,64}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<ListResponse, ListError> {
        let limit = limit.0.map_or(SessionPage::DEFAULT_LIMIT, |n| n as usize);
        let page = SessionPage {
            limit,
            after: cursor.0.as_deref().map(decode_cursor).transpose()?,
        };
        let (sessions, next) = state.sessions.list(&auth.0.sub, &auth.0.sid, page).await?;
        let link = next.map(|next| {
            format!(
                "</auth/sessions?limit={limit}&cursor={}>; rel=\"next\"",
                encode_cursor(&next)
            )
        });
        Ok(ListResponse::Ok(
            Json(sessions.into_iter().map(Into::into).collect()),
            link,
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_forgeries_are_refused() {
        let cursor = SessionCursor {
            created_at: Timestamp::from_millis(1_795_000_000_123),
            id: "6a1f0e2d-9c8b-4a7e-b6d5-c4b3a2f1e0d9".to_owned(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        for bad in ["", "12", ".abc", "12.", "x1.abc"] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
