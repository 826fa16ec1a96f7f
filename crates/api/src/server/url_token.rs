//! A bearer token in the URL (`?access_token=`, RFC 6750, 2.3), for the one client that cannot
//! send it as a header: a browser's `EventSource`, which sends no headers of its own. Without
//! it such a dashboard saw only what anyone may, and `events`, which needs a signed-in reader,
//! not at all.
//!
//! A URL is written down in more places than a header (logs, history), so the token is taken
//! only there: on `GET /graphql` for a client that accepts an event stream, never beside an
//! `Authorization` header, its answers never stored by a cache, and the trace of the request
//! logs the URL with the token left out.

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::Response;

use super::streamed::Framing;

/// The query parameter RFC 6750 names.
pub(super) const PARAMETER: &str = "access_token";

/// `headers` with the URL's `token` as their `Authorization`, or why a token is not taken
/// there (HTTP 400).
pub(super) fn as_header(mut headers: HeaderMap, token: Option<String>) -> Result<HeaderMap, String> {
    let Some(token) = token else { return Ok(headers) };
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(format!(
            "the token came twice, as `Authorization` and as `{PARAMETER}`: send it once (RFC 6750, 2)"
        ));
    }
    if Framing::for_subscription(&headers) != Some(Framing::EventStream) {
        return Err(format!(
            "`{PARAMETER}` is taken only by an event stream (`Accept: text/event-stream`, as a browser's \
             `EventSource` asks, which cannot send a header): a URL is logged and kept where a header \
             is not, so send the token as `Authorization: Bearer <token>`"
        ));
    }
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| format!("`{PARAMETER}` is not a token: it holds characters no token has"))?;
    headers.insert(header::AUTHORIZATION, value);
    Ok(headers)
}

/// The answer to a request whose token came in its URL: stored by no cache (RFC 6750, 2.3,
/// asks at least `private`), since the URL alone now stands for the token's viewer.
pub(super) fn not_stored(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `uri` as logged: a token in its query is replaced by `REDACTED`, however its name is
/// spelled (`access%5Ftoken` is read as the same parameter).
pub(super) fn redacted(uri: &Uri) -> Cow<'_, str> {
    let Some(query) = uri.query().filter(|query| query.to_ascii_lowercase().contains("access")) else {
        return Cow::Owned(uri.to_string());
    };
    let is_token = |name: &str| name.to_ascii_lowercase().replace("%5f", "_") == PARAMETER;
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_token(name) => Cow::Owned(format!("{name}=REDACTED")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    Cow::Owned(format!("{}?{}", uri.path(), pairs.join("&")))
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_token_in_the_url_is_not_logged() {
        let uri = "/graphql?query=subscription%20%7B%20events%20%7B%20position%20%7D%20%7D&access_token=eyJ.secret.sig"
            .parse()
            .expect("a URI");
        let logged = redacted(&uri);
        assert_eq!(
            logged,
            "/graphql?query=subscription%20%7B%20events%20%7B%20position%20%7D%20%7D&access_token=REDACTED"
        );
        let plain = "/graphql?query=%7B%20__typename%20%7D".parse().expect("a URI");
        assert_eq!(redacted(&plain), "/graphql?query=%7B%20__typename%20%7D");
        let escaped = "/graphql?access%5Ftoken=t&query=x".parse().expect("a URI");
        assert_eq!(redacted(&escaped), "/graphql?access%5Ftoken=REDACTED&query=x");
        let named_alike = "/graphql?query=x&my_access_token=y".parse().expect("a URI");
        assert_eq!(redacted(&named_alike), "/graphql?query=x&my_access_token=y");
    }
}
