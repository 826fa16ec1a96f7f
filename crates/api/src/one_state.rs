//! One state of the read models per answer, on both backends.
//!
//! A query's resolvers read the read models in many statements: a doetank and its lessons, a
//! page of rows and their count. Each in a transaction of its own, an answer could join rows of
//! two states when the projector commits between two of them (a version with the lessons of the
//! next commit, a count that does not match its page). So every read of one answer runs in one
//! [`OneState`]:
//! - On PostgreSQL, on one connection in one `REPEATABLE READ, READ ONLY` transaction, begun at
//!   the first read that needs the database (an answer kept under the stamp needs none).
//! - On a SQLite file the small reads (look-ups, a list's page) run in the store's read snapshot
//!   on its own connections (`EventStore::in_one_snapshot`); the reads through sqlx's pool
//!   (counts) share one read transaction of the pool, and a search's ranking takes one on a
//!   blocking thread.
//!
//! Two transactions see one state when they see the same stamp counters: the projector moves
//! them in the very commit that changes the read models, and personal data moves its own. So
//! each transaction of an answer reads the counters in its first round trip, and must see what
//! the answer's first read of them saw. Where it does not, a commit fell between the two: the
//! answer is [`OneState::moved`], its later reads fail, and the server computes it again
//! (`server::in_one_state`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use doetank_store::{on_pool, Backend, EventStore};
use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{FromRow, Postgres, Sqlite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;
use crate::rows::CounterRow;
use crate::sql::{self, AnyRow, Arg};

/// The SQL of [`COUNTERS`], as a literal for the `BEGIN` texts that end with it.
macro_rules! counters_sql {
    () => {
        "SELECT name, position FROM rm_checkpoint UNION ALL SELECT 'log_head', position FROM log_head"
    };
}

/// The counters the read models' stamp is made of (`crate::stamp`).
pub const COUNTERS: &str = counters_sql!();

/// A state's transaction begins with the counters it sees, in the same round trip. On
/// PostgreSQL it first shares the lock of the read models' swap guard (`LOCK` takes no
/// snapshot): a rebuild swaps the read-model tables for new ones, and a transaction whose
/// snapshot came before the swap would find the new tables empty. The swap takes the guard
/// alone before anything else, so a transaction either holds it before the swap, which waits
/// for it, or waits for the swap and takes its snapshot after. (Locking every read-model table
/// instead, as until the twentieth session, is 22 locks per answer, past the 16 a backend takes
/// on its fast path: 0.14 ms of PostgreSQL's CPU per answer under `pgbench`.)
const BEGIN_POSTGRES: &str = concat!(
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; LOCK TABLE read_model_swap_guard IN ACCESS SHARE MODE; ",
    counters_sql!()
);
const BEGIN_SQLITE: &str = concat!("BEGIN; ", counters_sql!());

/// The stamp's counters as one transaction saw them, by name.
type Counters = Vec<(String, i64)>;

fn counters(rows: Vec<CounterRow>) -> Counters {
    let mut counters: Counters = rows.into_iter().map(|c| (c.name, c.position)).collect();
    counters.sort_unstable();
    counters
}

/// A connection of the pool in the answer's transaction, and its turn (see [`Turns`]).
enum Held {
    Postgres(PoolConnection<Postgres>, OwnedSemaphorePermit),
    Sqlite(PoolConnection<Sqlite>, OwnedSemaphorePermit),
}

impl Held {
    /// Ends the read-only transaction and gives the connection back; one whose transaction
    /// cannot be ended is closed rather than given back in it.
    async fn end(self) {
        let ended = match self {
            Held::Postgres(mut conn, _turn) => {
                let ended = end_on_postgres(&mut conn).await;
                if ended.is_err() {
                    drop(conn.detach());
                }
                ended
            }
            Held::Sqlite(mut conn, _turn) => {
                let ended = end_on_sqlite(&mut conn).await;
                if ended.is_err() {
                    drop(conn.detach());
                }
                ended
            }
        };
        if let Err(error) = ended {
            tracing::warn!(%error, "an answer's read transaction could not be ended; its connection is closed");
        }
    }
}

/// How many answers hold a connection of the pool at once: all but [`RESERVED`] of the pool's,
/// so that a read outside an answer's transaction (the log, a stream replayed as of a time)
/// always finds one, even while every answer holding one waits for such a read. (Half the pool
/// was measured and not kept: 64 clients asking one heavy search at once, before its answer was
/// kept, then queued for turns, and the kept answers' p99 rose from 12 to 57–67 ms on
/// PostgreSQL.)
#[derive(Clone, Debug)]
pub struct Turns(Arc<Semaphore>);

/// Connections of the pool no answer holds (fewer in a pool of one or two).
const RESERVED: usize = 2;

impl Turns {
    pub fn for_store(store: &EventStore) -> Self {
        let pool_size = on_pool!(store.backend(), pool => pool.options().get_max_connections()) as usize;
        Turns(Arc::new(Semaphore::new(pool_size.saturating_sub(RESERVED).max(1))))
    }
}

/// How many times an answer is computed at most while commits keep falling between two of its
/// transactions. A computation after a move begins its transaction first
/// ([`OneState::begin_if_again`]): on PostgreSQL it cannot move again.
pub const ATTEMPTS: u32 = 3;

/// How often a computation after a move begins its two transactions on SQLite before it reads.
const BEGIN_TRIES: u32 = 10;

/// The answer `compute` gives to `request` with every read in one state of the read models,
/// computed again (from a copy of the request, which `prepare` readies) where a commit fell
/// between two of its reads; `None` where that happened every time.
pub async fn answered<T, F, Fut>(
    store: &EventStore,
    turns: &Turns,
    request: async_graphql::Request,
    prepare: impl Fn(&mut async_graphql::Request),
    compute: F,
) -> Option<T>
where
    F: Fn(async_graphql::Request) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut request = request;
    for attempt in 0..ATTEMPTS {
        // A request is consumed by its execution: what another computation would need.
        let again = (attempt + 1 < ATTEMPTS).then(|| copy_request(&request));
        let one = OneState::new(store, turns, attempt);
        // Boxed: each of the three wrappers below took the computation by value and kept it
        // both as its argument and as what it awaits, so the answer's future grew to ~40 KB,
        // copied whole as it was moved (a twelfth of a computed query's CPU in `memmove`).
        let computed = Box::pin(async {
            one.begin_if_again().await;
            compute(request).await
        });
        let answer = store.in_one_snapshot(one.scope(computed)).await;
        if !one.moved() {
            return Some(answer);
        }
        let Some(mut next) = again else { break };
        tracing::debug!(attempt, "a commit fell between two reads of an answer; it is computed again");
        prepare(&mut next);
        request = next;
    }
    None
}

