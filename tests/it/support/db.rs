use doetank_store::EventStore;
use sqlx::Connection;
use uuid::Uuid;

/// Set this to a PostgreSQL server URL to run the PostgreSQL half of the suite.
pub const POSTGRES_URL_VAR: &str = "DOETANK_TEST_POSTGRES_URL";

/// A migrated store on a database of its own, removed again by `cleanup`.
pub struct TestDb {
    pub store: EventStore,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("doetank.db").display());
        let store = EventStore::connect(&url).await.expect("connect sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestDb { store, url, _dir: Some(dir), postgres: None }
    }

    /// A fresh database on the server named by `DOETANK_TEST_POSTGRES_URL`; `None` (skip) when it
    /// is unset, except under CI, where a missing or unreachable server fails the test.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{POSTGRES_URL_VAR} must be set under CI: the PostgreSQL tests may not be skipped")
            }
            _ => {
                eprintln!("skipped: set {POSTGRES_URL_VAR} to run the PostgreSQL tests");
                return None;
            }
        };
        let name = format!("doetank_test_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = doetank_store::with_database(&admin_url, &name);
        let store = EventStore::connect_with(&url, 20).await.expect("connect test database");
        store.migrate().await.expect("migrate postgres");
        Some(TestDb { store, url, _dir: None, postgres: Some((admin_url, name)) })
    }

    /// Imports into this empty store one `note` stream whose events were recorded `ms`
    /// milliseconds after `base`, in this order: a log whose times may go back, as another
    /// node's clock or an imported history leaves it. Returns the events.
    pub async fn import_notes_at(
        &self,
        base: chrono::DateTime<chrono::Utc>,
        ms: &[i64],
    ) -> Vec<doetank_store::RecordedEvent> {
        let stream = format!("note-{}", Uuid::new_v4());
        let events: Vec<doetank_store::RecordedEvent> = ms
            .iter()
            .enumerate()
            .map(|(i, ms)| doetank_store::RecordedEvent {
                position: i as i64 + 1,
                event_id: Uuid::new_v4(),
                stream_id: stream.clone(),
                stream_type: "note".into(),
                version: i as i64 + 1,
                event_type: "NoteTaken".into(),
                schema_version: 1,
                payload: serde_json::json!({ "i": i }),
                metadata: doetank_store::Metadata::new("clock"),
                recorded_at: base + chrono::Duration::milliseconds(*ms),
            })
            .collect();
        self.store.import(&events).await.expect("import");
        events
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.postgres {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        }
    }
}

/// Runs one async test body against SQLite and, when configured, PostgreSQL:
/// `both_backends!(name_of_async_fn_taking_store)` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::support::TestDb::sqlite().await;
                super::$name(&db).await;
                db.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres().await {
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            }
        }
    )+};
}
