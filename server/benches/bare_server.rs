//! The ceiling of `GET /me`: the bare poem-openapi API of `common/bare.rs` (the project's
//! JWT check, no store call, no middleware) as a server. `bench/run.sh` drives it with the same wrk script
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
use clap::Parser;
use poem::listener::TcpListener;
use secrecy::SecretSlice;

#[path = "common/bare.rs"]
mod bare;

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
    poem::Server::new(TcpListener::bind(listen))
        .run(bare::bare_api(Arc::new(tokens)))
        .await
}
