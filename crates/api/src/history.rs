//! Time travel: an aggregate's read model as of a time or a stream version, computed by
//! replaying its stream through the very same projection statements into a private in-memory
//! SQLite database. One projection, so the past can never be drawn differently from the present.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use doetank_store::{on_pool, Backend, EventStore, LogFilter, StreamId};
use tokio::sync::{Semaphore, SemaphorePermit};
use uuid::Uuid;

use crate::error::AppError;
use crate::projection::{project, statements};
use crate::sql::RunBatch;

/// Which prefix of a stream to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsOf {
    /// Events recorded at or before this time.
    pub time: Option<DateTime<Utc>>,
    /// Events up to and including this stream version.
    pub version: Option<i64>,
}

impl AsOf {
    pub fn is_now(&self) -> bool {
        self.time.is_none() && self.version.is_none()
    }
}

/// The read models of one aggregate as they stood at `as_of`, or `None` if it did not exist yet.
pub async fn replay(
    store: &EventStore,
    stream_type: &str,
    id: Uuid,
    as_of: AsOf,
) -> Result<Option<Backend>, AppError> {
    if as_of.version.is_some_and(|v| v < 0) {
        return Err(AppError::bad_input("atVersion", "must be 0 or more"));
    }
    let mut events = store.read_stream(&StreamId::new(stream_type, id), 1).await?;
    // A version the stream has not reached is no state of it: answered as the present, a
    // researcher stepping through versions would never learn where the stream ends.
    if let (Some(asked), Some(last)) = (as_of.version, events.last()) {
        if asked > last.version {
            return Err(AppError::bad_input(
                "atVersion",
                format!(
                    "the {} is at version {}; {asked} is past it",
                    stream_type.replace('_', " "),
                    last.version
                ),
            ));
        }
    }
    let then = events
        .iter()
        .take_while(|e| {
            as_of.time.is_none_or(|t| e.recorded_at <= t) && as_of.version.is_none_or(|v| e.version <= v)
        })
        .count();
    events.truncate(then);
    if events.is_empty() {
        return Ok(None);
    }
    let past = past_database(Schema::Whole).await?;
    let mut batch = Vec::new();
    for event in &events {
        batch.extend(statements(event, (&event.payload).into())?);
    }
    on_pool!(past.backend(), pool => pool.acquire().await?.run_batch(&batch).await?);
    Ok(Some(past.backend().clone()))
}

/// The schemas past states are replayed into, as the bytes of a database migrated once per
/// process: whole (an aggregate's past, read as the present is), and bare for the network's
/// figures (see [`Schema::Bare`]).
static WHOLE: tokio::sync::OnceCell<Vec<u8>> = tokio::sync::OnceCell::const_new();
static BARE: tokio::sync::OnceCell<Vec<u8>> = tokio::sync::OnceCell::const_new();

/// Which schema a past state's database starts with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Schema {
    Whole,
    /// Only the figures read it: no full-text index (kept by triggers), and no secondary index
    /// but those the projections look rows up by, as a rebuild's scratch.
    Bare,
}

/// A private in-memory database with the read models' `schema`, empty: a copy of one made once
/// (`sqlite3_deserialize`). Migrating each anew took ~9 ms of a 10 ms `doetank(atVersion:)`.
async fn past_database(schema: Schema) -> Result<EventStore, AppError> {
    let made = if schema == Schema::Bare { &BARE } else { &WHOLE };
    let image = made.get_or_try_init(|| schema_image(schema)).await?;
    let past = EventStore::connect_with("sqlite::memory:", 1).await?;
    let copy = sqlx::sqlite::SqliteOwnedBuf::try_from(image.as_slice())?;
    // The pool's one connection holds the database: it lives as long as the pool.
    past_pool(&past)?.acquire().await?.deserialize(None, copy, false).await?;
    Ok(past)
}

