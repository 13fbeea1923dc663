//! The bare poem-openapi `GET /me` both ceilings measure: the criterion `stack` group in
//! `auth.rs` (in process) and the server `bench/run.sh` starts (`bare_server.rs`). Its one
//! handler verifies the access token with the project's own codec (`adapter-jwt`, HS256,
//! the same `kid`, `typ`, `iss`, `aud` and `exp` checks) and answers the claims, with no
//! store call, no middleware and no configuration beyond the keys.

use std::sync::Arc;

use adapter_jwt::JwtCodec;
use adapter_memory::SystemClock;
use application::ports::{Clock, TokenCodec};
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService, SecurityScheme};

#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT")]
struct BearerAuth(Bearer);

/// About the size of the service's `UserResponse`, from the token's claims alone.
#[derive(Object)]
struct MeBody {
    id: String,
    session: String,
    expires_at: i64,
}

#[derive(ApiResponse)]
enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<MeBody>),
    #[oai(status = 401)]
    Unauthorized,
}

pub struct BareApi {
    tokens: Arc<JwtCodec>,
    clock: SystemClock,
}

#[OpenApi]
impl BareApi {
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: BearerAuth) -> MeResponse {
        match self.tokens.verify_access(&auth.0.token, self.clock.now()) {
            Ok(claims) => MeResponse::Ok(Json(MeBody {
                id: claims.user_id.as_uuid().to_string(),
                session: claims.session_id.as_uuid().to_string(),
                expires_at: claims.expires_at.unix_seconds(),
            })),
            Err(_) => MeResponse::Unauthorized,
        }
    }
}

/// The bare API over `tokens`, ready to serve.
pub fn bare_api(tokens: Arc<JwtCodec>) -> OpenApiService<BareApi, ()> {
    OpenApiService::new(
        BareApi {
            tokens,
            clock: SystemClock,
        },
        "bare",
        "1",
    )
}
