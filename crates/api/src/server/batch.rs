//! Batched requests: a JSON array of GraphQL requests in one POST, as Apollo Client's
//! `BatchHttpLink` and Relay's batching network layers send them. Each is answered as it would
//! be alone (persisted queries, kept answers, one state of the read models, its own errors),
//! one after another in the array's order, so a query after a mutation sees what it wrote.

use axum::body::{to_bytes, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::media::{Media, GRAPHQL_RESPONSE};
use super::{answer_as, error_response, refusals, viewer_of, Method, ServerState};

/// The most requests one batch may carry; Apollo's `BatchHttpLink` sends at most 10 by default.
pub const MAX_BATCH: usize = 32;

/// The answers to `requests`, in their order: a JSON array whose every element is the body the
/// request alone would have been answered with. 200 as a whole; a bad token refuses the whole
/// batch as it would refuse one request.
pub(super) async fn answer_all(
    state: &ServerState,
    headers: &HeaderMap,
    requests: Vec<async_graphql::Request>,
) -> Response {
    // (An empty array never gets here: serde reads it as one request without a text.)
    if requests.len() > MAX_BATCH {
        let message = format!("a batch of {} requests is over the limit of {MAX_BATCH}", requests.len());
        return refusals::bad_request(message);
    }
    let media = Media::accepted(headers);
    let viewer = match viewer_of(state, headers) {
        Ok(viewer) => viewer,
        Err(err) => return error_response(err, media),
    };
    let mut bodies: Vec<Bytes> = Vec::with_capacity(requests.len());
    for request in requests {
        let response = answer_as(state, viewer.clone(), media, request, Method::Post { streams: None }).await;
        // Our own answer, bounded by the query limits rather than by a size.
        match to_bytes(response.into_body(), usize::MAX).await {
            Ok(body) => bodies.push(body),
            Err(error) => {
                tracing::error!(%error, "a batched answer could not be read back");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    let mut array = Vec::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 1);
    array.push(b'[');
    for (i, body) in bodies.iter().enumerate() {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(body);
    }
    array.push(b']');
    (StatusCode::OK, [(header::CONTENT_TYPE, GRAPHQL_RESPONSE)], array).into_response()
}
