//! The GraphiQL playground, opened on a query over the demo history, so that a first visit
//! runs something real with one click (GraphiQL keeps the visitor's own query after that).

use async_graphql::http::GraphiQLSource;

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
    let page = source.finish();
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
