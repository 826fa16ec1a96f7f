//! The GraphQL API over real HTTP: a doetank's life, every rule's error code, and that a refused
//! command writes nothing.

use serde_json::{json, Value};

use crate::both_backends;
use crate::network::ok as network_ok;
use crate::support::app::{facilitator, member};
use crate::support::ws::{Incoming, WsClient, LEGACY, MODERN};
use crate::support::{TestApp, TestDb};
use doetank_api::server::ServerConfig;

both_backends!(
    a_doetank_lives_through_http_and_every_rule_answers_with_its_code,
    a_stale_expected_version_is_a_version_conflict,
    a_repeated_command_id_returns_the_first_result,
    bad_input_is_a_typed_error_never_a_500,
    every_error_has_a_code_also_those_of_the_request_itself,
    a_query_over_get_is_answered_and_a_mutation_refused,
    lists_filter_and_paginate_as_relay_connections,
    a_row_leaving_a_filtered_list_makes_the_next_page_skip_nothing,
    a_doetank_s_people_are_the_members_asked_for_by_id,
    the_demo_history_loads,
    one_text_asked_with_other_variables_answers_each,
    concurrent_retries_of_a_registration_make_one_member,
    an_answer_is_one_state_of_the_read_models_while_writes_go_on,
    the_reads_of_one_answer_see_one_state_or_the_answer_moves,
    a_small_pool_answers_lists_beside_the_log_to_many_at_once,
    a_query_over_a_websocket_is_one_state_too,
    a_persisted_query_is_asked_by_its_hash_alone,
    the_log_s_activity_is_counted_by_day_week_month_and_year,
    metrics_are_served_for_prometheus,
    a_lesson_found_by_a_search_has_an_excerpt_that_marks_what_was_found,
    a_batch_of_requests_is_answered_in_order_each_as_it_would_be_alone,
    an_id_a_client_chooses_names_one_thing_across_every_kind,
    a_text_the_log_should_not_hold_is_refused_and_writes_nothing,
    a_refused_profile_update_leaves_the_name_as_it_was,
    a_member_s_email_is_read_and_changed_by_them_and_facilitators_alone,
    members_racing_for_one_new_address_leave_it_to_one,
    an_address_members_shared_before_stays_with_the_first_registered,
    a_kickoff_names_its_attendees_who_must_be_members,
);

pub async fn register(app: &TestApp, name: &str, organisation: &str, sector: &str) -> String {
    let data = app
        .data(
            "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id name } } }",
            json!({ "input": { "name": name, "organisation": organisation, "sector": sector, "expertise": ["test"] } }),
        )
        .await;
    data["registerMember"]["member"]["id"].as_str().expect("member id").to_string()
}

pub async fn raise(app: &TestApp, by: &str) -> String {
    let data = app
        .data(
            "mutation($input: RaiseChallengeInput!) { raiseChallenge(input: $input) { challenge { id } } }",
            json!({ "input": { "title": "Kennis lekt weg", "description": "Bij vertrek verdwijnt vakkennis.",
                               "raisedBy": by, "origin": { "kind": "OWN_FRUSTRATION" } } }),
        )
        .await;
    data["raiseChallenge"]["challenge"]["id"].as_str().expect("challenge id").to_string()
}

const DOETANK_FIELDS: &str =
    "doetank { id name version currentPhase status memberCount members { role member { id name } } \
     coach { id } phases { phase completedAt summary } lessons { id kind title tags } } \
     result { streamVersion position deduplicated } lesson { id title }";

/// A doetank mutation as a facilitator.
pub async fn mutate(app: &TestApp, mutation: &str, input_type: &str, input: Value) -> Value {
    mutate_as(app, &facilitator(), mutation, input_type, input).await
}

pub async fn mutate_as(app: &TestApp, token: &str, mutation: &str, input_type: &str, input: Value) -> Value {
    let query =
        format!("mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {DOETANK_FIELDS} }} }}");
    app.gql_as(Some(token), &query, json!({ "input": input })).await
}

async fn ok(app: &TestApp, mutation: &str, input_type: &str, input: Value) -> Value {
    ok_as(app, &facilitator(), mutation, input_type, input).await
}

async fn ok_as(app: &TestApp, token: &str, mutation: &str, input_type: &str, input: Value) -> Value {
    let body = mutate_as(app, token, mutation, input_type, input).await;
    assert!(body.get("errors").is_none(), "{mutation} failed: {body:#}");
    body["data"][mutation].clone()
}

/// Sends a command that must be refused with `code` (and `rule`), and checks it wrote nothing.
async fn refused(
    app: &TestApp,
    mutation: &str,
    input_type: &str,
    input: Value,
    code: &str,
    rule: Option<&str>,
) {
    refused_as(app, &facilitator(), mutation, input_type, input, code, rule).await
}

pub async fn refused_as(
    app: &TestApp,
    token: &str,
    mutation: &str,
    input_type: &str,
    input: Value,
    code: &str,
    rule: Option<&str>,
) {
    let head = app.head().await;
    let body = mutate_as(app, token, mutation, input_type, input).await;
    assert_refused(app, head, &body, mutation, code, rule).await;
}

/// `body` answered `mutation` with one error of `code` (naming `rule`), and the log is still at `head`.
pub async fn assert_refused(
    app: &TestApp,
    head: i64,
    body: &Value,
    mutation: &str,
    code: &str,
    rule: Option<&str>,
) {
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], code, "{mutation}: {body:#}");
    if let Some(rule) = rule {
        assert_eq!(error["extensions"]["rule"], rule, "{mutation}: {body:#}");
        assert!(error["message"].as_str().unwrap_or_default().contains(rule), "the message names the rule");
    }
    assert!(body["data"].is_null() || body["data"][mutation].is_null());
    assert_eq!(app.head().await, head, "{mutation} refused with {code} must write nothing");
}

async fn a_doetank_lives_through_http_and_every_rule_answers_with_its_code(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna Test", "Gemeente Utrecht", "PUBLIC").await;
    let second = register(&app, "Bas Test", "Belastingdienst", "PUBLIC").await;
    let third = register(&app, "Cor Test", "TNO", "PUBLIC").await;
    let coach = register(&app, "Dirk Coach", "Kennisland", "PUBLIC").await;
    let adviser = register(&app, "Eef Adviseur", "Bureau X", "EXTERNAL_ADVISER").await;
    let adviser2 = register(&app, "Fem Adviseur", "Bureau Y", "EXTERNAL_ADVISER").await;
    let outsider = register(&app, "Gijs Buiten", "Gemeente Zeist", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;

    let formed = ok(
        &app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": "Kennisbehoud", "challengeId": challenge, "leadId": lead, "memberIds": [second] }),
    )
    .await;
    let d = formed["doetank"]["id"].as_str().expect("doetank id").to_string();
    assert_eq!(formed["doetank"]["currentPhase"], "DISCOVER");
    assert_eq!(formed["doetank"]["memberCount"], 2);
    assert_eq!(formed["result"]["streamVersion"], 2, "formed + phase started");
    assert_eq!(
        formed["result"]["position"],
        app.head().await,
        "the response names the last position written"
    );

    let complete = |phase: &str| json!({ "doetankId": d, "phase": phase, "summary": "Klaar." });
    refused_as(
        &app,
        &member(&lead),
        "completePhase",
        "CompletePhaseInput",
        complete("DISCOVER"),
        "RULE_VIOLATED",
        Some("PHASE_NEEDS_TEAM_AND_COACH"),
    )
    .await;

    // Rule 2: with 2 public members, one adviser may join, a second may not.
    let joined =
        ok(&app, "joinDoetank", "DoetankMemberInput", json!({ "doetankId": d, "memberId": adviser })).await;
    assert_eq!(joined["doetank"]["memberCount"], 3, "read-your-writes: the response shows the new member");
    refused(
        &app,
        "joinDoetank",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": adviser2 }),
        "RULE_VIOLATED",
        Some("EXTERNALS_NOT_PRIMARY"),
    )
    .await;
    ok(&app, "joinDoetank", "DoetankMemberInput", json!({ "doetankId": d, "memberId": third })).await;

    // Rule 3.
    refused(
        &app,
        "assignCoach",
        "AssignCoachInput",
        json!({ "doetankId": d, "coachId": second }),
        "RULE_VIOLATED",
        Some("COACH_NOT_MEMBER"),
    )
    .await;
    ok(&app, "assignCoach", "AssignCoachInput", json!({ "doetankId": d, "coachId": coach })).await;
    refused(
        &app,
        "joinDoetank",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": coach }),
        "RULE_VIOLATED",
        Some("COACH_NOT_MEMBER"),
    )
    .await;
    refused(
        &app,
        "changeLead",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": outsider }),
        "RULE_VIOLATED",
        Some("LEAD_IS_MEMBER"),
    )
    .await;
    refused(
        &app,
        "leaveDoetank",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": lead }),
        "RULE_VIOLATED",
        Some("LEAD_IS_MEMBER"),
    )
    .await;

    // Rule 4: in order, each once.
    refused_as(
        &app,
        &member(&lead),
        "completePhase",
        "CompletePhaseInput",
        complete("RESEARCH"),
        "RULE_VIOLATED",
        Some("PHASE_ORDER"),
    )
    .await;
    let done = ok_as(&app, &member(&lead), "completePhase", "CompletePhaseInput", complete("DISCOVER")).await;
    assert_eq!(done["doetank"]["currentPhase"], "RESEARCH");
    assert_eq!(done["doetank"]["phases"][0]["summary"], "Klaar.");
    // Recorded after the fact, but not before the phase started (its duration went negative,
    // and the network's median with it), nor in the future.
    let head = app.head().await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    for (at, says) in [("2001-01-01T00:00:00Z", "RESEARCH started"), (tomorrow.as_str(), "in the future")] {
        let mut input = complete("RESEARCH");
        input["at"] = at.into();
        let body = mutate_as(&app, &member(&lead), "completePhase", "CompletePhaseInput", input).await;
        let error = &body["errors"][0];
        assert_eq!(
            (&error["extensions"]["code"], &error["extensions"]["field"]),
            (&json!("BAD_INPUT"), &json!("at")),
            "{body:#}"
        );
        assert!(error["message"].as_str().is_some_and(|m| m.contains(says)), "{body:#}");
    }
    assert_eq!(app.head().await, head, "a refused time writes nothing");
    refused_as(
        &app,
        &member(&lead),
        "completePhase",
        "CompletePhaseInput",
        complete("DISCOVER"),
        "RULE_VIOLATED",
        Some("PHASE_ORDER"),
    )
    .await;

    // Lessons: by members or the coach only. To an outsider the informal doetank does not
    // exist (rule 5); once public, they meet rule 4 (below).
    let lesson = |by: &str, title: &str, body: &str| json!({ "doetankId": d, "recordedBy": by, "kind": "DOES_NOT_WORK", "title": title, "body": body, "tags": ["Werving"] });
    refused_as(
        &app,
        &member(&outsider),
        "recordLesson",
        "RecordLessonInput",
        lesson(&outsider, "x", "y"),
        "NOT_FOUND",
        None,
    )
    .await;
    ok_as(
        &app,
        &member(&second),
        "recordLesson",
        "RecordLessonInput",
        lesson(&second, "Alleen LinkedIn werkt niet", "Oproepen leverden geen koppels op."),
    )
    .await;
    let with_lessons = ok_as(
        &app,
        &member(&coach),
        "recordLesson",
        "RecordLessonInput",
        lesson(&coach, "Werkgevers twijfelen", "De werkgevers vrezen kosten."),
    )
    .await;
    assert_eq!(with_lessons["doetank"]["lessons"].as_array().map(Vec::len), Some(2));
    // The answer names the lesson it recorded; other commands answer none.
    assert_eq!(with_lessons["lesson"]["title"], "Werkgevers twijfelen");
    assert_eq!(with_lessons["lesson"]["id"], with_lessons["doetank"]["lessons"][1]["id"]);
    assert!(formed["lesson"].is_null());
    // Tags are keywords: more than fifty is refused and writes nothing (until the thirtieth
    // session 5,000 were kept).
    let mut tagged = lesson(&coach, "Te veel", "labels");
    tagged["tags"] = json!((0..51).map(|i| format!("label{i}")).collect::<Vec<_>>());
    let head = app.head().await;
    let body = mutate_as(&app, &member(&coach), "recordLesson", "RecordLessonInput", tagged).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("tags")), "{body:#}");
    assert_eq!(app.head().await, head);

    // Read them back through the knowledge base, with Dutch stemming: "werkgever" finds "werkgevers".
    let found = app
        .data(
            "query($f: LessonFilter) { lessons(filter: $f) { totalCount edges { node { title phase kind tags organisation doetank { name } } } } }",
            json!({ "f": { "search": "werkgever", "kind": "DOES_NOT_WORK", "tag": "werving" } }),
        )
        .await;
    assert_eq!(found["lessons"]["totalCount"], 1, "{found:#}");
    let node = &found["lessons"]["edges"][0]["node"];
    assert_eq!(node["title"], "Werkgevers twijfelen");
    assert_eq!(node["phase"], "RESEARCH");
    assert_eq!(node["tags"], json!(["werving"]));
    assert_eq!(node["organisation"], "Kennisland");
    assert_eq!(node["doetank"]["name"], "Kennisbehoud");
    let by_org = app
        .data(
            "query($f: LessonFilter) { lessons(filter: $f) { edges { node { title } } } }",
            json!({ "f": { "organisation": "kennisland", "tag": "werving" } }),
        )
        .await;
    assert_eq!(by_org["lessons"]["edges"][0]["node"]["title"], "Werkgevers twijfelen", "{by_org:#}");

    // By relevance (a match in the title weighs most), one page at a time, none twice.
    ok_as(
        &app,
        &member(&coach),
        "recordLesson",
        "RecordLessonInput",
        lesson(&coach, "Vacatures bleven open", "Een werkgever haakte af."),
    )
    .await;
    let page = |after: Value| {
        let app = &app;
        async move {
            app.data(
                "query($after: String) { lessons(filter: { search: \"werkgever\" }, first: 1, after: $after) { totalCount edges { node { title rank } } pageInfo { endCursor hasNextPage } } }",
                json!({ "after": after }),
            )
            .await["lessons"]
                .clone()
        }
    };
    let top = page(Value::Null).await;
    let next = page(top["pageInfo"]["endCursor"].clone()).await;
    assert_eq!(top["totalCount"], 2, "{top:#}");
    assert_eq!(top["edges"][0]["node"]["title"], "Werkgevers twijfelen");
    assert_eq!(next["edges"][0]["node"]["title"], "Vacatures bleven open");
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    // Past the end: no lessons, and still the count of all matches.
    let past = page(next["pageInfo"]["endCursor"].clone()).await;
    assert_eq!(past["edges"], json!([]));
    assert_eq!(past["totalCount"], 2, "{past:#}");
    let rank = |page: &Value| page["edges"][0]["node"]["rank"].as_f64().expect("a search ranks");
    assert!(rank(&top) > rank(&next), "{top:#} {next:#}");
    // A search that could only find nothing says why (until the thirty-second session it
    // answered an empty list): no word at all, or only words too common to look for, which
    // both backends leave out alike (until the thirty-third session SQLite looked for them).
    let search = "query($s: String!) { lessons(filter: { search: $s }) { totalCount } }";
    let error = app.error(search, json!({ "s": " ?! 😀 " })).await;
    assert_eq!(
        (&error["extensions"]["code"], &error["extensions"]["field"]),
        (&json!("BAD_INPUT"), &json!("search"))
    );
    let common = app.error(search, json!({ "s": "de het" })).await;
    assert_eq!(common["extensions"]["field"], "search", "{common:#}");
    assert!(common["message"].as_str().unwrap_or_default().contains("too common"), "{common:#}");
    // "de" asks for nothing: on SQLite it asked for a word beginning with "de" as well.
    let with_a_word = app.data(search, json!({ "s": "de werkgever" })).await;
    assert_eq!(with_a_word["lessons"]["totalCount"], 2, "{with_a_word:#}");

    // Rule 1: a tenth innovator is refused.
    for i in 0..5 {
        let m = register(&app, &format!("Extra {i}"), "Gemeente Utrecht", "PUBLIC").await;
        ok(&app, "joinDoetank", "DoetankMemberInput", json!({ "doetankId": d, "memberId": m })).await;
    }
    refused(
        &app,
        "joinDoetank",
        "DoetankMemberInput",
        json!({ "doetankId": d, "memberId": outsider }),
        "RULE_VIOLATED",
        Some("DOETANK_SIZE"),
    )
    .await;

    // An update links to a page a browser opens: kept in its normal form; a link without a
    // host, or with a space in it, is refused (until the thirtieth session only its first
    // characters were looked at).
    let update = |link: &str| json!({ "doetankId": d, "channel": "BLOG", "title": "Ons blog", "link": link });
    for link in ["https://", "https://exa mple.org"] {
        let head = app.head().await;
        let body =
            mutate_as(&app, &member(&second), "publishUpdate", "PublishUpdateInput", update(link)).await;
        let ext = &body["errors"][0]["extensions"];
        assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("link")), "{link}: {body:#}");
        assert_eq!(app.head().await, head);
    }
    let published = ok_as(
        &app,
        &member(&second),
        "publishUpdate",
        "PublishUpdateInput",
        update("HTTPS://Example.org/ons blog"),
    )
    .await;
    let updates =
        app.data("query($id: ID!) { doetank(id: $id) { updates { link } } }", json!({ "id": d })).await;
    assert_eq!(
        updates["doetank"]["updates"],
        json!([{ "link": "https://example.org/ons%20blog" }]),
        "{published:#}"
    );

    // Rule 5 and 6.
    ok(&app, "makeDoetankPublic", "DoetankCommandInput", json!({ "doetankId": d })).await;
    refused_as(
        &app,
        &member(&outsider),
        "recordLesson",
        "RecordLessonInput",
        lesson(&outsider, "x", "y"),
        "RULE_VIOLATED",
        Some("LESSON_BY_TEAM"),
    )
    .await;
    refused(
        &app,
        "makeDoetankPublic",
        "DoetankCommandInput",
        json!({ "doetankId": d }),
        "RULE_VIOLATED",
        Some("INFORMAL_UNTIL_PUBLIC"),
    )
    .await;
    let concluded = ok(
        &app,
        "concludeDoetank",
        "ConcludeDoetankInput",
        json!({ "doetankId": d, "outcome": "DISCONTINUED", "reflection": "Te weinig tijd." }),
    )
    .await;
    assert_eq!(concluded["doetank"]["status"], "DISCONTINUED");
    refused_as(
        &app,
        &member(&second),
        "recordLesson",
        "RecordLessonInput",
        lesson(&second, "t", "b"),
        "RULE_VIOLATED",
        Some("CONCLUDED_IS_FINAL"),
    )
    .await;

    // The doetank's own history comes from the log, with metadata.
    let history = app
        .data(
            "query($id: ID!) { doetank(id: $id) { history { version type actor payload } } }",
            json!({ "id": d }),
        )
        .await;
    let events = history["doetank"]["history"].as_array().expect("history");
    assert_eq!(events[0]["type"], "DoetankFormed");
    assert_eq!(events[0]["actor"], "facilitator:staff", "the metadata records who did it");
    assert_eq!(events.last().map(|e| e["type"].clone()), Some(json!("DoetankConcluded")));
    assert!(events.iter().enumerate().all(|(i, e)| e["version"] == json!(i + 1)));
    // Who sent each command is for signed-in readers, as the log is: a facilitator's token
    // subject is not told to anyone (until the thirty-first session it was).
    let anonymous = app
        .gql_as(
            None,
            "query($id: ID!) { doetank(id: $id) { history { type actor commandId } } }",
            json!({ "id": d }),
        )
        .await;
    let told = anonymous["data"]["doetank"]["history"].as_array().expect("history").clone();
    assert_eq!(told.len(), events.len(), "{anonymous:#}");
    assert!(told.iter().all(|e| e["actor"].is_null() && e["commandId"].is_null()), "{anonymous:#}");
    // A past state tells the history it had then, not what came after (until the thirty-first
    // session it told the whole stream).
    let past = app
        .data(
            "query($id: ID!) { doetank(id: $id, atVersion: 3) { version history { version } } }",
            json!({ "id": d }),
        )
        .await;
    assert_eq!(past["doetank"]["history"], json!([{ "version": 1 }, { "version": 2 }, { "version": 3 }]));
}

