//! `GET /events.ndjson?after=N`: the log streamed as newline-delimited JSON, page by page,
//! filtered as the `events` query filters it; gzip-compressed for a client that accepts it
//! (the demo history's log to a fifth of its bytes). `GET /events.csv` streams the same as CSV,
//! as `doetank export --format csv` writes it, for a researcher's spreadsheet or data frame
//! without access to the database.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::refusals::refusal;
use super::{viewer_of, ServerState};
use crate::auth::Viewer;
use crate::error::AppError;
use crate::export;
use crate::log_names;
use crate::visibility;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use doetank_store::LogFilter;

/// The query string: where to start and which events, as the `events` query's `filter` has it.
/// Every value is text here and read below, so a bad one is refused naming its parameter;
/// a parameter that is none of these is refused too (a typo must not return the whole log).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct LogParams {
    after: Option<String>,
    stream_id: Option<String>,
    stream_type: Option<String>,
    /// Event types, separated by commas.
    types: Option<String>,
    /// Recorded at or after this time (RFC 3339).
    from: Option<String>,
    /// Recorded before this time (RFC 3339).
    to: Option<String>,
}

impl LogParams {
    /// The position to start after and the filter as `viewer` may read the log, or the first
    /// parameter that is refused.
    fn read(self, viewer: &Viewer) -> Result<(i64, LogFilter), AppError> {
        let after = match self.after.as_deref().map(str::parse::<i64>) {
            None => 0,
            Some(Ok(after)) if after >= 0 => after,
            Some(_) => return Err(AppError::bad_input("after", "must be a position: 0 or more")),
        };
        // A control character matches nothing stored, and PostgreSQL refuses to compare one:
        // refused here, before the answer's head is sent, on both backends alike.
        for (field, text) in
            [("streamId", &self.stream_id), ("streamType", &self.stream_type), ("types", &self.types)]
        {
            text.as_deref().map(|text| crate::text::check(field, text)).transpose()?;
            if field != "types" {
                text.as_deref().map(|text| crate::text::exact_key(field, text)).transpose()?;
            }
        }
        let time = |field: &str, text: Option<String>| {
            text.map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| AppError::bad_input(field, format!("not an RFC 3339 time: {e}")))
            })
            .transpose()
        };
        let filter = LogFilter {
            stream_ids: self.stream_id.into_iter().collect(),
            stream_types: self.stream_type.into_iter().collect(),
            event_types: self
                .types
                .iter()
                .flat_map(|types| types.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            from: time("from", self.from)?,
            to: time("to", self.to)?,
            doetanks_visible_to: visibility::log_viewer(viewer),
        };
        Ok((after, filter))
    }
}

/// How the log is written out.
#[derive(Clone, Copy)]
enum Format {
    Ndjson,
    Csv,
}

/// `GET /events.ndjson`.
pub(super) async fn events_ndjson(
    state: State<ServerState>,
    headers: HeaderMap,
    q: Result<Query<LogParams>, QueryRejection>,
) -> Response {
    events_as(state, headers, q, Format::Ndjson).await
}

/// `GET /events.csv`.
pub(super) async fn events_csv(
    state: State<ServerState>,
    headers: HeaderMap,
    q: Result<Query<LogParams>, QueryRejection>,
) -> Response {
    events_as(state, headers, q, Format::Csv).await
}

/// For signed-in readers; informal doetanks' events only for their team and facilitators.
/// A refusal is a GraphQL-shaped error with its code, as the GraphQL endpoint answers.
async fn events_as(
    State(state): State<ServerState>,
    headers: HeaderMap,
    q: Result<Query<LogParams>, QueryRejection>,
    format: Format,
) -> Response {
    let viewer = match viewer_of(&state, &headers).and_then(|v| v.require_reader().map(|_| v)) {
        Ok(viewer) => viewer,
        Err(err) => return refusal(err),
    };
    let read = match q {
        Ok(Query(params)) => params.read(&viewer),
        Err(rejection) => Err(AppError::bad_input("query", rejection.body_text())),
    };
    let (after, filter) = match read {
        Ok(read) => read,
        Err(err) => return refusal(err),
    };
    if let Err(err) = log_names::check_filter(&state.app.store, &filter).await {
        return refusal(err);
    }
    if let Err(err) = crate::history::check_resume(&state.app.store, after).await {
        return refusal(err);
    }
    let (content_type, head) = match format {
        Format::Ndjson => ("application/x-ndjson", Vec::new()),
        // RFC 4180's type, saying the first line names the columns.
        Format::Csv => match export::csv_header() {
            Ok(head) => ("text/csv; charset=utf-8; header=present", head),
            Err(err) => return refusal(err),
        },
    };
    let pages = export::pages(state.app.store.clone(), after, filter).map(move |page| {
        let page = page.map_err(std::io::Error::other)?;
        let chunk = match format {
            Format::Ndjson => {
                let mut chunk = Vec::with_capacity(page.len() * 512);
                for event in &page {
                    chunk.extend(export::ndjson_line(event).map_err(std::io::Error::other)?);
                }
                chunk
            }
            Format::Csv => export::csv_rows(&page).map_err(std::io::Error::other)?,
        };
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    let lines = futures::stream::iter((!head.is_empty()).then(|| Ok(Bytes::from(head)))).chain(pages);
    // Fused: the gzip encoder polls once more after the end, which an unfold does not allow.
    ([(header::CONTENT_TYPE, content_type)], Body::from_stream(lines.fuse())).into_response()
}
