//! The event store suite, run against SQLite and PostgreSQL alike.

use std::collections::HashSet;
use std::sync::Arc;

use doetank_domain::EncodedEvent;
use doetank_store::{ExpectedVersion, Metadata, RecordedEvent, StoreError, StreamId};
use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::support::TestDb;

fn event(n: i64) -> EncodedEvent {
    EncodedEvent {
        event_type: "NoteTaken".into(),
        schema_version: 1,
        payload: json!({ "n": n, "text": "één" }),
    }
}

fn stream() -> StreamId {
    StreamId::new("doetank", Uuid::new_v4())
}

both_backends!(
    appends_atomically_and_reads_a_stream_back_with_metadata,
    a_stale_expected_version_is_a_typed_conflict_that_writes_nothing,
    sixteen_concurrent_writers_take_every_version_exactly_once,
    a_repeated_command_id_writes_nothing_new,
    the_whole_log_reads_in_global_order_in_pages,
    the_log_refuses_updates_and_deletes,
    appends_written_together_keep_their_own_verdicts_and_a_gap_free_order,
    a_batch_that_fails_is_written_again_one_by_one_and_only_the_bad_append_fails,
    a_stream_kept_for_deciding_never_hides_another_writers_events,
    the_log_read_with_payload_texts_is_the_log_read_with_values,
    the_marks_of_a_log_migrated_to_them_are_those_its_writes_keep,
);

async fn appends_atomically_and_reads_a_stream_back_with_metadata(db: &TestDb) {
    let store = &db.store;
    let s = stream();
    let meta = Metadata::new("member:42").with_command_id(Uuid::new_v4());
    let result =
        store.append(&s, ExpectedVersion::NoStream, &[event(1), event(2)], &meta).await.expect("append");
    assert_eq!(result.stream_version, 2);
    assert_eq!(result.last_position - result.first_position, 1);
    assert!(!result.deduplicated);

    let events = store.read_stream(&s, 1).await.expect("read");
    assert_eq!(events.len(), 2);
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(events[0].position, result.first_position);
    assert_eq!(events[0].payload, json!({ "n": 1, "text": "één" }));
    assert_eq!(events[0].metadata, meta);
    assert_eq!(events[0].stream_id, s.to_string());
    assert_eq!(events[0].stream_type, "doetank");
    assert!((chrono::Utc::now() - events[0].recorded_at).num_seconds().abs() < 60);

    let from_two = store.read_stream(&s, 2).await.expect("read from version 2");
    assert_eq!(from_two.len(), 1);
    assert_eq!(store.stream_version(&s).await.expect("version"), 2);

    // On SQLite a stream is read in the calling thread, the log through sqlx: both must decode
    // every column alike (a metadata without actor or command id too).
    let bare = Metadata { actor: None, command_id: None, correlation_id: Uuid::new_v4(), causation_id: None };
    store.append(&s, ExpectedVersion::Exact(2), &[event(3)], &bare).await.expect("append bare");
    let log = store.read_all(result.first_position - 1, 1_000).await.expect("read the log");
    let log: Vec<_> = log.into_iter().filter(|e| e.stream_id == s.to_string()).collect();
    assert_eq!(store.read_stream(&s, 1).await.expect("read"), log);
    assert_eq!(log[2].metadata, bare);
}

