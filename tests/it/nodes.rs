//! Several `doetank serve` processes on one database, and crash safety under `kill -9`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doetank_api::server::ServerConfig;
use doetank_api::App;
use doetank_store::EventStore;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{mutate, raise, register};
use crate::both_backends;
use crate::projections::dump;
use crate::support::app::facilitator;
use crate::support::ws::MODERN;
use crate::support::{ServerProcess, TestApp, TestDb, WsClient};

both_backends!(
    answers_kept_by_one_node_follow_writes_through_another,
    two_nodes_share_one_log_and_every_subscriber_sees_every_event_once,
    kill_9_mid_write_loses_no_acknowledged_command,
    a_node_decides_on_what_another_node_wrote,
);

async fn post(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
) -> Result<Value, reqwest::Error> {
    http.post(url)
        .bearer_auth(facilitator())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await
}

const REGISTER: &str = "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id } result { position } } }";

async fn register_via(http: &reqwest::Client, node: &ServerProcess, name: &str) -> Value {
    let input = json!({ "name": name, "organisation": "Gemeente Utrecht", "sector": "PUBLIC" });
    let body =
        post(http, &node.url("/graphql"), REGISTER, json!({ "input": input })).await.expect("register");
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["registerMember"].clone()
}

async fn wait_for_projections(db: &TestDb) {
    let app = App::new(db.store.clone());
    let head = db.store.head_position().await.expect("head");
    let started = Instant::now();
    while app.projector.checkpoint().await.expect("checkpoint") < head {
        assert!(started.elapsed() < Duration::from_secs(20), "the nodes' projectors did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The read models equal a rebuild from the log.
async fn assert_projections_equal_a_rebuild(db: &TestDb) {
    wait_for_projections(db).await;
    let built = dump(db.store.backend()).await;
    App::new(db.store.clone()).projector.rebuild(&|_| {}).await.expect("rebuild");
    assert_eq!(built, dump(db.store.backend()).await, "projections differ from a rebuild");
}

async fn collect(client: &mut WsClient, head: i64) -> Vec<i64> {
    let mut positions = Vec::new();
    while positions.last().copied().unwrap_or(0) < head {
        positions.push(client.next_data().await["events"]["position"].as_i64().expect("position"));
    }
    positions
}

/// Node B keeps answers to repeated queries and the rows its loaders read; a write through
/// node A, with an event or without one (a member's name lives outside the log), is in B's very
/// next answer, to the same question and to a new one.
async fn answers_kept_by_one_node_follow_writes_through_another(db: &TestDb) {
    let a = TestApp::spawn(db).await;
    let own_store = EventStore::connect(&db.url).await.expect("second connection");
    let b = TestApp::spawn_app(App::new(own_store), ServerConfig::default()).await;
    let id = register(&a, "Lea", "Gemeente Utrecht", "PUBLIC").await;
    let query = "query($id: ID!) { member(id: $id) { name organisation } }";
    let ask_b = || async { b.data(query, json!({ "id": id })).await["member"].clone() };
    // The same question in other words (a comment): no kept answer, but the kept rows.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let ask_b_anew = || async {
        let n = asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b.data(&format!("{query} # {n}"), json!({ "id": id })).await["member"].clone()
    };
    let first = ask_b().await;
    assert_eq!(first, json!({ "name": "Lea", "organisation": "Gemeente Utrecht" }));
    assert_eq!(ask_b().await, first, "the same question, the same answer");
    assert_eq!(ask_b_anew().await, first, "a new question about the same rows");

    let member_id: Uuid = id.parse().expect("uuid");
    a.app.update_personal_data(member_id, Some("Lea de Vries"), None).await.expect("rename");
    assert_eq!(ask_b_anew().await["name"], "Lea de Vries", "a write outside the log, asked anew");
    assert_eq!(ask_b().await["name"], "Lea de Vries", "a write outside the log");

    let updated = a
        .data(
            "mutation($input: UpdateMemberProfileInput!) { updateMemberProfile(input: $input) { member { id } } }",
            json!({ "input": { "memberId": id, "organisation": "Gemeente Zeist" } }),
        )
        .await;
    assert_eq!(updated["updateMemberProfile"]["member"]["id"], id.as_str());
    assert_eq!(ask_b_anew().await["organisation"], "Gemeente Zeist", "a write with an event, asked anew");
    assert_eq!(ask_b().await["organisation"], "Gemeente Zeist", "a write with an event");

    // A node that keeps nothing (`serve --no-keep`) gives the same answers.
    let own_store = EventStore::connect(&db.url).await.expect("third connection");
    let c = TestApp::spawn_app(App::new(own_store), ServerConfig { keep: false, ..ServerConfig::default() })
        .await;
    let answer = c.data(query, json!({ "id": id })).await["member"].clone();
    assert_eq!(answer, json!({ "name": "Lea de Vries", "organisation": "Gemeente Zeist" }));
}

async fn two_nodes_share_one_log_and_every_subscriber_sees_every_event_once(db: &TestDb) {
    let a = ServerProcess::start(&db.url).await;
    let b = ServerProcess::start(&db.url).await;
    let query = "subscription { events(after: 0) { position } }";
    let mut on_a = WsClient::connect_to(a.addr, MODERN).await;
    let mut on_b = WsClient::connect_to(b.addr, MODERN).await;
    for client in [&mut on_a, &mut on_b] {
        client.init(json!({ "token": facilitator() })).await;
        client.subscribe("all", query, json!({})).await;
    }

    // 16 clients write through both nodes at once.
    let http = reqwest::Client::new();
    let nodes = Arc::new([a, b]);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (http, nodes) = (http.clone(), nodes.clone());
            tokio::spawn(async move {
                for i in 0..5 {
                    register_via(&http, &nodes[(w + i) % 2], &format!("Schrijver {w}-{i}")).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let head = db.store.head_position().await.expect("head");
    assert_eq!(head, 80);
    let expected: Vec<i64> = (1..=head).collect();
    assert_eq!(collect(&mut on_a, head).await, expected, "node A's subscriber: every event once, in order");
    assert_eq!(collect(&mut on_b, head).await, expected, "node B's subscriber: every event once, in order");

    // Fan-out latency from a write on A to a subscriber on B.
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let started = Instant::now();
        let written = register_via(&http, &nodes[0], &format!("Meting {i}")).await;
        let position = written["result"]["position"].as_i64().expect("position");
        let seen = on_b.next_data().await["events"]["position"].as_i64().expect("position");
        assert_eq!(seen, position);
        worst = worst.max(started.elapsed());
    }
    eprintln!("write on node A to receipt on node B: worst of 5 = {worst:?} ({})", db.store.backend_name());
    if db.store.backend_name() == "postgres" {
        assert!(
            worst < Duration::from_millis(200),
            "LISTEN/NOTIFY should deliver within milliseconds, took {worst:?}"
        );
    }
    assert_projections_equal_a_rebuild(db).await;
}

const FORM: &str = "mutation($input: FormDoetankInput!) { formDoetank(input: $input) { doetank { id } result { position } } }";

async fn kill_9_mid_write_loses_no_acknowledged_command(db: &TestDb) {
    let mut node = ServerProcess::start(&db.url).await;
    let http = reqwest::Client::new();
    let lead = register_via(&http, &node, "Trekker").await["member"]["id"].as_str().expect("id").to_string();
    let challenge = post(
        &http,
        &node.url("/graphql"),
        "mutation($input: RaiseChallengeInput!) { raiseChallenge(input: $input) { challenge { id } } }",
        json!({ "input": { "title": "Crash", "description": "Test", "raisedBy": lead, "origin": { "kind": "OWN_FRUSTRATION" } } }),
    )
    .await
    .expect("raise")["data"]["raiseChallenge"]["challenge"]["id"]
        .as_str()
        .expect("challenge")
        .to_string();

    // Eight clients form doetanks (two events per command) as fast as they can...
    let acknowledged = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let url = node.url("/graphql");
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, acknowledged) = (http.clone(), url.clone(), acknowledged.clone());
            let (lead, challenge) = (lead.clone(), challenge.clone());
            tokio::spawn(async move {
                loop {
                    let id = Uuid::new_v4();
                    let input = json!({ "id": id, "name": "Crashtank", "challengeId": challenge, "leadId": lead, "commandId": Uuid::new_v4() });
                    match post(&http, &url, FORM, json!({ "input": input })).await {
                        Ok(body) if body["data"]["formDoetank"]["doetank"]["id"].is_string() => {
                            acknowledged.lock().expect("lock").push(id)
                        }
                        Ok(body) => panic!("unexpected answer {body:#}"),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    // ...until the server is killed in the middle of it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    node.kill9();
    for c in clients {
        c.await.expect("client");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > 5, "the load ran before the kill ({} acknowledged)", acknowledged.len());

    // Restart on the same database.
    let _restarted = ServerProcess::start(&db.url).await;
    let app = App::new(db.store.clone());
    for id in &acknowledged {
        let (_, version) = app.load::<doetank_domain::Doetank>(*id).await.expect("load");
        assert_eq!(version, 2, "acknowledged doetank {id} must be in the log, both of its events");
    }
    // No half-written command: every doetank stream holds both events of its one command.
    let (streams, events) = doetank_store::on_pool!(db.store.backend(), pool => {
        let streams: Vec<(String, i64)> = sqlx::query_as("SELECT stream_id, MAX(version) FROM events WHERE stream_type = 'doetank' GROUP BY stream_id")
            .fetch_all(pool).await.expect("streams");
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE stream_type = 'doetank'")
            .fetch_one(pool).await.expect("events");
        (streams, events)
    });
    assert!(streams.iter().all(|(_, v)| *v == 2), "a half-written command survived: {streams:?}");
    assert_eq!(events, 2 * streams.len() as i64);
    assert!(streams.len() >= acknowledged.len());
    eprintln!(
        "kill -9 ({}): {} acknowledged, {} in the log (the rest were written but not yet answered)",
        db.store.backend_name(),
        acknowledged.len(),
        streams.len()
    );
    assert_projections_equal_a_rebuild(db).await;
}

/// Node A keeps the doetank it formed to decide its next command on; node B writes to it in
/// between. A's next commands see B's write: one that A's kept state would refuse (an expected
/// version A has not seen) is decided again on the log, and one that would overwrite B's write
/// is refused by the append and decided again.
async fn a_node_decides_on_what_another_node_wrote(db: &TestDb) {
    let a = TestApp::spawn(db).await;
    let b = TestApp::spawn_app(
        App::new(EventStore::connect(&db.url).await.expect("B's store")),
        ServerConfig::default(),
    )
    .await;
    let lead = register(&a, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(&a, &lead).await;
    let form = json!({ "name": "Twee knopen", "challengeId": challenge, "leadId": lead });
    let formed = mutate(&a, "formDoetank", "FormDoetankInput", form).await;
    let d = formed["data"]["formDoetank"]["doetank"]["id"].as_str().expect("id").to_string();
    let attach = |node: &'static str, organisation: &str, expected: Option<i64>| {
        let input = json!({ "doetankId": d, "organisation": organisation, "expectedVersion": expected });
        let node = if node == "a" { &a } else { &b };
        mutate(node, "attachCommissioner", "AttachCommissionerInput", input)
    };
    let version =
        |response: &Value| response["data"]["attachCommissioner"]["result"]["streamVersion"].clone();

    assert_eq!(version(&attach("b", "BZK", Some(2)).await), 3, "B writes version 3");
    let after_b = attach("a", "VWS", Some(3)).await;
    assert_eq!(version(&after_b), 4, "A is held to B's version, not its own: {after_b}");
    assert_eq!(version(&attach("b", "EZK", None).await), 5);
    let overwrite = attach("a", "OCW", None).await;
    assert_eq!(version(&overwrite), 6, "{overwrite}");
    let stale = attach("a", "JenV", Some(4)).await;
    assert_eq!(
        stale["errors"][0]["extensions"]["code"], "VERSION_CONFLICT",
        "a stale expected version is still refused"
    );
    assert_eq!(stale["errors"][0]["extensions"]["actual"], 6);
}

/// SIGTERM (what `docker stop`, systemd and Kubernetes send) stops a node gracefully: its
/// WebSocket subscribers are told with 1001 (going away: reconnect elsewhere) and the process
/// exits with success. Until the twenty-first session SIGTERM killed it outright: the socket
/// ended with no close frame and the process by the signal.
#[tokio::test]
async fn sigterm_closes_subscribers_with_going_away_and_exits_cleanly() {
    use crate::support::ws::Incoming;

    let db = TestDb::sqlite().await;
    let mut node = ServerProcess::start(&db.url).await;
    let mut client = WsClient::connect_to(node.addr, MODERN).await;
    client.init(json!({ "token": facilitator() })).await;
    client.subscribe("live", "subscription { events { position } }", json!({})).await;
    // The subscription is running once a query on the same socket has been answered after it.
    client.subscribe("q", "{ __typename }", json!({})).await;
    assert!(matches!(client.next(Duration::from_secs(10)).await, Some(Incoming::Next(_))));
    // A subscription over server-sent events, which must not hold the stopping node up.
    let mut sse = reqwest::Client::new()
        .post(format!("http://{}/graphql/stream", node.addr))
        .bearer_auth(facilitator())
        .json(&json!({ "query": "subscription { events { position } }" }))
        .send()
        .await
        .expect("POST /graphql/stream");
    assert_eq!(sse.status().as_u16(), 200);

    // Read while the node stops: the close handshake is answered, as a client would.
    let terminated = tokio::task::spawn_blocking(move || node.terminate());
    let closed = loop {
        match client.next(Duration::from_secs(10)).await {
            Some(Incoming::Closed(code, reason)) => break (code, reason),
            Some(Incoming::Other(frame)) if frame["type"] == "complete" => continue,
            other => panic!("expected the socket to close, got {other:?}"),
        }
    };
    assert_eq!(closed.0, Some(1001), "closed with {closed:?}");
    // The event stream ends (keep-alive comments aside) rather than holding the node open,
    // telling its `EventSource` to come back after a wait of its own, 1 to 10 s, so that a
    // node's dashboards do not all reconnect at once.
    let mut text = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(chunk)) = sse.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(ended.is_ok(), "the event stream was still open 10 s after SIGTERM");
    let retry: Option<u64> =
        text.lines().find_map(|line| line.strip_prefix("retry: ")).and_then(|ms| ms.parse().ok());
    assert!(retry.is_some_and(|ms| (1_000..=10_000).contains(&ms)), "{text:?}");
    let status = terminated.await.expect("join").expect("the node did not exit within 20 s of SIGTERM");
    assert!(status.success(), "the node exited with {status}");
}
