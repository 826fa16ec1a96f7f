//! `GET /events.ndjson?after=N`: the log streamed as newline-delimited JSON, page by page.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::refusals::refusal;
use super::{viewer_of, ServerState};
use crate::error::AppError;
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
/// A refusal is a GraphQL-shaped error with its code, as the GraphQL endpoint answers.
pub(super) async fn events_ndjson(
    State(state): State<ServerState>,
    headers: HeaderMap,
    q: Result<Query<After>, QueryRejection>,
) -> Response {
    let after = match q {
        Ok(Query(After { after })) if after >= 0 => after,
        Ok(_) => return refusal(AppError::bad_input("after", "must be 0 or more")),
        Err(rejection) => return refusal(AppError::bad_input("after", rejection.body_text())),
    };
    let viewer = match viewer_of(&state, &headers).and_then(|v| v.require_reader().map(|_| v)) {
        Ok(viewer) => viewer,
        Err(err) => return refusal(err),
    };
    let filter = LogFilter { doetanks_visible_to: visibility::log_viewer(&viewer), ..LogFilter::default() };
    let lines = export::pages(state.app.store.clone(), after, filter).map(|page| {
        let page = page.map_err(std::io::Error::other)?;
        let mut chunk = Vec::with_capacity(page.len() * 512);
        for event in &page {
            chunk.extend(export::ndjson_line(event).map_err(std::io::Error::other)?);
        }
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}