/// What `request` asks, as a request of its own: its text, operation name, variables and
/// extensions (the parsed document is parsed again, or found among the kept ones).
pub fn copy_request(request: &async_graphql::Request) -> async_graphql::Request {
    let mut copy = async_graphql::Request::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name.clone_from(&request.operation_name);
    copy.extensions.clone_from(&request.extensions);
    copy
}

tokio::task_local! {
    /// The state the answer this task computes is read in.
    static CURRENT: Arc<OneState>;
}

/// One answer's reads of the read models (see the module's doc).
pub struct OneState {
    store: EventStore,
    /// Whether the answer is computed again after a move: its transaction is then begun before
    /// anything else is read (see [`Self::begin_if_again`]), and on PostgreSQL the stamp is read
    /// in it, rather than before it (where an answer kept under it needs no transaction).
    again: bool,
    /// What every transaction of the answer must see: the counters the first read of them saw.
    expected: Mutex<Option<Counters>>,
    moved: AtomicBool,
    held: tokio::sync::Mutex<Option<Held>>,
    turns: Turns,
}

impl OneState {
    /// The state of an answer's `attempt`-th computation (0 the first).
    pub fn new(store: &EventStore, turns: &Turns, attempt: u32) -> Arc<Self> {
        Arc::new(OneState {
            store: store.clone(),
            again: attempt > 0,
            expected: Mutex::new(None),
            moved: AtomicBool::new(false),
            held: tokio::sync::Mutex::new(None),
            turns: turns.clone(),
        })
    }

