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

/// A page of ranked lessons, best first, fetched one past the page (which tells whether
/// another follows), and how many lessons match in all.
pub struct RankedPage {
    pub lessons: Vec<(LessonRow, f64)>,
    pub total: i64,
}

/// Where a page of a search starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// At an offset into the ranking: cursors given out until the forty-second session.
    Offset(i64),
    /// After the lesson at `position`, from where it ranks now: `rank_sql` (with `rank_args`)
    /// selects its rank under the search's own filter, none if the search does not find it.
    After { position: i64, rank_sql: String, rank_args: Vec<Arg> },
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

/// Where a page starts in the ranking, once a cursor's lesson has been ranked.
#[derive(Debug, Clone, Copy)]
enum Begin {
    Offset(usize),
    /// After the match of this rank and position.
    After(f64, i64),
}

/// The first `limit` matches from `begin` in `best_first` order, without sorting the rest.
fn page_of(mut matches: Vec<Match>, begin: Begin, limit: usize) -> Vec<Match> {
    let offset = match begin {
        Begin::Offset(offset) => offset,
        Begin::After(rank, position) => {
            let cursor = Match { rowid: 0, position, rank };
            matches.retain(|m| best_first(m, &cursor) == Ordering::Greater);
            0
        }
    };
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
/// better) from `start`, `limit` lessons, read in one read transaction on the store's own
/// readers; `None` without them.
pub async fn on_own_readers(
    store: &EventStore,
    from: &str,
    where_sql: &str,
    rank: &str,
    args: Vec<Arg>,
    start: Start,
    limit: i64,
) -> Option<Result<RankedPage, AppError>> {
    let ranked = format!("SELECT l.rowid, l.position, {rank} FROM {from}{where_sql}");
    let limit = usize::try_from(limit).unwrap_or(0);
    // Part of an answer's one state: this transaction must see the answer's counters.
    let state = OneState::current_for(store.backend());
    if let Some(state) = &state {
        if let Err(moved) = state.expected_on_own_readers() {
            return Some(Err(moved));
        }
    }
    let read = store.read_blocking(move |conn| {
        // Every statement sees one snapshot: a lesson ranked is a lesson read, and a cursor's
        // lesson ranks as the matches do.
        let snapshot = conn.unchecked_transaction()?;
        let counters = sql::own_rows::<CounterRow>(conn, COUNTERS, &[])?;
        let begin = match start {
            Start::Offset(offset) => Begin::Offset(usize::try_from(offset).unwrap_or(usize::MAX)),
            Start::After { position, rank_sql, rank_args } => {
                let mut statement = sql::prepare_bound(conn, &rank_sql, &rank_args)?;
                let rank: Option<f64> = statement.raw_query().next()?.map(|row| row.get(0)).transpose()?;
                match rank {
                    Some(rank) => Begin::After(rank, position),
                    None => return Ok(None),
                }
            }
        };
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
        for m in page_of(matches, begin, limit) {
            // Ranked in this snapshot, so there; a row missing would be a broken index.
            let row = sql::own_rows::<LessonRow>(conn, &select, &[Arg::Int(m.rowid)])?.pop();
            lessons.extend(row.map(|row| (row, m.rank)));
        }
        snapshot.finish()?;
        Ok(Some((RankedPage { lessons, total }, counters)))
    });
    let (page, counters) = match read.await? {
        Ok(Some(read)) => read,
        Ok(None) => return Some(Err(not_found_by_this_search())),
        Err(e) => return Some(Err(e.into())),
    };
    if let Some(state) = state {
        if let Err(moved) = state.check(counters) {
            return Some(Err(moved));
        }
    }
    Some(Ok(page))
}

/// A cursor whose lesson the search does not find: given out by another search (or, rarely,
/// a lesson the viewer no longer sees), so no place in this ranking is its.
pub fn not_found_by_this_search() -> AppError {
    AppError::bad_input("after", "names no lesson this search finds: page a search with its own cursors")
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
        let whole = positions(&page_of(matches(&all), Begin::Offset(0), 10));
        assert_eq!(whole, [5, 2, 4, 3, 1, 6]);
        // Every page agrees with the whole order, whether or not the rest was sorted.
        for limit in 1..=6 {
            for offset in 0..=6 {
                let expected: Vec<i64> = whole.iter().copied().skip(offset).take(limit).collect();
                assert_eq!(
                    positions(&page_of(matches(&all), Begin::Offset(offset), limit)),
                    expected,
                    "{offset} {limit}"
                );
            }
        }
    }

    #[test]
    fn a_page_after_a_match_goes_on_from_where_it_ranks() {
        let all = [(1, 0.5), (2, 2.0), (3, 0.5), (4, 1.0), (5, 2.0), (6, 0.1)];
        // In order 5, 2, 4, 3, 1, 6: after each, the rest, whatever the page's size.
        let order = [(5, 2.0), (2, 2.0), (4, 1.0), (3, 0.5), (1, 0.5), (6, 0.1)];
        for (i, &(position, rank)) in order.iter().enumerate() {
            let rest: Vec<i64> = order[i + 1..].iter().map(|&(p, _)| p).collect();
            assert_eq!(positions(&page_of(matches(&all), Begin::After(rank, position), 10)), rest);
            let two: Vec<i64> = rest.iter().copied().take(2).collect();
            assert_eq!(positions(&page_of(matches(&all), Begin::After(rank, position), 2)), two);
        }
        // A better match recorded since shifts nothing: the page goes on after the cursor's.
        let mut grown = all.to_vec();
        grown.push((7, 3.0));
        assert_eq!(positions(&page_of(matches(&grown), Begin::After(1.0, 4), 2)), [3, 1]);
    }

    #[test]
    fn a_page_past_the_end_is_empty() {
        assert!(page_of(matches(&[(1, 1.0)]), Begin::Offset(1), 20).is_empty());
        assert!(page_of(matches(&[]), Begin::Offset(0), 20).is_empty());
        assert!(page_of(matches(&[(1, 1.0)]), Begin::Offset(usize::MAX), usize::MAX).is_empty());
        assert!(page_of(matches(&[(1, 1.0)]), Begin::After(1.0, 1), 20).is_empty());
    }
}
