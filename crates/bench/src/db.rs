//! Fresh databases for each measurement.

use sqlx::Connection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// A database that lives as long as this value (the SQLite file's folder, or a PG database).
pub struct Fresh {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn fresh(&self) -> anyhow::Result<Fresh> {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite:{}", dir.path().join("bench.db").display());
                Ok(Fresh { url, _dir: Some(dir), postgres: None })
            }
            Backend::Postgres(admin) => {
                let name = format!("doetank_bench_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(admin).await?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
                Ok(Fresh {
                    url: doetank_store::with_database(admin, &name),
                    _dir: None,
                    postgres: Some((admin.clone(), name)),
                })
            }
        }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(async {
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}
