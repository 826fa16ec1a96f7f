//! `GET /events.ndjson?after=N`: the log streamed as newline-delimited JSON, page by page.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::ServerState;
use crate::export;

#[derive(Deserialize)]
pub(super) struct After {
    #[serde(default)]
    after: i64,
}

pub(super) async fn events_ndjson(State(state): State<ServerState>, Query(q): Query<After>) -> Response {
    if q.after < 0 {
        return (StatusCode::BAD_REQUEST, "after must be 0 or more").into_response();
    }
    let lines = export::pages(state.app.store.clone(), q.after).map(|page| {
        let page = page.map_err(std::io::Error::other)?;
        let mut chunk = Vec::with_capacity(page.len() * 512);
        for event in &page {
            chunk.extend(export::ndjson_line(event).map_err(std::io::Error::other)?);
        }
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}
