//! Appending to a stream: atomic, with optimistic concurrency and idempotent command ids.

use std::future::Future;

use chrono::{SubsecRound, Utc};
use doetank_domain::EncodedEvent;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::backend::EventStore;
use crate::error::StoreError;
use crate::model::{AppendResult, ExpectedVersion, Metadata, StreamId};
use crate::on_pool;

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

/// Sends the new head on the `doetank_log` channel, where the backend has one.
trait NotifyOtherNodes {
    fn notify_other_nodes(&mut self, head: i64) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl NotifyOtherNodes for Transaction<'static, Sqlite> {
    async fn notify_other_nodes(&mut self, _head: i64) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl NotifyOtherNodes for Transaction<'static, Postgres> {
    async fn notify_other_nodes(&mut self, head: i64) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify('doetank_log', $1)")
            .bind(head.to_string())
            .execute(&mut **self)
            .await?;
        Ok(())
    }
}

/// Why an append was turned down inside its transaction (which is then rolled back).
enum Verdict {
    Written(AppendResult),
    Replay(AppendResult),
    Refused(StoreError),
}

impl EventStore {
    /// Appends `events` to `stream` in one transaction, if the stream is at `expected`.
    ///
    /// Every append first bumps the single `log_head` row: that row lock serialises writers
    /// until commit, so global positions are committed in order and a reader that has seen
    /// position N will never later find an N-1 it missed. With a command id that was seen
    /// before, nothing is written and the first result is returned.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[EncodedEvent],
        metadata: &Metadata,
    ) -> Result<AppendResult, StoreError> {
        let stream_id = stream.to_string();
        let count = events.len() as i64;
        // Microseconds: what PostgreSQL keeps, so both backends export the same text.
        let now = Utc::now().trunc_subsecs(6);
        let verdict = on_pool!(&self.backend, pool => {
            let mut tx = pool.begin_write().await?;
            let head: i64 = sqlx::query_scalar("UPDATE log_head SET position = position + $1 WHERE id = 1 RETURNING position")
                .bind(count)
                .fetch_one(&mut *tx)
                .await?;
            let first_position = head - count + 1;

            let seen = match metadata.command_id {
                Some(command_id) => sqlx::query(
                    "SELECT stream_id, stream_version, first_position, last_position FROM commands WHERE command_id = $1",
                )
                .bind(command_id)
                .fetch_optional(&mut *tx)
                .await?,
                None => None,
            };
            let actual: i64 = sqlx::query_scalar("SELECT version FROM streams WHERE stream_id = $1")
                .bind(&stream_id)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0);

            let verdict = if let Some(row) = seen {
                let seen_stream: String = row.try_get("stream_id")?;
                if seen_stream == stream_id {
                    Verdict::Replay(AppendResult {
                        stream_version: row.try_get("stream_version")?,
                        first_position: row.try_get("first_position")?,
                        last_position: row.try_get("last_position")?,
                        deduplicated: true,
                    })
                } else {
                    Verdict::Refused(StoreError::CommandIdReused {
                        command_id: metadata.command_id.unwrap_or_default(),
                        stream_id: seen_stream,
                    })
                }
            } else if !expected.matches(actual) {
                Verdict::Refused(StoreError::VersionConflict { stream_id: stream_id.clone(), expected, actual })
            } else if events.is_empty() {
                Verdict::Replay(AppendResult {
                    stream_version: actual,
                    first_position: head,
                    last_position: head,
                    deduplicated: false,
                })
            } else {
                for (i, event) in events.iter().enumerate() {
                    let i = i as i64;
                    sqlx::query(
                        "INSERT INTO events (position, event_id, stream_id, stream_type, version, event_type, \
                         schema_version, payload, actor, command_id, correlation_id, causation_id, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    )
                    .bind(first_position + i)
                    .bind(Uuid::now_v7())
                    .bind(&stream_id)
                    .bind(&stream.stream_type)
                    .bind(actual + 1 + i)
                    .bind(&event.event_type)
                    .bind(event.schema_version)
                    .bind(Json(&event.payload))
                    .bind(metadata.actor.as_deref())
                    .bind(metadata.command_id)
                    .bind(metadata.correlation_id)
                    .bind(metadata.causation_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let version = actual + count;
                sqlx::query(
                    "INSERT INTO streams (stream_id, stream_type, version) VALUES ($1, $2, $3) \
                     ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
                )
                .bind(&stream_id)
                .bind(&stream.stream_type)
                .bind(version)
                .execute(&mut *tx)
                .await?;
                if let Some(command_id) = metadata.command_id {
                    sqlx::query(
                        "INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(command_id)
                    .bind(&stream_id)
                    .bind(version)
                    .bind(first_position)
                    .bind(head)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                // Wake the other nodes (delivered at commit, never for a rolled-back append).
                // SQLite has no such channel: other processes on the machine poll.
                tx.notify_other_nodes(head).await?;
                Verdict::Written(AppendResult {
                    stream_version: version,
                    first_position,
                    last_position: head,
                    deduplicated: false,
                })
            };
            match verdict {
                Verdict::Written(_) => tx.commit().await?,
                _ => tx.rollback().await?,
            }
            verdict
        });
        match verdict {
            Verdict::Written(result) => {
                self.advance_head(result.last_position);
                tracing::debug!(stream = %stream_id, version = result.stream_version, position = result.last_position, "appended");
                Ok(result)
            }
            Verdict::Replay(result) => Ok(result),
            Verdict::Refused(err) => {
                tracing::debug!(stream = %stream_id, error = %err, "append refused");
                Err(err)
            }
        }
    }

    /// The first result of a command id, if it was seen: lets callers skip re-deciding a retry.
    pub async fn command_result(
        &self,
        command_id: Uuid,
    ) -> Result<Option<(String, AppendResult)>, StoreError> {
        let row = on_pool!(&self.backend, pool => {
            let row = sqlx::query(
                "SELECT stream_id, stream_version, first_position, last_position FROM commands WHERE command_id = $1",
            )
            .bind(command_id)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Some((
                    row.try_get::<String, _>("stream_id")?,
                    AppendResult {
                        stream_version: row.try_get("stream_version")?,
                        first_position: row.try_get("first_position")?,
                        last_position: row.try_get("last_position")?,
                        deduplicated: true,
                    },
                )),
                None => None,
            }
        });
        Ok(row)
    }
}
