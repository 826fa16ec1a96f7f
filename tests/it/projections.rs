//! Read models are a pure function of the log: rebuilding them from scratch after a random
//! sequence of commands gives exactly the tables that were built incrementally.

use doetank_api::projection::READ_MODEL_TABLES;
use doetank_api::{App, CommandOptions};
use doetank_domain::aggregates::doetank::NewLesson;
use doetank_domain::*;
use doetank_store::{on_pool, Backend};
use sqlx::Row;
use uuid::Uuid;

use crate::both_backends;
use crate::support::app::facilitator;
use crate::support::{TestApp, TestDb};

both_backends!(
    rebuilt_read_models_equal_the_incremental_ones,
    the_whole_network_rebuilt_equals_its_incremental_read_models,
    a_failed_rebuild_leaves_the_read_models_as_they_were,
    readers_get_the_same_answers_all_through_a_rebuild,
    two_nodes_rebuilding_at_once_both_end_with_the_read_models_of_the_log,
    read_models_built_by_another_projection_version_are_rebuilt_as_the_server_starts,
    list_pages_walk_an_index_in_their_order_instead_of_sorting_the_table
);

/// xorshift64*: a tiny seeded generator, so a failing sequence can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

async fn rebuilt_read_models_equal_the_incremental_ones(db: &TestDb) {
    let seed = std::env::var("DOETANK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Uuid::new_v4().as_u64_pair().0 | 1);
    eprintln!("random command sequence seed: {seed} (replay with DOETANK_TEST_SEED={seed})");
    let mut rng = Rng(seed);
    let app = App::new(db.store.clone());
    let o = CommandOptions { actor: "test".into(), ..Default::default() };

    let mut members = Vec::new();
    for i in 0..14 {
        let id = Uuid::new_v4();
        let sector = if i % 5 == 4 { Sector::ExternalAdviser } else { Sector::Public };
        let org = ["Gemeente Utrecht", "TNO", "Kennisland", "BZK"][i % 4];
        let personal = doetank_api::commands::PersonalData { name: format!("Persoon {i}"), email: None };
        app.register_member(&o, id, personal, org, sector, vec!["x".into()]).await.expect("register");
        members.push(id);
    }
    let mut challenges = Vec::new();
    for i in 0..2 {
        let id = Uuid::new_v4();
        app.execute::<Challenge>(id, &o, |c| {
            c.raise(
                id,
                &format!("Vraagstuk {i}"),
                "beschrijving",
                members[0],
                aggregates::challenge::ChallengeOrigin::OwnFrustration,
            )
        })
        .await
        .expect("raise");
        challenges.push(id);
    }
    let doetanks: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let at = chrono::Utc::now();
    for (i, d) in doetanks.iter().enumerate() {
        let founders = [members[i + 1], members[i + 5]];
        app.form_doetank(&o, *d, &format!("Doetank {i}"), challenges[i % 2], members[i], &founders, at)
            .await
            .expect("form");
    }
    // Most random commands are refused (a phase out of turn, a member not in the team): the
    // sequence runs until enough were accepted, so no seed leaves the projections unexercised.
    let (mut accepted, mut refused) = (0, 0);
    for step in 0..3_000 {
        if accepted >= 60 {
            break;
        }
        let d = rng.pick(&doetanks);
        let m = rng.pick(&members);
        let result = match rng.below(16) {
            0 => {
                let founders: Vec<Uuid> = (0..rng.below(4)).map(|_| rng.pick(&members)).collect();
                app.form_doetank(&o, d, &format!("Doetank {step}"), rng.pick(&challenges), m, &founders, at)
                    .await
            }
            1 | 2 => app.join_doetank(&o, d, m, at).await,
            3 => app.execute::<Doetank>(d, &o, |t| t.leave(m, at)).await,
            4 => app.execute::<Doetank>(d, &o, |t| t.change_lead(m)).await,
            5 => app.assign_coach(&o, d, m).await,
            6 => app.execute::<Doetank>(d, &o, |t| t.release_coach()).await,
            7 | 8 => {
                let phase = rng.pick(&Phase::ALL);
                app.execute::<Doetank>(d, &o, |t| t.complete_phase(phase, "samenvatting", at)).await
            }
            9 | 10 => {
                let lesson = NewLesson {
                    lesson_id: Uuid::new_v4(),
                    recorded_by: m,
                    phase: None,
                    kind: rng.pick(&[LessonKind::Works, LessonKind::DoesNotWork, LessonKind::Insight]),
                    title: format!("Les {step} over werkgevers"),
                    body: "Wat werkte\ten wat niet,\nin C:\\werk\\ (regel\r\n2).".into(),
                    tags: vec![format!("tag{}", rng.below(3))],
                };
                app.execute::<Doetank>(d, &o, |t| t.record_lesson(lesson.clone())).await
            }
            11 => app.execute::<Doetank>(d, &o, |t| t.make_public()).await,
            12 => {
                app.execute::<Doetank>(d, &o, |t| {
                    t.publish_update(Channel::Blog, "Update", "https://example.org/x")
                })
                .await
            }
            13 => app.execute::<Doetank>(d, &o, |t| t.hand_over_business_case("BZK", "businesscase")).await,
            14 => app.execute::<Member>(m, &o, |x| x.update_profile(Some("Kafkabrigade"), None)).await,
            _ => {
                if rng.below(12) == 0 {
                    app.execute::<Doetank>(d, &o, |t| t.conclude(DoetankOutcome::Discontinued, "gestopt", at))
                        .await
                } else {
                    app.execute::<Doetank>(d, &o, |t| t.consult_expert("onderwerp", "expert")).await
                }
            }
        };
        match result {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    eprintln!("{accepted} commands accepted, {refused} refused");
    assert!(accepted >= 60, "the sequence should exercise the projections (seed {seed})");

    app.projector.catch_up().await.expect("catch up");
    let incremental = dump(app.store.backend()).await;
    let indexes = schema_objects(app.store.backend()).await;
    if let Backend::Sqlite(pool) = app.store.backend() {
        // Empty the lessons' full-text index: the rebuild must make it whole again.
        sqlx::query("INSERT INTO rm_lessons_fts (rm_lessons_fts) VALUES ('delete-all')")
            .execute(pool)
            .await
            .expect("empty the full-text index");
    }
    let head = app.projector.rebuild(&|_| {}).await.expect("rebuild");
    assert_eq!(head, app.store.head_position().await.expect("head"));
    let rebuilt = dump(app.store.backend()).await;
    // The swap drops the triggers for the load and makes them again; the scratch its indexes.
    assert_eq!(
        indexes,
        schema_objects(app.store.backend()).await,
        "indexes or triggers differ after rebuild"
    );
    if let Backend::Sqlite(pool) = app.store.backend() {
        // The full-text index agrees with the lessons it indexes (an error if not).
        sqlx::query("INSERT INTO rm_lessons_fts (rm_lessons_fts, rank) VALUES ('integrity-check', 1)")
            .execute(pool)
            .await
            .expect("the lessons' full-text index matches the lessons after a rebuild");
    }
    for (table, rows) in &incremental {
        let again = rebuilt.iter().find(|(t, _)| t == table).map(|(_, r)| r);
        assert_eq!(Some(rows), again, "table {table} differs after rebuild (seed {seed})");
    }
    if let Backend::Sqlite(pool) = app.store.backend() {
        // The rebuild copies the full-text index into place: the triggers must go on keeping it
        // as they keep one they built, a lesson removed and one added.
        let mut tx = pool.begin().await.expect("begin");
        for sql in [
            "DELETE FROM rm_lessons WHERE rowid = (SELECT min(rowid) FROM rm_lessons)",
            "INSERT INTO rm_lessons (id, doetank_id, recorded_by, organisation, phase, kind, title, body, tags, \
             title_stems, body_stems, recorded_at, position) \
             SELECT id || '-again', doetank_id, recorded_by, organisation, phase, kind, title, body, tags, \
             title_stems, body_stems, recorded_at, position FROM rm_lessons WHERE rowid = (SELECT max(rowid) FROM rm_lessons)",
            "INSERT INTO rm_lessons_fts (rm_lessons_fts, rank) VALUES ('integrity-check', 1)",
        ] {
            sqlx::query(sql).execute(&mut *tx).await.expect("the copied full-text index kept by its triggers");
        }
        tx.rollback().await.expect("rollback");
    }
    assert!(incremental.iter().any(|(t, rows)| t == "rm_lessons" && !rows.is_empty()) || refused > 0);
}

/// The demo history names every kind of thing (cafés and their programmes, ideation days and
/// ideas, pilots, the charter, reuses): every chapter of the story, its labels, links and clocks,
/// comes out of a rebuild as the incremental path wrote it, timeline summaries included.
async fn the_whole_network_rebuilt_equals_its_incremental_read_models(db: &TestDb) {
    let (app, incremental) = demo_projected(db).await;
    let of = |dump: &[(String, Vec<Vec<Option<String>>>)], table: &str| {
        dump.iter().find(|(t, _)| t == table).map(|(_, rows)| rows.clone())
    };
    let story = [
        "rm_lineage_nodes",
        "rm_lineage_links",
        "rm_timeline",
        "rm_timeline_rises",
        "rm_timeline_falls",
        "rm_stream_clock",
    ];
    for table in story.into_iter().chain(["rm_cafes", "rm_reuses"]) {
        assert!(of(&incremental, table).is_some_and(|rows| !rows.is_empty()), "the demo should fill {table}");
    }
    app.projector.rebuild(&|_| {}).await.expect("rebuild");
    let rebuilt = dump(app.store.backend()).await;
    for ((table, rows), (_, again)) in incremental.iter().zip(&rebuilt) {
        assert_eq!(rows, again, "table {table} differs after rebuild");
    }
    // Lines that name another thing ("... at café {other}") name it as the incremental path did.
    let summaries: Vec<String> = on_pool!(app.store.backend(), pool => {
        sqlx::query_scalar("SELECT summary FROM rm_timeline ORDER BY position").fetch_all(pool).await.expect("timeline")
    });
    assert!(summaries.iter().all(|s| !s.contains("{name}") && !s.contains("{other}")), "{summaries:?}");
    // The timeline's rises and falls of read models a build before them left, as the
    // migrations compute them: as the projections keep them.
    let computed = [("rm_timeline_rises", "timeline rises"), ("rm_timeline_falls", "timeline falls")];
    on_pool!(app.store.backend(), pool => {
        for (table, migration) in computed {
            sqlx::query(&format!("DROP TABLE {table}")).execute(pool).await.expect("drop the table");
            let forgotten = sqlx::query("DELETE FROM _sqlx_migrations WHERE description = $1")
                .bind(migration)
                .execute(pool)
                .await
                .expect("forget the migration");
            assert_eq!(forgotten.rows_affected(), 1, "{migration}");
        }
    });
    app.store.migrate().await.expect("migrate again");
    let migrated = dump(app.store.backend()).await;
    for (table, _) in computed {
        assert_eq!(of(&migrated, table), of(&incremental, table), "{table} as the migration computes them");
    }
}

/// The log is read on another task while the scratch is written: an event that cannot be
/// decoded must still stop the rebuild with its error, before anything is swapped in.
async fn a_failed_rebuild_leaves_the_read_models_as_they_were(db: &TestDb) {
    let app = App::new(db.store.clone());
    let o = CommandOptions { actor: "test".into(), ..Default::default() };
    let id = Uuid::new_v4();
    app.execute::<Challenge>(id, &o, |c| {
        c.raise(
            id,
            "Vraagstuk",
            "Omschrijving",
            Uuid::new_v4(),
            aggregates::challenge::ChallengeOrigin::OwnFrustration,
        )
    })
    .await
    .expect("raise");
    app.projector.catch_up().await.expect("catch up");
    let before = dump(app.store.backend()).await;

    let unknown =
        EncodedEvent { event_type: "NoSuchEvent".into(), schema_version: 1, payload: serde_json::json!({}) };
    let stream = doetank_store::StreamId::new(Doetank::STREAM_TYPE, Uuid::new_v4());
    app.store
        .append(
            &stream,
            doetank_store::ExpectedVersion::Any,
            &[unknown],
            &doetank_store::Metadata::new("test"),
        )
        .await
        .expect("the store takes any event");

    let failed = app.projector.rebuild(&|_| {}).await;
    assert!(
        matches!(failed, Err(doetank_api::error::AppError::Codec(_))),
        "the rebuild should fail on the event it cannot decode: {failed:?}"
    );
    assert_eq!(before, dump(app.store.backend()).await, "a failed rebuild changed the read models");
}

/// Read models built by this version of the projections are marked so, from their first
/// batch; `doetank serve` rebuilds read models another version built (here: rows as an older
/// projection wrote them, which the log no longer gives), and leaves this version's alone.
async fn read_models_built_by_another_projection_version_are_rebuilt_as_the_server_starts(db: &TestDb) {
    let app = App::new(db.store.clone());
    assert_eq!(app.projector.built_by().await.expect("version"), 0, "nothing built yet");
    assert!(doetank_api::demo::load(&app).await.expect("demo"));
    let version = doetank_api::projection::PROJECTION_VERSION;
    assert_eq!(app.projector.built_by().await.expect("version"), version, "built from the start by this one");
    let before = dump(app.store.backend()).await;
    let older = |organisation: &'static str, version: i64| {
        let backend = app.store.backend().clone();
        async move {
            on_pool!(&backend, pool => {
                sqlx::query("UPDATE rm_members SET organisation = $1").bind(organisation).execute(pool).await.expect("older rows");
                sqlx::query("UPDATE projection_version SET version = $1").bind(version).execute(pool).await.expect("older version");
            });
        }
    };
    // Rows this version built, however they look, are left alone.
    older("zoals eerder", version).await;
    let server = crate::support::ServerProcess::start(&db.url).await;
    drop(server);
    assert_ne!(before, dump(app.store.backend()).await, "this version's read models are not rebuilt");
    // Another version's are rebuilt before the server answers.
    older("zoals eerder", 0).await;
    let mut server = crate::support::ServerProcess::start(&db.url).await;
    let body: serde_json::Value = reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&serde_json::json!({ "query": "{ members(organisation: \"zoals eerder\") { totalCount } }" }))
        .send()
        .await
        .expect("ask")
        .json()
        .await
        .expect("json");
    assert_eq!(body["data"]["members"]["totalCount"], 0, "{body}");
    let _ = server.terminate();
    assert_eq!(before, dump(app.store.backend()).await, "rebuilt from the log");
    assert_eq!(app.projector.built_by().await.expect("version"), version);
}

/// Two nodes may start a rebuild at the same moment. On PostgreSQL the twins of the one are
/// not dropped or taken by the other (one waits for the other's lock); on SQLite the swaps wait
/// for the write lock in turn. Both end with the read models the log gives, and no twin is left.
async fn two_nodes_rebuilding_at_once_both_end_with_the_read_models_of_the_log(db: &TestDb) {
    let (app, incremental) = demo_projected(db).await;
    let other = App::new(doetank_store::EventStore::connect_with(&db.url, 10).await.expect("a second node"));
    for round in 0..3 {
        let (one, two) = tokio::join!(app.projector.rebuild(&|_| {}), other.projector.rebuild(&|_| {}));
        one.unwrap_or_else(|e| panic!("the first node's rebuild failed in round {round}: {e}"));
        two.unwrap_or_else(|e| panic!("the second node's rebuild failed in round {round}: {e}"));
        assert_eq!(incremental, dump(app.store.backend()).await, "after round {round}");
    }
    assert_eq!(twins_left(app.store.backend()).await, 0);
    other.store.close().await;
}

/// Nodes of a new build starting at once on a PostgreSQL database whose read models another
/// version built take turns: one rebuilds, the other waits and finds them rebuilt (until the
/// thirty-third session both rebuilt, one after the other, neither serving meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_of_a_new_build_starting_at_once_rebuild_the_read_models_once() {
    let Some(db) = TestDb::postgres().await else { return };
    let (app, incremental) = demo_projected(&db).await;
    let other = App::new(doetank_store::EventStore::connect_with(&db.url, 10).await.expect("a second node"));
    let Backend::Postgres(pool) = app.store.backend() else { unreachable!("a PostgreSQL database") };
    sqlx::query("UPDATE projection_version SET version = 0").execute(pool).await.expect("an older version");
    let (one, two) = tokio::join!(
        app.projector.rebuild_if_built_otherwise(&|_| {}),
        other.projector.rebuild_if_built_otherwise(&|_| {})
    );
    let rebuilt = [one.expect("the first node"), two.expect("the second node")];
    assert_eq!(rebuilt.iter().filter(|r| **r).count(), 1, "exactly one node rebuilt: {rebuilt:?}");
    assert_eq!(incremental, dump(app.store.backend()).await);
    assert_eq!(app.projector.built_by().await.expect("version"), doetank_api::projection::PROJECTION_VERSION);
    other.store.close().await;
    db.cleanup().await;
}

