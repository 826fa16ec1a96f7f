//! Relay connections over read-model queries: `first`/`after`, `pageInfo`, `totalCount`.
//! Cursors are opaque: each names a row by its log position (a list ordered otherwise, by date
//! or by rank, goes on from where that row stands now); offsets given out by earlier builds
//! are still read as offsets. Pages are capped at [`MAX_PAGE_SIZE`].

use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};
use async_graphql::{Context, Object, OutputType};
use doetank_store::Backend;

use super::errors::GqlResult;
use crate::error::AppError;
use crate::sql::{self, Arg, Filter};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

pub struct TotalCount {
    pub total_count: i64,
}

#[Object]
impl TotalCount {
    /// How many items match the filters, over all pages.
    #[graphql(complexity = "child_complexity + super::COUNT_COMPLEXITY")]
    async fn total_count(&self) -> i64 {
        self.total_count
    }
}

pub type Page<N> = Connection<OpaqueCursor<i64>, N, TotalCount>;

/// What a list's `totalCount` counts: `SELECT COUNT(*) FROM {from_where}`, taken from the
/// list's filter before a cursor narrows it to one page. Made only when the client asked for
/// the count. A count reads every row the filters match, which a page need not: until the
/// thirty-first session every page counted, and deep in a network of 1,000,000 events (the
/// timeline holds a line for each) each page paid for the whole of it.
pub struct Counted {
    from_where: String,
    args: Vec<Arg>,
}

impl Counted {
    /// The count of `from` (a table and its alias) under `f`, if the connection's `totalCount`
    /// is asked for.
    pub fn if_asked(ctx: &Context<'_>, from: &str, f: &Filter) -> Option<Counted> {
        total_asked(ctx).then(|| Counted {
            from_where: format!("{from}{}", f.counting_where_sql()),
            args: f.args.clone(),
        })
    }
}

/// The `totalCount` of a page when `counted` (see [`Counted::if_asked`]), else none.
/// `all_shown`, how many rows a first page holds that has no next page, is the count itself
/// (read in the same state), so a short list is not counted again.
pub async fn total_if_asked(
    counted: Option<Counted>,
    backend: &Backend,
    all_shown: Option<i64>,
) -> async_graphql::Result<Option<i64>> {
    let Some(counted) = counted else { return Ok(None) };
    if all_shown.is_some() {
        return Ok(all_shown);
    }
    let sql = format!("SELECT COUNT(*) FROM {}", counted.from_where);
    Ok(Some(sql::fetch_count(backend, &sql, &counted.args).await.gql()?))
}

/// The rows a first page shows when it shows them all: fetched with one row more than the page
/// holds ([`Window::probing`]), `fetched` rows tell that no next page exists.
pub fn all_shown(first_page: bool, fetched: usize, limit: i64) -> Option<i64> {
    (first_page && fetched as i64 <= limit).then_some(fetched as i64)
}

