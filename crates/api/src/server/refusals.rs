//! Requests refused before GraphQL runs, and refusals outside GraphQL, answered in the shape of
//! a GraphQL answer with `extensions.code` and the HTTP status that fits, never as plain text.

use async_graphql::{ErrorExtensions, ParseRequestError};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::media::{status_of, with_status};
use super::MAX_BODY_BYTES;
use crate::error::AppError;
use crate::graphql::errors::{self, answer_of, refused};

/// A body that is not a GraphQL request, answered (400, or 413 when too large) as a GraphQL
/// error with its code rather than as async-graphql's plain text.
pub(super) struct NotGraphql(ParseRequestError);

impl From<ParseRequestError> for NotGraphql {
    fn from(rejection: ParseRequestError) -> Self {
        NotGraphql(rejection)
    }
}

impl IntoResponse for NotGraphql {
    fn into_response(self) -> Response {
        // The body stream's errors reach async-graphql as text: the limit's is "length limit
        // exceeded" (tower-http), for a body sent without a length.
        let too_large = match &self.0 {
            ParseRequestError::PayloadTooLarge => true,
            ParseRequestError::Io(e) => e.to_string().contains("length limit exceeded"),
            _ => false,
        };
        if too_large {
            return too_large_response();
        }
        let message = match self.0 {
            ParseRequestError::UnsupportedBatch => {
                "batches of requests are not supported: send one at a time".to_string()
            }
            // serde's words for JSON of the wrong shape ("variables" as a string, say) name
            // an enum of async-graphql's, which tells a client nothing.
            ParseRequestError::InvalidRequest(e) if e.to_string().contains("untagged enum BatchRequest") => {
                "not a GraphQL request: the body is JSON, but a request is an object of `query` (text), \
                 `variables` (an object), `operationName` (text) and `extensions` (an object), or a list of them"
                    .to_string()
            }
            other => format!("not a GraphQL request: {other}"),
        };
        bad_request(message)
    }
}

pub(super) fn too_large_response() -> Response {
    let message = format!("the request body is over the limit of {MAX_BODY_BYTES} bytes");
    with_status(StatusCode::PAYLOAD_TOO_LARGE, refused(errors::REQUEST_TOO_LARGE, message))
}

/// A body refused by the size limit before any handler saw it (its length was given) is
/// answered as a GraphQL error too, with its code.
pub(super) async fn too_large_as_graphql(response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json(&response) {
        return too_large_response();
    }
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

/// A mutation sent over GET: 405, as GraphQL over HTTP requires, since a GET must change
/// nothing.
pub(super) fn mutation_over_get() -> Response {
    not_over_get("only queries are answered over GET: send this with POST")
}

/// 405 for an operation GET does not carry, saying `message`, with the methods there are.
fn not_over_get(message: &str) -> Response {
    let answer = refused(errors::METHOD_NOT_ALLOWED, message);
    let mut response = with_status(StatusCode::METHOD_NOT_ALLOWED, answer);
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
    response
}

/// Where a subscription is answered, for a client that sent one where it is not: over GET or
/// in a plain POST it has no stream to answer on (until the thirty-first session GET said "send
/// this with POST", where async-graphql refused it as "not supported on this transport").
const SUBSCRIPTIONS_ARE_STREAMED: &str =
    "a subscription is answered on a stream: a WebSocket at /graphql or \
     /graphql/ws (graphql-transport-ws or graphql-ws), server-sent events from POST /graphql/stream \
     (or /graphql with `Accept: text/event-stream`, by POST or, as an EventSource asks, by GET), \
     or multipart parts from POST /graphql with `Accept: multipart/mixed;subscriptionSpec=1.0`";

/// A subscription sent over GET: 405, as any operation but a query is.
pub(super) fn subscription_over_get() -> Response {
    not_over_get(SUBSCRIPTIONS_ARE_STREAMED)
}

/// A subscription in a plain POST: refused before it runs, saying where it is answered.
pub(super) fn subscription_over_post() -> async_graphql::Response {
    refused(errors::VALIDATION_FAILED, SUBSCRIPTIONS_ARE_STREAMED)
}

/// A request that is no GraphQL request: 400, with `BAD_REQUEST`.
/// A refusal with `status` and `code`, outside GraphQL.
pub(super) fn refused_with(status: StatusCode, code: &str, message: &str) -> Response {
    with_status(status, refused(code, message.to_string()))
}

pub(super) fn bad_request(message: String) -> Response {
    with_status(StatusCode::BAD_REQUEST, refused(errors::BAD_REQUEST, message))
}

/// `err` outside GraphQL (the log's endpoint): the body a GraphQL answer refusing it would
/// have, and the status its code has.
pub(super) fn refusal(err: AppError) -> Response {
    let answer = answer_of(err.extend());
    with_status(status_of(&answer), answer)
}