/// A PostgreSQL rebuild builds its twins in transactions of their own: a process that dies
/// before its swap leaves them behind, and the next rebuild drops them before it makes its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_drops_the_twins_a_dead_rebuild_left_behind() {
    let Some(db) = TestDb::postgres().await else { return };
    let (app, incremental) = demo_projected(&db).await;
    let Backend::Postgres(pool) = app.store.backend() else { unreachable!("a PostgreSQL database") };
    for left_behind in [
        "CREATE TABLE rm_lessons__rebuilt (LIKE rm_lessons INCLUDING ALL)",
        "CREATE TABLE rm_timeline__rebuilt (LIKE rm_timeline)",
        "INSERT INTO rm_timeline__rebuilt SELECT * FROM rm_timeline",
        "CREATE INDEX rm_timeline_kind__rebuilt ON rm_timeline__rebuilt (kind)",
    ] {
        sqlx::query(left_behind).execute(pool).await.expect(left_behind);
    }
    app.projector.rebuild(&|_| {}).await.expect("a rebuild over the twins left behind");
    assert_eq!(incremental, dump(app.store.backend()).await);
    assert_eq!(twins_left(app.store.backend()).await, 0);
    db.cleanup().await;
}

/// How many tables or indexes are named as a rebuild names its twins (PostgreSQL; none on SQLite).
async fn twins_left(backend: &Backend) -> i64 {
    match backend {
        Backend::Sqlite(_) => 0,
        Backend::Postgres(pool) => {
            sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_rebuilt'")
                .fetch_one(pool)
                .await
                .expect("twins")
        }
    }
}

