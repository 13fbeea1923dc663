//! `server`: run jwt-todo, or print its OpenAPI document.

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use server::{Application, Config};

#[derive(Parser)]
#[command(
    name = "server",
    version,
    about = "jwt-todo: a todo API behind JWT access + refresh tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). Configured by environment variables; see README.md.
    Serve,
    /// Print the OpenAPI document and exit.
    Openapi {
        /// YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
    /// Ask the server at BIND_ADDR whether it is ready (GET /readyz); exit 0 if so.
    /// For container HEALTHCHECKs in images without curl.
    Healthcheck,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi { yaml } => {
            let service = adapter_http::openapi_service();
            println!(
                "{}",
                if yaml {
                    service.spec_yaml()
                } else {
                    service.spec()
                }
            );
            std::process::ExitCode::SUCCESS
        }
        Command::Healthcheck => match healthcheck() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("not ready: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Serve => match serve().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env_and_dotenv()?;
    server::telemetry::init(config.log_format)?;
    let environment = config.environment;
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), ?environment, "jwt-todo listening");
    app.run_until_stopped().await?;
    Ok(())
}

/// `GET /readyz` on the configured address over plain TCP: 200 is ready.
fn healthcheck() -> anyhow::Result<()> {
    let config = Config::from_env_and_dotenv()?;
    let mut addr = config.bind_addr;
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