async fn a_stale_expected_version_is_a_typed_conflict_that_writes_nothing(db: &TestDb) {
    let store = &db.store;
    let s = stream();
    store.append(&s, ExpectedVersion::NoStream, &[event(1)], &Metadata::new("t")).await.expect("first");
    let head = store.head_position().await.expect("head");

    let err = store.append(&s, ExpectedVersion::Exact(0), &[event(2), event(3)], &Metadata::new("t")).await;
    match err {
        Err(StoreError::VersionConflict { expected, actual, .. }) => {
            assert_eq!(expected, ExpectedVersion::Exact(0));
            assert_eq!(actual, 1);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    let err = store.append(&s, ExpectedVersion::NoStream, &[event(2)], &Metadata::new("t")).await;
    assert!(matches!(err, Err(StoreError::VersionConflict { actual: 1, .. })), "{err:?}");

    assert_eq!(store.head_position().await.expect("head"), head, "a refused append must not move the head");
    assert_eq!(store.count_events().await.expect("count"), 1);
    assert_eq!(store.read_stream(&s, 1).await.expect("read").len(), 1);
}

async fn sixteen_concurrent_writers_take_every_version_exactly_once(db: &TestDb) {
    const WRITERS: i64 = 16;
    const PER_WRITER: i64 = 5;
    let store = Arc::new(db.store.clone());
    let s = stream();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let (mut written, mut conflicts) = (0, 0);
            while written < PER_WRITER {
                let version = store.stream_version(&s).await.expect("version");
                match store
                    .append(
                        &s,
                        ExpectedVersion::Exact(version),
                        &[event(writer * 100 + written)],
                        &Metadata::new("w"),
                    )
                    .await
                {
                    Ok(result) => {
                        assert_eq!(result.stream_version, version + 1);
                        written += 1;
                    }
                    Err(StoreError::VersionConflict { .. }) => conflicts += 1,
                    Err(other) => panic!("unexpected error {other}"),
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.expect("writer task");
    }
    let events = store.read_stream(&s, 1).await.expect("read");
    let versions: Vec<i64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=WRITERS * PER_WRITER).collect::<Vec<_>>(), "every version exactly once");
    let payloads: HashSet<String> = events.iter().map(|e| e.payload.to_string()).collect();
    assert_eq!(payloads.len() as i64, WRITERS * PER_WRITER, "no write duplicated");
    assert_eq!(store.count_events().await.expect("count"), WRITERS * PER_WRITER, "the losers wrote nothing");
    assert!(conflicts > 0, "16 writers on one stream must have collided");
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=WRITERS * PER_WRITER).collect::<Vec<_>>(), "gap-free global positions");
}

/// Concurrent appends share transactions (group commit): a conflict or a replayed command id in
/// the same batch must not touch the others, and positions stay gap-free.
async fn appends_written_together_keep_their_own_verdicts_and_a_gap_free_order(db: &TestDb) {
    let store = db.store.clone();
    let contested = stream();
    let retried = stream();
    let command = Metadata::new("t").with_command_id(Uuid::new_v4());
    let mut tasks = Vec::new();
    for round in 0..4 {
        for n in 0..8 {
            let (writer, own) = (store.clone(), stream());
            tasks.push(tokio::spawn(async move {
                (
                    "own",
                    writer
                        .append(&own, ExpectedVersion::NoStream, &[event(n), event(n)], &Metadata::new("t"))
                        .await,
                )
            }));
            let (writer, contested) = (store.clone(), contested.clone());
            tasks.push(tokio::spawn(async move {
                let meta = Metadata::new("t");
                (
                    "contested",
                    writer.append(&contested, ExpectedVersion::Exact(round), &[event(n)], &meta).await,
                )
            }));
            let (writer, retried, command) = (store.clone(), retried.clone(), command.clone());
            tasks.push(tokio::spawn(async move {
                ("retried", writer.append(&retried, ExpectedVersion::Any, &[event(n)], &command).await)
            }));
        }
    }
    let (mut own, mut contested_won, mut retried_results) = (0, 0, Vec::new());
    for task in tasks {
        match task.await.expect("task") {
            ("own", Ok(result)) => {
                assert_eq!(result.last_position - result.first_position, 1, "both events, adjacent");
                own += 1;
            }
            ("contested", Ok(_)) => contested_won += 1,
            ("contested", Err(StoreError::VersionConflict { .. })) => {}
            ("retried", Ok(result)) => retried_results.push(result),
            (what, other) => panic!("{what}: unexpected {other:?}"),
        }
    }
    assert_eq!(own, 32);
    assert!((1..=4).contains(&contested_won), "each expected version wins at most once: {contested_won}");
    assert_eq!(retried_results.len(), 32);
    assert_eq!(retried_results.iter().filter(|r| !r.deduplicated).count(), 1, "one command id, one write");
    assert!(retried_results.windows(2).all(|w| w[0].last_position == w[1].last_position));

    let total = 64 + contested_won + 1;
    assert_eq!(store.count_events().await.expect("count"), total);
    assert_eq!(store.head_position().await.expect("head"), total, "the head moved only by what was written");
    let log = store.read_log(&Default::default(), 0, 1000).await.expect("log");
    let positions: Vec<i64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>(), "gap-free global positions");
    let versions: Vec<i64> =
        store.read_stream(&contested, 1).await.expect("read").iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=contested_won).collect::<Vec<_>>());
}