/// Every index and trigger of the database, by name, with its definition.
async fn schema_objects(backend: &Backend) -> Vec<(String, String)> {
    let sql = match backend {
        Backend::Sqlite(_) => {
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY name"
        }
        Backend::Postgres(_) => {
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             UNION ALL SELECT tgname::text, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
        }
    };
    let objects: Vec<(String, String)> =
        on_pool!(backend, pool => sqlx::query_as(sql).fetch_all(pool).await.expect("schema objects"));
    assert!(objects.len() > 10, "too few indexes and triggers: {objects:?}");
    objects
}

/// An app on `db` with the demo history loaded and projected, and its read models as that
/// incremental projection wrote them.
async fn demo_projected(db: &TestDb) -> (App, Vec<(String, Vec<Vec<Option<String>>>)>) {
    let app = App::new(db.store.clone());
    assert!(doetank_api::demo::load(&app).await.expect("demo"));
    app.projector.catch_up().await.expect("catch up");
    let incremental = dump(app.store.backend()).await;
    (app, incremental)
}

/// Every read-model table as sorted rows of text.
pub async fn dump(backend: &Backend) -> Vec<(String, Vec<Vec<Option<String>>>)> {
    let mut out = Vec::new();
    for table in READ_MODEL_TABLES.iter().chain(&["rm_checkpoint"]) {
        let columns: Vec<String> = on_pool!(backend, pool => {
            let sql = match backend {
                Backend::Sqlite(_) => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
                Backend::Postgres(_) => format!(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"
                ),
            };
            sqlx::query_scalar::<_, String>(&sql).fetch_all(pool).await.expect("columns")
        });
        let select = columns.iter().map(|c| format!("CAST({c} AS TEXT)")).collect::<Vec<_>>().join(", ");
        let order = (1..=columns.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {select} FROM {table} ORDER BY {order}");
        let rows: Vec<Vec<Option<String>>> = on_pool!(backend, pool => {
            let rows = sqlx::query(&sql).fetch_all(pool).await.expect("dump");
            rows.iter()
                .map(|row| (0..columns.len()).map(|i| row.try_get::<Option<String>, _>(i).expect("text")).collect())
                .collect()
        });
        out.push((table.to_string(), rows));
    }
    out
}

/// The data loaders read their rows on the store's own SQLite connections (in the calling
/// thread) where sqlx's pool would hop threads: both must decode the same rows, NULLs, booleans
/// and numbers included.
#[tokio::test]
async fn loader_rows_read_inline_equal_the_pools() {
    use doetank_api::rows::*;
    use doetank_api::sql::{fetch_all, fetch_small, AnyRow, OwnRow};

    async fn same<T: AnyRow + OwnRow + std::fmt::Debug>(db: &TestDb, select: &str) -> usize {
        let inline: Vec<T> = fetch_small(&db.store, select, &[]).await.expect("inline");
        let pooled: Vec<T> = fetch_all(db.store.backend(), select, &[]).await.expect("pool");
        assert_eq!(format!("{inline:?}"), format!("{pooled:?}"), "{select}");
        inline.len()
    }

    let db = TestDb::sqlite().await;
    let app = App::new(db.store.clone());
    assert!(doetank_api::demo::load(&app).await.expect("demo"));
    assert!(same::<MemberRow>(&db, &format!("{MEMBER_SELECT} ORDER BY m.id")).await > 0);
    assert!(same::<ChallengeRow>(&db, &format!("{CHALLENGE_SELECT} ORDER BY id")).await > 0);
    assert!(same::<DoetankRow>(&db, &format!("{DOETANK_SELECT} ORDER BY d.id")).await > 0);
    assert!(
        same::<MembershipRow>(&db, &format!("{MEMBERSHIP_SELECT} ORDER BY doetank_id, member_id")).await > 0
    );
    assert!(same::<PhaseRow>(&db, &format!("{PHASE_SELECT} ORDER BY doetank_id, ordinal")).await > 0);
    assert!(same::<ActivityRow>(&db, &format!("{ACTIVITY_SELECT} ORDER BY position")).await > 0);
    assert!(same::<LessonRow>(&db, &format!("{LESSON_SELECT} ORDER BY l.position")).await > 0);

    // `$n` binds the n-th argument wherever it stands, repeated or out of order.
    let select = format!("{DOETANK_SELECT} WHERE d.id IN ($2, $1, $2) ORDER BY d.id");
    let doetanks: Vec<DoetankRow> =
        fetch_all(db.store.backend(), &format!("{DOETANK_SELECT} ORDER BY d.id LIMIT 2"), &[])
            .await
            .expect("two");
    let args = [doetanks[0].id.clone().into(), doetanks[1].id.clone().into()];
    let inline: Vec<DoetankRow> = fetch_small(&db.store, &select, &args).await.expect("inline");
    let pooled: Vec<DoetankRow> = fetch_all(db.store.backend(), &select, &args).await.expect("pool");
    assert_eq!(inline.len(), 2);
    assert_eq!(format!("{inline:?}"), format!("{pooled:?}"));

    // Fields are read by position: a select whose columns differ from the fields is refused.
    let swapped = "SELECT doetank_id, member_id, role, sector, joined_at FROM rm_doetank_members";
    let refused =
        fetch_small::<MembershipRow>(&db.store, swapped, &[]).await.expect_err("columns in another order");
    assert!(
        refused.to_string().contains("expected doetank_id, member_id, sector, role, joined_at"),
        "{refused}"
    );
    db.cleanup().await;
}

/// A rebuild swaps every table in at once: a reader asking all the while gets the answer of the
/// old tables or of the new ones, the same, and never an error. On PostgreSQL the rebuilt
/// tables take the old ones' names while readers' prepared statements point at them.
async fn readers_get_the_same_answers_all_through_a_rebuild(db: &TestDb) {
    let app = App::new(db.store.clone());
    doetank_api::demo::load(&app).await.expect("demo history");
    let no_keep = doetank_api::server::ServerConfig { keep: false, ..Default::default() };
    let server = TestApp::spawn_app(app.clone(), no_keep).await;
    let query =
        "{ doetanks(first: 50) { totalCount edges { node { id name status members { role member { name } } \
                 phases { phase summary } lessons { title tags } } } } \
                 lessons(filter: { search: \"werkt\" }, first: 5) { totalCount edges { node { title } } } \
                 members(first: 50) { totalCount } }";
    let before = server.data(query, serde_json::json!({})).await;
    assert!(before["doetanks"]["totalCount"].as_i64() >= Some(2), "{before:#}");
    assert!(before["lessons"]["totalCount"].as_i64() >= Some(1), "{before:#}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (http, url, stop, token) =
            (server.http.clone(), server.url("/graphql"), stop.clone(), facilitator());
        let body = serde_json::json!({ "query": query });
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response =
                    http.post(&url).bearer_auth(&token).json(&body).send().await.expect("POST /graphql");
                let answer: serde_json::Value = response.json().await.expect("JSON body");
                answers.push(answer);
            }
            answers
        })
    };
    for _ in 0..3 {
        app.projector.rebuild(&|_| {}).await.expect("rebuild");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = reader.await.expect("the reader");
    eprintln!("{} answers during three rebuilds", answers.len());
    assert!(answers.len() >= 3, "the reader asked only {} times", answers.len());
    for answer in &answers {
        assert_eq!(answer.get("errors"), None, "an error during a rebuild");
        assert_eq!(answer["data"], before, "an answer during a rebuild differs");
    }
    assert_eq!(server.data(query, serde_json::json!({})).await, before);
}

