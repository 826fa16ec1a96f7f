//! The GraphiQL playground, opened on a query over the demo history, so that a first visit
//! runs something real with one click (GraphiQL keeps the visitor's own query after that).
//!
//! Its scripts and style are served by this server, from copies built into it
//! (`crates/api/assets/playground`, with their licences): async-graphql's page loads them from
//! unpkg, under a floating major version (`graphiql@4`), so the playground was blank without
//! the internet and could change under us with any release.

use async_graphql::http::GraphiQLSource;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the page finds its assets; each name carries its version, so it is cached for good.
pub const ASSETS: &str = "/graphql/playground";

/// Each asset: the name it is served under, what async-graphql's page loads instead, its
/// media type, its bytes.
const FILES: [(&str, &str, &str, &[u8]); 4] = [
    (
        "react-18.3.1.production.min.js",
        "https://unpkg.com/react@18/umd/react.development.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "https://unpkg.com/react-dom@18/umd/react-dom.development.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/react-dom-18.3.1.production.min.js"),
    ),
    (
        "graphiql-4.1.2.min.css",
        "https://unpkg.com/graphiql@4/graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/playground/graphiql-4.1.2.min.css"),
    ),
    (
        "graphiql-4.1.2.min.js",
        "https://unpkg.com/graphiql@4/graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/graphiql-4.1.2.min.js"),
    ),
];

/// The favicon async-graphql's page takes from graphql.org; the page says it has none (an
/// empty one), or the browser would ask this server for `/favicon.ico`.
const FAVICON: (&str, &str) =
    (r#"<link rel="icon" href="https://graphql.org/favicon.ico">"#, r#"<link rel="icon" href="data:,">"#);

/// `GET /graphql/playground/{file}`: one of the playground's assets, cached for a year (its
/// name changes with its version); 404 for any other name.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, _, media_type, bytes)) = FILES.iter().find(|(name, ..)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such playground asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        *bytes,
    )
        .into_response()
}

/// The playground's first query: what `serve --demo` loads, readable without a token.
pub const FIRST_QUERY: &str = r#"# The demo history (serve --demo): a doetank through its six phases and as
# it stood in the summer of 2013, the network's lessons, and figures for
# dashboards. Signed-in views: put a token the server printed under Headers:
# {"Authorization": "Bearer <token>"}. With serve --demo, Headers already hold
# the researcher's, so the log answers too: { events(last: 5) { edges { node {
# position type recordedAt } } } }, or statistics(asOf: "2014-01-01T00:00:00Z").
{
  doetank(id: "20130000-0000-4000-8000-000000000100") {
    name status currentPhase isPublic
    lead { name organisation } coach { name }
    members { role member { name sector } }
    phases { phase startedAt completedAt summary }
    lessons { kind phase title tags }
    handOvers { organisation summary }
    history { position version type actor recordedAt }
  }
  summer2013: doetank(id: "20130000-0000-4000-8000-000000000100", asOf: "2013-08-01T00:00:00Z") {
    currentPhase isPublic phases { phase completedAt }
  }
  lessons(filter: { search: "werkgevers" }) {
    totalCount edges { node { title rank excerpt doetank { name } } }
  }
  statistics { doetanksPerPhase { key count } medianDaysPerPhase { phase medianDays } }
}
"#;

/// The page: GraphiQL opened on [`FIRST_QUERY`], its Headers and its subscriptions'
/// `connection_init` holding `token` when there is one (GraphiQL keeps a visitor's own query
/// and headers after the first visit).
pub(super) fn page(token: Option<&str>) -> String {
    let mut source = GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws");
    if let Some(token) = token {
        // Headers travel with HTTP requests only; a WebSocket carries its token in
        // `connection_init` (the page writes it HTML-escaped).
        source = source.ws_connection_param("token", token);
    }
    let mut page = source.finish();
    for (name, remote, ..) in FILES {
        if !page.contains(remote) {
            tracing::warn!(remote, "the playground's page no longer loads this: {name} is not used");
        }
        page = page.replace(remote, &format!("{ASSETS}/{name}"));
    }
    page = page.replace(FAVICON.0, FAVICON.1);
    // GraphiQL's own props; async-graphql's page has no setting for them. JSON text is a
    // JavaScript literal; `<` is escaped so that nothing given can end the script.
    let literal = |value: &str| serde_json::to_string(value).map(|text| text.replace('<', "\\u003c"));
    let headers = token.map(|token| format!("{{\"Authorization\": \"Bearer {token}\"}}"));
    let anchor = "defaultEditorToolsVisibility: true,";
    let mut props = String::from(anchor);
    for (prop, value) in [("defaultQuery", Some(FIRST_QUERY.to_string())), ("defaultHeaders", headers)] {
        if let Some(value) = value {
            match literal(&value) {
                Ok(value) => props.push_str(&format!("\n          {prop}: {value},")),
                Err(e) => tracing::warn!(prop, error = %e, "the playground goes without it"),
            }
        }
    }
    if !page.contains(anchor) {
        tracing::warn!("the playground opens empty: its page has no place for a first query");
    }
    page.replacen(anchor, &props, 1)
}