async fn a_repeated_command_id_writes_nothing_new(db: &TestDb) {
    let store = &db.store;
    let s = stream();
    let meta = Metadata::new("t").with_command_id(Uuid::new_v4());
    let first = store.append(&s, ExpectedVersion::NoStream, &[event(1)], &meta).await.expect("first");
    // The retry carries the same command id; even its (now stale) expected version does not matter.
    let again = store.append(&s, ExpectedVersion::NoStream, &[event(1)], &meta).await.expect("retry");
    assert!(again.deduplicated);
    assert_eq!(
        (again.stream_version, again.first_position, again.last_position),
        (first.stream_version, first.first_position, first.last_position)
    );
    assert_eq!(store.count_events().await.expect("count"), 1);
    assert_eq!(store.head_position().await.expect("head"), first.last_position);

    let recorded = store.command_result(meta.command_id.expect("id")).await.expect("lookup").expect("seen");
    assert_eq!(recorded.stream_id, s.to_string());
    assert_eq!(recorded.result.last_position, first.last_position);
    assert!(recorded.result.deduplicated);
    assert_eq!(recorded.fingerprint, None, "appended without one");
    assert!(store.command_result(Uuid::new_v4()).await.expect("lookup").is_none());

    // With a fingerprint kept, the id comes back with the same one, or with none to compare;
    // with another it is another command under a used id, refused in the same batch or later.
    let (asked, other) = ([7u8; 32], [8u8; 32]);
    let keyed = Metadata::new("t").with_command_id(Uuid::new_v4());
    let t = stream();
    let append = |fingerprint: Option<[u8; 32]>, n: i64| {
        let (t, keyed) = (t.clone(), keyed.clone());
        async move {
            store.append_command(&t, ExpectedVersion::Any, &[event(n)], &keyed, fingerprint.as_ref()).await
        }
    };
    let (written, changed_at_once) = tokio::join!(append(Some(asked), 1), append(Some(other), 2));
    let written = written.expect("first");
    assert!(matches!(changed_at_once, Err(StoreError::CommandChanged { .. })), "{changed_at_once:?}");
    let recorded = store.command_result(keyed.command_id.expect("id")).await.expect("lookup").expect("seen");
    assert_eq!(recorded.fingerprint, Some(asked));
    for fingerprint in [Some(asked), None] {
        let again = append(fingerprint, 3).await.expect("retry");
        assert_eq!((again.deduplicated, again.last_position), (true, written.last_position));
    }
    let changed = append(Some(other), 4).await;
    assert!(matches!(changed, Err(StoreError::CommandChanged { .. })), "{changed:?}");
    assert_eq!(store.read_stream(&t, 1).await.expect("read").len(), 1, "one command, one event");
    let events_before = store.count_events().await.expect("count");

    let elsewhere = store.append(&stream(), ExpectedVersion::Any, &[event(2)], &meta).await;
    assert!(matches!(elsewhere, Err(StoreError::CommandIdReused { .. })), "{elsewhere:?}");
    assert_eq!(store.count_events().await.expect("count"), events_before);
}

async fn the_whole_log_reads_in_global_order_in_pages(db: &TestDb) {
    let store = &db.store;
    let streams: Vec<StreamId> = (0..4).map(|_| stream()).collect();
    for round in 0..5 {
        for s in &streams {
            store
                .append(s, ExpectedVersion::Any, &[event(round)], &Metadata::new("t"))
                .await
                .expect("append");
        }
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.read_all(after, 3).await.expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|e| e.position).unwrap_or(after);
        seen.extend(page);
    }
    assert_eq!(seen.iter().map(|e| e.position).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    assert_eq!(store.head_position().await.expect("head"), 20);
    // Within each stream, versions follow the global order.
    for s in &streams {
        let versions: Vec<i64> =
            seen.iter().filter(|e| e.stream_id == s.to_string()).map(|e| e.version).collect();
        assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    }
}

async fn the_log_refuses_updates_and_deletes(db: &TestDb) {
    let store = &db.store;
    store
        .append(&stream(), ExpectedVersion::NoStream, &[event(1)], &Metadata::new("t"))
        .await
        .expect("append");
    let (update, delete) = doetank_store::on_pool!(store.backend(), pool => (
        sqlx::query("UPDATE events SET event_type = 'Forged'").execute(pool).await.map(|_| ()),
        sqlx::query("DELETE FROM events").execute(pool).await.map(|_| ()),
    ));
    assert!(update.is_err(), "UPDATE must be refused");
    assert!(delete.is_err(), "DELETE must be refused");
    assert_eq!(store.count_events().await.expect("count"), 1);
}

