//! The `doetank` binary itself.

use std::process::Command;

use serde_json::Value;

use crate::both_backends;
use crate::support::TestDb;

both_backends!(migrate_is_idempotent_and_reports_the_head);
both_backends!(a_build_runs_on_a_database_a_newer_build_migrated);
both_backends!(a_rebuild_keeps_as_much_in_memory_as_it_is_told);

/// `--rebuild-cache-mib` (or `DOETANK_REBUILD_CACHE_MIB`) sets how much of its scratch files a
/// rebuild keeps in memory, for a node short of memory; a rebuild with little gives the same
/// read models. Nought is refused before anything is opened.
async fn a_rebuild_keeps_as_much_in_memory_as_it_is_told(db: &TestDb) {
    let app = doetank_api::App::new(db.store.clone());
    doetank_api::demo::load(&app).await.expect("demo");
    let before = crate::projections::dump(db.store.backend()).await;
    let rebuild = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doetank"));
        command.args(args).args(["--database-url", &db.url, "rebuild"]).env("RUST_LOG", "doetank_api=info");
        match env {
            Some(mib) => command.env("DOETANK_REBUILD_CACHE_MIB", mib),
            None => command.env_remove("DOETANK_REBUILD_CACHE_MIB"),
        };
        command.output().expect("run doetank")
    };
    for (args, env, told) in [
        (&[][..], None, "scratch_cache_mib=256"),
        (&["--rebuild-cache-mib", "1"][..], None, "scratch_cache_mib=1"),
        (&[][..], Some("3"), "scratch_cache_mib=3"),
    ] {
        let out = rebuild(args, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(told), "{told}: {stderr}");
        assert_eq!(crate::projections::dump(db.store.backend()).await, before, "{told}");
    }
    let refused = rebuild(&["--rebuild-cache-mib", "0"], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--rebuild-cache-mib"));
}

async fn migrate_is_idempotent_and_reports_the_head(db: &TestDb) {
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("run doetank");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("log head at position 0"), "{stdout}");
        assert!(!stdout.contains("rebuild"), "nothing built, nothing to rebuild: {stdout}");
    }
    // Read models another version built: the operator is told the next start rebuilds them.
    let app = doetank_api::App::new(db.store.clone());
    doetank_api::demo::load(&app).await.expect("demo");
    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("run doetank");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(!migrate().contains("rebuild"), "this version's read models");
    doetank_store::on_pool!(db.store.backend(), pool => {
        sqlx::query("UPDATE projection_version SET version = 0").execute(pool).await.expect("an older version");
    });
    let told = migrate();
    assert!(
        told.contains("built by projection version 0") && told.contains("`serve` rebuilds them"),
        "{told}"
    );
}

/// A node of the previous build that restarts during a rolling upgrade, or a rollback, finds
/// migrations it does not know, all past its newest: it starts, saying so. An unknown one among
/// its own (a database of another lineage, a migration deleted from the source) is refused.
async fn a_build_runs_on_a_database_a_newer_build_migrated(db: &TestDb) {
    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("run doetank")
    };
    let recorded = |version: i64| {
        format!(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
             SELECT {version}, 'not of this build', installed_on, success, checksum, execution_time \
             FROM _sqlx_migrations WHERE version = 1"
        )
    };
    assert!(migrate().status.success());
    doetank_store::on_pool!(db.store.backend(), pool => {
        sqlx::query(&recorded(99_990_101)).execute(pool).await.expect("a newer build's migration");
    });
    let out = migrate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("migrations of a newer build") && stderr.contains("99990101"), "{stderr}");
    // It still writes: the log and its read models as they were.
    let app = doetank_api::App::new(db.store.clone());
    doetank_api::demo::load(&app).await.expect("the demo, written by this build");
    assert!(db.store.head_position().await.expect("the head") > 0);

    doetank_store::on_pool!(db.store.backend(), pool => {
        sqlx::query(&recorded(0)).execute(pool).await.expect("a migration this build never had");
    });
    let out = migrate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown migration among this build's own is refused");
    assert!(stderr.contains("migration 0 was previously applied but is missing"), "{stderr}");
    // A refused run in a process that goes on leaves no lock behind on PostgreSQL (sqlx's
    // session lock stays held on a failed run's connection unless it is closed).
    assert!(db.store.migrate().await.is_err());
    // A closed connection's server process ends a moment after the client lets go, and its
    // locks with it: a lock still held after five seconds is one a live connection holds.
    if let doetank_store::Backend::Postgres(pool) = db.store.backend() {
        let mut held = 0;
        for _ in 0..50 {
            held = sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(pool)
            .await
            .expect("the locks");
            if held == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(held, 0, "a failed migration's lock is held");
    }
}

