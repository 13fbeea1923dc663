//! `server`: run jwt-todo, or print its OpenAPI document.

use clap::{Parser, Subcommand};
use server::{Application, Config};
use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,poem=warn")),
        )
        .init();
    let config = Config::from_env_and_dotenv()?;
    let environment = config.environment;
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), ?environment, "jwt-todo listening");
    app.run_until_stopped().await?;
    Ok(())
}
