//! `/healthz`, what an operator watches of a node, and `/readyz`, whether a load balancer
//! should send it requests. Neither needs a token: they show counts, no records.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::refusals::bad_request;
use super::ServerState;

/// How many events a ready node's read models may be behind the log, unless `maxBehind` says.
pub const READY_MAX_BEHIND: i64 = 1_000;

/// Whether the database answers, and what an operator watches: how far this node's read models
/// are behind the log (a stalled projector shows as a growing `behind`), its open WebSockets and
/// HTTP streams, its shared subscriptions and those replaying before they take a seat in one.
pub(super) async fn healthz(State(state): State<ServerState>) -> impl IntoResponse {
    match state.vitals().await {
        Ok(v) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "backend": state.app.store.backend_name(),
                "log": { "head": v.head, "projected": v.projected, "behind": v.behind() },
                "webSockets": v.web_sockets,
                "eventStreams": v.event_streams,
                "sharedSubscriptions": v.shared,
                "replayingSubscriptions": v.replaying,
            })),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReadyParams {
    max_behind: Option<i64>,
}

/// 200 while the node should be sent requests, 503 while it should not: a node just started
/// on read models far behind the log (after an import, or a long stop) would answer from the
/// past, and a stopping node is draining. `?maxBehind=N` sets the lag it may have.
pub(super) async fn readyz(
    State(state): State<ServerState>,
    params: Result<Query<ReadyParams>, QueryRejection>,
) -> Response {
    let max_behind = match params {
        Ok(Query(params)) => params.max_behind.unwrap_or(READY_MAX_BEHIND),
        Err(rejection) => return bad_request(format!("not a readiness question: {}", rejection.body_text())),
    };
    if max_behind < 0 {
        return bad_request("maxBehind must be 0 or more".into());
    }
    let behind = match state.vitals().await {
        Ok(vitals) => Some(vitals.behind()),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: the database does not answer");
            None
        }
    };
    let (status, body) = readiness(behind, max_behind, state.sockets.is_stopping());
    (status, Json(body)).into_response()
}

/// Ready: not stopping, the database answers (`behind` is known), and the read models are at
/// most `max_behind` events behind the log.
fn readiness(behind: Option<i64>, max_behind: i64, stopping: bool) -> (StatusCode, Value) {
    match (stopping, behind) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "stopping" })),
        (false, None) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "unavailable" })),
        (false, Some(behind)) if behind > max_behind => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "behind", "behind": behind, "maxBehind": max_behind }),
        ),
        (false, Some(behind)) => {
            (StatusCode::OK, json!({ "status": "ready", "behind": behind, "maxBehind": max_behind }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_answering_caught_up_enough_and_not_stopping() {
        assert_eq!(readiness(Some(0), 0, false).0, StatusCode::OK);
        assert_eq!(readiness(Some(1_000), 1_000, false).0, StatusCode::OK);
        let (status, body) = readiness(Some(1_001), 1_000, false);
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("behind")));
        assert_eq!(body["behind"], 1_001);
        let (status, body) = readiness(None, 1_000, false);
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
        let (status, body) = readiness(Some(0), 1_000, true);
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("stopping")));
    }
}