#[test]
fn an_unknown_database_scheme_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["migrate", "--database-url", "mysql://localhost/x"])
        .output()
        .expect("run doetank");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

/// `doetank event-types` writes the data dictionary in the shape the `eventTypes` query answers
/// (the same fields as `schema.graphql`'s `EventType`), for reading an export offline.
#[test]
fn event_types_prints_the_data_dictionary_as_the_query_answers_it() {
    let out = doetank(&["event-types"]);
    let dictionary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let types = dictionary["eventTypes"].as_array().expect("eventTypes");
    assert_eq!(types.len(), 44, "the eight streams' event types");
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql"))
        .expect("schema.graphql");
    let block = schema.split("type EventType {").nth(1).and_then(|b| b.split('}').next()).expect("EventType");
    let mut fields: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(char::is_alphanumeric))
        .collect();
    fields.sort_unstable();
    for entry in types {
        let mut keys: Vec<&str> = entry.as_object().expect("an object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, fields, "{entry:#}");
    }
    let lesson = types.iter().find(|t| t["type"] == "LessonRecorded").expect("LessonRecorded");
    assert_eq!(lesson["readVersions"], serde_json::json!([1, 2]));
    assert_eq!(lesson["payloadSchema"]["properties"]["kind"]["$ref"], "#/$defs/LessonKind", "{lesson:#}");
}

#[test]
fn export_refuses_a_negative_after_as_the_log_endpoint_does() {
    let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["export", "--after=-3", "--database-url", "sqlite::memory:"])
        .output()
        .expect("run doetank");
    assert!(!out.status.success(), "a negative --after exported the whole log");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'-3'"), "{out:?}");
}

both_backends!(export_then_import_then_export_gives_identical_bytes);

/// `export --to` writes the log as it stood at a time, and `import` of it is the network as it
/// stood then: on the demo, 20/10 in late summer 2013 has researched and is developing, and the
/// pilot has its mandate but its rule is not yet suspended.
#[tokio::test]
async fn an_export_to_a_time_imported_is_the_network_as_it_stood_then() {
    use doetank_api::demo::{demo_id, DOETANK_2010};
    let db = demo_on_sqlite().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("summer-2013.ndjson").display().to_string();
    let cut = "2013-09-01T00:00:00Z";
    doetank(&["export", "--to", cut, "--output", &file, "--database-url", &db.url]);

    let events = read_export_file(&file);
    let cut_time: chrono::DateTime<chrono::Utc> = cut.parse().expect("a time");
    assert!(events.iter().all(|e| e.recorded_at < cut_time), "only what was recorded before {cut}");
    let head = db.store.head_position().await.expect("head");
    assert!(events.len() > 30 && (events.len() as i64) < head, "{} of {head}", events.len());
    assert!(events.iter().enumerate().all(|(i, e)| e.position == i as i64 + 1), "a prefix of the log");

    let then = TestDb::sqlite().await;
    doetank(&["import", &file, "--database-url", &then.url]);
    let copied = doetank_api::App::new(then.store.clone());
    let (doetank, _) = copied.load::<doetank_domain::Doetank>(demo_id(DOETANK_2010)).await.expect("load");
    assert_eq!(doetank.current_phase, Some(doetank_domain::Phase::Develop));
    assert!(!doetank.is_public, "made public in September");
    let (pilot, _) = copied.load::<doetank_domain::Pilot>(demo_id(0x700)).await.expect("load");
    assert!(pilot.mandate.is_some() && pilot.suspension.is_none(), "{pilot:?}");

    let refused = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["export", "--to", "last summer", "--database-url", &db.url])
        .output()
        .expect("run doetank");
    assert!(!refused.status.success(), "a time that is no time exported the whole log");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("'last summer'"), "{refused:?}");
}

