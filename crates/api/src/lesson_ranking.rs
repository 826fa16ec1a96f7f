//! One page of a lesson search on a SQLite file: SQLite finds and ranks every match (FTS5's
//! bm25), we order and count them, then read only the page's rows.
//!
//! Ordering and counting in SQL — a window `COUNT(*) OVER ()` over the matches, a sort, a join
//! back by the lessons' text ids — took a third of the search's instructions in SQLite
//! (callgrind: 18.9M of a topic's ~800 matches, 13M without them): the window materialises
//! every match once more, and the sort a second time. Here each match is one row of three
//! numbers, ordered in memory.

use std::cmp::Ordering;

use doetank_store::EventStore;

use crate::error::AppError;
use crate::one_state::{OneState, COUNTERS};
use crate::rows::{CounterRow, LessonRow, LESSON_SELECT};
use crate::sql::{self, Arg};

/// A page of ranked lessons, best first, and how many lessons match in all.
pub struct RankedPage {
    pub lessons: Vec<(LessonRow, f64)>,
    pub total: i64,
}

/// A match: the lesson's rowid, its position in the log and its rank.
struct Match {
    rowid: i64,
    position: i64,
    rank: f64,
}

/// Best first; among equals, the newest (as `ORDER BY rank DESC, position DESC`).
fn best_first(a: &Match, b: &Match) -> Ordering {
    b.rank.partial_cmp(&a.rank).unwrap_or(Ordering::Equal).then(b.position.cmp(&a.position))
}

/// The matches at `offset..offset + limit` in `best_first` order, without sorting the rest.
fn page_of(mut matches: Vec<Match>, offset: usize, limit: usize) -> Vec<Match> {
    let end = offset.saturating_add(limit).min(matches.len());
    if offset >= end {
        return Vec::new();
    }
    if end < matches.len() {
        matches.select_nth_unstable_by(end - 1, best_first);
        matches.truncate(end);
    }
    matches.sort_unstable_by(best_first);
    matches.drain(offset..).collect()
}

/// The page of `SELECT ... FROM {from}{where_sql}` ranked by `rank` (an SQL expression, higher is
/// better), read in one read transaction on the store's own readers; `None` without them.
pub async fn on_own_readers(
    store: &EventStore,
    from: &str,
    where_sql: &str,
    rank: &str,
    args: Vec<Arg>,
    limit: i64,
    offset: i64,
) -> Option<Result<RankedPage, AppError>> {
    let ranked = format!("SELECT l.rowid, l.position, {rank} FROM {from}{where_sql}");
    let (limit, offset) = (usize::try_from(limit).unwrap_or(0), usize::try_from(offset).unwrap_or(0));
    // Part of an answer's one state: this transaction must see the answer's counters.
    let state = OneState::current_for(store.backend());
    if let Some(state) = &state {
        if let Err(moved) = state.expected_on_own_readers() {
            return Some(Err(moved));
        }
    }
    let read = store.read_blocking(move |conn| {
        // Both statements see one snapshot: a lesson ranked is a lesson read.
        let snapshot = conn.unchecked_transaction()?;
        let counters = sql::own_rows::<CounterRow>(conn, COUNTERS, &[])?;
        let matches = {
            let mut statement = sql::prepare_bound(conn, &ranked, &args)?;
            let mut rows = statement.raw_query();
            let mut matches = Vec::new();
            while let Some(row) = rows.next()? {
                matches.push(Match { rowid: row.get(0)?, position: row.get(1)?, rank: row.get(2)? });
            }
            matches
        };
        let total = matches.len() as i64;
        let select = format!("{LESSON_SELECT} WHERE l.rowid = $1");
        let mut lessons = Vec::with_capacity(limit.min(matches.len()));
        for m in page_of(matches, offset, limit) {
            // Ranked in this snapshot, so there; a row missing would be a broken index.
            let row = sql::own_rows::<LessonRow>(conn, &select, &[Arg::Int(m.rowid)])?.pop();
            lessons.extend(row.map(|row| (row, m.rank)));
        }
        snapshot.finish()?;
        Ok((RankedPage { lessons, total }, counters))
    });
    let (page, counters) = match read.await? {
        Ok(read) => read,
        Err(e) => return Some(Err(e.into())),
    };
    if let Some(state) = state {
        if let Err(moved) = state.check(counters) {
            return Some(Err(moved));
        }
    }
    Some(Ok(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(ranks: &[(i64, f64)]) -> Vec<Match> {
        ranks
            .iter()
            .enumerate()
            .map(|(i, &(position, rank))| Match { rowid: i as i64, position, rank })
            .collect()
    }

    fn positions(page: &[Match]) -> Vec<i64> {
        page.iter().map(|m| m.position).collect()
    }

    #[test]
    fn best_first_and_among_equals_the_newest() {
        let all = [(1, 0.5), (2, 2.0), (3, 0.5), (4, 1.0), (5, 2.0), (6, 0.1)];
        let whole = positions(&page_of(matches(&all), 0, 10));
        assert_eq!(whole, [5, 2, 4, 3, 1, 6]);
        // Every page agrees with the whole order, whether or not the rest was sorted.
        for limit in 1..=6 {
            for offset in 0..=6 {
                let expected: Vec<i64> = whole.iter().copied().skip(offset).take(limit).collect();
                assert_eq!(positions(&page_of(matches(&all), offset, limit)), expected, "{offset} {limit}");
            }
        }
    }

    #[test]
    fn a_page_past_the_end_is_empty() {
        assert!(page_of(matches(&[(1, 1.0)]), 1, 20).is_empty());
        assert!(page_of(matches(&[]), 0, 20).is_empty());
        assert!(page_of(matches(&[(1, 1.0)]), usize::MAX, usize::MAX).is_empty());
    }
}
