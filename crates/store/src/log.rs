//! The researcher's view of the log: filtered pages, counts, and loading an exported log.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::Row;

use crate::append::BeginWrite;
use crate::backend::EventStore;
use crate::error::StoreError;
use crate::model::{Metadata, RecordedEvent};
use crate::on_pool;
use crate::rows::{insert_events, EventRow, ROWS_PER_INSERT};

/// Which events of the log to read. Empty lists mean "all".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub stream_ids: Vec<String>,
    pub stream_types: Vec<String>,
    pub event_types: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Informal doetanks (DOMAIN.md rule 5): when set, events of a doetank stream pass only if
    /// its read model says the doetank is public, or `viewer` is one of its members or its coach.
    /// `None` sees everything.
    pub doetanks_visible_to: Option<DoetankViewer>,
}

/// A name [`EventStore::log_holds`] looks for in the log.
#[derive(Debug, Clone, Copy)]
pub enum LogName<'a> {
    EventType(&'a str),
    StreamType(&'a str),
    StreamId(&'a str),
}

/// Whose eyes the log is read through, for informal doetanks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoetankViewer {
    /// The member id of the reader, if they are a member.
    pub member_id: Option<String>,
}

/// Rule 5 in SQL, the one place it is written: doetank `alias` (an `rm_doetanks` row) is seen
/// when public, or by its coach and its members, the member id being placeholder `$member`;
/// not by a member who has been erased (gone for good, though still listed under their id).
/// The API's every door and the log's filter both use it, so they cannot drift apart.
pub fn doetank_visible_sql(alias: &str, member: Option<usize>) -> String {
    match member {
        Some(m) => format!(
            "({alias}.is_public OR (({alias}.coach_id = ${m} OR EXISTS (SELECT 1 FROM rm_doetank_members vm \
             WHERE vm.doetank_id = {alias}.id AND vm.member_id = ${m})) \
             AND NOT EXISTS (SELECT 1 FROM rm_members ve WHERE ve.id = ${m} AND ve.erased)))"
        ),
        None => format!("{alias}.is_public"),
    }
}

/// How rule 5 asks whether the one row a probe finds by key (a doetank, or a reuse's or an
/// idea's doetank) may be seen: the shape each backend reads fastest for what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A correlated `EXISTS`. SQLite probes it by key for each row. PostgreSQL chooses between
    /// that and one hash of every doetank the viewer may see by the rows it expects to read,
    /// which a page's `LIMIT` does not lower: right for a count or an aggregate over the whole
    /// log (a researcher's count of 1,000,000 events took 362 ms so, 1,330–1,400 ms as scalar
    /// subqueries), wrong for a page of a few rows.
    Exists,
    /// A scalar subquery of the row, which PostgreSQL looks up by key for each row: a page of
    /// 1,000 events took 26–33 ms with 26,000 doetanks hashed for it, 5–8 ms so, and a first
    /// page of twenty timeline lines 10–13 ms against 0.2.
    ByKey,
}

impl Probe {
    /// The shape for a page of rows. SQLite keeps `EXISTS`: the scalar form exported a log of
    /// 1,000,000 events 10–13% slower there.
    pub fn for_page(sqlite: bool) -> Self {
        if sqlite {
            Probe::Exists
        } else {
            Probe::ByKey
        }
    }

    /// Whether the one row `from_where` finds passes `visible`.
    pub fn sql(self, from_where: &str, visible: &str) -> String {
        match self {
            Probe::Exists => format!("EXISTS (SELECT 1 {from_where} AND {visible})"),
            Probe::ByKey => format!("COALESCE((SELECT {visible} {from_where}), FALSE)"),
        }
    }
}

/// The length of the periods [`EventStore::log_activity`] counts by, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// From Monday, as ISO 8601 weeks (and PostgreSQL's `date_trunc`) start.
    Week,
    Month,
    Year,
}

impl Period {
    /// The first instant of the period of `recorded_at`. SQLite keeps times as RFC 3339 text,
    /// which its date functions read; 'weekday 0' moves to the next Sunday (or stays on one),
    /// six days back is that week's Monday.
    fn start_sql(self, sqlite: bool) -> &'static str {
        match (self, sqlite) {
            (Period::Day, true) => "strftime('%Y-%m-%dT00:00:00Z', recorded_at)",
            (Period::Week, true) => "strftime('%Y-%m-%dT00:00:00Z', recorded_at, 'weekday 0', '-6 days')",
            (Period::Month, true) => "strftime('%Y-%m-01T00:00:00Z', recorded_at)",
            (Period::Year, true) => "strftime('%Y-01-01T00:00:00Z', recorded_at)",
            (Period::Day, false) => "date_trunc('day', recorded_at, 'UTC')",
            (Period::Week, false) => "date_trunc('week', recorded_at, 'UTC')",
            (Period::Month, false) => "date_trunc('month', recorded_at, 'UTC')",
            (Period::Year, false) => "date_trunc('year', recorded_at, 'UTC')",
        }
    }
}