    /// Runs `work` (an answer's computation) with its reads in this state.
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, work: F) -> F::Output {
        CURRENT.scope(Arc::clone(self), work).await
    }

    /// For an answer computed again after a move: begins its transaction now, before its first
    /// read. On PostgreSQL the stamp is then read in it, so the answer cannot move again. On a
    /// SQLite file the store's snapshot and the pool's transaction then begin a hop apart,
    /// where the first computation began the pool's at its first list, milliseconds later (a
    /// test writing as fast as it can moved two answers in a row that way).
    ///
    /// On SQLite the two transactions still begin a hop apart, and a commit in that hop made
    /// them see two states: then both begin again, as often as [`BEGIN_TRIES`], since nothing
    /// of the answer has been read yet. (A test reading and writing as fast as it can, in the
    /// full suite on two cores, saw three computations in a row move without this.)
    pub async fn begin_if_again(&self) {
        if !self.again || Self::current_for(self.store.backend()).is_none() {
            return;
        }
        for _ in 0..BEGIN_TRIES {
            match self.begun().await {
                Err(AppError::Moved) if matches!(self.store.backend(), Backend::Sqlite(_)) => {
                    self.start_over().await;
                }
                // A failure is the answer's first read's to report: it fails the same way.
                _ => return,
            }
        }
    }

    /// Ends both transactions of an answer that has read nothing yet, and forgets what they saw.
    async fn start_over(&self) {
        tracing::debug!(
            "an answer's two transactions saw two states before it read anything; both begin again"
        );
        if let Some(held) = self.held.lock().await.take() {
            held.end().await;
        }
        self.store.restart_snapshot();
        if let Ok(mut expected) = self.expected() {
            *expected = None;
        }
        self.moved.store(false, Ordering::Release);
    }

    /// Whether a commit fell between two transactions of the answer: it must be computed again.
    pub fn moved(&self) -> bool {
        self.moved.load(Ordering::Acquire)
    }

    /// The state this task's reads of `backend` run in, if any. Not for a database in memory
    /// (its pool may have one connection, which a state would keep from every other read), nor
    /// for another database than the store's (a stream replayed as of a time).
    pub fn current_for(backend: &Backend) -> Option<Arc<OneState>> {
        let state = CURRENT.try_with(Arc::clone).ok()?;
        let applies = state.store.backend().is(backend)
            && (state.store.has_own_readers() || matches!(backend, Backend::Postgres(_)));
        applies.then_some(state)
    }

    /// The stamp's counters for the answer (`Stamp::read`): read first, they are what every
    /// later transaction of the answer must see.
    pub async fn stamp(&self) -> Result<Vec<CounterRow>, AppError> {
        let rows: Vec<CounterRow> = match self.store.backend() {
            Backend::Postgres(_) if self.again => {
                drop(self.begun().await?);
                let expected = self.expected()?;
                let rows = expected
                    .iter()
                    .flatten()
                    .map(|(name, position)| CounterRow { name: name.clone(), position: *position });
                return Ok(rows.collect());
            }
            Backend::Postgres(pool) => {
                let rows: Result<Vec<CounterRow>, sqlx::Error> =
                    Box::pin(async { sqlx::query_as(COUNTERS).fetch_all(pool).await }).await;
                rows?
            }
            Backend::Sqlite(_) => sql::fetch_small(&self.store, COUNTERS, &[]).await?,
        };
        self.agree(counters(rows.clone()))?;
        Ok(rows)
    }

    /// The counters of the store's own read snapshot (a SQLite file), which the other
    /// transactions of the answer are checked against; read there now if nothing read them yet.
    /// Called before a read in a transaction of its own (a search's ranking on a blocking
    /// thread), so that [`Self::check`] compares with them.
    pub fn expected_on_own_readers(&self) -> Result<(), AppError> {
        let known = self.expected()?.is_some();
        if known {
            return Ok(());
        }
        if let Some(rows) = self.store.read_inline(|conn| sql::own_rows::<CounterRow>(conn, COUNTERS, &[])) {
            self.agree(counters(rows?))?;
        }
        Ok(())
    }

    fn expected(&self) -> Result<std::sync::MutexGuard<'_, Option<Counters>>, AppError> {
        self.expected.lock().map_err(|_| AppError::Interrupted("an answer's reads"))
    }

    /// Checks counters a transaction of the answer saw against the answer's (the first seen
    /// become the answer's).
    fn agree(&self, seen: Counters) -> Result<(), AppError> {
        let mut expected = self.expected()?;
        match &*expected {
            None => *expected = Some(seen),
            Some(counters) if *counters == seen => {}
            Some(_) => {
                self.moved.store(true, Ordering::Release);
                return Err(AppError::Moved);
            }
        }
        Ok(())
    }

    /// The answer's transaction on the pool, begun (with its counters checked) if it was not.
    async fn begun(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Held>>, AppError> {
        if self.moved() {
            return Err(AppError::Moved);
        }
        let mut held = self.held.lock().await;
        if held.is_some() {
            return Ok(held);
        }
        self.expected_on_own_readers()?;
        let turn = Arc::clone(&self.turns.0)
            .acquire_owned()
            .await
            .map_err(|_| AppError::Interrupted("an answer's reads"))?;
        let (seen, begun) = match self.store.backend() {
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                (begin_on_postgres(&mut conn, BEGIN_POSTGRES).await, Held::Postgres(conn, turn))
            }
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                (begin_on_sqlite(&mut conn, BEGIN_SQLITE).await, Held::Sqlite(conn, turn))
            }
        };
        // Held even when the first round trip failed: its transaction may have begun, and is
        // ended with the state's.
        *held = Some(begun);
        let seen: Vec<CounterRow> = seen?;
        self.agree(counters(seen))?;
        Ok(held)
    }

    pub async fn fetch_all<T: AnyRow>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>, AppError> {
        let mut held = self.begun().await?;
        Ok(match held.as_mut() {
            Some(Held::Postgres(conn, _)) => all_on_postgres(conn, sql, args).await?,
            Some(Held::Sqlite(conn, _)) => all_on_sqlite(conn, sql, args).await?,
            None => return Err(AppError::Interrupted("an answer's reads")),
        })
    }

    pub async fn fetch_count(&self, sql: &str, args: &[Arg]) -> Result<i64, AppError> {
        let mut held = self.begun().await?;
        Ok(match held.as_mut() {
            Some(Held::Postgres(conn, _)) => count_on_postgres(conn, sql, args).await?,
            Some(Held::Sqlite(conn, _)) => count_on_sqlite(conn, sql, args).await?,
            None => return Err(AppError::Interrupted("an answer's reads")),
        })
    }

    /// Checks what a read in a transaction of its own saw of the counters ([`COUNTERS`]).
    pub fn check(&self, seen: Vec<CounterRow>) -> Result<(), AppError> {
        self.agree(counters(seen))
    }
}

