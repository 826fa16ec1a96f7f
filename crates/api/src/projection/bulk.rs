//! Rebuilding the read models in bulk. The log is projected into scratch SQLite files, with
//! the very statements of the incremental path run on SQLite's own handle and no durability
//! (the files are thrown away); the story alone is folded in memory ([`StoryFold`]), which
//! makes the same rows for about a third less CPU. Every table is then swapped into the real
//! database in one transaction: on SQLite `INSERT ... SELECT *` from the attached scratch, which
//! SQLite runs as a transfer of whole records, indexes included, once the scratch has built its
//! indexes (the two scratches on two cores); on PostgreSQL COPY into new tables beside the old
//! ones, which then take their names (applying statement by statement would cost a round trip
//! each).
//! Readers see the old read models until that commit and the new ones after it, never a
//! half-built state.

use std::collections::HashMap;
use std::fmt::Write as _;

use doetank_domain::codec::Payload;
use doetank_store::{Backend, BeginWrite, EventStore};
use rusqlite::types::ValueRef;
use sqlx::postgres::PgPool;
use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::apply::project;
use super::projector::READ_MODEL_TABLES;
use super::story::{self, Line, StoryFold};
use crate::error::AppError;
use crate::sql::{RunBatch, Stmt};
use crate::sqlite_direct::on_handle;

/// The SQLite full-text index of the lessons (external content: it indexes `rm_lessons`).
const LESSON_INDEX: &str = "rm_lessons_fts";
/// Events read and decoded per batch.
const EVENTS_PER_BATCH: i64 = 5_000;
/// Rows per round of COPY data.
const ROWS_PER_CHUNK: i64 = 20_000;

/// A scratch SQLite file that removes itself.
struct Scratch {
    path: std::path::PathBuf,
    store: EventStore,
}

impl Scratch {
    async fn create() -> Result<Self, AppError> {
        let path = std::env::temp_dir().join(format!("doetank-rebuild-{}.db", uuid::Uuid::new_v4()));
        let store = EventStore::connect_with(&format!("sqlite:{}", path.display()), 1).await?;
        store.migrate().await?;
        Ok(Scratch { path, store })
    }

