//! Subscriptions over a real WebSocket, and the event log for researchers.

use std::collections::HashSet;
use std::time::Duration;

use doetank_api::server::ServerConfig;
use doetank_domain::EncodedEvent;
use doetank_store::{ExpectedVersion, Metadata, StreamId};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{mutate, mutate_as, raise, register};
use crate::both_backends;
use crate::support::app::{auth, facilitator, member, token};
use crate::support::ws::{Incoming, LEGACY, MODERN};
use crate::support::{TestApp, TestDb, WsClient};
use doetank_api::auth::Role;

both_backends!(
    a_subscriber_with_after_gets_every_event_once_in_order_across_the_seam,
    a_reconnect_with_the_last_position_loses_nothing,
    the_legacy_subprotocol_works_too_with_keepalives,
    a_client_that_never_initialises_is_closed,
    doetank_updated_pushes_the_read_model,
    doetank_updated_after_a_version_misses_nothing_between_query_and_subscription,
    doetanks_updated_pushes_every_doetank_the_viewer_may_see,
    statistics_updated_pushes_the_figures_when_they_move,
    timeline_appended_tells_the_history_as_it_happens,
    lesson_recorded_brings_the_knowledge_base_live,
    the_events_query_filters_and_pages_the_log,
    a_log_read_within_times_finds_every_event_recorded_then_also_where_the_times_go_back,
    the_ndjson_log_filters_as_the_events_query_and_compresses,
    subscriptions_are_answered_as_server_sent_events_too,
    subscriptions_are_answered_in_multipart_parts_as_apollo_client_asks,
    graphql_takes_event_streams_as_graphql_sse_asks,
    an_event_stream_that_reconnects_resumes_after_its_last_event_id,
    an_event_source_may_carry_its_token_in_the_url,
    every_resumable_subscription_marks_its_answers_with_their_cursor,
    one_reserved_stream_carries_every_operation_as_graphql_sse_single_connection_mode_asks,
    a_reserved_stream_ends_with_its_token_and_frees_its_reservation,
    http_streams_asking_the_same_from_now_share_one_execution,
    subscribers_that_replay_share_once_caught_up_and_hear_each_event_once,
    a_replay_goes_as_fast_as_its_client_reads_and_is_never_lagged,
    as_of_and_at_version_return_the_past,
    a_slow_subscriber_falls_back_to_the_log_and_holds_no_one_up,
    subscribers_asking_the_same_from_now_share_one_execution,
    a_shared_subscription_refused_at_its_start_is_refused_to_each_subscriber,
    misuse_of_the_protocol_closes_the_socket_with_its_code,
    a_stopped_subscription_hears_nothing_more_and_frees_its_id,
);

const EVENTS: &str = "subscription($after: Int, $streams: [String!]) { events(after: $after, streams: $streams) { position streamId version type } }";

/// Appends `n` notes to a stream of its own (a type no projection reads).
async fn write_notes(db: &TestDb, n: usize) {
    let stream = StreamId::new("note", Uuid::new_v4());
    for i in 0..n {
        let event =
            EncodedEvent { event_type: "NoteTaken".into(), schema_version: 1, payload: json!({ "i": i }) };
        db.store
            .append(&stream, ExpectedVersion::Any, &[event], &Metadata::new("writer"))
            .await
            .expect("append");
    }
}

