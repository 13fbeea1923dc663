//! The ceiling of `GET /me`: a bare poem-openapi server whose one handler verifies the
//! access token with the project's own codec (`adapter-jwt`, HS256, the same `kid`, `typ`,
//! `iss`, `aud` and `exp` checks) and answers the claims, with no store call, no middleware
//! and no configuration beyond the keys. `bench/run.sh` drives it with the same wrk script
//! as the service in the same run, and reports every figure as a ratio to it (issue 16).
//!
//! ```text
//! ACCESS_SECRET=… REFRESH_SECRET=… target/release/deps/bare_server-… --listen 127.0.0.1:8081
//! ```
//!
//! `JWT_ISSUER` and `JWT_AUDIENCE` default to the service's (`jwt-todo`), so a token from
//! the service's `POST /login` with the same `ACCESS_SECRET` verifies here. Under
//! `cargo bench` (which passes `--bench` and no address) it prints a note and exits: it is
//! a server, not a measurement of its own.

use std::sync::Arc;

use adapter_jwt::{JwtCodec, JwtConfig};
use adapter_memory::SystemClock;
use application::ports::{Clock, TokenCodec};
use clap::Parser;
use poem::listener::TcpListener;
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService, SecurityScheme};
use secrecy::SecretSlice;

#[derive(Parser, Debug)]
#[command(about = "A bare poem-openapi GET /me (JWT verify, no store): the benchmark's ceiling")]
struct Args {
    /// Address to serve on; without it (as under `cargo bench`), nothing is served.
    #[arg(long)]
    listen: Option<String>,
    /// Signs (and here, verifies) access tokens: the service's ACCESS_SECRET.
    #[arg(
        long,
        env = "ACCESS_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    access_secret: String,
    /// Only to build the codec (it refuses a configuration without a distinct one).
    #[arg(
        long,
        env = "REFRESH_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    refresh_secret: String,
    #[arg(long, env = "JWT_ISSUER", default_value = "jwt-todo")]
    jwt_issuer: String,
    #[arg(long, env = "JWT_AUDIENCE", default_value = "jwt-todo")]
    jwt_audience: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

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

struct Api {
    tokens: JwtCodec,
    clock: Arc<dyn Clock>,
}

#[OpenApi]
impl Api {
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let Some(listen) = args.listen else {
        println!("bare_server: a server for bench/run.sh (--listen ADDR); nothing to measure here");
        return Ok(());
    };
    if args.access_secret.is_empty() || args.refresh_secret.is_empty() {
        return Err(std::io::Error::other(
            "ACCESS_SECRET and REFRESH_SECRET are required (the service's)",
        ));
    }
    let tokens = JwtCodec::new(JwtConfig::new(
        SecretSlice::from(args.access_secret.into_bytes()),
        SecretSlice::from(args.refresh_secret.into_bytes()),
        args.jwt_issuer,
        args.jwt_audience,
    ))
    .map_err(|e| std::io::Error::other(format!("JWT configuration: {e}")))?;
    let api = OpenApiService::new(
        Api {
            tokens,
            clock: Arc::new(SystemClock),
        },
        "bare",
        "1",
    );
    poem::Server::new(TcpListener::bind(listen)).run(api).await
}