both_backends!(a_reader_polling_during_32_concurrent_writers_skips_and_repeats_nothing);

async fn a_reader_polling_during_32_concurrent_writers_skips_and_repeats_nothing(db: &TestDb) {
    const WRITERS: usize = 32;
    const PER_WRITER: usize = 20;
    let total = (WRITERS * PER_WRITER) as i64;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, done) = (db.store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut last, mut reads) = (0i64, 0u64);
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = store.read_all(last, 50).await.expect("read");
                reads += 1;
                for e in &page {
                    assert_eq!(
                        e.position,
                        last + 1,
                        "position {} skipped or repeated (read {reads})",
                        last + 1
                    );
                    last = e.position;
                }
                if finished && page.is_empty() {
                    return (last, reads);
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let s = stream();
                for i in 0..PER_WRITER {
                    store
                        .append(&s, ExpectedVersion::Any, &[event((w * 100 + i) as i64)], &Metadata::new("w"))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (last, reads) = reader.await.expect("reader");
    assert_eq!(last, total, "the reader saw every position");
    assert!(reads > 10, "the reader polled while the writers wrote ({reads} reads)");
}

/// The database refuses one event (a trigger stands in for any constraint the store cannot see
/// coming). Appended together with 31 others, the batch fails as a whole; the store writes the
/// requests again one by one, so only that caller gets the error and the log has no gap.
async fn a_batch_that_fails_is_written_again_one_by_one_and_only_the_bad_append_fails(db: &TestDb) {
    match db.store.backend() {
        doetank_store::Backend::Sqlite(pool) => {
            sqlx::query(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.event_type = 'Poison' \
                 BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
            )
            .execute(pool)
            .await
            .expect("trigger");
        }
        doetank_store::Backend::Postgres(pool) => {
            sqlx::raw_sql(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.event_type = 'Poison' THEN RAISE EXCEPTION 'poison refused'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
            )
            .execute(pool)
            .await
            .expect("trigger");
        }
    }
    let store = db.store.clone();
    let tasks: Vec<_> = (0..32)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut e = event(n);
                if n == 16 {
                    e.event_type = "Poison".into();
                }
                (n, store.append(&stream(), ExpectedVersion::NoStream, &[e], &Metadata::new("t")).await)
            })
        })
        .collect();
    for task in tasks {
        match task.await.expect("task") {
            (16, result) => assert!(result.is_err(), "the refused event's caller gets the error: {result:?}"),
            (n, result) => assert!(result.is_ok(), "append {n} fails with the bad one: {result:?}"),
        }
    }
    let (transactions, requests) = store.group_commit_stats();
    eprintln!("{requests} appends in {transactions} transactions ({})", store.backend_name());
    assert_eq!(store.count_events().await.expect("count"), 31);
    assert_eq!(store.head_position().await.expect("head"), 31, "the head moved only by what was written");
    let positions: Vec<i64> =
        store.read_log(&Default::default(), 0, 100).await.expect("log").iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=31).collect::<Vec<_>>(), "gap-free global positions");
}

/// Other nodes wake on `doetank_log` notifications: the insert's trigger sends one with the new
/// head at commit, and an append that is refused sends none. (PostgreSQL only: SQLite has no
/// channel between processes; they poll.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_notifies_other_nodes_of_the_new_head_at_commit() {
    let Some(db) = TestDb::postgres().await else { return };
    let doetank_store::Backend::Postgres(pool) = db.store.backend() else {
        panic!("TestDb::postgres gave another backend")
    };
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await.expect("listener");
    listener.listen("doetank_log").await.expect("listen");
    let s = stream();
    let meta = Metadata::new("test");
    let written =
        db.store.append(&s, ExpectedVersion::NoStream, &[event(1), event(2)], &meta).await.expect("append");
    let notified = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification within 5 s")
        .expect("notification");
    assert_eq!(notified.payload(), written.last_position.to_string());

    let refused = db.store.append(&s, ExpectedVersion::NoStream, &[event(3)], &meta).await;
    assert!(matches!(refused, Err(StoreError::VersionConflict { .. })), "{refused:?}");
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv()).await;
    assert!(quiet.is_err(), "a refused append notified: {quiet:?}");
    db.cleanup().await;
}