/// The bytes of a database migrated to `schema`.
async fn schema_image(schema: Schema) -> Result<Vec<u8>, AppError> {
    let template = EventStore::connect_with("sqlite::memory:", 1).await?;
    template.migrate().await?;
    let mut conn = past_pool(&template)?.acquire().await?;
    if schema == Schema::Bare {
        crate::projection::drop_schema_objects(&mut conn, "main", "trigger").await?;
        crate::projection::drop_schema_objects(&mut conn, "main", "index").await?;
    }
    Ok(conn.serialize(None).await?.to_vec())
}

/// The pool of a past state's database, which is SQLite.
fn past_pool(past: &EventStore) -> Result<&sqlx::SqlitePool, AppError> {
    match past.backend() {
        Backend::Sqlite(pool) => Ok(pool),
        Backend::Postgres(_) => {
            Err(AppError::Database(sqlx::Error::Protocol("the replay's database must be SQLite".into())))
        }
    }
}

/// At most this many events are replayed for the whole network as of a time: about half a
/// second of one core on a release build here (`doetank-bench replay` measures it: 113,000–
/// 117,000 events/s), and a copy of the network in memory per question. Beyond, `export --to`
/// and `import` give the same network as a database of its own.
pub const MAX_NETWORK_EVENTS: i64 = 50_000;

/// Events read and projected per round of [`network`].
const PAGE: i64 = 5_000;

/// The aggregates' read models of the network as they stood at `as_of` (the events recorded
/// at or before it), replayed through the very same projection statements into a private
/// in-memory SQLite database: what the log said then, for a researcher's question about a
/// date. The story (timeline, lineage) is left out: no figure reads it.
pub async fn network(store: &EventStore, as_of: DateTime<Utc>) -> Result<PastNetwork, AppError> {
    network_of_at_most(store, as_of, MAX_NETWORK_EVENTS).await
}