/// A read's future on one connection, boxed: its type then names one lifetime, where the
/// compiler cannot otherwise show that a resolver's future holding it is `Send` for them all.
macro_rules! reads_on {
    ($all:ident, $count:ident, $begin:ident, $end:ident, $connection:ty) => {
        fn $all<'c, T: AnyRow + 'c>(
            conn: &'c mut $connection,
            sql: &'c str,
            args: &'c [Arg],
        ) -> BoxFuture<'c, Result<Vec<T>, sqlx::Error>> {
            Box::pin(crate::bind_args!(sqlx::query_as::<_, T>(sql), args).fetch_all(conn))
        }

        fn $begin<'c>(
            conn: &'c mut $connection,
            sql: &'static str,
        ) -> BoxFuture<'c, Result<Vec<CounterRow>, sqlx::Error>> {
            let rows = sqlx::Executor::fetch_all(conn, sqlx::raw_sql(sql));
            Box::pin(async move { rows.await?.iter().map(CounterRow::from_row).collect() })
        }

        fn $end<'c>(conn: &'c mut $connection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
            let ended = sqlx::Executor::execute(conn, sqlx::raw_sql("COMMIT"));
            Box::pin(async move { ended.await.map(drop) })
        }

        fn $count<'c>(
            conn: &'c mut $connection,
            sql: &'c str,
            args: &'c [Arg],
        ) -> BoxFuture<'c, Result<i64, sqlx::Error>> {
            Box::pin(crate::bind_args!(sqlx::query_scalar::<_, i64>(sql), args).fetch_one(conn))
        }
    };
}

reads_on!(all_on_postgres, count_on_postgres, begin_on_postgres, end_on_postgres, sqlx::PgConnection);
reads_on!(all_on_sqlite, count_on_sqlite, begin_on_sqlite, end_on_sqlite, sqlx::SqliteConnection);

impl Drop for OneState {
    fn drop(&mut self) {
        let Some(held) = self.held.get_mut().take() else { return };
        match tokio::runtime::Handle::try_current() {
            // The answer is sent without waiting for its transaction's end.
            Ok(runtime) => drop(runtime.spawn(held.end())),
            // No runtime to end it on: the connection is closed, not given back in it.
            Err(_) => match held {
                Held::Postgres(conn, _) => drop(conn.detach()),
                Held::Sqlite(conn, _) => drop(conn.detach()),
            },
        }
    }
}
