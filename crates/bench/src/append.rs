//! Scenario 1: single-event commands per second (load the stream, decide, append with the
//! expected version), 1 writer and 16 writers on different streams. doetank loads a stream as
//! its application does (`EventStore::stream_to_decide`: kept in memory from this process's
//! last append to it, else read); the peer reads it each time. Baseline: raw INSERTs of the
//! same row shape, one transaction each. Peer: cqrs-es on sqlite-es / postgres-es.

use std::sync::Arc;
use std::time::{Duration, Instant};

use doetank_domain::EncodedEvent;
use doetank_store::{EventStore, ExpectedVersion, Metadata, StreamId};
use serde_json::json;
use uuid::Uuid;

use crate::db::Backend;
use crate::peer::{Notebook, TakeNote};
use crate::report::{Report, Target};
use crate::Options;

/// Commands per stream before a writer moves on, so every subject loads streams of the same length.
const STREAM_LENGTH: u64 = 20;

/// Runs `writers` tasks calling `op(writer, i)` until `duration` is over; returns ops per second.
async fn measure<F, Fut>(writers: usize, duration: Duration, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while started.elapsed() < duration {
                    op(w, done).await?;
                    done += 1;
                }
                anyhow::Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn note(n: u64) -> EncodedEvent {
    EncodedEvent {
        event_type: "NoteTaken".into(),
        schema_version: 1,
        payload: json!({ "n": n, "text": "Wat werkt, wat niet" }),
    }
}

pub async fn run(backend: &Backend, o: &Options, report: &mut Report) -> anyhow::Result<()> {
    for writers in [1usize, 16] {
        let subject = |what: &str| format!("{what}, {writers} writer{}", if writers > 1 { "s" } else { "" });
        // The targets are set at 16 writers: twice the peer, within 2× of raw INSERT.
        let at_16_writers = |target| if writers == 16 { vec![target] } else { vec![] };

        // Baseline: the same row, raw INSERT, one transaction each.
        let fresh = backend.fresh().await?;
        let store = EventStore::connect_with(&fresh.url, 20).await?;
        store.migrate().await?;
        let raw = raw_inserts(&store, writers, o.duration()).await?;
        report.add(
            "append",
            backend.name(),
            &subject("raw INSERT (baseline)"),
            "commands/s",
            raw,
            Some(raw),
            "the limit",
        );

        // doetank: load, decide, append with expected version; gap-free global order.
        let fresh = backend.fresh().await?;
        let store = EventStore::connect_with(&fresh.url, 20).await?;
        store.migrate().await?;
        let ours = {
            let store = store.clone();
            let streams: Arc<Vec<Uuid>> = Arc::new((0..writers).map(|_| Uuid::new_v4()).collect());
            measure(writers, o.duration(), move |w, i| {
                let (store, streams) = (store.clone(), streams.clone());
                async move {
                    let s = StreamId::new(
                        "notebook",
                        Uuid::from_u64_pair(streams[w].as_u64_pair().0, i / STREAM_LENGTH),
                    );
                    // As the application loads a stream to decide on: kept from this
                    // process's last append to it when there was one, else read.
                    let known = store.stream_to_decide(&s, false).await?;
                    let mut notes = 0u64;
                    for e in known.events.iter() {
                        notes = e.payload["n"].as_u64().unwrap_or(notes);
                    }
                    let version = known.version;
                    store
                        .append(
                            &s,
                            ExpectedVersion::Exact(version),
                            &[note(notes + 1)],
                            &Metadata::new("bench"),
                        )
                        .await?;
                    Ok(())
                }
            })
            .await?
        };
        let (transactions, requests) = store.group_commit_stats();
        eprintln!("   doetank group commit: {requests} appends in {transactions} transactions");
        report
            .add(
                "append",
                backend.name(),
                &subject("doetank"),
                "commands/s",
                ours,
                Some(raw),
                "gap-free global order; streams kept between commands",
            )
            .aim(&at_16_writers(Target::RatioAtLeast(0.5)));

        // The peer.
        let fresh = backend.fresh().await?;
        let theirs = peer(backend, &fresh.url, writers, o.duration()).await?;
        report.add(
            "append",
            backend.name(),
            &subject("cqrs-es (peer)"),
            "commands/s",
            theirs,
            Some(raw),
            "no global order across streams",
        );
        report
            .add(
                "append",
                backend.name(),
                &subject("doetank vs cqrs-es"),
                "speed-up",
                ours,
                Some(theirs),
                "target ≥ 2 at 16 writers",
            )
            .aim(&at_16_writers(Target::RatioAtLeast(2.0)));
    }
    Ok(())
}

async fn raw_inserts(store: &EventStore, writers: usize, duration: Duration) -> anyhow::Result<f64> {
    let backend = store.backend().clone();
    backend_ddl(&backend).await?;
    measure(writers, duration, move |_, i| {
        let backend = backend.clone();
        async move {
            doetank_store::on_pool!(&backend, pool => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO bench_raw (event_id, stream_id, stream_type, version, event_type, schema_version, payload, \
                     actor, command_id, correlation_id, causation_id, recorded_at) VALUES ($1, $2, 'notebook', $3, 'NoteTaken', 1, $4, \
                     'bench', NULL, $5, NULL, $6)",
                )
                .bind(Uuid::now_v7())
                .bind(format!("notebook-{}", Uuid::new_v4()))
                .bind(i as i64 + 1)
                .bind(sqlx::types::Json(note(i).payload))
                .bind(Uuid::new_v4())
                .bind(chrono::Utc::now())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            });
            Ok(())
        }
    })
    .await
}

