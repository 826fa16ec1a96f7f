//! Who may do what, the informal doetank behind every door, and the right to be forgotten.

use std::process::Command;
use std::time::Duration;

use doetank_api::auth::Role;
use serde_json::{json, Value};

use crate::api::{mutate_as, raise, refused_as, register};
use crate::both_backends;
use crate::support::app::{auth, facilitator, member, token, TestApp};
use crate::support::ws::{Incoming, MODERN};
use crate::support::{TestDb, WsClient};

both_backends!(
    each_role_can_do_exactly_what_it_should,
    an_informal_doetank_leaks_through_no_door,
    an_expired_token_is_refused_and_closes_its_socket,
    an_erased_member_s_name_is_nowhere,
);

async fn form(app: &TestApp, lead: &str, challenge: &str, members: &[&str]) -> String {
    let body = mutate_as(
        app,
        &member(lead),
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": "Geheim", "challengeId": challenge, "leadId": lead, "memberIds": members }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["formDoetank"]["doetank"]["id"].as_str().expect("id").to_string()
}

async fn code_of(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    app.gql_as(token, query, variables).await["errors"][0]["extensions"]["code"].clone()
}

async fn each_role_can_do_exactly_what_it_should(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Lea", "Gemeente Utrecht", "PUBLIC").await;
    let other = register(&app, "Olaf", "TNO", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let d = form(&app, &lead, &challenge, &[]).await;
    // Public, so that outsiders meet the doors of their role rather than rule 5's.
    let public = json!({ "doetankId": d });
    assert!(mutate_as(&app, &facilitator(), "makeDoetankPublic", "DoetankCommandInput", public)
        .await
        .get("errors")
        .is_none());
    let register_query = "mutation { registerMember(input: { name: \"X\", organisation: \"Y\", sector: PUBLIC }) { member { id } } }";

    // Anonymous, a forged token and a researcher change nothing.
    assert_eq!(code_of(&app, None, register_query, json!({})).await, "UNAUTHENTICATED");
    assert_eq!(code_of(&app, Some("not-a-jwt"), register_query, json!({})).await, "UNAUTHENTICATED");
    let forged = doetank_api::auth::Auth::hs256(b"another secret")
        .mint("staff", Role::Facilitator, chrono::Duration::hours(1))
        .expect("mint");
    assert_eq!(code_of(&app, Some(&forged), register_query, json!({})).await, "UNAUTHENTICATED");
    let researcher = token("onderzoeker", Role::Researcher);
    assert_eq!(code_of(&app, Some(&researcher), register_query, json!({})).await, "FORBIDDEN");
    // Members do not register members; facilitators do.
    assert_eq!(code_of(&app, Some(&member(&lead)), register_query, json!({})).await, "FORBIDDEN");
    assert!(app.gql_as(Some(&facilitator()), register_query, json!({})).await.get("errors").is_none());

    let phase = json!({ "doetankId": d, "phase": "DISCOVER", "summary": "s" });
    // Only the lead completes phases: not another member, not a facilitator.
    refused_as(
        &app,
        &member(&other),
        "completePhase",
        "CompletePhaseInput",
        phase.clone(),
        "FORBIDDEN",
        None,
    )
    .await;
    refused_as(&app, &facilitator(), "completePhase", "CompletePhaseInput", phase.clone(), "FORBIDDEN", None)
        .await;
    // The lead passes the door and meets the domain's rule instead.
    refused_as(
        &app,
        &member(&lead),
        "completePhase",
        "CompletePhaseInput",
        phase,
        "RULE_VIOLATED",
        Some("PHASE_NEEDS_TEAM_AND_COACH"),
    )
    .await;
    // Only facilitators assign coaches and make doetanks public.
    let coach = json!({ "doetankId": d, "coachId": other });
    refused_as(&app, &member(&lead), "assignCoach", "AssignCoachInput", coach, "FORBIDDEN", None).await;
    refused_as(
        &app,
        &member(&lead),
        "makeDoetankPublic",
        "DoetankCommandInput",
        json!({ "doetankId": d }),
        "FORBIDDEN",
        None,
    )
    .await;
    // Lessons are recorded in one's own name.
    let lesson = json!({ "doetankId": d, "recordedBy": lead, "kind": "WORKS", "title": "t", "body": "b" });
    refused_as(&app, &member(&other), "recordLesson", "RecordLessonInput", lesson, "FORBIDDEN", None).await;
    // Members join themselves; not someone else.
    let stranger = register(&app, "Stan", "TNO", "PUBLIC").await;
    refused_as(
        &app,
        &member(&other),
        "joinDoetank",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": stranger }),
        "FORBIDDEN",
        None,
    )
    .await;
    let joined = mutate_as(
        &app,
        &member(&other),
        "joinDoetank",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": other }),
    )
    .await;
    assert!(joined.get("errors").is_none(), "{joined:#}");

    // The log is for signed-in readers; the actor of every event is recorded.
    let log = "{ events(filter: { streamType: \"doetank\" }) { edges { node { type actor } } } }";
    assert_eq!(code_of(&app, None, log, json!({})).await, "UNAUTHENTICATED");
    let events = app.gql_as(Some(&researcher), log, json!({})).await;
    assert!(events.get("errors").is_none(), "{events:#}");
    let seen = app.gql_as(Some(&facilitator()), log, json!({})).await;
    let actors: Vec<&str> = seen["data"]["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["actor"].as_str())
        .collect();
    assert!(actors.contains(&format!("member:{lead}").as_str()), "{actors:?}");
    assert!(actors.contains(&format!("member:{other}").as_str()), "{actors:?}");

    // Over WebSocket: anonymous cannot subscribe to the log, a researcher can.
    let mut anonymous = WsClient::connect(&app, MODERN).await;
    anonymous.init(json!({})).await;
    anonymous.subscribe("1", "subscription { events(after: 0) { position } }", json!({})).await;
    match anonymous.next(Duration::from_secs(5)).await {
        Some(Incoming::Next(payload)) => {
            assert_eq!(payload["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{payload:#}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let mut reader = WsClient::connect(&app, MODERN).await;
    reader.init(json!({ "token": researcher })).await;
    reader.subscribe("1", "subscription { events(after: 0) { position } }", json!({})).await;
    assert_eq!(reader.next_data().await["events"]["position"], 1);
    // The token as Apollo's client sends it, inside `headers`.
    let mut apollo = WsClient::connect(&app, MODERN).await;
    apollo.init(json!({ "headers": { "Authorization": format!("Bearer {researcher}") } })).await;
    apollo.subscribe("1", "subscription { events(after: 0) { position } }", json!({})).await;
    assert_eq!(apollo.next_data().await["events"]["position"], 1);
    // The token as clients that are no browser send it: a header of the handshake (until the
    // thirtieth session it was not read, and the socket was anonymous).
    let mut scripted = WsClient::connect_as(app.addr, "/graphql/ws", MODERN, Some(&researcher)).await;
    scripted.init(json!({})).await;
    scripted.subscribe("1", "subscription { events(after: 0) { position } }", json!({})).await;
    assert_eq!(scripted.next_data().await["events"]["position"], 1);
    let mut forged_header = WsClient::connect_as(app.addr, "/graphql/ws", MODERN, Some(&forged)).await;
    forged_header.send(json!({ "type": "connection_init", "payload": {} })).await;
    match forged_header.next(Duration::from_secs(5)).await {
        Some(Incoming::Closed(code, _)) => assert_eq!(code, Some(4403)),
        other => panic!("a forged token in the handshake is refused, got {other:?}"),
    }
    let mut bad = WsClient::connect(&app, MODERN).await;
    bad.send(json!({ "type": "connection_init", "payload": { "token": forged } })).await;
    match bad.next(Duration::from_secs(5)).await {
        Some(Incoming::Closed(code, _)) => assert_eq!(code, Some(4403)),
        other => panic!("a forged token is refused, got {other:?}"),
    }
    // A token that is no text is refused, and a payload that is no object is no
    // `connection_init` (until the thirty-first session both were served as anonymous).
    for (payload, code) in [(json!({ "token": 123 }), 4403), (json!("token"), 4400)] {
        let mut odd = WsClient::connect(&app, MODERN).await;
        odd.send(json!({ "type": "connection_init", "payload": payload })).await;
        match odd.next(Duration::from_secs(5)).await {
            Some(Incoming::Closed(closed, _)) => assert_eq!(closed, Some(code), "{payload}"),
            other => panic!("{payload}: expected the socket closed with {code}, got {other:?}"),
        }
    }
}

const SECRET_WORD: &str = "geheimzinnig";

async fn an_informal_doetank_leaks_through_no_door(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Lea", "Gemeente Utrecht", "PUBLIC").await;
    let teammate = register(&app, "Tim", "Gemeente Utrecht", "PUBLIC").await;
    let outsider = register(&app, "Olaf", "TNO", "PUBLIC").await;
    let coach = register(&app, "Coby", "Kennisland", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let d = form(&app, &lead, &challenge, &[&teammate]).await;
    let assigned = mutate_as(
        &app,
        &facilitator(),
        "assignCoach",
        "AssignCoachInput",
        json!({ "doetankId": d, "coachId": coach }),
    )
    .await;
    assert!(assigned.get("errors").is_none());
    let lesson = json!({ "doetankId": d, "kind": "INSIGHT", "title": format!("Een {SECRET_WORD} inzicht"), "body": "onder de radar", "tags": ["radar"] });
    let recorded = mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson).await;
    assert!(recorded.get("errors").is_none(), "{recorded:#}");
    // Events of other streams that tell of it: a reuse of its results, an idea taken into it.
    let network = |token: &str, query: &str, variables: Value| {
        let (app, token, query) = (&app, token.to_string(), query.to_string());
        async move {
            let body = app.gql_as(Some(&token), &query, variables).await;
            assert!(body.get("errors").is_none(), "{body:#}");
            body["data"].clone()
        }
    };
    let reuse_of = |organisation: &str| json!({ "i": { "organisation": organisation, "doetankId": d, "pledge": "delen" } });
    let reuse_query = "mutation($i: ReuseKnowledgeInput!) { reuseKnowledge(input: $i) { id } }";
    let reused = network(&facilitator(), reuse_query, reuse_of("Gemeente Delft")).await;
    let reuse = reused["reuseKnowledge"]["id"].as_str().expect("reuse").to_string();
    let day = network(
        &facilitator(),
        "mutation { scheduleIdeationEvent(input: { name: \"Dag\", centralQuestion: \"?\", date: \"2013-03-15\", venue: \"Den Haag\" }) { id } }",
        json!({}),
    )
    .await["scheduleIdeationEvent"]["id"]
        .clone();
    let idea = network(
        &member(&lead),
        "mutation($d: ID!) { submitIdea(input: { ideationEventId: $d, title: \"Idee\", description: \"beschrijving\" }) { id } }",
        json!({ "d": day }),
    )
    .await["submitIdea"]["id"]
        .clone();
    network(
        &member(&lead),
        "mutation($e: ID!, $i: ID!, $d: ID!) { takeIdeaIntoDoetank(input: { ideationEventId: $e, ideaId: $i, doetankId: $d }) { id } }",
        json!({ "e": day, "i": idea, "d": d }),
    )
    .await;

    let researcher = token("onderzoeker", Role::Researcher);
    let outsiders: [(&str, Option<String>); 3] = [
        ("anonymous", None),
        ("a member outside it", Some(member(&outsider))),
        ("a researcher", Some(researcher.clone())),
    ];
    let insiders: [(&str, String); 4] = [
        ("its lead", member(&lead)),
        ("its member", member(&teammate)),
        ("its coach", member(&coach)),
        ("a facilitator", facilitator()),
    ];
    let doors = "query($id: ID!, $lead: ID!, $challenge: ID!, $reuse: ID!) { \
        doetank(id: $id) { id } \
        node(id: $id) { id } \
        asOf: doetank(id: $id, atVersion: 2) { id } \
        doetanks { totalCount } \
        lessons { totalCount } \
        counted: lessons(first: 0) { totalCount } \
        search: lessons(filter: { search: \"geheimzinnig\" }) { totalCount } \
        tagged: lessons(filter: { tag: \"radar\" }) { totalCount } \
        statistics { doetanksPerStatus { count } lessonsPerKind { count } medianDaysPerPhase { completed } } \
        member(id: $lead) { doetanks { role } } \
        challenge(id: $challenge) { doetanks { id } } \
        untaken: challenges(withoutDoetank: true) { totalCount } \
        reuse(id: $reuse) { id } reuses { totalCount } lineage(id: $reuse) { root { id } } \
        reuser: lineage(id: \"Gemeente Delft\") { root { id } } \
        told: timeline(kinds: [\"reuse\"]) { totalCount } }";
    let vars = json!({ "id": d, "lead": lead, "challenge": challenge, "reuse": reuse });
    for (who, token) in &outsiders {
        let data = app.gql_as(token.as_deref(), doors, vars.clone()).await;
        let data = &data["data"];
        assert_eq!(data["doetank"], Value::Null, "{who}: doetank(id)");
        assert_eq!(data["node"], Value::Null, "{who}: node(id)");
        assert_eq!(data["asOf"], Value::Null, "{who}: doetank(atVersion)");
        assert_eq!(data["doetanks"]["totalCount"], 0, "{who}: doetanks");
        assert_eq!(data["lessons"]["totalCount"], 0, "{who}: lessons");
        assert_eq!(data["counted"]["totalCount"], 0, "{who}: lessons counted beyond a page");
        assert_eq!(data["search"]["totalCount"], 0, "{who}: lesson search");
        assert_eq!(data["tagged"]["totalCount"], 0, "{who}: lessons by tag");
        assert_eq!(data["statistics"]["doetanksPerStatus"], json!([]), "{who}: statistics");
        assert_eq!(data["statistics"]["lessonsPerKind"], json!([]), "{who}: statistics");
        assert_eq!(data["member"]["doetanks"], json!([]), "{who}: member.doetanks");
        assert_eq!(data["challenge"]["doetanks"], json!([]), "{who}: challenge.doetanks");
        assert_eq!(data["untaken"]["totalCount"], 1, "{who}: its challenge still looks untaken");
        assert_eq!(data["reuse"], Value::Null, "{who}: reuse(id)");
        assert_eq!(data["reuses"]["totalCount"], 0, "{who}: reuses");
        assert_eq!(data["lineage"], Value::Null, "{who}: the lineage of its reuse");
        assert_eq!(data["reuser"], Value::Null, "{who}: the organisation known only for its reuse");
        assert_eq!(data["told"]["totalCount"], 0, "{who}: the timeline's line of its reuse names it");
    }
    for (who, token) in &insiders {
        let data = app.gql_as(Some(token), doors, vars.clone()).await;
        assert_eq!(data["data"]["doetank"]["id"], d.as_str(), "{who} sees it");
        assert_eq!(data["data"]["node"]["id"], d.as_str(), "{who} sees it through node(id)");
        assert_eq!(data["data"]["search"]["totalCount"], 1, "{who} finds its lesson");
        assert_eq!(data["data"]["counted"]["totalCount"], 1, "{who} counts its lesson beyond a page");
        assert_eq!(data["data"]["lessons"]["totalCount"], 1, "{who} counts its lesson");
        assert_eq!(data["data"]["untaken"]["totalCount"], 0, "{who} sees its challenge taken");
        assert_eq!(data["data"]["lineage"]["root"]["id"], reuse.as_str(), "{who} sees its reuse");
        assert_eq!(data["data"]["reuser"]["root"]["id"], "gemeente delft", "{who} sees who reuses it");
        assert_eq!(data["data"]["told"]["totalCount"], 1, "{who} reads of its reuse");
    }
    // A count beyond a page reads every row and says rule 5 in its own shape (on PostgreSQL
    // probes a hash of the visible doetanks, where a page looks each up by key): it counts what
    // the pages show, to everyone.
    let timeline = "{ timeline(first: 1) { totalCount } all: timeline(first: 100) { edges { cursor } } \
        doetankLines: timeline(kinds: [\"doetank\"], first: 1) { totalCount } \
        allDoetankLines: timeline(kinds: [\"doetank\"], first: 100) { edges { cursor } } }";
    let log = "{ events(first: 1) { totalCount } all: events(first: 100) { edges { cursor } } }";
    let readers =
        outsiders.iter().cloned().chain(insiders.iter().map(|(who, token)| (*who, Some(token.clone()))));
    for (who, token) in readers {
        let queries = [Some((timeline, "timeline", "all")), token.as_ref().map(|_| (log, "events", "all"))];
        for (query, counted, listed) in queries.into_iter().flatten() {
            let data = app.gql_as(token.as_deref(), query, json!({})).await;
            assert!(data.get("errors").is_none(), "{who}: {data:#}");
            let shown = |name: &str| data["data"][name]["edges"].as_array().map_or(0, Vec::len);
            assert!(shown(listed) > 1, "{who}: {counted} is longer than its counted page");
            assert_eq!(data["data"][counted]["totalCount"], shown(listed), "{who}: {counted}'s count");
        }
        let data = app.gql_as(token.as_deref(), timeline, json!({})).await;
        let lines = data["data"]["allDoetankLines"]["edges"].as_array().map_or(0, Vec::len);
        assert_eq!(data["data"]["doetankLines"]["totalCount"], lines, "{who}: the count of doetank lines");
    }
    // Answers are kept per viewer: the insiders' answers, just given, are not handed to outsiders.
    for (who, token) in &outsiders {
        let data = app.gql_as(token.as_deref(), doors, vars.clone()).await;
        assert_eq!(data["data"]["doetank"], Value::Null, "{who}, asking after insiders: doetank(id)");
        assert_eq!(data["data"]["search"]["totalCount"], 0, "{who}, asking after insiders: search");
    }

    // The log: the events query and /events.ndjson, for a member outside it and a researcher.
    let log = "{ events(first: 100) { edges { node { streamId payload } } } }";
    for token in [member(&outsider), researcher.clone()] {
        let text = app.gql_as(Some(&token), log, json!({})).await.to_string();
        assert!(!text.contains(&d) && !text.contains(SECRET_WORD), "the events query leaks it");
        let ndjson = app
            .http
            .get(app.url("/events.ndjson"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("ndjson")
            .text()
            .await
            .expect("text");
        assert!(
            !ndjson.is_empty() && !ndjson.contains(&d) && !ndjson.contains(SECRET_WORD),
            "/events.ndjson leaks it"
        );
    }
    let insider_log = app.gql_as(Some(&member(&teammate)), log, json!({})).await.to_string();
    assert!(insider_log.contains(SECRET_WORD), "its own members read its events");
    // ... and its events are not counted in the log's activity for outsiders.
    let activity = "{ eventActivity(filter: { streamType: \"doetank\" }) { type count } }";
    for token in [member(&outsider), researcher.clone()] {
        let data = app.gql_as(Some(&token), activity, json!({})).await;
        assert_eq!(data["data"]["eventActivity"], json!([]), "eventActivity counts it: {data:#}");
    }
    let counted = app.gql_as(Some(&member(&teammate)), activity, json!({})).await;
    assert!(counted.to_string().contains("LessonRecorded"), "its members count its events: {counted:#}");

    // Subscriptions: the log and doetankUpdated.
    let mut watcher = WsClient::connect(&app, MODERN).await;
    watcher.init(json!({ "token": researcher })).await;
    watcher.subscribe("log", "subscription { events(after: 0) { streamId payload } }", json!({})).await;
    let mut spy = WsClient::connect(&app, MODERN).await;
    spy.init(json!({ "token": member(&outsider) })).await;
    spy.subscribe("d", "subscription($id: ID!) { doetankUpdated(id: $id) { id } }", json!({ "id": d })).await;
    spy.subscribe("all", "subscription { doetanksUpdated { id } }", json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let more = json!({ "doetankId": d, "kind": "WORKS", "title": SECRET_WORD, "body": "nog steeds geheim" });
    assert!(mutate_as(&app, &member(&teammate), "recordLesson", "RecordLessonInput", more)
        .await
        .get("errors")
        .is_none());
    network(&facilitator(), reuse_query, reuse_of("Gemeente Leiden")).await;
    let marker = register(&app, "Markeer", "TNO", "PUBLIC").await; // a public event after the secret ones
    loop {
        let data = watcher.next_data().await.to_string();
        assert!(
            !data.contains(&d) && !data.contains(SECRET_WORD),
            "the events subscription leaks it: {data}"
        );
        if data.contains(&marker) {
            break;
        }
    }
    assert!(
        spy.next(Duration::from_millis(400)).await.is_none(),
        "doetankUpdated or doetanksUpdated leaks it"
    );

    // doetank export --public.
    let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["export", "--public", "--database-url", &db.url])
        .output()
        .expect("export");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&marker) && !text.contains(&d) && !text.contains(SECRET_WORD),
        "export --public leaks it"
    );
    // Nor who sent each command (until the thirty-first session a facilitator's token subject).
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("an NDJSON line");
        assert_eq!(event["metadata"]["actor"], Value::Null, "{line}");
        assert_eq!(event["metadata"]["command_id"], Value::Null, "{line}");
    }

    // Commands: to an outsider it is a doetank that does not exist, refused in the same words
    // as an id that names nothing (until the thirtieth session they were told "not allowed",
    // and could join it by its id).
    let nowhere = uuid::Uuid::new_v4().to_string();
    let commands = |doetank: &str| {
        [
            ("joinDoetank", "DoetankMemberInput", json!({ "doetankId": doetank, "memberId": outsider })),
            (
                "recordLesson",
                "RecordLessonInput",
                json!({ "doetankId": doetank, "kind": "WORKS", "title": "t", "body": "b" }),
            ),
            (
                "publishUpdate",
                "PublishUpdateInput",
                json!({ "doetankId": doetank, "channel": "BLOG", "title": "t", "link": "https://example.org" }),
            ),
            ("leaveDoetank", "DoetankMemberInput", json!({ "doetankId": doetank, "memberId": teammate })),
        ]
    };
    for ((name, input_type, input), (_, _, absent)) in commands(&d).into_iter().zip(commands(&nowhere)) {
        let head = app.head().await;
        let body = mutate_as(&app, &member(&outsider), name, input_type, input).await;
        let told = body["errors"][0]["message"].as_str().unwrap_or_default().replace(&d, "ID");
        let absent = mutate_as(&app, &member(&outsider), name, input_type, absent).await;
        let told_absent = absent["errors"][0]["message"].as_str().unwrap_or_default().replace(&nowhere, "ID");
        assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{name}: {body:#}");
        assert_eq!(told, told_absent, "{name}: refused as an absent doetank is");
        assert_eq!(app.head().await, head, "{name} wrote nothing");
    }
    // Its lead brings the outsider in; then they see it.
    let added = json!({ "doetankId": d, "memberId": outsider });
    assert!(mutate_as(&app, &member(&lead), "joinDoetank", "DoetankMemberInput", added)
        .await
        .get("errors")
        .is_none());
    let seen = app.gql_as(Some(&member(&outsider)), doors, vars.clone()).await;
    assert_eq!(seen["data"]["doetank"]["id"], d.as_str(), "a member it took in sees it");

    // Once public, everyone sees it, history included.
    let public = mutate_as(
        &app,
        &facilitator(),
        "makeDoetankPublic",
        "DoetankCommandInput",
        json!({ "doetankId": d }),
    )
    .await;
    assert!(public.get("errors").is_none());
    // ... live too: the researcher's log subscription now carries the doetank's events, and
    // keeps doing so once the process remembers it as public.
    for title in ["nu openbaar", "nog eens openbaar"] {
        let lesson = json!({ "doetankId": d, "kind": "WORKS", "title": title, "body": "gedeeld" });
        assert!(mutate_as(&app, &member(&teammate), "recordLesson", "RecordLessonInput", lesson)
            .await
            .get("errors")
            .is_none());
        loop {
            let data = watcher.next_data().await.to_string();
            if data.contains(title) {
                assert!(data.contains(&d));
                break;
            }
        }
    }
    let data = app.gql_as(None, doors, vars).await;
    assert_eq!(data["data"]["doetank"]["id"], d.as_str());
    assert_eq!(data["data"]["search"]["totalCount"], 2);
}

async fn an_expired_token_is_refused_and_closes_its_socket(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let expired = auth().mint("staff", Role::Facilitator, chrono::Duration::seconds(-5)).expect("mint");
    let body = app.gql_as(Some(&expired), "{ doetanks { totalCount } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("expired"));

    // Not yet valid (`nbf`), issued in the future (`iat`, past a minute's skew between clocks),
    // or naming no one: refused too (until the thirty-first session all three were taken).
    let now = chrono::Utc::now().timestamp();
    let signed = |claims: Value| {
        let key = jsonwebtoken::EncodingKey::from_secret(crate::support::app::TEST_SECRET.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign")
    };
    let staff = |extra: Value| {
        let mut claims = json!({ "sub": "staff", "role": "facilitator", "iat": now, "exp": now + 600 });
        claims.as_object_mut().expect("claims").extend(extra.as_object().expect("extra").clone());
        signed(claims)
    };
    for (claims, why) in [
        (json!({ "nbf": now + 3600 }), "not valid yet"),
        (json!({ "iat": now + 3600 }), "issued in the future"),
        (json!({ "sub": " " }), "names no one"),
    ] {
        let body = app.gql_as(Some(&staff(claims.clone())), "{ doetanks { totalCount } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{claims}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains(why), "{body}");
    }
    for claims in [json!({ "nbf": now - 60 }), json!({ "iat": now + 30 })] {
        let body = app.gql_as(Some(&staff(claims.clone())), "{ doetanks { totalCount } }", json!({})).await;
        assert!(body.get("errors").is_none(), "{claims}: {body}");
    }

    let short = auth().mint("staff", Role::Facilitator, chrono::Duration::seconds(2)).expect("mint");
    let mut client = WsClient::connect(&app, MODERN).await;
    client.init(json!({ "token": short })).await;
    client.subscribe("1", "subscription { events { position } }", json!({})).await;
    match client.next(Duration::from_secs(6)).await {
        Some(Incoming::Closed(code, reason)) => assert_eq!(code, Some(4401), "{reason}"),
        other => panic!("expected the socket to close when the token expired, got {other:?}"),
    }
}

const NAME: &str = "Zwaantje Vergeetmenietje";

async fn an_erased_member_s_name_is_nowhere(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let data = app
        .data(
            "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { member { id name } } }",
            json!({ "i": { "name": NAME, "email": "zwaantje@example.org", "organisation": "Gemeente Zeist", "sector": "PUBLIC" } }),
        )
        .await;
    let id = data["registerMember"]["member"]["id"].as_str().expect("id").to_string();
    assert_eq!(data["registerMember"]["member"]["name"], NAME);
    let challenge = raise(&app, &id).await;
    let doetank = form(&app, &id, &challenge, &[]).await;

    // Members erase themselves (or a facilitator does it for them), not each other.
    let other = register(&app, "Ander", "TNO", "PUBLIC").await;
    let erase = "mutation($id: ID!) { eraseMember(input: { memberId: $id }) { member { name erased } } }";
    assert_eq!(code_of(&app, Some(&member(&other)), erase, json!({ "id": id })).await, "FORBIDDEN");
    let own = "query($d: ID!) { doetank(id: $d) { id } doetanks { totalCount } \
               events(filter: { streamType: \"doetank\" }) { totalCount } }";
    let seen_before = app.gql_as(Some(&member(&id)), own, json!({ "d": doetank })).await;
    assert_eq!(seen_before["data"]["doetank"]["id"], doetank.as_str(), "{seen_before:#}");
    let erased = app.gql_as(Some(&member(&id)), erase, json!({ "id": id })).await;
    assert_eq!(
        erased["data"]["eraseMember"]["member"],
        json!({ "name": null, "erased": true }),
        "{erased:#}"
    );
    // Gone for good: the token the member still holds sends no further command, in the
    // doetank they led nor anywhere else, and writes nothing. (Until the twenty-ninth session
    // it still recorded lessons in their name.)
    let head = app.head().await;
    let lesson =
        json!({ "doetankId": doetank, "kind": "INSIGHT", "title": "Na het wissen", "body": "Nog iets" });
    let refused = mutate_as(&app, &member(&id), "recordLesson", "RecordLessonInput", lesson).await;
    let ext = &refused["errors"][0]["extensions"];
    assert_eq!(
        (&ext["code"], &ext["rule"]),
        (&json!("RULE_VIOLATED"), &json!("ERASED_IS_FINAL")),
        "{refused:#}"
    );
    let raise_again = "mutation($i: RaiseChallengeInput!) { raiseChallenge(input: $i) { challenge { id } } }";
    let input = json!({ "title": "Nog een", "description": "Na het wissen", "raisedBy": id, "origin": { "kind": "OWN_FRUSTRATION" } });
    assert_eq!(code_of(&app, Some(&member(&id)), raise_again, json!({ "i": input })).await, "RULE_VIOLATED");
    assert_eq!(app.head().await, head, "an erased member's token wrote");
    // Nor does it still open the informal doetank they led: they see what outsiders see.
    let seen_after = app.gql_as(Some(&member(&id)), own, json!({ "d": doetank })).await;
    assert_eq!(seen_after["data"]["doetank"], Value::Null, "{seen_after:#}");
    assert_eq!(seen_after["data"]["doetanks"]["totalCount"], 0, "{seen_after:#}");
    assert_eq!(seen_after["data"]["events"]["totalCount"], 0, "{seen_after:#}");
    // A facilitator hands the lead on; it cannot go back to them (until the thirtieth session
    // it could, leaving the lead's commands to no one).
    let membership = json!({ "doetankId": doetank, "memberId": other });
    let joined =
        mutate_as(&app, &facilitator(), "joinDoetank", "DoetankMemberInput", membership.clone()).await;
    assert!(joined.get("errors").is_none(), "{joined:#}");
    let handed = mutate_as(&app, &facilitator(), "changeLead", "DoetankMemberInput", membership).await;
    assert!(handed.get("errors").is_none(), "{handed:#}");
    let back = json!({ "doetankId": doetank, "memberId": id });
    refused_as(
        &app,
        &facilitator(),
        "changeLead",
        "DoetankMemberInput",
        back,
        "RULE_VIOLATED",
        Some("ERASED_IS_FINAL"),
    )
    .await;

    let everything =
        "query($id: ID!) { member(id: $id) { name } members(first: 100) { edges { node { name } } } \
                      doetanks { edges { node { lead { name } members { member { name } } } } } }";
    let text = app.data(everything, json!({ "id": id })).await.to_string();
    assert!(!text.contains(NAME) && !text.contains("zwaantje@"), "read models still show the name: {text}");

    let exported = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["export", "--database-url", &db.url])
        .output()
        .expect("export");
    assert!(!String::from_utf8_lossy(&exported.stdout).contains("Zwaantje"), "the export holds the name");

    // After a rebuild the name is still gone, and not in the database at all.
    doetank_api::App::new(db.store.clone()).projector.rebuild(&|_| {}).await.expect("rebuild");
    let text = app.data(everything, json!({ "id": id })).await.to_string();
    assert!(!text.contains(NAME));
    match db.store.backend() {
        doetank_store::Backend::Sqlite(pool) => {
            sqlx::query("VACUUM").execute(pool).await.expect("vacuum");
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.expect("checkpoint");
            let path = db.url.trim_start_matches("sqlite:");
            for file in [path.to_string(), format!("{path}-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    assert!(!bytes.windows(8).any(|w| w == b"Zwaantje"), "{file} still holds the name");
                    assert!(!bytes.windows(9).any(|w| w == b"zwaantje@"), "{file} still holds the e-mail");
                }
            }
        }
        doetank_store::Backend::Postgres(pool) => {
            let rows: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM member_personal_data WHERE name LIKE '%Zwaantje%') \
                 + (SELECT COUNT(*) FROM events WHERE payload::text LIKE '%Zwaantje%')",
            )
            .fetch_one(pool)
            .await
            .expect("count");
            assert_eq!(rows, 0);
        }
    }
}

/// RS256: the server holds only the identity provider's public key.
#[tokio::test]
async fn rs256_tokens_from_an_identity_provider_are_verified_with_its_public_key() {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let public = include_bytes!("fixtures/rs256-test-public.pem");
    let private = include_bytes!("fixtures/rs256-test-private.pem");
    let auth = doetank_api::auth::Auth::rs256(public).expect("public key");
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({ "sub": uuid::Uuid::new_v4().to_string(), "role": "member", "iat": now, "exp": now + 60 });
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(private).expect("private key"),
    )
    .expect("sign");
    let viewer = auth.verify(&token).expect("a token signed by the provider is accepted");
    assert_eq!(viewer.role, Some(Role::Member));
    // A token signed with a shared secret is not one of the provider's.
    let forged = doetank_api::auth::Auth::hs256(b"secret")
        .mint("x", Role::Facilitator, chrono::Duration::hours(1))
        .expect("mint");
    assert!(auth.verify(&forged).is_err());
    // And an RS256 server mints nothing.
    assert!(auth.mint("x", Role::Facilitator, chrono::Duration::hours(1)).is_err());
}