/// `export` filters as `/events.ndjson` does, for a researcher without a server: by event type,
/// stream type, stream and time; a name the log does not have is refused naming the flag and
/// the name meant, before the file is made (an empty export would read as "none happened").
#[tokio::test]
async fn export_filters_the_log_as_the_log_endpoint_does() {
    let db = demo_on_sqlite().await;
    let dir = tempfile::tempdir().expect("dir");
    let all = dir.path().join("all.ndjson").display().to_string();
    doetank(&["export", "--output", &all, "--database-url", &db.url]);
    let all = read_export_file(&all);
    let from: chrono::DateTime<chrono::Utc> = "2013-06-01T00:00:00Z".parse().expect("a time");
    let wanted: Vec<i64> = all
        .iter()
        .filter(|e| ["LessonRecorded", "PhaseCompleted"].contains(&e.event_type.as_str()))
        .filter(|e| e.stream_id.starts_with("doetank-") && e.recorded_at >= from)
        .map(|e| e.position)
        .collect();
    assert!(wanted.len() > 3, "{wanted:?}");
    let some = dir.path().join("some.ndjson").display().to_string();
    let filters = [
        "--types",
        "LessonRecorded,PhaseCompleted",
        "--stream-type",
        "doetank",
        "--from",
        "2013-06-01T00:00:00Z",
    ];
    doetank(&[&["export", "--output", &some, "--database-url", &db.url][..], &filters[..]].concat());
    let positions: Vec<i64> = read_export_file(&some).iter().map(|e| e.position).collect();
    assert_eq!(positions, wanted);
    // An export for study, not a whole log: `import` says why it refuses one.
    let empty = TestDb::sqlite().await;
    let refused = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["import", &some, "--database-url", &empty.url])
        .output()
        .expect("run doetank");
    assert!(!refused.status.success(), "a filtered export was imported");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("an export filtered by type"), "{refused:?}");

    let slip = dir.path().join("slip.ndjson");
    let refused = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["export", "--stream-type", "Doetank", "--database-url", &db.url, "--output"])
        .arg(&slip)
        .output()
        .expect("run doetank");
    assert!(!refused.status.success(), "a stream type the log does not have exported nothing");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--stream-type") && said.contains("did you mean \\\"doetank\\\"?"), "{said}");
    assert!(!slip.exists(), "no file for a refused export");
}