/// A member, a challenge she raised and a doetank `name` she leads, formed by a facilitator:
/// (her id, the doetank's id, its version).
async fn led_doetank(app: &TestApp, name: &str) -> (String, String, i64) {
    let lead = register(app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(app, &lead).await;
    let formed = ok(
        app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": name, "challengeId": challenge, "leadId": lead }),
    )
    .await;
    let d = formed["doetank"]["id"].as_str().expect("doetank id").to_string();
    let version = formed["doetank"]["version"].as_i64().expect("version");
    (lead, d, version)
}

/// A doetank's lead, coach and members each come out as the member `member(id:)` reads alone,
/// however the loaders gather them (batched, or joined to the memberships as the twenty-third
/// session tried), and the coach never passes for a member.
async fn a_doetank_s_people_are_the_members_asked_for_by_id(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let (lead, d, _) = led_doetank(&app, "Mensen").await;
    let second = register(&app, "Bas", "Belastingdienst", "PUBLIC").await;
    let coach = register(&app, "Dirk Coach", "Kennisland", "PUBLIC").await;
    ok(&app, "joinDoetank", "DoetankMemberInput", json!({ "doetankId": d, "memberId": second })).await;
    ok(&app, "assignCoach", "AssignCoachInput", json!({ "doetankId": d, "coachId": coach })).await;

    let fields = "id name organisation sector expertise onSupportCommittee erased registeredAt version";
    let query = format!(
        "query($d: ID!, $lead: ID!, $second: ID!, $coach: ID!) {{ \
         doetank(id: $d) {{ lead {{ {fields} }} coach {{ {fields} }} members {{ role sector member {{ {fields} }} }} }} \
         l: member(id: $lead) {{ {fields} }} s: member(id: $second) {{ {fields} }} c: member(id: $coach) {{ {fields} }} }}"
    );
    let data = app.data(&query, json!({ "d": d, "lead": lead, "second": second, "coach": coach })).await;
    let doetank = &data["doetank"];
    assert_eq!(doetank["lead"], data["l"], "{data:#}");
    assert_eq!(doetank["coach"], data["c"], "{data:#}");
    assert_eq!(data["c"]["name"], "Dirk Coach");
    let members = doetank["members"].as_array().expect("members");
    assert_eq!(members.len(), 2, "the coach is not one of the members: {data:#}");
    assert_eq!(members[0]["role"], "LEAD");
    assert_eq!(members[0]["member"], data["l"]);
    assert_eq!(members[1]["role"], "MEMBER");
    assert_eq!(members[1]["sector"], "PUBLIC");
    assert_eq!(members[1]["member"], data["s"]);

    // The coach released: no coach, the same members.
    ok(&app, "releaseCoach", "DoetankCommandInput", json!({ "doetankId": d })).await;
    let data = app.data(&query, json!({ "d": d, "lead": lead, "second": second, "coach": coach })).await;
    assert_eq!(data["doetank"]["coach"], Value::Null, "{data:#}");
    assert_eq!(data["doetank"]["members"].as_array().map(Vec::len), Some(2));
}

async fn a_stale_expected_version_is_a_version_conflict(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let (_, d, version) = led_doetank(&app, "V").await;
    ok(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": "BZK", "expectedVersion": version }),
    )
    .await;

    let head = app.head().await;
    let body = mutate(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": "TNO", "expectedVersion": version }),
    )
    .await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "VERSION_CONFLICT", "{body:#}");
    assert_eq!(ext["expected"], version);
    assert_eq!(ext["actual"], version + 1);
    assert_eq!(app.head().await, head);

    // A version no stream can be at is a mistake in the input, not a race.
    let body = mutate(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": "TNO", "expectedVersion": -1 }),
    )
    .await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("expectedVersion")), "{body:#}");
    assert_eq!(app.head().await, head);

    // The commissioner it has already, however spelled, is no change: no event, as for the
    // lead or coach it has (until the thirty-first session each repeat wrote one).
    ok(
        &app,
        "attachCommissioner",
        "AttachCommissionerInput",
        json!({ "doetankId": d, "organisation": " bzk " }),
    )
    .await;
    assert_eq!(app.head().await, head, "no event for the commissioner it has");
}

async fn a_repeated_command_id_returns_the_first_result(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let command_id = uuid::Uuid::new_v4().to_string();
    let input = json!({ "name": "Idem", "challengeId": challenge, "leadId": lead, "commandId": command_id,
                        "id": uuid::Uuid::new_v4().to_string() });
    let first = ok(&app, "formDoetank", "FormDoetankInput", input.clone()).await;
    let first_doetank = first.clone();
    let head = app.head().await;
    let again = ok(&app, "formDoetank", "FormDoetankInput", input).await;
    assert_eq!(again["result"]["deduplicated"], true);
    assert_eq!(again["result"]["position"], first["result"]["position"]);
    assert_eq!(again["doetank"]["id"], first["doetank"]["id"]);
    assert_eq!(app.head().await, head, "the retry wrote nothing");

    // The command id sent again with another input is another command under a used key:
    // refused, naming `commandId`, and nothing changes, not even the personal data kept beside
    // the log. (Until the twenty-ninth session it was answered with the first result, and the
    // second command was lost without a word.)
    let (id, command_id) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let input = |name: &str| json!({ "id": id, "commandId": command_id, "name": name, "organisation": "TNO", "sector": "PUBLIC" });
    let register_as = |name: &str| {
        app.gql(
            "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { result { position deduplicated } } }",
            json!({ "input": input(name) }),
        )
    };
    let first = register_as("Eerste").await["data"]["registerMember"].clone();
    let head = app.head().await;
    let changed = register_as("Tweede").await;
    let ext = &changed["errors"][0]["extensions"];
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("commandId")), "{changed:#}");
    assert_eq!(app.head().await, head, "the changed command wrote nothing");
    let kept = app.data("query($id: ID!) { member(id: $id) { name } }", json!({ "id": id })).await;
    assert_eq!(kept["member"]["name"], "Eerste", "a reused key rewrote the personal data");
    // The same input written another way is the same command: inline rather than in
    // variables, its fields in another order, a null given for what was left out.
    let inline = format!(
        "mutation {{ registerMember(input: {{ sector: PUBLIC, organisation: \"TNO\", name: \"Eerste\", \
         commandId: \"{command_id}\", id: \"{id}\", expectedVersion: null }}) {{ result {{ position deduplicated }} }} }}"
    );
    let again = app.data(&inline, json!({})).await["registerMember"].clone();
    assert_eq!(again["result"]["deduplicated"], true, "{again:#}");
    assert_eq!(again["result"]["position"], first["result"]["position"]);
    // A lesson under a used key: the first is kept and the second refused, not swallowed;
    // and another member sending the first one's very command is not its author's retry.
    let (doetank, key) = (first_doetank["doetank"]["id"].clone(), uuid::Uuid::new_v4().to_string());
    let lesson = |title: &str| json!({ "doetankId": doetank, "title": title, "body": "Wat werkte", "kind": "WORKS", "commandId": key });
    let recorded =
        mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson("Eerste les")).await;
    assert_eq!(recorded["data"]["recordLesson"]["lesson"]["title"], "Eerste les", "{recorded:#}");
    let head = app.head().await;
    let retried =
        mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson("Eerste les")).await;
    assert_eq!(retried["data"]["recordLesson"]["result"]["deduplicated"], true, "{retried:#}");
    let second =
        mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson("Tweede les")).await;
    assert_eq!(second["errors"][0]["extensions"]["field"], "commandId", "{second:#}");
    assert_eq!(app.head().await, head, "neither the retry nor the second lesson wrote");
    let other = register(&app, "Bas", "TNO", "PUBLIC").await;
    let join = json!({ "doetankId": doetank, "memberId": other });
    let joined = mutate(&app, "joinDoetank", "DoetankMemberInput", join).await;
    assert!(joined.get("errors").is_none(), "{joined:#}");
    let head = app.head().await;
    let by_another =
        mutate_as(&app, &member(&other), "recordLesson", "RecordLessonInput", lesson("Eerste les")).await;
    assert_eq!(by_another["errors"][0]["extensions"]["field"], "commandId", "{by_another:#}");
    assert_eq!(app.head().await, head, "neither wrote");

    // Without an id, the command id names the new member and the new challenge, so a retry
    // finds the first result (a fresh id would be a stream that never saw the key).
    let mutations = [
        (
            "registerMember",
            "RegisterMemberInput",
            "member",
            json!({ "name": "Zonder id", "organisation": "TNO", "sector": "PUBLIC" }),
        ),
        (
            "raiseChallenge",
            "RaiseChallengeInput",
            "challenge",
            json!({ "title": "Zonder id", "description": "Opnieuw gestuurd", "raisedBy": lead, "origin": { "kind": "OWN_FRUSTRATION" } }),
        ),
    ];
    for (mutation, input_type, entity, mut input) in mutations {
        input["commandId"] = uuid::Uuid::new_v4().to_string().into();
        let query = format!(
            "mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {entity} {{ id }} result {{ position deduplicated }} }} }}"
        );
        let first = app.data(&query, json!({ "input": input })).await[mutation].clone();
        let head = app.head().await;
        let again = app.data(&query, json!({ "input": input })).await[mutation].clone();
        assert_eq!(again["result"]["deduplicated"], true, "{mutation}: {again:#}");
        assert_eq!(again[entity]["id"], first[entity]["id"], "{mutation}");
        assert_eq!(again[entity]["id"], input["commandId"], "{mutation}");
        assert_eq!(app.head().await, head, "{mutation}: the retry wrote nothing");
    }
}

