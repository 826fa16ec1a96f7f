//! `doetank`: the command line of the doetank event store and GraphQL server.

/// GraphQL execution allocates many small, short-lived values on every worker thread; glibc's
/// allocator spent a fifth of a query's CPU on them (measured with `perf`), mimalloc far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use doetank_api::auth::{Auth, Role, Viewer};
use doetank_api::error::AppError;
use doetank_api::projection::{PROJECTION_VERSION, SCRATCH_CACHE_MIB};
use doetank_api::server::{AllowedOrigins, Origin, ServerConfig};
use doetank_api::visibility;
use doetank_api::App;
use doetank_store::LogFilter;
use doetank_store::{EventStore, DEFAULT_DATABASE_URL};
use futures::StreamExt;
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

    /// How log lines are written to stderr: `text` for a terminal, `json` (one object a line,
    /// with its fields) for a log collector. `RUST_LOG` picks what is logged.
    #[arg(long, value_enum, env = "DOETANK_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,

    /// MiB of pages each of a rebuild's two scratch files keeps in memory (`rebuild`, `import`,
    /// and a server that finds read models another version built). At 1,000,008 events a
    /// rebuild held 863–877 MB with 256 and 366–388 MB with 32, 0–10% slower.
    #[arg(long, value_name = "MIB", env = "DOETANK_REBUILD_CACHE_MIB", default_value_t = SCRATCH_CACHE_MIB,
          value_parser = clap::value_parser!(u32).range(1..=65_536), global = true)]
    rebuild_cache_mib: u32,

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
        /// Compute every query from the database: keep no answers or rows between requests
        /// (for a node short of memory, or to measure execution itself). Parsed query texts are
        /// still kept (at most 512): they do not depend on the data.
        #[arg(long)]
        no_keep: bool,
        /// Let pages of this origin call the API from a browser (CORS), e.g.
        /// `https://dash.example.org`; repeat it or separate origins with commas; `*` for any.
        /// Without it only same-origin pages (the playground) can.
        #[arg(
            long = "allow-origin",
            value_name = "ORIGIN",
            env = "DOETANK_ALLOW_ORIGINS",
            value_delimiter = ','
        )]
        allow_origins: Vec<Origin>,
        /// Operations one WebSocket may run at once; one more is refused with
        /// `TOO_MANY_OPERATIONS`.
        #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
        max_operations_per_socket: u32,
        /// Streams reserved (`PUT /graphql/stream`, graphql-sse's single connection mode) and not
        /// yet opened that this node holds; one more is refused with `TOO_MANY_RESERVATIONS`.
        #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
        max_unopened_reservations: u32,
        #[command(flatten)]
        keys: JwtKeys,
    },
    /// Mint a bearer token (HS256) for development and the demo.
    Token {
        /// The member id (`sub`); for facilitators and researchers any name will do.
        #[arg(long)]
        member: String,
        /// facilitator, member or researcher.
        #[arg(long)]
        role: Role,
        /// How long the token lives: 30m, 1h, 7d, ... (1s to 366d)
        #[arg(long, default_value = "1h", value_parser = doetank_api::auth::parse_ttl)]
        expires: chrono::Duration,
        /// The HS256 secret the server verifies with (at least 32 bytes).
        #[arg(long, env = "DOETANK_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
    },
    /// Drop every read model and rebuild it from the log.
    Rebuild,
    /// Print the GraphQL schema (SDL), as `schema.graphql` holds it.
    Schema,
    /// Print the log's data dictionary as JSON, as the `eventTypes` query gives it: every event
    /// type, what it records, its schema versions and a JSON Schema of its payload. For reading
    /// an export where no server runs.
    EventTypes,
    /// Write the event log, in global order, as NDJSON or CSV.
    Export {
        #[arg(long, value_enum, default_value = "ndjson")]
        format: ExportFormat,
        /// Only events after this global position (0 or more, as `/events.ndjson` takes it).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        after: i64,
        /// The file to write; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Only what anyone may see: informal doetanks' events are left out (rule 5), and no event
        /// names who sent its command nor the command's id.
        #[arg(long)]
        public: bool,
        /// Only events recorded before this time (RFC 3339, e.g. 2013-09-01T00:00:00Z): the log
        /// as it stood then, which `import` turns into the network as it stood then.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Only events recorded at or after this time (RFC 3339). Like the filters below, it
        /// makes an export for study, not one `import` takes: streams lose their beginnings.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only events of these types (`LessonRecorded,PhaseCompleted`; `doetank event-types`
        /// lists them), as `/events.ndjson?types=` takes them.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Only events of streams of these types (`doetank`, `cafe`, ...).
        #[arg(long = "stream-type", value_delimiter = ',')]
        stream_types: Vec<String>,
        /// Only the events of these streams (`doetank-<uuid>`, as the log writes them).
        #[arg(long = "stream-id", value_delimiter = ',')]
        stream_ids: Vec<String>,
    },
    /// Load an exported log (NDJSON or CSV) into an empty database and rebuild the read models.
    Import {
        /// The file `doetank export` (or `/events.ndjson`) wrote: NDJSON or CSV, told by its first
        /// byte.
        file: PathBuf,
    },
}