    /// The scratch's one connection, set up for speed over durability, and the SQL that makes
    /// the scratch's indexes again (see [`index_scratch`]).
    async fn connection(
        &self,
        cache_mib: u32,
    ) -> Result<(sqlx::pool::PoolConnection<sqlx::Sqlite>, Vec<String>), AppError> {
        let Backend::Sqlite(pool) = self.store.backend() else {
            return Err(AppError::Database(sqlx::Error::Protocol(
                "the scratch database must be SQLite".into(),
            )));
        };
        let mut conn = pool.acquire().await?;
        // A scratch file needs no journal, no fsync and no overwriting of deleted data; its pages
        // stay in memory up to `cache_mib` and spill to the file beyond.
        let cache = format!("cache_size = -{}", u64::from(cache_mib) * 1024);
        for pragma in ["journal_mode = OFF", "synchronous = OFF", "secure_delete = OFF", cache.as_str()] {
            sqlx::query(&format!("PRAGMA {pragma}")).execute(&mut *conn).await?;
        }
        // Projections look rows up by primary key, but for [`KEPT_IN_SCRATCH`]: the other
        // secondary indexes are built once all rows are in (or not at all, for PostgreSQL),
        // and the full-text index from the lessons in one go rather than row by row through
        // its triggers.
        drop_schema_objects(&mut conn, "main", "trigger").await?;
        let indexes = drop_schema_objects(&mut conn, "main", "index").await?;
        Ok((conn, indexes))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// How much of each scratch file's pages a rebuild keeps in memory, in MiB, unless told
/// otherwise: at 1,000,008 events the process held 863–877 MB with 256 and 366–388 MB with 32,
/// for a rebuild 0–10% slower (18.7–20.6 s against 19.6–20.7 s).
pub const SCRATCH_CACHE_MIB: u32 = 256;

/// Rebuilds every read model of `store` from its log, with `cache_mib` of pages in memory for
/// each of its two scratch files; returns the position applied.
pub async fn rebuild(
    store: &EventStore,
    cache_mib: u32,
    progress: &(dyn Fn(i64) + Sync),
) -> Result<i64, AppError> {
    let started = std::time::Instant::now();
    // The aggregates' read models and the story touch disjoint tables: each part is projected
    // into a scratch file of its own on its own connection, so SQLite works on two cores while
    // a third task reads and decodes the next batch.
    let (models, story) = (Scratch::create().await?, Scratch::create().await?);
    let ((mut models_conn, models_indexes), (story_conn, story_indexes)) =
        (models.connection(cache_mib).await?, story.connection(cache_mib).await?);
    // Rows swapped into SQLite go with their indexes; PostgreSQL builds its own.
    let into_sqlite = matches!(store.backend(), Backend::Sqlite(_));
    let (to_models, models_ready) = tokio::sync::mpsc::channel(2);
    let (to_story, story_ready) = tokio::sync::mpsc::channel(2);
    let reader = tokio::spawn(read_batches(store.clone(), to_models, to_story));
    let story_applier = tokio::spawn(async move {
        let mut conn = story_conn;
        tell_all(&mut conn, story_ready).await?;
        if into_sqlite {
            index_scratch(&mut conn, &story_indexes, "story", false).await?;
        }
        Ok(conn)
    });
    let mut applied = apply_all(&mut models_conn, models_ready, progress).await;
    if into_sqlite && applied.is_ok() {
        applied = index_scratch(&mut models_conn, &models_indexes, "models", true).await.and(applied);
    }
    let story_conn = joined(story_applier, "the rebuild's story").await;
    let read = joined(reader, "the rebuild's log reader").await;
    let (applied, story_conn, ()) = (applied?, story_conn?, read?);
    let projected = started.elapsed();
    // The scratches are complete: the swap reads them on connections of its own.
    drop((models_conn, story_conn));
    match store.backend() {
        Backend::Sqlite(pool) => swap_into_sqlite(pool, &models, &story, applied).await?,
        Backend::Postgres(pool) => swap_into_postgres(pool, &models.path, &story.path, applied).await?,
    }
    tracing::info!(
        position = applied,
        projected_ms = projected.as_millis() as u64,
        swapped_ms = (started.elapsed() - projected).as_millis() as u64,
        scratch_cache_mib = cache_mib,
        "read models rebuilt in scratch files and swapped in"
    );
    Ok(applied)
}

/// The outcome of a task of the rebuild; a panic goes on as a panic.
async fn joined<T>(
    task: tokio::task::JoinHandle<Result<T, AppError>>,
    what: &'static str,
) -> Result<T, AppError> {
    match task.await {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(AppError::Interrupted(what)),
    }
}

/// Applies every batch of the models' statements that arrives on `conn`, in one transaction:
/// every page is written to the file once, at the end, rather than the busy ones (a doetank's
/// row) again with every batch. Returns the last position applied.
async fn apply_all(
    conn: &mut SqliteConnection,
    mut ready: tokio::sync::mpsc::Receiver<Batch>,
    progress: &(dyn Fn(i64) + Sync),
) -> Result<i64, AppError> {
    let (mut applied, mut statements, mut busy) = (0, 0, std::time::Duration::ZERO);
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    while let Some((last, batch)) = ready.recv().await {
        let started = std::time::Instant::now();
        conn.run_batch(&batch).await?;
        busy += started.elapsed();
        statements += batch.len();
        applied = last;
        progress(applied);
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    // Which part keeps the other (and the reader) waiting.
    tracing::debug!(part = "models", statements, busy_ms = busy.as_millis() as u64, "part applied");
    Ok(applied)
}

/// Tells the story of every batch that arrives on `conn`, in one transaction, folding the
/// lineage and the clocks in memory and writing them once at the end (see [`StoryFold`]).
async fn tell_all(
    conn: &mut SqliteConnection,
    mut ready: tokio::sync::mpsc::Receiver<Vec<Line>>,
) -> Result<(), AppError> {
    let (mut fold, mut lines, mut busy) = (StoryFold::default(), 0, std::time::Duration::ZERO);
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    while let Some(batch) = ready.recv().await {
        let started = std::time::Instant::now();
        lines += batch.len();
        on_handle(conn, |db| fold.tell_all(db, batch)).await?;
        busy += started.elapsed();
    }
    let started = std::time::Instant::now();
    on_handle(conn, |db| fold.finish(db)).await?;
    busy += started.elapsed();
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    tracing::debug!(part = "story", lines, busy_ms = busy.as_millis() as u64, "part applied");
    Ok(())
}

/// The last position of a batch of events, and the models' statements for them.
type Batch = (i64, Vec<Stmt>);

/// A batch of events in the two parts a rebuild applies apart: the models' statements, and the
/// events' lines of the story.
struct Parts {
    last: i64,
    models: Vec<Stmt>,
    story: Vec<Line>,
}

/// Reads the log in batches and hands each part's statements to its applier, until the head.
/// A read error is this task's outcome: the appliers see their channels close and finish, and
/// the rebuild reports the error without swapping anything in.
async fn read_batches(
    store: EventStore,
    models: tokio::sync::mpsc::Sender<Batch>,
    story: tokio::sync::mpsc::Sender<Vec<Line>>,
) -> Result<(), AppError> {
    let mut after = 0;
    let (mut busy, mut waiting) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    loop {
        let started = std::time::Instant::now();
        let Some(Parts { last, models: statements, story: lines }) = next_batch(&store, after).await? else {
            break;
        };
        let read = std::time::Instant::now();
        busy += read - started;
        after = last;
        // A receiver is gone only when its applier failed; the applier reports that error.
        if models.send((last, statements)).await.is_err() || story.send(lines).await.is_err() {
            break;
        }
        waiting += read.elapsed();
    }
    // Whether the reader keeps the appliers waiting (busy), or waits for them.
    tracing::debug!(busy_ms = busy.as_millis() as u64, waiting_ms = waiting.as_millis() as u64, "log read");
    Ok(())
}

/// The events after `after`, in their two parts; `None` at the head.
async fn next_batch(store: &EventStore, after: i64) -> Result<Option<Parts>, AppError> {
    let events = store.read_all_text(after, EVENTS_PER_BATCH).await?;
    let Some(last) = events.last().map(|(e, _)| e.position) else { return Ok(None) };
    let (mut models, mut story) = (Vec::with_capacity(events.len() * 2), Vec::with_capacity(events.len()));
    // A stream's version bump is write-only (see `version_bump`): the last of the batch is the
    // one that counts, and it runs after every other statement of its stream.
    let mut bumps = HashMap::new();
    for (event, payload) in events {
        // Each event is read once: its payload's text goes straight into its type, and its ids
        // to its line of the story.
        let Some(projected) = project(&event, Payload::Text(&payload))? else { continue };
        models.extend(projected.models);
        if let Some(bump) = projected.version {
            bumps.insert(event.stream_id.clone(), bump);
        }
        story.push(Line {
            position: event.position,
            recorded_at: event.recorded_at,
            subject_id: super::apply::id_of(&event).to_string(),
            stream_type: event.stream_type,
            stream_id: event.stream_id,
            event_type: event.event_type,
            chapter: projected.chapter,
        });
    }
    models.extend(bumps.into_values());
    Ok(Some(Parts { last, models, story }))
}

/// Builds a scratch's indexes once its rows are all in, and (in the scratch that holds the
/// lessons) their full-text index, so that the swap copies them ready-made.
async fn index_scratch(
    conn: &mut SqliteConnection,
    indexes: &[String],
    part: &'static str,
    lesson_index: bool,
) -> Result<(), AppError> {
    let started = std::time::Instant::now();
    for sql in indexes {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    if lesson_index {
        make_lesson_index(conn, "main").await?;
    }
    tracing::debug!(part, indexed_ms = started.elapsed().as_millis() as u64, "scratch indexed");
    Ok(())
}

/// Secondary indexes a projection looks rows up by, kept while a scratch is projected: a
/// doetank made public makes its lessons public (`rm_lessons.doetank_public`), which without
/// the index read every lesson for each doetank.
const KEPT_IN_SCRATCH: &[&str] = &["rm_lessons_doetank"];

/// Drops the objects of one kind (`index` or `trigger`) on the read-model tables in `schema`,
/// but for [`KEPT_IN_SCRATCH`]; returns the SQL that makes them again.
pub(crate) async fn drop_schema_objects(
    conn: &mut SqliteConnection,
    schema: &str,
    kind: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let quoted = |names: &[&str]| names.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let (list, kept) = (quoted(READ_MODEL_TABLES), quoted(KEPT_IN_SCRATCH));
    let objects: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT type, name, sql FROM {schema}.sqlite_master \
         WHERE type = $1 AND sql IS NOT NULL AND tbl_name IN ({list}) AND name NOT IN ({kept})"
    ))
    .bind(kind)
    .fetch_all(&mut *conn)
    .await?;
    let mut made_by = Vec::with_capacity(objects.len());
    for (kind, name, sql) in objects {
        sqlx::query(&format!("DROP {kind} {schema}.\"{name}\"")).execute(&mut *conn).await?;
        made_by.push(sql);
    }
    Ok(made_by)
}

/// Erasure removes personal data for good; the scratch had none to remove.
const FORGET_ERASED: &str =
    "DELETE FROM member_personal_data WHERE member_id IN (SELECT id FROM rm_members WHERE erased)";
const SET_CHECKPOINT: &str = "UPDATE rm_checkpoint SET position = $1 WHERE name = 'read_models'";

/// The scratch schema a table's rows are in, as `swap_into_sqlite` attaches them.
fn scratch_of(table: &str) -> &'static str {
    if story::TABLES.contains(&table) {
        "scratch_story"
    } else {
        "scratch_models"
    }
}

async fn swap_into_sqlite(
    pool: &SqlitePool,
    models: &Scratch,
    story: &Scratch,
    applied: i64,
) -> Result<(), AppError> {
    // Not given back to the pool: it writes the full-text index's tables behind FTS5, which
    // keeps what it last read of them per connection (other connections see the commit).
    let mut conn = pool.acquire().await?.detach();
    let swapped = async {
        for (scratch, schema) in [(models, "scratch_models"), (story, "scratch_story")] {
            sqlx::query(&format!("ATTACH DATABASE $1 AS {schema}"))
                .bind(scratch.path.display().to_string())
                .execute(&mut conn)
                .await?;
        }
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        // SQLite copies whole records, and the scratch's finished indexes with them, only into a
        // table without triggers that is empty: the triggers are dropped for the load and made
        // again after it. (Building the indexes here instead, from the copied rows, took 2–2.7 s
        // of a 6.6–7.1 s swap at 1,000,000 events, on one core; the scratches build theirs on two.)
        let triggers = drop_schema_objects(&mut tx, "main", "trigger").await?;
        // The store overwrites what it deletes (`secure_delete`) for the sake of the personal
        // data kept outside the log (`member_personal_data`, which the swap leaves alone). Every
        // read-model row is made from the log, which is in this very file, so writing zeros over
        // each old page first hides nothing: at 1,000,008 events that was 0.85-0.9 s of a 4.7 s
        // swap, during which appends wait (the copies then read the freed pages they reuse,
        // 0.3 s more). The setting is back on before anything else is deleted.
        secure_delete(&mut tx, false).await?;
        for table in READ_MODEL_TABLES {
            let started = std::time::Instant::now();
            sqlx::query(&format!("DELETE FROM main.{table}")).execute(&mut *tx).await?;
            let deleted = started.elapsed();
            // Both files were made by the same migrations: the columns are the same, in order.
            let scratch = scratch_of(table);
            sqlx::query(&format!("INSERT INTO main.{table} SELECT * FROM {scratch}.{table}"))
                .execute(&mut *tx)
                .await?;
            tracing::debug!(
                table,
                deleted_ms = deleted.as_millis() as u64,
                inserted_ms = (started.elapsed() - deleted).as_millis() as u64,
                "table swapped"
            );
        }
        copy_lesson_index(&mut tx).await?;
        secure_delete(&mut tx, true).await?;
        for sql in &triggers {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        sqlx::query(FORGET_ERASED).execute(&mut *tx).await?;
        sqlx::query(SET_CHECKPOINT).bind(applied).execute(&mut *tx).await?;
        // This includes the WAL checkpoint SQLite runs right after the commit (every page is
        // written twice, to the WAL and then to the file): most of the time it takes.
        let started = std::time::Instant::now();
        tx.commit().await?;
        tracing::debug!(committed_ms = started.elapsed().as_millis() as u64, "swap committed");
        Ok::<(), sqlx::Error>(())
    }
    .await;
    let closed = conn.close().await;
    swapped?;
    closed?;
    Ok(())
}

/// Whether this connection's deletes overwrite what they delete (the store turns it on for every
/// connection).
async fn secure_delete(conn: &mut SqliteConnection, on: bool) -> Result<(), sqlx::Error> {
    let setting = if on { "ON" } else { "OFF" };
    sqlx::query(&format!("PRAGMA main.secure_delete = {setting}")).execute(&mut *conn).await?;
    Ok(())
}

/// Makes the lessons' full-text index in `schema` from its lessons, all over again.
async fn make_lesson_index(conn: &mut SqliteConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("INSERT INTO {schema}.{LESSON_INDEX} ({LESSON_INDEX}) VALUES ('rebuild')"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The full-text index's own tables (FTS5's shadow tables of an external-content index).
const LESSON_INDEX_TABLES: [&str; 4] = ["data", "idx", "docsize", "config"];

/// Copies the lessons' full-text index as the models' scratch built it. FTS5 finds a lesson by
/// its rowid, which the transfer of records keeps; that is checked here, and where a rowid
/// differs the index is built again from the swapped lessons instead. Returns whether it was
/// copied.
async fn copy_lesson_index(tx: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    let started = std::time::Instant::now();
    let (same_rowids,): (bool,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM main.rm_lessons) = (SELECT count(*) FROM scratch_models.rm_lessons) \
           AND (SELECT count(*) FROM main.rm_lessons m \
                JOIN scratch_models.rm_lessons s ON s.rowid = m.rowid AND s.id = m.id) \
             = (SELECT count(*) FROM scratch_models.rm_lessons)",
    )
    .fetch_one(&mut *tx)
    .await?;
    if same_rowids {
        for shadow in LESSON_INDEX_TABLES {
            let table = format!("{LESSON_INDEX}_{shadow}");
            sqlx::query(&format!("DELETE FROM main.{table}")).execute(&mut *tx).await?;
            sqlx::query(&format!("INSERT INTO main.{table} SELECT * FROM scratch_models.{table}"))
                .execute(&mut *tx)
                .await?;
        }
    } else {
        tracing::warn!("the swapped lessons have rowids of their own: their full-text index is made again");
        make_lesson_index(tx, "main").await?;
    }
    tracing::debug!(same_rowids, ms = started.elapsed().as_millis() as u64, "full-text index swapped");
    Ok(same_rowids)
}

/// What a table rebuilt on PostgreSQL is called, with its indexes, until it is swapped in.
const REBUILT: &str = "__rebuilt";

/// The transaction-level advisory lock a PostgreSQL rebuild holds from before its twins are
/// made until they are swapped in: one rebuild at a time per database, whichever node runs it.
const REBUILD_LOCK: i64 = 0x646f_6574_616e_6b01;

/// Tables built on a connection of their own, beside all the others: the lessons' generated
/// `tsvector` (Dutch stemming of every lesson, done by PostgreSQL as it takes the rows in) and
/// their GIN index take about as long as every other table together (1.9 s of 4.0 at 300,010
/// events).
const BUILT_APART: &[&str] = &["rm_lessons"];

/// Loads every table into a twin made beside it (`rm_x__rebuilt`, the same columns, defaults and
/// checks, but no index yet), builds the twin's keys and indexes once from all its rows, and
/// then, in a short last step, drops each old table and renames its twin (and the twin's
/// indexes) into its place. COPY into the indexed tables themselves kept every index (the
/// lessons' GIN among them) up to date row by row, behind the old rows it had deleted: 13–14 s
/// of a 17–19 s rebuild at 300,010 events, against 7–8 s this way.
///
/// The twins are built by two builders at once, each in a transaction of its own on a
/// connection of its own ([`BUILT_APART`] and the rest), so that PostgreSQL works on two cores;
/// each commits its twins, which nothing reads. The swap is one transaction, begun first: it
/// holds [`REBUILD_LOCK`] throughout, so no other rebuild makes or drops twins meanwhile. Until
/// it commits, readers and other nodes' projectors go on with the old tables. A failure drops
/// the twins again; twins left by a process that died are dropped by the next rebuild before
/// it makes its own. (It all was one transaction until the twenty-second session: 5.6–5.7 s
/// of swapping at 300,010 events, against 2.6–2.9 s this way.)
async fn swap_into_postgres(
    pool: &PgPool,
    models: &std::path::Path,
    story: &std::path::Path,
    applied: i64,
) -> Result<(), AppError> {
    let mut swap = pool.begin_write().await?;
    lock_rebuilds(&mut swap).await?;
    drop_twins(&mut *pool.acquire().await?).await?;
    let columns = copied_columns(&mut swap).await?;
    let (apart, rest): (Vec<_>, Vec<_>) = READ_MODEL_TABLES
        .iter()
        .zip(columns)
        .map(|(table, columns)| TableCopy {
            table,
            columns,
            scratch: if story::TABLES.contains(table) { story.to_path_buf() } else { models.to_path_buf() },
        })
        .partition(|copy| BUILT_APART.contains(&copy.table));
    let index_names = match tokio::try_join!(build_twins(pool, apart), build_twins(pool, rest)) {
        Ok((mut names, more)) => {
            names.extend(more);
            names
        }
        Err(e) => {
            // Still under the lock: the swap's transaction holds it.
            let dropped = match pool.acquire().await {
                Ok(mut conn) => drop_twins(&mut conn).await,
                Err(e) => Err(e.into()),
            };
            left_behind(dropped);
            return Err(e);
        }
    };
    if let Err(e) = swap_twins_in(swap, &index_names, applied).await {
        // The swap's transaction is gone, and its lock with it: drop the twins under it again.
        let dropped = async {
            let mut tx = pool.begin_write().await?;
            lock_rebuilds(&mut tx).await?;
            drop_twins(&mut tx).await?;
            tx.commit().await?;
            Ok(())
        };
        left_behind(dropped.await);
        return Err(e);
    }
    Ok(())
}

/// Waits for [`REBUILD_LOCK`], held until `tx` ends.
async fn lock_rebuilds(tx: &mut sqlx::PgConnection) -> Result<(), AppError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(REBUILD_LOCK).execute(&mut *tx).await?;
    Ok(())
}

/// Drops every twin there is, with its indexes. Only under [`REBUILD_LOCK`]: never the twins
/// of a rebuild running now.
async fn drop_twins(conn: &mut sqlx::PgConnection) -> Result<(), AppError> {
    let twins = READ_MODEL_TABLES.iter().map(|t| format!("{t}{REBUILT}")).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!("DROP TABLE IF EXISTS {twins}")).execute(&mut *conn).await?;
    Ok(())
}

