//! GraphQL over HTTP's two media types, and the status each gives an answer.
//!
//! `application/graphql-response+json` says by its status whether a request was refused as a
//! whole: 400 for a text that does not parse or does not fit the schema (401 for a bad token),
//! and such an answer has no `data`. `application/json`, for clients that know only that, is
//! answered 200 whenever the request could be read as GraphQL, errors or not. A client picks
//! with `Accept`; one that sends none gets `application/json`, as the spec asks while clients
//! move over.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::graphql::errors::{answer_json, first_code, give_codes, is_request_error, UNSERIALISABLE_ANSWER};

pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    GraphqlResponse,
    Json,
}

impl Media {
    /// What `Accept` asks for: the one with the higher quality (a wildcard counts for both),
    /// `application/graphql-response+json` on a tie or when neither is acceptable.
    pub fn accepted(headers: &HeaderMap) -> Media {
        let mut ranges = accept_ranges(headers).peekable();
        if ranges.peek().is_none() {
            return Media::Json;
        }
        let (mut graphql, mut json, mut any) = (None, None, None);
        for range in ranges {
            let quality = range
                .params()
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let slot = match range.kind.as_str() {
                GRAPHQL_RESPONSE => &mut graphql,
                JSON => &mut json,
                "*/*" | "application/*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(quality, |q: f32| q.max(quality)));
        }
        let graphql = graphql.or(any).unwrap_or(0.0);
        let json = json.or(any).unwrap_or(0.0);
        if json > graphql {
            Media::Json
        } else {
            Media::GraphqlResponse
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => GRAPHQL_RESPONSE,
            Media::Json => JSON,
        })
    }
}

/// One media range of the `Accept` headers: its type in lower case, and its parameters.
pub(super) struct AcceptRange<'a> {
    pub kind: String,
    rest: &'a str,
}

impl<'a> AcceptRange<'a> {
    /// The range's parameters (`q=0.9`, `subscriptionSpec=1.0`), each trimmed, as written.
    pub fn params(&self) -> impl Iterator<Item = &'a str> {
        self.rest.split(';').map(str::trim).filter(|p| !p.is_empty())
    }
}

/// The media ranges of every `Accept` header, in the order written.
pub(super) fn accept_ranges(headers: &HeaderMap) -> impl Iterator<Item = AcceptRange<'_>> {
    headers.get_all(header::ACCEPT).iter().filter_map(|value| value.to_str().ok()).flat_map(|value| {
        value.split(',').map(|range| {
            let (kind, rest) = range.split_once(';').unwrap_or((range, ""));
            AcceptRange { kind: kind.trim().to_ascii_lowercase(), rest }
        })
    })
}

/// `response`, every error with its code, as `media` has it.
pub fn respond(mut response: async_graphql::Response, media: Media) -> Response {
    give_codes(&mut response);
    let status = match media {
        Media::GraphqlResponse if is_request_error(&response) => status_of(&response),
        _ => StatusCode::OK,
    };
    with_status(status, response)
}

/// `response` with `status`, whatever the media type (a request GraphQL over HTTP refuses the
/// same way in both); the content type is set by [`negotiate`].
pub fn with_status(status: StatusCode, response: async_graphql::Response) -> Response {
    let body = match answer_json(&response) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "an answer could not be serialised");
            let headers = [(header::CONTENT_TYPE, GRAPHQL_RESPONSE)];
            return (StatusCode::INTERNAL_SERVER_ERROR, headers, UNSERIALISABLE_ANSWER).into_response();
        }
    };
    let mut http = (status, [(header::CONTENT_TYPE, GRAPHQL_RESPONSE)], body).into_response();
    http.headers_mut().extend(response.http_headers);
    if status == StatusCode::UNAUTHORIZED {
        http.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    http
}