/// Whether the client asked for the `totalCount` of the connection this field answers.
pub fn total_asked(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// How a list in log order (`events`, `timeline`) is paged: forwards, `first` after the
/// position `after`, or backwards, the `last` before the position `before` (the newest, for a
/// feed of what just happened), each page in log order either way.
#[derive(Debug, Clone, Copy)]
pub struct LogPaging {
    pub backwards: bool,
    pub limit: i64,
    /// The position the page starts after (forwards) or ends before (backwards).
    pub cursor: Option<i64>,
}

impl LogPaging {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Self, AppError> {
        let backwards = last.is_some() || before.is_some();
        if backwards && (first.is_some() || after.is_some()) {
            return Err(AppError::bad_input(
                if last.is_some() { "last" } else { "before" },
                "page forwards (first, after) or backwards (last, before), not both",
            ));
        }
        Ok(if backwards {
            LogPaging {
                backwards,
                limit: page_size(last, "last")?,
                cursor: position_cursor(before, "before")?,
            }
        } else {
            LogPaging {
                backwards,
                limit: page_size(first, "first")?,
                cursor: position_cursor(after, "after")?,
            }
        })
    }

    /// The cursor a forward page starts after.
    pub fn after(&self) -> Option<i64> {
        self.cursor.filter(|_| !self.backwards)
    }

    /// Trims `nodes`, fetched in log order one past the limit on the page's far side, to the
    /// page; with whether pages come before it and after it, and (see [`all_shown`]) how many
    /// rows the whole list holds if the page shows them all.
    pub fn trim<N>(&self, nodes: &mut Vec<N>) -> (bool, bool, Option<i64>) {
        let fetched = nodes.len();
        let over = fetched as i64 > self.limit;
        let (has_previous, has_next) = if self.backwards {
            if over {
                nodes.remove(0);
            }
            (over, self.cursor.is_some())
        } else {
            nodes.truncate(self.limit as usize);
            (self.cursor.is_some_and(|after| after > 0), over)
        };
        (has_previous, has_next, all_shown(self.cursor.is_none(), fetched, self.limit))
    }
}

/// A page of a list in log order (`events`, `timeline`): each edge's cursor is its node's
/// `position` (see [`position_cursor`]), so pages do not shift while the log grows.
pub fn in_log_order<N: OutputType>(
    nodes: Vec<N>,
    position: impl Fn(&N) -> i64,
    has_previous: bool,
    has_next: bool,
    total: Option<i64>,
) -> Page<N> {
    let edges = nodes.into_iter().map(|node| (position(&node), node));
    with_cursors(edges, has_previous, has_next, total)
}

/// A page of `(cursor, node)` edges; `totalCount` where it was counted.
fn with_cursors<N: OutputType>(
    edges: impl IntoIterator<Item = (i64, N)>,
    has_previous: bool,
    has_next: bool,
    total: Option<i64>,
) -> Page<N> {
    let total = TotalCount { total_count: total.unwrap_or_default() };
    let mut page = Connection::with_additional_fields(has_previous, has_next, total);
    page.edges.extend(edges.into_iter().map(|(cursor, node)| Edge::new(OpaqueCursor(cursor), node)));
    page
}

/// The log position a cursor of a list in log order stands for (`events`, `timeline`). A
/// position itself is taken too (a researcher who read position 1234 in an export asks
/// `after: "1234"`): base64, as cursors are written, never starts a digit's code with a digit,
/// so the two cannot be confused.
pub fn position_cursor(cursor: Option<String>, field: &str) -> Result<Option<i64>, AppError> {
    match cursor {
        Some(position) if !position.is_empty() && position.bytes().all(|b| b.is_ascii_digit()) => position
            .parse::<i64>()
            .map(Some)
            .map_err(|_| AppError::bad_input(field, "is too large a position")),
        Some(cursor) => match OpaqueCursor::<i64>::decode_cursor(&cursor) {
            Ok(OpaqueCursor(position)) if position >= 0 => Ok(Some(position)),
            _ => Err(AppError::bad_input(field, "is not a cursor this API gave out")),
        },
        None => Ok(None),
    }
}

/// Where a page of a list ordered by its rows' positions starts: its cursors name the row
/// before them by its position, so that a row leaving the list (a doetank that concludes,
/// under `status: ACTIVE`) does not shift the next page. Until the thirty-second session they
/// were offsets, and such a page skipped one; cursors given out then still read as offsets.
/// A position is written negative, as no offset ever was, which tells the two apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum After {
    Start,
    Offset(i64),
    Position(i64),
}

impl After {
    pub fn new(after: Option<String>) -> Result<After, AppError> {
        let Some(cursor) = after else { return Ok(After::Start) };
        match OpaqueCursor::<i64>::decode_cursor(&cursor) {
            Ok(OpaqueCursor(index)) if (0..i64::MAX).contains(&index) => Ok(After::Offset(index + 1)),
            Ok(OpaqueCursor(negative)) if negative < 0 && negative > i64::MIN => {
                Ok(After::Position(-negative))
            }
            _ => Err(AppError::bad_input("after", "is not a cursor this API gave out")),
        }
    }
}

/// `first` and `after` of a list ordered by position.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub limit: i64,
    pub after: After,
}

impl Paging {
    pub fn new(first: Option<i32>, after: Option<String>) -> Result<Paging, AppError> {
        Ok(Paging { limit: page_size(first, "first")?, after: After::new(after)? })
    }
}

/// The order of a list by its rows' positions: the column, and whether newest first; or by
/// their date first.
#[derive(Debug, Clone, Copy)]
pub enum ByPosition {
    Ascending(&'static str),
    Descending(&'static str),
    /// By the `date` of the rows of `table` (aliased `t`; the latest first when `latest_first`),
    /// then by their `created_position`. A cursor still names the row before the page by its
    /// position; the page goes on from where that row's date puts it, so a café that is held
    /// (and leaves `UPCOMING`) or one scheduled on an earlier date shifts no page.
    Dated {
        table: &'static str,
        latest_first: bool,
    },
}

/// A page of a list ordered by position, fetched one row past its limit (which tells whether
/// another page follows): each edge's cursor its row's position, written negative (see
/// [`After`]).
pub fn by_position<N: OutputType>(mut nodes: Vec<(i64, N)>, paging: Paging, total: Option<i64>) -> Page<N> {
    let more = nodes.len() as i64 > paging.limit;
    nodes.truncate(paging.limit as usize);
    let edges = nodes.into_iter().map(|(position, node)| (-position, node));
    with_cursors(edges, paging.after != After::Start, more, total)
}

/// The rows of a page to read: past `offset` rows, `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub offset: i64,
    pub limit: i64,
}

/// The page size `field` (`first` or `last`) asks for: the default without it, at most
/// [`MAX_PAGE_SIZE`].
pub fn page_size(asked: Option<i32>, field: &str) -> Result<i64, AppError> {
    let size = asked.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&size) {
        return Err(AppError::bad_input(field, format!("must be between 0 and {MAX_PAGE_SIZE}")));
    }
    Ok(size as i64)
}

impl Window {
    /// The rows to fetch for this page: one more than it shows, which tells whether a next
    /// page exists without counting them all.
    pub fn probing(self) -> Window {
        Window { limit: self.limit + 1, ..self }
    }
}
