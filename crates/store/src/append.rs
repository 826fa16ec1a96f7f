//! Appending to a stream: atomic, with optimistic concurrency and idempotent command ids.
//!
//! Appends are group-committed: concurrent callers queue their requests, one of them takes the
//! writer's turn and writes everything queued in one transaction (one lock of the log, one
//! commit, one fsync), then answers each caller with its own verdict. A refused request costs the others
//! nothing; positions stay gap-free because the head moves only by what was written.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use doetank_domain::EncodedEvent;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Sqlite, Transaction};
use tokio::sync::{oneshot, OwnedMutexGuard};
use uuid::Uuid;

use crate::backend::{Backend, EventStore};
use crate::error::StoreError;
use crate::model::{AppendResult, CommandRecord, ExpectedVersion, Fingerprint, Metadata, StreamId};
use crate::on_pool;
use crate::rows::{insert_events, EventRow, ROWS_PER_INSERT};

/// At most this many requests share one transaction, so one turn stays short.
const MAX_BATCH: usize = 256;

/// Opens a transaction that is going to write.
pub trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(&self)
        -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = Sqlite;
    /// IMMEDIATE takes SQLite's write lock up front: a deferred transaction that reads first
    /// could not upgrade to a writer once another connection has committed.
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
}

/// Reads the head and the current version of each of `streams` (BEGIN IMMEDIATE has taken the
/// writer's lock): one statement. A stream without events has no row.
async fn lock_log_sqlite(
    tx: &mut Transaction<'static, Sqlite>,
    streams: &[&str],
) -> Result<(i64, HashMap<String, i64>), sqlx::Error> {
    let mut q = sqlx::QueryBuilder::<Sqlite>::new(
        "SELECT NULL AS stream_id, position AS version FROM log_head WHERE id = 1 UNION ALL \
         SELECT stream_id, MAX(version) AS version FROM events WHERE stream_id IN (",
    );
    let mut list = q.separated(", ");
    for stream in streams {
        list.push_bind(*stream);
    }
    q.push(") GROUP BY stream_id");
    let (mut head, mut versions) = (0, HashMap::new());
    for row in q.build().fetch_all(&mut **tx).await? {
        match row.try_get::<Option<String>, _>("stream_id")? {
            Some(stream) => versions.insert(stream, row.try_get("version")?),
            None => {
                head = row.try_get("version")?;
                None
            }
        };
    }
    Ok((head, versions))
}

/// One caller's append, owned so that another task can write it.
struct Request {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<EncodedEvent>,
    metadata: Metadata,
    fingerprint: Option<Fingerprint>,
}

type Outcome = Result<AppendResult, StoreError>;

struct Pending {
    request: Request,
    reply: oneshot::Sender<Outcome>,
}

/// The queue of waiting appends and the single writer's turn (per process; across processes
/// the `log_head` row lock serialises writers).
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<Pending>>,
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Transactions written and requests they carried, for `group_commit_stats`.
    transactions: AtomicU64,
    requests: AtomicU64,
}

/// The store handle derives Debug; the queue's contents are not worth printing.
impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (transactions, requests) =
            (self.transactions.load(Ordering::Relaxed), self.requests.load(Ordering::Relaxed));
        f.debug_struct("GroupCommit")
            .field("transactions", &transactions)
            .field("requests", &requests)
            .finish()
    }
}

/// What a request comes to inside the batch's transaction.
enum Verdict {
    Written(AppendResult),
    Replay(AppendResult),
    Refused(StoreError),
}

