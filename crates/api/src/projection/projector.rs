//! Applies the log to the read models in global order, batch by batch, each batch in one
//! transaction together with the checkpoint, so a crash never applies an event twice or skips
//! one. The checkpoint row is locked while a batch is written: when several processes share a
//! database, exactly one applies each batch and the others see the checkpoint move.

use std::sync::Arc;
use std::time::Duration;

use doetank_domain::codec::Payload;
use doetank_store::{on_pool, BeginWrite, EventStore};
use tokio::sync::{watch, Mutex};

use crate::error::AppError;
use crate::projection::apply::statements;
use crate::sql::{self, Arg, RunBatch};

/// Events per transaction while keeping up: small enough that the checkpoint row (which other
/// nodes wait on) and the thread running the batch are soon free again.
const BATCH: i64 = 500;

/// Every projection table, in the order a rebuild empties them.
pub const READ_MODEL_TABLES: &[&str] = &[
    "rm_members",
    "rm_challenges",
    "rm_challenge_supporters",
    "rm_doetanks",
    "rm_doetank_members",
    "rm_doetank_phases",
    "rm_doetank_activities",
    "rm_lessons",
    "rm_lesson_tags",
    "rm_cafes",
    "rm_cafe_program",
    "rm_ideation_events",
    "rm_ideas",
    "rm_idea_follow_ups",
    "rm_pilots",
    "rm_charters",
    "rm_charter_signatures",
    "rm_reuses",
    "rm_lineage_nodes",
    "rm_lineage_links",
    "rm_timeline",
    "rm_timeline_rises",
    "rm_timeline_falls",
    "rm_stream_clock",
];

/// The version of what the projections write. Bump it with any change to the rows a
/// projection writes for an event (a key, a column, a normal form): a server that finds read
/// models built by another version rebuilds them as it starts
/// ([`Projector::rebuild_if_built_otherwise`]), so rows written before the change follow it.
///
/// 1: the first recorded (thirty-second session). 2: organisations' lineage nodes keyed by their
/// name one-spaced and in lower case, one node for every spelling. 3: each lesson tells whether
/// its doetank is public (`rm_lessons.doetank_public`).
pub const PROJECTION_VERSION: i64 = 3;

/// Records the version that built the read models.
const VERSION_STAMP: &str = "UPDATE projection_version SET version = $1";

/// The session-level advisory lock nodes starting on one PostgreSQL database take turns under
/// to rebuild read models another version built. Not the rebuild's own lock (held by the
/// swap's transaction, on another connection of this process), which it would wait for.
const STARTUP_REBUILD_LOCK: i64 = 0x646f_6574_616e_6b02;

/// A node's turn at the start-up rebuild, held until dropped. On PostgreSQL a connection taken
/// out of the pool holds the lock: dropping it closes the session, which releases the lock
/// however the rebuild ended (a pooled connection would keep it). SQLite serves one node.
struct StartupTurn {
    _held: Option<sqlx::PgConnection>,
}

impl StartupTurn {
    async fn wait(backend: &doetank_store::Backend) -> Result<StartupTurn, AppError> {
        let doetank_store::Backend::Postgres(pool) = backend else { return Ok(StartupTurn { _held: None }) };
        let mut conn = pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)").bind(STARTUP_REBUILD_LOCK).execute(&mut conn).await?;
        Ok(StartupTurn { _held: Some(conn) })
    }
}

#[derive(Clone, Debug)]
pub struct Projector {
    store: EventStore,
    /// One catch-up at a time within this process.
    gate: Arc<Mutex<()>>,
    applied: Arc<watch::Sender<i64>>,
    /// MiB of pages each scratch file of a rebuild keeps in memory (see `bulk`).
    scratch_cache_mib: u32,
}

impl Projector {
    pub fn new(store: EventStore) -> Self {
        Projector {
            store,
            gate: Arc::new(Mutex::new(())),
            applied: Arc::new(watch::channel(0).0),
            scratch_cache_mib: super::bulk::SCRATCH_CACHE_MIB,
        }
    }