/// The status of a request refused as a whole, by its first error's code.
pub(super) fn status_of(response: &async_graphql::Response) -> StatusCode {
    match first_code(response) {
        Some("UNAUTHENTICATED") => StatusCode::UNAUTHORIZED,
        Some("FORBIDDEN") => StatusCode::FORBIDDEN,
        Some("NOT_FOUND") => StatusCode::NOT_FOUND,
        Some("READ_MODELS_MOVED") => StatusCode::SERVICE_UNAVAILABLE,
        Some("INTERNAL") => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Gives each GraphQL answer the content type its client accepts: answers are made as
/// `application/graphql-response+json`, and become `application/json` for a client that
/// prefers it (the status was already chosen for it, see [`respond`]).
pub async fn negotiate(request: Request, next: Next) -> Response {
    let media = Media::accepted(request.headers());
    let mut response = next.run(request).await;
    let made_as_graphql = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == GRAPHQL_RESPONSE.as_bytes());
    if made_as_graphql && media == Media::Json {
        response.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
    }
    response
}

/// A POST whose body is the query text itself (`Content-Type: application/graphql`, as
/// express-graphql and `curl -d '{ doetanks { totalCount } }'` users send it) is read as
/// `{"query": text}`; until the thirtieth session it was refused as JSON that did not parse
/// ("key must be a string").
pub async fn query_text_body(request: Request, next: Next) -> Response {
    let plain_query = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/graphql"));
    if !plain_query {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    // The body limit's layer is outside: a body over it fails this read, and is answered so.
    let bytes = match axum::body::to_bytes(body, super::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return super::refusals::too_large_response(),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return super::refusals::bad_request("the query text is not UTF-8".into());
    };
    let json = serde_json::json!({ "query": text }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    next.run(Request::from_parts(parts, axum::body::Body::from(json))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(values: &[&str]) -> Media {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).expect("header"));
        }
        Media::accepted(&headers)
    }

    #[test]
    fn the_accept_header_picks_the_media_type() {
        use Media::{GraphqlResponse, Json};
        assert_eq!(accepting(&[]), Json, "no Accept: application/json, as clients move over");
        assert_eq!(accepting(&["application/json"]), Json);
        assert_eq!(accepting(&["application/graphql-response+json"]), GraphqlResponse);
        assert_eq!(
            accepting(&["application/graphql-response+json, application/json;q=0.9"]),
            GraphqlResponse
        );
        assert_eq!(accepting(&["application/json, application/graphql-response+json;q=0.5"]), Json);
        assert_eq!(accepting(&["application/json, multipart/mixed"]), Json, "GraphiQL's");
        assert_eq!(accepting(&["*/*"]), GraphqlResponse, "curl's");
        assert_eq!(accepting(&["application/json", "*/*;q=0.1"]), Json);
        assert_eq!(accepting(&["text/html"]), GraphqlResponse, "neither: the default");
        assert_eq!(accepting(&["Application/JSON ; q=1"]), Json);
        assert_eq!(accepting(&["application/graphql-response+json;q=0, application/json;q=0.2"]), Json);
    }

    #[test]
    fn a_request_error_has_no_data_and_a_status_of_its_own() {
        let refused =
            || crate::graphql::errors::answer_of(async_graphql::Error::new("Unknown field \"nope\""));
        let answer = respond(refused(), Media::GraphqlResponse);
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert_eq!(respond(refused(), Media::Json).status(), StatusCode::OK);
        let body = answer_json(&{
            let mut r = refused();
            give_codes(&mut r);
            r
        })
        .expect("json");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

        let unauthenticated = crate::graphql::errors::refused("UNAUTHENTICATED", "bad token");
        let answer = respond(unauthenticated, Media::GraphqlResponse);
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(answer.headers()[header::WWW_AUTHENTICATE], "Bearer");

        // Execution ran: data (even null) and 200, whatever its errors.
        let mut failed = async_graphql::ServerError::new("doetank not found", None);
        failed.path = vec![async_graphql::PathSegment::Field("doetank".into())];
        let answer = respond(async_graphql::Response::from_errors(vec![failed]), Media::GraphqlResponse);
        assert_eq!(answer.status(), StatusCode::OK);
    }
}