impl EventStore {
    /// Appends `events` to `stream` in one transaction, if the stream is at `expected`.
    ///
    /// Every batch first takes the one writer's lock (PostgreSQL: the `log_head` row, held to
    /// commit; SQLite: BEGIN IMMEDIATE), so global positions are committed in order and a
    /// reader that has seen position N will never later find an N-1 it missed. With a command
    /// id that was seen before, nothing is written and the first result is returned.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EncodedEvent],
        metadata: &Metadata,
    ) -> Result<AppendResult, StoreError> {
        self.append_command(stream, expected, events, metadata, None).await
    }

    /// [`EventStore::append`] for a command whose input is hashed as `fingerprint`: kept with
    /// its command id, so that the id sent again with another input is refused
    /// ([`StoreError::CommandChanged`]) instead of answered with this command's result.
    pub async fn append_command(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EncodedEvent],
        metadata: &Metadata,
        fingerprint: Option<&Fingerprint>,
    ) -> Result<AppendResult, StoreError> {
        let outcome = self.append_in_turn(stream, expected, events, metadata, fingerprint).await;
        let key = stream.to_string();
        match &outcome {
            Ok(result) => self.decisions.appended(&key, events, result),
            Err(_) => self.decisions.forget(&key),
        }
        outcome
    }

    /// [`EventStore::append`] without what it keeps for the next decision.
    async fn append_in_turn(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EncodedEvent],
        metadata: &Metadata,
        fingerprint: Option<&Fingerprint>,
    ) -> Result<AppendResult, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        let request = Request {
            stream: stream.clone(),
            expected,
            events: events.to_vec(),
            metadata: metadata.clone(),
            fingerprint: fingerprint.copied(),
        };
        self.group_commit.queue.lock().map_err(|_| StoreError::WriterGone)?.push(Pending { request, reply });
        loop {
            // Whichever comes first: the answer (a batch led by another caller carried this
            // request) or the writer's turn. Waiting for the turn alone would keep an answered
            // caller queued behind the next leader's whole batch.
            let turn = tokio::select! {
                biased;
                outcome = &mut answer => return outcome.unwrap_or(Err(StoreError::WriterGone)),
                turn = self.group_commit.turn.clone().lock_owned() => turn,
            };
            match answer.try_recv() {
                Ok(outcome) => return outcome,
                Err(oneshot::error::TryRecvError::Closed) => return Err(StoreError::WriterGone),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch: Vec<Pending> = {
                let mut queue = self.group_commit.queue.lock().map_err(|_| StoreError::WriterGone)?;
                let take = queue.len().min(MAX_BATCH);
                // A caller that gave up before its turn came is not written behind its back.
                queue.drain(..take).filter(|p| !p.reply.is_closed()).collect()
            };
            // The write runs in its own task: a caller that gives up (a dropped request) must
            // not abort a transaction that carries other callers' events.
            let store = self.clone();
            let _ = tokio::spawn(async move { store.write_batch(batch, turn).await }).await;
        }
    }

    /// Writes one batch and answers every caller in it; releases the turn only afterwards, so
    /// the next one to take it finds its answer if it was in this batch.
    async fn write_batch(&self, batch: Vec<Pending>, turn: OwnedMutexGuard<()>) {
        if batch.is_empty() {
            return;
        }
        let requests: Vec<&Request> = batch.iter().map(|p| &p.request).collect();
        self.group_commit.transactions.fetch_add(1, Ordering::Relaxed);
        self.group_commit.requests.fetch_add(requests.len() as u64, Ordering::Relaxed);
        match self.write_requests(&requests).await {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(outcome);
                }
            }
            Err(err) if batch.len() == 1 => {
                if let Some(pending) = batch.into_iter().next() {
                    let _ = pending.reply.send(Err(err));
                }
            }
            Err(err) => {
                // Something in the batch broke the transaction: write each alone, so that
                // only the request at fault sees an error.
                tracing::warn!(error = %err, size = batch.len(), "batched append failed; writing one by one");
                for pending in batch {
                    let outcome = match self.write_requests(&[&pending.request]).await {
                        Ok(mut outcomes) => outcomes.pop().unwrap_or(Err(StoreError::WriterGone)),
                        Err(err) => Err(err),
                    };
                    let _ = pending.reply.send(outcome);
                }
            }
        }
        drop(turn);
    }

    /// One transaction for all of `requests`; the outer error means nothing was written.
    ///
    /// Set-based: the statements per batch do not grow with its size, so a batch of sixteen
    /// costs little more than a batch of one.
    async fn write_requests(&self, requests: &[&Request]) -> Result<Vec<Outcome>, StoreError> {
        let stream_ids: Vec<String> = requests.iter().map(|r| r.stream.to_string()).collect();
        let now = self.clock.now();
        let (verdicts, head) = match &self.backend {
            Backend::Sqlite(pool) => match self.own.as_deref() {
                Some(own) => own.write(|conn| write_sqlite_direct(conn, requests, &stream_ids, now))?,
                None => write_sqlite(pool, requests, &stream_ids, now).await?,
            },
            Backend::Postgres(pool) => write_postgres(pool, requests, &stream_ids, now).await?,
        };
        self.advance_head(head);
        Ok(requests
            .iter()
            .zip(verdicts)
            .map(|(request, verdict)| match verdict {
                Verdict::Written(result) => {
                    tracing::debug!(stream = %request.stream, version = result.stream_version, position = result.last_position, "appended");
                    Ok(result)
                }
                Verdict::Replay(result) => Ok(result),
                Verdict::Refused(err) => {
                    tracing::debug!(stream = %request.stream, error = %err, "append refused");
                    Err(err)
                }
            })
            .collect())
    }

    /// Append transactions this handle has written and the requests they carried: their
    /// ratio is how much group commit is saving.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        (
            self.group_commit.transactions.load(Ordering::Relaxed),
            self.group_commit.requests.load(Ordering::Relaxed),
        )
    }

    /// The first result of a command id, if it was seen: lets callers skip re-deciding a retry.
    pub async fn command_result(&self, command_id: Uuid) -> Result<Option<CommandRecord>, StoreError> {
        // Asked before deciding every command that carries an id: in this thread on a SQLite
        // file (the id is the 16-byte blob sqlx writes).
        let inline = self.read_inline(|conn| {
            let mut statement = conn.prepare_cached(COMMAND_BY_ID)?;
            let found = statement.query_row([command_id.as_bytes().as_slice()], own_command_row);
            rusqlite::OptionalExtension::optional(found)
        });
        if let Some(found) = inline {
            return found;
        }
        let row = on_pool!(&self.backend, pool => {
            sqlx::query(COMMAND_BY_ID)
            .bind(command_id)
            .fetch_optional(pool)
            .await?
            .map(|row| command_row(&row))
            .transpose()?
        });
        Ok(row)
    }
}

