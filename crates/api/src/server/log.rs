//! `GET /events.ndjson?after=N`: the log streamed as newline-delimited JSON, page by page.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::{viewer_of, ServerState};
use crate::export;
use crate::visibility;
use axum::http::HeaderMap;
use doetank_store::LogFilter;

#[derive(Deserialize)]
pub(super) struct After {
    #[serde(default)]
    after: i64,
}

/// For signed-in readers; informal doetanks' events only for their team and facilitators.
pub(super) async fn events_ndjson(
    State(state): State<ServerState>,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Response {
    if q.after < 0 {
        return (StatusCode::BAD_REQUEST, "after must be 0 or more").into_response();
    }
    let viewer = match viewer_of(&state, &headers).and_then(|v| v.require_reader().map(|_| v)) {
        Ok(viewer) => viewer,
        Err(err) => return (StatusCode::UNAUTHORIZED, err.to_string()).into_response(),
    };
    let filter = LogFilter { doetanks_visible_to: visibility::log_viewer(&viewer), ..LogFilter::default() };
    let lines = export::pages(state.app.store.clone(), q.after, filter).map(|page| {
        let page = page.map_err(std::io::Error::other)?;
        let mut chunk = Vec::with_capacity(page.len() * 512);
        for event in &page {
            chunk.extend(export::ndjson_line(event).map_err(std::io::Error::other)?);
        }
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}
