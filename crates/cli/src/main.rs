//! `doetank`: the command line of the doetank event store and GraphQL server.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use doetank_api::App;
use doetank_store::{EventStore, DEFAULT_DATABASE_URL};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

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
    /// Serve GraphQL (POST /graphql), the playground (GET /graphql) and /healthz.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// On an empty database, load the network's documented history first.
        #[arg(long)]
        demo: bool,
    },
    /// Drop every read model and rebuild it from the log.
    Rebuild,
    /// Print the GraphQL schema (SDL), as `schema.graphql` holds it.
    Schema,
}

fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
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

async fn open(url: &str) -> anyhow::Result<App> {
    let store = EventStore::connect(url).await.with_context(|| format!("cannot open {url}"))?;
    store.migrate().await?;
    Ok(App::new(store))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let app = open(&cli.database_url).await?;
            let head = app.store.head_position().await?;
            println!("migrated {} (log head at position {head})", app.store.backend_name());
        }
        Command::Schema => print!("{}", doetank_api::graphql::sdl()),
        Command::Rebuild => {
            let app = open(&cli.database_url).await?;
            let head = app.store.head_position().await?;
            let bar = ProgressBar::new(head.max(0) as u64).with_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let position = app.projector.rebuild(&|p| bar.set_position(p.max(0) as u64)).await?;
            bar.finish();
            println!("rebuilt the read models up to position {position}");
        }
        Command::Serve { listen, demo } => {
            let app = open(&cli.database_url).await?;
            app.projector.catch_up().await?;
            if demo {
                doetank_api::demo::load(&app).await?;
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            println!("doetank is serving {} on http://{addr}", app.store.backend_name());
            println!("  playground: http://{addr}/graphql");
            let (stop, shutdown) = watch::channel(false);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::info!("shutting down");
                    let _ = stop.send(true);
                }
            });
            doetank_api::server::serve(app, listener, shutdown).await?;
        }
    }
    Ok(())
}