/// A rolling upgrade: nodes of the build before fingerprints call `doetank_append` with
/// fourteen arguments while new nodes call it with fifteen. Both are served, and a command the
/// old build recorded (without a fingerprint) is answered by its id alone when a new node
/// retries it with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_of_the_previous_build_still_append_during_an_upgrade() {
    let Some(db) = TestDb::postgres().await else { return };
    let doetank_store::Backend::Postgres(pool) = db.store.backend() else {
        panic!("TestDb::postgres gave another backend")
    };
    let (s, command) = (stream(), Uuid::new_v4());
    let verdict: String = sqlx::query_scalar(
        "SELECT verdict FROM doetank_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(vec![s.to_string()])
    .bind(vec![s.stream_type.clone()])
    .bind(vec![1i16])
    .bind(vec![0i64])
    .bind(vec![1i32])
    .bind(vec!["old-node"])
    .bind(vec![command])
    .bind(vec![Uuid::new_v4()])
    .bind(vec![command])
    .bind(vec![Uuid::now_v7()])
    .bind(vec![event(1).event_type])
    .bind(vec![1i32])
    .bind(vec![sqlx::types::Json(event(1).payload)])
    .bind(chrono::Utc::now())
    .fetch_one(pool)
    .await
    .expect("the fourteen-argument function");
    assert_eq!(verdict, "written");
    let meta = Metadata::new("new-node").with_command_id(command);
    let retried = db
        .store
        .append_command(&s, ExpectedVersion::NoStream, &[event(1)], &meta, Some(&[9u8; 32]))
        .await
        .expect("a retry by a new node");
    assert!(retried.deduplicated, "{retried:?}");
    assert_eq!(db.store.read_stream(&s, 1).await.expect("read").len(), 1);
    db.cleanup().await;
}

/// Every connection of the store has JIT off: on a log of 1,000,000 events the generic plans
/// of the log's filtered pages passed `jit_above_cost`, and compiling each took longer than
/// reading it (a researcher's export of the last tenth: 13.5 s with, 3.6 s without).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_compile_no_plan_just_in_time() {
    let Some(db) = TestDb::postgres().await else { return };
    let doetank_store::Backend::Postgres(pool) = db.store.backend() else {
        panic!("TestDb::postgres gave another backend")
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut connection = pool.acquire().await.expect("a connection");
        let jit: String = sqlx::query_scalar("SHOW jit").fetch_one(&mut *connection).await.expect("SHOW jit");
        assert_eq!(jit, "off");
        held.push(connection);
    }
    drop(held);
    db.cleanup().await;
}

/// A production PostgreSQL is reached over TLS: `sslmode=require` in the URL encrypts every
/// connection of the store, and appends and reads go through it. (Where the server offers no
/// TLS, as a throwaway cluster of `.ci/run` does not, the server's refusal is what fails.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_are_encrypted_when_the_url_asks() {
    let Some(db) = TestDb::postgres().await else { return };
    let doetank_store::Backend::Postgres(pool) = db.store.backend() else {
        panic!("TestDb::postgres gave another backend")
    };
    let offered: String = sqlx::query_scalar("SHOW ssl").fetch_one(pool).await.expect("the ssl setting");
    let url = format!("{}{}sslmode=require", db.url, if db.url.contains('?') { '&' } else { '?' });
    let connected = doetank_store::EventStore::connect_with(&url, 2).await;
    match (offered.as_str(), connected) {
        ("on", Ok(store)) => {
            let doetank_store::Backend::Postgres(pool) = store.backend() else { panic!("not PostgreSQL") };
            let encrypted: bool =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(pool)
                    .await
                    .expect("this connection's TLS state");
            assert!(encrypted, "sslmode=require gave a connection in clear text");
            let meta = Metadata::new("test");
            let written =
                store.append(&stream(), ExpectedVersion::NoStream, &[event(1)], &meta).await.expect("append");
            let read = store.read_log(&Default::default(), 0, 10).await.expect("read");
            assert_eq!(read.last().map(|e| e.position), Some(written.last_position));
            store.close().await;
        }
        ("off", Err(refused)) => {
            assert!(!refused.to_string().contains("built without TLS"), "{refused}");
        }
        (offered, outcome) => {
            panic!("server ssl={offered}, connecting with sslmode=require: {:?}", outcome.err())
        }
    }
    db.cleanup().await;
}

