//! The GraphiQL playground, opened on a query over the demo history, so that a first visit
//! runs something real with one click (GraphiQL keeps the visitor's own query after that).

use std::sync::OnceLock;

use async_graphql::http::GraphiQLSource;

/// The playground's first query: what `serve --demo` loads, readable without a token.
pub const FIRST_QUERY: &str = r#"# The demo history (serve --demo): a doetank through its six phases and as
# it stood in the summer of 2013, the network's lessons, and figures for
# dashboards. Signed-in views: put a token the server printed under Headers:
# {"Authorization": "Bearer <token>"}.
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

/// The page, made once.
pub(super) fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        let page = GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish();
        // GraphiQL's own prop; async-graphql's page has no setting for it.
        let anchor = "defaultEditorToolsVisibility: true,";
        match serde_json::to_string(FIRST_QUERY) {
            Ok(query) if page.contains(anchor) => {
                page.replacen(anchor, &format!("{anchor}\n          defaultQuery: {query},"), 1)
            }
            _ => {
                tracing::warn!("the playground opens empty: its page has no place for a first query");
                page
            }
        }
    })
}
