//! The caller's sessions (logged-in devices).

use std::sync::Arc;

use domain::SessionId;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::common::{Answer, NoContent, Svc, Tag, cursor, failed, origin};
use crate::auth::BearerAuth;
use crate::client::TrustedProxies;
use crate::contract::{ListSessions, RevokeSession};
use crate::{dto, metrics};

#[derive(ApiResponse)]
enum ListSessionsResponse {
    #[oai(status = 200)]
    Ok(Json<dto::SessionPage>),
}

/// The operations of the `Sessions` tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionsApi;

#[OpenApi]
impl SessionsApi {
    /// List the caller's sessions
    ///
    /// One page, oldest first: `limit` sessions (default 100, at most 1000) and, when more
    /// follow, `next`, which passed as `cursor` gives the next page.
    #[oai(
        path = "/sessions",
        method = "get",
        tag = "Tag::Sessions",
        operation_id = "list_sessions"
    )]
    async fn list_sessions(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        /// Sessions per page: 1 to 1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Where the page starts: the `next` of the previous page; absent for the first.
        #[oai(name = "cursor")]
        after: Query<Option<String>>,
    ) -> Answer<ListSessionsResponse, ListSessions> {
        let after = cursor(after.0.as_deref(), dto::cursor::parse_session).map_err(failed)?;
        let caller = auth.caller(&services).await.map_err(failed)?;
        let page = services
            .list_sessions
            .execute(caller.principal, after, limit.0)
            .await
            .map_err(failed)?;
        Ok(ListSessionsResponse::Ok(Json(dto::SessionPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next.map(dto::cursor::session),
        })))
    }

    /// End one of the caller's sessions
    #[oai(
        path = "/sessions/:id",
        method = "delete",
        tag = "Tag::Sessions",
        operation_id = "revoke_session"
    )]
    async fn revoke_session(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Answer<NoContent, RevokeSession> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        services
            .revoke_session
            .execute(
                caller.principal,
                SessionId::from_uuid(id.0),
                Some(&origin(&proxies, req)),
            )
            .await
            .map_err(failed)?;
        metrics::sessions_revoked("session_delete", 1);
        Ok(NoContent::Done)
    }
}