/// A list's page (`ORDER BY` its position, `LIMIT`) is read from an index in that order, never
/// by sorting the whole filtered table: before migration 0010 (SQLite) / 0014 (PostgreSQL) the
/// knowledge base's newest twenty lessons took ~30 ms at 15,800 lessons. Each statement has the
/// shape its list's resolver writes (`page_by_position`). PostgreSQL chooses by its statistics,
/// which a test's few rows do not have: it is told to avoid sorts and scans that it could avoid.
async fn list_pages_walk_an_index_in_their_order_instead_of_sorting_the_table(db: &TestDb) {
    let public = "EXISTS (SELECT 1 FROM rm_doetanks vd WHERE vd.id = l.doetank_id AND vd.is_public)";
    let pages = [
        format!("SELECT l.id FROM rm_lessons l WHERE {public} ORDER BY l.position DESC LIMIT 21"),
        format!("SELECT l.id FROM rm_lessons l WHERE {public} AND l.position < 99 ORDER BY l.position DESC LIMIT 21"),
        format!(
            "SELECT l.id FROM rm_lessons l WHERE lower(l.organisation) = lower('Kennisland') AND {public} \
             ORDER BY l.position DESC LIMIT 21"
        ),
        "SELECT m.id FROM rm_members m WHERE NOT m.erased ORDER BY m.created_position LIMIT 21".to_string(),
        "SELECT m.id FROM rm_members m WHERE lower(m.organisation) = lower('Kennisland') \
         ORDER BY m.created_position LIMIT 21"
            .to_string(),
        "SELECT c.id FROM rm_challenges c WHERE c.created_position > 7 ORDER BY c.created_position LIMIT 21".to_string(),
        "SELECT d.id FROM rm_doetanks d WHERE d.is_public ORDER BY d.created_position LIMIT 21".to_string(),
        "SELECT t.id FROM rm_reuses t ORDER BY t.created_position LIMIT 21".to_string(),
        // A tag's lessons: the tag's own entries, rare or on every lesson, never all lessons.
        format!(
            "SELECT l.id FROM rm_lesson_tags t JOIN rm_lessons l ON l.id = t.lesson_id WHERE t.tag = 'wijk' \
             AND {public} AND t.position < 99 ORDER BY t.position DESC LIMIT 21"
        ),
    ];
    // Look-ups a page makes per row, by a column other than the key: none reads its whole table.
    let challenges_without_doetank = "SELECT c.id FROM rm_challenges c WHERE NOT EXISTS (SELECT 1 FROM rm_doetanks vd \
         WHERE vd.challenge_id = c.id AND vd.status <> 'DISCONTINUED' AND vd.is_public) ORDER BY c.created_position LIMIT 21";
    let look_ups = [
        (challenges_without_doetank, "rm_doetanks"),
        (
            "SELECT d.id FROM rm_doetanks d WHERE d.challenge_id = 'c' ORDER BY d.created_position",
            "rm_doetanks",
        ),
        (
            "SELECT t.id FROM rm_reuses t WHERE t.source_doetank_id = 'd' ORDER BY t.created_position",
            "rm_reuses",
        ),
    ];
    for (statement, table) in look_ups {
        let plan = plan_of(db, statement).await;
        let alias = statement.split(&format!("FROM {table} ")).nth(1).and_then(|rest| rest.split(' ').next());
        let scanned = [format!("SCAN {}", alias.unwrap_or(table)), format!("Seq Scan on {table}")];
        assert!(
            !scanned.iter().any(|s| plan.contains(s.as_str())),
            "reads all of {table}:\n{statement}\n{plan}"
        );
    }
    for page in pages {
        let plan = plan_of(db, &page).await;
        assert!(
            !plan.contains("TEMP B-TREE FOR ORDER BY") && !plan.contains("Sort"),
            "a page sorts its table:\n{page}\n{plan}"
        );
        if page.contains("rm_lesson_tags") {
            assert!(
                !plan.contains("SCAN") && !plan.contains("Seq Scan"),
                "a tag's page reads every lesson:\n{plan}"
            );
        }
    }
}