/// How the server verifies bearer tokens.
#[derive(clap::Args, Debug)]
struct JwtKeys {
    /// HS256 shared secret, at least 32 bytes (`openssl rand -base64 32`). Without it (and
    /// without a public key) the server makes up a secret per start, so only tokens it prints
    /// itself (with --demo) work.
    #[arg(long, env = "DOETANK_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// RS256: a PEM file with the identity provider's public key.
    #[arg(long, env = "DOETANK_JWT_PUBLIC_KEY", conflicts_with = "jwt_secret")]
    jwt_public_key: Option<PathBuf>,
}

impl JwtKeys {
    fn auth(&self) -> anyhow::Result<Auth> {
        if let Some(path) = &self.jwt_public_key {
            let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(Auth::rs256(&pem)?);
        }
        match &self.jwt_secret {
            Some(secret) => Ok(Auth::hs256(strong_enough(secret)?.as_bytes())),
            None => {
                tracing::warn!("no --jwt-secret given: using a random one; tokens die with this process");
                Ok(Auth::hs256(doetank_api::server::random_secret().as_bytes()))
            }
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Ndjson,
    Csv,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // Colours only for a terminal: a file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = causes(&err), "doetank failed");
            ExitCode::FAILURE
        }
    }
}

/// `secret`, unless it is too short to be a secret (checked here rather than by clap, whose
/// refusal would print the value).
fn strong_enough(secret: &str) -> anyhow::Result<&str> {
    doetank_api::auth::check_secret(secret).map_err(|why| anyhow::anyhow!("--jwt-secret: {why}"))?;
    Ok(secret)
}

/// The error and its causes, each said once: a layer whose message already quotes its cause
/// (as `database error: {0}` does) would otherwise repeat it, as it did until the thirty-first
/// session ("unable to open database file" three times over).
fn causes(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
    }
    text
}

/// `url` as a log line may show it: a password in it (`postgres://user:secret@host/db`) as `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// The store at `url`, migrated, and an app whose rebuilds keep `rebuild_cache_mib` of each
/// scratch file's pages in memory.
async fn open(url: &str, rebuild_cache_mib: u32) -> anyhow::Result<App> {
    let store =
        EventStore::connect(url).await.with_context(|| format!("cannot open {}", without_password(url)))?;
    store.migrate().await?;
    let mut app = App::new(store);
    app.projector = app.projector.with_scratch_cache(rebuild_cache_mib);
    Ok(app)
}

