//! `doetank`: the command line of the doetank event store and GraphQL server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use doetank_store::{EventStore, DEFAULT_DATABASE_URL};

#[derive(Parser, Debug)]
#[command(
    name = "doetank",
    version,
    about = "Event-sourced GraphQL backend for a network of public-sector innovators"
)]
struct Cli {
    /// Database URL: `sqlite:PATH` (the embedded default) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or upgrade the event log and read-model tables.
    Migrate,
}

fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "doetank failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let store = EventStore::connect(&cli.database_url).await?;
            store.migrate().await?;
            let head = store.head_position().await?;
            println!("migrated {} (log head at position {head})", store.backend_name());
            Ok(())
        }
    }
}