/// Starts eight writers that append 25 notes each to streams of their own, yielding between
/// appends; the future it gives waits for them.
fn eight_writers(db: &TestDb) -> impl std::future::Future<Output = ()> {
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let stream = StreamId::new("note", Uuid::new_v4());
                for i in 0..25 {
                    let note = EncodedEvent {
                        event_type: "NoteTaken".into(),
                        schema_version: 1,
                        payload: json!({ "i": i }),
                    };
                    store
                        .append(&stream, ExpectedVersion::Any, &[note], &Metadata::new("w"))
                        .await
                        .expect("append");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    async move {
        for writer in writers {
            writer.await.expect("writer");
        }
    }
}

async fn collect_positions(client: &mut WsClient, until: i64) -> Vec<i64> {
    let mut positions = Vec::new();
    while positions.last().copied().unwrap_or(0) < until {
        let data = client.next_data().await;
        positions.push(data["events"]["position"].as_i64().expect("position"));
    }
    positions
}

async fn a_subscriber_with_after_gets_every_event_once_in_order_across_the_seam(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    write_notes(db, 50).await; // history to replay
    let mut client = facilitator_client(&app).await;
    client.subscribe("1", EVENTS, json!({ "after": 0 })).await;

    // Eight writers append while the subscriber is replaying and then live.
    eight_writers(db).await;
    let head = app.head().await;
    assert_eq!(head, 250);
    let positions = collect_positions(&mut client, head).await;
    assert_eq!(positions, (1..=head).collect::<Vec<_>>(), "every event exactly once, in global order");
    // Nothing more arrives.
    assert!(client.next(Duration::from_millis(300)).await.is_none(), "no duplicates after the head");
    client.close().await;
}

async fn a_reconnect_with_the_last_position_loses_nothing(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    write_notes(db, 10).await;
    let mut client = facilitator_client(&app).await;
    client.subscribe("1", EVENTS, json!({ "after": 0 })).await;
    let first = collect_positions(&mut client, 6).await;
    client.close().await; // the dashboard goes away...

    write_notes(db, 15).await; // ...while the network keeps writing

    let last = *first.last().expect("some events");
    // At the HTTP endpoint's own URL this time, where graphql-ws and Apollo open their socket
    // by default (until the thirtieth session only `/graphql/ws` took one).
    let mut again = WsClient::connect_at(app.addr, "/graphql", MODERN).await;
    again.init(json!({ "token": facilitator() })).await;
    again.subscribe("2", EVENTS, json!({ "after": last })).await;
    let head = app.head().await;
    let rest = collect_positions(&mut again, head).await;
    let all: Vec<i64> = first.iter().chain(&rest).copied().collect();
    assert_eq!(all, (1..=head).collect::<Vec<_>>());
    again.close().await;
}

async fn the_legacy_subprotocol_works_too_with_keepalives(db: &TestDb) {
    let config = ServerConfig { keepalive: Duration::from_millis(100), ..ServerConfig::default() };
    let app = TestApp::spawn_with(db, config).await;
    let mut client = WsClient::connect(&app, LEGACY).await;
    client.init(json!({ "token": facilitator() })).await;
    // `note` is no stream type of the catalogue: taken once the log holds one (from now on,
    // so this first note is not sent).
    write_notes(db, 1).await;
    client.subscribe("a", EVENTS, json!({ "streams": ["note"] })).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    write_notes(db, 3).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(client.next_data().await["events"]["type"].clone());
    }
    assert_eq!(seen, vec![json!("NoteTaken"); 3]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(client.next(Duration::from_millis(300)).await.is_none());
    assert!(client.keepalives >= 2, "legacy `ka` keep-alives arrive ({} seen)", client.keepalives);

    let mut modern = WsClient::connect(&app, MODERN).await;
    modern.init(json!({ "token": facilitator() })).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(modern.next(Duration::from_millis(200)).await.is_none());
    assert!(modern.keepalives >= 2, "graphql-transport-ws pings arrive ({} seen)", modern.keepalives);
}

async fn a_client_that_never_initialises_is_closed(db: &TestDb) {
    let config = ServerConfig { init_timeout: Duration::from_millis(200), ..ServerConfig::default() };
    let app = TestApp::spawn_with(db, config).await;
    let mut client = WsClient::connect(&app, MODERN).await;
    match client.next(Duration::from_secs(5)).await {
        Some(Incoming::Closed(code, reason)) => {
            assert_eq!(code, Some(4408), "{reason}");
        }
        other => panic!("expected the socket to close, got {other:?}"),
    }
    let refused = app
        .http
        .get(app.url("/graphql/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status().as_u16(), 400, "no subprotocol asked for");
}

/// A doetank formed by a new lead on a challenge of theirs: the lead, the challenge, the doetank.
async fn formed_doetank(app: &TestApp, name: &str) -> (String, String, String) {
    let lead = register(app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(app, &lead).await;
    let formed = mutate(
        app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": name, "challengeId": challenge, "leadId": lead }),
    )
    .await;
    let d = formed["data"]["formDoetank"]["doetank"]["id"].as_str().expect("id").to_string();
    (lead, challenge, d)
}

/// Two doetanks, each (lead, id): "Open", made public, and "Dicht", still informal.
async fn open_and_informal(app: &TestApp) -> ((String, String), (String, String)) {
    let (open_lead, _, open) = formed_doetank(app, "Open").await;
    let (closed_lead, _, closed) = formed_doetank(app, "Dicht").await;
    let made_public =
        mutate(app, "makeDoetankPublic", "DoetankCommandInput", json!({ "doetankId": open })).await;
    assert!(made_public.get("errors").is_none(), "{made_public:#}");
    ((open_lead, open), (closed_lead, closed))
}

/// A client on graphql-transport-ws, signed in as a facilitator.
async fn facilitator_client(app: &TestApp) -> WsClient {
    let mut client = WsClient::connect(app, MODERN).await;
    client.init(json!({ "token": facilitator() })).await;
    client
}

async fn doetank_updated_pushes_the_read_model(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let (lead, challenge, d) = formed_doetank(&app, "Live").await;

    let mut client = facilitator_client(&app).await;
    client.subscribe("d", "subscription($id: ID!) { doetankUpdated(id: $id) { name commissioner version members { role } } }", json!({ "id": d })).await;
    shared_becomes(&app, (1, 1)).await;
    mutate(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": "BZK" }),
    )
    .await;
    let update = client.next_data().await;
    assert_eq!(update["doetankUpdated"]["commissioner"], "BZK");
    assert_eq!(update["doetankUpdated"]["version"], 3);
    // Another doetank's events do not wake this subscriber.
    let other = mutate(
        &app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": "Anders", "challengeId": challenge, "leadId": lead }),
    )
    .await;
    assert!(other.get("errors").is_none());
    assert!(client.next(Duration::from_millis(300)).await.is_none());
}

/// A dashboard queries a doetank, then subscribes with the version it saw: a change made in
/// between comes first, a state already seen does not come again, and a burst of changes
/// arrives as states of rising versions, the last one last.
async fn doetank_updated_after_a_version_misses_nothing_between_query_and_subscription(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let (lead, _, d) = formed_doetank(&app, "Dashboard").await;
    let seen = app.data("query($id: ID!) { doetank(id: $id) { version } }", json!({ "id": d })).await
        ["doetank"]["version"]
        .as_i64()
        .expect("version");
    let lesson =
        |n: i64| json!({ "doetankId": d, "kind": "INSIGHT", "title": format!("Les {n}"), "body": "b" });
    // A change after the dashboard's query, before its subscription.
    let as_lead = member(&lead);
    let record = |n: i64| mutate_as(&app, &as_lead, "recordLesson", "RecordLessonInput", lesson(n));
    let recorded = record(0).await;
    assert!(recorded.get("errors").is_none(), "{recorded:#}");

    let query = "subscription($id: ID!, $v: Int) { doetankUpdated(id: $id, afterVersion: $v) { version lessons { title } } }";
    let mut late = facilitator_client(&app).await;
    late.subscribe("d", query, json!({ "id": d, "v": seen })).await;
    let first = late.next_data().await;
    assert_eq!(first["doetankUpdated"]["version"], seen + 1, "{first:#}");
    assert_eq!(first["doetankUpdated"]["lessons"][0]["title"], "Les 0");
    // One that has seen the doetank as it is hears nothing until it changes.
    let mut current = facilitator_client(&app).await;
    current.subscribe("d", query, json!({ "id": d, "v": seen + 1 })).await;
    assert!(current.next(Duration::from_millis(300)).await.is_none());
    // Each answers its own first state; once it has, it takes a seat in an execution shared by
    // those that caught up (`current` has had nothing to answer yet).
    shared_becomes(&app, (1, 1)).await;

    for n in 1..=5 {
        assert!(record(n).await.get("errors").is_none());
    }
    shared_becomes(&app, (1, 2)).await;
    let last = seen + 6;
    for client in [&mut late, &mut current] {
        let mut versions: Vec<i64> = Vec::new();
        while versions.last().is_none_or(|v| *v < last) {
            let update = client.next_data().await;
            versions.push(update["doetankUpdated"]["version"].as_i64().expect("version"));
        }
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "no state twice, none older after newer: {versions:?}"
        );
        assert_eq!(versions.last(), Some(&last));
        assert!(client.next(Duration::from_millis(200)).await.is_none(), "nothing after the last change");
    }

    let mut refused = facilitator_client(&app).await;
    refused.subscribe("d", query, json!({ "id": d, "v": -1 })).await;
    assert_eq!(error_code(refused.next(Duration::from_secs(5)).await), "BAD_INPUT");
    // A version the doetank never had would wait in silence (until the thirty-first session it
    // did): refused, naming the version it is at.
    let mut ahead = facilitator_client(&app).await;
    ahead.subscribe("d", query, json!({ "id": d, "v": last + 100 })).await;
    let refusal = ahead.next(Duration::from_secs(5)).await;
    assert!(format!("{refusal:?}").contains(&format!("at version {last}")), "{refusal:?}");
    assert_eq!(error_code(refusal), "BAD_INPUT");
    // Not to one outside the informal doetank: its version would tell that it exists.
    let mut outsider = WsClient::connect(&app, MODERN).await;
    outsider.init(json!({ "token": token("onderzoeker", Role::Researcher) })).await;
    outsider.subscribe("d", query, json!({ "id": d, "v": last + 100 })).await;
    assert!(
        outsider.next(Duration::from_millis(300)).await.is_none(),
        "the informal doetank's version leaked"
    );
}

/// One subscription for the whole network: each change of every doetank the viewer may see,
/// a state once (a command of several events arrives once); an informal doetank reaches those
/// outside it only once it is made public.
async fn doetanks_updated_pushes_every_doetank_the_viewer_may_see(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let ((_, open), (_, closed)) = open_and_informal(&app).await;

    let query = "subscription { doetanksUpdated { id name version commissioner } }";
    let mut staff = facilitator_client(&app).await;
    staff.subscribe("all", query, json!({})).await;
    let mut outsider = WsClient::connect(&app, MODERN).await;
    outsider.init(json!({ "token": token("onderzoeker", Role::Researcher) })).await;
    outsider.subscribe("all", query, json!({})).await;
    // Dashboards with the same eyes share one execution.
    let mut second_staff = facilitator_client(&app).await;
    second_staff.subscribe("all", query, json!({})).await;
    shared_becomes(&app, (2, 3)).await;

    let attach = |d: &str, organisation: &str| {
        let input = json!({ "doetankId": d, "organisation": organisation });
        mutate(&app, "attachCommissioner", "AttachCommissionerInput", input)
    };
    for (d, organisation) in [(&open, "BZK"), (&closed, "VWS")] {
        let attached = attach(d, organisation).await;
        assert!(attached.get("errors").is_none(), "{attached:#}");
    }
    let first = staff.next_data().await;
    assert_eq!(first["doetanksUpdated"]["id"], open.as_str(), "{first:#}");
    assert_eq!(first["doetanksUpdated"]["commissioner"], "BZK");
    let second = staff.next_data().await;
    assert_eq!(second["doetanksUpdated"]["id"], closed.as_str(), "{second:#}");
    assert_eq!(second["doetanksUpdated"]["commissioner"], "VWS");
    let seen = outsider.next_data().await;
    assert_eq!(seen["doetanksUpdated"]["id"], open.as_str(), "{seen:#}");
    assert_eq!(second_staff.next_data().await, first);
    assert_eq!(second_staff.next_data().await, second);
    assert!(outsider.next(Duration::from_millis(300)).await.is_none(), "the informal doetank leaked");
    assert!(staff.next(Duration::from_millis(100)).await.is_none(), "a state sent twice");

    // Made public: from its next change on, everyone hears of it.
    let made_public =
        mutate(&app, "makeDoetankPublic", "DoetankCommandInput", json!({ "doetankId": closed })).await;
    assert!(made_public.get("errors").is_none(), "{made_public:#}");
    for client in [&mut staff, &mut outsider] {
        let update = client.next_data().await;
        assert_eq!(update["doetanksUpdated"]["id"], closed.as_str(), "{update:#}");
        let version = update["doetanksUpdated"]["version"].as_i64().expect("version");
        assert!(version > second["doetanksUpdated"]["version"].as_i64().expect("version"));
    }

    // A dashboard that answered from `{ position doetanks { ... } }` and subscribes with that
    // position misses nothing written in between: each doetank changed since comes first, as it
    // is now and once, then the live changes.
    let answered = app.data("{ position doetanks { totalCount } }", json!({})).await;
    let position = answered["position"].as_i64().expect("position");
    assert_eq!(position, app.head().await, "the answer's position is the log it reflects");
    for (d, organisation) in [(&open, "TNO"), (&open, "Kennisland"), (&closed, "NS")] {
        assert!(attach(d, organisation).await.get("errors").is_none());
    }
    let resumed = "subscription($a: Int) { doetanksUpdated(after: $a) { id commissioner } }";
    let mut dashboard = facilitator_client(&app).await;
    dashboard.subscribe("all", resumed, json!({ "a": position })).await;
    let mut caught_up = Vec::new();
    for _ in 0..2 {
        let state = dashboard.next_data().await["doetanksUpdated"].clone();
        caught_up.push((
            state["id"].as_str().unwrap_or_default().to_string(),
            state["commissioner"].as_str().unwrap_or_default().to_string(),
        ));
    }
    caught_up.sort();
    let mut expected = vec![(open.clone(), "Kennisland".to_string()), (closed.clone(), "NS".to_string())];
    expected.sort();
    assert_eq!(caught_up, expected, "each changed doetank once, as it is now");
    assert!(attach(&open, "BZK").await.get("errors").is_none());
    let live = dashboard.next_data().await;
    assert_eq!(live["doetanksUpdated"]["commissioner"], "BZK", "then live: {live:#}");
}

/// A dashboard's figures, live: sent when a change moves them (a lesson), not when it does not
/// (an expert consulted), the figures now first with `initial: true`; an informal doetank's
/// lesson moves only the figures of those who may see it; dashboards with the same eyes share
/// one execution.
async fn statistics_updated_pushes_the_figures_when_they_move(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let ((open_lead, open), (closed_lead, closed)) = open_and_informal(&app).await;
    record_lesson(&app, &open, &open_lead, "INSIGHT", "Een inzicht").await;

    let fields = "lessonsPerKind { key count } doetanksPerStatus { key count }";
    let mut staff = facilitator_client(&app).await;
    staff
        .subscribe(
            "s",
            &format!("subscription {{ statisticsUpdated(initial: true) {{ {fields} }} }}"),
            json!({}),
        )
        .await;
    let first = staff.next_data().await;
    assert_eq!(
        first["statisticsUpdated"]["lessonsPerKind"],
        json!([{ "key": "INSIGHT", "count": 1 }]),
        "{first:#}"
    );
    let shared = format!("subscription {{ statisticsUpdated {{ {fields} }} }}");
    let mut outsiders = Vec::new();
    for _ in 0..2 {
        let mut outsider = WsClient::connect(&app, MODERN).await;
        outsider.init(json!({ "token": token("onderzoeker", Role::Researcher) })).await;
        outsider.subscribe("s", &shared, json!({})).await;
        outsiders.push(outsider);
    }
    shared_becomes(&app, (1, 2)).await;
    assert!(outsiders[0].next(Duration::from_millis(200)).await.is_none(), "no figures before a change");

    record_lesson(&app, &open, &open_lead, "INSIGHT", "Een inzicht").await;
    let two = json!([{ "key": "INSIGHT", "count": 2 }]);
    let moved = staff.next_data().await;
    assert_eq!(moved["statisticsUpdated"]["lessonsPerKind"], two, "{moved:#}");
    for outsider in &mut outsiders {
        let moved = outsider.next_data().await;
        assert_eq!(moved["statisticsUpdated"]["lessonsPerKind"], two, "{moved:#}");
        assert_eq!(
            moved["statisticsUpdated"]["doetanksPerStatus"].as_array().map(Vec::len),
            Some(1),
            "{moved:#}"
        );
    }

    // A change that moves no figure sends nothing.
    let consulted = mutate_as(
        &app,
        &member(&open_lead),
        "consultExpert",
        "ConsultExpertInput",
        json!({ "doetankId": open, "topic": "Pensioenregels", "expert": "TNO" }),
    )
    .await;
    assert!(consulted.get("errors").is_none(), "{consulted:#}");
    assert!(staff.next(Duration::from_millis(300)).await.is_none(), "figures sent again unmoved");

    // The informal doetank's lesson moves the figures of those who may see it only.
    record_lesson(&app, &closed, &closed_lead, "INSIGHT", "Een inzicht").await;
    let moved = staff.next_data().await;
    assert_eq!(
        moved["statisticsUpdated"]["lessonsPerKind"],
        json!([{ "key": "INSIGHT", "count": 3 }]),
        "{moved:#}"
    );
    for outsider in &mut outsiders {
        assert!(outsider.next(Duration::from_millis(300)).await.is_none(), "the informal doetank leaked");
    }

    // A member who registers moves `membersPerOrganisation`, which these dashboards did not
    // select: they are sent nothing (until the thirty-second session the same answer again).
    register(&app, "Nieuw Lid", "Provincie Utrecht", "PUBLIC").await;
    assert!(staff.next(Duration::from_millis(300)).await.is_none(), "an unselected figure moved");
    let mut members = facilitator_client(&app).await;
    members
        .subscribe(
            "m",
            "subscription { statisticsUpdated { membersPerOrganisation { key count } } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    register(&app, "Nog een Lid", "Provincie Utrecht", "PUBLIC").await;
    let moved = members.next_data().await;
    let counts = moved["statisticsUpdated"]["membersPerOrganisation"].to_string();
    assert!(counts.contains("Provincie Utrecht"), "{moved:#}");
    assert!(staff.next(Duration::from_millis(300)).await.is_none(), "an unselected figure moved");
}

/// The knowledge base, live: each lesson once it is projected, as `lessons` lists it, the
/// informal doetank's to staff only, filtered by doetank and kind; outsiders share one
/// execution.
async fn lesson_recorded_brings_the_knowledge_base_live(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let ((open_lead, open), (closed_lead, closed)) = open_and_informal(&app).await;
    let query = "subscription($d: ID, $k: LessonKind) { lessonRecorded(doetankId: $d, kind: $k) { title kind doetank { name } } }";
    let mut staff = facilitator_client(&app).await;
    staff.subscribe("l", query, json!({})).await;
    let mut works = facilitator_client(&app).await;
    works.subscribe("l", query, json!({ "k": "WORKS" })).await;
    let mut of_closed = facilitator_client(&app).await;
    of_closed.subscribe("l", query, json!({ "d": closed })).await;
    let mut outsiders = Vec::new();
    for _ in 0..2 {
        let mut outsider = WsClient::connect(&app, MODERN).await;
        outsider.init(json!({})).await;
        outsider.subscribe("l", query, json!({})).await;
        outsiders.push(outsider);
    }
    shared_becomes(&app, (4, 5)).await;

    record_lesson(&app, &closed, &closed_lead, "INSIGHT", "Stil inzicht").await;
    record_lesson(&app, &open, &open_lead, "WORKS", "Dit werkt").await;
    assert_eq!(title(&mut staff).await, "Stil inzicht");
    assert_eq!(title(&mut staff).await, "Dit werkt");
    assert_eq!(title(&mut works).await, "Dit werkt");
    assert_eq!(title(&mut of_closed).await, "Stil inzicht");
    for outsider in &mut outsiders {
        let lesson = outsider.next_data().await["lessonRecorded"].clone();
        assert_eq!(lesson["title"], "Dit werkt", "the informal doetank's lesson leaked: {lesson}");
        assert!(lesson["doetank"]["name"].is_string(), "{lesson}");
    }
    assert!(works.next(Duration::from_millis(200)).await.is_none(), "an INSIGHT for WORKS only");
    assert!(of_closed.next(Duration::from_millis(200)).await.is_none(), "another doetank's lesson");

    // A wall that was away resumes after the last lesson it has (from `lessons` or from this
    // subscription): what was recorded meanwhile comes first, then the live ones; none twice.
    let listed = app.data("{ lessons { edges { node { title position } } } }", json!({})).await;
    let last_seen = listed["lessons"]["edges"]
        .as_array()
        .and_then(|edges| edges.iter().find(|e| e["node"]["title"] == "Dit werkt"))
        .and_then(|e| e["node"]["position"].as_i64())
        .expect("the lesson the wall has");
    record_lesson(&app, &open, &open_lead, "DOES_NOT_WORK", "Gemist").await;
    let resumed = "subscription($a: Int) { lessonRecorded(after: $a) { title position } }";
    let mut wall = WsClient::connect(&app, MODERN).await;
    wall.init(json!({})).await;
    wall.subscribe("l", resumed, json!({ "a": last_seen })).await;
    assert_eq!(wall.next_data().await["lessonRecorded"]["title"], "Gemist");
    record_lesson(&app, &open, &open_lead, "WORKS", "Weer live").await;
    assert_eq!(wall.next_data().await["lessonRecorded"]["title"], "Weer live");
    // A position this log never gave out (past its head, from another database say) is
    // refused, rather than waited on in silence; so is a negative one.
    let past_the_head = app.head().await + 1_000;
    for a in [-1, past_the_head] {
        let mut refused = WsClient::connect(&app, MODERN).await;
        refused.init(json!({})).await;
        refused.subscribe("l", resumed, json!({ "a": a })).await;
        assert_eq!(error_code(refused.next(Duration::from_secs(5)).await), "BAD_INPUT", "after: {a}");
    }
}

/// The timeline, live: each new line once its event is projected, to each as they may see it
/// (the informal doetank's forming reaches staff, not outsiders), `kinds` keeping only lines
/// about those kinds of thing, each with its subject; outsiders share one execution.
async fn timeline_appended_tells_the_history_as_it_happens(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let query = "subscription($kinds: [String!]) { timelineAppended(kinds: $kinds) { kind type summary subject { __typename } } }";
    let mut staff = facilitator_client(&app).await;
    staff.subscribe("t", query, json!({})).await;
    let mut cafes = facilitator_client(&app).await;
    cafes.subscribe("t", query, json!({ "kinds": ["cafe"] })).await;
    let mut outsiders = Vec::new();
    for _ in 0..2 {
        let mut outsider = WsClient::connect(&app, MODERN).await;
        outsider.init(json!({})).await;
        outsider.subscribe("t", query, json!({})).await;
        outsiders.push(outsider);
    }
    shared_becomes(&app, (3, 4)).await;

    let (_, _, _) = formed_doetank(&app, "Stil").await;
    let mut told = Vec::new();
    for _ in 0..3 {
        let line = staff.next_data().await["timelineAppended"].clone();
        told.push((
            line["kind"].as_str().unwrap_or_default().to_string(),
            line["subject"]["__typename"].clone(),
        ));
    }
    assert_eq!(
        told,
        [
            ("member".to_string(), json!("Member")),
            ("challenge".to_string(), json!("Challenge")),
            ("doetank".to_string(), json!("Doetank"))
        ],
        "in log order, each with its subject"
    );
    for outsider in &mut outsiders {
        let kinds: Vec<Value> = [outsider.next_data().await, outsider.next_data().await]
            .iter()
            .map(|d| d["timelineAppended"]["kind"].clone())
            .collect();
        assert_eq!(kinds, [json!("member"), json!("challenge")]);
        assert!(outsider.next(Duration::from_millis(300)).await.is_none(), "the informal doetank leaked");
    }
    assert!(cafes.next(Duration::from_millis(100)).await.is_none(), "no café yet");

    let scheduled = app
        .gql(
            "mutation($input: ScheduleCafeInput!) { scheduleCafe(input: $input) { id } }",
            json!({ "input": { "title": "Café live", "date": "2099-06-01", "venue": "Kennisland" } }),
        )
        .await;
    assert!(scheduled.get("errors").is_none(), "{scheduled:#}");
    let line = cafes.next_data().await;
    assert_eq!(line["timelineAppended"]["kind"], "cafe", "{line:#}");
    assert!(
        line["timelineAppended"]["summary"].as_str().is_some_and(|s| s.contains("Café live")),
        "{line:#}"
    );
    assert_eq!(outsiders[0].next_data().await, line, "everyone hears of the café");

    // Resumed after the first line an outsider has from `timeline`: the lines after it that
    // they may see come first (the informal doetank's forming still not among them), then live.
    let first =
        app.gql_as(None, "{ timeline(first: 1) { edges { node { position kind } } } }", json!({})).await;
    let first = first["data"]["timeline"]["edges"][0]["node"].clone();
    assert_eq!(first["kind"], "member", "{first}");
    let resumed = "subscription($a: Int) { timelineAppended(after: $a) { kind } }";
    let mut back = WsClient::connect(&app, MODERN).await;
    back.init(json!({})).await;
    back.subscribe("t", resumed, json!({ "a": first["position"] })).await;
    let kind = |data: Value| data["timelineAppended"]["kind"].clone();
    assert_eq!(kind(back.next_data().await), "challenge");
    assert_eq!(kind(back.next_data().await), "cafe", "the informal doetank leaked");
    let announced = app
        .gql(
            "mutation($input: AnnounceInput!) { announceSpeaker(input: $input) { id } }",
            json!({ "input": { "cafeId": scheduled["data"]["scheduleCafe"]["id"], "title": "Lef", "person": "Spreker" } }),
        )
        .await;
    assert!(announced.get("errors").is_none(), "{announced:#}");
    assert_eq!(kind(back.next_data().await), "cafe", "then live");

    let mut typo = facilitator_client(&app).await;
    typo.subscribe("t", query, json!({ "kinds": ["cafes"] })).await;
    assert_eq!(error_code(typo.next(Duration::from_secs(5)).await), "BAD_INPUT");
    // So too the log's own subscription: a misspelt type or stream type, not a silent feed.
    // A stream id is checked for its shape only (whether it exists is an informal doetank's
    // secret).
    let bare_id = json!({ "streams": [Uuid::new_v4()] });
    for variables in [json!({ "types": ["LessonRecordd"] }), json!({ "streams": ["doetanks"] }), bare_id] {
        let mut typo = facilitator_client(&app).await;
        let log = "subscription($types: [String!], $streams: [String!]) { events(types: $types, streams: $streams) { position } }";
        typo.subscribe("e", log, variables.clone()).await;
        assert_eq!(error_code(typo.next(Duration::from_secs(5)).await), "BAD_INPUT", "{variables}");
    }
    let mut by_id = facilitator_client(&app).await;
    let unknown_stream = json!({ "streams": [format!("doetank-{}", Uuid::new_v4()), "cafe"] });
    by_id
        .subscribe("e", "subscription($s: [String!]) { events(streams: $s) { position } }", unknown_stream)
        .await;
    assert!(by_id.next(Duration::from_millis(300)).await.is_none(), "a live feed, silent until a write");
}

async fn the_events_query_filters_and_pages_the_log(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    raise(&app, &lead).await;
    write_notes(db, 7).await;
    let query = "query($f: EventFilter, $after: String) { events(filter: $f, first: 3, after: $after) { totalCount \
                 pageInfo { hasNextPage endCursor } edges { node { position streamType type version schemaVersion payload \
                 actor correlationId recordedAt } } } }";
    let mut after = Value::Null;
    let mut positions = Vec::new();
    let stray = Uuid::new_v4();
    loop {
        let data = app.data(query, json!({ "f": { "streamType": "note" }, "after": after })).await;
        assert_eq!(data["events"]["totalCount"], 7);
        for edge in data["events"]["edges"].as_array().expect("edges") {
            assert_eq!(edge["node"]["type"], "NoteTaken");
            assert_eq!(edge["node"]["actor"], "writer");
            positions.push(edge["node"]["position"].as_i64().expect("position"));
        }
        if data["events"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = data["events"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(positions, (3..=9).collect::<Vec<_>>());
    let typed = app.data(query, json!({ "f": { "types": ["MemberRegistered"] } })).await;
    assert_eq!(typed["events"]["totalCount"], 1);
    let future = app.data(query, json!({ "f": { "from": "2999-01-01T00:00:00Z" } })).await;
    assert_eq!(future["events"]["totalCount"], 0);
    // A bound past the year 9999 bounds nothing, on both backends (until the thirty-first
    // session SQLite, comparing times as text, found nothing before `+10000-01-01`).
    let far = json!({ "f": { "streamType": "note", "from": "-0001-01-01T00:00:00Z", "to": "+10000-01-01T00:00:00Z" } });
    assert_eq!(app.data(query, far).await["events"]["totalCount"], 7);
    let lines = "{ timeline(to: \"+10000-01-01T00:00:00Z\") { edges { node { position } } } }";
    let everything = "{ timeline { edges { node { position } } } }";
    assert_eq!(app.data(lines, json!({})).await, app.data(everything, json!({})).await);
    assert!(!app.data(everything, json!({})).await["timeline"]["edges"]
        .as_array()
        .expect("lines")
        .is_empty());
    // A misspelt type would read as an empty history: refused, with the name meant. A type
    // the catalogue does not list but the log holds (`note`, written by this test) is taken.
    for (filter, field, meant) in [
        (json!({ "types": ["MemberRegisterd"] }), "types", "MemberRegistered".to_string()),
        (json!({ "types": ["NoteTaken", "memberregistred"] }), "types", "MemberRegistered".to_string()),
        (json!({ "streamType": "Doetank" }), "streamType", "doetank".to_string()),
        // A stream id a reader typed or copied wrong reads as an empty stream just as well.
        (json!({ "streamId": format!("Doetank-{stray}") }), "streamId", format!("doetank-{stray}")),
        (
            json!({ "streamId": format!("pilot-{}", stray.to_string().to_uppercase()) }),
            "streamId",
            format!("pilot-{stray}"),
        ),
    ] {
        for asked in [query, "query($f: EventFilter) { eventActivity(filter: $f) { count } }"] {
            let refused = app.error(asked, json!({ "f": filter })).await;
            assert_eq!(refused["extensions"]["code"], "BAD_INPUT", "{filter}: {refused}");
            assert_eq!(refused["extensions"]["field"], field, "{filter}: {refused}");
            let message = refused["message"].as_str().unwrap_or_default();
            assert!(message.ends_with(&format!("did you mean \"{meant}\"?")), "{message}");
        }
    }
    // So is a window that ends before it starts (its ends swapped, say).
    let swapped = json!({ "from": "2014-01-01T00:00:00Z", "to": "2013-01-01T00:00:00Z" });
    for asked in [query, "query($f: EventFilter) { eventActivity(filter: $f) { count } }"] {
        let refused = app.error(asked, json!({ "f": swapped })).await;
        assert_eq!(
            (&refused["extensions"]["code"], &refused["extensions"]["field"]),
            (&json!("BAD_INPUT"), &json!("to"))
        );
    }
    let unlike = app.error(query, json!({ "f": { "types": ["Lesson"] } })).await;
    assert!(!unlike["message"].as_str().unwrap_or_default().contains("did you mean"), "{unlike}");
    // An entity's bare id, as `doetank { id }` gives it, is no stream id; a stream id of the
    // right shape that nothing was written to is an empty stream (it may be an informal doetank's).
    let bare = app.error(query, json!({ "f": { "streamId": lead } })).await;
    assert_eq!(bare["extensions"]["field"], "streamId", "{bare}");
    assert!(bare["message"].as_str().unwrap_or_default().contains("not a stream's"), "{bare}");
    let unwritten = app.data(query, json!({ "f": { "streamId": format!("doetank-{stray}") } })).await;
    assert_eq!(unwritten["events"]["totalCount"], 0);

    // Backwards from the newest, a feed's way: each page still in global order, and paging
    // back until there is nothing before covers the filtered log once.
    let back = "query($f: EventFilter, $before: String) { events(filter: $f, last: 3, before: $before) { \
                pageInfo { hasPreviousPage hasNextPage startCursor } edges { node { position type } } } }";
    let mut before = Value::Null;
    let mut pages: Vec<Vec<i64>> = Vec::new();
    loop {
        let data = app.data(back, json!({ "f": { "streamType": "note" }, "before": before })).await;
        let page: Vec<i64> = data["events"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["position"].as_i64().expect("position"))
            .collect();
        assert!(page.windows(2).all(|w| w[0] < w[1]), "a page in global order: {page:?}");
        assert_eq!(data["events"]["pageInfo"]["hasNextPage"], !before.is_null(), "{data}");
        pages.push(page);
        if data["events"]["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = data["events"]["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(pages, [vec![7, 8, 9], vec![4, 5, 6], vec![3]]);
    let newest = app.data("{ events(last: 1) { edges { node { position } } } }", json!({})).await;
    assert_eq!(newest["events"]["edges"][0]["node"]["position"], 9);
    // A position is a cursor too, as a researcher finds it in an export.
    let around = app
        .data(
            "{ after: events(after: \"4\", first: 2) { edges { node { position } } } \
               before: events(before: \"4\", last: 2) { edges { node { position } } } }",
            json!({}),
        )
        .await;
    let positions = |page: &Value| -> Vec<i64> {
        page["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter_map(|e| e["node"]["position"].as_i64())
            .collect()
    };
    assert_eq!((positions(&around["after"]), positions(&around["before"])), (vec![5, 6], vec![2, 3]));
    for (args, field) in [
        ("first: 2, last: 2", "last"),
        ("last: 101", "last"),
        ("last: 1, before: \"x\"", "before"),
        ("first: 1, after: \"-5\"", "after"),
        ("first: 1, after: \"99999999999999999999\"", "after"),
        // Until the thirtieth session: a cursor of -5 ("LTU") read from the start, a position
        // past the head answered an empty page (forever, to a client polling with it), and
        // `before` beside `after` was blamed on `last`.
        ("first: 1, after: \"LTU\"", "after"),
        ("first: 1, after: \"99999\"", "after"),
        ("after: \"1\", before: \"2\"", "before"),
        // A blank stream id matched nothing until the thirtieth session.
        ("filter: { streamId: \" \" }", "streamId"),
    ] {
        let refused = app.error(&format!("{{ events({args}) {{ totalCount }} }}"), json!({})).await;
        assert_eq!(refused["extensions"]["code"], "BAD_INPUT", "{args}: {refused}");
        assert_eq!(refused["extensions"]["field"], field, "{args}: {refused}");
    }

    let anonymous = app.http.get(app.url("/events.ndjson")).send().await.expect("ndjson");
    assert_eq!(anonymous.status().as_u16(), 401, "the log is for signed-in readers");
    let refusal: Value = anonymous.json().await.expect("a refusal is JSON");
    assert_eq!(refusal["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refusal}");
    for (query, field) in
        [("after=-5", "after"), ("after=abc", "after"), ("after=99999", "after"), ("streamId=", "streamId")]
    {
        let bad = app
            .http
            .get(app.url(&format!("/events.ndjson?{query}")))
            .bearer_auth(token("r", Role::Researcher))
            .send()
            .await
            .expect("ndjson");
        assert_eq!(bad.status().as_u16(), 400, "{query}");
        let refusal: Value = bad.json().await.expect("a refusal is JSON");
        assert_eq!(refusal["errors"][0]["extensions"]["code"], "BAD_INPUT", "{refusal}");
        assert_eq!(refusal["errors"][0]["extensions"]["field"], field, "{refusal}");
    }
    let body = app
        .http
        .get(app.url("/events.ndjson?after=4"))
        .bearer_auth(token("r", Role::Researcher))
        .send()
        .await
        .expect("ndjson");
    assert_eq!(
        body.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let text = body.text().await.expect("text");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(
        lines.iter().map(|l| l["position"].as_i64().unwrap_or(0)).collect::<Vec<_>>(),
        (5..=9).collect::<Vec<_>>()
    );
    assert_eq!(lines[0]["metadata"]["actor"], "writer");
}

/// `/events.ndjson` takes the `events` query's filter (stream, stream type, event types, a time
/// window), refuses a parameter it does not know or cannot read naming it, and sends the same
/// lines gzip-compressed to a client that accepts that.
/// The times of the log are its nodes' clocks: they may go back as positions go on (another
/// node's clock behind, a clock set back, an imported history). A page read `from` a time
/// starts where the log's latest time first reached that second (`log_seconds`), not at the
/// start of the log, and still finds every event recorded since: newest first and oldest first,
/// counted, across pages, and in the export. Searching the times themselves (the first event
/// recorded at or after `from`) would miss those recorded earlier but written later.
async fn a_log_read_within_times_finds_every_event_recorded_then_also_where_the_times_go_back(db: &TestDb) {
    let base: chrono::DateTime<chrono::Utc> = "2026-03-02T10:00:00Z".parse().expect("a time");
    let at = |ms: i64| base + chrono::Duration::milliseconds(ms);
    // Milliseconds after `base`, in log order: back by half a second, back across seconds,
    // back before the first, and ahead by more than a second.
    let times = [0, 5_500, 9_200, 6_100, 9_900, 10_000, 3_000, 12_000, 12_500, 20_000, -1_000, 20_000];
    let events = db.import_notes_at(base, &times).await;
    let app = TestApp::spawn(db).await;
    // One more, appended now: the wall clock, far past the imported history.
    write_notes(db, 1).await;
    let now = db.store.read_log(&doetank_store::LogFilter::default(), 12, 1).await.expect("the append");
    let mut recorded: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
        events.iter().map(|e| (e.position, e.recorded_at)).collect();
    recorded.push((13, now[0].recorded_at));

    let forward =
        "query($f: EventFilter, $after: String) { events(filter: $f, first: 2, after: $after) { totalCount \
                   pageInfo { hasNextPage endCursor } edges { node { position } } } }";
    let backward =
        "query($f: EventFilter, $before: String) { events(filter: $f, last: 2, before: $before) { \
                    pageInfo { hasPreviousPage startCursor } edges { node { position } } } }";
    let positions = |data: &Value| -> Vec<i64> {
        data["events"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["position"].as_i64().expect("position"))
            .collect()
    };
    let researcher = token("r", Role::Researcher);
    let mut froms: Vec<chrono::DateTime<chrono::Utc>> = [
        -2_000, -1_000, 0, 1, 3_000, 5_000, 5_500, 6_000, 6_100, 6_101, 9_500, 10_000, 11_000, 12_500,
        13_000, 20_000, 20_001,
    ]
    .into_iter()
    .map(at)
    .collect();
    froms.extend([now[0].recorded_at, now[0].recorded_at + chrono::Duration::seconds(1)]);
    // Each time as a start, as an end, and pairs of them as a window.
    type Time = Option<chrono::DateTime<chrono::Utc>>;
    let mut windows: Vec<(Time, Time)> = froms.iter().map(|from| (Some(*from), None)).collect();
    windows.extend(froms.iter().map(|to| (None, Some(*to))));
    windows.extend(froms.iter().zip(froms.iter().skip(3)).map(|(from, to)| (Some(*from), Some(*to))));
    for (from, to) in windows {
        let within =
            |t: &chrono::DateTime<chrono::Utc>| from.is_none_or(|f| *t >= f) && to.is_none_or(|e| *t < e);
        let expected: Vec<i64> = recorded.iter().filter(|(_, t)| within(t)).map(|(p, _)| *p).collect();
        let mut filter = json!({});
        let mut query: Vec<(&str, String)> = Vec::new();
        for (name, time) in [("from", from), ("to", to)] {
            if let Some(time) = time {
                filter[name] = json!(time.to_rfc3339());
                query.push((name, time.to_rfc3339()));
            }
        }
        let from = format!("{from:?} to {to:?}");
        let (mut after, mut found) = (Value::Null, Vec::new());
        loop {
            let data = app.data(forward, json!({ "f": filter, "after": after })).await;
            assert_eq!(data["events"]["totalCount"], expected.len(), "counted from {from}");
            found.extend(positions(&data));
            if data["events"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = data["events"]["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(found, expected, "oldest first from {from}");
        let (mut before, mut pages) = (Value::Null, Vec::new());
        loop {
            let data = app.data(backward, json!({ "f": filter, "before": before })).await;
            pages.splice(0..0, positions(&data));
            if data["events"]["pageInfo"]["hasPreviousPage"] != true {
                break;
            }
            before = data["events"]["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(pages, expected, "newest first from {from}");
        let export = app
            .http
            .get(app.url("/events.ndjson"))
            .query(&query)
            .bearer_auth(&researcher)
            .send()
            .await
            .expect("ndjson");
        let exported: Vec<i64> = export
            .text()
            .await
            .expect("text")
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("a line")["position"].as_i64().expect("position")
            })
            .collect();
        assert_eq!(exported, expected, "exported from {from}");
        let activity = app
            .data("query($f: EventFilter) { eventActivity(filter: $f) { count } }", json!({ "f": filter }))
            .await;
        let counted: i64 = activity["eventActivity"]
            .as_array()
            .expect("periods")
            .iter()
            .map(|p| p["count"].as_i64().expect("count"))
            .sum();
        assert_eq!(counted, expected.len() as i64, "activity from {from}");
    }
}

async fn the_ndjson_log_filters_as_the_events_query_and_compresses(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    register(&app, "Bas", "TNO", "PUBLIC").await;
    raise(&app, &lead).await;
    write_notes(db, 5).await;
    let researcher = token("r", Role::Researcher);
    let get = |query: &str, gzip: bool| {
        let mut request = app.http.get(app.url(&format!("/events.ndjson{query}"))).bearer_auth(&researcher);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        request.send()
    };
    let lines = |text: &str| -> Vec<Value> {
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    };
    let field = |events: &[Value], name: &str| -> Vec<String> {
        events.iter().map(|e| e[name].as_str().unwrap_or_default().to_string()).collect()
    };
    let read = |query: &'static str| {
        let response = get(query, false);
        async move {
            let response = response.await.expect("ndjson");
            assert_eq!(response.status().as_u16(), 200, "{query}");
            lines(&response.text().await.expect("text"))
        }
    };

    let everything = read("").await;
    assert!(everything.len() >= 8, "{everything:?}");
    // Each line is the event as the store reads it, serialised: the payload's stored text is
    // written as it is (since the thirty-ninth session), which must be what its value writes.
    let whole = get("", false).await.expect("ndjson").text().await.expect("text");
    let stored = db.store.read_log(&doetank_store::LogFilter::default(), 0, 10_000).await.expect("the log");
    let serialised: String =
        stored.iter().map(|e| serde_json::to_string(e).expect("an event serialises") + "\n").collect();
    assert_eq!(whole, serialised);
    let registered = read("?types=MemberRegistered").await;
    assert_eq!(field(&registered, "event_type"), ["MemberRegistered", "MemberRegistered"]);
    let two_types = read("?types=MemberRegistered,%20ChallengeRaised").await;
    assert_eq!(two_types.len(), 3);
    let notes = read("?streamType=note&after=1").await;
    assert_eq!(field(&notes, "stream_type"), ["note"; 5]);
    let first_member = everything[0]["stream_id"].as_str().expect("stream id").to_string();
    let one_stream = get(&format!("?streamId={first_member}"), false).await.expect("ndjson");
    let one_stream = lines(&one_stream.text().await.expect("text"));
    assert!(!one_stream.is_empty() && field(&one_stream, "stream_id").iter().all(|s| *s == first_member));
    assert!(read("?from=2999-01-01T00:00:00Z").await.is_empty());
    assert!(read("?to=2000-01-01T00:00:00%2B01:00").await.is_empty());
    assert_eq!(read("?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z").await, everything);

    for (query, named) in [
        ("?from=yesterday", "from"),
        ("?to=2026-13-01T00:00:00Z", "to"),
        ("?type=NoteTaken", "query"),
        // PostgreSQL refuses to compare U+0000: the stream had ended silently with an empty 200.
        ("?streamId=member-%00", "streamId"),
        ("?types=NoteTaken,%07", "types"),
        ("?types=NoteTaken,NoteTakn", "types"),
        ("?from=2014-01-01T00:00:00Z&to=2013-01-01T00:00:00Z", "to"),
        ("?streamType=notes", "streamType"),
    ] {
        let refused = get(query, false).await.expect("ndjson");
        assert_eq!(refused.status().as_u16(), 400, "{query}");
        let refusal: Value = refused.json().await.expect("a refusal is JSON");
        assert_eq!(refusal["errors"][0]["extensions"]["code"], "BAD_INPUT", "{refusal}");
        assert_eq!(refusal["errors"][0]["extensions"]["field"], named, "{query}: {refusal}");
    }

    let compressed = get("", true).await.expect("ndjson");
    assert_eq!(compressed.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let bytes = compressed.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).expect("gzip");
    assert_eq!(lines(&text), everything);
    let plain = get("", false).await.expect("ndjson");
    assert_eq!(plain.headers().get("content-encoding"), None, "compressed only for who accepts it");

    // The same log as CSV, for a spreadsheet or a data frame (since the thirty-fourth session;
    // until then only `doetank export`, on the database itself, wrote CSV): a header line, then
    // one row an event, the same events as `doetank import` reads them, filtered alike.
    let csv = |query: &'static str| {
        let request = app.http.get(app.url(&format!("/events.csv{query}"))).bearer_auth(&researcher);
        async move { request.send().await.expect("csv") }
    };
    let as_csv = csv("").await;
    assert_eq!(as_csv.status().as_u16(), 200);
    let media = as_csv.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(media.as_deref(), Some("text/csv; charset=utf-8; header=present"));
    let text = as_csv.text().await.expect("text");
    assert!(text.starts_with("position,"), "{text}");
    let positions =
        |events: Vec<doetank_store::RecordedEvent>| events.iter().map(|e| e.position).collect::<Vec<_>>();
    let rows = doetank_api::export::read_export(text.as_bytes()).expect("an importable CSV");
    let lines_positions: Vec<i64> =
        everything.iter().map(|e| e["position"].as_i64().expect("position")).collect();
    assert_eq!(positions(rows), lines_positions);
    let notes = csv("?streamType=note&after=1").await.text().await.expect("text");
    assert_eq!(doetank_api::export::read_export(notes.as_bytes()).expect("CSV").len(), 5);
    let refused = csv("?streamType=notes").await;
    assert_eq!(refused.status().as_u16(), 400);
    let anonymous = app.http.get(app.url("/events.csv")).send().await.expect("csv");
    assert_eq!(anonymous.status().as_u16(), 401, "for signed-in readers, as the NDJSON log");
}

async fn as_of_and_at_version_return_the_past(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let second = register(&app, "Bas", "TNO", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let formed = mutate(
        &app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": "Toen", "challengeId": challenge, "leadId": lead }),
    )
    .await;
    let d = formed["data"]["formDoetank"]["doetank"]["id"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let then = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    mutate(&app, "joinDoetank", "DoetankMemberInput", json!({ "doetankId": d, "memberId": second })).await;
    mutate(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": "BZK" }),
    )
    .await;

    let query = "query($id: ID!, $asOf: DateTime, $v: Int) { doetank(id: $id, asOf: $asOf, atVersion: $v) { version memberCount commissioner phases { phase } members { member { name } } } }";
    let now = app.data(query, json!({ "id": d })).await;
    assert_eq!(now["doetank"]["memberCount"], 2);
    assert_eq!(now["doetank"]["commissioner"], "BZK");
    let past = app.data(query, json!({ "id": d, "asOf": then.to_rfc3339() })).await;
    assert_eq!(past["doetank"]["version"], 2);
    assert_eq!(past["doetank"]["memberCount"], 1);
    assert_eq!(past["doetank"]["commissioner"], Value::Null);
    assert_eq!(past["doetank"]["members"][0]["member"]["name"], "Anna");
    let v3 = app.data(query, json!({ "id": d, "v": 3 })).await;
    assert_eq!(v3["doetank"]["memberCount"], 2);
    assert_eq!(v3["doetank"]["commissioner"], Value::Null);
    let before = app.data(query, json!({ "id": d, "asOf": "2000-01-01T00:00:00Z" })).await;
    assert_eq!(before["doetank"], Value::Null, "it did not exist yet");
    // The stream's last version is a state; the one after it is not, and is not the present.
    let last = app.data(query, json!({ "id": d, "v": 4 })).await;
    assert_eq!(last["doetank"]["commissioner"], "BZK");
    let past_the_end = app.error(query, json!({ "id": d, "v": 5 })).await;
    assert_eq!(past_the_end["extensions"]["code"], "BAD_INPUT", "{past_the_end}");
    assert_eq!(past_the_end["extensions"]["field"], "atVersion");
    let message = past_the_end["message"].as_str().unwrap_or_default();
    assert!(message.contains("the doetank is at version 4"), "{message}");
}

#[test]
fn keepalive_test_helpers_are_exhaustive() {
    // The set of subprotocols the server offers is the set the tests exercise.
    let offered: HashSet<&str> = async_graphql::http::ALL_WEBSOCKET_PROTOCOLS.into_iter().collect();
    assert_eq!(offered, HashSet::from([MODERN, LEGACY]));
}

async fn a_slow_subscriber_falls_back_to_the_log_and_holds_no_one_up(db: &TestDb) {
    // A tiny in-memory window, so the slow subscriber falls far behind it.
    let mut app = doetank_api::App::new(db.store.clone());
    app.feed = doetank_api::live::LogFeed::with_window(db.store.clone(), 16);
    let app = TestApp::spawn_app(app, ServerConfig::default()).await;
    let mut slow = WsClient::connect(&app, MODERN).await;
    slow.init(json!({ "token": facilitator() })).await;
    slow.subscribe("slow", EVENTS, json!({ "after": 0 })).await;
    let mut fast = WsClient::connect(&app, MODERN).await;
    fast.init(json!({ "token": facilitator() })).await;
    fast.subscribe("fast", EVENTS, json!({ "after": 0 })).await;

    write_notes(db, 400).await;
    // The fast one keeps up while the slow one reads nothing at all.
    let head = app.head().await;
    let fast_positions = collect_positions(&mut fast, head).await;
    assert_eq!(fast_positions, (1..=head).collect::<Vec<_>>());

    write_notes(db, 100).await;
    let head = app.head().await;
    let slow_positions = collect_positions(&mut slow, head).await;
    assert_eq!(slow_positions, (1..=head).collect::<Vec<_>>(), "the slow subscriber catches up from the log");
}

/// The events a subscriber hears up to `position`.
async fn events_until(client: &mut WsClient, position: i64) -> Vec<Value> {
    let mut heard: Vec<Value> = Vec::new();
    while heard.last().and_then(|e| e["position"].as_i64()).unwrap_or(0) < position {
        heard.push(client.next_data().await["events"].clone());
    }
    heard
}

/// `/healthz`'s count of shared executions and their subscribers, once it equals `want`.
async fn shared_becomes(app: &TestApp, want: (u64, u64)) {
    healthz_shows(app, "sharedSubscriptions", json!({ "executions": want.0, "subscribers": want.1 })).await;
}

/// Waits until `/healthz` shows `want` as its `field`.
async fn healthz_shows(app: &TestApp, field: &str, want: Value) {
    let mut seen = Value::Null;
    for _ in 0..200 {
        let health: Value =
            app.http.get(app.url("/healthz")).send().await.expect("get").json().await.expect("json");
        seen = health[field].clone();
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/healthz's {field}: want {want}, last seen {seen}");
}

async fn subscribers_asking_the_same_from_now_share_one_execution(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let from_now = "subscription { events(streams: [\"doetank\"]) { position type } }";
    let connect = |token: String| {
        let app = &app;
        async move {
            let mut client = WsClient::connect(app, MODERN).await;
            client.init(json!({ "token": token })).await;
            client.subscribe("1", from_now, json!({})).await;
            client
        }
    };
    // Two facilitators' dashboards share one execution; an outside member, same text, has its own.
    let mut first = connect(facilitator()).await;
    let mut second = connect(facilitator()).await;
    let mut outsider = connect(member(&Uuid::new_v4().to_string())).await;
    shared_becomes(&app, (2, 3)).await;
    // With `after`, a subscriber replays on its own cursor: not shared while it does.
    let mut replaying = WsClient::connect(&app, MODERN).await;
    replaying.init(json!({ "token": facilitator() })).await;
    replaying.subscribe("1", EVENTS, json!({ "after": 0, "streams": ["doetank"] })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    shared_becomes(&app, (2, 3)).await;

    // An informal doetank: its events reach the facilitators only (rule 5), shared or not.
    let form = json!({ "name": "Gedeeld", "challengeId": challenge, "leadId": lead });
    let formed = mutate(&app, "formDoetank", "FormDoetankInput", form).await;
    let position = formed["data"]["formDoetank"]["result"]["position"].as_i64().expect("position");
    let formed_at = position;
    let heard = events_until(&mut first, position).await;
    assert_eq!(heard[0]["type"], "DoetankFormed", "{heard:?}");
    assert_eq!(events_until(&mut second, position).await, heard);
    let replayed = events_until(&mut replaying, position).await;
    assert_eq!(
        replayed.iter().map(|e| &e["position"]).collect::<Vec<_>>(),
        heard.iter().map(|e| &e["position"]).collect::<Vec<_>>()
    );
    assert!(outsider.next(Duration::from_millis(300)).await.is_none(), "an informal doetank's event leaked");
    // Caught up, it takes a seat (in an execution of its own text, which differs).
    shared_becomes(&app, (3, 4)).await;

    // One leaves; the other still hears. A late joiner hears from its joining on, like the rest.
    first.close().await;
    shared_becomes(&app, (3, 3)).await;
    let mut late = connect(facilitator()).await;
    shared_becomes(&app, (3, 4)).await;
    let d = formed["data"]["formDoetank"]["doetank"]["id"].as_str().expect("id").to_string();
    let commissioned = mutate(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": "BZK" }),
    )
    .await;
    let position =
        commissioned["data"]["attachCommissioner"]["result"]["position"].as_i64().expect("position");
    let heard = events_until(&mut second, position).await;
    assert!(heard.iter().all(|e| e["position"].as_i64() > Some(formed_at)), "{heard:?}");
    assert_eq!(events_until(&mut late, position).await, heard, "the late joiner hears what the others hear");
    // When the last subscriber of an execution goes, so does the execution.
    assert_eq!(
        events_until(&mut replaying, position).await.iter().map(|e| &e["position"]).collect::<Vec<_>>(),
        heard.iter().map(|e| &e["position"]).collect::<Vec<_>>(),
        "seated, it hears what the others hear"
    );
    for client in [second, late, outsider, replaying] {
        client.close().await;
    }
    shared_becomes(&app, (0, 0)).await;
}

/// The code of the error a subscription answered with, in either of the ways the protocol has.
fn error_code(incoming: Option<Incoming>) -> Value {
    match incoming {
        Some(Incoming::Next(payload)) => payload["errors"][0]["extensions"]["code"].clone(),
        Some(Incoming::Other(message)) => message["payload"][0]["extensions"]["code"].clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// An execution that ends with its first answer (here: the log is for signed-in readers) is
/// shared too; every subscriber gets that answer, also one joining as it is being sent.
async fn a_shared_subscription_refused_at_its_start_is_refused_to_each_subscriber(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    // A joiner that comes as the answer is being sent is a race: ten rounds of four (without
    // the joiner's own execution, a round fails about every third run of three).
    for _ in 0..10 {
        let mut clients = Vec::new();
        for _ in 0..4 {
            let mut client = WsClient::connect(&app, MODERN).await;
            client.init(json!({})).await;
            clients.push(client);
        }
        for client in &mut clients {
            client.subscribe("1", "subscription { events { position } }", json!({})).await;
        }
        for client in &mut clients {
            assert_eq!(error_code(client.next(Duration::from_secs(5)).await), "UNAUTHENTICATED");
        }
    }
    shared_becomes(&app, (0, 0)).await;
}

/// The close code a socket ended with.
async fn close_code(client: &mut WsClient) -> Option<u16> {
    match client.next(Duration::from_secs(5)).await {
        Some(Incoming::Closed(code, _)) => code,
        other => panic!("expected the socket to close, got {other:?}"),
    }
}

async fn misuse_of_the_protocol_closes_the_socket_with_its_code(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let mut early = WsClient::connect(&app, MODERN).await;
    early.subscribe("1", EVENTS, json!({})).await;
    assert_eq!(close_code(&mut early).await, Some(4401), "subscribe before connection_init");

    let mut garbled = WsClient::connect(&app, MODERN).await;
    garbled.send_text("{ not json").await;
    assert_eq!(close_code(&mut garbled).await, Some(4400), "not a message");

    let mut forged = WsClient::connect(&app, MODERN).await;
    forged.send(json!({ "type": "connection_init", "payload": { "token": "not.a.token" } })).await;
    assert_eq!(close_code(&mut forged).await, Some(4403), "a bad token");

    let mut legacy = WsClient::connect(&app, LEGACY).await;
    legacy.send(json!({ "type": "connection_init", "payload": { "token": "not.a.token" } })).await;
    match legacy.next(Duration::from_secs(5)).await {
        Some(Incoming::Other(v)) => assert_eq!(v["type"], "connection_error", "{v}"),
        other => panic!("expected connection_error, got {other:?}"),
    }
    assert_eq!(close_code(&mut legacy).await, Some(4403));

    let mut twice = WsClient::connect(&app, MODERN).await;
    twice.init(json!({ "token": facilitator() })).await;
    twice.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(close_code(&mut twice).await, Some(4429), "a second connection_init");

    let mut same_id = WsClient::connect(&app, MODERN).await;
    same_id.init(json!({ "token": facilitator() })).await;
    same_id.send(json!({ "type": "ping" })).await;
    match same_id.next(Duration::from_secs(5)).await {
        Some(Incoming::Other(v)) => assert_eq!(v["type"], "pong", "{v}"),
        other => panic!("expected pong, got {other:?}"),
    }
    same_id.subscribe("a", EVENTS, json!({})).await;
    same_id.subscribe("a", EVENTS, json!({ "after": 0 })).await;
    assert_eq!(close_code(&mut same_id).await, Some(4409), "an id already running");
}

/// Stopped by its client: nothing more for it, and its id free again. graphql-transport-ws
/// answers a client's `complete` with nothing (graphql-ws's own server stopped echoing it in
/// 5.11.1: a client taking the id up again would read the echo as the new operation's end;
/// until the thirty-first session it was echoed); the legacy protocol answers `stop` with
/// `complete`, as its servers do.
async fn a_stopped_subscription_hears_nothing_more_and_frees_its_id(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    // One shared (from the head, no `after`), one executed for its socket alone.
    let queries = ["subscription { events { position } }", EVENTS];
    for (protocol, query) in [MODERN, LEGACY].into_iter().flat_map(|p| queries.map(|q| (p, q))) {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({ "token": facilitator() })).await;
        client.subscribe("a", query, json!({})).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        write_notes(db, 1).await;
        let head = app.head().await;
        assert_eq!(client.next_data().await["events"]["position"], head);
        if protocol == MODERN {
            client.send(json!({ "type": "complete", "id": "a" })).await;
            // Nothing answers `complete`: a `ping` after it is answered once the socket has
            // taken it, so the next note is written after the stop (else the note can be
            // answered first on a loaded machine, as a clean-clone CI run once found).
            client.send(json!({ "type": "ping" })).await;
            match client.next(Duration::from_secs(5)).await {
                Some(Incoming::Other(v)) => assert_eq!(v["type"], "pong", "{v}"),
                other => panic!("expected pong, got {other:?}"),
            }
        } else {
            client.send(json!({ "type": "stop", "id": "a" })).await;
            match client.next(Duration::from_secs(5)).await {
                Some(Incoming::Other(v)) => assert_eq!(v, json!({ "type": "complete", "id": "a" })),
                other => panic!("expected complete, got {other:?}"),
            }
        }
        write_notes(db, 1).await;
        assert!(
            client.next(Duration::from_millis(300)).await.is_none(),
            "{protocol}: nothing after complete"
        );
        client.subscribe("a", EVENTS, json!({ "after": head })).await;
        assert_eq!(client.next_data().await["events"]["position"], head + 1, "the id is free again");
    }
}

/// A query over a WebSocket is answered with two frames written one after the other, `next` and
/// `complete`. With Nagle's algorithm on the server's socket the second waits until the client
/// acknowledges the first, which a client with nothing to send does late (Linux: 40 ms at the
/// least): every `complete` came 41–47 ms after its `next`. With TCP_NODELAY the quickest of ten
/// is a fraction of a millisecond; only a machine stalled for 25 ms at every one of the ten
/// would fail it.
#[tokio::test]
async fn a_query_over_a_websocket_completes_right_after_its_answer() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db).await;
    let mut client = facilitator_client(&app).await;
    let mut quickest = Duration::MAX;
    for id in 0..10 {
        client.subscribe(&format!("q{id}"), "{ doetanks(first: 1) { totalCount } }", json!({})).await;
        let data = client.next_data().await;
        assert!(data["doetanks"]["totalCount"].is_number(), "{data}");
        let answered = std::time::Instant::now();
        match client.next(Duration::from_secs(10)).await {
            Some(Incoming::Other(frame)) if frame["type"] == "complete" => {}
            other => panic!("expected the query's `complete`, got {other:?}"),
        }
        quickest = quickest.min(answered.elapsed());
    }
    assert!(
        quickest < Duration::from_millis(25),
        "`complete` waited {quickest:?} after `next` at the quickest of ten: the server's socket delays small writes"
    );
    client.close().await;
}

/// A WebSocket runs at most its limit of operations at once: one more is refused with
/// `TOO_MANY_OPERATIONS` (graphql-transport-ws's `error`; the legacy protocol's `data` and
/// `complete`) and the others go on; once one completes, another may start.
#[tokio::test]
async fn a_socket_runs_at_most_its_limit_of_operations() {
    let db = TestDb::sqlite().await;
    let config = ServerConfig { max_operations_per_socket: 2, ..ServerConfig::default() };
    let app = TestApp::spawn_with(&db, config).await;
    let log = "subscription { events { position } }";
    for protocol in [MODERN, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({ "token": facilitator() })).await;
        client.subscribe("a", log, json!({})).await;
        client.subscribe("b", "subscription { events(after: 0) { position } }", json!({})).await;
        client.subscribe("c", log, json!({})).await;
        // b replays the log from its start (events of the round before): c's refusal comes
        // among its answers.
        let refusal = loop {
            match client.next(Duration::from_secs(5)).await {
                Some(Incoming::Next(payload)) if payload.get("errors").is_none() => continue,
                other => break other,
            }
        };
        if protocol == MODERN {
            match refusal {
                Some(Incoming::Other(error)) if error["type"] == "error" && error["id"] == "c" => {
                    assert_eq!(error["payload"][0]["extensions"]["code"], "TOO_MANY_OPERATIONS", "{error}");
                }
                other => panic!("expected an error for c, got {other:?}"),
            }
        } else {
            assert_eq!(error_code(refusal), "TOO_MANY_OPERATIONS");
            // Then c's completion, b's replay still interleaved.
            loop {
                match client.next(Duration::from_secs(5)).await {
                    Some(Incoming::Next(payload)) if payload.get("errors").is_none() => continue,
                    Some(Incoming::Other(done)) if done["type"] == "complete" && done["id"] == "c" => break,
                    other => panic!("expected c's completion, got {other:?}"),
                }
            }
        }
        // One completes; another may start, and every running one hears the next event.
        let stop = if protocol == MODERN { "complete" } else { "stop" };
        client.send(json!({ "type": stop, "id": "a" })).await;
        client.subscribe("c", log, json!({})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        write_notes(&db, 1).await;
        let head = app.head().await;
        // b (which replays from the start) and the new c: two answers with the new position.
        let mut heard = 0;
        while heard < 2 {
            match client.next(Duration::from_secs(5)).await {
                Some(Incoming::Next(payload)) if payload["data"]["events"]["position"] == head => heard += 1,
                Some(Incoming::Next(payload)) => assert!(payload.get("errors").is_none(), "{payload}"),
                Some(Incoming::Other(done)) if done["type"] == "complete" && done["id"] == "a" => {}
                other => panic!("{protocol}: expected the new event, got {other:?}"),
            }
        }
        client.close().await;
    }
}

/// Server-sent events, one `event:` and one `data:` line each, read from `response` until
/// `want` of them came (or 10 s passed), as a client that follows the SSE spec dispatches them.
async fn sse_events(response: &mut reqwest::Response, want: usize) -> Vec<(String, String)> {
    sse_events_with_ids(response, want).await.into_iter().map(|(_, event, data)| (event, data)).collect()
}

/// [`sse_events`], each with its `id:` if it has one.
async fn sse_events_with_ids(
    response: &mut reqwest::Response,
    want: usize,
) -> Vec<(Option<String>, String, String)> {
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < want {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim_start().to_string())
            };
            // Read as `EventSource` reads them: keep-alives are comments (`:`), not events, and
            // an event without a `data:` line is not dispatched (until the thirty-second session
            // `complete` had none, so such a client never saw it).
            if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                events.push((field("id:"), event, data));
            }
        }
    }
    events
}

/// `POST /graphql/stream` answers as server-sent events (GraphQL over SSE), for dashboards
/// behind proxies that do not pass WebSockets: a subscription's answers as `next` events,
/// live; a query's one answer and `complete`; a refusal the same way, with its code.
async fn subscriptions_are_answered_as_server_sent_events_too(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let stream = |token: Option<String>, query: &str| {
        let mut request = app
            .http
            .post(app.url("/graphql/stream"))
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("POST /graphql/stream") }
    };
    let mut live = stream(Some(facilitator()), "subscription { events { position type } }").await;
    assert_eq!(live.status().as_u16(), 200);
    assert!(live
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")));
    // Not held back by a proxy's buffer (nginx reads this), nor kept by a cache.
    assert_eq!(live.headers().get("x-accel-buffering").map(|v| v.as_bytes()), Some(&b"no"[..]));
    assert_eq!(live.headers().get("cache-control").map(|v| v.as_bytes()), Some(&b"no-cache"[..]));
    shared_becomes(&app, (1, 1)).await;
    write_notes(db, 2).await;
    let head = app.head().await;
    let events = sse_events(&mut live, 2).await;
    let positions: Vec<i64> = events
        .iter()
        .map(|(event, data)| {
            assert_eq!(event, "next", "{data}");
            let data: Value = serde_json::from_str(data).expect("a GraphQL answer");
            assert_eq!(data["data"]["events"]["type"], "NoteTaken");
            data["data"]["events"]["position"].as_i64().expect("position")
        })
        .collect();
    assert_eq!(positions, [head - 1, head]);

    let mut query = stream(None, "{ doetanks { totalCount } }").await;
    let events = sse_events(&mut query, 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert!(answer["data"]["doetanks"]["totalCount"].is_number(), "{answer}");
    assert_eq!(events[1].0, "complete");

    let mut refused = stream(None, "subscription { events { position } }").await;
    let events = sse_events(&mut refused, 2).await;
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{answer}");
    assert_eq!(events.get(1).map(|e| e.0.as_str()), Some("complete"));
    let mut unknown = stream(Some(facilitator()), "subscription { nope }").await;
    let events = sse_events(&mut unknown, 2).await;
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{answer}");

    // A stream ends with its token, as a WebSocket then closes with 4401 (until the
    // thirty-first session it outlived the token).
    let short = auth().mint("staff", Role::Facilitator, chrono::Duration::seconds(2)).expect("mint");
    let mut ending = stream(Some(short), "subscription { events { position } }").await;
    let events = sse_events(&mut ending, 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{answer}");
    assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("expired"), "{answer}");
    assert_eq!(events[1].0, "complete");

    // A quiet stream carries a comment now and then, so that proxies keep it open.
    let config = ServerConfig { keepalive: Duration::from_millis(100), ..ServerConfig::default() };
    let quick = TestApp::spawn_with(db, config).await;
    let mut quiet = quick
        .http
        .post(quick.url("/graphql/stream"))
        .header("accept", "text/event-stream")
        .bearer_auth(facilitator())
        .json(&json!({ "query": "subscription { events { position } }" }))
        .send()
        .await
        .expect("POST /graphql/stream");
    let first = tokio::time::timeout(Duration::from_secs(5), quiet.chunk()).await;
    let first = first.ok().and_then(Result::ok).flatten().unwrap_or_default();
    assert_eq!(&first[..], b":\n\n", "a keep-alive comment");
}

/// What Apollo Client's `HttpLink` sends for a subscription.
const APOLLO_SUBSCRIPTION_ACCEPT: &str =
    "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";

/// A multipart answer read as Apollo Client reads it: a part is handed on when the delimiter
/// after it arrives, heartbeats (`{}`) are left out; with whether the body ended with the
/// closing delimiter.
async fn multipart_parts(response: &mut reqwest::Response, want: usize) -> (Vec<Value>, bool) {
    const DELIMITER: &str = "\r\n--graphql";
    let mut text = String::new();
    let mut parts = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(at) = text.find(DELIMITER) {
            let message: String = text.drain(..at + DELIMITER.len()).collect();
            let message = &message[..at];
            if let Some((headers, body)) = message.split_once("\r\n\r\n") {
                assert!(
                    headers.to_ascii_lowercase().contains("content-type: application/json"),
                    "{message:?}"
                );
                let body: Value = serde_json::from_str(body).expect("a part of JSON");
                if body != json!({}) {
                    parts.push(body);
                }
            }
        }
        if parts.len() >= want {
            return (parts, false);
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            // The body's end: whole when the closing delimiter's dashes were the last of it.
            Ok(Ok(None)) => return (parts, text == "--\r\n"),
            _ => return (parts, false),
        }
    }
}

/// A subscription in a POST to `/graphql` whose client accepts multipart parts (Apollo
/// Client's `HttpLink` without a WebSocket link) is answered in them, live: each answer a part
/// `{"payload": ...}` handed on as it happens, refusals inside the payload, an expired token
/// as a part without payload, heartbeats on a quiet stream, and the closing delimiter at the
/// end. Until the thirty-third session such a client was refused.
async fn subscriptions_are_answered_in_multipart_parts_as_apollo_client_asks(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let subscribe = |app: &TestApp, token: String, query: &str| {
        let request = app
            .http
            .post(app.url("/graphql"))
            .header("accept", APOLLO_SUBSCRIPTION_ACCEPT)
            .bearer_auth(token)
            .json(&json!({ "query": query }));
        async move { request.send().await.expect("POST /graphql") }
    };
    let mut live = subscribe(&app, facilitator(), "subscription { events { position type } }").await;
    assert_eq!(live.status().as_u16(), 200);
    let content_type = live.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_string());
    let content_type = content_type.unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/mixed") && content_type.contains("boundary=\"graphql\""),
        "{content_type}"
    );
    assert_eq!(live.headers().get("x-accel-buffering").map(|v| v.as_bytes()), Some(&b"no"[..]));
    shared_becomes(&app, (1, 1)).await;
    // One event at a time: each part must arrive without waiting for the one after it.
    for _ in 0..2 {
        write_notes(db, 1).await;
        let head = app.head().await;
        let (parts, ended) = multipart_parts(&mut live, 1).await;
        assert!(!ended);
        assert_eq!(parts.len(), 1, "the answer came at once: {parts:?}");
        assert_eq!(parts[0]["payload"]["data"]["events"], json!({ "position": head, "type": "NoteTaken" }));
    }

    let mut unknown = subscribe(&app, facilitator(), "subscription { nope }").await;
    let (parts, ended) = multipart_parts(&mut unknown, 2).await;
    assert!(ended, "{parts:?}");
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["payload"]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

    // A token's end is the transport's refusal: no payload, the errors beside it.
    let short = auth().mint("staff", Role::Facilitator, chrono::Duration::seconds(2)).expect("mint");
    let mut ending = subscribe(&app, short, "subscription { events { position } }").await;
    let (parts, ended) = multipart_parts(&mut ending, 2).await;
    assert!(ended, "{parts:?}");
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["payload"], Value::Null, "{parts:?}");
    assert_eq!(parts[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{parts:?}");

    // A quiet stream carries the protocol's heartbeat, an empty part.
    let config = ServerConfig { keepalive: Duration::from_millis(100), ..ServerConfig::default() };
    let quick = TestApp::spawn_with(db, config).await;
    let mut quiet = subscribe(&quick, facilitator(), "subscription { events { position } }").await;
    let mut text = Vec::new();
    while !String::from_utf8_lossy(&text).contains("{}") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), quiet.chunk()).await;
        let chunk = chunk.ok().and_then(Result::ok).flatten().expect("a heartbeat");
        text.extend_from_slice(&chunk);
    }
    assert_eq!(
        String::from_utf8_lossy(&text),
        "\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{}\r\n--graphql"
    );
}

/// Appends a note once `stream` (server-sent events of `events { position }`) follows the log
/// (the shared executions' count is `shared`), and checks that the note is what it hears next.
async fn hears_the_next_note(app: &TestApp, db: &TestDb, stream: &mut reqwest::Response, shared: (u64, u64)) {
    shared_becomes(app, shared).await;
    write_notes(db, 1).await;
    let head = app.head().await;
    let events = sse_events(stream, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(answer["data"]["events"]["position"], head, "{answer}");
}

/// `/graphql` takes event streams as the graphql-sse client asks them at the endpoint's URL: a
/// subscription whose client accepts `text/event-stream` is answered as server-sent events, and
/// so is a query whose client accepts nothing else; a client that takes JSON gets a query's
/// answer as JSON. A browser's `EventSource` gets a subscription, or a query, by URL.
async fn graphql_takes_event_streams_as_graphql_sse_asks(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let post = |accept: &str, query: &str| {
        let request = app
            .http
            .post(app.url("/graphql"))
            .header("accept", accept)
            .bearer_auth(facilitator())
            .json(&json!({ "query": query }));
        async move { request.send().await.expect("POST /graphql") }
    };
    let is_event_stream = |response: &reqwest::Response| {
        response.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    };
    let mut live = post("text/event-stream", "subscription { events { position } }").await;
    assert!(is_event_stream(&live));
    hears_the_next_note(&app, db, &mut live, (1, 1)).await;

    let mut query = post("text/event-stream", "{ doetanks { totalCount } }").await;
    assert!(is_event_stream(&query));
    let events = sse_events(&mut query, 2).await;
    let kinds: Vec<&str> = events.iter().map(|(event, _)| event.as_str()).collect();
    assert_eq!(kinds, ["next", "complete"], "{events:?}");

    let json_too = post("text/event-stream, application/json", "{ doetanks { totalCount } }").await;
    assert!(!is_event_stream(&json_too));
    let answer: Value = json_too.json().await.expect("JSON");
    assert!(answer["data"]["doetanks"]["totalCount"].is_number(), "{answer}");

    // A browser's `EventSource` GETs its URL, accepting `text/event-stream`: a subscription in
    // the query string is answered on the stream; a mutation is still refused over GET.
    let get = |query: &str| {
        let request = app
            .http
            .get(app.url("/graphql"))
            .query(&[("query", query)])
            .header("accept", "text/event-stream")
            .bearer_auth(facilitator());
        async move { request.send().await.expect("GET /graphql") }
    };
    let mut by_url = get("subscription { events { position } }").await;
    assert!(is_event_stream(&by_url));
    hears_the_next_note(&app, db, &mut by_url, (1, 2)).await;
    // A query by URL too (until then it was JSON, which an `EventSource` takes for a failure
    // and asks again every few seconds).
    let mut query_by_url = get("{ doetanks { totalCount } }").await;
    assert!(is_event_stream(&query_by_url));
    let events = sse_events(&mut query_by_url, 2).await;
    let kinds: Vec<&str> = events.iter().map(|(event, _)| event.as_str()).collect();
    assert_eq!(kinds, ["next", "complete"], "{events:?}");
    let head = app.head().await;
    let mutation = get(r#"mutation { registerMember(input: { name: "Bas", organisation: "TNO", sector: PUBLIC }) { member { id } } }"#).await;
    assert_eq!(mutation.status().as_u16(), 405);
    assert_eq!(app.head().await, head, "a GET wrote nothing");
}

/// Server-sent events and multipart streams asking the same from now on share one execution,
/// with each other and with WebSockets, as sockets do (until the thirty-third session each
/// stream had its own: a thousand dashboards on Apollo Client's `HttpLink` were a thousand
/// executions of every event); a stream that goes leaves it.
async fn http_streams_asking_the_same_from_now_share_one_execution(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let query = "subscription { events { position } }";
    let open = |path: &'static str, accept: &'static str| {
        let request = app
            .http
            .post(app.url(path))
            .header("accept", accept)
            .bearer_auth(facilitator())
            .json(&json!({ "query": query }));
        async move { request.send().await.expect("POST") }
    };
    let mut one = open("/graphql/stream", "text/event-stream").await;
    let mut two = open("/graphql", "text/event-stream").await;
    let mut parts = open("/graphql", APOLLO_SUBSCRIPTION_ACCEPT).await;
    let mut socket = WsClient::connect(&app, MODERN).await;
    socket.init(json!({ "token": facilitator() })).await;
    socket.subscribe("1", query, json!({})).await;
    shared_becomes(&app, (1, 4)).await;
    // The HTTP streams are counted for an operator, as sockets are.
    healthz_shows(&app, "eventStreams", json!(3)).await;
    write_notes(db, 1).await;
    let head = app.head().await;
    for stream in [&mut one, &mut two] {
        let events = sse_events(stream, 1).await;
        let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
        assert_eq!(answer["data"]["events"]["position"], head, "{answer}");
    }
    let (heard, _) = multipart_parts(&mut parts, 1).await;
    assert_eq!(heard[0]["payload"]["data"]["events"]["position"], head, "{heard:?}");
    assert_eq!(socket.next_data().await["events"]["position"], head);
    drop(one);
    shared_becomes(&app, (1, 3)).await;
    drop((two, parts, socket));
    shared_becomes(&app, (0, 0)).await;
    healthz_shows(&app, "eventStreams", json!(0)).await;
}

/// `/healthz`'s shared executions and their subscribers, once `subscribers` are seated.
async fn seated(app: &TestApp, subscribers: u64) -> u64 {
    let mut seen = Value::Null;
    for _ in 0..400 {
        let health: Value =
            app.http.get(app.url("/healthz")).send().await.expect("get").json().await.expect("json");
        seen = health["sharedSubscriptions"].clone();
        if seen["subscribers"] == subscribers {
            return seen["executions"].as_u64().expect("a count");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("want {subscribers} subscribers seated, last seen {seen}");
}

/// Subscribers that start after a cursor — a socket's `after` on reconnecting, a stream's
/// `Last-Event-ID` — replay what they missed on their own execution, then take a seat in a
/// shared one (until the thirty-fifth session they ran alone for good: after a deploy, every
/// dashboard that came back cost an execution per event), hearing each event once, in order,
/// across the seat, while eight writers append.
async fn subscribers_that_replay_share_once_caught_up_and_hear_each_event_once(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    write_notes(db, 20).await;
    // A dashboard from now on, asking as the others do.
    let mut from_now = facilitator_client(&app).await;
    from_now.subscribe("1", EVENTS, json!({ "after": null })).await;
    shared_becomes(&app, (1, 1)).await;
    let start = app.head().await;

    let writing = eight_writers(db);
    // Sockets reconnecting with the last position each saw, and event streams with their
    // `Last-Event-ID`, while the writers write.
    let afters = [0, 3, 7, 12, 19, start];
    let mut sockets = Vec::new();
    for after in afters {
        let mut client = facilitator_client(&app).await;
        client.subscribe("1", EVENTS, json!({ "after": after })).await;
        sockets.push((after, client));
    }
    let stream_query = "subscription { events { position } }".to_string();
    let mut streams = Vec::new();
    for after in [5, 15] {
        streams.push((after, resuming(&app, stream_query.clone(), Some(after.to_string())).await));
    }
    writing.await;
    let head = app.head().await;
    assert_eq!(head, start + 200);
    assert_eq!(collect_positions(&mut from_now, head).await, (start + 1..=head).collect::<Vec<_>>());
    for (after, client) in &mut sockets {
        let heard = collect_positions(client, head).await;
        assert_eq!(heard, (*after + 1..=head).collect::<Vec<_>>(), "after {after}");
    }
    for (after, stream) in &mut streams {
        let want = usize::try_from(head - *after).expect("a count");
        let heard: Vec<(i64, i64)> = sse_events_with_ids(stream, want)
            .await
            .iter()
            .map(|(id, _, data)| {
                let answer: Value = serde_json::from_str(data).expect("JSON");
                let position = answer["data"]["events"]["position"].as_i64().expect("a position");
                (id.as_deref().expect("an id").parse().expect("a number"), position)
            })
            .collect();
        assert_eq!(heard, (*after + 1..=head).map(|p| (p, p)).collect::<Vec<_>>(), "after {after}");
    }
    // All caught up: every one seated, in the execution from now or in one of those that caught
    // up (one per text: the streams ask another), not in one each.
    let executions = seated(&app, 1 + 6 + 2).await;
    assert!((2..=3).contains(&executions), "{executions} executions");

    // Live from here, each once, and nothing twice at the seat.
    write_notes(db, 1).await;
    let next = head + 1;
    for (_, client) in sockets.iter_mut().chain([(0, from_now)].iter_mut()) {
        assert_eq!(collect_positions(client, next).await, [next]);
        assert!(client.next(Duration::from_millis(100)).await.is_none(), "heard twice");
    }
    for (_, stream) in &mut streams {
        let events = sse_events_with_ids(stream, 1).await;
        assert_eq!(events[0].0, Some(next.to_string()), "{events:?}");
    }
    let (_, mut stream) = streams.pop().expect("a stream");
    let more = tokio::time::timeout(Duration::from_millis(200), stream.chunk()).await;
    assert!(
        more.is_err() || matches!(&more, Ok(Ok(Some(chunk))) if chunk.starts_with(b":")),
        "heard twice: {more:?}"
    );
}

/// A replay is written as fast as its client reads: one far longer than a socket's bound
/// (1 MiB, past which a shared subscriber is dropped with `LAGGED`) waits for a client that
/// reads late, over a socket and over an event stream alike, and then takes its seat.
async fn a_replay_goes_as_fast_as_its_client_reads_and_is_never_lagged(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let start = app.head().await;
    // 2,000 notes of 10 kB: 20 MB, more than the socket's bound and the kernel's buffers.
    let stream = StreamId::new("note", Uuid::new_v4());
    let text = "x".repeat(10_000);
    let notes: Vec<EncodedEvent> = (0..2_000)
        .map(|i| EncodedEvent {
            event_type: "NoteTaken".into(),
            schema_version: 1,
            payload: json!({ "i": i, "text": text }),
        })
        .collect();
    db.store.append(&stream, ExpectedVersion::Any, &notes, &Metadata::new("writer")).await.expect("append");
    let head = app.head().await;
    let query = "subscription($after: Int) { events(after: $after) { position payload } }";
    let mut socket = facilitator_client(&app).await;
    socket.subscribe("1", query, json!({ "after": start })).await;
    let mut events =
        resuming(&app, "subscription { events { position payload } }".into(), Some(start.to_string())).await;
    // Neither client reads for a while: both replays wait for them, counted for an operator.
    healthz_shows(&app, "replayingSubscriptions", json!(2)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    healthz_shows(&app, "replayingSubscriptions", json!(2)).await;
    let mut heard = Vec::new();
    while heard.last().copied().unwrap_or(start) < head {
        let data = socket.next_data().await;
        heard.push(data["events"]["position"].as_i64().expect("a position"));
    }
    assert_eq!(heard, (start + 1..=head).collect::<Vec<_>>());
    let streamed: Vec<Option<String>> =
        sse_events_with_ids(&mut events, 2_000).await.into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(streamed, (start + 1..=head).map(|p| Some(p.to_string())).collect::<Vec<_>>());
    // Both then take a seat (each in the execution of its own text).
    shared_becomes(&app, (2, 2)).await;
    healthz_shows(&app, "replayingSubscriptions", json!(0)).await;
    write_notes(db, 1).await;
    assert_eq!(socket.next_data().await["events"]["position"], head + 1);
    assert_eq!(sse_events_with_ids(&mut events, 1).await[0].0, Some((head + 1).to_string()));
}

/// The title of the next lesson a `lessonRecorded` subscriber hears.
async fn title(client: &mut WsClient) -> Value {
    client.next_data().await["lessonRecorded"]["title"].clone()
}

/// `lead` records a lesson of `kind` titled `title` in doetank `d`.
async fn record_lesson(app: &TestApp, d: &str, lead: &str, kind: &str, title: &str) {
    let input = json!({ "doetankId": d, "kind": kind, "title": title, "body": "b" });
    let recorded = mutate_as(app, &member(lead), "recordLesson", "RecordLessonInput", input).await;
    assert!(recorded.get("errors").is_none(), "{recorded:#}");
}

/// `GET /graphql` of `query` as a facilitator's `EventSource` asks it, reconnecting with
/// `last_event_id` when it has one.
async fn resuming(app: &TestApp, query: String, last_event_id: Option<String>) -> reqwest::Response {
    let request = app.http.get(app.url("/graphql")).query(&[("query", query)]);
    let mut request = request.header("accept", "text/event-stream").bearer_auth(facilitator());
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("GET /graphql")
}

/// A browser's `EventSource` reconnects by itself, sending the id of the last event it got as
/// `Last-Event-ID` to the URL it first opened. Each answer of a resumable subscription carries
/// its cursor as that id, and a stream opened with one starts after it, whatever `after` the URL
/// holds (until the thirty-fourth session a reconnected dashboard lost what was written while
/// it was away, or heard everything since its first `after` again).
async fn an_event_stream_that_reconnects_resumes_after_its_last_event_id(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let open = |query: &str, last_event_id: Option<String>| resuming(&app, query.to_string(), last_event_id);
    let heard = |events: &[(Option<String>, String, String)]| -> Vec<(Option<i64>, i64)> {
        events
            .iter()
            .map(|(id, event, data)| {
                assert_eq!(event, "next", "{data}");
                let answer: Value = serde_json::from_str(data).expect("JSON");
                let position = answer["data"]["events"]["position"].as_i64().expect("a position");
                (id.as_deref().map(|id| id.parse().expect("a numeric id")), position)
            })
            .collect()
    };
    let start = app.head().await;
    let from_start = format!("subscription {{ events(after: {start}) {{ position }} }}");
    let mut first = open(&from_start, None).await;
    write_notes(db, 2).await;
    let got = heard(&sse_events_with_ids(&mut first, 2).await);
    assert_eq!(got, [(Some(start + 1), start + 1), (Some(start + 2), start + 2)]);
    // The connection drops; three notes are written while the dashboard is away. It asks its
    // URL again, `after` and all, with the last id it got.
    drop(first);
    write_notes(db, 3).await;
    let mut again = open(&from_start, Some((start + 2).to_string())).await;
    let got = heard(&sse_events_with_ids(&mut again, 3).await);
    assert_eq!(
        got,
        [(Some(start + 3), start + 3), (Some(start + 4), start + 4), (Some(start + 5), start + 5)]
    );
    // Then live, with no gap at the seam.
    write_notes(db, 1).await;
    assert_eq!(heard(&sse_events_with_ids(&mut again, 1).await), [(Some(start + 6), start + 6)]);
    drop(again);
    // Without `after` in the URL too (a stream from now on, shared until it reconnects).
    let mut from_now = open("subscription { events { position } }", Some((start + 4).to_string())).await;
    let got = heard(&sse_events_with_ids(&mut from_now, 2).await);
    assert_eq!(got, [(Some(start + 5), start + 5), (Some(start + 6), start + 6)]);
    drop(from_now);

    // A doetank's stream resumes after the version it heard last, as `afterVersion` does.
    let (lead, _, d) = formed_doetank(&app, "Hervat").await;
    let watch = format!("subscription {{ doetankUpdated(id: \"{d}\", afterVersion: 0) {{ version }} }}");
    let mut doetank = open(&watch, None).await;
    let events = sse_events_with_ids(&mut doetank, 1).await;
    let version = serde_json::from_str::<Value>(&events[0].2).expect("JSON")["data"]["doetankUpdated"]
        ["version"]
        .as_i64()
        .expect("version");
    assert_eq!(events[0].0, Some(version.to_string()), "{events:?}");
    drop(doetank);
    let lesson = json!({ "doetankId": d, "kind": "INSIGHT", "title": "Tijdens de storing", "body": "b" });
    let recorded = mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson).await;
    assert!(recorded.get("errors").is_none(), "{recorded:#}");
    let mut doetank = open(&watch, Some(version.to_string())).await;
    let events = sse_events_with_ids(&mut doetank, 1).await;
    let answer: Value = serde_json::from_str(&events[0].2).expect("JSON");
    assert_eq!(answer["data"]["doetankUpdated"]["version"], version + 1, "{answer}");
    assert_eq!(events[0].0, Some((version + 1).to_string()));

    // A query's answer has no id: there is nothing to resume. An id this server never gave out
    // is refused, naming the header; an empty one (the SSE spec's reset) resumes from nothing.
    let mut query = open("{ doetanks { totalCount } }", None).await;
    let events = sse_events_with_ids(&mut query, 2).await;
    assert_eq!(events.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), [None, None], "{events:?}");
    for wrong in ["abc", "-1", "7.5"] {
        let refused = open(&from_start, Some(wrong.into())).await;
        let answer: Value = refused.json().await.expect("JSON");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_INPUT", "{wrong}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], "Last-Event-ID", "{answer}");
    }
    let mut reset = open(&from_start, Some(String::new())).await;
    assert_eq!(heard(&sse_events_with_ids(&mut reset, 1).await), [(Some(start + 1), start + 1)]);
}

/// A browser's `EventSource` sends no headers, so until the thirty-fourth session it saw only
/// what anyone may, and `events` not at all. Its token may now come in the URL as
/// `access_token` (RFC 6750, 2.3): on an event stream only, never beside `Authorization`, and
/// what it is answered is stored by no cache.
async fn an_event_source_may_carry_its_token_in_the_url(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let get = |params: Vec<(&str, String)>, accept: &str, authorization: Option<String>| {
        let mut request = app.http.get(app.url("/graphql")).query(&params).header("accept", accept);
        if let Some(token) = authorization {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("GET /graphql") }
    };
    let start = app.head().await;
    let live = format!("subscription {{ events(after: {start}) {{ position }} }}");
    let mut anonymous = get(vec![("query", live.clone())], "text/event-stream", None).await;
    let events = sse_events(&mut anonymous, 1).await;
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{answer}");

    let with_token = vec![("query", live.clone()), ("access_token", facilitator())];
    let mut signed_in = get(with_token.clone(), "text/event-stream", None).await;
    assert_eq!(signed_in.headers().get("cache-control").map(|v| v.as_bytes()), Some(&b"no-store"[..]));
    write_notes(db, 1).await;
    let events = sse_events(&mut signed_in, 1).await;
    let answer: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(answer["data"]["events"]["position"], start + 1, "{answer}");

    // Not on a request answered as JSON: the token would sit in a URL for no reason.
    let query = vec![("query", "{ doetanks { totalCount } }".to_string()), ("access_token", facilitator())];
    let as_json = get(query, "application/json", None).await;
    assert_eq!(as_json.status().as_u16(), 400);
    let answer: Value = as_json.json().await.expect("JSON");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{answer}");
    assert!(
        answer["errors"][0]["message"].as_str().unwrap_or_default().contains("Authorization"),
        "{answer}"
    );
    // Not twice.
    let twice = get(with_token, "text/event-stream", Some(facilitator())).await;
    assert_eq!(twice.status().as_u16(), 400);
    // A token that does not verify is refused as in the header.
    let forged = vec![("query", live), ("access_token", "not.a.token".to_string())];
    let refused: Value = get(forged, "text/event-stream", None).await.json().await.expect("JSON");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
}

/// Besides `events` and `doetankUpdated` (above): each answer of `doetanksUpdated`,
/// `timelineAppended` and `lessonRecorded` carries the position of its event as its id, and a
/// stream resumed with it starts after it; `statisticsUpdated`'s carries the position its
/// figures are at, and a resumed one starts with the figures now.
async fn every_resumable_subscription_marks_its_answers_with_their_cursor(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let (lead, _, d) = formed_doetank(&app, "Cursors").await;
    let make_public = json!({ "doetankId": d });
    assert!(mutate(&app, "makeDoetankPublic", "DoetankCommandInput", make_public)
        .await
        .get("errors")
        .is_none());
    let open = |query: String, last_event_id: Option<i64>| {
        resuming(&app, query, last_event_id.map(|id| id.to_string()))
    };
    // The first answer of a stream: its id, and its data.
    let first = |mut stream: reqwest::Response| async move {
        let events = sse_events_with_ids(&mut stream, 1).await;
        let (id, _, data) = events.into_iter().next().expect("an answer");
        let answer: Value = serde_json::from_str(&data).expect("JSON");
        assert!(answer.get("errors").is_none(), "{answer}");
        (id.map(|id| id.parse::<i64>().expect("a numeric id")), answer["data"].clone())
    };
    let start = app.head().await;
    record_lesson(&app, &d, &lead, "WORKS", "Eerste").await;
    let recorded = app.head().await;
    let queries = [
        format!("subscription {{ doetanksUpdated(after: {start}) {{ version }} }}"),
        format!("subscription {{ timelineAppended(after: {start}) {{ position type }} }}"),
        format!("subscription {{ lessonRecorded(after: {start}) {{ title position }} }}"),
    ];
    let mut seen = Vec::new();
    for query in &queries {
        let (id, data) = first(open(query.clone(), None).await).await;
        assert_eq!(id, Some(recorded), "{query}: {data}");
        seen.push(data);
    }
    record_lesson(&app, &d, &lead, "WORKS", "Tweede").await;
    let next = app.head().await;
    for query in &queries {
        let (id, data) = first(open(query.clone(), Some(recorded)).await).await;
        assert_eq!(id, Some(next), "{query}: {data}");
        if let Some(doetank) = data.get("doetanksUpdated") {
            assert_eq!(
                doetank["version"].as_i64(),
                seen[0]["doetanksUpdated"]["version"].as_i64().map(|v| v + 1)
            );
        }
        if let Some(line) = data.get("timelineAppended") {
            assert_eq!(line["position"], next, "{data}");
        }
        if let Some(lesson) = data.get("lessonRecorded") {
            assert_eq!(lesson["title"], "Tweede", "{data}");
        }
    }

    let figures = "subscription { statisticsUpdated(initial: true) { lessonsPerKind { key count } } }";
    let (id, data) = first(open(figures.into(), None).await).await;
    assert_eq!(id, Some(next), "{data}");
    assert_eq!(data["statisticsUpdated"]["lessonsPerKind"], json!([{ "key": "WORKS", "count": 2 }]));
    record_lesson(&app, &d, &lead, "WORKS", "Derde").await;
    // Resumed without `initial`: the figures now come first all the same.
    let figures = "subscription { statisticsUpdated { lessonsPerKind { key count } } }";
    let (id, data) = first(open(figures.into(), Some(next)).await).await;
    assert_eq!(id, Some(app.head().await), "{data}");
    assert_eq!(data["statisticsUpdated"]["lessonsPerKind"], json!([{ "key": "WORKS", "count": 3 }]));
}

/// The header graphql-sse's client sends a reserved stream's token in.
const STREAM_TOKEN: &str = "x-graphql-event-stream-token";

/// Opens the stream reserved under `token`, as graphql-sse's client does.
async fn open_reserved(app: &TestApp, token: &str) -> reqwest::Response {
    let request = app.http.get(app.url("/graphql/stream")).header(STREAM_TOKEN, token);
    request.header("accept", "text/event-stream").send().await.expect("GET /graphql/stream")
}

/// graphql-sse's single connection mode (for browsers on HTTP/1.1, which open at most six
/// connections to a host): a stream reserved by `PUT`, opened once by `GET`, carries every
/// operation the client `POST`s with its token, each answer `{id, payload}`; `DELETE` stops one.
async fn one_reserved_stream_carries_every_operation_as_graphql_sse_single_connection_mode_asks(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let url = app.url("/graphql/stream");
    let reserve = |as_whom: Option<String>| {
        let mut request = app.http.put(&url);
        if let Some(who) = as_whom {
            request = request.bearer_auth(who);
        }
        async move {
            let reserved = request.send().await.expect("PUT");
            assert_eq!(reserved.status().as_u16(), 201);
            reserved.text().await.expect("a token")
        }
    };
    let operate = |token: &str, id: &str, query: &str| {
        let body = json!({ "query": query, "extensions": { "operationId": id } });
        let request = app.http.post(&url).header(STREAM_TOKEN, token).json(&body);
        async move { request.send().await.expect("POST").status().as_u16() }
    };
    let answer = |(event, data): &(String, String)| -> (String, Value) {
        (event.clone(), serde_json::from_str(data).expect("JSON"))
    };
    let token = reserve(Some(facilitator())).await;
    let mut stream = open_reserved(&app, &token).await;
    assert_eq!(stream.status().as_u16(), 200);
    let again = app.http.get(&url).query(&[("token", &token)]).header("accept", "text/event-stream");
    assert_eq!(again.send().await.expect("GET").status().as_u16(), 409, "one connection at a time");

    let start = app.head().await;
    let live = format!("subscription {{ events(after: {start}) {{ position }} }}");
    assert_eq!(operate(&token, "log", &live).await, 202);
    assert_eq!(operate(&token, "log", &live).await, 409, "an id runs once at a time");
    write_notes(db, 1).await;
    let heard: Vec<_> = sse_events(&mut stream, 1).await.iter().map(answer).collect();
    assert_eq!(
        heard,
        [(
            "next".into(),
            json!({ "id": "log", "payload": { "data": { "events": { "position": start + 1 } } } })
        )]
    );
    // A query answers once and completes; a refusal comes on the stream too.
    assert_eq!(operate(&token, "count", "{ doetanks { totalCount } }").await, 202);
    let heard: Vec<_> = sse_events(&mut stream, 2).await.iter().map(answer).collect();
    assert_eq!(heard[0].1["id"], "count");
    assert!(heard[0].1["payload"]["data"]["doetanks"]["totalCount"].is_number(), "{heard:?}");
    assert_eq!(heard[1], ("complete".into(), json!({ "id": "count" })));
    assert_eq!(operate(&token, "bad", "subscription { nope }").await, 202);
    let heard: Vec<_> = sse_events(&mut stream, 2).await.iter().map(answer).collect();
    assert_eq!(heard[0].1["payload"]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(heard[1], ("complete".into(), json!({ "id": "bad" })));
    // Stopped, the log's operation completes and hears nothing more.
    let stopped = app.http.delete(&url).header(STREAM_TOKEN, &token).query(&[("operationId", "log")]);
    assert_eq!(stopped.send().await.expect("DELETE").status().as_u16(), 200);
    let heard: Vec<_> = sse_events(&mut stream, 1).await.iter().map(answer).collect();
    assert_eq!(heard, [("complete".into(), json!({ "id": "log" }))]);
    write_notes(db, 1).await;
    assert_eq!(operate(&token, "after", "{ __typename }").await, 202);
    let heard: Vec<_> = sse_events(&mut stream, 1).await.iter().map(answer).collect();
    assert_eq!(heard[0].1["id"], "after", "nothing came for the stopped operation: {heard:?}");

    // An operation without an id, or under a token never given out, is refused.
    let no_id = app.http.post(&url).header(STREAM_TOKEN, &token).json(&json!({ "query": "{ __typename }" }));
    assert_eq!(no_id.send().await.expect("POST").status().as_u16(), 400);
    assert_eq!(operate("not-a-reservation", "x", "{ __typename }").await, 404);
    // Operations run as the viewer who reserved the stream: an anonymous one may not read the log.
    let anonymous = reserve(None).await;
    let mut theirs = app
        .http
        .get(&url)
        .query(&[("token", &anonymous)])
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET");
    assert_eq!(operate(&anonymous, "log", &live).await, 202);
    let heard: Vec<_> = sse_events(&mut theirs, 1).await.iter().map(answer).collect();
    assert_eq!(heard[0].1["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{heard:?}");
    // Operations from now on share executions with everyone else's.
    let from_now = "subscription { events { position } }";
    assert_eq!(operate(&token, "now", from_now).await, 202);
    let mut socket = facilitator_client(&app).await;
    socket.subscribe("1", from_now, json!({})).await;
    shared_becomes(&app, (1, 2)).await;
    healthz_shows(&app, "eventStreams", json!(2)).await;
    // The client goes: its reservation and its operations go with it.
    drop(stream);
    shared_becomes(&app, (1, 1)).await;
    assert_eq!(operate(&token, "late", "{ __typename }").await, 404);
    drop((theirs, socket));
}

/// A reserved stream's operations end with the token of whoever reserved it, each told why,
/// as a socket closes with 4401; a stream not reserved, or a token that does not verify, is
/// refused, and so is a reservation past the node's bound on unopened ones.
async fn a_reserved_stream_ends_with_its_token_and_frees_its_reservation(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let url = app.url("/graphql/stream");
    let short = auth().mint("staff", Role::Facilitator, chrono::Duration::seconds(2)).expect("mint");
    let reserve = || app.http.put(&url).bearer_auth(&short).send();
    let token = reserve().await.expect("PUT").text().await.expect("token");
    let unopened = reserve().await.expect("PUT").text().await.expect("token");
    let mut stream = open_reserved(&app, &token).await;
    let body =
        json!({ "query": "subscription { events { position } }", "extensions": { "operationId": "a" } });
    let started = app.http.post(&url).header(STREAM_TOKEN, &token).json(&body).send().await.expect("POST");
    assert_eq!(started.status().as_u16(), 202);
    let heard = sse_events(&mut stream, 2).await;
    assert_eq!(heard.len(), 2, "{heard:?}");
    let refusal: Value = serde_json::from_str(&heard[0].1).expect("JSON");
    assert_eq!(refusal["id"], "a");
    assert_eq!(refusal["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refusal}");
    assert_eq!(heard[1], ("complete".to_string(), json!({ "id": "a" }).to_string()));
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await;
    assert!(matches!(ended, Ok(Ok(None))), "the stream ends: {ended:?}");
    let reopened = app.http.get(&url).header(STREAM_TOKEN, &token).header("accept", "text/event-stream");
    assert_eq!(reopened.send().await.expect("GET").status().as_u16(), 404, "the reservation went with it");
    // One never opened runs nothing once the token that made it has expired.
    let late = app.http.post(&url).header(STREAM_TOKEN, &unopened).json(&body).send().await.expect("POST");
    let late: Value = late.json().await.expect("JSON");
    assert_eq!(late["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{late}");
    let late: Value = open_reserved(&app, &unopened).await.json().await.expect("JSON");
    assert_eq!(late["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{late}");

    let forged = app.http.put(&url).bearer_auth("not.a.token").send().await.expect("PUT");
    let refused: Value = forged.json().await.expect("JSON");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused}");
    let not_events = app.http.get(&url).query(&[("token", "x")]).header("accept", "application/json");
    assert_eq!(not_events.send().await.expect("GET").status().as_u16(), 406);
    let no_token = app.http.get(&url).header("accept", "text/event-stream").send().await.expect("GET");
    assert_eq!(no_token.status().as_u16(), 400);

    // Anyone may reserve: a node holds only so many reservations not yet opened.
    let config = ServerConfig { max_unopened_reservations: 2, ..ServerConfig::default() };
    let small = TestApp::spawn_with(db, config).await;
    let reserve = || small.http.put(small.url("/graphql/stream")).send();
    let first = reserve().await.expect("PUT").text().await.expect("token");
    assert_eq!(reserve().await.expect("PUT").status().as_u16(), 201);
    let refused = reserve().await.expect("PUT");
    assert_eq!(refused.status().as_u16(), 503);
    let refused: Value = refused.json().await.expect("JSON");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "TOO_MANY_RESERVATIONS", "{refused}");
    // An opened one no longer counts.
    let _opened = open_reserved(&small, &first).await;
    assert_eq!(reserve().await.expect("PUT").status().as_u16(), 201);
}
