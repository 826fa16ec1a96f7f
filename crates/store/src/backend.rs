//! Connecting to a backend chosen by URL scheme, and running its migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;
use tokio::sync::watch;

use crate::append::GroupCommit;
use crate::clock::{RecordedHistory, RecordingClock};
use crate::decisions::DecisionCache;
use crate::error::StoreError;
use crate::own_connections::OwnConnections;

/// Used when neither `--database-url` nor `DATABASE_URL` is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:doetank.db";

/// This build's migrations for `backend`.
fn migrations(backend: &Backend) -> Migrator {
    match backend {
        Backend::Sqlite(_) => sqlx::migrate!("../../migrations/sqlite"),
        Backend::Postgres(_) => sqlx::migrate!("../../migrations/postgres"),
    }
}

/// One typed pool per backend: sqlx's `Any` driver cannot carry uuids, timestamps or JSON.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    /// Whether `self` and `other` are the same pool (clones of one handle), not merely two
    /// pools of one database.
    pub fn is(&self, other: &Backend) -> bool {
        match (self, other) {
            (Backend::Sqlite(a), Backend::Sqlite(b)) => {
                Arc::ptr_eq(&a.connect_options(), &b.connect_options())
            }
            (Backend::Postgres(a), Backend::Postgres(b)) => {
                Arc::ptr_eq(&a.connect_options(), &b.connect_options())
            }
            _ => false,
        }
    }
}

/// Runs the same code, SQL text included, against whichever typed pool is in use.
/// (SQLite accepts `$1` placeholders, so one SQL text serves both.)
#[macro_export]
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// The event store handle; cheap to clone: one reference count (a request clones it for each
/// of its loaders, and a count per part, bumped on two cores at once, was a measurable share
/// of a query).
#[derive(Clone, Debug)]
pub struct EventStore(Arc<StoreParts>);

impl std::ops::Deref for EventStore {
    type Target = StoreParts;

    fn deref(&self) -> &StoreParts {
        &self.0
    }
}

/// What an [`EventStore`] handle shares.
#[derive(Debug)]
pub struct StoreParts {
    pub(crate) backend: Backend,
    /// The last committed global position, for readers that wait for new events.
    pub(crate) head: Arc<watch::Sender<i64>>,
    /// Concurrent appends of this process, written together.
    pub(crate) group_commit: Arc<GroupCommit>,
    /// Streams as this process last wrote them, to decide the next command on (`decisions`).
    pub(crate) decisions: Arc<DecisionCache>,
    /// SQLite file databases: stream reads, appends and the stamp in the calling thread, on the
    /// store's own connections (see `own_connections`).
    pub(crate) own: Option<Arc<OwnConnections>>,
    /// The time appends are recorded at (`clock`).
    pub(crate) clock: Arc<RecordingClock>,
}