/// A window of time `from` (at or after) `to` (before) that holds something: one that ends
/// before it starts (the two swapped, say) would answer nothing, which reads as an empty
/// history, so it is refused naming `to`.
pub fn check_window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), AppError> {
    match (from, to) {
        (Some(from), Some(to)) if to <= from => Err(AppError::bad_input(
            "to",
            format!(
                "{} is not after from ({}): the window holds nothing",
                to.to_rfc3339(),
                from.to_rfc3339()
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses a position to read or resume after that this log never gave out: one below 0, or
/// one past its newest (from another database, say), after which a reader would wait, or be
/// answered, in silence.
pub async fn check_resume(store: &EventStore, after: i64) -> Result<(), AppError> {
    if after < 0 {
        return Err(AppError::bad_input("after", "must be 0 or more"));
    }
    let head = store.head_position().await?;
    if after > head {
        return Err(AppError::bad_input(
            "after",
            format!("{after} is past the log's newest position ({head}): this log never gave it out"),
        ));
    }
    Ok(())
}

/// The events recorded at or before `as_of`, as `asOf` takes them everywhere. The log's filter
/// takes what was recorded before its `to`; times are kept to the microsecond, so one later
/// takes what was recorded at `as_of` too.
pub fn recorded_by(as_of: DateTime<Utc>) -> LogFilter {
    LogFilter { to: Some(as_of + chrono::Duration::microseconds(1)), ..LogFilter::default() }
}

/// Whole-network replays at once in this process. Each holds a copy of the network in memory
/// (about 90 MB at 48,000 events) and a core for up to half a second: without a
/// bound, one request with a few hundred aliases of `statistics(asOf:)` (its fields resolve at
/// once), or as many researchers asking at once, held as many copies and every core. Half the
/// cores (at least one) replay; the others wait for a turn in order of arrival, holding
/// nothing, and the other questions keep the other half.
pub struct NetworkReplays {
    turns: Semaphore,
    limit: usize,
    waiting: AtomicU64,
    running: AtomicU64,
    most_at_once: AtomicU64,
    total: AtomicU64,
}

/// What [`NetworkReplays`] has seen, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct ReplayCounts {
    pub limit: usize,
    pub running: u64,
    pub waiting: u64,
    /// The most that ever ran at once: never past `limit`.
    pub most_at_once: u64,
    pub total: u64,
}

static NETWORK_REPLAYS: LazyLock<NetworkReplays> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    NetworkReplays::new((cores / 2).max(1))
});

/// The process's one bound on whole-network replays.
pub fn network_replays() -> &'static NetworkReplays {
    &NETWORK_REPLAYS
}

impl NetworkReplays {
    fn new(limit: usize) -> Self {
        NetworkReplays {
            turns: Semaphore::new(limit),
            limit,
            waiting: AtomicU64::new(0),
            running: AtomicU64::new(0),
            most_at_once: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    pub fn counts(&self) -> ReplayCounts {
        ReplayCounts {
            limit: self.limit,
            running: self.running.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            most_at_once: self.most_at_once.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }

    /// Waits for a turn. A question given up while it waits (its client gone) leaves the queue.
    async fn turn(&self) -> Result<Turn<'_>, AppError> {
        let waiting = Counted::up(&self.waiting);
        let permit =
            self.turns.acquire().await.map_err(|_| AppError::Interrupted("the network replays' turns"))?;
        drop(waiting);
        let running = Counted::up(&self.running);
        self.most_at_once.fetch_max(running.1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Turn { _running: running, _permit: permit })
    }
}

/// One of a counter, given back when dropped, and the count it made.
struct Counted<'a>(&'a AtomicU64, u64);

impl<'a> Counted<'a> {
    fn up(counter: &'a AtomicU64) -> Self {
        let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
        Counted(counter, count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A replay's turn: it ends when the network it replayed is dropped. (Fields drop in order: no
/// longer counted as running before the next may start.)
struct Turn<'a> {
    _running: Counted<'a>,
    _permit: SemaphorePermit<'a>,
}

/// The network as it stood at a time, in a database of its own, read as the present is; it
/// holds its replay's turn (see [`NetworkReplays`]) until it is dropped.
pub struct PastNetwork {
    backend: Backend,
    _turn: Turn<'static>,
}

impl std::ops::Deref for PastNetwork {
    type Target = Backend;

    fn deref(&self) -> &Backend {
        &self.backend
    }
}

/// [`network`], replaying at most `max` events.
pub async fn network_of_at_most(
    store: &EventStore,
    as_of: DateTime<Utc>,
    max: i64,
) -> Result<PastNetwork, AppError> {
    let count = store.count_log(&recorded_by(as_of)).await?;
    if count > max {
        return Err(AppError::bad_input(
            "asOf",
            format!(
                "the log held {count} events by then, and at most {max} are replayed for a \
                 question: `doetank export --to` and `import` give the network as it stood then as a database \
                 of its own"
            ),
        ));
    }
    let turn = network_replays().turn().await?;
    let past = past_database(Schema::Bare).await?;
    let pool = past_pool(&past)?;
    // One transaction for the whole replay: a statement in a transaction of its own costs
    // several times its work.
    let mut conn = pool.acquire().await?;
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    // A prefix of the log in its order, up to the first event recorded after `as_of`: what a
    // reader had seen then. (Nodes' clocks may disagree a little, so a later position may carry
    // an earlier time; filtering by time alone could replay an event without one before it.)
    let (mut after, mut done) = (0, false);
    while !done {
        let events = store.read_log(&LogFilter::default(), after, PAGE).await?;
        let Some(last) = events.last() else { break };
        after = last.position;
        let mut batch = Vec::new();
        for event in &events {
            if event.recorded_at > as_of {
                done = true;
                break;
            }
            // The aggregates' read models only: no figure reads the story (timeline, lineage).
            if let Some(projected) = project(event, (&event.payload).into())? {
                batch.extend(projected.models);
                batch.extend(projected.version);
            }
        }
        conn.run_batch(&batch).await?;
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    drop(conn);
    Ok(PastNetwork { backend: past.backend().clone(), _turn: turn })
}