/// The outcome of dropping a failed rebuild's twins: the rebuild's own error is the one
/// reported, and the next rebuild drops what is left.
fn left_behind(dropped: Result<(), AppError>) {
    if let Err(e) = dropped {
        tracing::warn!(error = %e, "the twins of a failed rebuild could not be dropped; the next rebuild drops them");
    }
}

/// One table to copy: its name, the columns COPY writes, and the scratch file that holds it.
struct TableCopy {
    table: &'static str,
    columns: Vec<String>,
    scratch: std::path::PathBuf,
}

impl TableCopy {
    /// The columns as SQL lists them.
    fn list(&self) -> String {
        self.columns.join(", ")
    }
}

/// Builds the twins of `tables` in one transaction on a connection of its own, and commits
/// them; returns the names of the indexes made (as `table`'s, see [`index_like`]).
async fn build_twins(pool: &PgPool, tables: Vec<TableCopy>) -> Result<Vec<String>, AppError> {
    let mut tx = pool.begin_write().await?;
    // Index builds sort in memory up to this much (the default 64 MB spilled the lessons' GIN
    // index to disk in batches); for this transaction only.
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'").execute(&mut *tx).await?;
    let names: Vec<(&'static str, String)> = tables.iter().map(|t| (t.table, t.list())).collect();
    // The rows are read from the scratch and written as COPY text on a thread of their own,
    // while this task hands the previous chunk to PostgreSQL and has it build the previous
    // table's indexes: the two sides of the copy at once instead of taking turns.
    let (pieces, mut next_piece) = tokio::sync::mpsc::channel(COPY_AHEAD);
    let reader = tokio::task::spawn_blocking(move || copy_text_of(&tables, &pieces));
    let mut index_names = Vec::new();
    for (table, list) in names {
        let started = std::time::Instant::now();
        let twin = format!("{table}{REBUILT}");
        sqlx::query(&format!("CREATE TABLE {twin} (LIKE {table} INCLUDING ALL EXCLUDING INDEXES)"))
            .execute(&mut *tx)
            .await?;
        let mut copy = tx.copy_in_raw(&format!("COPY {twin} ({list}) FROM STDIN")).await?;
        loop {
            match next_piece.recv().await {
                Some(CopyPiece::Rows(text)) => {
                    copy.send(text.into_bytes()).await?;
                }
                Some(CopyPiece::TableDone) => break,
                // The reader stopped early: its outcome says why.
                None => {
                    let read = joined(reader, "the rebuild's copy reader").await;
                    copy.abort("the scratch could not be read").await?;
                    read?;
                    return Err(AppError::Interrupted("the rebuild's copy reader"));
                }
            }
        }
        copy.finish().await?;
        let copied = started.elapsed();
        index_names.extend(index_like(&mut tx, table, &twin).await?);
        // Fresh tables have no statistics: without them the planner would guess until
        // autovacuum came by.
        sqlx::query(&format!("ANALYZE {twin}")).execute(&mut *tx).await?;
        tracing::debug!(
            table,
            copied_ms = copied.as_millis() as u64,
            indexed_ms = (started.elapsed() - copied).as_millis() as u64,
            "table rebuilt beside the old one"
        );
    }
    joined(reader, "the rebuild's copy reader").await?;
    tx.commit().await?;
    Ok(index_names)
}

/// The swap's last step: every old table dropped and its twin renamed into its place, the
/// checkpoint set to `applied`, in `swap`'s one transaction.
async fn swap_twins_in(
    mut swap: sqlx::Transaction<'static, sqlx::Postgres>,
    index_names: &[String],
    applied: i64,
) -> Result<(), AppError> {
    let started = std::time::Instant::now();
    // Other nodes' projectors wait on the checkpoint row (they hold it while they write, and
    // then go on from the position set here); readers wait for the lock only while the tables
    // change names.
    sqlx::query("UPDATE rm_checkpoint SET position = position WHERE name = 'read_models'")
        .execute(&mut *swap)
        .await?;
    // Answers share the guard before their snapshot (`one_state`): taken first, it lets the
    // ones reading now finish and holds the next back until the new tables are in.
    sqlx::query("LOCK TABLE read_model_swap_guard IN ACCESS EXCLUSIVE MODE").execute(&mut *swap).await?;
    sqlx::query(&format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", READ_MODEL_TABLES.join(", ")))
        .execute(&mut *swap)
        .await?;
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!("DROP TABLE {table}")).execute(&mut *swap).await?;
        sqlx::query(&format!("ALTER TABLE {table}{REBUILT} RENAME TO {table}")).execute(&mut *swap).await?;
    }
    // A key's index takes its constraint's new name with it.
    for name in index_names {
        sqlx::query(&format!("ALTER INDEX {name}{REBUILT} RENAME TO {name}")).execute(&mut *swap).await?;
    }
    sqlx::query(FORGET_ERASED).execute(&mut *swap).await?;
    sqlx::query(SET_CHECKPOINT).bind(applied).execute(&mut *swap).await?;
    swap.commit().await?;
    tracing::debug!(swapped_ms = started.elapsed().as_millis() as u64, "rebuilt tables swapped in");
    Ok(())
}