impl EventStore {
    /// Connects by URL scheme: `sqlite:PATH` (created if missing) or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, 10).await
    }

    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let mut own = None;
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL survives a killed process (the WAL is in the OS's hands at commit);
                // only a power cut can lose the last commits.
                .synchronous(SqliteSynchronous::Normal)
                // Erased personal data is overwritten on delete, not left in free pages.
                .pragma("secure_delete", "ON")
                .busy_timeout(Duration::from_secs(30));
            // No ping before each checkout: an embedded database does not drop connections, and
            // on SQLite every statement (the ping too) is a hop to the connection's thread.
            let path = options.get_filename().to_path_buf();
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            own = OwnConnections::of_file(&path).map(Arc::new);
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // No ping before each checkout either: sqlx already pings every connection when it
            // goes back to the pool, so a second round trip per query bought little. A server
            // that went away between the two still fails that one query, with a typed error.
            // The pool retries a refused connection until its timeout and then says only that
            // it timed out (after 10 s); one connection first names the cause at once: refused,
            // an unknown host, a wrong password, no such database.
            // No JIT: PostgreSQL compiles a plan whose estimated cost passes `jit_above_cost`,
            // which the generic plans of the log's filtered pages do on a log of 1,000,000
            // events; compiling took 0.5–0.6 s a page there (a researcher's export of its last
            // tenth: 13.5 s, and 3.6 s without). An event store's statements are short: none
            // earns that back.
            let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
            let first =
                tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(&options)).await;
            let first = first.map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 10 s"))
            })??;
            first.close().await?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let store = EventStore(Arc::new(StoreParts {
            backend,
            head: Arc::new(watch::channel(0).0),
            group_commit: Arc::default(),
            decisions: Arc::default(),
            own,
            clock: Arc::default(),
        }));
        Ok(store)
    }

    /// Records the appends that follow at `at` and the dates given to [`RecordedHistory::at`]
    /// rather than the wall clock, until the history is dropped: for writing a documented
    /// history through commands (the demo), before the store serves anyone. Other appends
    /// meanwhile would be recorded at the history's date too.
    pub fn record_history(&self, at: DateTime<Utc>) -> RecordedHistory {
        RecordedHistory::begin(self.clock.clone(), at)
    }

    /// Applies pending migrations (event log and read-model tables) and loads the head position.
    ///
    /// A database that a newer build migrated holds migrations this build does not know, all
    /// past the newest it knows. It runs on the schema they left, with a warning naming the
    /// first: migrations are written to leave the previous build able to run (they add; the
    /// previous `doetank_append` stays beside the new one), so that a node of this build can
    /// restart during a rolling upgrade and a rollback can start. Until the forty-first session it
    /// refused to (sqlx: "previously applied but missing"). An unknown migration among this
    /// build's own, or a known one changed, is still refused.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = migrations(&self.backend);
        let newest_known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        match self.run_migrations(&migrator).await {
            // sqlx names the first unknown one in order of version, so all of them are newer.
            Err(StoreError::Migrate(MigrateError::VersionMissing(version))) if version > newest_known => {
                tracing::warn!(
                    first_unknown = version,
                    newest_known,
                    "the database holds migrations of a newer build: running on the schema they left"
                );
                migrator.set_ignore_missing(true);
                self.run_migrations(&migrator).await?;
            }
            other => other?,
        }
        // On the pool, not the store's own readers: a rebuild's scratch file turns its journal
        // off right after migrating, which SQLite allows only while no other connection has it
        // open (an idle reader left by this read made it "database is locked").
        let head = self.head_position_on_pool().await?;
        self.head.send_if_modified(|h| {
            let changed = *h < head;
            *h = (*h).max(head);
            changed
        });
        tracing::info!(backend = self.backend_name(), head, "event store migrated");
        Ok(())
    }

    /// Runs `migrator`. On PostgreSQL on a connection of its own, closed after the run: sqlx
    /// takes a session lock for migrations and leaves it held when a run fails, which on a
    /// connection back in the pool would block every later migration (this build's retry in
    /// [`Self::migrate`], another node's start) for as long as the connection lives. SQLite
    /// takes no such lock (and a new connection to `sqlite::memory:` would be another database).
    async fn run_migrations(&self, migrator: &Migrator) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => Ok(migrator.run(pool).await?),
            Backend::Postgres(pool) => {
                let options = (*pool.connect_options()).clone();
                let own = PgPoolOptions::new().max_connections(1).connect_with(options).await?;
                let ran = migrator.run(&own).await;
                own.close().await;
                Ok(ran?)
            }
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// SQL differs by backend here and there (see [`crate::Probe`]).
    pub fn is_sqlite(&self) -> bool {
        matches!(self.backend, Backend::Sqlite(_))
    }

    /// Whether small reads run on the store's own SQLite connections ([`Self::read_inline`]).
    pub fn has_own_readers(&self) -> bool {
        self.own.is_some()
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Wakes whenever this process commits an append (readers still read the log itself).
    pub fn watch_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    pub(crate) fn advance_head(&self, position: i64) {
        self.head.send_if_modified(|h| {
            let changed = *h < position;
            *h = (*h).max(position);
            changed
        });
    }

    /// On PostgreSQL, listens for appends made by other processes (`LISTEN doetank_log`) and
    /// advances the head this process's readers watch. Notifications only wake readers: the log
    /// stays the truth, and readers also poll, so a lost notification delays, never loses.
    pub async fn listen_for_other_nodes(&self) -> Result<Option<tokio::task::JoinHandle<()>>, StoreError> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen("doetank_log").await?;
        let store = self.clone();
        Ok(Some(tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        if let Ok(position) = notification.payload().parse::<i64>() {
                            store.advance_head(position);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "LISTEN doetank_log interrupted; reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })))
    }

    pub async fn close(&self) {
        on_pool!(&self.backend, pool => pool.close().await)
    }
}

/// A PostgreSQL `url` naming database `name` instead, its parameters (`?sslmode=...`) kept: for
/// tools that make databases of their own on one server (the tests, the benchmarks).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod url_tests {
    use super::with_database;

    #[test]
    fn another_database_keeps_the_server_and_the_parameters() {
        assert_eq!(with_database("postgres://p@h:5432/test", "b"), "postgres://p@h:5432/b");
        assert_eq!(with_database("postgres://p@h:5432", "b"), "postgres://p@h:5432/b");
        assert_eq!(
            with_database("postgres://p@h:5432/test?sslmode=disable", "b"),
            "postgres://p@h:5432/b?sslmode=disable"
        );
    }
}