/// The plan of `statement`, one line per step (on PostgreSQL with sorts and sequential scans
/// made dear, so that a test's few rows do not decide it).
async fn plan_of(db: &TestDb, statement: &str) -> String {
    let plan: Vec<String> = match db.store.backend() {
        Backend::Sqlite(pool) => sqlx::query(&format!("EXPLAIN QUERY PLAN {statement}"))
            .fetch_all(pool)
            .await
            .expect("plan")
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect(),
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await.expect("begin");
            for nudge in ["SET LOCAL enable_sort = off", "SET LOCAL enable_seqscan = off"] {
                sqlx::query(nudge).execute(&mut *tx).await.expect("planner setting");
            }
            let rows = sqlx::query(&format!("EXPLAIN {statement}")).fetch_all(&mut *tx).await.expect("plan");
            rows.iter().map(|row| row.get::<String, _>(0)).collect()
        }
    };
    plan.join("\n")
}

/// The SQLite swap clears the old read models without overwriting them (they hold only what the
/// log holds), but personal data it forgets is overwritten, as every other delete of it is: a
/// member erased while their name was still kept (say, in a backup taken before the erasure
/// and restored) leaves the name nowhere in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_overwrites_the_personal_data_it_forgets() {
    const NAME: &[u8] = b"Kwartel Zeldenzien";
    let db = TestDb::sqlite().await;
    let app = App::new(db.store.clone());
    let o = CommandOptions { actor: "test".into(), ..Default::default() };
    let id = Uuid::new_v4();
    let personal = doetank_api::commands::PersonalData { name: "Iemand".into(), email: None };
    app.register_member(&o, id, personal, "TNO", Sector::Public, vec![]).await.expect("register");
    app.execute::<Member>(id, &o, |m| m.erase()).await.expect("erase");
    app.projector.catch_up().await.expect("catch up");
    let Backend::Sqlite(pool) = db.store.backend() else { unreachable!("a SQLite database") };
    sqlx::query("INSERT INTO member_personal_data (member_id, name) VALUES ($1, $2)")
        .bind(id.to_string())
        .bind(std::str::from_utf8(NAME).expect("text"))
        .execute(pool)
        .await
        .expect("the name restored");

    app.projector.rebuild(&|_| {}).await.expect("rebuild");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM member_personal_data").fetch_one(pool).await.expect("count");
    assert_eq!(left, 0, "the rebuild kept an erased member's personal data");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.expect("checkpoint");
    let path = db.url.trim_start_matches("sqlite:");
    for file in [path.to_string(), format!("{path}-wal")] {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!bytes.windows(NAME.len()).any(|w| w == NAME), "{file} still holds the erased name");
    }
    db.cleanup().await;
}