async fn bad_input_is_a_typed_error_never_a_500(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let not_uuid = app.error("{ doetank(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(not_uuid["extensions"]["code"], "BAD_INPUT");

    let missing = mutate(
        &app,
        "makeDoetankPublic",
        "DoetankCommandInput",
        json!({ "doetankId": uuid::Uuid::new_v4() }),
    )
    .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND", "{missing:#}");

    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let no_challenge = mutate(
        &app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": "X", "challengeId": uuid::Uuid::new_v4(), "leadId": lead }),
    )
    .await;
    assert_eq!(no_challenge["errors"][0]["extensions"]["code"], "NOT_FOUND");

    let empty_name = app
        .error(
            "mutation { registerMember(input: { name: \"  \", organisation: \"TNO\", sector: PUBLIC }) { member { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(empty_name["extensions"]["code"], "BAD_INPUT");
    assert_eq!(empty_name["extensions"]["field"], "name");

    // A declared variable left without a value is named as such (async-graphql's text said
    // "Variable n is not defined.", as if the operation did not declare it).
    let unset = app.error("query($n: Int!) { doetanks(first: $n) { totalCount } }", json!({})).await;
    assert_eq!(unset["extensions"]["code"], "BAD_INPUT", "{unset:#}");
    assert!(
        unset["message"].as_str().unwrap_or_default().starts_with("variable $n has no value"),
        "{unset:#}"
    );

    // A variable is held to its declared type, not only to the argument's: `Int!` given null
    // is refused as a whole, naming where it is declared (until the thirty-third session it
    // ran as if absent wherever the argument may be null: here, the first page of 20).
    for (query, variables, said) in [
        ("query($n: Int!) { doetanks(first: $n) { totalCount } }", json!({ "n": null }), "given null"),
        (
            "query($n: Int!) { doetanks(first: $n) { totalCount } members { totalCount } }",
            json!({}),
            "has no value",
        ),
    ] {
        let answer = app.gql(query, variables).await;
        assert!(answer.get("data").is_none(), "refused before it runs: {answer:#}");
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_INPUT", "{answer:#}");
        assert_eq!(error["extensions"]["field"], "$n", "{answer:#}");
        assert!(error["message"].as_str().unwrap_or_default().contains(said), "{answer:#}");
        assert_eq!(error["locations"][0], json!({ "line": 1, "column": 7 }), "{answer:#}");
    }

    let too_many = app.error("{ doetanks(first: 1000) { totalCount } }", json!({})).await;
    assert_eq!(too_many["extensions"]["code"], "BAD_INPUT");
    let bad_cursor = app.error("{ doetanks(after: \"bogus\") { totalCount } }", json!({})).await;
    assert_eq!(bad_cursor["extensions"]["code"], "BAD_INPUT");

    // Too deep: refused by the depth limit before anything runs.
    let deep = "{ doetanks { edges { node { challenge { doetanks { lead { doetanks { doetank { challenge { doetanks { lead { doetanks { doetank { challenge { doetanks { lead { id } } } } } } } } } } } } } } } } }";
    let body = app.gql(deep, json!({})).await;
    assert!(
        body["errors"][0]["message"].as_str().unwrap_or_default().contains("nested too deep"),
        "{body:#}"
    );

    let garbage = app.post_raw("application/json", "{not json").await;
    assert_eq!(garbage.status().as_u16(), 400);
    let huge = "x".repeat(doetank_api::server::MAX_BODY_BYTES + 1);
    // Its own client: the server closes that connection after answering 413.
    let too_big = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(too_big.status().as_u16(), 413);

    let health = app.http.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let health: Value = health.json().await.expect("JSON");
    // Every command above was projected before it was answered: nothing is behind.
    let head = app.head().await;
    assert_eq!(health["log"], json!({ "head": head, "projected": head, "behind": 0 }), "{health:#}");
    assert_eq!(health["webSockets"], 0);
    assert_eq!(health["eventStreams"], 0);
    // Caught up and not stopping: ready for a load balancer, also with no lag allowed.
    for (path, max_behind) in [("/readyz", 1_000), ("/readyz?maxBehind=0", 0)] {
        let ready = app.http.get(app.url(path)).send().await.expect("readyz");
        assert_eq!(ready.status().as_u16(), 200, "{path}");
        let ready: Value = ready.json().await.expect("JSON");
        assert_eq!(ready, json!({ "status": "ready", "behind": 0, "maxBehind": max_behind }), "{path}");
    }
    for path in ["/readyz?maxBehind=-1", "/readyz?maxBehind=lots"] {
        let refused = app.http.get(app.url(path)).send().await.expect("readyz");
        assert_eq!(refused.status().as_u16(), 400, "{path}");
        let refused: Value = refused.json().await.expect("a JSON refusal");
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{path}: {refused:#}");
    }
    let socket = WsClient::connect(&app, MODERN).await;
    let mut open = Value::Null;
    for _ in 0..100 {
        let health: Value =
            app.http.get(app.url("/healthz")).send().await.expect("get").json().await.expect("json");
        open = health["webSockets"].clone();
        if open == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(open, 1, "an open WebSocket is counted");
    socket.close().await;
    let playground =
        app.http.get(app.url("/graphql")).send().await.expect("playground").text().await.expect("html");
    assert!(playground.contains("graphiql") && playground.contains("/graphql/ws"));
}

/// Errors async-graphql raises itself (a text that does not parse, one that does not fit the
/// schema, a variable it cannot coerce) and bodies that are no GraphQL request at all carry a
/// code like every other error, over HTTP (whether answers are kept or not; with the status
/// and media type GraphQL over HTTP gives each) and over a WebSocket (where
/// graphql-transport-ws refuses a text with an `error` message), and none names a place that
/// is not in the text.
async fn every_error_has_a_code_also_those_of_the_request_itself(db: &TestDb) {
    let asked: [(Value, &str); 9] = [
        (json!({ "query": "query { " }), "GRAPHQL_PARSE_FAILED"),
        (json!({ "query": "{ nope }" }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "query": "{ doetank { name } }" }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "query": "{ cafes(when: NOPE) { totalCount } }" }), "GRAPHQL_VALIDATION_FAILED"),
        (
            json!({ "query": "query($n: Int) { doetanks(first: $n) { totalCount } }", "variables": { "n": "x" } }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (json!({ "query": "query A { __typename } query B { __typename }" }), "GRAPHQL_VALIDATION_FAILED"),
        (json!({ "query": "query A { __typename }", "operationName": "C" }), "GRAPHQL_VALIDATION_FAILED"),
        // A declared variable left without a value: refused before it runs, as the spec's
        // coercion of variables has it (until the thirty-third session it was found as the
        // operation ran, and answered with `data`).
        (json!({ "query": "query($n: Int!) { doetanks(first: $n) { totalCount } }" }), "BAD_INPUT"),
        (json!({ "query": "{ doetanks(first: 1000) { totalCount } }" }), "BAD_INPUT"),
    ];
    let coded = |body: &Value, code: &str, what: &str| {
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{what}: no errors in {body:#}"));
        assert!(!errors.is_empty(), "{what}: {body:#}");
        for error in errors {
            assert_eq!(error["extensions"]["code"], code, "{what}: {body:#}");
            for location in error["locations"].as_array().into_iter().flatten() {
                assert!(location["line"].as_u64() >= Some(1), "{what}: a location not in the text: {body:#}");
            }
        }
    };
    // All but an argument a resolver refuses as it runs.
    let refused_as_a_whole = |body: &Value, code: &str| {
        code != "BAD_INPUT" || body["query"].as_str().is_some_and(|q| q.contains("$n"))
    };
    const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
    for keep in [true, false] {
        let app = TestApp::spawn_with(db, ServerConfig { keep, ..ServerConfig::default() }).await;
        for (body, code) in &asked {
            // GraphQL over HTTP: a client that accepts application/graphql-response+json learns
            // from the status that the request was refused as a whole; one that knows only
            // application/json gets 200 (the errors say it). An argument a resolver refuses
            // is found as the operation runs: its answer has `data`, and 200.
            let refused = refused_as_a_whole(body, code);
            for (accept, status, media) in [
                (GRAPHQL_RESPONSE, if refused { 400 } else { 200 }, GRAPHQL_RESPONSE),
                ("application/json", 200, "application/json"),
                ("*/*", if refused { 400 } else { 200 }, GRAPHQL_RESPONSE),
            ] {
                // Twice: a text asked again is served from what the server kept of it.
                for round in 0..2 {
                    let what = format!("{body} (accept {accept}, keep {keep}, round {round})");
                    let response = app
                        .http
                        .post(app.url("/graphql"))
                        .header("accept", accept)
                        .json(body)
                        .send()
                        .await
                        .expect("POST /graphql");
                    assert_eq!(response.status().as_u16(), status, "{what}");
                    let content_type = response.headers().get("content-type").cloned();
                    assert_eq!(content_type.as_ref().map(|m| m.as_bytes()), Some(media.as_bytes()), "{what}");
                    let answer: Value = response.json().await.expect("JSON");
                    coded(&answer, code, &what);
                    // The GraphQL spec: no `data` entry when an error came before execution.
                    assert_eq!(answer.get("data").is_some(), !refused, "{what}: {answer:#}");
                }
            }
        }
        let over_the_batch_limit = Value::Array(vec![json!({ "query": "{ __typename }" }); 33]).to_string();
        let refusals: [(&str, u16, &str); 3] = [
            ("{not json", 400, "BAD_REQUEST"),
            (&over_the_batch_limit, 400, "BAD_REQUEST"),
            (&"x".repeat(doetank_api::server::MAX_BODY_BYTES + 1), 413, "REQUEST_TOO_LARGE"),
        ];
        for (sent, status, code) in refusals {
            // Its own client: the server closes the connection after a 413.
            let response = reqwest::Client::new()
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body(sent.to_string())
                .send()
                .await
                .expect("post");
            assert_eq!(response.status().as_u16(), status, "{code}");
            let answer: Value = response.json().await.expect("a GraphQL answer, not plain text");
            coded(&answer, code, code);
        }
        // JSON of the wrong shape is told what a request is (serde's words named an enum of
        // async-graphql's: "did not match any variant of untagged enum BatchRequest").
        let shaped = app.post_graphql(&json!({ "query": "{ position }", "variables": "{}" })).await;
        assert_eq!(shaped.status().as_u16(), 400);
        let answer: Value = shaped.json().await.expect("JSON");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("`variables` (an object)") && !message.contains("enum"), "{answer:#}");
    }

    // Over a socket also a subscription refused as it would be shared with others.
    let shared = (json!({ "query": "subscription { events { nope } }" }), "GRAPHQL_VALIDATION_FAILED");
    let app = TestApp::spawn(db).await;
    for protocol in [MODERN, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({})).await;
        for (n, (body, code)) in asked.iter().chain([&shared]).enumerate() {
            let id = n.to_string();
            let what = format!("{protocol}: {body}");
            let kind = if protocol == MODERN { "subscribe" } else { "start" };
            client.send(json!({ "type": kind, "id": id, "payload": body })).await;
            let answer = client.next(std::time::Duration::from_secs(5)).await;
            // graphql-transport-ws refuses a text that does not parse or fit the schema with
            // one `error` message (its payload the errors), which no `complete` follows.
            if protocol == MODERN && refused_as_a_whole(body, code) {
                match answer {
                    Some(Incoming::Other(error))
                        if error["type"] == "error" && error["id"] == id.as_str() =>
                    {
                        coded(&json!({ "errors": error["payload"] }), code, &what)
                    }
                    other => panic!("{what}: expected an error message, got {other:?}"),
                }
                continue;
            }
            match answer {
                Some(Incoming::Next(payload)) => coded(&payload, code, &what),
                other => panic!("{what}: expected an answer, got {other:?}"),
            }
            match client.next(std::time::Duration::from_secs(5)).await {
                Some(Incoming::Other(done)) if done["type"] == "complete" && done["id"] == id.as_str() => {}
                other => panic!("{what}: expected its completion, got {other:?}"),
            }
        }
        if protocol == MODERN {
            // Nothing more came after the last `error`: the next frame is the answer to a ping.
            client.send(json!({ "type": "ping" })).await;
            match client.next(std::time::Duration::from_secs(5)).await {
                Some(Incoming::Other(pong)) if pong["type"] == "pong" => {}
                other => panic!("expected pong, got {other:?}"),
            }
        }
        client.close().await;
    }
}

/// GraphQL over HTTP's GET: a query in the URL is answered as over POST (variables as JSON
/// text, an operation picked by name), in either server mode; a mutation is refused with 405
/// and writes nothing; without `query` a browser gets the playground.
async fn a_query_over_get_is_answered_and_a_mutation_refused(db: &TestDb) {
    type Params = Vec<(&'static str, String)>;
    for keep in [true, false] {
        let app = TestApp::spawn_with(db, ServerConfig { keep, ..ServerConfig::default() }).await;
        register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
        let app = &app;
        let get = |params: Params| async move { app.get_graphql(&params).await };
        let query = "query($n: Int) { members(first: $n) { totalCount edges { node { name } } } }";
        let posted = app.data(query, json!({ "n": 1 })).await;
        for _ in 0..2 {
            let response = get(vec![("query", query.into()), ("variables", r#"{"n":1}"#.into())]).await;
            assert_eq!(response.status().as_u16(), 200);
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["data"], posted, "keep {keep}: {body:#}");
        }
        let two = "query A { members { totalCount } } query B { __typename }";
        let picked: Value =
            get(vec![("query", two.into()), ("operationName", "B".into())]).await.json().await.expect("JSON");
        assert_eq!(picked["data"]["__typename"], "Query", "{picked:#}");

        let head = app.head().await;
        let mutation = r#"mutation { registerMember(input: { name: "Bas", organisation: "TNO", sector: PUBLIC }) { member { id } } }"#;
        let refused = get(vec![("query", mutation.into())]).await;
        assert_eq!(refused.status().as_u16(), 405);
        assert!(refused
            .headers()
            .get("allow")
            .is_some_and(|allow| allow.to_str().is_ok_and(|a| a.contains("POST"))));
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED", "{body:#}");
        assert_eq!(app.head().await, head, "a GET wrote nothing");
        // A subscription over GET or in a plain POST is told where it is answered (until the
        // thirty-first session GET said to POST it, and POST that it was not supported).
        let subscription = "subscription { statisticsUpdated { doetanksPerStatus { key } } }";
        let over_get: Value = get(vec![("query", subscription.into())]).await.json().await.expect("JSON");
        let over_post = app.gql(subscription, json!({})).await;
        for (body, code) in [(over_get, "METHOD_NOT_ALLOWED"), (over_post, "GRAPHQL_VALIDATION_FAILED")] {
            assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body:#}");
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("/graphql/stream") && message.contains("WebSocket"), "{body:#}");
        }

        let bad: [(Params, u16, &str); 2] = [
            (vec![("query", query.into()), ("variables", "{n:".into())], 400, "BAD_REQUEST"),
            (vec![("query", "{ members {".into())], 400, "GRAPHQL_PARSE_FAILED"),
        ];
        for (params, status, code) in bad {
            let response = get(params).await;
            assert_eq!(response.status().as_u16(), status, "{code}");
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body:#}");
        }
        // Without a query, a browser gets the playground; a client that asks for JSON alone (as
        // these tests' client does) is told what it left out, not handed the page.
        for accept in ["application/json", "application/graphql-response+json, application/json;q=0.9"] {
            let asked = app.http.get(app.url("/graphql")).header("accept", accept).send().await.expect("GET");
            assert_eq!(asked.status().as_u16(), 400, "{accept}");
            let body: Value = asked.json().await.expect("JSON");
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{body:#}");
        }
        let browser =
            app.http.get(app.url("/graphql")).header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        assert!(browser.send().await.expect("GET").text().await.expect("html").contains("graphiql"));

        // Conditional GET: the same answer again is 304 without a body; a change is a new tag.
        let count = || vec![("query", "{ members { totalCount } }".to_string())];
        let first = get(count()).await;
        let tag = first.headers().get("etag").cloned().expect("an ETag");
        assert_eq!(first.headers().get("cache-control").map(|v| v.as_bytes()), Some(&b"no-cache"[..]));
        let before: Value = first.json().await.expect("JSON");
        let members = before["data"]["members"]["totalCount"].as_i64().expect("a count");
        let conditional = |tag: reqwest::header::HeaderValue| {
            let request = app
                .http
                .get(app.url("/graphql"))
                .query(&count())
                .header("if-none-match", tag)
                .bearer_auth(facilitator());
            async move { request.send().await.expect("GET /graphql") }
        };
        let again = conditional(tag.clone()).await;
        assert_eq!(again.status().as_u16(), 304, "keep {keep}");
        assert_eq!(again.headers().get("etag"), Some(&tag));
        assert!(again.bytes().await.expect("body").is_empty());
        register(app, "Cor", "Kennisland", "PUBLIC").await;
        let changed = conditional(tag.clone()).await;
        assert_eq!(changed.status().as_u16(), 200, "a new member: a new answer");
        assert_ne!(changed.headers().get("etag"), Some(&tag));
        let body: Value = changed.json().await.expect("JSON");
        assert_eq!(body["data"]["members"]["totalCount"], members + 1, "{body:#}");
        // A POST whose body is the query text itself, as `application/graphql` (until the thirtieth
        // session it was read as JSON and refused).
        let plain = app.post_raw("application/graphql; charset=utf-8", "{ doetanks { totalCount } }").await;
        assert_eq!(plain.status().as_u16(), 200);
        let body: Value = plain.json().await.expect("json");
        assert_eq!(body["data"]["doetanks"]["totalCount"], 0, "{body:#}");
    }
}

/// Automatic persisted queries (Apollo's protocol): a hash the server does not know is
/// `PERSISTED_QUERY_NOT_FOUND` with 200 (the client then sends the text with its hash); once
/// sent, the hash alone is answered over GET and POST, in either server mode; a hash that is
/// not the text's is refused and runs nothing.
async fn a_persisted_query_is_asked_by_its_hash_alone(db: &TestDb) {
    use sha2::Digest;
    let hash_of = |text: &str| hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let persisted = |hash: &str| json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let query = "query($n: Int) { members(first: $n) { totalCount edges { node { name } } } }";
    let hash = hash_of(query);
    for keep in [true, false] {
        let app = TestApp::spawn_with(db, ServerConfig { keep, ..ServerConfig::default() }).await;
        register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
        let app = &app;
        let get = |hash: &str| {
            let params =
                [("extensions", persisted(hash).to_string()), ("variables", r#"{"n":1}"#.to_string())];
            async move { app.get_graphql(&params).await }
        };
        let post = |body: Value| async move { app.post_graphql(&body).await };

        // Not known yet: the client is told to send the text; no cache may keep that answer.
        let unknown = get(&hash).await;
        assert_eq!(unknown.status().as_u16(), 200, "keep {keep}");
        let cache = unknown.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(String::from);
        assert!(cache.is_some_and(|c| c.contains("no-cache") && c.contains("private")));
        let body: Value = unknown.json().await.expect("JSON");
        assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{body:#}");
        assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
        assert!(body.get("data").is_none(), "{body:#}");

        // The text with its hash is answered and kept; then the hash alone serves, by either method.
        let sent =
            post(json!({ "query": query, "variables": { "n": 1 }, "extensions": persisted(&hash) })).await;
        assert_eq!(sent.status().as_u16(), 200);
        let sent: Value = sent.json().await.expect("JSON");
        assert_eq!(sent["data"]["members"]["edges"][0]["node"]["name"], "Anna", "{sent:#}");
        let by_get = get(&hash).await;
        assert_eq!(by_get.status().as_u16(), 200);
        assert!(by_get.headers().get("etag").is_some(), "a GET by hash is a cacheable answer");
        let by_get: Value = by_get.json().await.expect("JSON");
        assert_eq!(by_get["data"], sent["data"], "{by_get:#}");
        let by_post = post(json!({ "variables": { "n": 1 }, "extensions": persisted(&hash) })).await;
        let by_post: Value = by_post.json().await.expect("JSON");
        assert_eq!(by_post["data"], sent["data"], "{by_post:#}");
        let streamed = app
            .http
            .post(app.url("/graphql/stream"))
            .json(&json!({ "variables": { "n": 1 }, "extensions": persisted(&hash) }))
            .bearer_auth(facilitator())
            .send()
            .await
            .expect("POST /graphql/stream");
        let streamed = streamed.text().await.expect("events");
        assert!(streamed.contains("event: next") && streamed.contains("Anna"), "{streamed}");

        // A mutation by its hash: over POST it runs, over GET it is refused as any mutation is.
        let mutation = r#"mutation { registerMember(input: { name: "Bas", organisation: "TNO", sector: PUBLIC }) { member { name } } }"#;
        let head = app.head().await;
        let wrong = post(json!({ "query": mutation, "extensions": persisted(&hash) })).await;
        assert_eq!(wrong.status().as_u16(), 400, "another text's hash");
        let wrong: Value = wrong.json().await.expect("JSON");
        assert_eq!(wrong["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{wrong:#}");
        assert_eq!(app.head().await, head, "a refused request wrote nothing");
        let mutation_hash = hash_of(mutation);
        let registered = post(json!({ "query": mutation, "extensions": persisted(&mutation_hash) })).await;
        let registered: Value = registered.json().await.expect("JSON");
        assert_eq!(registered["data"]["registerMember"]["member"]["name"], "Bas", "{registered:#}");
        let again = post(json!({ "extensions": persisted(&mutation_hash) })).await;
        let again: Value = again.json().await.expect("JSON");
        assert_eq!(again["data"]["registerMember"]["member"]["name"], "Bas", "{again:#}");
        let head = app.head().await;
        let over_get = get(&mutation_hash).await;
        assert_eq!(over_get.status().as_u16(), 405);
        assert_eq!(app.head().await, head, "a GET wrote nothing");

        let bad = get("not-a-hash").await;
        assert_eq!(bad.status().as_u16(), 400);
        let bad: Value = bad.json().await.expect("JSON");
        assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{bad:#}");
    }
}

/// `eventActivity` counts a log recorded over years (imported, so its times are the past's) by
/// UTC day, ISO week (from Monday), month and year, with the `events` filter; an answer of more
/// than 10,000 rows is refused with BAD_INPUT rather than cut short.
async fn the_log_s_activity_is_counted_by_day_week_month_and_year(db: &TestDb) {
    use chrono::{TimeZone, Utc};
    let at = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("a time");
    let mut times = vec![
        at(2013, 3, 4, 10, 0),   // a Monday
        at(2013, 3, 10, 23, 59), // the Sunday of that week
        at(2013, 3, 11, 0, 0),   // the next Monday
        at(2013, 12, 31, 23, 0), // a Tuesday: its week began on 30 December
        at(2014, 1, 1, 0, 30),   // the next day: the same week, another month and year
    ];
    // Then one a day for 10,001 days from 2015: more days than one answer holds.
    let first_day = at(2015, 1, 1, 12, 0);
    times.extend((0..10_001).map(|d| first_day + chrono::Duration::days(d)));
    let events: Vec<doetank_store::RecordedEvent> = times
        .iter()
        .enumerate()
        .map(|(i, &recorded_at)| doetank_store::RecordedEvent {
            position: i as i64 + 1,
            event_id: uuid::Uuid::new_v4(),
            stream_id: format!("note-{i}"),
            stream_type: "note".into(),
            version: 1,
            event_type: if i < 5 { "NoteTaken" } else { "DayNoted" }.into(),
            schema_version: 1,
            payload: json!({}),
            metadata: doetank_store::Metadata {
                actor: Some("system".into()),
                command_id: None,
                correlation_id: uuid::Uuid::new_v4(),
                causation_id: None,
            },
            recorded_at,
        })
        .collect();
    db.store.import(&events).await.expect("import");
    let app = TestApp::spawn(db).await;
    let activity = |interval: &str, filter: &str| {
        format!("{{ eventActivity(interval: {interval}, filter: {{ {filter} }}) {{ period streamType type count }} }}")
    };
    let notes = "types: [\"NoteTaken\"]";
    let counts = |data: &Value| -> Vec<(String, i64)> {
        data["eventActivity"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|row| {
                assert_eq!(row["streamType"], "note");
                assert_eq!(row["type"], "NoteTaken");
                let period = row["period"].as_str().expect("a time");
                let period = chrono::DateTime::parse_from_rfc3339(period).expect("RFC 3339");
                (
                    period.with_timezone(&Utc).format("%Y-%m-%d").to_string(),
                    row["count"].as_i64().expect("count"),
                )
            })
            .collect()
    };
    let expected: [(&str, &[(&str, i64)]); 4] = [
        (
            "DAY",
            &[("2013-03-04", 1), ("2013-03-10", 1), ("2013-03-11", 1), ("2013-12-31", 1), ("2014-01-01", 1)],
        ),
        ("WEEK", &[("2013-03-04", 2), ("2013-03-11", 1), ("2013-12-30", 2)]),
        ("MONTH", &[("2013-03-01", 3), ("2013-12-01", 1), ("2014-01-01", 1)]),
        ("YEAR", &[("2013-01-01", 4), ("2014-01-01", 1)]),
    ];
    for (interval, periods) in expected {
        let data = app.data(&activity(interval, notes), json!({})).await;
        let periods: Vec<(String, i64)> = periods.iter().map(|&(p, n)| (p.to_string(), n)).collect();
        assert_eq!(counts(&data), periods, "{interval}");
    }
    // The filter's times bound what is counted; MONTH is the default.
    let data = app
        .data("{ eventActivity(filter: { types: [\"NoteTaken\"], from: \"2013-03-10T00:00:00Z\", to: \"2014-01-01T00:00:00Z\" }) { period count } }", json!({}))
        .await;
    assert_eq!(
        data["eventActivity"],
        json!([
            { "period": "2013-03-01T00:00:00+00:00", "count": 2 },
            { "period": "2013-12-01T00:00:00+00:00", "count": 1 },
        ])
    );
    // 10,001 days are too many rows; by year they are 28.
    let refused = app.error(&activity("DAY", "streamType: \"note\""), json!({})).await;
    assert_eq!(refused["extensions"]["code"], "BAD_INPUT", "{refused:#}");
    assert_eq!(refused["extensions"]["field"], "interval");
    let years = app.data(&activity("YEAR", "types: [\"DayNoted\"]"), json!({})).await;
    let years = years["eventActivity"].as_array().expect("a list");
    assert_eq!(years.len(), 28, "2015 to 2042");
    assert_eq!(years.iter().filter_map(|y| y["count"].as_i64()).sum::<i64>(), 10_001);
    // Anonymous readers do not read the log, nor its activity.
    let anonymous = app.gql_as(None, &activity("YEAR", notes), json!({})).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{anonymous:#}");
}

/// `GET /metrics` in Prometheus's text format: the log's head and how far the read models are
/// behind it, the appends, and a histogram of GraphQL requests that counts each one.
async fn metrics_are_served_for_prometheus(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let refused = app.gql("{ members {", json!({})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    app.data("{ members { totalCount } }", json!({})).await;
    let playground = app.http.get(app.url("/graphql")).send().await.expect("the playground");
    assert!(playground.text().await.expect("html").contains("graphiql"), "no GraphQL answer: not counted");

    let scrape = || async {
        let response = app.http.get(app.url("/metrics")).send().await.expect("GET /metrics");
        assert_eq!(response.status().as_u16(), 200);
        let media = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(String::from);
        assert_eq!(media.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
        response.text().await.expect("text")
    };
    let samples_of = |text: &str| -> std::collections::HashMap<String, f64> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
                (name.to_string(), value.parse().unwrap_or_else(|_| panic!("not a number: {line}")))
            })
            .collect()
    };
    let text = scrape().await;
    let samples = samples_of(&text);
    let sample = |name: &str| *samples.get(name).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    assert_eq!(sample("doetank_log_head"), app.head().await as f64);
    assert_eq!(sample("doetank_read_models_behind"), 0.0, "a command's answer waits for its projection");
    assert_eq!(sample("doetank_event_streams_open"), 0.0);
    assert_eq!(sample("doetank_subscriptions_replaying"), 0.0);
    assert!(sample("doetank_appends_total") >= 1.0);
    assert!(sample("doetank_append_transactions_total") >= 1.0);
    let (ok, refused) = (
        sample("doetank_graphql_responses_total{class=\"2xx\"}"),
        sample("doetank_graphql_responses_total{class=\"4xx\"}"),
    );
    assert_eq!((ok, refused), (2.0, 1.0), "a registration, a query and a text that does not parse: {text}");
    let count = sample("doetank_graphql_request_duration_seconds_count");
    assert_eq!(count, ok + refused + sample("doetank_graphql_responses_total{class=\"5xx\"}"));
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("doetank_graphql_request_duration_seconds_bucket"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative: {buckets:?}");
    assert_eq!(buckets.last(), Some(&count), "+Inf holds every request");
    assert!(sample("doetank_graphql_request_duration_seconds_sum") > 0.0);

    // Errors by code and rule, also those answered with 200 (until the thirty-first session
    // only status classes were counted, and a refusal by a rule was a 2xx). The counts are the
    // process's, which other tests may share: they grow at least by what this test caused.
    let parse_failed = "doetank_graphql_errors_total{code=\"GRAPHQL_PARSE_FAILED\",rule=\"\"}";
    assert!(sample(parse_failed) >= 1.0, "{text}");
    let bad_input = "doetank_graphql_errors_total{code=\"BAD_INPUT\",rule=\"\"}";
    let sign_once = "doetank_graphql_errors_total{code=\"RULE_VIOLATED\",rule=\"SIGN_ONCE\"}";
    let before = |name: &str| samples.get(name).copied().unwrap_or(0.0);
    let (bad_input_before, sign_once_before) = (before(bad_input), before(sign_once));
    let blank = app.gql("{ members(organisation: \" \") { totalCount } }", json!({})).await;
    assert_eq!(blank["errors"][0]["extensions"]["code"], "BAD_INPUT", "{blank:#}");
    let charter = app
        .data("mutation { publishCharter(input: { title: \"C\", text: \"t\" }) { id } }", json!({}))
        .await["publishCharter"]["id"]
        .clone();
    let sign = "mutation($c: ID!) { signCharter(input: { charterId: $c, organisation: \"TNO\" }) { id } }";
    app.data(sign, json!({ "c": charter })).await;
    let twice = app.gql(sign, json!({ "c": charter })).await;
    assert_eq!(twice["errors"][0]["extensions"]["rule"], "SIGN_ONCE", "{twice:#}");
    let later = scrape().await;
    let after = samples_of(&later);
    assert!(after.get(bad_input).copied().unwrap_or(0.0) >= bad_input_before + 1.0, "{later}");
    assert!(after.get(sign_once).copied().unwrap_or(0.0) >= sign_once_before + 1.0, "{later}");
}

/// A lesson found by a search shows where: an excerpt of its body around the words found,
/// marked, on both backends alike; a list without a search has none.
async fn a_lesson_found_by_a_search_has_an_excerpt_that_marks_what_was_found(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let (lead, d, _) = led_doetank(&app, "Zoeken").await;
    let as_lead = member(&lead);
    let record = |title: &str, body: &str| {
        let lesson = json!({ "doetankId": d, "kind": "INSIGHT", "title": title, "body": body, "tags": [] });
        mutate_as(&app, &as_lead, "recordLesson", "RecordLessonInput", lesson)
    };
    let body = "In het begin twijfelden we. Daarna bleek dat elke werkgever in de regio graag meedeed, \
                en de werkgevers vroegen om meer.";
    assert!(record("Regionaal draagvlak", body).await.get("errors").is_none());
    assert!(record("Werkgevers aan tafel", "Een gesprek over tijd en geld.").await.get("errors").is_none());

    let found = app
        .data(
            "{ lessons(filter: { search: \"werkgevers\" }) { edges { node { title excerpt(words: 6) long: excerpt } } } }",
            json!({}),
        )
        .await;
    let edges = found["lessons"]["edges"].as_array().expect("edges");
    let excerpt_of = |title: &str, field: &str| {
        let node = edges.iter().map(|e| &e["node"]).find(|n| n["title"] == title);
        node.and_then(|n| n[field].as_str()).unwrap_or_else(|| panic!("{title}: {found:#}")).to_string()
    };
    assert_eq!(excerpt_of("Regionaal draagvlak", "excerpt"), "…elke **werkgever** in de regio graag…");
    assert_eq!(
        excerpt_of("Regionaal draagvlak", "long"),
        "In het begin twijfelden we. Daarna bleek dat elke **werkgever** in de regio graag meedeed, \
         en de **werkgevers** vroegen om meer"
    );
    // Found by its title alone: the body's first words, nothing marked.
    assert_eq!(excerpt_of("Werkgevers aan tafel", "excerpt"), "Een gesprek over tijd en geld");

    let listed = app.data("{ lessons { edges { node { excerpt } } } }", json!({})).await;
    assert!(listed["lessons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .all(|e| e["node"]["excerpt"].is_null()));
    let refused = app
        .gql(
            "{ lessons(filter: { search: \"werkgever\" }) { edges { node { excerpt(words: 0) } } } }",
            json!({}),
        )
        .await;
    let refused = &refused["errors"][0];
    assert_eq!(refused["extensions"]["code"], "BAD_INPUT", "{refused:#}");
    assert_eq!(refused["extensions"]["field"], "words");
}

/// A page's cursor names the row before it by its position, not its place in the list: a
/// doetank on the first page that concludes while a dashboard pages `status: ACTIVE` makes
/// the second page skip nothing (until the thirty-second session cursors were offsets, and
/// it skipped one). A cursor given out before, an offset, still reads as one. So for lists by
/// date (cafés, ideation days).
async fn a_row_leaving_a_filtered_list_makes_the_next_page_skip_nothing(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let input = json!({ "name": format!("D{i}"), "challengeId": challenge, "leadId": lead });
        ids.push(
            ok(&app, "formDoetank", "FormDoetankInput", input).await["doetank"]["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    let active = "query($after: String) { doetanks(filter: { status: ACTIVE }, first: 2, after: $after) { \
                  pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { name } } } }";
    let names = |conn: &Value| nodes_field(conn, "name");
    let first = app.data(active, json!({})).await["doetanks"].clone();
    assert_eq!(names(&first), ["D0", "D1"]);
    let concluded = json!({ "doetankId": ids[0], "outcome": "DISCONTINUED", "reflection": "Gestopt" });
    let body = mutate_as(&app, &member(&lead), "concludeDoetank", "ConcludeDoetankInput", concluded).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let second =
        app.data(active, json!({ "after": first["pageInfo"]["endCursor"] })).await["doetanks"].clone();
    assert_eq!(names(&second), ["D2", "D3"], "{second:#}");
    assert_eq!(second["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    // An offset cursor from before ("MA": after the first row) still pages on.
    let old = app.data(active, json!({ "after": "MA" })).await["doetanks"].clone();
    assert_eq!(names(&old), ["D2", "D3"], "{old:#}");
    // Newest first too: the lessons' list keys its pages the same way.
    for title in ["L0", "L1", "L2"] {
        let lesson = json!({ "doetankId": ids[1], "kind": "INSIGHT", "title": title, "body": "b" });
        let body = mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let lessons = "query($after: String) { lessons(first: 2, after: $after) { pageInfo { endCursor } edges { node { title } } } }";
    let titles = |conn: &Value| nodes_field(conn, "title");
    let newest = app.data(lessons, json!({})).await["lessons"].clone();
    assert_eq!(titles(&newest), ["L2", "L1"]);
    let older =
        app.data(lessons, json!({ "after": newest["pageInfo"]["endCursor"] })).await["lessons"].clone();
    assert_eq!(titles(&older), ["L0"]);
    // A tag's lessons page newest first from the tag's own index (since the thirty-sixth
    // session), with a count, and an offset cursor from before still pages on.
    for (title, tags) in
        [("T0", json!(["Wijk", "zeldzaam"])), ("T1", json!(["wijk"])), ("T2", json!(["WIJK"]))]
    {
        let lesson =
            json!({ "doetankId": ids[1], "kind": "INSIGHT", "title": title, "body": "b", "tags": tags });
        let body = mutate_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let tagged = "query($tag: String, $after: String) { lessons(filter: { tag: $tag, kind: INSIGHT }, first: 2, after: $after) { \
                  totalCount pageInfo { hasNextPage endCursor } edges { node { title } } } }";
    let newest = app.data(tagged, json!({ "tag": "Wijk" })).await["lessons"].clone();
    assert_eq!(titles(&newest), ["T2", "T1"], "{newest:#}");
    assert_eq!(newest["totalCount"], 3);
    let older = app.data(tagged, json!({ "tag": "wijk", "after": newest["pageInfo"]["endCursor"] })).await
        ["lessons"]
        .clone();
    assert_eq!(titles(&older), ["T0"], "{older:#}");
    assert_eq!(older["pageInfo"]["hasNextPage"], false);
    let offset = app.data(tagged, json!({ "tag": "wijk", "after": "MA" })).await["lessons"].clone();
    assert_eq!(titles(&offset), ["T1", "T0"], "{offset:#}");
    let rare = app.data(tagged, json!({ "tag": "zeldzaam" })).await["lessons"].clone();
    assert_eq!(titles(&rare), ["T0"]);
    assert_eq!(rare["totalCount"], 1);

    // By rank too: a search's cursor names the lesson before the page, and the next page goes
    // on from where that lesson ranks now. A better match recorded meanwhile, and lessons that
    // move every bm25 rank on SQLite, repeat none of the first page and skip none after it
    // (until the forty-second session the cursors were offsets, and the second page repeated
    // "k4"). The weaker lessons say the word fewer times in bodies of one length, so their
    // order stays whatever the index holds.
    let record = |title: String, body: String| {
        let lesson = json!({ "doetankId": ids[1], "kind": "INSIGHT", "title": title, "body": body });
        let app = &app;
        let lead = &lead;
        async move {
            let body = mutate_as(app, &member(lead), "recordLesson", "RecordLessonInput", lesson).await;
            assert!(body.get("errors").is_none(), "{body:#}");
        }
    };
    for k in 1..=5 {
        let body = [vec!["fietspad"; k], vec!["weg"; 6 - k]].concat().join(" ");
        record(format!("k{k}"), body).await;
    }
    let searched = "query($s: String!, $first: Int, $after: String) { lessons(filter: { search: $s }, first: $first, after: $after) { \
                    totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { title } } } }";
    let search = |s: &str, first: i64, after: &Value| json!({ "s": s, "first": first, "after": after });
    let all = app.data(searched, search("fietspad", 100, &Value::Null)).await["lessons"].clone();
    assert_eq!(titles(&all), ["k5", "k4", "k3", "k2", "k1"], "{all:#}");
    let top = app.data(searched, search("fietspad", 2, &Value::Null)).await["lessons"].clone();
    assert_eq!(titles(&top), ["k5", "k4"]);
    assert_eq!(top["pageInfo"]["hasPreviousPage"], false);
    record("Nieuw fietspad".into(), ["fietspad"; 6].join(" ")).await;
    for i in 0..3 {
        record(format!("Anders {i}"), "een heel ander verhaal over de wijk".into()).await;
    }
    let now = titles(&app.data(searched, search("fietspad", 100, &Value::Null)).await["lessons"]);
    assert_eq!(now.len(), 6, "{now:?}");
    let mut rest = Vec::new();
    let mut cursor = top["pageInfo"]["endCursor"].clone();
    loop {
        let page = app.data(searched, search("fietspad", 2, &cursor)).await["lessons"].clone();
        assert_eq!(page["totalCount"], 6, "{page:#}");
        assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
        rest.extend(titles(&page));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        cursor = page["pageInfo"]["endCursor"].clone();
    }
    let after_k4 = now.iter().skip_while(|t| *t != "k4").skip(1).cloned().collect::<Vec<_>>();
    assert_eq!(rest, after_k4, "the rest as ranked now: {now:?}");
    assert_eq!(rest, ["k3", "k2", "k1"], "none repeated, none skipped: {now:?}");
    // An offset from before (after the second) still reads as one, in the ranking as it is now.
    let offset = app.data(searched, search("fietspad", 2, &json!("MQ"))).await["lessons"].clone();
    assert_eq!(titles(&offset), now[2..4], "{offset:#}");
    // A cursor names a lesson of its own search; another search finds no place for it.
    let foreign = app.error(searched, search("verhaal", 2, &top["pageInfo"]["endCursor"])).await;
    assert_eq!(
        (&foreign["extensions"]["code"], &foreign["extensions"]["field"]),
        (&json!("BAD_INPUT"), &json!("after")),
        "{foreign:#}"
    );

    // By date too: cafés (and ideation days) are ordered by their date, then as scheduled, and
    // a café cancelled meanwhile leaves `UPCOMING` without shifting the next page (until the
    // thirty-third session these pages were offsets, and the second skipped C2).
    let mut cafes = Vec::new();
    for (i, date) in ["2099-01-02", "2099-01-01", "2099-01-02", "2099-01-03"].into_iter().enumerate() {
        let input = json!({ "title": format!("C{i}"), "date": date, "venue": "Utrecht" });
        cafes.push(network_ok(&app, "scheduleCafe", "ScheduleCafeInput", input).await);
    }
    let by_date = "query($when: When, $first: Int, $after: String) { cafes(when: $when, first: $first, after: $after) { \
                   pageInfo { hasNextPage endCursor } edges { node { title } } } }";
    let page =
        |when: &str, first: i64, after: &Value| json!({ "when": when, "first": first, "after": after });
    let upcoming = app.data(by_date, page("UPCOMING", 2, &Value::Null)).await["cafes"].clone();
    assert_eq!(titles(&upcoming), ["C1", "C0"]);
    let cancel = |cafe: &str| json!({ "cafeId": cafe, "reason": "Zaal niet beschikbaar" });
    network_ok(&app, "cancelCafe", "CancelCafeInput", cancel(&cafes[1])).await;
    let rest =
        app.data(by_date, page("UPCOMING", 2, &upcoming["pageInfo"]["endCursor"])).await["cafes"].clone();
    assert_eq!(titles(&rest), ["C2", "C3"], "{rest:#}");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    // The latest first: past cafés page backwards in time.
    network_ok(&app, "cancelCafe", "CancelCafeInput", cancel(&cafes[0])).await;
    let latest = app.data(by_date, page("PAST", 1, &Value::Null)).await["cafes"].clone();
    assert_eq!(titles(&latest), ["C0"]);
    let earlier = app.data(by_date, page("PAST", 1, &latest["pageInfo"]["endCursor"])).await["cafes"].clone();
    assert_eq!(titles(&earlier), ["C1"], "{earlier:#}");
    assert_eq!(earlier["pageInfo"]["hasNextPage"], false);
}

/// `field` of each node of a connection's page, as text.
fn nodes_field(conn: &Value, field: &str) -> Vec<String> {
    let edges = conn["edges"].as_array().map(Vec::as_slice).unwrap_or_default();
    edges.iter().map(|e| e["node"][field].as_str().unwrap_or_default().to_string()).collect()
}

async fn lists_filter_and_paginate_as_relay_connections(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna", "Gemeente Utrecht", "PUBLIC").await;
    let other = register(&app, "Bas", "TNO", "PUBLIC").await;
    let coach = register(&app, "Cor", "Kennisland", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let by = if i % 2 == 0 { &lead } else { &other };
        let formed = ok(
            &app,
            "formDoetank",
            "FormDoetankInput",
            json!({ "name": format!("D{i}"), "challengeId": challenge, "leadId": by }),
        )
        .await;
        ids.push(formed["doetank"]["id"].as_str().expect("id").to_string());
    }
    ok(&app, "assignCoach", "AssignCoachInput", json!({ "doetankId": ids[1], "coachId": coach })).await;

    let page = "query($f: DoetankFilter, $after: String) { doetanks(filter: $f, first: 2, after: $after) { totalCount \
                pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { name } } } }";
    let mut after = Value::Null;
    let mut names = Vec::new();
    loop {
        let data = app.data(page, json!({ "after": after })).await;
        let conn = &data["doetanks"];
        assert_eq!(conn["totalCount"], 5);
        names.extend(
            conn["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap_or_default().to_string()),
        );
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(names, ["D0", "D1", "D2", "D3", "D4"]);
    // Without `totalCount` nothing is counted (since the thirty-first session), and the pages
    // still know whether another follows: 2, 2, then the last one.
    let uncounted = "query($after: String) { doetanks(first: 2, after: $after) { \
                     pageInfo { hasNextPage endCursor } edges { node { name } } } }";
    let (mut after, mut pages) = (Value::Null, Vec::new());
    loop {
        let conn = app.data(uncounted, json!({ "after": after })).await["doetanks"].clone();
        pages.push(conn["edges"].as_array().expect("edges").len());
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, [2, 2, 1]);
    let exact = app.data("{ doetanks(first: 5) { pageInfo { hasNextPage } } }", json!({})).await;
    assert_eq!(exact["doetanks"]["pageInfo"]["hasNextPage"], false, "five of five: no next page");
    // A cursor this API never gave out: no number, the largest offset (whose next
    // overflowed), the smallest number (no position's negative). Negative ones are positions
    // since the thirty-second session (until the thirtieth a negative offset read as the start).
    for cursor in ["eA", "OTIyMzM3MjAzNjg1NDc3NTgwNw", "LTkyMjMzNzIwMzY4NTQ3NzU4MDg"] {
        let refused = app.error(page, json!({ "after": cursor })).await;
        assert_eq!(
            (&refused["extensions"]["code"], &refused["extensions"]["field"]),
            (&json!("BAD_INPUT"), &json!("after")),
            "{refused}"
        );
    }

    // An organisation by its name, whatever its case and the spaces around it (until the
    // twenty-ninth session only its exact spelling matched, and "tno" silently found nothing).
    for org in ["TNO", "tno", " Tno "] {
        let by_org = app.data(page, json!({ "f": { "organisation": org } })).await;
        assert_eq!(by_org["doetanks"]["totalCount"], 2, "{org:?}");
    }
    // A blank exact-match filter would match nothing, which reads as an empty list: refused
    // (until the thirtieth session it answered nothing), while a blank text to look for within
    // a name is no filter.
    for (query, field) in [
        ("{ doetanks(filter: { organisation: \" \" }) { totalCount } }", "organisation"),
        ("{ members(organisation: \"\") { totalCount } }", "organisation"),
        ("{ lessons(filter: { tag: \" \" }) { totalCount } }", "tag"),
        ("{ lessons(filter: { organisation: \"\" }) { totalCount } }", "organisation"),
    ] {
        let refused = app.error(query, json!({})).await;
        assert_eq!(
            (&refused["extensions"]["code"], &refused["extensions"]["field"]),
            (&json!("BAD_INPUT"), &json!(field)),
            "{query}: {refused}"
        );
    }
    let any_name = app.data(page, json!({ "f": { "name": " " } })).await;
    assert_eq!(any_name["doetanks"]["totalCount"], 5);
    // Challenges still looking for a doetank: the five doetanks are informal, so to outsiders
    // their challenge still looks untaken (rule 5), while staff see it taken.
    let second = raise(&app, &lead).await;
    let looking = "query($w: Boolean, $t: String) { challenges(withoutDoetank: $w, title: $t) { totalCount edges { node { id } } } }";
    let ids = |answer: &Value| -> Vec<String> {
        answer["challenges"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter_map(|e| e["node"]["id"].as_str().map(String::from))
            .collect()
    };
    let staff = app.data(looking, json!({ "w": true })).await;
    assert_eq!(ids(&staff), [second.as_str()]);
    let staff = app.data(looking, json!({ "w": false })).await;
    assert_eq!(ids(&staff), [challenge.as_str()]);
    let outsider = app.gql_as(None, looking, json!({ "w": true })).await;
    assert_eq!(ids(&outsider["data"]), [challenge.as_str(), second.as_str()], "{outsider:#}");
    // A doetank that gave its challenge up leaves it looking again (until the thirty-first
    // session it stayed taken).
    let given_up = raise(&app, &lead).await;
    let formed = app
        .data(
            "mutation($i: FormDoetankInput!) { formDoetank(input: $i) { doetank { id } } }",
            json!({ "i": { "name": "Opgegeven", "challengeId": given_up, "leadId": lead } }),
        )
        .await;
    let quitting = formed["formDoetank"]["doetank"]["id"].clone();
    let taken = app.data(looking, json!({ "w": false })).await;
    assert_eq!(ids(&taken), [challenge.as_str(), given_up.as_str()]);
    let stopped =
        json!({ "i": { "doetankId": quitting, "outcome": "DISCONTINUED", "reflection": "geen tijd" } });
    app.data(
        "mutation($i: ConcludeDoetankInput!) { concludeDoetank(input: $i) { doetank { status } } }",
        stopped,
    )
    .await;
    let staff = app.data(looking, json!({ "w": true })).await;
    assert_eq!(ids(&staff), [second.as_str(), given_up.as_str()]);
    let by_title = app.data(looking, json!({ "t": "KENNIS lekt" })).await;
    assert_eq!(by_title["challenges"]["totalCount"], 3, "{by_title:#}");
    let none = app.data(looking, json!({ "t": "vergrijzing" })).await;
    assert_eq!(none["challenges"]["totalCount"], 0);

    // By a part of the name, without regard to case; `%` and `_` are themselves.
    let by_name = app.data(page, json!({ "f": { "name": "d3" } })).await;
    assert_eq!(by_name["doetanks"]["edges"], json!([{ "node": { "name": "D3" } }]));
    for literal in ["%", "_", "\\"] {
        let none = app.data(page, json!({ "f": { "name": literal } })).await;
        assert_eq!(none["doetanks"]["totalCount"], 0, "{literal}");
    }
    let by_coach = app.data(page, json!({ "f": { "coachId": coach } })).await;
    assert_eq!(by_coach["doetanks"]["edges"][0]["node"]["name"], "D1");
    let by_member =
        app.data(page, json!({ "f": { "memberId": lead, "phase": "DISCOVER", "status": "ACTIVE" } })).await;
    assert_eq!(by_member["doetanks"]["totalCount"], 3);

    let member = app
        .data(
            "query($id: ID!) { member(id: $id) { name doetanks { role doetank { name } } } }",
            json!({ "id": coach }),
        )
        .await;
    assert_eq!(member["member"]["doetanks"][0]["role"], "COACH");
    for org in ["TNO", "tno "] {
        let members = app
            .data("query($o: String) { members(organisation: $o) { totalCount } }", json!({ "o": org }))
            .await;
        assert_eq!(members["members"]["totalCount"], 1, "{org:?}");
    }
    // The statistics count an organisation as one whatever its case, named as most of its members wrote it (until the
    // thirtieth session "TNO" and "tno" were two organisations there).
    register(&app, "Bo", "tno", "PUBLIC").await;
    register(&app, "Ben", "TNO", "PUBLIC").await;
    // Nor a space typed twice: the name is kept one-spaced, and a filter reads it so (until the
    // thirty-first session "Gemeente  Utrecht" was an organisation of its own).
    register(&app, "Gijs", " Gemeente  Utrecht", "PUBLIC").await;
    let figures = app.data("{ statistics { membersPerOrganisation { key count } } }", json!({})).await;
    assert_eq!(
        figures["statistics"]["membersPerOrganisation"],
        json!([
            { "key": "TNO", "count": 3 },
            { "key": "Gemeente Utrecht", "count": 2 },
            { "key": "Kennisland", "count": 1 },
        ]),
    );
    let spaced = app
        .data(
            "query($o: String) { members(organisation: $o) { totalCount } }",
            json!({ "o": "gemeente   utrecht" }),
        )
        .await;
    assert_eq!(spaced["members"]["totalCount"], 2);
}

/// A client that sends its registration twice at once (a retry racing the first attempt) gets
/// one member: both answers name it, one of them deduplicated, and one event was written.
async fn concurrent_retries_of_a_registration_make_one_member(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let query = "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id name } result { position deduplicated } } }";
    for round in 0..5 {
        let command_id = uuid::Uuid::new_v4().to_string();
        let input = json!({ "input": { "commandId": command_id, "name": "Tegelijk", "organisation": "TNO", "sector": "PUBLIC" } });
        let head = app.head().await;
        let (a, b) = tokio::join!(app.data(query, input.clone()), app.data(query, input.clone()));
        let (a, b) = (&a["registerMember"], &b["registerMember"]);
        assert_eq!(a["member"]["id"], command_id.as_str(), "round {round}");
        assert_eq!(b["member"]["id"], command_id.as_str(), "round {round}");
        assert_eq!(a["result"]["position"], b["result"]["position"], "round {round}");
        assert_eq!(a["member"]["name"], "Tegelijk", "round {round}");
        let deduplicated = [a, b].iter().filter(|r| r["result"]["deduplicated"] == true).count();
        assert_eq!(deduplicated, 1, "round {round}: {a:#} {b:#}");
        assert_eq!(app.head().await, head + 1, "round {round}: one event");
    }
}

/// A text asked again is served from its kept parse (from its second sighting on): each answer
/// must still follow its own variables, with and without kept answers, and a text that does not
/// parse must keep failing as a syntax error.
async fn one_text_asked_with_other_variables_answers_each(db: &TestDb) {
    let keeping = TestApp::spawn(db).await;
    let organisations = ["Gemeente Zwolle", "Provincie Utrecht", "UWV"];
    let mut ids = Vec::new();
    for (n, organisation) in organisations.iter().enumerate() {
        ids.push(register(&keeping, &format!("Lid {n}"), organisation, "PUBLIC").await);
    }
    let computing = TestApp::spawn_app(
        keeping.app.clone(),
        doetank_api::server::ServerConfig { keep: false, ..doetank_api::server::ServerConfig::default() },
    )
    .await;
    let text = "query($id: ID!) { member(id: $id) { id organisation } }";
    for app in [&keeping, &computing] {
        for round in 0..3 {
            for (id, organisation) in ids.iter().zip(organisations) {
                let data = app.data(text, json!({ "id": id })).await;
                assert_eq!(data["member"]["id"], id.as_str(), "round {round}");
                assert_eq!(data["member"]["organisation"], organisation, "round {round}");
            }
        }
        for _ in 0..3 {
            let body = app.gql("{ member(id: ", json!({})).await;
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("expected"), "a syntax error each time: {body}");
        }
    }
}

async fn the_demo_history_loads(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    assert!(doetank_api::demo::load(&app.app).await.expect("demo"));
    assert!(
        !doetank_api::demo::load(&app.app).await.expect("demo twice"),
        "the demo loads only into an empty log"
    );
    let id = doetank_api::demo::demo_id(doetank_api::demo::DOETANK_2010).to_string();
    let data = app
        .data(
            "query($id: ID!) { doetank(id: $id) { name status isPublic completedPhases { phase } lessons { title } handOvers { organisation } coach { organisation } } \
             statistics { doetanksPerStatus { key count } lessonsPerKind { key count } } }",
            json!({ "id": id }),
        )
        .await;
    let d = &data["doetank"];
    assert_eq!(d["name"], "20/10");
    assert_eq!(d["status"], "COMPLETED");
    assert_eq!(d["completedPhases"].as_array().map(Vec::len), Some(6));
    assert_eq!(d["handOvers"][0]["organisation"], "Ministerie van BZK");
    assert_eq!(d["coach"]["organisation"], "Kennisland");
    let kinds: i64 = data["statistics"]["lessonsPerKind"]
        .as_array()
        .expect("kinds")
        .iter()
        .map(|k| k["count"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(kinds, 7);

    // The playground opens on a query over this history, which runs without a token.
    let page =
        app.http.get(app.url("/graphql")).send().await.expect("playground").text().await.expect("html");
    assert!(page.contains("defaultQuery") && page.contains("medianDaysPerPhase"), "{page}");
    assert!(page.contains("defaultHeaders: undefined"), "no token unless the server was given one");
    // Everything the page loads comes from this server, built into it: it works offline and
    // does not change with a release of GraphiQL (until the thirty-second session it loaded
    // `graphiql@4` and React's development builds from unpkg).
    assert!(!page.contains("https://") && !page.contains("http://"), "nothing from elsewhere: {page}");
    let loaded: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| part.starts_with(doetank_api::server::playground::ASSETS))
        .collect();
    assert_eq!(loaded.len(), 4, "React, ReactDOM, GraphiQL's script and style: {loaded:?}");
    for path in loaded {
        let asset = app.http.get(app.url(path)).send().await.expect("an asset");
        assert_eq!(asset.status(), 200, "{path}");
        let media_type = asset.headers()["content-type"].to_str().unwrap_or_default().to_string();
        let wanted = if path.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(media_type.starts_with(wanted), "{path}: {media_type}");
        assert!(
            asset.headers()["cache-control"].to_str().unwrap_or_default().contains("immutable"),
            "{path}"
        );
        assert!(asset.bytes().await.expect("bytes").len() > 4_000, "{path}");
    }
    let missing = app.http.get(app.url("/graphql/playground/other.js")).send().await.expect("a 404");
    assert_eq!(missing.status(), 404);
    // The schema the playground asks for first, for its documentation and completion.
    let introspection = app.gql(include_str!("fixtures/introspection.graphql"), json!({})).await;
    assert!(introspection.get("errors").is_none(), "{introspection:#}");
    let types = introspection["data"]["__schema"]["types"].as_array().map_or(0, Vec::len);
    assert!(types > 100, "{types} types");
    let first = app.gql_as(None, doetank_api::server::playground::FIRST_QUERY, json!({})).await;
    assert!(first.get("errors").is_none(), "{first:#}");
    assert_eq!(first["data"]["doetank"]["name"], "20/10");
    assert_eq!(first["data"]["summer2013"]["currentPhase"], "DEVELOP", "{first:#}");
    assert!(first["data"]["lessons"]["totalCount"].as_i64() >= Some(1), "{first:#}");

    // `serve --demo` starts the playground's Headers with the researcher's token, so the
    // log's queries answer on a first visit; the token is written as a script literal.
    let researcher = crate::support::app::token("researcher", doetank_api::auth::Role::Researcher);
    let config = ServerConfig { playground_token: Some(researcher.clone()), ..ServerConfig::default() };
    let demo = TestApp::spawn_app(app.app.clone(), config).await;
    let page =
        demo.http.get(demo.url("/graphql")).send().await.expect("playground").text().await.expect("html");
    let headers = format!("defaultHeaders: \"{{\\\"Authorization\\\": \\\"Bearer {researcher}\\\"}}\"");
    assert!(page.contains(&headers), "{headers} in {page}");
    // Subscriptions sign in with the token the Headers hold, whichever it is (until the
    // thirty-second session the page fixed the researcher's for them; checked in Chromium).
    assert!(!page.contains(&format!("'{researcher}'")), "no token fixed for the socket: {page}");
    assert!(page.contains("wsConnectionParams: token ? { token: token } : {}"), "{page}");
    assert!(page.contains("function refusalOf(token)"), "a refused token is shown at once: {page}");
    let log = demo
        .gql_as(Some(&researcher), "{ events(last: 5) { edges { node { position } } } }", json!({}))
        .await;
    assert!(log.get("errors").is_none(), "{log:#}");
    let config = ServerConfig { playground_token: Some("</script><b>".into()), ..ServerConfig::default() };
    let odd = TestApp::spawn_app(app.app.clone(), config).await;
    let page =
        odd.http.get(odd.url("/graphql")).send().await.expect("playground").text().await.expect("html");
    assert!(page.contains("Bearer \\u003c/script>\\u003cb>") && !page.contains("</script><b>"), "{page}");
}

#[test]
fn schema_graphql_matches_the_served_schema() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql"))
        .expect("schema.graphql");
    assert!(
        committed == doetank_api::graphql::sdl(),
        "schema.graphql is stale: run `cargo run -p doetank -- schema > schema.graphql`"
    );
}

/// Explorers read the schema in the playground's Docs pane: every type, field, argument,
/// input field and enum value says what it is. Excepted: the scalars and the root types; a
/// mutation's one `input` argument, whose type says it; and the connection types, which
/// async-graphql makes without a description (their fields have one).
#[test]
fn every_part_of_the_schema_is_described() {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let sdl = doetank_api::graphql::sdl();
    let document = async_graphql::parser::parse_schema(&sdl).expect("the SDL parses");
    let mut undescribed = Vec::new();
    let mut check = |described: bool, what: String| {
        if !described {
            undescribed.push(what);
        }
    };
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else { continue };
        let (ty, name) = (&ty.node, ty.node.name.node.as_str());
        let root = ["Query", "Mutation", "Subscription"].contains(&name);
        match &ty.kind {
            TypeKind::Scalar => continue,
            TypeKind::Object(object) => {
                check(root || name.ends_with("Connection") || ty.description.is_some(), name.to_string());
                for field in object.fields.iter().map(|f| &f.node) {
                    check(field.description.is_some(), format!("{name}.{}", field.name.node));
                    for arg in field.arguments.iter().map(|a| &a.node) {
                        let input = name == "Mutation" && arg.name.node == "input";
                        check(
                            input || arg.description.is_some(),
                            format!("{name}.{}({})", field.name.node, arg.name.node),
                        );
                    }
                }
            }
            TypeKind::Interface(interface) => {
                check(ty.description.is_some(), name.to_string());
                for field in interface.fields.iter().map(|f| &f.node) {
                    check(field.description.is_some(), format!("{name}.{}", field.name.node));
                }
            }
            TypeKind::Union(_) => check(ty.description.is_some(), name.to_string()),
            TypeKind::Enum(e) => {
                check(ty.description.is_some(), name.to_string());
                for value in e.values.iter().map(|v| &v.node) {
                    check(value.description.is_some(), format!("{name}.{}", value.value.node));
                }
            }
            TypeKind::InputObject(input) => {
                check(ty.description.is_some(), name.to_string());
                for field in input.fields.iter().map(|f| &f.node) {
                    check(field.description.is_some(), format!("{name}.{}", field.name.node));
                }
            }
        }
    }
    assert!(
        undescribed.is_empty(),
        "{} parts of the schema have no description:\n{}",
        undescribed.len(),
        undescribed.join("\n")
    );
}

/// A doetank's version and lessons, and the list of its lessons with their count: four
/// figures of one state that agree (see [`two_states`]).
const ONE_STATE_QUESTION: &str = "query($id: ID!) { doetank(id: $id) { version lessons { id } } \
     lessons(filter: { doetankId: $id }, first: 100) { totalCount nodes { id } } }";

/// `(version, lessons, total, listed)` of an answer to [`ONE_STATE_QUESTION`] whose figures
/// are of two states, for a doetank formed at version `formed_at` that gets a version per lesson.
fn two_states(data: &Value, formed_at: i64) -> Option<(i64, i64, i64, i64)> {
    let version = data["doetank"]["version"].as_i64().expect("version");
    let lessons = data["doetank"]["lessons"].as_array().map_or(0, Vec::len) as i64;
    let total = data["lessons"]["totalCount"].as_i64().expect("totalCount");
    let listed = data["lessons"]["nodes"].as_array().map_or(0, Vec::len) as i64;
    let one_state = lessons == version - formed_at && total == lessons && listed == lessons;
    (!one_state).then_some((version, lessons, total, listed))
}

/// Records `count` lessons of `d` by `by`, one after another, in a task of its own.
fn lessons_written(
    app: &std::sync::Arc<TestApp>,
    d: &str,
    by: &str,
    count: usize,
) -> tokio::task::JoinHandle<()> {
    let (app, d, by) = (app.clone(), d.to_string(), by.to_string());
    tokio::spawn(async move {
        for n in 0..count {
            let lesson = json!({ "doetankId": d, "recordedBy": by, "kind": "WORKS",
                                 "title": format!("Les {n}"), "body": "Werkt.", "tags": [] });
            ok_as(&app, &member(&by), "recordLesson", "RecordLessonInput", lesson).await;
        }
    })
}

/// A query's answer is one state of the read models: while lessons are recorded one after
/// another, every answer holds exactly as many lessons as its doetank's version says, and a
/// list of them counts as many as it shows, though the doetank, its lessons, the list and its
/// count are read one after the other (on a SQLite file the count through sqlx's pool, beside
/// the store's own snapshot). Computed each time (`--no-keep`) and through the
/// kept rows alike.
async fn an_answer_is_one_state_of_the_read_models_while_writes_go_on(db: &TestDb) {
    for keep in [false, true] {
        let config = doetank_api::server::ServerConfig { keep, ..Default::default() };
        let app = std::sync::Arc::new(TestApp::spawn_with(db, config).await);
        let (lead, d, formed_at) = led_doetank(&app, "Eén toestand").await;

        let writer = lessons_written(&app, &d, &lead, 40);
        let (mut asked, mut torn) = (0, Vec::new());
        while !writer.is_finished() {
            let data = app.data(ONE_STATE_QUESTION, json!({ "id": d })).await;
            torn.extend(two_states(&data, formed_at));
            asked += 1;
        }
        writer.await.expect("writer");
        assert!(asked >= 10, "the answers were asked while the lessons were written ({asked})");
        assert!(
            torn.is_empty(),
            "keep {keep}: answers of two states (version, lessons, total, listed): {torn:?}"
        );
    }
}

/// Records a lesson of `d` by `by` from a task of its own: outside the answer being read.
async fn lesson_recorded_meanwhile(app: &std::sync::Arc<TestApp>, d: &str, by: &str) {
    lessons_written(app, d, by, 1).await.expect("writer");
}

/// The mechanism under `an_answer_is_one_state_...`, step by step: reads of one answer see the
/// state of its first read, though a lesson is recorded (and projected) between two of them;
/// and where two transactions of the answer saw two states, the answer is marked moved and its
/// later reads fail, so that the server computes it again.
async fn the_reads_of_one_answer_see_one_state_or_the_answer_moves(db: &TestDb) {
    use doetank_api::one_state::{OneState, Turns};
    use doetank_api::{sql, stamp::Stamp};

    let app = std::sync::Arc::new(TestApp::spawn(db).await);
    let (lead, d, _) = led_doetank(&app, "Stap voor stap").await;
    let (store, turns) = (&app.app.store, Turns::for_store(&app.app.store));
    let count = "SELECT COUNT(*) FROM rm_lessons WHERE doetank_id = $1";
    let args = [sql::Arg::from(d.as_str())];

    // The stamp, a count, a lesson recorded meanwhile, and the count again (on PostgreSQL the
    // stamp read in the answer's transaction, as when it is computed again).
    let state = OneState::new(store, &turns, 1);
    let counts = store
        .in_one_snapshot(state.scope(async {
            Stamp::read(&app.app).await.expect("stamp");
            let before = sql::fetch_count(store.backend(), count, &args).await.expect("count");
            lesson_recorded_meanwhile(&app, &d, &lead).await;
            (before, sql::fetch_count(store.backend(), count, &args).await.expect("count again"))
        }))
        .await;
    assert_eq!(counts, (0, 0), "the second count saw the lesson recorded after the first");
    assert!(!state.moved());
    assert_eq!(sql::fetch_count(store.backend(), count, &args).await.expect("count now"), 1);

    // The stamp read, a lesson recorded, and only then the first read of the list: on a SQLite
    // file the pool's transaction begins after the store's snapshot; on PostgreSQL the first
    // computation reads the stamp before its transaction.
    let state = OneState::new(store, &turns, 0);
    let read = store
        .in_one_snapshot(state.scope(async {
            Stamp::read(&app.app).await.expect("stamp");
            lesson_recorded_meanwhile(&app, &d, &lead).await;
            sql::fetch_count(store.backend(), count, &args).await
        }))
        .await;
    assert!(
        matches!(read, Err(doetank_api::error::AppError::Moved)),
        "a read of a later state than the stamp's: {read:?}"
    );
    assert!(state.moved());
}

/// Answers hold a connection of the pool for their transaction, but never all of them: many
/// clients asking at once, on a pool of three, for a list (read in the answer's transaction)
/// beside the log (read outside it, on the pool) all get their answers, and none waits for a
/// connection that another answer holds while it waits too.
async fn a_small_pool_answers_lists_beside_the_log_to_many_at_once(db: &TestDb) {
    let app = std::sync::Arc::new(on_a_small_pool(db).await);
    led_doetank(&app, "Klein").await;
    let asks = (0..24).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            app.data(
                "{ doetanks(first: 5) { totalCount nodes { name } } events(first: 5) { totalCount } }",
                json!({}),
            )
            .await
        })
    });
    let answers = tokio::time::timeout(std::time::Duration::from_secs(30), futures::future::join_all(asks))
        .await
        .expect("every answer within 30 s");
    for answer in answers {
        let answer = answer.expect("asked");
        assert_eq!(answer["doetanks"]["totalCount"], 1, "{answer:#}");
        assert!(answer["events"]["totalCount"].as_i64() >= Some(3), "{answer:#}");
    }
}

/// On a SQLite file a list's page is read in the answer's own snapshot, in the request's
/// thread, as the look-ups by key are: not through sqlx's pool, whose connection threads cost
/// a hop per statement and a message per row (the newest twenty lessons went from 4,359 to
/// 9,079 requests/s with this). So every list answers while another holds every connection of
/// the pool, and so does its `totalCount` where the first page shows the whole list (it is
/// then the page's length, read in the same state); only a count beyond the page needs one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_sqlite_file_list_pages_need_no_connection_of_the_pool() {
    let db = TestDb::sqlite().await;
    let app = on_a_small_pool(&db).await;
    let (lead, d, _) = led_doetank(&app, "Naast de pool").await;
    let lesson = json!({ "doetankId": d, "recordedBy": lead, "kind": "WORKS", "title": "Les",
                         "body": "Werkt.", "tags": ["pool"] });
    ok_as(&app, &member(&lead), "recordLesson", "RecordLessonInput", lesson).await;
    let held = every_connection_of_the_pool(&app).await;
    let lists = "{ lessons(first: 5) { totalCount nodes { title doetank { name } } } \
                   tagged: lessons(first: 5, filter: { tag: \"pool\" }) { totalCount nodes { title } } \
                   doetanks(first: 5) { totalCount nodes { name } } members(first: 5) { totalCount nodes { id } } \
                   challenges(first: 5) { totalCount nodes { id } } cafes(first: 5) { totalCount nodes { id } } \
                   ideationEvents(first: 5) { nodes { id } } pilots(first: 5) { nodes { id } } \
                   charters(first: 5) { nodes { id } } reuses(first: 5) { totalCount nodes { id } } \
                   timeline(first: 50) { totalCount nodes { summary } } }";
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), app.data(lists, json!({})))
        .await
        .expect("the lists answered while the pool's every connection was held");
    assert_eq!(
        answer["lessons"]["nodes"][0],
        json!({ "title": "Les", "doetank": { "name": "Naast de pool" } })
    );
    assert_eq!(answer["tagged"]["nodes"][0]["title"], "Les");
    assert_eq!(answer["doetanks"]["nodes"][0]["name"], "Naast de pool");
    for (list, count) in [
        ("lessons", 1),
        ("tagged", 1),
        ("doetanks", 1),
        ("members", 1),
        ("challenges", 1),
        ("cafes", 0),
        ("reuses", 0),
    ] {
        assert_eq!(answer[list]["totalCount"], count, "{list}: {answer:#}");
    }
    let lines = answer["timeline"]["nodes"].as_array().map_or(0, Vec::len);
    assert!(lines >= 5, "{answer:#}");
    assert_eq!(answer["timeline"]["totalCount"], lines);
    drop(held);
    // Beyond the first page, or past a cursor, the count is read for itself.
    let counted = app
        .data(
            "{ lessons(first: 0) { totalCount } timeline(first: 2) { totalCount pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(counted["lessons"]["totalCount"], 1);
    assert_eq!(counted["timeline"]["totalCount"], lines);
    let cursor = &counted["timeline"]["pageInfo"]["endCursor"];
    let rest =
        "query($after: String) { timeline(first: 50, after: $after) { totalCount nodes { summary } } }";
    let rest = app.data(rest, json!({ "after": cursor })).await;
    assert_eq!(rest["timeline"]["nodes"].as_array().map(Vec::len), Some(lines - 2), "{rest:#}");
    assert_eq!(rest["timeline"]["totalCount"], lines, "a last page past a cursor counts the whole timeline");
    let lessons = "query($after: String) { lessons(first: 1, after: $after) { totalCount nodes { title } } }";
    let first = app.data(lessons, json!({ "after": null })).await;
    let cursor = app.data("{ lessons(first: 1) { pageInfo { endCursor } } }", json!({})).await;
    let past = app.data(lessons, json!({ "after": cursor["lessons"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(
        (first["lessons"]["totalCount"].clone(), past["lessons"]["totalCount"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(past["lessons"]["nodes"], json!([]), "{past:#}");
    // Counted for the anonymous (rule 5 alone: the visible doetanks' lessons), before and
    // after the doetank goes public.
    let anonymous = "{ lessons(first: 0) { totalCount } statistics { lessonsPerKind { count } } }";
    assert_eq!(app.gql_as(None, anonymous, json!({})).await["data"]["lessons"]["totalCount"], 0);
    ok(&app, "makeDoetankPublic", "DoetankCommandInput", json!({ "doetankId": d })).await;
    let public = app.gql_as(None, anonymous, json!({})).await;
    assert_eq!(public["data"]["lessons"]["totalCount"], 1, "{public:#}");
    assert_eq!(public["data"]["statistics"]["lessonsPerKind"], json!([{ "count": 1 }]), "{public:#}");
    db.cleanup().await;
}

/// A server whose store has a pool of three, computing every answer (`--no-keep`).
async fn on_a_small_pool(db: &TestDb) -> TestApp {
    let store = doetank_store::EventStore::connect_with(&db.url, 3).await.expect("a pool of three");
    let no_keep = ServerConfig { keep: false, ..Default::default() };
    TestApp::spawn_app(doetank_api::app::App::new(store), no_keep).await
}

/// Every connection of the app's sqlx pool, held until dropped.
async fn every_connection_of_the_pool(app: &TestApp) -> Vec<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
    let doetank_store::Backend::Sqlite(pool) = app.app.store.backend() else { panic!("a SQLite store") };
    let mut held = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        held.push(pool.acquire().await.expect("a connection of the pool"));
    }
    held
}

/// The look-ups by key that answers make beside the data loaders' (a lesson, anything by id,
/// whether a member may see an informal doetank, a doetank's reuses, a member's doetanks, a
/// challenge's supporters, a café's programme, an idea's follow-ups, a charter's signatures)
/// read as the loaders do on a SQLite file, in the answer's snapshot: the demo's history is
/// answered while every connection of the pool is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_sqlite_file_look_ups_by_key_need_no_connection_of_the_pool() {
    use doetank_api::demo::{demo_id, DOETANK_2010, DOETANK_HACK_DE_OR, STAMPIJFABRIEK};
    let db = TestDb::sqlite().await;
    let app = on_a_small_pool(&db).await;
    assert!(doetank_api::demo::load(&app.app).await.expect("demo"));
    let (d, informal) = (demo_id(DOETANK_2010).to_string(), demo_id(DOETANK_HACK_DE_OR).to_string());
    let lesson = app.data("query($d: ID!) { doetank(id: $d) { lessons { id } } }", json!({ "d": d })).await;
    let lesson = lesson["doetank"]["lessons"][0]["id"].as_str().expect("a lesson").to_string();
    let held = every_connection_of_the_pool(&app).await;
    let question =
        "query($d: ID!, $l: ID!, $i: ID!, $e: ID!) { lesson: node(id: $l) { ... on Lesson { title } } \
                    node(id: $d) { __typename } \
                    doetank(id: $d) { reuses { organisation } lead { doetanks { role } } \
                                      challenge { supporters { id } } } \
                    informal: doetank(id: $i) { name } \
                    cafes(first: 5) { nodes { speakers { title } workshops { title } challenges { id } } } \
                    ideationEvent(id: $e) { ideas { adoptedBy doetanks { name } } } \
                    charters(first: 5) { nodes { signatureCount signatures { organisation } } } }";
    let variables = json!({ "d": d, "l": lesson, "i": informal, "e": demo_id(STAMPIJFABRIEK).to_string() });
    let asked = app.gql_as(None, question, variables);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), asked)
        .await
        .expect("the look-ups answered while the pool's every connection was held");
    assert!(answer.get("errors").is_none(), "{answer:#}");
    let data = &answer["data"];
    assert_eq!(data["node"]["__typename"], "Doetank");
    assert!(data["lesson"]["title"].is_string(), "{data:#}");
    assert_eq!(data["informal"], Value::Null, "rule 5: an informal doetank is not shown to the anonymous");
    assert!(data["doetank"]["reuses"].as_array().is_some_and(|r| !r.is_empty()), "{data:#}");
    assert!(data["doetank"]["lead"]["doetanks"].as_array().is_some_and(|r| !r.is_empty()), "{data:#}");
    let charter = &data["charters"]["nodes"][0];
    assert_eq!(charter["signatureCount"].as_i64(), charter["signatures"].as_array().map(|s| s.len() as i64));
    assert!(charter["signatureCount"].as_i64() > Some(0), "{data:#}");
    let ideas = data["ideationEvent"]["ideas"].as_array().expect("ideas");
    assert!(ideas.iter().any(|idea| idea["adoptedBy"].as_array().is_some_and(|a| !a.is_empty())), "{data:#}");
    let cafes = data["cafes"]["nodes"].as_array().expect("cafés");
    let announced = |part: &str| cafes.iter().any(|c| c[part].as_array().is_some_and(|p| !p.is_empty()));
    assert!(announced("speakers") && announced("workshops"), "{data:#}");
    drop(held);
    db.cleanup().await;
}

/// On a SQLite file a filtered read of the log (`/events.ndjson`, the `events` query) reads its
/// pages on the store's own readers: it answers while every connection of the pool is held,
/// with its filters (type, time, rule 5) applied as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_sqlite_file_the_log_is_read_without_the_pool() {
    use doetank_api::auth::Role;
    use doetank_api::demo::{demo_id, DOETANK_HACK_DE_OR};
    let db = TestDb::sqlite().await;
    let app = on_a_small_pool(&db).await;
    assert!(doetank_api::demo::load(&app.app).await.expect("demo"));
    let informal = format!("doetank-{}", demo_id(DOETANK_HACK_DE_OR));
    let held = every_connection_of_the_pool(&app).await;
    let export = |token: String| {
        let request = app
            .http
            .get(app.url("/events.ndjson?types=LessonRecorded,DoetankFormed&from=2013-06-01T00:00:00Z"))
            .bearer_auth(token)
            .send();
        async move {
            let response = tokio::time::timeout(std::time::Duration::from_secs(10), request)
                .await
                .expect("the export answered while the pool's every connection was held")
                .expect("an answer");
            assert_eq!(response.status(), 200);
            let text = response.text().await.expect("a body");
            text.lines()
                .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
                .collect::<Vec<_>>()
        }
    };
    let (researcher, staff) = (
        export(crate::support::app::token("onderzoeker", Role::Researcher)).await,
        export(facilitator()).await,
    );
    for event in researcher.iter().chain(&staff) {
        assert!(
            ["LessonRecorded", "DoetankFormed"].contains(&event["event_type"].as_str().unwrap_or_default()),
            "{event}"
        );
        assert!(event["recorded_at"].as_str() >= Some("2013-06-01"), "{event}");
    }
    let of_informal =
        |events: &[Value]| events.iter().filter(|e| e["stream_id"] == informal.as_str()).count();
    assert_eq!(of_informal(&researcher), 0, "rule 5: a researcher reads no informal doetank's events");
    assert!(of_informal(&staff) > 0, "a facilitator reads them");
    assert_eq!(researcher.len() + of_informal(&staff), staff.len());
    let page = "{ events(first: 100, filter: { types: [\"LessonRecorded\"] }) { edges { node { type } } } }";
    let staff_token = facilitator();
    let asked = app.gql_as(Some(&staff_token), page, json!({}));
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), asked)
        .await
        .expect("the events query answered while the pool's every connection was held");
    let edges = answer["data"]["events"]["edges"].as_array().expect("events").clone();
    assert!(!edges.is_empty() && edges.iter().all(|e| e["node"]["type"] == "LessonRecorded"), "{answer:#}");
    drop(held);
    db.cleanup().await;
}

/// A query sent over a WebSocket (graphql-transport-ws lets a client `subscribe` to one) is
/// read in one state too: the HTTP test's question, asked over one socket while lessons are
/// recorded.
async fn a_query_over_a_websocket_is_one_state_too(db: &TestDb) {
    use crate::support::ws::{WsClient, MODERN};

    let app = std::sync::Arc::new(TestApp::spawn(db).await);
    let (lead, d, formed_at) = led_doetank(&app, "Over de socket").await;
    let writer = lessons_written(&app, &d, &lead, 80);
    let mut socket = WsClient::connect(&app, MODERN).await;
    socket.init(json!({ "token": facilitator() })).await;
    let (mut asked, mut torn) = (0, Vec::new());
    while !writer.is_finished() {
        asked += 1;
        socket.subscribe(&format!("q{asked}"), ONE_STATE_QUESTION, json!({ "id": d })).await;
        let data = socket.next_data().await;
        match socket.next(std::time::Duration::from_secs(10)).await {
            Some(crate::support::ws::Incoming::Other(frame)) if frame["type"] == "complete" => {}
            other => panic!("expected the query's `complete`, got {other:?}"),
        }
        torn.extend(two_states(&data, formed_at));
    }
    writer.await.expect("writer");
    assert!(asked >= 10, "the answers were asked while the lessons were written ({asked})");
    assert!(torn.is_empty(), "answers of two states (version, lessons, total, listed): {torn:?}");
    socket.close().await;
}

/// A dashboard on another origin asks from the browser: the preflight and the answer name its
/// origin when the operator allowed it, and no other; without allowed origins, none is named.
#[tokio::test]
async fn cross_origin_requests_are_answered_for_the_allowed_origins_only() {
    use doetank_api::server::{AllowedOrigins, Origin};
    const DASHBOARD: &str = "https://dash.example.org";
    let db = TestDb::sqlite().await;
    let allowed = |given: &[&str]| {
        let given = given.iter().map(|o| o.parse::<Origin>().expect("origin")).collect();
        ServerConfig { allowed_origins: AllowedOrigins::from_given(given), ..ServerConfig::default() }
    };
    let header = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().expect("text").to_ascii_lowercase())
    };
    let preflight = |app: &TestApp, origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let post = |app: &TestApp, origin: &str| {
        app.http
            .post(app.url("/graphql"))
            .header("origin", origin)
            .bearer_auth(facilitator())
            .json(&json!({ "query": "{ doetanks { totalCount } }" }))
            .send()
    };

    let app =
        TestApp::spawn_with(&db, allowed(&["HTTPS://Dash.Example.org/", "http://localhost:5173"])).await;
    let asked = preflight(&app, DASHBOARD).await.expect("preflight");
    assert!(asked.status().is_success(), "{}", asked.status());
    assert_eq!(header(&asked, "access-control-allow-origin").as_deref(), Some(DASHBOARD));
    let headers = header(&asked, "access-control-allow-headers").unwrap_or_default();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert!(header(&asked, "access-control-allow-methods").unwrap_or_default().contains("post"));
    assert_eq!(header(&asked, "access-control-allow-credentials"), None, "bearer tokens, no cookies");
    let answered = post(&app, DASHBOARD).await.expect("post");
    assert_eq!(header(&answered, "access-control-allow-origin").as_deref(), Some(DASHBOARD));
    assert!(header(&answered, "vary").unwrap_or_default().contains("origin"));
    let body: Value = answered.json().await.expect("JSON");
    assert!(body["data"]["doetanks"]["totalCount"].is_number(), "{body:#}");
    for stranger in ["https://evil.example", "https://dash.example.org.evil.example"] {
        let refused = preflight(&app, stranger).await.expect("preflight");
        assert_eq!(header(&refused, "access-control-allow-origin"), None, "{stranger}");
        assert_eq!(header(&post(&app, stranger).await.expect("post"), "access-control-allow-origin"), None);
    }

    let any = TestApp::spawn_with(&db, allowed(&["*"])).await;
    let answered = post(&any, "https://anyone.example").await.expect("post");
    assert_eq!(header(&answered, "access-control-allow-origin").as_deref(), Some("*"));

    let same_origin_only = TestApp::spawn(&db).await;
    let answered = post(&same_origin_only, DASHBOARD).await.expect("post");
    assert_eq!(header(&answered, "access-control-allow-origin"), None);
}

/// A JSON array of requests (Apollo's `BatchHttpLink`, Relay's batching) is answered with an
/// array of the answers in the same order, each as its request alone would be answered: a query
/// after a mutation sees what it wrote, a text that does not parse has its own refusal. An
/// empty batch, one over the limit and a bad token are refused as a whole.
async fn a_batch_of_requests_is_answered_in_order_each_as_it_would_be_alone(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let register = json!({
        "query": "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id name } } }",
        "variables": { "input": { "name": "Bea", "organisation": "TNO", "sector": "ACADEMIC", "expertise": [] } }
    });
    let count = json!({ "query": "{ members { totalCount } }" });
    let batch = json!([count, register, count, { "query": "{ members {" }]);
    let response = app.post_graphql(&batch).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/graphql-response+json"[..])
    );
    let answers: Value = response.json().await.expect("JSON");
    let answers = answers.as_array().expect("an array").clone();
    assert_eq!(answers.len(), 4, "{answers:#?}");
    assert_eq!(answers[0]["data"]["members"]["totalCount"], 0, "{answers:#?}");
    assert_eq!(answers[1]["data"]["registerMember"]["member"]["name"], "Bea", "{answers:#?}");
    assert_eq!(answers[2]["data"]["members"]["totalCount"], 1, "the query after the mutation sees it");
    assert!(answers[3].get("data").is_none(), "refused as a whole: {:#}", answers[3]);
    assert_eq!(answers[3]["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");

    // For a client that prefers plain JSON, the same array as `application/json`.
    let plain = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "application/json")
        .bearer_auth(crate::support::app::facilitator())
        .json(&json!([count]))
        .send()
        .await
        .expect("POST");
    assert_eq!(plain.headers().get("content-type").map(|v| v.as_bytes()), Some(&b"application/json"[..]));
    let plain: Value = plain.json().await.expect("JSON");
    assert_eq!(plain[0]["data"]["members"]["totalCount"], 1, "{plain:#}");

    let refusals = [
        (json!([]), "GRAPHQL_PARSE_FAILED", "no GraphQL text"),
        (json!({}), "GRAPHQL_PARSE_FAILED", "no GraphQL text"),
        (Value::Array(vec![count.clone(); 33]), "BAD_REQUEST", "over the limit of 32"),
    ];
    for (body, code, message) in refusals {
        let response = app.post_graphql(&body).await;
        assert_eq!(response.status().as_u16(), 400);
        let refused: Value = response.json().await.expect("JSON");
        assert_eq!(refused["errors"][0]["extensions"]["code"], code, "{refused:#}");
        assert!(refused["errors"][0]["message"].as_str().is_some_and(|m| m.contains(message)), "{refused:#}");
    }
    let bad_token = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .bearer_auth("not-a-token")
        .json(&json!([count, count]))
        .send()
        .await
        .expect("POST");
    assert_eq!(bad_token.status().as_u16(), 401);
    let refused: Value = bad_token.json().await.expect("JSON");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{refused:#}");
}

/// An id a client chooses (or the command id that stands for it) that already names a thing of
/// another kind is BAD_INPUT naming that kind, so that `node(id)` finds one thing; the same id
/// sent again for the same kind gets that kind's own answer (ALREADY_EXISTS).
async fn an_id_a_client_chooses_names_one_thing_across_every_kind(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let taken = uuid::Uuid::new_v4().to_string();
    let register_as = json!({ "input": { "id": taken, "name": "Ida", "organisation": "TNO", "sector": "ACADEMIC", "expertise": [] } });
    let register_text = "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id } result { deduplicated } } }";
    let first = app.data(register_text, register_as.clone()).await;
    assert_eq!(first["registerMember"]["member"]["id"], taken.as_str());
    // The same kind keeps its own answer: that member exists (a retry carries its command id).
    let again = app.error(register_text, register_as).await;
    assert_eq!(again["extensions"]["code"], "ALREADY_EXISTS", "{again:#}");

    let challenge = raise(&app, &taken).await;
    let form = "mutation($input: FormDoetankInput!) { formDoetank(input: $input) { doetank { id } } }";
    let error = app
        .error(
            form,
            json!({ "input": { "id": taken, "name": "Dubbel", "challengeId": challenge, "leadId": taken } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_INPUT", "{error:#}");
    assert_eq!(error["extensions"]["field"], "id", "{error:#}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("already the id of a member")), "{error:#}");
    // The command id stands for the new id when none is given: the same check.
    let by_command = app
        .error(
            form,
            json!({ "input": { "commandId": challenge, "name": "Dubbel", "challengeId": challenge, "leadId": taken } }),
        )
        .await;
    assert_eq!(by_command["extensions"]["field"], "commandId", "{by_command:#}");
    assert!(by_command["message"].as_str().is_some_and(|m| m.contains("a challenge")), "{by_command:#}");
    let node = app.data("query($id: ID!) { node(id: $id) { __typename } }", json!({ "id": taken })).await;
    assert_eq!(node["node"]["__typename"], "Member", "nothing else took its id: {node:#}");
}

/// U+0000 cannot be stored by PostgreSQL at all, and no control character but tab and line
/// breaks is meant in a text: a command holding one is `BAD_INPUT` naming its field, on both
/// backends alike, and writes nothing (until the twenty-eighth session SQLite stored it and
/// PostgreSQL answered INTERNAL). A filter holding one is never an INTERNAL error either.
async fn a_text_the_log_should_not_hold_is_refused_and_writes_nothing(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna Test", "Gemeente Utrecht", "PUBLIC").await;
    let members = || app.data("{ members { totalCount } }", json!({}));
    let before = members().await;
    let register_as = |name: &str, organisation: &str, expertise: Value| {
        let input =
            json!({ "name": name, "organisation": organisation, "sector": "PUBLIC", "expertise": expertise });
        app.gql(
            "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id } } }",
            json!({ "input": input }),
        )
    };
    for (name, organisation, expertise, field) in [
        ("Bas", "Gemeente\u{0}Zeist", json!([]), "organisation"),
        ("Bas\u{7}", "Gemeente Zeist", json!([]), "name"),
        ("Bas", "Gemeente Zeist", json!(["goed", "fout\u{0}"]), "expertise"),
    ] {
        let head = app.head().await;
        let body = register_as(name, organisation, expertise).await;
        assert_refused(&app, head, &body, "registerMember", "BAD_INPUT", None).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body:#}");
    }
    assert_eq!(members().await, before, "no personal data was left behind either");
    // An e-mail address is one mail can be sent to (until the thirtieth session any text with
    // an `@` was kept, `@` alone too).
    for email in ["@", "bas@", "@zeist.nl", "bas@zeist", "b as@zeist.nl", "bas@zeist@nl", "bas@zeist..nl"] {
        let input =
            json!({ "name": "Bas", "email": email, "organisation": "Gemeente Zeist", "sector": "PUBLIC" });
        let head = app.head().await;
        let body = app
            .gql(
                "mutation($input: RegisterMemberInput!) { registerMember(input: $input) { member { id } } }",
                json!({ "input": input }),
            )
            .await;
        assert_refused(&app, head, &body, "registerMember", "BAD_INPUT", None).await;
        assert_eq!(body["errors"][0]["extensions"]["field"], "email", "{email}: {body:#}");
    }
    assert_eq!(members().await, before, "nor by a refused address");

    let raise_with = |description: &str| {
        let input = json!({ "title": "Kennis lekt weg", "description": description, "raisedBy": lead,
                            "origin": { "kind": "OWN_FRUSTRATION" } });
        app.gql(
            "mutation($input: RaiseChallengeInput!) { raiseChallenge(input: $input) { challenge { description } } }",
            json!({ "input": input }),
        )
    };
    let head = app.head().await;
    let body = raise_with("rood: \u{1b}[31m").await;
    assert_refused(&app, head, &body, "raiseChallenge", "BAD_INPUT", None).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "description", "{body:#}");
    // Tabs and line breaks are text.
    let kept = raise_with("eerste regel\r\n\ttweede regel").await;
    assert_eq!(kept["data"]["raiseChallenge"]["challenge"]["description"], "eerste regel\r\n\ttweede regel");

    // The log's filter is refused on both backends, naming its field.
    let body =
        app.gql(r#"{ events(filter: { streamId: "doetank-\u0000" }) { totalCount } }"#, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "streamId", "{body:#}");
    // Other reads: no match on SQLite, BAD_INPUT on PostgreSQL (which refuses to compare such
    // a text); never INTERNAL.
    for query in [
        r#"{ doetanks(filter: { organisation: "a\u0000" }) { totalCount } }"#,
        r#"{ members(organisation: "a\u0000") { totalCount } }"#,
        r#"{ events(filter: { streamId: "doetank-\u0000" }) { edges { node { position } } } }"#,
    ] {
        let body = app.gql(query, json!({})).await;
        if let Some(errors) = body.get("errors") {
            assert_eq!(errors[0]["extensions"]["code"], "BAD_INPUT", "{query}: {body:#}");
        }
    }
}

/// A member's name is personal data outside the log, the rest of the profile an event: a
/// command refused for the event (a bad organisation, a stale version) must not have changed
/// the name first, as it did until the twenty-eighth session.
async fn a_refused_profile_update_leaves_the_name_as_it_was(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let anna = register(&app, "Anna Test", "Gemeente Utrecht", "PUBLIC").await;
    let update = |input: Value| {
        app.gql(
            "mutation($input: UpdateMemberProfileInput!) { updateMemberProfile(input: $input) { member { name organisation } } }",
            json!({ "input": input }),
        )
    };
    let name = || {
        app.data("query($id: ID!) { member(id: $id) { name organisation version } }", json!({ "id": anna }))
    };
    let before = name().await;
    let head = app.head().await;
    let body = update(json!({ "memberId": anna, "name": "Anna Anders", "organisation": "  " })).await;
    assert_refused(&app, head, &body, "updateMemberProfile", "BAD_INPUT", None).await;
    assert_eq!(name().await, before, "{body:#}");
    let body = update(json!({ "memberId": anna, "name": "Anna Anders", "expectedVersion": 7 })).await;
    assert_refused(&app, head, &body, "updateMemberProfile", "VERSION_CONFLICT", None).await;
    assert_eq!(name().await, before, "{body:#}");
    let body = update(json!({ "memberId": anna, "name": "Anna\u{0}", "organisation": "TNO" })).await;
    assert_refused(&app, head, &body, "updateMemberProfile", "BAD_INPUT", None).await;
    assert_eq!(name().await, before, "{body:#}");

    // Accepted, both change: the name, and the organisation by its event.
    let body = update(json!({ "memberId": anna, "name": "Anna Anders", "organisation": "TNO" })).await;
    assert_eq!(
        body["data"]["updateMemberProfile"]["member"],
        json!({ "name": "Anna Anders", "organisation": "TNO" })
    );
    // The name alone writes no event and still changes.
    let body = update(json!({ "memberId": anna, "name": "Anna Derde" })).await;
    assert_eq!(body["data"]["updateMemberProfile"]["member"]["name"], "Anna Derde", "{body:#}");
}

/// An e-mail address given at registration is the member's and the facilitators' to read and
/// change, no one else's (until the thirty-first session it was kept and never shown, nor
/// changed); a member's past state shows their personal data as it is now (until then a past
/// member had no name).
async fn a_member_s_email_is_read_and_changed_by_them_and_facilitators_alone(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let registered = app
        .data(
            "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { member { id } } }",
            json!({ "i": { "name": "Anna Post", "email": "anna@utrecht.nl", "organisation": "Gemeente Utrecht", "sector": "PUBLIC" } }),
        )
        .await;
    let anna = registered["registerMember"]["member"]["id"].as_str().expect("id").to_string();
    let other = register(&app, "Bas Buur", "TNO", "PUBLIC").await;
    let read = "query($id: ID!) { member(id: $id) { email } }";
    let email = |token: Option<String>| {
        let app = &app;
        let anna = anna.clone();
        async move {
            app.gql_as(token.as_deref(), read, json!({ "id": anna })).await["data"]["member"]["email"].clone()
        }
    };
    assert_eq!(email(Some(member(&anna))).await, "anna@utrecht.nl");
    assert_eq!(email(Some(facilitator())).await, "anna@utrecht.nl");
    assert_eq!(email(Some(member(&other))).await, Value::Null, "another member");
    assert_eq!(email(None).await, Value::Null, "anonymous");

    let update =
        "mutation($i: UpdateMemberProfileInput!) { updateMemberProfile(input: $i) { member { email } } }";
    let change = |token: String, input: Value| {
        let app = &app;
        async move { app.gql_as(Some(&token), update, json!({ "i": input })).await }
    };
    let body = change(member(&anna), json!({ "memberId": anna, "email": " anna@bzk.nl " })).await;
    assert_eq!(body["data"]["updateMemberProfile"]["member"]["email"], "anna@bzk.nl", "{body:#}");
    let head = app.head().await;
    let body = change(member(&anna), json!({ "memberId": anna, "email": "geen adres" })).await;
    assert_refused(&app, head, &body, "updateMemberProfile", "BAD_INPUT", None).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "email");
    let body = change(member(&other), json!({ "memberId": anna, "email": "bas@tno.nl" })).await;
    assert_refused(&app, head, &body, "updateMemberProfile", "FORBIDDEN", None).await;
    assert_eq!(email(Some(member(&anna))).await, "anna@bzk.nl", "refusals change nothing");
    // An address is one member's: a second registration of a person, or a change to another
    // member's address, is refused, whatever its case (until the thirty-first session taken).
    let twice = app
        .gql(
            "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { member { id } } }",
            json!({ "i": { "name": "Anna Tweemaal", "email": "ANNA@bzk.nl", "organisation": "BZK", "sector": "PUBLIC" } }),
        )
        .await;
    assert_refused(&app, head, &twice, "registerMember", "BAD_INPUT", None).await;
    assert!(twice["errors"][0]["message"].as_str().unwrap_or_default().contains(&anna), "{twice:#}");
    let body = change(member(&other), json!({ "memberId": other, "email": "Anna@BZK.nl" })).await;
    assert_refused(&app, head, &body, "updateMemberProfile", "BAD_INPUT", None).await;
    let body = change(member(&anna), json!({ "memberId": anna, "email": "anna@BZK.nl" })).await;
    assert_eq!(body["data"]["updateMemberProfile"]["member"]["email"], "anna@BZK.nl", "their own, recased");
    let body = change(facilitator(), json!({ "memberId": anna, "email": "" })).await;
    assert_eq!(body["data"]["updateMemberProfile"]["member"]["email"], Value::Null, "a blank one removes it");

    // A past state of the member: its personal data as it is now.
    let past = app
        .data("query($id: ID!) { member(id: $id, atVersion: 1) { name version } }", json!({ "id": anna }))
        .await;
    assert_eq!(past["member"], json!({ "name": "Anna Post", "version": 1 }));
}

/// Registrations, or profile changes, racing for one address no one has yet: one member gets
/// it, the others are refused as they would be one after another, and nothing of theirs is
/// written (until the thirty-second session each checked the address before any had written
/// it, so all could pass).
async fn members_racing_for_one_new_address_leave_it_to_one(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let registration = "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { member { id } } }";
    for round in 0..5 {
        let head = app.head().await;
        let address = format!("gedeeld-{round}@voorbeeld.nl");
        let asks = (0..4).map(|n| {
            let email = if n % 2 == 0 { address.clone() } else { address.to_uppercase() };
            let input = json!({ "i": { "name": format!("Lid {n}"), "email": email, "organisation": "TNO", "sector": "PUBLIC" } });
            app.gql(registration, input)
        });
        let answers = futures::future::join_all(asks).await;
        let taken = answers.iter().filter(|a| a.get("errors").is_none()).count();
        assert_eq!(taken, 1, "round {round}: {answers:#?}");
        for refused in answers.iter().filter(|a| a.get("errors").is_some()) {
            let ext = &refused["errors"][0]["extensions"];
            assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("email")), "{refused:#}");
        }
        assert_eq!(app.head().await, head + 1, "round {round}: one registration written");
    }

    let update =
        "mutation($i: UpdateMemberProfileInput!) { updateMemberProfile(input: $i) { member { email } } }";
    for round in 0..5 {
        let anna = register(&app, "Anna", "TNO", "PUBLIC").await;
        let bas = register(&app, "Bas", "TNO", "PUBLIC").await;
        let head = app.head().await;
        let address = format!("nieuw-{round}@voorbeeld.nl");
        let change = |id: &str| {
            let input =
                json!({ "memberId": id, "email": address, "organisation": format!("Provincie {round}") });
            let app = &app;
            async move { app.gql_as(Some(&facilitator()), update, json!({ "i": input })).await }
        };
        let (a, b) = tokio::join!(change(&anna), change(&bas));
        let (won, lost) = match (a.get("errors"), b.get("errors")) {
            (None, Some(_)) => ((anna, a), (bas, b)),
            (Some(_), None) => ((bas, b), (anna, a)),
            _ => panic!("round {round}: one change must win: {a:#} {b:#}"),
        };
        assert_eq!(won.1["data"]["updateMemberProfile"]["member"]["email"], address.as_str());
        assert_eq!(lost.1["errors"][0]["extensions"]["field"], "email", "{:#}", lost.1);
        assert_eq!(app.head().await, head + 1, "round {round}: the refused change wrote no event");
        let loser = app
            .gql_as(
                Some(&facilitator()),
                "query($id: ID!) { member(id: $id) { email organisation } }",
                json!({ "id": lost.0 }),
            )
            .await;
        assert_eq!(loser["data"]["member"], json!({ "email": null, "organisation": "TNO" }), "round {round}");
    }
}

/// The migration that keeps an address to one member, run over a database where members share
/// one (registered before the thirty-first session, or by a race): the first registered keeps
/// it, whatever its case, and the index is built.
async fn an_address_members_shared_before_stays_with_the_first_registered(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let first = register(&app, "Eerste", "TNO", "PUBLIC").await;
    let second = register(&app, "Tweede", "TNO", "PUBLIC").await;
    let third = register(&app, "Derde", "TNO", "PUBLIC").await;
    let alone = register(&app, "Alleen", "TNO", "PUBLIC").await;
    let migration = match db.store.backend() {
        doetank_store::Backend::Sqlite(_) => {
            include_str!("../../migrations/sqlite/0008_one_member_per_address.sql")
        }
        doetank_store::Backend::Postgres(_) => {
            include_str!("../../migrations/postgres/0012_one_member_per_address.sql")
        }
    };
    let shared = [
        (&second, "Gedeeld@x.nl"),
        (&first, "gedeeld@x.nl"),
        (&third, "GEDEELD@X.NL"),
        (&alone, "eigen@x.nl"),
    ];
    doetank_store::on_pool!(db.store.backend(), pool => {
        sqlx::raw_sql("DROP INDEX member_personal_data_email").execute(pool).await.expect("as before");
        for (id, email) in shared {
            sqlx::query("UPDATE member_personal_data SET email = $1 WHERE member_id = $2")
                .bind(email)
                .bind(id.as_str())
                .execute(pool)
                .await
                .expect("shared");
        }
        sqlx::raw_sql(migration).execute(pool).await.expect("the migration");
    });
    let email = |id: &String| {
        let app = &app;
        let id = id.clone();
        async move {
            let read = "query($id: ID!) { member(id: $id) { email } }";
            app.gql_as(Some(&facilitator()), read, json!({ "id": id })).await["data"]["member"]["email"]
                .clone()
        }
    };
    assert_eq!(email(&first).await, "gedeeld@x.nl", "the first registered keeps it");
    assert_eq!(email(&second).await, Value::Null);
    assert_eq!(email(&third).await, Value::Null);
    assert_eq!(email(&alone).await, "eigen@x.nl", "an address of its own is left alone");
    let taken = doetank_store::on_pool!(db.store.backend(), pool => {
        sqlx::query("UPDATE member_personal_data SET email = 'EIGEN@x.nl' WHERE member_id = $1")
            .bind(first.as_str())
            .execute(pool)
            .await
            .map(drop)
    });
    assert!(taken.is_err(), "the index is built");
}

/// A kick-off is attended by members of the network (not only of the doetank); an attendee id
/// that names no member is refused (it was kept as a dangling id until the twenty-eighth session).
async fn a_kickoff_names_its_attendees_who_must_be_members(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Anna Test", "Gemeente Utrecht", "PUBLIC").await;
    let guest = register(&app, "Bas Gast", "Provincie Utrecht", "PUBLIC").await;
    let outsider = register(&app, "Cor Buiten", "TNO", "ACADEMIC").await;
    let challenge = raise(&app, &lead).await;
    let formed = ok(
        &app,
        "formDoetank",
        "FormDoetankInput",
        json!({ "name": "Aftrap", "challengeId": challenge, "leadId": lead, "at": "2013-04-01T09:00:00Z" }),
    )
    .await;
    let d = formed["doetank"]["id"].as_str().expect("doetank id").to_string();
    // Held after the doetank was formed, and recorded once held: not before, not in the future.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().to_string();
    for date in ["2013-03-31", tomorrow.as_str()] {
        let early = json!({ "doetankId": d, "date": date, "venue": "Utrecht", "attendeeIds": [lead] });
        let body = mutate(&app, "holdKickoff", "HoldKickoffInput", early).await;
        let ext = &body["errors"][0]["extensions"];
        assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("date")), "{date}: {body:#}");
    }
    let kickoff = |attendees: Vec<&str>| json!({ "doetankId": d, "date": "2013-05-01", "venue": "Utrecht", "attendeeIds": attendees });
    let ghost = "00000000-0000-4000-8000-00000000abcd";
    refused(&app, "holdKickoff", "HoldKickoffInput", kickoff(vec![&lead, ghost]), "NOT_FOUND", None).await;
    // The doetank is informal: to an outsider it does not exist (rule 5).
    refused_as(
        &app,
        &member(&outsider),
        "holdKickoff",
        "HoldKickoffInput",
        kickoff(vec![&lead]),
        "NOT_FOUND",
        None,
    )
    .await;
    // Each attendee once, however often named; a thousand at most (each is looked up).
    let crowd: Vec<String> = (0..1_001).map(|i| format!("00000000-0000-4000-8000-{i:012x}")).collect();
    let body = mutate_as(
        &app,
        &member(&lead),
        "holdKickoff",
        "HoldKickoffInput",
        kickoff(crowd.iter().map(String::as_str).collect()),
    )
    .await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("attendeeIds")), "{body:#}");
    ok_as(&app, &member(&lead), "holdKickoff", "HoldKickoffInput", kickoff(vec![&lead, &guest, &lead])).await;
    // The kick-off is the first meeting: held once (until the thirty-first session a second
    // was recorded beside it).
    refused(
        &app,
        "holdKickoff",
        "HoldKickoffInput",
        kickoff(vec![&lead]),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    let read = app
        .data(
            "query($id: ID!) { doetank(id: $id) { kickoffs { date venue attendeeIds attendees { name } } } }",
            json!({ "id": d }),
        )
        .await;
    assert_eq!(
        read["doetank"]["kickoffs"],
        json!([{ "date": "2013-05-01", "venue": "Utrecht", "attendeeIds": [lead, guest],
                 "attendees": [{ "name": "Anna Test" }, { "name": "Bas Gast" }] }])
    );
}