/// A database in memory has no file the store's own connections could open: reads and appends
/// go through sqlx's pool, with the same verdicts and order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_sqlite_database_is_read_and_written_through_the_pool() {
    let store = doetank_store::EventStore::connect_with("sqlite::memory:", 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    let s = stream();
    let meta = Metadata::new("test").with_command_id(Uuid::new_v4());
    let events = [event(1), event(2)];
    let fingerprint = Some(&[1u8; 32]);
    let written = store
        .append_command(&s, ExpectedVersion::NoStream, &events, &meta, fingerprint)
        .await
        .expect("append");
    let again = store
        .append_command(&s, ExpectedVersion::NoStream, &events, &meta, fingerprint)
        .await
        .expect("retry");
    assert!(again.deduplicated && again.last_position == written.last_position);
    let changed = store.append_command(&s, ExpectedVersion::Any, &events, &meta, Some(&[2u8; 32])).await;
    assert!(matches!(changed, Err(StoreError::CommandChanged { .. })), "{changed:?}");
    let stale = store.append(&s, ExpectedVersion::Exact(1), &[event(3)], &Metadata::new("test")).await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { actual: 2, .. })), "{stale:?}");
    let events = store.read_stream(&s, 1).await.expect("read");
    assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(events[1].metadata, meta);
    assert_eq!(store.head_position().await.expect("head"), 2);
    assert_same_log_as_text(&store).await;
}

/// A rebuild reads the log with its payloads as text; every other field is the same, and the
/// text parses to the same payload (PostgreSQL's `jsonb` written out by the server).
async fn the_log_read_with_payload_texts_is_the_log_read_with_values(db: &TestDb) {
    let store = &db.store;
    for n in 0..7 {
        let payload = EncodedEvent {
            payload: serde_json::json!({ "n": n, "text": "tab\t \"quoted\" é \\ line\n", "list": [1.5, null, true] }),
            ..event(n)
        };
        store.append(&stream(), ExpectedVersion::Any, &[payload], &Metadata::new("t")).await.expect("append");
    }
    assert_same_log_as_text(store).await;
}

async fn assert_same_log_as_text(store: &doetank_store::EventStore) {
    let values = store.read_all(0, 1_000).await.expect("values");
    let texts = store.read_all_text(0, 1_000).await.expect("texts");
    assert!(!values.is_empty());
    assert_eq!(values.len(), texts.len());
    for (value, (event, text)) in values.iter().zip(texts) {
        assert_eq!(event.payload, serde_json::Value::Null);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("payload text is JSON");
        assert_eq!(parsed, value.payload);
        assert_eq!(RecordedEvent { payload: parsed, ..event }, *value);
    }
    let page = store.read_all_text(values[0].position, 1).await.expect("a page");
    assert_eq!(page.iter().map(|(e, _)| e.position).collect::<Vec<_>>(), vec![values[1].position]);
}

/// A process keeps the streams it wrote, to decide its next command on one without reading it.
/// Another process (another node) writing in between must not be lost: the kept state is
/// only ever a prefix of the stream, an append decided on it is refused, and the next load
/// reads the log.
async fn a_stream_kept_for_deciding_never_hides_another_writers_events(db: &TestDb) {
    let here = &db.store;
    let other = doetank_store::EventStore::connect(&db.url).await.expect("another process");
    let s = stream();
    let meta = Metadata::new("test");
    here.append(&s, ExpectedVersion::NoStream, &[event(1), event(2)], &meta).await.expect("append");
    let kept = here.stream_to_decide(&s, false).await.expect("load");
    assert_eq!((kept.version, kept.events.len(), kept.cached), (2, 2, true), "kept from its own append");
    assert_eq!(kept.events[1].payload, event(2).payload);

    other.append(&s, ExpectedVersion::Exact(2), &[event(3)], &meta).await.expect("the other writes");
    let stale = here.stream_to_decide(&s, false).await.expect("load");
    assert_eq!((stale.version, stale.cached), (2, true), "this process cannot know yet");
    let refused = here.append(&s, ExpectedVersion::Exact(stale.version), &[event(4)], &meta).await;
    assert!(matches!(refused, Err(StoreError::VersionConflict { actual: 3, .. })), "{refused:?}");
    let read = here.stream_to_decide(&s, false).await.expect("load");
    assert_eq!(
        (read.version, read.events.len(), read.cached),
        (3, 3, false),
        "read again after the conflict"
    );
    assert_eq!(read.events[2].payload, event(3).payload);

    here.append(&s, ExpectedVersion::Exact(3), &[event(4)], &meta).await.expect("append");
    other.append(&s, ExpectedVersion::Any, &[event(5)], &meta).await.expect("the other writes");
    let fresh = here.stream_to_decide(&s, true).await.expect("load");
    assert_eq!((fresh.version, fresh.cached), (5, false), "`fresh` always reads");
}