/// Ready tokens for the demo's people, valid for 12 hours; returns the researcher's, which the
/// playground starts with.
fn print_demo_tokens(auth: &Auth) -> anyhow::Result<String> {
    use doetank_api::demo::demo_id;
    let ttl = chrono::Duration::hours(12);
    println!(
        "demo tokens (send as `Authorization: Bearer <token>`, or as {{\"token\": ...}} in connection_init):"
    );
    let people = [
        ("facilitator", demo_id(1).to_string(), Role::Facilitator, "Femke Voorbeeld (fictief), Kennisland"),
        ("lead of 20/10", demo_id(3).to_string(), Role::Member, "Sanne Voorbeeld (fictief)"),
        ("lead of Hack de OR! (informal)", demo_id(5).to_string(), Role::Member, "Noor Voorbeeld (fictief)"),
        ("researcher", "researcher".to_string(), Role::Researcher, "a researcher"),
    ];
    let mut researcher = String::new();
    for (what, sub, role, who) in people {
        let token = auth.mint(&sub, role, ttl)?;
        println!("  {what} — {who}:\n    {token}");
        if role == Role::Researcher {
            researcher = token;
        }
    }
    println!("  (the playground's Headers start with the researcher's)");
    Ok(researcher)
}

/// A progress bar on standard error (hidden when `visible` is false, e.g. exporting to stdout).
fn progress(total: i64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total.max(0) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// Writes the log from `after` through `filter`. A `public` export tells what anyone may see:
/// besides rule 5's filter, no event names who sent its command nor the command's id, as a
/// doetank's `history` tells anonymous readers (a facilitator's token subject may be an address
/// from an identity provider; until the thirty-first session a public export carried them).
/// A refusal of the log's filter named by the flag the user gave rather than by the field the
/// GraphQL API calls it (`--stream-type`, not `streamType`).
fn as_flags(err: AppError) -> AppError {
    match err {
        AppError::BadInput { field, message } => {
            let flag = match field.as_str() {
                "streamType" => "stream-type",
                "streamId" => "stream-id",
                other => other,
            };
            AppError::BadInput { field: format!("--{flag}"), message }
        }
        other => other,
    }
}

async fn export(
    app: &App,
    format: ExportFormat,
    after: i64,
    filter: LogFilter,
    public: bool,
    out: Box<dyn Write>,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    let pages = doetank_api::export::pages(app.store.clone(), after.max(0), filter);
    let mut pages = Box::pin(pages.map(move |page| {
        page.map(|mut events| {
            if public {
                for (event, _) in &mut events {
                    event.metadata.actor = None;
                    event.metadata.command_id = None;
                }
            }
            events
        })
    }));
    let mut written = 0u64;
    match format {
        ExportFormat::Ndjson => {
            let mut out = out;
            while let Some(page) = pages.next().await {
                for event in page? {
                    out.write_all(&doetank_api::export::ndjson_line(&event)?)?;
                    written += 1;
                }
                bar.set_position(written);
            }
            out.flush()?;
        }
        ExportFormat::Csv => {
            let mut writer = doetank_api::export::csv_writer(out)?;
            while let Some(page) = pages.next().await {
                for event in page? {
                    doetank_api::export::write_csv_row(&mut writer, &event)?;
                    written += 1;
                }
                bar.set_position(written);
            }
            writer.flush()?;
        }
    }
    Ok(written)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let app = open(&cli.database_url, cli.rebuild_cache_mib).await?;
            let head = app.store.head_position().await?;
            println!("migrated {} (log head at position {head})", app.store.backend_name());
            // An operator upgrading wants to know that the next start will take a rebuild.
            if let Some(built_by) = app.projector.built_otherwise().await? {
                println!(
                    "the read models were built by projection version {built_by}, this build's is {PROJECTION_VERSION}: \
                     `serve` rebuilds them from the log as it starts (or run `doetank rebuild` now)"
                );
            }
        }
        Command::Schema => print!("{}", doetank_api::graphql::sdl()),
        Command::EventTypes => {
            let dictionary = serde_json::json!({ "eventTypes": doetank_domain::catalogue::catalogue() });
            println!("{}", serde_json::to_string_pretty(&dictionary)?);
        }
        Command::Rebuild => {
            let app = open(&cli.database_url, cli.rebuild_cache_mib).await?;
            let head = app.store.head_position().await?;
            let bar = progress(head, true);
            let position = app.projector.rebuild(&|p| bar.set_position(p.max(0) as u64)).await?;
            bar.finish();
            println!("rebuilt the read models up to position {position}");
        }
        Command::Serve {
            listen,
            demo,
            no_keep,
            allow_origins,
            max_operations_per_socket,
            max_unopened_reservations,
            keys,
        } => {
            let auth = keys.auth()?;
            let app = open(&cli.database_url, cli.rebuild_cache_mib).await?;
            let bar = progress(app.store.head_position().await?, true);
            app.projector.rebuild_if_built_otherwise(&|p| bar.set_position(p.max(0) as u64)).await?;
            bar.finish_and_clear();
            app.projector.catch_up().await?;
            let mut playground_token = None;
            if demo {
                doetank_api::demo::load(&app).await?;
                playground_token = Some(print_demo_tokens(&auth)?);
            }
            let listener =
                doetank_api::server::listen(listen).with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            println!("doetank is serving {} on http://{addr}", app.store.backend_name());
            println!("  playground: http://{addr}/graphql");
            let (stop, shutdown) = watch::channel(false);
            tokio::spawn(async move {
                stop_signal().await;
                tracing::info!("shutting down");
                let _ = stop.send(true);
            });
            let config = ServerConfig {
                auth,
                keep: !no_keep,
                allowed_origins: AllowedOrigins::from_given(allow_origins),
                max_operations_per_socket: max_operations_per_socket as usize,
                max_unopened_reservations: max_unopened_reservations as usize,
                playground_token,
                ..ServerConfig::default()
            };
            doetank_api::server::serve(app, config, listener, shutdown).await?;
        }
        Command::Token { member, role, expires, jwt_secret } => {
            println!("{}", Auth::hs256(strong_enough(&jwt_secret)?.as_bytes()).mint(&member, role, expires)?);
        }
        Command::Export { format, after, output, public, to, from, types, stream_types, stream_ids } => {
            let app = open(&cli.database_url, cli.rebuild_cache_mib).await?;
            let filter = LogFilter {
                doetanks_visible_to: public.then(|| visibility::log_viewer(&Viewer::anonymous())).flatten(),
                to,
                from,
                event_types: types,
                stream_types,
                stream_ids,
            };
            // A name this log does not have, or a window that holds nothing, is refused as
            // `/events.ndjson` refuses it (with the name meant, for a slip), rather than
            // answered with an empty export; so is a position past the head, which came from
            // another database; before `-o` is created.
            doetank_api::log_names::check_filter(&app.store, &filter).await.map_err(as_flags)?;
            doetank_api::history::check_resume(&app.store, after).await?;
            let head = app.store.head_position().await?;
            let out: Box<dyn Write> = match &output {
                Some(path) => Box::new(BufWriter::new(
                    File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            let bar = progress(head - after.max(0), output.is_some());
            let written = export(&app, format, after, filter, public, out, &bar).await?;
            bar.finish_and_clear();
            eprintln!("exported {written} events");
        }
        Command::Import { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let events = doetank_api::export::read_export(&bytes)?;
            doetank_api::export::check_readable(&events)?;
            let app = open(&cli.database_url, cli.rebuild_cache_mib).await?;
            let head = app.store.import(&events).await?;
            let bar = progress(head, true);
            app.projector.rebuild(&|p| bar.set_position(p.max(0) as u64)).await?;
            bar.finish_and_clear();
            println!(
                "imported {} events (log head at position {head}) and rebuilt the read models",
                events.len()
            );
        }
    }
    Ok(())
}

/// Resolves at Ctrl-C or, on Unix, at SIGTERM: what `docker stop`, systemd and Kubernetes send
/// to stop a server. Until the twenty-first session only Ctrl-C was heard, and SIGTERM's default
/// ended the process mid-request, its WebSockets without a close frame.
async fn stop_signal() {
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            tracing::warn!("cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminated) => {
                tokio::select! {
                    () = interrupted => {}
                    _ = terminated.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server gracefully");
                interrupted.await;
            }
        }
    }
    #[cfg(not(unix))]
    interrupted.await;
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_database_password_is_not_logged() {
        assert_eq!(
            without_password("postgres://app:s3cr@t@db:5432/doetank"),
            "postgres://app:***@db:5432/doetank"
        );
        assert_eq!(without_password("postgres://app@db/doetank"), "postgres://app@db/doetank");
        assert_eq!(without_password("sqlite:doetank.db"), "sqlite:doetank.db");
    }
}