    /// Rebuilds with `mib` of pages in memory for each of the two scratch files, rather than
    /// [`super::bulk::SCRATCH_CACHE_MIB`]: less for a node short of memory, more for speed.
    pub fn with_scratch_cache(mut self, mib: u32) -> Self {
        self.scratch_cache_mib = mib.max(1);
        self
    }

    /// Wakes each time the read models advance, with the position applied.
    pub fn watch_applied(&self) -> watch::Receiver<i64> {
        self.applied.subscribe()
    }

    pub async fn checkpoint(&self) -> Result<i64, AppError> {
        sql::fetch_count(
            self.store.backend(),
            "SELECT position FROM rm_checkpoint WHERE name = 'read_models'",
            &[],
        )
        .await
    }

    /// Applies everything committed so far; returns the checkpoint.
    pub async fn catch_up(&self) -> Result<i64, AppError> {
        self.catch_up_with(BATCH, &|_| {}, None).await
    }

    /// Applies events until the read models include `position` (read-your-writes).
    pub async fn catch_up_to(&self, position: i64) -> Result<i64, AppError> {
        if *self.applied.borrow() >= position {
            return Ok(*self.applied.borrow());
        }
        self.catch_up_with(BATCH, &|_| {}, Some(position)).await
    }

    /// Applies what is committed, batch by batch; with `until`, not if a catch-up that held the
    /// turn meanwhile applied that position already (the projector's own, woken by the same
    /// append, most often has).
    async fn catch_up_with(
        &self,
        batch: i64,
        progress: &(dyn Fn(i64) + Sync),
        until: Option<i64>,
    ) -> Result<i64, AppError> {
        let _one_at_a_time = self.gate.lock().await;
        let applied = *self.applied.borrow();
        if until.is_some_and(|position| applied >= position) {
            return Ok(applied);
        }
        loop {
            let (checkpoint, more) = self.apply_batch(batch).await?;
            self.applied.send_if_modified(|p| {
                let changed = *p < checkpoint;
                *p = (*p).max(checkpoint);
                changed
            });
            progress(checkpoint);
            if !more {
                return Ok(checkpoint);
            }
        }
    }

