//! A thin layer that lets read-model code write one SQL text with `$n` placeholders and run it
//! on either typed pool: arguments are plain values, bound per backend in one place.

use doetank_store::{on_pool, Backend, EventStore, Probe};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;

use crate::error::AppError;
use crate::one_state::OneState;

/// A value bound to a placeholder. Read models keep ids and times as text on both backends.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    /// A rank, bound as the very number it was read as (a search's cursor compares by it).
    Float(f64),
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<uuid::Uuid> for Arg {
    fn from(v: uuid::Uuid) -> Self {
        Arg::Text(v.to_string())
    }
}

/// One statement of a projection: SQL text and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: &'static str,
    pub args: Vec<Arg>,
}

/// `stmt!("UPDATE ... $1", a, b)` builds a [`Stmt`].
#[macro_export]
macro_rules! stmt {
    ($sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::sql::Stmt { sql: $sql, args: vec![$($crate::sql::Arg::from($arg)),*] }
    };
}

/// Binds `args` to a sqlx query (expanded once per backend by `on_pool!`).
#[macro_export]
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                $crate::sql::Arg::Text(v) => q.bind(v.clone()),
                $crate::sql::Arg::OptText(v) => q.bind(v.clone()),
                $crate::sql::Arg::Int(v) => q.bind(*v),
                $crate::sql::Arg::Float(v) => q.bind(*v),
                $crate::sql::Arg::Bool(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Runs a projection batch in order on a connection, inside its open transaction.
pub(crate) trait RunBatch {
    fn run_batch(&mut self, batch: &[Stmt])
        -> impl std::future::Future<Output = Result<(), AppError>> + Send;
}

impl RunBatch for sqlx::SqliteConnection {
    fn run_batch(
        &mut self,
        batch: &[Stmt],
    ) -> impl std::future::Future<Output = Result<(), AppError>> + Send {
        crate::sqlite_direct::execute_batch(self, batch)
    }
}

impl RunBatch for sqlx::PgConnection {
    async fn run_batch(&mut self, batch: &[Stmt]) -> Result<(), AppError> {
        for stmt in batch {
            bind_args!(sqlx::query(stmt.sql), &stmt.args).execute(&mut *self).await?;
        }
        Ok(())
    }
}

/// Rows readable from both backends.
pub trait AnyRow: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> AnyRow for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// The rows `sql` selects: in the answer's one state when this task computes one (see
/// `one_state`), otherwise on the pool.
pub async fn fetch_all<T: AnyRow>(backend: &Backend, sql: &str, args: &[Arg]) -> Result<Vec<T>, AppError> {
    if let Some(state) = OneState::current_for(backend) {
        return state.fetch_all(sql, args).await;
    }
    Ok(on_pool!(backend, pool => bind_args!(sqlx::query_as::<_, T>(sql), args).fetch_all(pool).await)?)
}

/// The first row `sql` selects, read as [`fetch_all`] reads.
pub async fn fetch_optional<T: AnyRow>(
    backend: &Backend,
    sql: &str,
    args: &[Arg],
) -> Result<Option<T>, AppError> {
    Ok(fetch_all(backend, sql, args).await?.into_iter().next())
}

/// A row readable on the store's own SQLite connections (see `read_model_row!`).
pub trait OwnRow: Sized {
    /// The columns in field order; a statement must select exactly these, in this order.
    const COLUMNS: &'static [&'static str];

    /// Reads the fields by position (finding each column by name showed in the profile of
    /// computed queries): callers check the statement's columns against [`Self::COLUMNS`] first.
    fn from_own(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Text(v) => v.to_sql(),
            Arg::OptText(v) => v.to_sql(),
            Arg::Int(v) => v.to_sql(),
            Arg::Float(v) => v.to_sql(),
            Arg::Bool(v) => v.to_sql(),
        }
    }
}

/// [`fetch_all`] for the small reads a request makes (the read models' stamp, look-ups by key:
/// the data loaders', a mutation's payload, a live doetank's update for each subscriber): on a
/// SQLite file they run in the calling thread on the store's own connections, as a
/// hop to sqlx's connection thread per query (and a ping when the connection goes back) cost
/// more than the look-up itself. Large reads (a search that ranks every match) stay off the
/// async threads (`EventStore::read_blocking`, `lesson_ranking`).
pub async fn fetch_small<T: AnyRow + OwnRow>(
    store: &EventStore,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<T>, AppError> {
    match store.read_inline(|conn| own_rows(conn, sql, args)) {
        Some(rows) => Ok(rows?),
        None => fetch_all(store.backend(), sql, args).await,
    }
}

/// The rows `sql` (with `$n` placeholders, as the pool's text) selects on one of the store's own
/// SQLite connections.
pub fn own_rows<T: OwnRow>(conn: &rusqlite::Connection, sql: &str, args: &[Arg]) -> rusqlite::Result<Vec<T>> {
    let mut statement = prepare_bound(conn, sql, args)?;
    if !statement.column_names().iter().eq(T::COLUMNS.iter()) {
        let selected = statement.column_names().join(", ");
        return Err(rusqlite::Error::InvalidColumnName(format!(
            "{selected} (expected {})",
            T::COLUMNS.join(", ")
        )));
    }
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(T::from_own(row)?);
    }
    Ok(out)
}