/// A fresh SQLite file whose log holds one stream with one event.
async fn one_event_on_a_sqlite_file() -> (TestDb, StreamId) {
    let db = TestDb::sqlite().await;
    let s = stream();
    let meta = Metadata::new("t");
    db.store.append(&s, ExpectedVersion::NoStream, &[event(1)], &meta).await.expect("first");
    (db, s)
}

/// The stream's second event, appended from another task, as another writer would.
async fn second_event_from_another_task(store: &doetank_store::EventStore, s: &StreamId) {
    let (writer, s) = (store.clone(), s.clone());
    tokio::spawn(async move {
        writer.append(&s, ExpectedVersion::Exact(1), &[event(2)], &Metadata::new("t")).await
    })
    .await
    .expect("writer task")
    .expect("second append");
}

/// A read made inline that turns out large is interrupted after about 20,000 of SQLite's steps
/// and made again in place of the async worker, in the same snapshot: its answer is whole, and
/// it still sees the state of the snapshot's first read though another writer committed since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_inline_read_is_finished_in_place_of_the_worker_in_the_same_snapshot() {
    let (db, s) = one_event_on_a_sqlite_file().await;
    let store = &db.store;
    // A count of 100,000 generated rows beside the log's events: hundreds of thousands of steps.
    let large = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) \
                 SELECT (SELECT COUNT(*) FROM n), (SELECT COUNT(*) FROM events)";
    let read = |conn: &rusqlite::Connection| conn.query_row(large, [], |row| Ok((row.get(0)?, row.get(1)?)));
    let (before, during) = store
        .in_one_snapshot(async {
            let before: (i64, i64) = store.read_inline(read).expect("own readers").expect("first read");
            second_event_from_another_task(store, &s).await;
            let during: (i64, i64) = store.read_inline(read).expect("own readers").expect("read again");
            (before, during)
        })
        .await;
    assert_eq!(store.inline_reads_finished_in_place(), 2, "each large read ran out of steps inline");
    assert_eq!(before, (100_000, 1), "the large read's answer is whole");
    assert_eq!(during, (100_000, 1), "the snapshot outlived the interrupted read");
    let after: (i64, i64) = store.read_inline(read).expect("own readers").expect("read after");
    assert_eq!(after, (100_000, 2));
    let small =
        |conn: &rusqlite::Connection| conn.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0));
    let events: i64 = store.read_inline(small).expect("own readers").expect("a small read");
    assert_eq!((events, store.inline_reads_finished_in_place()), (2, 3), "a small read runs inline");
    db.cleanup().await;
}

/// The small reads a query makes in one snapshot (on a SQLite file) see one state of the log,
/// however many look-ups they take and whatever another writer commits meanwhile; a read on
/// another task, or after the snapshot, sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_one_snapshot_see_one_state_while_another_writer_commits() {
    let (db, s) = one_event_on_a_sqlite_file().await;
    let store = &db.store;
    let versions = |events: Vec<RecordedEvent>| events.iter().map(|e| e.version).collect::<Vec<_>>();

    let (first, during, elsewhere) = store
        .in_one_snapshot(async {
            let first = versions(store.read_stream(&s, 1).await.expect("first read"));
            second_event_from_another_task(store, &s).await;
            let during = versions(store.read_stream(&s, 1).await.expect("read after the commit"));
            let (reader, s3) = (store.clone(), s.clone());
            let elsewhere = tokio::spawn(async move { reader.read_stream(&s3, 1).await })
                .await
                .expect("reader task")
                .expect("read on another task");
            (first, during, versions(elsewhere))
        })
        .await;
    assert_eq!(first, vec![1]);
    assert_eq!(during, vec![1], "a later look-up of the same query sees the state of its first");
    assert_eq!(elsewhere, vec![1, 2], "another task reads outside the snapshot");
    assert_eq!(versions(store.read_stream(&s, 1).await.expect("read after")), vec![1, 2]);

    // The snapshot's connection went back ended: the next snapshot starts at the new state.
    let again = store.in_one_snapshot(async { store.read_stream(&s, 1).await.expect("read") }).await;
    assert_eq!(versions(again), vec![1, 2]);
    db.cleanup().await;
}

