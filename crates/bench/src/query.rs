//! Scenario 3: a doetank-by-id query, the knowledge base's newest lessons and a lesson full-text
//! search over HTTP at 64 connections:
//! requests per second, p50 and p99. Baseline: a trivial query (`{ __typename }`) on the same
//! server stack. Client and server share this machine's cores. Beside them, the log's export as
//! a researcher takes it (`/events.ndjson`), against reading the same pages from the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use doetank_api::auth::Role;
use doetank_api::server::ServerConfig;
use doetank_api::App;
use doetank_store::EventStore;
use serde_json::json;
use tokio::sync::watch;

use crate::db::Backend;
use crate::report::{stats, Report, Target};
use crate::Options;

const CONNECTIONS: usize = 64;

/// How the requests of one load differ from each other.
#[derive(Clone)]
enum Asking {
    /// The same text and variables each time: a kept answer serves them.
    Repeated,
    /// Each a different text (a numbered comment): nothing parsed or answered before serves it.
    NewText,
    /// The same text, each request about another of these doetanks (`$id`), as a dashboard
    /// going through them asks: the parsed text can be kept, the answer cannot.
    EachDoetank(Arc<Vec<String>>),
}

impl Asking {
    /// The body of the `n`th request; `same` is `body` already serialised, so a repeated
    /// question costs the client (on the measured cores) no serialising.
    fn body(&self, body: &serde_json::Value, same: &str, n: usize) -> String {
        match self {
            Asking::Repeated => same.to_string(),
            Asking::NewText => {
                let mut body = body.clone();
                body["query"] = format!("{} # {n}", body["query"].as_str().unwrap_or_default()).into();
                body.to_string()
            }
            Asking::EachDoetank(ids) => {
                let mut body = body.clone();
                body["variables"]["id"] = ids[n % ids.len()].clone().into();
                body.to_string()
            }
        }
    }
}

/// The ids of up to 100 doetanks anyone may see.
async fn public_doetanks(url: &str) -> anyhow::Result<Vec<String>> {
    let page: serde_json::Value = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": "{ doetanks(first: 100) { edges { node { id } } } }" }))
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<String> = page["data"]["doetanks"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|edge| edge["node"]["id"].as_str().map(str::to_string))
        .collect();
    anyhow::ensure!(!ids.is_empty(), "no public doetanks to ask about: {page}");
    Ok(ids)
}

/// Loads the server with requests made from `body` as `asking` says, from 64 connections.
async fn load(
    url: &str,
    body: serde_json::Value,
    asking: Asking,
    duration: Duration,
) -> anyhow::Result<crate::report::Stats> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build()?;
    let body = Arc::new(body);
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, body, url, asked) = (client.clone(), body.clone(), url.to_string(), asked.clone());
            let asking = asking.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let same = body.to_string();
                while started.elapsed() < duration {
                    let n = asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let text = asking.body(&body, &same, n);
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(text)
                        .send()
                        .await?;
                    let ok = response.status().is_success();
                    let text = response.text().await?;
                    anyhow::ensure!(ok && !text.contains("\"errors\""), "query failed: {text}");
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(stats(all, started.elapsed()))
}

const EXPORT: &str = "the log's export over HTTP (/events.ndjson), a researcher";

/// The whole log as a researcher takes it away, again and again for `duration` (at least
/// twice), against reading the same pages from the store as the export reads them (each
/// payload as its JSON text) with no visibility rule, HTTP or lines written: what the export
/// cannot beat.
async fn export(
    store: &EventStore,
    url: &str,
    token: &str,
    duration: Duration,
    name: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let scan = repeat(duration, || async {
        let (mut after, mut read) = (0, 0usize);
        loop {
            let page = store.read_log_text(&doetank_store::LogFilter::default(), after, 1_000).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.position;
            read += page.len();
        }
        anyhow::Ok(read)
    })
    .await?;
    let subject = "reading the log's pages, each payload as its text (baseline)";
    report.add("query", name, subject, "events/s", scan, Some(scan), "the limit");
    let client = reqwest::Client::new();
    let exported = repeat(duration, || async {
        let response = client.get(url).bearer_auth(token).send().await?.error_for_status()?;
        let body = response.bytes().await?;
        anyhow::Ok(body.iter().filter(|b| **b == b'\n').count())
    })
    .await?;
    report.add("query", name, EXPORT, "events/s", exported, Some(scan), "");
    Ok(())
}

