//! Conditional GET: an answer over `GET /graphql` carries an `ETag` made from its bytes, and a
//! dashboard that polls by URL with `If-None-Match` gets `304 Not Modified` without a body while
//! the answer is the same. The tag is a hash of the bytes themselves, so it holds on every
//! node of one build and after every restart; `Cache-Control: no-cache` has each poll ask again.

use std::hash::{Hash, Hasher};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The largest answer given a tag: the body is read into memory to hash it (answers are made
/// in memory anyway; this only bounds the copy).
const MAX_TAGGED: usize = 16 * 1024 * 1024;

/// `response` with its `ETag`, or `304` when `request` already holds that tag. Only successful
/// answers are tagged, and not those that say themselves how they may be cached (a persisted
/// query's hash not known yet: a 304 would keep the client on that answer).
pub(super) async fn tagged(response: Response, request: &HeaderMap) -> Response {
    if response.status() != StatusCode::OK || response.headers().contains_key(header::CACHE_CONTROL) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_TAGGED).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "an answer could not be read back to tag it");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // Fixed keys: the same bytes give the same tag in every process of this build.
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let tag = format!("\"{:016x}{:08x}\"", hasher.finish(), bytes.len());
    let Ok(tag) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Answers differ by viewer and by media type.
    parts.headers.insert(header::VARY, HeaderValue::from_static("accept, authorization"));
    if matches(request, &tag) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [header::CACHE_CONTROL, header::VARY] {
            if let Some(value) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        not_modified.headers_mut().insert(header::ETAG, tag);
        return not_modified;
    }
    parts.headers.insert(header::ETAG, tag);
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether `If-None-Match` names `tag` (weakly compared, as RFC 9110 has it for GET) or is `*`.
fn matches(request: &HeaderMap, tag: &HeaderValue) -> bool {
    let tag = tag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate).as_bytes() == tag
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_is_a_list_compared_weakly() {
        let tag = HeaderValue::from_static("\"abc\"");
        let asking = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).expect("value"));
            }
            matches(&headers, &tag)
        };
        assert!(asking(&["\"abc\""]));
        assert!(asking(&["\"x\", W/\"abc\""]));
        assert!(asking(&["\"x\"", "\"abc\""]));
        assert!(asking(&["*"]));
        assert!(!asking(&[]));
        assert!(!asking(&["\"abcd\""]));
        assert!(!asking(&["abc"]));
    }
}