/// `log_seconds` marks the first position at which the log's latest time reached each new
/// second: kept by every insert (imports, whose times may go back, and appends), and computed
/// by its migration for a log written before it. Both must give the same marks.
async fn the_marks_of_a_log_migrated_to_them_are_those_its_writes_keep(db: &TestDb) {
    let base: chrono::DateTime<chrono::Utc> = "2026-03-02T10:00:00Z".parse().expect("a time");
    let times = [0, 5_500, 9_200, 6_100, 9_900, 10_000, 3_000, 12_000, -1_000, 12_999, 13_000];
    let store = &db.store;
    db.import_notes_at(base, &times).await;
    for n in 0..3 {
        store
            .append(&stream(), ExpectedVersion::Any, &[event(n)], &Metadata::new("t"))
            .await
            .expect("append");
    }
    let expected = expected_marks(store).await;
    let second = |ms: i64| (base + chrono::Duration::milliseconds(ms)).timestamp();
    assert_eq!(
        expected[..5],
        [(second(0), 1), (second(5_500), 2), (second(9_200), 3), (second(10_000), 6), (second(12_000), 8)]
    );
    let pairs = |sql: &'static str| async move {
        doetank_store::on_pool!(store.backend(), pool => {
            sqlx::query_as::<_, (i64, i64)>(sql).fetch_all(pool).await.expect(sql)
        })
    };
    let marks = || pairs("SELECT second, position FROM log_seconds ORDER BY second");
    let late = || pairs("SELECT position, second FROM log_late ORDER BY position");
    assert_eq!(marks().await, expected, "as imports and appends keep them");
    let late_events = expected_late(store).await;
    assert_eq!(
        late_events,
        [(4, second(6_100)), (7, second(3_000)), (9, second(-1_000))],
        "late: an earlier second than the latest before it"
    );
    assert_eq!(late().await, late_events, "as imports and appends keep them");
    // The log as a build before the marks left it, migrated.
    doetank_store::on_pool!(store.backend(), pool => {
        if matches!(store.backend(), doetank_store::Backend::Sqlite(_)) {
            sqlx::query("DROP TRIGGER events_mark_second").execute(pool).await.expect("drop trigger");
            sqlx::query("DROP TRIGGER events_mark_late").execute(pool).await.expect("drop trigger");
        }
        sqlx::query("DROP TABLE log_seconds").execute(pool).await.expect("drop marks");
        sqlx::query("DROP TABLE log_late").execute(pool).await.expect("drop late events");
        let forgotten =
            sqlx::query("DELETE FROM _sqlx_migrations WHERE description IN ('log seconds', 'log late')")
                .execute(pool)
                .await
                .expect("forget the migrations");
        assert_eq!(forgotten.rows_affected(), 2);
    });
    store.migrate().await.expect("migrate again");
    assert_eq!(marks().await, expected, "as the migration computes them");
    assert_eq!(late().await, late_events, "as the migration computes them");
    // And appends keep them after it, an append late against the imported history's latest
    // second included (the wall clock's is past it, so none is late here: the import is).
    store.append(&stream(), ExpectedVersion::Any, &[event(9)], &Metadata::new("t")).await.expect("append");
    assert_eq!(marks().await, expected_marks(store).await, "kept after the migration");
    assert_eq!(late().await, expected_late(store).await, "kept after the migration");
}

/// The events `log_late` should hold for the log as it is: each recorded in an earlier second
/// than the latest before it.
async fn expected_late(store: &doetank_store::EventStore) -> Vec<(i64, i64)> {
    let mut latest = i64::MIN;
    let mut late = Vec::new();
    for e in store.read_all(0, 1_000).await.expect("the log") {
        let second = e.recorded_at.timestamp();
        if second < latest {
            late.push((e.position, second));
        }
        latest = latest.max(second);
    }
    late
}

/// The marks `log_seconds` should hold for the log as it is: where its latest time so far
/// first reached each new second.
async fn expected_marks(store: &doetank_store::EventStore) -> Vec<(i64, i64)> {
    let mut marks: Vec<(i64, i64)> = Vec::new();
    for e in store.read_all(0, 1_000).await.expect("the log") {
        let second = e.recorded_at.timestamp();
        if marks.last().is_none_or(|(last, _)| second > *last) {
            marks.push((second, e.position));
        }
    }
    marks
}
