//! Relay connections over read-model queries: `first`/`after`, `pageInfo`, `totalCount`.
//! Cursors are opaque offsets; pages are capped at [`MAX_PAGE_SIZE`].

use async_graphql::connection::{Connection, CursorType, Edge, OpaqueCursor};
use async_graphql::{OutputType, SimpleObject};

use crate::error::AppError;

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items match the filters, over all pages.
    pub total_count: i64,
}

pub type Page<N> = Connection<OpaqueCursor<i64>, N, TotalCount>;

/// The offset and limit that `first` and `after` ask for.
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
    pub fn new(first: Option<i32>, after: Option<String>) -> Result<Window, AppError> {
        let limit = page_size(first, "first")?;
        let offset = match after {
            Some(cursor) => match OpaqueCursor::<i64>::decode_cursor(&cursor) {
                Ok(OpaqueCursor(index)) if (0..i64::MAX).contains(&index) => index + 1,
                _ => return Err(AppError::bad_input("after", "is not a cursor this API gave out")),
            },
            None => 0,
        };
        Ok(Window { offset, limit })
    }

    pub fn connection<N: OutputType>(self, total: i64, nodes: Vec<N>) -> Page<N> {
        let end = self.offset + nodes.len() as i64;
        let mut connection = Connection::with_additional_fields(
            self.offset > 0,
            end < total,
            TotalCount { total_count: total },
        );
        connection.edges.extend(
            nodes
                .into_iter()
                .enumerate()
                .map(|(i, node)| Edge::new(OpaqueCursor(self.offset + i as i64), node)),
        );
        connection
    }
}