/// A file that is no export (or a CSV with its columns moved) is refused, not misread or taken
/// as an empty log; an empty file is an export of nothing.
#[tokio::test]
async fn an_import_that_is_no_export_is_refused_and_writes_nothing() {
    let db = TestDb::sqlite().await;
    let dir = std::env::temp_dir().join(format!("doetank-import-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let header = doetank_api::export::CSV_HEADER;
    let mut swapped = header;
    swapped.swap(2, 3);
    // Well formed, but of a type no read model can read: the log would be written and its read
    // models could never be built.
    let unknown = serde_json::json!({
        "position": 1, "event_id": uuid::Uuid::new_v4(), "stream_id": format!("member-{}", uuid::Uuid::new_v4()),
        "stream_type": "member", "version": 1, "event_type": "NoSuchEvent", "schema_version": 1,
        "payload": {}, "metadata": { "actor": null, "command_id": null, "correlation_id": uuid::Uuid::new_v4(),
        "causation_id": null }, "recorded_at": "2026-01-01T00:00:00Z"
    });
    // Two events under one id (until the thirty-first session the database's unique constraint
    // spoke, thrice over), and a stream whose id names another type than its own.
    let note = |position: i64, event_id: uuid::Uuid, stream_id: &str| {
        let mut note = unknown.clone();
        note["position"] = position.into();
        note["version"] = position.into();
        note["event_id"] = event_id.to_string().into();
        note["stream_id"] = stream_id.into();
        note["stream_type"] = "note".into();
        note["event_type"] = "NoteTaken".into();
        note
    };
    let (once, notes) = (uuid::Uuid::new_v4(), format!("note-{}", uuid::Uuid::new_v4()));
    let twice = format!("{}\n{}\n", note(1, once, &notes), note(2, once, &notes));
    let misnamed = format!("{}\n", note(1, once, &format!("member-{}", uuid::Uuid::new_v4())));
    // A member stream that opens without its registration, and one registered twice: read
    // models start from a stream's opening event, so either would be drawn wrong, silently.
    let member = |position: i64, version: i64, event_type: &str, stream_id: &str| {
        let mut event = unknown.clone();
        event["position"] = position.into();
        event["version"] = version.into();
        event["event_id"] = uuid::Uuid::new_v4().to_string().into();
        event["stream_id"] = stream_id.into();
        event["event_type"] = event_type.into();
        let id = stream_id.trim_start_matches("member-");
        event["payload"] = serde_json::json!({ "member_id": id, "organisation": "TNO", "sector": "PUBLIC", "expertise": [] });
        event
    };
    let anna = format!("member-{}", uuid::Uuid::new_v4());
    let unopened = format!("{}\n", member(1, 1, "MemberProfileUpdated", &anna));
    let reopened =
        format!("{}\n{}\n", member(1, 1, "MemberRegistered", &anna), member(2, 2, "MemberRegistered", &anna));
    let files = [
        (
            "unopened.ndjson",
            unopened,
            &*format!("the event at position 1 opens {anna} with MemberProfileUpdated: a member stream opens with MemberRegistered, once"),
        ),
        ("reopened.ndjson", reopened, &*format!("the event at position 2 opens {anna} again, at version 2")),
        (
            "twice.ndjson",
            twice,
            &*format!("the event at position 2 is corrupt: its event id {once} is the event's at position 1"),
        ),
        ("misnamed.ndjson", misnamed, "is no stream of type note"),
        ("garbage.csv", "garbage\n".to_string(), "not a doetank export"),
        ("swapped.csv", format!("{}\n", swapped.join(",")), "not a doetank export"),
        ("other.txt", "position;event_id\n1;x\n".to_string(), "not a doetank export"),
        ("unknown.ndjson", format!("{unknown}\n"), "the event at position 1 cannot be read"),
    ];
    for (name, content, refusal) in &files {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["import", &path.display().to_string(), "--database-url", &db.url])
            .output()
            .expect("run doetank");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was taken for an export");
        assert!(stderr.contains(refusal), "{name}: {stderr}");
        assert_eq!(db.store.head_position().await.expect("head"), 0, "{name} wrote something");
    }
    let empty = dir.join("empty.ndjson");
    std::fs::write(&empty, "").expect("write");
    let out = doetank(&["import", &empty.display().to_string(), "--database-url", &db.url]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 0 events"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup().await;
}

/// A database that cannot be opened is said so at once, its cause once, and a password in its
/// URL is not logged (until the thirty-first session PostgreSQL's cause was lost behind the
/// pool's 10 s timeout, SQLite's said three times over, and the password was printed).
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_named_with_its_cause_once() {
    let dir = std::env::temp_dir().join(format!("doetank-no-{}", uuid::Uuid::new_v4()));
    let unreachable = "postgres://postgres:hunter2@127.0.0.1:1/doetank";
    let nowhere = format!("sqlite:{}", dir.join("deeper").join("doetank.db").display());
    for (url, cause) in
        [(unreachable, "Connection refused"), (nowhere.as_str(), "unable to open database file")]
    {
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["migrate", "--database-url", url])
            .output()
            .expect("run doetank");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}");
        assert_eq!(stderr.matches(cause).count(), 1, "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password was logged: {stderr}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{url}: not at once");
    }
}

/// A secret anyone could guess mints any token, a facilitator's too: an HS256 secret shorter
/// than the hash (32 bytes, RFC 7518) is refused by `token` and `serve` alike, without printing
/// it (until the thirty-first session an empty `DOETANK_JWT_SECRET` was taken).
#[tokio::test]
async fn a_jwt_secret_too_short_to_be_one_is_refused() {
    for args in [
        vec!["token", "--member", "staff", "--role", "facilitator"],
        vec!["serve", "--listen", "127.0.0.1:0", "--database-url", "sqlite::memory:"],
    ] {
        for secret in ["", "hunter2"] {
            let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
                .args(&args)
                .env("DOETANK_JWT_SECRET", secret)
                .output()
                .expect("run doetank");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} took {secret:?}");
            assert!(stderr.contains("at least 32 bytes"), "{stderr}");
            assert!(secret.is_empty() || !stderr.contains(secret), "the secret was printed: {stderr}");
        }
    }
}