async fn backend_ddl(backend: &doetank_store::Backend) -> anyhow::Result<()> {
    match backend {
        doetank_store::Backend::Sqlite(pool) => {
            sqlx::query(
                "CREATE TABLE bench_raw (position INTEGER PRIMARY KEY, event_id BLOB NOT NULL, stream_id TEXT NOT NULL, \
                 stream_type TEXT NOT NULL, version INTEGER NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL, \
                 payload TEXT NOT NULL, actor TEXT, command_id BLOB, correlation_id BLOB NOT NULL, causation_id BLOB, recorded_at TEXT NOT NULL)",
            )
            .execute(pool)
            .await?;
        }
        doetank_store::Backend::Postgres(pool) => {
            sqlx::query(
                "CREATE TABLE bench_raw (position BIGSERIAL PRIMARY KEY, event_id UUID NOT NULL, stream_id TEXT NOT NULL, \
                 stream_type TEXT NOT NULL, version BIGINT NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL, \
                 payload JSONB NOT NULL, actor TEXT, command_id UUID, correlation_id UUID NOT NULL, causation_id UUID, recorded_at TIMESTAMPTZ NOT NULL)",
            )
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

async fn peer(backend: &Backend, url: &str, writers: usize, duration: Duration) -> anyhow::Result<f64> {
    let ids: Arc<Vec<Uuid>> = Arc::new((0..writers).map(|_| Uuid::new_v4()).collect());
    let stream = move |ids: &[Uuid], w: usize, i: u64| format!("{}-{}", ids[w], i / STREAM_LENGTH);
    match backend {
        Backend::Sqlite => {
            let pool = sqlite_es::default_sqlite_pool(url).await;
            sqlx::query(crate::peer::SQLITE_SCHEMA).execute(&pool).await?;
            let cqrs = Arc::new(sqlite_es::sqlite_cqrs::<Notebook>(pool, vec![], ()));
            measure(writers, duration, move |w, i| {
                let (cqrs, ids) = (cqrs.clone(), ids.clone());
                async move {
                    // SQLite answers "database is locked" under concurrent writers; a real
                    // client retries, so the bench does too.
                    loop {
                        match cqrs.execute(&stream(&ids, w, i), TakeNote("Wat werkt, wat niet".into())).await
                        {
                            Ok(()) => return Ok(()),
                            Err(cqrs_es::AggregateError::AggregateConflict) => continue,
                            Err(cqrs_es::AggregateError::DatabaseConnectionError(_)) => continue,
                            Err(err) => return Err(anyhow::anyhow!("cqrs-es: {err}")),
                        }
                    }
                }
            })
            .await
        }
        Backend::Postgres(_) => {
            // The same pool settings as the store's (no ping before each checkout), so the pools do not differ.
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(20)
                .test_before_acquire(false)
                .connect(url)
                .await?;
            sqlx::query(crate::peer::POSTGRES_SCHEMA).execute(&pool).await?;
            let cqrs = Arc::new(postgres_es::postgres_cqrs::<Notebook>(pool, vec![], ()));
            measure(writers, duration, move |w, i| {
                let (cqrs, ids) = (cqrs.clone(), ids.clone());
                async move {
                    cqrs.execute(&stream(&ids, w, i), TakeNote("Wat werkt, wat niet".into()))
                        .await
                        .map_err(|e| anyhow::anyhow!("cqrs-es: {e}"))
                }
            })
            .await
        }
    }
}
