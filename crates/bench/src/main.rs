//! `doetank-bench`: every scenario with its baseline (the limit) and, where one exists, its peers,
//! measured in the same run on the same machine, on SQLite and on PostgreSQL. Ratios, not timed
//! tests: see the README's "Benchmarks".

mod append;
mod db;
mod fanout;
mod fanout_client;
mod fanout_limit;
mod peer;
mod query;
mod replay;
mod report;

/// The allocator the `doetank` binary runs with, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::db::Backend;
use crate::report::Report;

#[derive(Parser, Debug)]
#[command(name = "doetank-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every scenario on SQLite and PostgreSQL.
    All(Options),
    Append(Options),
    Replay(Options),
    Query(Options),
    Fanout(Options),
    /// Internal: the server process the fan-out scenario measures.
    #[command(hide = true)]
    ServeChild {
        database_url: String,
        /// Serve the fan-out baseline instead of doetank.
        #[arg(long)]
        limit: bool,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// A smoke run that finishes in about a minute.
    #[arg(long)]
    quick: bool,
    /// PostgreSQL server to benchmark on (fresh databases are created in it); `none` to skip.
    /// Without TLS by default: on loopback it only measures encryption (with `sslmode=prefer`
    /// and the server offering TLS, the trivial query lost about a seventh of its throughput).
    #[arg(
        long,
        env = "DOETANK_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    )]
    postgres_url: String,
    /// Where the figures go as JSON.
    #[arg(long, default_value = "target/bench.json")]
    json: std::path::PathBuf,
    /// Events for the replay scenario (default 1,000,000; 10,000 with --quick).
    #[arg(long)]
    replay_events: Option<usize>,
    /// Subscriber counts for the fan-out scenario (default 1000,10000; 200 with --quick).
    #[arg(long, value_delimiter = ',')]
    subscribers: Option<Vec<usize>>,
    /// Query scenario: ask only the questions whose subject contains this text (the trivial
    /// baseline is always measured), e.g. to profile one of them.
    #[arg(long)]
    only: Option<String>,
    /// Command rates (per second) of the fan-out scenario, each measured in turn on the same
    /// subscribers, sent on schedule whether or not earlier commands have been answered.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 20])]
    fanout_rates: Vec<u64>,
    /// Skip SQLite and measure PostgreSQL only (with `--postgres-url none`, nothing is skipped).
    #[arg(long)]
    postgres_only: bool,
}

impl Options {
    pub fn duration(&self) -> Duration {
        if self.quick {
            Duration::from_millis(400)
        } else {
            Duration::from_secs(8)
        }
    }

    /// The fan-out's rates; a quick run only checks that the first works.
    pub fn fanout_rates(&self) -> Vec<u64> {
        let rates = self.fanout_rates.iter().copied();
        rates.take(if self.quick { 1 } else { usize::MAX }).collect()
    }

    async fn backends(&self) -> Vec<Backend> {
        let mut out =
            if self.postgres_only && self.postgres_url != "none" { vec![] } else { vec![Backend::Sqlite] };
        if self.postgres_url != "none" {
            match sqlx::PgPool::connect(&self.postgres_url).await {
                Ok(pool) => {
                    pool.close().await;
                    out.push(Backend::Postgres(self.postgres_url.clone()));
                }
                Err(err) => eprintln!("PostgreSQL at {} unreachable ({err}); SQLite only", self.postgres_url),
            }
        }
        out
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Quiet unless RUST_LOG asks (e.g. `RUST_LOG=sqlx::query=debug` times every statement).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let _ = rlimit::increase_nofile_limit(1 << 20);
    let (options, which): (Options, &[&str]) = match cli.command {
        Command::ServeChild { limit: true, .. } => return fanout_limit::serve().await,
        Command::ServeChild { database_url, .. } => return fanout::serve_child(&database_url).await,
        Command::All(o) => (o, &["append", "replay", "query", "fanout"]),
        Command::Append(o) => (o, &["append"]),
        Command::Replay(o) => (o, &["replay"]),
        Command::Query(o) => (o, &["query"]),
        Command::Fanout(o) => (o, &["fanout"]),
    };
    let mut report = Report::default();
    for backend in options.backends().await {
        for scenario in which {
            eprintln!("== {scenario} on {}", backend.name());
            let result = match *scenario {
                "append" => append::run(&backend, &options, &mut report).await,
                "replay" => replay::run(&backend, &options, &mut report).await,
                "query" => query::run(&backend, &options, &mut report).await,
                _ => fanout::run(&backend, &options, &mut report).await,
            };
            if let Err(err) = result {
                eprintln!("{scenario} on {} failed: {err:#}", backend.name());
                report.failed(scenario, backend.name(), &format!("{err:#}"));
            }
        }
    }
    report.print();
    report.write_json(&options.json)?;
    eprintln!("figures written to {}", options.json.display());
    Ok(())
}