/// How many events of one type the log recorded in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub period: DateTime<Utc>,
    pub stream_type: String,
    pub event_type: String,
    pub count: i64,
}

enum Bind {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// As sqlx binds the same values on SQLite: times as RFC 3339 text, as the log stores them.
impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match self {
            Bind::Text(v) => ToSqlOutput::from(v.as_str()),
            Bind::Time(v) => {
                ToSqlOutput::Owned(Value::Text(v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)))
            }
            Bind::Int(v) => ToSqlOutput::from(*v),
        })
    }
}

impl LogFilter {
    /// Does `event` pass this filter, the doetank visibility aside (which needs the read models)?
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        (self.stream_ids.is_empty() || self.stream_ids.contains(&event.stream_id))
            && (self.stream_types.is_empty() || self.stream_types.contains(&event.stream_type))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && self.from.is_none_or(|from| event.recorded_at >= from)
            && self.to.is_none_or(|to| event.recorded_at < to)
    }

    /// ` WHERE ...` of this filter, or nothing when it passes every event.
    fn where_clause(&self, binds: &mut Vec<Bind>, probe: Probe) -> String {
        let first = self.first_position_sql(binds).map(|first| format!("position >= {first}"));
        let last = self.last_position_sql(binds).map(|last| format!("position <= {last}"));
        let rest = Some(self.where_sql(binds, probe)).filter(|rest| !rest.is_empty());
        let conditions: Vec<String> = first.into_iter().chain(last).chain(rest).collect();
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// The first position an event that passes `from` can hold, as a scalar SQL expression
    /// (its argument pushed on `binds`): the mark of `from`'s second in `log_seconds`, or the
    /// next mark there is, or, past them all, the last (see that table's migration). `None`
    /// without `from`. A lower bound only: the filter's own clause still decides each event.
    fn first_position_sql(&self, binds: &mut Vec<Bind>) -> Option<String> {
        let from = self.from?;
        binds.push(Bind::Int(crate::model::within_the_calendar(from).timestamp()));
        let n = binds.len();
        Some(format!(
            "COALESCE((SELECT position FROM log_seconds WHERE second >= ${n} ORDER BY second LIMIT 1), \
             (SELECT position FROM log_seconds ORDER BY second DESC LIMIT 1), 0)"
        ))
    }

    /// The last position an event that passes `to` can hold, as a scalar SQL expression (its
    /// argument pushed on `binds`): the position before the first mark past `to`'s second in
    /// `log_seconds`, or the last late event (`log_late`) of that second or before, whichever
    /// is later; [`UNBOUNDED`] where no mark is past it. `None` without `to`. An upper bound
    /// only: the filter's own clause still decides each event.
    fn last_position_sql(&self, binds: &mut Vec<Bind>) -> Option<String> {
        let to = self.to?;
        binds.push(Bind::Int(crate::model::within_the_calendar(to).timestamp()));
        let n = binds.len();
        Some(format!(
            "COALESCE((SELECT MAX(bound) FROM (\
               SELECT past.position - 1 AS bound FROM \
                 (SELECT position FROM log_seconds WHERE second > ${n} ORDER BY second LIMIT 1) AS past \
               UNION ALL SELECT MAX(late.position) FROM log_late late WHERE late.second <= ${n} \
                 AND EXISTS (SELECT 1 FROM log_seconds WHERE second > ${n})) AS bounds), {UNBOUNDED})"
        ))
    }

    fn where_sql(&self, binds: &mut Vec<Bind>, probe: Probe) -> String {
        let mut clauses = Vec::new();
        let mut list = |column: &str, values: &[String], binds: &mut Vec<Bind>| {
            if !values.is_empty() {
                let start = binds.len() + 1;
                binds.extend(values.iter().cloned().map(Bind::Text));
                let ph: Vec<String> = (start..start + values.len()).map(|i| format!("${i}")).collect();
                clauses.push(format!("{column} IN ({})", ph.join(", ")));
            }
        };
        list("stream_id", &self.stream_ids, binds);
        list("stream_type", &self.stream_types, binds);
        list("event_type", &self.event_types, binds);
        if let Some(from) = self.from {
            binds.push(Bind::Time(crate::model::within_the_calendar(from)));
            clauses.push(format!("recorded_at >= ${}", binds.len()));
        }
        if let Some(to) = self.to {
            binds.push(Bind::Time(crate::model::within_the_calendar(to)));
            clauses.push(format!("recorded_at < ${}", binds.len()));
        }
        if let Some(viewer) = &self.doetanks_visible_to {
            binds.push(Bind::Text(viewer.member_id.clone().unwrap_or_default()));
            let m = binds.len();
            let visible = doetank_visible_sql("d", Some(m));
            let probe = |from_where: &str| probe.sql(from_where, &visible);
            // An event that tells of a doetank is seen as the doetank is: its own events, a
            // reuse's (which name the doetank drawn on) and an idea taken into it (until the
            // thirtieth session these two gave an informal doetank's id to any reader).
            clauses.push(format!(
                "(stream_type <> 'doetank' OR {}) AND (stream_type <> 'reuse' OR {}) \
                 AND (event_type <> 'IdeaTakenIntoDoetank' OR {})",
                probe("FROM rm_doetanks d WHERE d.id = substr(events.stream_id, 9)"),
                probe("FROM rm_reuses r JOIN rm_doetanks d ON d.id = r.source_doetank_id WHERE r.id = substr(events.stream_id, 7)"),
                probe("FROM rm_idea_follow_ups f JOIN rm_doetanks d ON d.id = f.doetank_id WHERE f.position = events.position"),
            ));
        }
        clauses.join(" AND ")
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Text(v) => q.bind(v.clone()),
                Bind::Time(v) => q.bind(*v),
                Bind::Int(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Which side of a position a page of the log lies on.
#[derive(Clone, Copy)]
enum Page {
    /// The first events after this position, oldest first.
    After(i64),
    /// The last events before this position, newest first.
    Before(i64),
}

/// The last position of a log that no bound limits: one short of the largest, so that a bound
/// one past it is still a `BIGINT`.
const UNBOUNDED: i64 = i64::MAX - 1;

/// `position {op}` the cursor `$1`, or, where the filter bounds that side too (`bound`, as
/// strict as `op`), the `tighter` (`MAX` or `MIN`) of the two in one expression.
fn cursor_bound(op: &str, tighter: &str, bound: Option<String>) -> String {
    match bound {
        None => format!("position {op} $1"),
        Some(bound) => format!(
            "position {op} (SELECT {tighter}(bound) FROM (SELECT CAST($1 AS BIGINT) AS bound \
             UNION ALL SELECT {bound}) AS bounds)"
        ),
    }
}

/// A page of the log: at most `limit` events on `page`'s side that pass `filter`; with its
/// arguments.
fn log_page_sql(filter: &LogFilter, page: Page, limit: i64, sqlite: bool) -> (String, Vec<Bind>) {
    let (position, direction) = match page {
        Page::After(after) => (after, ""),
        Page::Before(before) => (before, " DESC"),
    };
    let mut binds = vec![Bind::Int(position)];
    let first = filter.first_position_sql(&mut binds);
    let last = filter.last_position_sql(&mut binds);
    // One bound on each side, the tighter of the cursor's and the filter's: SQLite walks a range
    // from one of two lower (or upper) bounds only, and the cursor's alone would read a period's
    // export from its start on every page, or its last page on to the end of the log.
    let (cursor_side, far_side) = match page {
        Page::After(_) => (
            cursor_bound(">", "MAX", first.map(|first| format!("{first} - 1"))),
            last.map(|last| format!("position <= {last}")),
        ),
        Page::Before(_) => (
            cursor_bound("<", "MIN", last.map(|last| format!("{last} + 1"))),
            first.map(|first| format!("position >= {first}")),
        ),
    };
    let mut conditions = match far_side {
        None => cursor_side,
        Some(far_side) => format!("{cursor_side} AND {far_side}"),
    };
    let extra = filter.where_sql(&mut binds, Probe::for_page(sqlite));
    if !extra.is_empty() {
        conditions = format!("{conditions} AND {extra}");
    }
    binds.push(Bind::Int(limit));
    let sql = format!(
        "SELECT {} FROM events WHERE {conditions} ORDER BY position{direction} LIMIT ${}",
        crate::read::COLUMNS,
        binds.len()
    );
    (sql, binds)
}

impl EventStore {
    /// Up to `limit` events after `after` that pass `filter`, in global order.
    pub async fn read_log(
        &self,
        filter: &LogFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_log_from(filter, Page::After(after), limit).await
    }

    /// The last `limit` events before `before` that pass `filter` (the newest, for a feed of
    /// what just happened), in global order.
    pub async fn read_log_before(
        &self,
        filter: &LogFilter,
        before: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.read_log_from(filter, Page::Before(before), limit).await?;
        events.reverse();
        Ok(events)
    }

    /// [`Self::read_log`] with each payload as the JSON text the export writes (the event's own
    /// `payload` is `Null`): compact, its keys in order, as serde_json writes the payload's
    /// value. On a SQLite file that is the stored text, checked to be JSON but not read into a
    /// value (the log is written so: each payload's value serialised); elsewhere each payload
    /// is read as a value and written out.
    pub async fn read_log_text(
        &self,
        filter: &LogFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(RecordedEvent, Box<RawValue>)>, StoreError> {
        let (sql, binds) = log_page_sql(filter, Page::After(after), limit, self.is_sqlite());
        if let Some(own) = &self.own {
            let reader = std::sync::Arc::clone(own);
            return own.blocking(move || reader.read_events_numbered_raw(&sql, &binds)).await;
        }
        let events = self.read_log_on_pool(&sql, &binds).await?;
        let mut texts = Vec::with_capacity(events.len());
        for mut event in events {
            let payload = serde_json::value::to_raw_value(&std::mem::take(&mut event.payload))
                .map_err(|e| StoreError::Corrupt { position: event.position, reason: e.to_string() })?;
            texts.push((event, payload));
        }
        Ok(texts)
    }

    /// Up to `limit` events on `page`'s side that pass `filter`, in `page`'s order.
    async fn read_log_from(
        &self,
        filter: &LogFilter,
        page: Page,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (sql, binds) = log_page_sql(filter, page, limit, self.is_sqlite());
        if let Some(own) = &self.own {
            // A page of an export is thousands of events: one hop to a blocking thread per page,
            // where sqlx hops to its connection's thread and back for every row, with a copy of
            // every value (`perf` of `/events.ndjson`: 15% switching threads, 12% glibc's malloc).
            let reader = std::sync::Arc::clone(own);
            return own.blocking(move || reader.read_events_numbered(&sql, &binds)).await;
        }
        self.read_log_on_pool(&sql, &binds).await
    }

    async fn read_log_on_pool(&self, sql: &str, binds: &[Bind]) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = on_pool!(&self.backend, pool => {
            let rows = bind_all!(sqlx::query(sql), binds).fetch_all(pool).await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                events.push(decode_row!(row));
            }
            events
        });
        Ok(events)
    }

    /// Whether the log holds any event of this type, or of this stream type: a name the
    /// catalogue does not list may still be in a log written by another build or a test.
    pub async fn log_holds(&self, name: LogName<'_>) -> Result<bool, StoreError> {
        let (sql, value) = match name {
            LogName::EventType(t) => ("SELECT 1 FROM events WHERE event_type = $1 LIMIT 1", t),
            LogName::StreamType(t) => ("SELECT 1 FROM events WHERE stream_type = $1 LIMIT 1", t),
            LogName::StreamId(t) => ("SELECT 1 FROM events WHERE stream_id = $1 LIMIT 1", t),
        };
        // By an index, the first row: read in this thread on a SQLite file.
        let inline = self.read_inline(|conn| {
            use rusqlite::OptionalExtension;
            conn.query_row(sql, [value], |row| row.get::<_, i32>(0)).optional()
        });
        if let Some(found) = inline {
            return Ok(found?.is_some());
        }
        let found = on_pool!(&self.backend, pool => {
            sqlx::query_scalar::<_, i32>(sql).bind(value).fetch_optional(pool).await?
        });
        Ok(found.is_some())
    }

    /// How many events pass `filter`.
    pub async fn count_log(&self, filter: &LogFilter) -> Result<i64, StoreError> {
        let mut binds = Vec::new();
        let sql = format!("SELECT COUNT(*) FROM events{}", filter.where_clause(&mut binds, Probe::Exists));
        let n = on_pool!(&self.backend, pool => {
            bind_all!(sqlx::query_scalar::<_, i64>(&sql), &binds).fetch_one(pool).await?
        });
        Ok(n)
    }

    /// How many events that pass `filter` were recorded per `period` and event type, in order
    /// of period, stream type and event type; at most `limit` of them (the caller asks one more
    /// than it answers to learn that there are more).
    pub async fn log_activity(
        &self,
        filter: &LogFilter,
        period: Period,
        limit: i64,
    ) -> Result<Vec<Activity>, StoreError> {
        let mut binds = Vec::new();
        let condition = filter.where_clause(&mut binds, Probe::Exists);
        binds.push(Bind::Int(limit));
        let start = period.start_sql(self.is_sqlite());
        let sql = format!(
            "SELECT {start} AS period, stream_type, event_type, COUNT(*) AS n FROM events{condition} \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT ${}",
            binds.len()
        );
        let activity = on_pool!(&self.backend, pool => {
            let rows = bind_all!(sqlx::query(&sql), &binds).fetch_all(pool).await?;
            let mut activity = Vec::with_capacity(rows.len());
            for row in &rows {
                activity.push(Activity {
                    period: row.try_get("period")?,
                    stream_type: row.try_get("stream_type")?,
                    event_type: row.try_get("event_type")?,
                    count: row.try_get("n")?,
                });
            }
            activity
        });
        Ok(activity)
    }

    /// Loads an exported log into this (empty) store as it was: same positions, ids, versions,
    /// metadata and times. All or nothing: one transaction. Positions must increase, each
    /// stream's versions must count up from 1, a stream's id must name its type
    /// (`doetank-<uuid>`), and no event id may come twice: each refused naming the event, before
    /// anything is written (a repeated id would otherwise surface as the database's constraint).
    pub async fn import(&self, events: &[RecordedEvent]) -> Result<i64, StoreError> {
        let invalid = |position: i64, reason: String| StoreError::Corrupt { position, reason };
        let mut versions: HashMap<&str, i64> = HashMap::new();
        let mut event_ids: HashMap<uuid::Uuid, i64> = HashMap::with_capacity(events.len());
        let mut commands: HashMap<uuid::Uuid, (String, i64, i64, i64, DateTime<Utc>)> = HashMap::new();
        let mut last = 0;
        for e in events {
            if e.position <= last {
                return Err(invalid(e.position, format!("positions must increase (after {last})")));
            }
            last = e.position;
            if let Some(earlier) = event_ids.insert(e.event_id, e.position) {
                return Err(invalid(
                    e.position,
                    format!("its event id {} is the event's at position {earlier}", e.event_id),
                ));
            }
            let named = e.stream_id.strip_prefix(e.stream_type.as_str()).and_then(|id| id.strip_prefix('-'));
            if named.is_none_or(str::is_empty) {
                return Err(invalid(
                    e.position,
                    format!("stream {} is no stream of type {}", e.stream_id, e.stream_type),
                ));
            }
            let version = versions.entry(&e.stream_id).or_insert(0);
            if e.version != *version + 1 {
                // A stream whose events were left out: an export filtered for study (by type,
                // stream or `--from`), which holds no whole log to import.
                return Err(invalid(
                    e.position,
                    format!(
                        "{} jumps from version {} to {} (a stream's versions count up from 1 in a whole log; \
                         an export filtered by type, stream or `--from` is not one)",
                        e.stream_id, version, e.version
                    ),
                ));
            }
            *version = e.version;
            if let Some(command_id) = e.metadata.command_id {
                let c = commands.entry(command_id).or_insert((
                    e.stream_id.clone(),
                    e.version,
                    e.position,
                    e.position,
                    e.recorded_at,
                ));
                c.1 = e.version;
                c.3 = e.position;
            }
        }
        on_pool!(&self.backend, pool => {
            let mut tx = pool.begin_write().await?;
            let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(&mut *tx).await?;
            if existing > 0 {
                tx.rollback().await?;
                return Err(StoreError::NotEmpty(existing));
            }
            let rows: Vec<EventRow<'_>> = events.iter().map(EventRow::recorded).collect();
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                insert_events(chunk).build().execute(&mut *tx).await?;
            }
            for (command_id, (stream_id, version, first, last, at)) in &commands {
                sqlx::query(
                    "INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(command_id)
                .bind(stream_id)
                .bind(version)
                .bind(first)
                .bind(last)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE log_head SET position = $1 WHERE id = 1").bind(last).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.advance_head(last);
        Ok(last)
    }
}