/// A command id's `commands` row; `$1` is position 1 on SQLite too, so both paths share it.
const COMMAND_BY_ID: &str = "SELECT stream_id, stream_version, first_position, last_position, fingerprint \
     FROM commands WHERE command_id = $1";

/// A stored fingerprint; one of another length (none is written so) counts as none.
fn fingerprint_of(bytes: Option<Vec<u8>>) -> Option<Fingerprint> {
    bytes.and_then(|bytes| bytes.try_into().ok())
}

/// A `commands` row read on the store's own SQLite connections: the columns of
/// [`COMMAND_BY_ID`], in order, as [`command_row`] reads them through sqlx.
fn own_command_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CommandRecord> {
    let result = AppendResult {
        stream_version: row.get(1)?,
        first_position: row.get(2)?,
        last_position: row.get(3)?,
        deduplicated: true,
    };
    Ok(CommandRecord { stream_id: row.get(0)?, result, fingerprint: fingerprint_of(row.get(4)?) })
}

/// A `commands` row: the stream a command id was used on, what its append returned, and the
/// fingerprint of the command.
fn command_row<R: Row>(row: &R) -> Result<CommandRecord, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(CommandRecord {
        stream_id: row.try_get("stream_id")?,
        result: AppendResult {
            stream_version: row.try_get("stream_version")?,
            first_position: row.try_get("first_position")?,
            last_position: row.try_get("last_position")?,
            deduplicated: true,
        },
        fingerprint: fingerprint_of(row.try_get("fingerprint")?),
    })
}