/// Makes on `twin` every key and index `table` has, each named as `table`'s with [`REBUILT`]
/// after it; returns `table`'s names of them.
async fn index_like(tx: &mut sqlx::PgConnection, table: &str, twin: &str) -> Result<Vec<String>, AppError> {
    // A primary key or unique constraint is made as a constraint (it brings its index); every
    // other index from its definition, pointed at the twin.
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u') ORDER BY conname",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = $1::text::regclass \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    let mut names = Vec::with_capacity(keys.len() + indexes.len());
    for (name, definition) in keys {
        sqlx::query(&format!("ALTER TABLE {twin} ADD CONSTRAINT {name}{REBUILT} {definition}"))
            .execute(&mut *tx)
            .await?;
        names.push(name);
    }
    for (name, definition) in indexes {
        let sql = index_on_twin(&definition, &name, table, twin).ok_or_else(|| {
            AppError::Database(sqlx::Error::Protocol(format!(
                "index {name} has a definition not understood: {definition}"
            )))
        })?;
        sqlx::query(&sql).execute(&mut *tx).await?;
        names.push(name);
    }
    Ok(names)
}

/// `CREATE [UNIQUE] INDEX name ON [schema.]table USING ...` (as `pg_get_indexdef` writes it)
/// made for `twin` and named `name` + [`REBUILT`].
fn index_on_twin(definition: &str, name: &str, table: &str, twin: &str) -> Option<String> {
    let (head, rest) = definition.split_once(" ON ")?;
    let head = head.strip_suffix(name)?;
    let (on, using) = rest.split_once(" USING ")?;
    let schema = on.strip_suffix(table)?;
    Some(format!("{head}{name}{REBUILT} ON {schema}{twin} USING {using}"))
}

