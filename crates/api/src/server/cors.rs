//! Cross-origin requests: a dashboard served from another origin asks from the browser, which
//! sends the query only when the server names that origin (CORS). Same-origin alone unless the
//! operator names origins; tokens travel as bearer headers, never as cookies, so no credentials
//! are allowed across origins and `*` is safe to offer. WebSockets are not subject to CORS.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which other origins may call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// None: the browser's same-origin policy stands (the playground is served same-origin).
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// These, each as the browser sends it (`https://dash.example.org`).
    These(Vec<HeaderValue>),
}

/// One origin as given on the command line: `*`, or `scheme://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Any,
    One(HeaderValue),
}

impl std::str::FromStr for Origin {
    type Err = String;

    /// Browsers send an origin lower-cased and without a path, so one given with a trailing
    /// slash or capitals is written as they send it.
    fn from_str(text: &str) -> Result<Origin, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Origin::Any);
        }
        let origin = text.strip_suffix('/').unwrap_or(text).to_ascii_lowercase();
        let refuse =
            |why: &str| Err(format!("{text:?} is not an origin ({why}); give `https://host[:port]` or `*`"));
        let Some((scheme, authority)) = origin.split_once("://") else {
            return refuse("no scheme");
        };
        if scheme != "http" && scheme != "https" {
            return refuse("the scheme is not http or https");
        }
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return refuse("only a host and a port may follow the scheme");
        }
        if let Some((_, port)) = authority.rsplit_once(':').filter(|_| !authority.ends_with(']')) {
            if port.parse::<u16>().is_err() {
                return refuse("the port is not a number");
            }
        }
        HeaderValue::from_str(&origin).map(Origin::One).or_else(|_| refuse("not a header value"))
    }
}

impl AllowedOrigins {
    /// The origins given, `*` among them meaning any.
    pub fn from_given(given: Vec<Origin>) -> AllowedOrigins {
        if given.is_empty() {
            return AllowedOrigins::None;
        }
        let mut these = Vec::new();
        for origin in given {
            match origin {
                Origin::Any => return AllowedOrigins::Any,
                Origin::One(value) => these.push(value),
            }
        }
        AllowedOrigins::These(these)
    }

    /// The layer answering preflights and naming allowed origins; `None` when none are.
    pub(super) fn layer(&self) -> Option<CorsLayer> {
        let origins = match self {
            AllowedOrigins::None => return None,
            AllowedOrigins::Any => AllowOrigin::any(),
            AllowedOrigins::These(these) => AllowOrigin::list(these.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(origins)
                // PUT and DELETE, and the stream's token, for graphql-sse's single connection
                // mode; `Last-Event-ID` for a stream that resumes.
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::ACCEPT,
                    HeaderName::from_static(super::single_connection::TOKEN_HEADER),
                    HeaderName::from_static("last-event-id"),
                ])
                // A browser asks before each request otherwise; an hour spares dashboards that.
                .max_age(Duration::from_secs(3600)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Result<Origin, String> {
        text.parse()
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        assert_eq!(origin("*"), Ok(Origin::Any));
        let one = |v: &str| Ok(Origin::One(HeaderValue::from_str(v).expect("value")));
        assert_eq!(origin("https://dash.example.org"), one("https://dash.example.org"));
        assert_eq!(origin("HTTPS://Dash.Example.org/"), one("https://dash.example.org"));
        assert_eq!(origin("http://localhost:5173"), one("http://localhost:5173"));
        assert_eq!(origin("http://[::1]:5173"), one("http://[::1]:5173"));
        for bad in
            ["dash.example.org", "ftp://x", "https://", "https://x/path", "https://x:port", "https://u@x"]
        {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_star_among_the_origins_means_any() {
        assert_eq!(AllowedOrigins::from_given(Vec::new()), AllowedOrigins::None);
        let given = vec![origin("https://a.example").expect("origin"), Origin::Any];
        assert_eq!(AllowedOrigins::from_given(given), AllowedOrigins::Any);
        assert!(AllowedOrigins::None.layer().is_none());
    }
}