/// SQLite: BEGIN IMMEDIATE (the writer's lock), one lookup of head and versions, one of command
/// ids, the decision here ([`decide_batch`]), one multi-row INSERT per table, COMMIT.
async fn write_sqlite(
    pool: &sqlx::SqlitePool,
    requests: &[&Request],
    stream_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(Vec<Verdict>, i64), StoreError> {
    let command_ids: Vec<Uuid> = requests.iter().filter_map(|r| r.metadata.command_id).collect();
    let streams = distinct(stream_ids);
    let mut tx = pool.begin_write().await?;
    let (before, versions) = lock_log_sqlite(&mut tx, &streams).await?;
    let mut seen: HashMap<Uuid, CommandRecord> = HashMap::new();
    if !command_ids.is_empty() {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT command_id, stream_id, stream_version, first_position, last_position, fingerprint \
             FROM commands WHERE command_id IN (",
        );
        let mut list = q.separated(", ");
        for id in &command_ids {
            list.push_bind(*id);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *tx).await? {
            seen.insert(row.try_get("command_id")?, command_row(&row)?);
        }
    }
    let (verdicts, head) = decide_batch(requests, stream_ids, &mut seen, versions, before);
    if head == before {
        tx.rollback().await?;
        return Ok((verdicts, head));
    }
    let rows = written_rows(requests, stream_ids, &verdicts, now);
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        insert_events(chunk).build().execute(&mut *tx).await?;
    }
    let recorded = recorded_commands(requests, stream_ids, &verdicts);
    if !recorded.is_empty() {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, recorded_at, fingerprint) ",
        );
        q.push_values(&recorded, |mut row, (id, stream_id, result, fingerprint)| {
            row.push_bind(*id)
                .push_bind(*stream_id)
                .push_bind(result.stream_version)
                .push_bind(result.first_position)
                .push_bind(result.last_position)
                .push_bind(now)
                .push_bind(fingerprint.map(|f| f.as_slice()));
        });
        q.build().execute(&mut *tx).await?;
    }
    // The `events_advance_head` trigger moved the head with the inserts.
    tx.commit().await?;
    Ok((verdicts, head))
}

/// SQLite file: the same transaction as [`write_sqlite`], on the store's own writer connection
/// in this thread (statements of a few µs each, where each was a hop to sqlx's thread).
/// Values are bound as sqlx binds them: uuids as 16-byte blobs, JSON and times as text.
fn write_sqlite_direct(
    conn: &mut rusqlite::Connection,
    requests: &[&Request],
    stream_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(Vec<Verdict>, i64), StoreError> {
    use rusqlite::OptionalExtension;
    let blob = |id: &Uuid| id.as_bytes().to_vec();
    let streams = distinct(stream_ids);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let before: i64 = tx.query_row("SELECT position FROM log_head WHERE id = 1", [], |r| r.get(0))?;
    let mut versions = HashMap::new();
    {
        let mut version = tx.prepare_cached("SELECT MAX(version) FROM events WHERE stream_id = ?1")?;
        for stream in streams {
            if let Some(v) = version.query_row([stream], |r| r.get::<_, Option<i64>>(0))? {
                versions.insert(stream.to_string(), v);
            }
        }
    }
    let mut seen: HashMap<Uuid, CommandRecord> = HashMap::new();
    {
        let mut command = tx.prepare_cached(COMMAND_BY_ID)?;
        for id in requests.iter().filter_map(|r| r.metadata.command_id) {
            let row = command.query_row([blob(&id)], own_command_row).optional()?;
            if let Some(row) = row {
                seen.insert(id, row);
            }
        }
    }
    let (verdicts, head) = decide_batch(requests, stream_ids, &mut seen, versions, before);
    if head == before {
        tx.rollback()?;
        return Ok((verdicts, head));
    }
    let recorded_at = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO events ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            crate::read::COLUMNS
        ))?;
        for row in written_rows(requests, stream_ids, &verdicts, now) {
            let payload = serde_json::to_string(row.payload)
                .map_err(|e| StoreError::Corrupt { position: row.position, reason: e.to_string() })?;
            insert.execute(rusqlite::params![
                row.position,
                blob(&row.event_id),
                row.stream_id,
                row.stream_type,
                row.version,
                row.event_type,
                row.schema_version,
                payload,
                row.metadata.actor,
                row.metadata.command_id.as_ref().map(blob),
                blob(&row.metadata.correlation_id),
                row.metadata.causation_id.as_ref().map(blob),
                recorded_at,
            ])?;
        }
        let mut command = tx.prepare_cached(
            "INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, recorded_at, fingerprint) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (id, stream_id, result, fingerprint) in recorded_commands(requests, stream_ids, &verdicts) {
            command.execute(rusqlite::params![
                blob(&id),
                stream_id,
                result.stream_version,
                result.first_position,
                result.last_position,
                recorded_at,
                fingerprint.map(|f| f.as_slice()),
            ])?;
        }
    }
    // The `events_advance_head` trigger moved the head with the inserts.
    tx.commit()?;
    Ok((verdicts, head))
}