    /// Applies up to one batch; returns the checkpoint after it and whether there may be more to
    /// apply. A batch short of `limit` that this process applied reached the head as it stood
    /// when the batch was read: it is not read again only to find nothing new (two statements
    /// of every command), since whatever is appended later wakes the projector again (`run`,
    /// `catch_up_to`). A batch another process applied meanwhile says nothing of the head.
    async fn apply_batch(&self, limit: i64) -> Result<(i64, bool), AppError> {
        let started = std::time::Instant::now();
        let seen = self.checkpoint().await?;
        let events = self.store.read_all_text(seen, limit).await?;
        let read = started.elapsed();
        let Some(last) = events.last().map(|(e, _)| e.position) else {
            return Ok((seen, false));
        };
        let full = events.len() as i64 >= limit;
        let mut batch = Vec::with_capacity(events.len() * 3);
        for (event, payload) in &events {
            batch.extend(statements(event, Payload::Text(payload))?);
        }
        batch.extend(super::story::end_of_batch(seen, last, self.store.is_sqlite()));
        let decided = started.elapsed();
        let applied = on_pool!(self.store.backend(), pool => {
            let mut tx = pool.begin_write().await?;
            let locked: i64 = sqlx::query_scalar(
                "UPDATE rm_checkpoint SET position = position WHERE name = 'read_models' RETURNING position",
            )
            .fetch_one(&mut *tx)
            .await?;
            if locked != seen {
                // Another process applied this batch meanwhile.
                tx.rollback().await?;
                false
            } else {
                let locked_at = started.elapsed();
                tx.run_batch(&batch).await?;
                tracing::trace!(statements = batch.len(), locked_ms = locked_at.as_secs_f64() * 1e3,
                    written_ms = started.elapsed().as_secs_f64() * 1e3, "batch written");
                sqlx::query("UPDATE rm_checkpoint SET position = $1 WHERE name = 'read_models'")
                    .bind(last)
                    .execute(&mut *tx)
                    .await?;
                if seen == 0 {
                    // Read models built from the start are this version's.
                    sqlx::query(VERSION_STAMP).bind(PROJECTION_VERSION).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                true
            }
        });
        if applied {
            tracing::debug!(
                from = seen,
                to = last,
                events = events.len(),
                read_ms = read.as_secs_f64() * 1e3,
                decided_ms = decided.as_secs_f64() * 1e3,
                committed_ms = started.elapsed().as_secs_f64() * 1e3,
                "read models advanced"
            );
            Ok((last, full))
        } else {
            Ok((self.checkpoint().await?, true))
        }
    }

    /// Builds every read model again from the whole log and swaps them in at once (see
    /// `bulk`), then applies what was appended meanwhile; `progress` gets the position.
    pub async fn rebuild(&self, progress: &(dyn Fn(i64) + Sync)) -> Result<i64, AppError> {
        let applied = super::bulk::rebuild(&self.store, self.scratch_cache_mib, progress).await?;
        // A crash before this line leaves the old version: the next start rebuilds again.
        self.built_by_this_version().await?;
        self.applied.send_replace(applied);
        // Whatever was appended while the scratch was built.
        let head = self.catch_up_with(BATCH, progress, None).await?;
        tracing::info!(position = head, "read models rebuilt");
        Ok(head)
    }

    /// The version of the projection code that built the read models (0: one from before
    /// versions were recorded).
    pub async fn built_by(&self) -> Result<i64, AppError> {
        sql::fetch_count(self.store.backend(), "SELECT version FROM projection_version", &[]).await
    }

    /// The other version of the projection code that built the read models, if another did:
    /// read models not built yet (nothing applied) will be this version's.
    pub async fn built_otherwise(&self) -> Result<Option<i64>, AppError> {
        let built_by = self.built_by().await?;
        if built_by == PROJECTION_VERSION || self.checkpoint().await? == 0 {
            return Ok(None);
        }
        Ok(Some(built_by))
    }

    async fn built_by_this_version(&self) -> Result<(), AppError> {
        sql::execute(self.store.backend(), VERSION_STAMP, &[Arg::Int(PROJECTION_VERSION)]).await?;
        Ok(())
    }

    /// Rebuilds the read models when another version of the projection code built them, as a
    /// server starts: an upgrade that changes what a projection writes would otherwise leave the
    /// rows written before it as they were, beside rows written the new way. Read models not
    /// built yet (nothing applied) are built by this version anyway. Returns whether it rebuilt.
    ///
    /// Nodes of one new build starting at once on a shared PostgreSQL database take turns: the
    /// first rebuilds, the others wait for it and then find the read models theirs (until the
    /// thirty-third session each rebuilt again, one after the other, while none served).
    pub async fn rebuild_if_built_otherwise(
        &self,
        progress: &(dyn Fn(i64) + Sync),
    ) -> Result<bool, AppError> {
        if self.built_otherwise().await?.is_none() {
            return Ok(false);
        }
        let turn = StartupTurn::wait(self.store.backend()).await?;
        let Some(built_by) = self.built_otherwise().await? else {
            tracing::info!("another node rebuilt the read models while this one waited");
            return Ok(false);
        };
        tracing::warn!(
            built_by,
            this_version = PROJECTION_VERSION,
            "the read models were built by another version of the projections: rebuilding them from the log"
        );
        self.rebuild(progress).await?;
        drop(turn);
        Ok(true)
    }

    /// Keeps the read models current: wakes on this process's appends, and polls for other
    /// processes' appends, until `shutdown` fires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut head = self.store.watch_head();
        // What to catch up to: after a poll everything there is (`Some(None)`); after an append
        // its position, and only while it is past the checkpoint (the command that appended it
        // has most often applied it already, to read its own write).
        let mut due = Some(None);
        loop {
            if let Some(until) = due {
                if let Err(err) = self.catch_up_with(BATCH, &|_| {}, until).await {
                    tracing::error!(error = %err, "projection failed; retrying");
                }
            }
            due = tokio::select! {
                _ = head.changed() => {
                    let appended = *head.borrow_and_update();
                    (appended > *self.applied.borrow()).then_some(Some(appended))
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => Some(None),
                _ = shutdown.changed() => return,
            };
        }
    }
}