/// A SQLite database with the demo history loaded.
async fn demo_on_sqlite() -> TestDb {
    let db = TestDb::sqlite().await;
    let app = doetank_api::App::new(db.store.clone());
    assert!(doetank_api::demo::load(&app).await.expect("demo"));
    db
}

/// The events of the export written to `file`.
fn read_export_file(file: &str) -> Vec<doetank_store::RecordedEvent> {
    doetank_api::export::read_export(&std::fs::read(file).expect("the export")).expect("read")
}

fn doetank(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_doetank")).args(args).output().expect("run doetank");
    assert!(out.status.success(), "doetank {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

async fn fresh_like(db: &TestDb) -> TestDb {
    match db.store.backend_name() {
        "postgres" => TestDb::postgres().await.expect("a second PostgreSQL database"),
        _ => TestDb::sqlite().await,
    }
}

async fn export_then_import_then_export_gives_identical_bytes(db: &TestDb) {
    let app = doetank_api::App::new(db.store.clone());
    doetank_api::demo::load(&app).await.expect("demo");
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name).display().to_string();

    for format in ["ndjson", "csv"] {
        let first = path(&format!("first.{format}"));
        doetank(&["export", "--format", format, "--output", &first, "--database-url", &db.url]);
        let copy = fresh_like(db).await;
        let imported = doetank(&["import", &first, "--database-url", &copy.url]);
        assert!(String::from_utf8_lossy(&imported.stdout).contains("imported"), "{imported:?}");
        let second = path(&format!("second.{format}"));
        doetank(&["export", "--format", format, "--output", &second, "--database-url", &copy.url]);
        let (a, b) = (std::fs::read(&first).expect("first"), std::fs::read(&second).expect("second"));
        assert!(!a.is_empty());
        assert!(a == b, "{format}: export → import → export must give identical bytes");

        // The copy's read models were rebuilt from the imported log.
        let copied = doetank_api::App::new(copy.store.clone());
        let (doetank, version) = copied
            .load::<doetank_domain::Doetank>(doetank_api::demo::demo_id(doetank_api::demo::DOETANK_2010))
            .await
            .expect("load");
        assert_eq!(doetank.name, "20/10");
        assert!(version > 10);
        assert_eq!(
            copied.projector.checkpoint().await.expect("checkpoint"),
            copy.store.head_position().await.expect("head")
        );
        // Importing into a database that already has events is refused.
        let again = Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["import", &first, "--database-url", &copy.url])
            .output()
            .expect("run");
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("import needs an empty database"));
        copy.cleanup().await;
    }

    // Standard output and --after.
    let tail = doetank(&["export", "--after", "80", "--database-url", &db.url]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.first().map(|l| l["position"].clone()), Some(serde_json::json!(81)));
    // A position past the head, as `/events.ndjson` answers it (until the thirtieth session:
    // "exported 0 events").
    let past = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["export", "--after", "99999", "--database-url", &db.url])
        .output()
        .expect("run doetank");
    assert!(!past.status.success(), "{past:?}");
    assert!(String::from_utf8_lossy(&past.stderr).contains("past the log's newest position"), "{past:?}");
}

/// `--log-format json` writes each log line as one JSON object with its level and fields, for
/// a log collector; the default is text for a terminal.
#[test]
fn logs_can_be_json_lines_for_a_collector() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("logs.db").display());
    let out = doetank(&["migrate", "--log-format", "json", "--database-url", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let migrated =
        lines.iter().find(|l| l["message"] == "event store migrated").expect("the migration's line");
    assert_eq!(migrated["level"], "INFO");
    assert_eq!(migrated["backend"], "sqlite", "fields are the object's own: {migrated}");
    let text = doetank(&["migrate", "--database-url", &url]);
    let text = String::from_utf8_lossy(&text.stderr);
    assert!(
        text.contains("event store migrated") && serde_json::from_str::<Value>(text.trim()).is_err(),
        "{text}"
    );
}