/// `sql` prepared (and kept) on `conn` with `args` bound: `$n` binds the n-th argument wherever
/// it stands, as sqlx binds it.
pub fn prepare_bound<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    doetank_store::bind_numbered(&mut statement, args)?;
    Ok(statement)
}

/// [`fetch_optional`] for a small read: the first row [`fetch_small`] returns, if any.
pub async fn fetch_small_optional<T: AnyRow + OwnRow>(
    store: &EventStore,
    sql: &str,
    args: &[Arg],
) -> Result<Option<T>, AppError> {
    Ok(fetch_small(store, sql, args).await?.into_iter().next())
}

/// The count `sql` selects, read as [`fetch_small`] reads: for a count by key (is this doetank
/// visible, how many signed this charter), not one over a whole table.
pub async fn fetch_small_count(store: &EventStore, sql: &str, args: &[Arg]) -> Result<i64, AppError> {
    let counted = store.read_inline(|conn| {
        let mut statement = prepare_bound(conn, sql, args)?;
        let mut rows = statement.raw_query();
        match rows.next()? {
            Some(row) => row.get(0),
            None => Ok(0),
        }
    });
    match counted {
        Some(count) => Ok(count?),
        None => fetch_count(store.backend(), sql, args).await,
    }
}

/// The count `sql` selects, read as [`fetch_all`] reads.
pub async fn fetch_count(backend: &Backend, sql: &str, args: &[Arg]) -> Result<i64, AppError> {
    if let Some(state) = OneState::current_for(backend) {
        return state.fetch_count(sql, args).await;
    }
    Ok(on_pool!(backend, pool => bind_args!(sqlx::query_scalar::<_, i64>(sql), args).fetch_one(pool).await)?)
}

pub async fn execute(backend: &Backend, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
    on_pool!(backend, pool => Ok(bind_args!(sqlx::query(sql), args).execute(pool).await?.rows_affected()))
}

/// Appends `$n` placeholders for a dynamic WHERE clause.
#[derive(Default)]
pub struct Filter {
    pub clauses: Vec<String>,
    pub args: Vec<Arg>,
    /// One clause said another way for a count, by its index in `clauses` (the same
    /// arguments): see [`Filter::counting_where_sql`].
    pub counting_alternative: Option<(usize, String)>,
    /// Clauses said another way where every row they match is read, by index in `clauses`
    /// (the same arguments): rule 5's probes as `EXISTS` (see [`Filter::push_probed`]).
    pub whole_forms: Vec<(usize, String)>,
}

impl Filter {
    /// Adds a clause in which `?` stands for the next placeholder(s); every `?` gets `arg`.
    pub fn push(&mut self, clause: &str, arg: impl Into<Arg>) {
        let arg = arg.into();
        let mut out = String::new();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                self.args.push(arg.clone());
                out.push_str(&format!("${}", self.args.len()));
            }
            out.push_str(part);
        }
        self.clauses.push(out);
    }

    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// Adds a clause that holds rule 5's probes, made by `clause` for each shape of probe: a
    /// page's shape (see [`Probe::for_page`]), and `EXISTS` where every row the filter matches
    /// is read ([`Filter::counting_where_sql`]), if that differs.
    pub fn push_probed(&mut self, sqlite: bool, clause: impl Fn(Probe) -> String) {
        let page = Probe::for_page(sqlite);
        self.clauses.push(clause(page));
        if page != Probe::Exists {
            self.whole_forms.push((self.clauses.len() - 1, clause(Probe::Exists)));
        }
    }

    /// [`Filter::where_sql`] for a count (or a count per group, or a ranking) of every row it
    /// matches. Rule 5's probes are `EXISTS`, which PostgreSQL answers from one hash of the
    /// visible doetanks (see [`Probe`]). Where rule 5's clause is the only one, it is said as
    /// a list of the visible doetanks: SQLite then counts each doetank's rows along their
    /// index instead of probing every row's doetank (the knowledge base's `totalCount` at
    /// 15,800 lessons: 7.2 → 1.5 ms). Beside another clause the probe is faster (a phase's
    /// lessons: 4.0 ms probing, 6.0 listing), and PostgreSQL plans both as the same semi-join.
    pub fn counting_where_sql(&self) -> String {
        if let Some((0, alternative)) = &self.counting_alternative {
            if self.clauses.len() == 1 {
                return format!(" WHERE {alternative}");
            }
        }
        if self.whole_forms.is_empty() {
            return self.where_sql();
        }
        let clauses: Vec<&str> = (self.clauses.iter().enumerate())
            .map(|(i, clause)| {
                let whole = self.whole_forms.iter().find(|(at, _)| *at == i);
                whole.map_or(clause.as_str(), |(_, form)| form.as_str())
            })
            .collect();
        format!(" WHERE {}", clauses.join(" AND "))
    }

    /// The placeholder number the next argument will get.
    pub fn next_placeholder(&self) -> usize {
        self.args.len() + 1
    }
}

/// Time as stored in read models: RFC 3339, UTC, microseconds, so text order is time order.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    doetank_store::within_the_calendar(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
