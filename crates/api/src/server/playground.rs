//! The GraphiQL playground, opened on a query over the demo history, so that a first visit
//! runs something real with one click (GraphiQL keeps the visitor's own query after that).
//!
//! Its scripts and style are served by this server, from copies built into it
//! (`crates/api/assets/playground`, with their licences): async-graphql's page loaded them from
//! unpkg, under a floating major version (`graphiql@4`), so the playground was blank without
//! the internet and could change under us with any release. The page is ours too, for its
//! fetcher: a subscription signs in with the token the Headers tab holds, as queries do.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the page finds its assets; each name carries its version, so it is cached for good.
pub const ASSETS: &str = "/graphql/playground";

/// Each asset: the name it is served under, its media type, its bytes.
const FILES: [(&str, &str, &[u8]); 4] = [
    (
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/react-dom-18.3.1.production.min.js"),
    ),
    (
        "graphiql-4.1.2.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/playground/graphiql-4.1.2.min.css"),
    ),
    (
        "graphiql-4.1.2.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/playground/graphiql-4.1.2.min.js"),
    ),
];

/// `GET /graphql/playground/{file}`: one of the playground's assets, cached for a year (its
/// name changes with its version); 404 for any other name.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, media_type, bytes)) = FILES.iter().find(|(name, ..)| *name == file) else {
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
# Live, in a new tab (+), as the token in Headers: subscription { events {
# position type } }, then make a change from another tab.
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

/// The page: GraphiQL opened on [`FIRST_QUERY`], its Headers holding `token` when there is one
/// (GraphiQL keeps a visitor's own query and headers after the first visit). Its fetcher is
/// one per bearer token the Headers hold: queries and mutations send the headers, and a
/// subscription's WebSocket, which a browser cannot give headers, sends the same token in
/// `connection_init`. Until the thirty-second session the socket's token was fixed in the
/// page, so a subscription ran as the demo's researcher whatever token the Headers held. A
/// token the server refuses is shown as its refusal at once, checked once per token.
pub(super) fn page(token: Option<&str>) -> String {
    // JSON text is a JavaScript literal; `<` is escaped so that nothing given can end the script.
    let literal = |value: &str| {
        serde_json::to_string(value).map(|text| text.replace('<', "\\u003c")).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the playground goes without a default");
            "undefined".to_string()
        })
    };
    let headers = token.map_or("undefined".to_string(), |token| {
        literal(&format!("{{\"Authorization\": \"Bearer {token}\"}}"))
    });
    PAGE.replace("{ASSETS}", ASSETS)
        .replace("{FIRST_QUERY}", &literal(FIRST_QUERY))
        .replace("{DEFAULT_HEADERS}", &headers)
}

/// The page's HTML, `{ASSETS}`, `{FIRST_QUERY}` and `{DEFAULT_HEADERS}` filled in by [`page`].
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>doetank · GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{ASSETS}/graphiql-4.1.2.min.css">
    <style>
      body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script src="{ASSETS}/react-18.3.1.production.min.js"></script>
    <script src="{ASSETS}/react-dom-18.3.1.production.min.js"></script>
    <script src="{ASSETS}/graphiql-4.1.2.min.js"></script>
    <script>
      (function () {
        var origin = window.location.origin;
        var fetchers = {};
        // The bearer token of the Headers tab, '' for none.
        function tokenOf(headers) {
          var value = headers && (headers.Authorization || headers.authorization);
          var bearer = typeof value === 'string' ? /^\s*bearer\s+(\S+)\s*$/i.exec(value) : null;
          return bearer ? bearer[1] : '';
        }
        // A token the server refuses, said at once: a WebSocket refused with 4403 is tried
        // again by graphql-ws for half a minute before GraphiQL shows anything.
        var refusals = {};
        function refusalOf(token) {
          if (!token) return Promise.resolve(null);
          if (!refusals[token]) {
            refusals[token] = fetch(origin + '/graphql', {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
              body: '{"query":"{ __typename }"}'
            }).then(function (response) { return response.json(); })
              .then(function (answer) { return answer.errors ? answer : null; }, function () { return null; });
          }
          return refusals[token];
        }
        function fetcher(params, options) {
          var token = tokenOf(options && options.headers);
          return refusalOf(token).then(function (refused) {
            return refused || fetcherFor(token)(params, options);
          });
        }
        function fetcherFor(token) {
          if (!fetchers[token]) {
            fetchers[token] = GraphiQL.createFetcher({
              url: origin + '/graphql',
              subscriptionUrl: origin.replace(/^http/, 'ws') + '/graphql/ws',
              wsConnectionParams: token ? { token: token } : {},
              fetch: function (url, init) {
                return fetch(url, Object.assign({}, init, { credentials: 'same-origin' }));
              }
            });
          }
          return fetchers[token];
        }
        ReactDOM.createRoot(document.getElementById('graphiql')).render(
          React.createElement(GraphiQL, {
            fetcher: fetcher,
            defaultEditorToolsVisibility: true,
            defaultQuery: {FIRST_QUERY},
            defaultHeaders: {DEFAULT_HEADERS}
          })
        );
      })();
    </script>
  </body>
</html>
"#;