/// The columns COPY writes, per table of [`READ_MODEL_TABLES`] in order: every column but
/// the generated ones (PostgreSQL computes those, e.g. the lessons' `search`).
async fn copied_columns(tx: &mut sqlx::PgConnection) -> Result<Vec<Vec<String>>, AppError> {
    let mut per_table = Vec::with_capacity(READ_MODEL_TABLES.len());
    for table in READ_MODEL_TABLES {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER' \
             ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
        per_table.push(columns);
    }
    Ok(per_table)
}

/// Chunks of COPY text read ahead of the one PostgreSQL is taking in.
const COPY_AHEAD: usize = 4;

/// What the copy reader hands over, table after table.
enum CopyPiece {
    /// Rows of the current table in COPY's text format.
    Rows(String),
    /// The current table has no more rows.
    TableDone,
}

/// Reads each of `tables` from its scratch file as COPY text, in chunks of `ROWS_PER_CHUNK`
/// rows, and hands them over in order; stops early (without an error of its own) when nobody
/// takes them. Runs on a blocking thread, on read-only connections of its own: the scratch
/// files are complete and no longer written.
fn copy_text_of(tables: &[TableCopy], pieces: &tokio::sync::mpsc::Sender<CopyPiece>) -> Result<(), AppError> {
    let mut open: HashMap<&std::path::Path, rusqlite::Connection> = HashMap::new();
    for copy in tables {
        let db = match open.entry(copy.scratch.as_path()) {
            std::collections::hash_map::Entry::Occupied(db) => db.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(rusqlite::Connection::open_with_flags(
                    &copy.scratch,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?)
            }
        };
        let width = copy.columns.len();
        let mut statement = db.prepare(&format!(
            "SELECT rowid, {} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT {ROWS_PER_CHUNK}",
            copy.list(),
            copy.table
        ))?;
        let mut after_rowid = 0;
        loop {
            let (chunk, last_rowid) = copy_text(&mut statement, width, after_rowid)?;
            if chunk.is_empty() {
                break;
            }
            if pieces.blocking_send(CopyPiece::Rows(chunk)).is_err() {
                return Ok(());
            }
            after_rowid = last_rowid;
        }
        if pieces.blocking_send(CopyPiece::TableDone).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Up to `ROWS_PER_CHUNK` rows after `after_rowid` (as `statement` selects them: the rowid,
/// then `width` columns), in COPY's text format, and the last rowid read.
fn copy_text(
    statement: &mut rusqlite::Statement<'_>,
    width: usize,
    after_rowid: i64,
) -> Result<(String, i64), rusqlite::Error> {
    let mut rows = statement.query([after_rowid])?;
    let mut out = String::new();
    let mut last = after_rowid;
    while let Some(row) = rows.next()? {
        last = row.get(0)?;
        for i in 0..width {
            if i > 0 {
                out.push('\t');
            }
            match row.get_ref(i + 1)? {
                ValueRef::Null => out.push_str("\\N"),
                ValueRef::Integer(v) => {
                    let _ = write!(out, "{v}");
                }
                ValueRef::Real(v) => {
                    let _ = write!(out, "{v}");
                }
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                    escape(&mut out, &String::from_utf8_lossy(bytes))
                }
            }
        }
        out.push('\n');
    }
    Ok((out, last))
}

/// COPY text format: backslash, tab, newline and carriage return are escaped; the text between
/// them goes in whole.
fn escape(out: &mut String, text: &str) {
    // The four are ASCII, and no byte of a multi-byte character is: every cut is a char boundary.
    let mut plain = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        out.push_str(escaped);
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lessons `(rowid, id, words)` into a migrated scratch file, through the triggers that
    /// keep its full-text index.
    async fn with_lessons(lessons: &[(i64, &str, &str)]) -> Scratch {
        let scratch = Scratch::create().await.expect("scratch");
        let Backend::Sqlite(pool) = scratch.store.backend() else { unreachable!("a scratch is SQLite") };
        for (rowid, id, words) in lessons {
            sqlx::query(
                "INSERT INTO rm_lessons (rowid, id, doetank_id, recorded_by, phase, kind, title, body, tags, \
                 title_stems, body_stems, recorded_at, position) \
                 VALUES ($1, $2, 'd', 'm', 'LEARN', 'WORKED', $3, $3, '', $3, $3, '2026-01-01T00:00:00Z', $1)",
            )
            .bind(rowid)
            .bind(id)
            .bind(words)
            .execute(pool)
            .await
            .expect("lesson");
        }
        scratch
    }

    /// The swap's copy of the full-text index from `scratch` into a file that holds
    /// `main_lessons` and an empty index; returns whether it was copied (or made again) and the
    /// ids it then finds for `word`, once it is checked whole.
    async fn swapped_index(
        scratch: &Scratch,
        main_lessons: &[(i64, &str, &str)],
        word: &str,
    ) -> (bool, Vec<String>) {
        let main = with_lessons(main_lessons).await;
        let Backend::Sqlite(pool) = main.store.backend() else { unreachable!("a scratch is SQLite") };
        sqlx::query("INSERT INTO rm_lessons_fts (rm_lessons_fts) VALUES ('delete-all')")
            .execute(pool)
            .await
            .expect("empty the index");
        let mut conn = pool.acquire().await.expect("connection").detach();
        sqlx::query("ATTACH DATABASE $1 AS scratch_models")
            .bind(scratch.path.display().to_string())
            .execute(&mut conn)
            .await
            .expect("attach");
        let copied = copy_lesson_index(&mut conn).await.expect("copy the index");
        sqlx::query("INSERT INTO rm_lessons_fts (rm_lessons_fts, rank) VALUES ('integrity-check', 1)")
            .execute(pool)
            .await
            .expect("the full-text index matches the lessons");
        let found = sqlx::query_scalar(
            "SELECT l.id FROM rm_lessons_fts JOIN rm_lessons l ON l.rowid = rm_lessons_fts.rowid \
             WHERE rm_lessons_fts MATCH $1 ORDER BY l.id",
        )
        .bind(word)
        .fetch_all(pool)
        .await
        .expect("search");
        (copied, found)
    }

    /// A scratch keeps as many MiB of its pages in memory as the rebuild is told (SQLite's
    /// `cache_size`, negative for KiB).
    #[tokio::test]
    async fn a_scratch_keeps_as_many_pages_in_memory_as_it_is_told() {
        let scratch = Scratch::create().await.expect("scratch");
        for mib in [1, 32] {
            let (mut conn, _) = scratch.connection(mib).await.expect("connection");
            let kib: i64 =
                sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut *conn).await.expect("cache size");
            assert_eq!(kib, -1024 * i64::from(mib));
        }
    }

    #[tokio::test]
    async fn the_lessons_index_is_copied_where_the_lessons_kept_their_rowids() {
        let lessons = [(4, "a", "pilot werkt"), (9, "b", "regel knelt")];
        let scratch = with_lessons(&lessons).await;
        assert_eq!(swapped_index(&scratch, &lessons, "knelt").await, (true, vec!["b".to_string()]));
    }

    #[tokio::test]
    async fn the_lessons_index_is_made_again_where_the_lessons_got_rowids_of_their_own() {
        let scratch = with_lessons(&[(4, "a", "pilot werkt"), (9, "b", "regel knelt")]).await;
        // The same lessons under other rowids: copied, the index would find "a" for "knelt".
        let main = [(1, "b", "regel knelt"), (2, "a", "pilot werkt")];
        assert_eq!(swapped_index(&scratch, &main, "knelt").await, (false, vec!["b".to_string()]));
        assert_eq!(swapped_index(&scratch, &main, "pilot").await, (false, vec!["a".to_string()]));
    }

    #[test]
    fn copy_text_escapes_only_what_copy_reads_as_special() {
        let mut out = String::new();
        escape(&mut out, "a\\b\tc\nd\re — één");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re — één");
        let mut plain = String::from("x");
        escape(&mut plain, "");
        assert_eq!(plain, "x");
    }

    #[test]
    fn an_index_is_made_again_on_the_twin_under_a_name_of_its_own() {
        let def = "CREATE INDEX rm_doetanks_phase ON public.rm_doetanks USING btree (current_phase)";
        assert_eq!(
            index_on_twin(def, "rm_doetanks_phase", "rm_doetanks", "rm_doetanks__rebuilt").as_deref(),
            Some("CREATE INDEX rm_doetanks_phase__rebuilt ON public.rm_doetanks__rebuilt USING btree (current_phase)")
        );
        let gin = "CREATE UNIQUE INDEX x ON rm_lessons USING gin (search)";
        assert_eq!(
            index_on_twin(gin, "x", "rm_lessons", "t").as_deref(),
            Some("CREATE UNIQUE INDEX x__rebuilt ON t USING gin (search)")
        );
        assert_eq!(index_on_twin(def, "other_name", "rm_doetanks", "t"), None);
        assert_eq!(index_on_twin(def, "rm_doetanks_phase", "rm_members", "t"), None);
    }
}