/// Events per second of `once` (which returns how many it went through), run for `duration`
/// and at least twice.
async fn repeat<F, Fut>(duration: Duration, once: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    let started = Instant::now();
    let (mut runs, mut events) = (0, 0usize);
    while runs < 2 || started.elapsed() < duration {
        events += once().await?;
        runs += 1;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(backend: &Backend, o: &Options, report: &mut Report) -> anyhow::Result<()> {
    let fresh = backend.fresh().await?;
    let store = EventStore::connect_with(&fresh.url, 32).await?;
    store.migrate().await?;
    let app = App::new(store.clone());
    doetank_api::demo::load(&app).await?;
    crate::replay::generate(&store, if o.quick { 2_000 } else { 50_000 }).await?;
    app.projector.catch_up().await?;

    // One server as deployed, and one that keeps nothing (`serve --no-keep`), on the same app.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let computing = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let computed_url = format!("http://{}/graphql", computing.local_addr()?);
    let (stop, shutdown) = watch::channel(false);
    let deployed = ServerConfig::default();
    let researcher = deployed.auth.mint("researcher", Role::Researcher, chrono::Duration::hours(1))?;
    let server = tokio::spawn(doetank_api::server::serve(app.clone(), deployed, listener, shutdown.clone()));
    let no_keep = ServerConfig { keep: false, ..ServerConfig::default() };
    let computing_server = tokio::spawn(doetank_api::server::serve(app, no_keep, computing, shutdown));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let name = backend.name();
    let trivial = load(&url, json!({ "query": "{ __typename }" }), Asking::NewText, o.duration()).await?;
    report.add(
        "query",
        name,
        "trivial query (baseline), 64 conns",
        "requests/s",
        trivial.per_second,
        Some(trivial.per_second),
        "the limit",
    );
    report.add("query", name, "trivial query (baseline), 64 conns", "p99 ms", trivial.p99_ms, None, "");
    let id = doetank_api::demo::demo_id(doetank_api::demo::DOETANK_2010);
    let by_id = json!({ "query": "query($id: ID!) { doetank(id: $id) { name status currentPhase lead { name } coach { name } \
        members { role member { name organisation } } phases { phase completedAt summary } lessons { kind title tags } } }", "variables": { "id": id } });
    let search = |words: &str| json!({ "query": format!("{{ lessons(filter: {{ search: \"{words}\" }}, first: 20) {{ totalCount edges {{ node {{ title rank doetank {{ name }} }} }} }} }}") });
    // One topic in twenty (~5% of the lessons), and a word every lesson has (the worst case).
    let topic = search("werkgevers koppels");
    let every = search("werkt");
    // The knowledge base as a dashboard opens it: the newest lessons, and one organisation's.
    let newest = json!({ "query": "{ lessons(first: 20) { edges { node { title kind doetank { name } } } pageInfo { endCursor } } }" });
    let filtered = |filter: &str| json!({ "query": format!("{{ lessons(first: 20, filter: {{ {filter} }}) {{ edges {{ node {{ title kind doetank {{ name }} }} }} }} }}") });
    let of_organisation = filtered("organisation: \"kennisland\"");
    // A tag on one lesson (the demo's) and one on a sixth of them.
    let tagged = |tag: &str| filtered(&format!("tag: \"{tag}\""));
    let doetanks = Asking::EachDoetank(Arc::new(public_doetanks(&url).await?));
    let questions = [
        (
            "doetank by id, 64 conns, computed each time (--no-keep)",
            &computed_url,
            by_id.clone(),
            Asking::NewText,
        ),
        (
            "doetank by id, 64 conns, computed, same text for 100 doetanks (--no-keep)",
            &computed_url,
            by_id.clone(),
            doetanks,
        ),
        ("doetank by id, 64 conns, each a new question (kept rows)", &url, by_id.clone(), Asking::NewText),
        ("doetank by id, 64 conns, repeated (kept answer)", &url, by_id, Asking::Repeated),
        ("newest lessons, 64 conns, computed each time (--no-keep)", &computed_url, newest, Asking::NewText),
        (
            "one organisation's newest lessons, 64 conns, computed each time (--no-keep)",
            &computed_url,
            of_organisation,
            Asking::NewText,
        ),
        (
            "newest lessons with a rare tag, 64 conns, computed each time (--no-keep)",
            &computed_url,
            tagged("coaching"),
            Asking::NewText,
        ),
        (
            "newest lessons with a common tag, 64 conns, computed each time (--no-keep)",
            &computed_url,
            tagged("fase3"),
            Asking::NewText,
        ),
        (
            "lesson search for a topic, 64 conns, computed each time",
            &computed_url,
            topic.clone(),
            Asking::NewText,
        ),
        ("lesson search for a topic, 64 conns, repeated (kept answer)", &url, topic, Asking::Repeated),
        (
            "lesson search, every lesson matches, 64 conns, computed each time",
            &computed_url,
            every.clone(),
            Asking::NewText,
        ),
        (
            "lesson search, every lesson matches, 64 conns, repeated (kept answer)",
            &url,
            every,
            Asking::Repeated,
        ),
    ];
    let asked = questions
        .into_iter()
        .filter(|(subject, ..)| o.only.as_ref().is_none_or(|only| subject.contains(only.as_str())));
    for (subject, url, body, asking) in asked {
        let s = load(url, body, asking, o.duration()).await?;
        report
            .add(
                "query",
                name,
                subject,
                "requests/s",
                s.per_second,
                Some(trivial.per_second),
                "target ≥ 0.5 of trivial",
            )
            .aim(&[Target::RatioAtLeast(0.5)]);
        report.add("query", name, subject, "p50 ms", s.p50_ms, None, "");
        report
            .add(
                "query",
                name,
                subject,
                "p99 ms",
                s.p99_ms,
                Some(trivial.p99_ms),
                "target < 10 ms; against trivial's",
            )
            .aim(&[Target::ValueBelow(10.0)]);
    }
    if o.only.as_ref().is_none_or(|only| EXPORT.contains(only.as_str())) {
        export(&store, &url.replace("/graphql", "/events.ndjson"), &researcher, o.duration(), name, report)
            .await?;
    }
    let _ = stop.send(true);
    let _ = server.await;
    let _ = computing_server.await;
    Ok(())
}
