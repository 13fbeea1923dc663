//! `server`: run jwt-todo, or print its OpenAPI document.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use server::Config;
use server::config::{self, Settings};

#[derive(Parser)]
#[command(
    name = "server",
    version,
    about = "jwt-todo: a todo API behind JWT access + refresh tokens",
    after_help = "Configured by environment variables (and ./.env): `server serve --help` lists them all."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). Every setting is an environment variable (also read
    /// from ./.env, never over the environment) or the flag named after it; a bad value
    /// stops the server, naming the variable.
    Serve(Box<Settings>),
    /// Print the OpenAPI document and exit.
    Openapi {
        /// YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
    /// Ask the server at BIND_ADDR whether it is ready (GET /readyz); exit 0 if so.
    /// For container HEALTHCHECKs in images without curl.
    Healthcheck,
    /// Print a new OAuth client secret (give it to the client) and its SHA-256 digest (put
    /// it in OAUTH_CLIENTS as `client_secret_sha256`), then exit.
    OauthSecret,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The environment, then ./.env: the only source of values (see `server::config`).
    let lookup = match config::env_and_dotenv() {
        Ok(lookup) => lookup,
        Err(e) => return failure(&e),
    };
    let command = Cli::command().mut_subcommand("serve", |serve| config::bind(serve, &lookup));
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        // Help from the command as declared, which shows each variable and its default
        // rather than the values just looked up.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Cli::command().get_matches();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::ValueValidation => {
            return failure(&config::from_clap(&e));
        }
        Err(e) => e.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (config, healthcheck_only) = match cli.command {
        Some(Command::Openapi { yaml }) => {
            let service = adapter_http::openapi_service();
            println!(
                "{}",
                if yaml {
                    service.spec_yaml()
                } else {
                    service.spec()
                }
            );
            return ExitCode::SUCCESS;
        }
        Some(Command::OauthSecret) => {
            let secret = server::oauth_secret();
            println!("client_secret={}", secret.secret);
            println!("client_secret_sha256={}", secret.digest);
            return ExitCode::SUCCESS;
        }
        Some(Command::Serve(settings)) => (settings.build(), false),
        Some(Command::Healthcheck) => (Config::from_lookup(&lookup), true),
        None => (Config::from_lookup(&lookup), false),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => return failure(&e),
    };
    if healthcheck_only {
        return match healthcheck(config.http.bind_addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("not ready: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&e),
    }
}

fn failure(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

async fn serve(config: Config) -> anyhow::Result<()> {
    server::telemetry::init(config.log_format)?;
    let environment = config.environment;
    let app = server::launch(config).await?;
    tracing::info!(addr = %app.local_addr(), ?environment, "jwt-todo listening");
    app.run_until_stopped().await?;
    Ok(())
}

/// `GET /readyz` on the configured address over plain TCP: 200 is ready.
fn healthcheck(mut addr: SocketAddr) -> anyhow::Result<()> {
    // A server listening on all interfaces is reached over loopback.
    if addr.ip().is_unspecified() {
        addr = match addr {
            SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], addr.port())),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        };
    }
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "{addr}/readyz answered {}",
        String::from_utf8_lossy(&head)
    );
    Ok(())
}