/// PostgreSQL: the whole batch is one call of `doetank_append` (migration 0007), which locks the
/// `log_head` row (the cross-node writer's lock), decides each request by the same rules as
/// [`decide_batch`] and writes what it accepted, in a statement of its own: one round trip and
/// one commit per batch instead of six. Other nodes are notified by the insert's trigger.
async fn write_postgres(
    pool: &sqlx::PgPool,
    requests: &[&Request],
    stream_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(Vec<Verdict>, i64), StoreError> {
    let (kinds, expected): (Vec<i16>, Vec<i64>) = requests
        .iter()
        .map(|r| match r.expected {
            ExpectedVersion::Any => (0, 0),
            ExpectedVersion::NoStream => (1, 0),
            ExpectedVersion::Exact(v) => (2, v),
        })
        .unzip();
    let events = || requests.iter().flat_map(|r| r.events.iter());
    let rows = sqlx::query(
        "SELECT verdict, stream_version, first_position, last_position, detail \
         FROM doetank_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(stream_ids)
    .bind(requests.iter().map(|r| r.stream.stream_type.as_str()).collect::<Vec<_>>())
    .bind(kinds)
    .bind(expected)
    .bind(requests.iter().map(|r| r.events.len() as i32).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.metadata.actor.as_deref()).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.metadata.command_id).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.metadata.correlation_id).collect::<Vec<_>>())
    .bind(requests.iter().map(|r| r.metadata.causation_id).collect::<Vec<_>>())
    .bind(events().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(events().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(events().map(|e| e.schema_version).collect::<Vec<_>>())
    .bind(events().map(|e| Json(&e.payload)).collect::<Vec<_>>())
    .bind(now)
    .bind(requests.iter().map(|r| r.fingerprint.as_ref().map(|f| f.as_slice())).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let mut head = 0;
    let mut verdicts = Vec::with_capacity(rows.len());
    for ((row, request), stream_id) in rows.iter().zip(requests).zip(stream_ids) {
        let result = AppendResult {
            stream_version: row.try_get("stream_version")?,
            first_position: row.try_get("first_position")?,
            last_position: row.try_get("last_position")?,
            deduplicated: false,
        };
        head = head.max(result.last_position);
        let verdict: String = row.try_get("verdict")?;
        verdicts.push(match verdict.as_str() {
            "written" => Verdict::Written(result),
            "replay" => Verdict::Replay(AppendResult { deduplicated: true, ..result }),
            "empty" => Verdict::Replay(result),
            "changed" => Verdict::Refused(StoreError::CommandChanged {
                command_id: request.metadata.command_id.unwrap_or_default(),
            }),
            "conflict" => Verdict::Refused(StoreError::VersionConflict {
                stream_id: stream_id.clone(),
                expected: request.expected,
                actual: result.stream_version,
            }),
            _ => Verdict::Refused(StoreError::CommandIdReused {
                command_id: request.metadata.command_id.unwrap_or_default(),
                stream_id: row.try_get::<Option<String>, _>("detail")?.unwrap_or_default(),
            }),
        });
    }
    if verdicts.len() != requests.len() {
        return Err(StoreError::WriterGone);
    }
    Ok((verdicts, head))
}

/// Each request's verdict, in order, as if they had come one by one: later requests see the
/// versions and command ids of earlier ones. Returns the verdicts and the new head.
fn decide_batch(
    requests: &[&Request],
    stream_ids: &[String],
    seen: &mut HashMap<Uuid, CommandRecord>,
    mut versions: HashMap<String, i64>,
    mut head: i64,
) -> (Vec<Verdict>, i64) {
    let mut verdicts = Vec::with_capacity(requests.len());
    for (request, stream_id) in requests.iter().zip(stream_ids) {
        let actual = versions.get(stream_id).copied().unwrap_or(0);
        let command_id = request.metadata.command_id;
        let first = command_id.and_then(|id| seen.get(&id).map(|first| (id, first)));
        let verdict = match first {
            Some((id, first)) => match first.again(id, stream_id, request.fingerprint.as_ref()) {
                Ok(result) => Verdict::Replay(result),
                Err(refused) => Verdict::Refused(refused),
            },
            None if !request.expected.matches(actual) => Verdict::Refused(StoreError::VersionConflict {
                stream_id: stream_id.clone(),
                expected: request.expected,
                actual,
            }),
            None if request.events.is_empty() => Verdict::Replay(AppendResult {
                stream_version: actual,
                first_position: head,
                last_position: head,
                deduplicated: false,
            }),
            None => {
                let count = request.events.len() as i64;
                let result = AppendResult {
                    stream_version: actual + count,
                    first_position: head + 1,
                    last_position: head + count,
                    deduplicated: false,
                };
                head += count;
                versions.insert(stream_id.clone(), result.stream_version);
                if let Some(id) = command_id {
                    let first = CommandRecord {
                        stream_id: stream_id.clone(),
                        result,
                        fingerprint: request.fingerprint,
                    };
                    seen.insert(id, first);
                }
                Verdict::Written(result)
            }
        };
        verdicts.push(verdict);
    }
    (verdicts, head)
}

/// Each stream of a batch once, in order (their versions are looked up once each).
fn distinct(stream_ids: &[String]) -> Vec<&str> {
    let mut streams: Vec<&str> = stream_ids.iter().map(String::as_str).collect();
    streams.sort_unstable();
    streams.dedup();
    streams
}

/// The `commands` rows a batch records: each written request that carried a command id.
fn recorded_commands<'a>(
    requests: &[&'a Request],
    stream_ids: &'a [String],
    verdicts: &[Verdict],
) -> Vec<(Uuid, &'a str, AppendResult, Option<&'a Fingerprint>)> {
    requests
        .iter()
        .zip(stream_ids)
        .zip(verdicts)
        .filter_map(|((request, stream_id), verdict)| match (request.metadata.command_id, verdict) {
            (Some(id), Verdict::Written(result)) => {
                Some((id, stream_id.as_str(), *result, request.fingerprint.as_ref()))
            }
            _ => None,
        })
        .collect()
}

/// The rows of every written request, in position order, recorded at `now`.
fn written_rows<'a>(
    requests: &[&'a Request],
    stream_ids: &'a [String],
    verdicts: &[Verdict],
    now: DateTime<Utc>,
) -> Vec<EventRow<'a>> {
    let mut rows = Vec::new();
    for ((request, stream_id), verdict) in requests.iter().zip(stream_ids).zip(verdicts) {
        if let Verdict::Written(result) = verdict {
            let first_version = result.stream_version - request.events.len() as i64 + 1;
            for (i, event) in request.events.iter().enumerate() {
                let i = i as i64;
                rows.push(EventRow {
                    position: result.first_position + i,
                    event_id: Uuid::now_v7(),
                    stream_id: stream_id.as_str(),
                    stream_type: request.stream.stream_type.as_str(),
                    version: first_version + i,
                    event_type: event.event_type.as_str(),
                    schema_version: event.schema_version,
                    payload: &event.payload,
                    metadata: &request.metadata,
                    recorded_at: now,
                });
            }
        }
    }
    rows
}
