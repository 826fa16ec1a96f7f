//! The whole network over HTTP: cafés, ideation days, pilots, charters and knowledge reuse through
//! their lives, every rule with its code, and the lineage and timeline on the demo history.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{assert_refused, raise, register};
use crate::both_backends;
use crate::support::app::{facilitator, member};
use crate::support::{TestApp, TestDb};

both_backends!(
    a_cafe_lives_and_links_its_challenges,
    an_ideation_day_ranks_only_its_own_ideas,
    a_pilot_suspends_a_rule_only_with_a_mandate_and_an_end,
    a_charter_is_signed_once_per_signatory,
    a_reuse_pledge_is_fulfilled_once,
    a_reuse_of_one_lesson_names_it,
    lineage_follows_the_rocket_both_ways_on_the_demo,
    the_timeline_tells_the_demo_history_in_order,
    the_demo_history_is_recorded_at_its_own_dates,
    every_event_fits_the_schema_event_types_gives_for_it,
    node_fetches_anything_by_its_id_with_its_own_query_s_rules,
    members_are_found_by_their_expertise,
    the_figures_are_told_as_they_stood_at_a_date,
    the_network_s_past_is_replayed_a_few_at_a_time,
    costly_fields_count_for_more_of_a_request_s_complexity,
    the_median_days_of_a_phase_are_the_median_of_its_completions,
    an_answer_keeps_the_order_of_the_query,
);

/// Runs `mutation { name(input: $input) { id result { ... } } }` as `token`; returns the body.
async fn send(app: &TestApp, token: &str, name: &str, input_type: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ id result {{ streamVersion position }} }} }}"
    );
    app.gql_as(Some(token), &query, json!({ "input": input })).await
}

/// Every event of the log a facilitator reads, page by page, each with `fields`.
async fn whole_log(app: &TestApp, fields: &str) -> Vec<Value> {
    let query = format!(
        "query($after: String) {{ events(first: 100, after: $after) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }} }} }}"
    );
    let (mut events, mut after) = (Vec::new(), Value::Null);
    loop {
        let page = app.data(&query, json!({ "after": after })).await;
        let page = &page["events"];
        events.extend(page["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()));
        if page["pageInfo"]["hasNextPage"] != true {
            return events;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

pub(crate) async fn ok(app: &TestApp, name: &str, input_type: &str, input: Value) -> String {
    let body = send(app, &facilitator(), name, input_type, input).await;
    assert!(body.get("errors").is_none(), "{name}: {body:#}");
    body["data"][name]["id"].as_str().expect("id").to_string()
}

/// Must be refused with `code` (and `rule`) and write nothing.
async fn refused(
    app: &TestApp,
    token: &str,
    name: &str,
    input_type: &str,
    input: Value,
    code: &str,
    rule: Option<&str>,
) {
    let head = app.head().await;
    let body = send(app, token, name, input_type, input).await;
    assert_refused(app, head, &body, name, code, rule).await;
}

async fn a_cafe_lives_and_links_its_challenges(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let someone = register(&app, "Sam", "Gemeente Utrecht", "PUBLIC").await;
    let schedule =
        |date: &str| json!({ "title": "Slimmernetwerk Café", "date": date, "venue": "Kennisland" });
    refused(
        &app,
        &member(&someone),
        "scheduleCafe",
        "ScheduleCafeInput",
        schedule("2099-01-01"),
        "FORBIDDEN",
        None,
    )
    .await;
    let past = ok(&app, "scheduleCafe", "ScheduleCafeInput", schedule("2013-02-28")).await;
    // A five-digit year (or one before 1900) is a typing mistake, and did not sort as a date:
    // until the thirtieth session `+12000-02-28` was kept and listed before 2013.
    for date in ["+12000-02-28", "0213-02-28"] {
        let head = app.head().await;
        let body = send(&app, &facilitator(), "scheduleCafe", "ScheduleCafeInput", schedule(date)).await;
        let ext = &body["errors"][0]["extensions"];
        assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("date")), "{body:#}");
        assert_eq!(app.head().await, head, "a refused date writes nothing");
    }
    ok(
        &app,
        "announceSpeaker",
        "AnnounceInput",
        json!({ "cafeId": past, "title": "Slimmer werken", "person": "Een spreker" }),
    )
    .await;
    ok(
        &app,
        "announceWorkshop",
        "AnnounceInput",
        json!({ "cafeId": past, "title": "Charter", "person": "Slimmernetwerk" }),
    )
    .await;
    // The same talk announced again (a retry without a commandId) is on the program once
    // (until the thirty-first session it was listed twice).
    refused(
        &app,
        &facilitator(),
        "announceSpeaker",
        "AnnounceInput",
        json!({ "cafeId": past, "title": "slimmer  werken", "person": "Een spreker" }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    // A count beyond any gathering (and beyond GraphQL's 32-bit Int, which the input took
    // until the twenty-ninth session and answered back) is a typing mistake; so is a café held
    // with no one there (until the thirty-first session taken): it is cancelled instead.
    for attendance in [json!(3_000_000_000u64), json!(0)] {
        let input = json!({ "cafeId": past, "attendance": attendance });
        let body = send(&app, &facilitator(), "holdCafe", "HoldCafeInput", input).await;
        let ext = &body["errors"][0]["extensions"];
        assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("attendance")), "{body:#}");
    }
    ok(&app, "holdCafe", "HoldCafeInput", json!({ "cafeId": past, "attendance": 60 })).await;
    refused(
        &app,
        &facilitator(),
        "cancelCafe",
        "CancelCafeInput",
        json!({ "cafeId": past, "reason": "te laat" }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    let future = ok(&app, "scheduleCafe", "ScheduleCafeInput", schedule("2099-06-01")).await;
    // Held on its day or after, not before (until the twenty-ninth session a café of 2099 could
    // be held today, its attendance counted).
    refused(
        &app,
        &facilitator(),
        "holdCafe",
        "HoldCafeInput",
        json!({ "cafeId": future, "attendance": 40 }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    let cancelled = ok(&app, "scheduleCafe", "ScheduleCafeInput", schedule("2099-07-01")).await;
    ok(&app, "cancelCafe", "CancelCafeInput", json!({ "cafeId": cancelled, "reason": "zaal dicht" })).await;
    refused(
        &app,
        &facilitator(),
        "holdCafe",
        "HoldCafeInput",
        json!({ "cafeId": cancelled, "attendance": 3 }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;

    // A challenge raised at the café links back to it.
    let raised = app
        .gql_as(
            Some(&member(&someone)),
            "mutation($i: RaiseChallengeInput!) { raiseChallenge(input: $i) { challenge { id origin { kind organisation cafe { id title } idea { id } } } } }",
            json!({ "i": { "title": "Vergaderen kan korter", "description": "Op het café besproken.", "raisedBy": someone,
                           "origin": { "kind": "CAFE", "cafeId": past } } }),
        )
        .await;
    assert!(raised.get("errors").is_none(), "{raised:#}");
    assert_eq!(
        raised["data"]["raiseChallenge"]["challenge"]["origin"],
        json!({ "kind": "CAFE", "organisation": null, "cafe": { "id": past, "title": "Slimmernetwerk Café" }, "idea": null })
    );
    // An origin must exist: a café that is not there, or an idea not submitted to the day named
    // (until the twenty-eighth session both were kept, and the lineage pointed at nothing).
    let day =
        json!({ "name": "Stampij", "centralQuestion": "Hoe?", "date": "2013-03-15", "venue": "Den Haag" });
    let day = ok(&app, "scheduleIdeationEvent", "ScheduleIdeationEventInput", day).await;
    let ghost = "00000000-0000-4000-8000-00000000abcd";
    let coming =
        json!({ "name": "Later", "centralQuestion": "Hoe?", "date": "2099-03-15", "venue": "Den Haag" });
    let coming = ok(&app, "scheduleIdeationEvent", "ScheduleIdeationEventInput", coming).await;
    let early = json!({ "ideationEventId": coming, "title": "Vroeg", "description": "..." });
    let early = ok(&app, "submitIdea", "SubmitIdeaInput", early).await;
    // Nor from a café that never met: one cancelled, or one still to come (until the thirtieth
    // session both were taken); nor from an idea whose day is still to come (until the
    // thirty-first).
    for (origin, code, rule) in [
        (
            json!({ "kind": "IDEA", "ideationEventId": coming, "ideaId": early }),
            "RULE_VIOLATED",
            Some("LIFECYCLE"),
        ),
        (json!({ "kind": "CAFE", "cafeId": ghost }), "NOT_FOUND", None),
        (json!({ "kind": "IDEA", "ideationEventId": ghost, "ideaId": ghost }), "NOT_FOUND", None),
        (json!({ "kind": "IDEA", "ideationEventId": day, "ideaId": ghost }), "NOT_FOUND", None),
        (json!({ "kind": "CAFE", "cafeId": cancelled }), "RULE_VIOLATED", Some("LIFECYCLE")),
        (json!({ "kind": "CAFE", "cafeId": future }), "RULE_VIOLATED", Some("LIFECYCLE")),
    ] {
        let input = json!({ "title": "Nergens vandaan", "description": "...", "raisedBy": someone, "origin": origin });
        let head = app.head().await;
        let body = app
            .gql_as(
                Some(&member(&someone)),
                "mutation($i: RaiseChallengeInput!) { raiseChallenge(input: $i) { challenge { id } } }",
                json!({ "i": input }),
            )
            .await;
        assert_refused(&app, head, &body, "raiseChallenge", code, rule).await;
    }
    let data = app
        .data(
            "query($id: ID!) { cafe(id: $id) { status attendance speakers { title person } workshops { title } challenges { title } } \
             upcoming: cafes(when: UPCOMING) { totalCount edges { node { id } } } past: cafes(when: PAST) { totalCount } }",
            json!({ "id": past }),
        )
        .await;
    assert_eq!(data["cafe"]["status"], "HELD");
    assert_eq!(data["cafe"]["attendance"], 60);
    assert_eq!(data["cafe"]["speakers"][0]["person"], "Een spreker");
    assert_eq!(data["cafe"]["challenges"][0]["title"], "Vergaderen kan korter");
    assert_eq!(data["upcoming"]["totalCount"], 1);
    assert_eq!(data["upcoming"]["edges"][0]["node"]["id"], future.as_str());
    assert_eq!(data["past"]["totalCount"], 2, "held and cancelled cafés are past");
}

async fn an_ideation_day_ranks_only_its_own_ideas(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let innovator = register(&app, "Ida", "Belastingdienst", "PUBLIC").await;
    let schedule = json!({ "name": "Stampij!fabriek", "centralQuestion": "Hoe wordt de overheid de beste werkgever?", "date": "2013-03-15", "venue": "Den Haag" });
    let day = ok(&app, "scheduleIdeationEvent", "ScheduleIdeationEventInput", schedule.clone()).await;
    let other_day = ok(&app, "scheduleIdeationEvent", "ScheduleIdeationEventInput", schedule).await;
    let submit =
        |event: &str, title: &str| json!({ "ideationEventId": event, "title": title, "description": "..." });
    let mut ideas = Vec::new();
    for title in ["20/10", "Hack de OR!", "Lanceerplatform"] {
        let body =
            send(&app, &member(&innovator), "submitIdea", "SubmitIdeaInput", submit(&day, title)).await;
        assert!(body.get("errors").is_none(), "{body:#}");
        let idea: Value = app
            .data(
                "query($id: ID!) { ideationEvent(id: $id) { ideas { id title submittedBy { id } } } }",
                json!({ "id": day }),
            )
            .await;
        // The answer's id is the new idea's (until the twenty-eighth session, its day's).
        let newest = &idea["ideationEvent"]["ideas"].as_array().expect("ideas").last().expect("idea")["id"];
        assert_eq!(body["data"]["submitIdea"]["id"], *newest, "{body:#}");
        ideas.push(newest.as_str().expect("id").to_string());
    }
    // An idea names who submitted it: a token whose member the network does not have submits
    // nothing (until the twenty-ninth session the idea named no one).
    let stranger = Uuid::new_v4().to_string();
    refused(
        &app,
        &member(&stranger),
        "submitIdea",
        "SubmitIdeaInput",
        submit(&day, "Van niemand"),
        "NOT_FOUND",
        None,
    )
    .await;
    // One title once a day: the jury ranks ideas by it (until the thirty-first session a second
    // "hack de or!" was taken beside the first); another day may have it.
    refused(
        &app,
        &member(&innovator),
        "submitIdea",
        "SubmitIdeaInput",
        submit(&day, " hack de  OR! "),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    let foreign = ok(&app, "submitIdea", "SubmitIdeaInput", submit(&other_day, "Elders")).await;
    let listed: Value = app
        .data("query($id: ID!) { ideationEvent(id: $id) { ideas { id } } }", json!({ "id": other_day }))
        .await;
    assert_eq!(listed["ideationEvent"]["ideas"][0]["id"], foreign.as_str());
    ok(&app, "submitIdea", "SubmitIdeaInput", submit(&other_day, "Hack de OR!")).await;

    // What happens at the day happens on it or after: a day of 2099 has no pitches yet.
    let later = json!({ "name": "Later", "centralQuestion": "?", "date": "2099-03-15", "venue": "Den Haag" });
    let later = ok(&app, "scheduleIdeationEvent", "ScheduleIdeationEventInput", later).await;
    let early = ok(&app, "submitIdea", "SubmitIdeaInput", submit(&later, "Vroeg ingediend")).await;
    for (mutation, input_type, input) in [
        ("pitchIdea", "IdeaInput", json!({ "ideationEventId": later, "ideaId": early })),
        ("giveJuryVerdict", "JuryVerdictInput", json!({ "ideationEventId": later, "ranking": [early] })),
        (
            "concludeIdeationEvent",
            "ConcludeIdeationEventInput",
            json!({ "ideationEventId": later, "participantCount": 3 }),
        ),
        // Nor follow-ups: an organisation adopts what the day brought forth (until the
        // thirty-first session an idea was adopted before its day).
        (
            "adoptIdea",
            "AdoptIdeaInput",
            json!({ "ideationEventId": later, "ideaId": early, "organisation": "Gemeente Utrecht" }),
        ),
    ] {
        refused(&app, &facilitator(), mutation, input_type, input, "RULE_VIOLATED", Some("LIFECYCLE")).await;
    }

    ok(&app, "pitchIdea", "IdeaInput", json!({ "ideationEventId": day, "ideaId": ideas[0] })).await;
    refused(
        &app,
        &facilitator(),
        "pitchIdea",
        "IdeaInput",
        json!({ "ideationEventId": day, "ideaId": ideas[0] }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    refused(
        &app,
        &member(&innovator),
        "giveJuryVerdict",
        "JuryVerdictInput",
        json!({ "ideationEventId": day, "ranking": [ideas[0]] }),
        "FORBIDDEN",
        None,
    )
    .await;
    refused(
        &app,
        &facilitator(),
        "giveJuryVerdict",
        "JuryVerdictInput",
        json!({ "ideationEventId": day, "ranking": [ideas[0], foreign] }),
        "RULE_VIOLATED",
        Some("JURY_RANKS_OWN_IDEAS"),
    )
    .await;
    ok(&app, "giveJuryVerdict", "JuryVerdictInput", json!({ "ideationEventId": day, "ranking": [ideas[0], ideas[1], ideas[2]], "motivation": "vergrijzing" })).await;
    // Nothing is pitched after the verdict (until the thirty-first session it was).
    refused(
        &app,
        &facilitator(),
        "pitchIdea",
        "IdeaInput",
        json!({ "ideationEventId": day, "ideaId": ideas[1] }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    ok(
        &app,
        "concludeIdeationEvent",
        "ConcludeIdeationEventInput",
        json!({ "ideationEventId": day, "participantCount": 150 }),
    )
    .await;
    refused(
        &app,
        &facilitator(),
        "submitIdea",
        "SubmitIdeaInput",
        submit(&day, "Te laat"),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    ok(
        &app,
        "adoptIdea",
        "AdoptIdeaInput",
        json!({ "ideationEventId": day, "ideaId": ideas[1], "organisation": "Gemeente Utrecht" }),
    )
    .await;
    // Once per organisation, however it is cased (until the thirty-first session twice).
    refused(
        &app,
        &facilitator(),
        "adoptIdea",
        "AdoptIdeaInput",
        json!({ "ideationEventId": day, "ideaId": ideas[1], "organisation": "gemeente utrecht" }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;

    let challenge = raise(&app, &innovator).await;
    let formed = app
        .gql_as(
            Some(&facilitator()),
            "mutation($i: FormDoetankInput!) { formDoetank(input: $i) { doetank { id } } }",
            json!({ "i": { "name": "20/10", "challengeId": challenge, "leadId": innovator } }),
        )
        .await;
    let doetank = formed["data"]["formDoetank"]["doetank"]["id"].as_str().expect("doetank").to_string();
    let take = json!({ "ideationEventId": day, "ideaId": ideas[0], "doetankId": doetank });
    let outsider = register(&app, "Otto", "TNO", "PUBLIC").await;
    // The doetank is informal: to an outsider it does not exist (rule 5).
    refused(
        &app,
        &member(&outsider),
        "takeIdeaIntoDoetank",
        "TakeIdeaIntoDoetankInput",
        take.clone(),
        "NOT_FOUND",
        None,
    )
    .await;
    let body = send(&app, &member(&innovator), "takeIdeaIntoDoetank", "TakeIdeaIntoDoetankInput", take).await;
    assert!(body.get("errors").is_none(), "the lead links the idea: {body:#}");
    // A concluded doetank takes no idea up any more (rule 6; until the thirtieth session it
    // did).
    let concluded = json!({ "doetankId": doetank, "outcome": "DISCONTINUED", "reflection": "gestopt" });
    let conclude =
        "mutation($i: ConcludeDoetankInput!) { concludeDoetank(input: $i) { doetank { status } } }";
    let body = app.gql_as(Some(&member(&innovator)), conclude, json!({ "i": concluded })).await;
    assert_eq!(body["data"]["concludeDoetank"]["doetank"]["status"], "DISCONTINUED", "{body:#}");
    refused(
        &app,
        &member(&innovator),
        "takeIdeaIntoDoetank",
        "TakeIdeaIntoDoetankInput",
        json!({ "ideationEventId": day, "ideaId": ideas[1], "doetankId": doetank }),
        "RULE_VIOLATED",
        Some("CONCLUDED_IS_FINAL"),
    )
    .await;

    let data = app
        .data(
            "query($id: ID!) { ideationEvent(id: $id) { status participantCount ranking { title juryRank pitched adoptedBy doetanks { name } submittedBy { name } } } }",
            json!({ "id": day }),
        )
        .await;
    let event = &data["ideationEvent"];
    assert_eq!(event["status"], "CONCLUDED");
    assert_eq!(event["participantCount"], 150);
    let ranking = event["ranking"].as_array().expect("ranking");
    assert_eq!(
        ranking.iter().map(|i| i["title"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
        ["20/10", "Hack de OR!", "Lanceerplatform"]
    );
    assert_eq!(ranking[0]["doetanks"][0]["name"], "20/10");
    assert_eq!(ranking[0]["submittedBy"]["name"], "Ida");
    assert_eq!(ranking[1]["adoptedBy"], json!(["Gemeente Utrecht"]));
}

async fn a_pilot_suspends_a_rule_only_with_a_mandate_and_an_end(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let applicant = register(&app, "Pim", "Gemeente Utrecht", "PUBLIC").await;
    let propose = |function: &str, primary: bool| {
        json!({ "hinderingRule": "Twee handtekeningen per declaratie", "alternative": "Steekproef achteraf",
                "expectedGain": "Twee weken sneller", "applicantFunction": function, "inPrimaryProcess": primary })
    };
    refused(
        &app,
        &member(&applicant),
        "proposePilot",
        "ProposePilotInput",
        propose("MANAGEMENT", true),
        "RULE_VIOLATED",
        Some("APPLICANT_ELIGIBILITY"),
    )
    .await;
    refused(
        &app,
        &member(&applicant),
        "proposePilot",
        "ProposePilotInput",
        propose("POLICY", false),
        "RULE_VIOLATED",
        Some("APPLICANT_ELIGIBILITY"),
    )
    .await;
    // An external adviser is no civil servant, whatever function they state (until the
    // thirty-first session their "policy" was taken).
    let adviser = register(&app, "Ad", "Adviesbureau", "EXTERNAL_ADVISER").await;
    refused(
        &app,
        &member(&adviser),
        "proposePilot",
        "ProposePilotInput",
        propose("POLICY", true),
        "RULE_VIOLATED",
        Some("APPLICANT_ELIGIBILITY"),
    )
    .await;
    let body =
        send(&app, &member(&applicant), "proposePilot", "ProposePilotInput", propose("OPERATIONAL", true))
            .await;
    let pilot = body["data"]["proposePilot"]["id"].as_str().expect("pilot").to_string();
    let suspend = |until: Value| json!({ "pilotId": pilot, "from": "2013-09-01", "until": until });
    refused(
        &app,
        &facilitator(),
        "suspendRule",
        "SuspendRuleInput",
        suspend(json!("2014-03-01")),
        "RULE_VIOLATED",
        Some("MANDATE_BEFORE_SUSPENSION"),
    )
    .await;
    refused(
        &app,
        &member(&applicant),
        "grantMandate",
        "GrantMandateInput",
        json!({ "pilotId": pilot, "grantedBy": "mij" }),
        "FORBIDDEN",
        None,
    )
    .await;
    ok(
        &app,
        "grantMandate",
        "GrantMandateInput",
        json!({ "pilotId": pilot, "grantedBy": "Ministerie van BZK" }),
    )
    .await;
    refused(
        &app,
        &facilitator(),
        "suspendRule",
        "SuspendRuleInput",
        suspend(Value::Null),
        "RULE_VIOLATED",
        Some("SUSPENSION_HAS_END"),
    )
    .await;
    refused(
        &app,
        &facilitator(),
        "suspendRule",
        "SuspendRuleInput",
        suspend(json!("2013-08-01")),
        "RULE_VIOLATED",
        Some("SUSPENSION_HAS_END"),
    )
    .await;
    // An end 260,000 years away is no end; it was kept until the thirtieth session, and then
    // `suspendedRules` (which compares the dates as text) did not find the rule set aside.
    let body =
        send(&app, &facilitator(), "suspendRule", "SuspendRuleInput", suspend(json!("+262142-01-01"))).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("until")), "{body:#}");
    ok(&app, "suspendRule", "SuspendRuleInput", suspend(json!("2014-03-01"))).await;
    let conclude = json!({ "pilotId": pilot, "outcome": "RULE_CHANGED", "note": "aangepast" });
    refused(
        &app,
        &facilitator(),
        "concludePilot",
        "ConcludePilotInput",
        conclude.clone(),
        "RULE_VIOLATED",
        Some("EVALUATION_BEFORE_CONCLUSION"),
    )
    .await;

    let during = app
        .data("{ suspendedRules(on: \"2013-12-01\") { hinderingRule suspendedUntil status applicant { name } } after: suspendedRules(on: \"2015-01-01\") { id } }", json!({}))
        .await;
    assert_eq!(during["suspendedRules"][0]["suspendedUntil"], "2014-03-01");
    assert_eq!(during["suspendedRules"][0]["applicant"]["name"], "Pim");
    assert_eq!(during["after"], json!([]));

    ok(&app, "evaluatePilot", "EvaluatePilotInput", json!({ "pilotId": pilot, "findings": "Geen misbruik" }))
        .await;
    ok(&app, "concludePilot", "ConcludePilotInput", conclude).await;

    // A pilot whose rule is set aside from 2099 has nothing to evaluate yet.
    let body =
        send(&app, &member(&applicant), "proposePilot", "ProposePilotInput", propose("POLICY", true)).await;
    let later = body["data"]["proposePilot"]["id"].as_str().expect("pilot").to_string();
    ok(&app, "grantMandate", "GrantMandateInput", json!({ "pilotId": later, "grantedBy": "BZK" })).await;
    let from_2099 = json!({ "pilotId": later, "from": "2099-01-01", "until": "9999-12-31" });
    ok(&app, "suspendRule", "SuspendRuleInput", from_2099).await;
    // Set aside until the calendar's last day: not on a day past it (until the thirty-first
    // session SQLite, comparing dates as text, had the rule suspended in the year 12000).
    let on = "query($on: NaiveDate) { suspendedRules(on: $on) { id } }";
    assert_eq!(app.data(on, json!({ "on": "5000-01-01" })).await["suspendedRules"], json!([{ "id": later }]));
    assert_eq!(app.data(on, json!({ "on": "+12000-01-01" })).await["suspendedRules"], json!([]));
    refused(
        &app,
        &facilitator(),
        "evaluatePilot",
        "EvaluatePilotInput",
        json!({ "pilotId": later, "findings": "Te vroeg" }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    let done = app
        .data(
            "query($id: ID!) { pilot(id: $id) { status outcome applicantFunction findings } \
             concluded: pilots(status: CONCLUDED) { totalCount } proposed: pilots(status: PROPOSED) { totalCount } }",
            json!({ "id": pilot }),
        )
        .await;
    assert_eq!(
        done["pilot"],
        json!({ "status": "CONCLUDED", "outcome": "RULE_CHANGED", "applicantFunction": "OPERATIONAL", "findings": "Geen misbruik" })
    );
    assert_eq!((&done["concluded"]["totalCount"], &done["proposed"]["totalCount"]), (&json!(1), &json!(0)));
    // Statuses are an enum: a typo is refused before anything runs, not answered with no pilots.
    let typo = app.gql("{ pilots(status: CONCLUDD) { totalCount } }", json!({})).await;
    assert_eq!(typo["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{typo:#}");
}

async fn a_charter_is_signed_once_per_signatory(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let signer = register(&app, "Sien", "Kennisland", "PUBLIC").await;
    let publish = json!({ "title": "Charter voor een innovatieve overheid", "text": "Wij, publieke veranderaars...", "initiators": ["Slimmernetwerk"] });
    refused(
        &app,
        &member(&signer),
        "publishCharter",
        "PublishCharterInput",
        publish.clone(),
        "FORBIDDEN",
        None,
    )
    .await;
    let charter = ok(&app, "publishCharter", "PublishCharterInput", publish).await;
    let as_self = json!({ "charterId": charter });
    // A token whose member the network does not have signs nothing (until the twenty-ninth
    // session it left a signature naming no one).
    let stranger = Uuid::new_v4().to_string();
    refused(&app, &member(&stranger), "signCharter", "SignCharterInput", as_self.clone(), "NOT_FOUND", None)
        .await;
    let body = send(&app, &member(&signer), "signCharter", "SignCharterInput", as_self.clone()).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    refused(
        &app,
        &member(&signer),
        "signCharter",
        "SignCharterInput",
        as_self,
        "RULE_VIOLATED",
        Some("SIGN_ONCE"),
    )
    .await;
    ok(
        &app,
        "signCharter",
        "SignCharterInput",
        json!({ "charterId": charter, "organisation": "Gemeente Utrecht" }),
    )
    .await;
    refused(
        &app,
        &facilitator(),
        "signCharter",
        "SignCharterInput",
        json!({ "charterId": charter, "organisation": " gemeente utrecht " }),
        "RULE_VIOLATED",
        Some("SIGN_ONCE"),
    )
    .await;
    // Nor with a space typed twice (until the thirty-first session a second signature).
    refused(
        &app,
        &facilitator(),
        "signCharter",
        "SignCharterInput",
        json!({ "charterId": charter, "organisation": "Gemeente \t Utrecht" }),
        "RULE_VIOLATED",
        Some("SIGN_ONCE"),
    )
    .await;
    refused(
        &app,
        &member(&signer),
        "signCharter",
        "SignCharterInput",
        json!({ "charterId": charter, "organisation": "TNO" }),
        "FORBIDDEN",
        None,
    )
    .await;
    let data = app
        .data("query($id: ID!) { charter(id: $id) { title initiators signatureCount signatures { kind organisation member { name } } } charters { totalCount } }", json!({ "id": charter }))
        .await;
    assert_eq!(data["charter"]["signatureCount"], 2);
    assert_eq!(data["charter"]["signatures"][0]["member"]["name"], "Sien");
    assert_eq!(data["charter"]["signatures"][1]["organisation"], "Gemeente Utrecht");
    assert_eq!(data["charters"]["totalCount"], 1);
}

async fn a_reuse_pledge_is_fulfilled_once(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let lead = register(&app, "Lot", "Gemeente Utrecht", "PUBLIC").await;
    let challenge = raise(&app, &lead).await;
    let formed = app
        .gql(
            "mutation($i: FormDoetankInput!) { formDoetank(input: $i) { doetank { id } } }",
            json!({ "i": { "name": "20/10", "challengeId": challenge, "leadId": lead } }),
        )
        .await;
    let doetank = formed["data"]["formDoetank"]["doetank"]["id"].as_str().expect("id").to_string();
    let public = app
        .gql(
            "mutation($id: ID!) { makeDoetankPublic(input: { doetankId: $id }) { doetank { isPublic } } }",
            json!({ "id": doetank }),
        )
        .await;
    assert_eq!(public["data"]["makeDoetankPublic"]["doetank"]["isPublic"], true, "{public:#}");
    refused(&app, &facilitator(), "reuseKnowledge", "ReuseKnowledgeInput",
        json!({ "organisation": "Gemeente Zeist", "doetankId": doetank, "lessonId": uuid::Uuid::new_v4(), "pledge": "delen" }), "NOT_FOUND", None).await;
    let reuse = ok(&app, "reuseKnowledge", "ReuseKnowledgeInput", json!({ "organisation": "Gemeente Zeist", "doetankId": doetank, "pledge": "Wij delen onze ervaringen" })).await;
    let open = app.data("{ reuses(fulfilled: false) { totalCount edges { node { organisation sourceDoetank { name } fulfilled } } } }", json!({})).await;
    assert_eq!(open["reuses"]["totalCount"], 1);
    assert_eq!(open["reuses"]["edges"][0]["node"]["sourceDoetank"]["name"], "20/10");
    ok(&app, "fulfilPledge", "FulfilPledgeInput", json!({ "reuseId": reuse, "note": "Gedeeld op het café" }))
        .await;
    refused(
        &app,
        &facilitator(),
        "fulfilPledge",
        "FulfilPledgeInput",
        json!({ "reuseId": reuse, "note": "nog eens" }),
        "RULE_VIOLATED",
        Some("LIFECYCLE"),
    )
    .await;
    let done = app.data("{ open: reuses(fulfilled: false) { totalCount } kept: reuses(fulfilled: true) { totalCount edges { node { fulfilmentNote } } } }", json!({})).await;
    assert_eq!(done["open"]["totalCount"], 0);
    assert_eq!(done["kept"]["edges"][0]["node"]["fulfilmentNote"], "Gedeeld op het café");
}

const LINEAGE: &str = "query($id: ID!) { lineage(id: $id) { root { kind label } nodes { kind id label distance } links { relation } } }";

async fn a_reuse_of_one_lesson_names_it(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    use doetank_api::demo::*;
    let (doetank, lesson) = (demo_id(DOETANK_HACK_DE_OR), demo_id(0x510));
    let input = json!({ "organisation": "Gemeente Zeist", "doetankId": doetank, "lessonId": lesson, "pledge": "Wij proberen andere vergadertijden" });
    ok(&app, "reuseKnowledge", "ReuseKnowledgeInput", input).await;
    let reuses = app
        .data(
            "{ reuses(fulfilled: false) { edges { node { organisation sourceLesson { id title } } } } }",
            json!({}),
        )
        .await;
    let taken = reuses["reuses"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["organisation"] == "Gemeente Zeist")
        .cloned();
    let source = taken.map(|e| e["node"]["sourceLesson"].clone()).unwrap_or_default();
    assert_eq!(source["id"], lesson.to_string(), "{reuses:#}");
    assert_eq!(source["title"], "Jongeren willen wel, maar niet op dinsdagavond");

    // From the doetank and from the lesson, the reuses of what they learned; 20/10's results
    // went to Gemeente Voorbeeldstad in the demo. The informal doetank's reuse is for staff
    // only: its doetank and lesson are null for anyone else.
    let from =
        "query($d: ID!, $l: ID!, $w: ID!) { doetank(id: $d) { reuses { organisation sourceLesson { id } } } \
                lesson: node(id: $l) { ... on Lesson { reuses { organisation } } } \
                winner: doetank(id: $w) { reuses { organisation sourceLesson { id } } } }";
    let vars = json!({ "d": doetank, "l": lesson, "w": demo_id(DOETANK_2010) });
    let staff = app.data(from, vars.clone()).await;
    assert_eq!(
        staff["doetank"]["reuses"],
        json!([{ "organisation": "Gemeente Zeist", "sourceLesson": { "id": lesson.to_string() } }])
    );
    assert_eq!(staff["lesson"]["reuses"], json!([{ "organisation": "Gemeente Zeist" }]));
    assert_eq!(
        staff["winner"]["reuses"],
        json!([{ "organisation": "Gemeente Voorbeeldstad", "sourceLesson": null }])
    );
    let anyone = app.gql_as(None, from, vars).await;
    assert!(anyone["data"]["doetank"].is_null() && anyone["data"]["lesson"].is_null(), "{anyone:#}");
    assert_eq!(anyone["data"]["winner"], staff["winner"]);
}

async fn lineage_follows_the_rocket_both_ways_on_the_demo(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    use doetank_api::demo::*;

    // Downstream: from the winning idea to its doetank, what it learned, its hand-over, and the reuse.
    let from_idea = app.gql_as(None, LINEAGE, json!({ "id": demo_id(IDEA_2010) })).await;
    let nodes = from_idea["data"]["lineage"]["nodes"].as_array().expect("nodes").clone();
    let has = |nodes: &[Value], kind: &str, label: &str| {
        nodes.iter().any(|n| n["kind"] == kind && n["label"].as_str().is_some_and(|l| l.contains(label)))
    };
    let distance = |nodes: &[Value], kind: &str, label: &str| {
        nodes
            .iter()
            .find(|n| n["kind"] == kind && n["label"].as_str().is_some_and(|l| l.contains(label)))
            .map(|n| n["distance"].as_i64().unwrap_or(0))
    };
    assert_eq!(from_idea["data"]["lineage"]["root"]["label"], "20/10");
    assert!(has(&nodes, "doetank", "20/10"), "{nodes:#?}");
    assert!(has(&nodes, "lesson", "Werkgevers winnen"));
    assert!(has(&nodes, "organisation", "Ministerie van BZK"));
    assert!(has(&nodes, "reuse", "Gemeente Voorbeeldstad"));
    assert!(has(&nodes, "ideation_event", "Stampij!fabriek"), "and upstream, the day it came from");
    assert!(distance(&nodes, "reuse", "Voorbeeldstad") > Some(0));
    assert!(distance(&nodes, "ideation_event", "Stampij") < Some(0));

    // Upstream: from the reuse back to the idea and the ideation day.
    let from_reuse = app.gql_as(None, LINEAGE, json!({ "id": demo_id(0x800) })).await;
    let nodes = from_reuse["data"]["lineage"]["nodes"].as_array().expect("nodes").clone();
    assert!(distance(&nodes, "doetank", "20/10") < Some(0));
    assert!(distance(&nodes, "idea", "20/10") < Some(0), "{nodes:#?}");
    assert!(distance(&nodes, "ideation_event", "Stampij") < Some(0));

    // From an organisation, named as the filters take it: case and spacing aside (until the
    // thirty-first session only the exact spelling had a lineage).
    for name in ["Gemeente Voorbeeldstad", " gemeente  VOORBEELDSTAD"] {
        let from_organisation = app.gql_as(None, LINEAGE, json!({ "id": name })).await;
        let root = &from_organisation["data"]["lineage"]["root"];
        assert_eq!(*root, json!({ "kind": "organisation", "label": "Gemeente Voorbeeldstad" }), "{name:?}");
    }
    // Spelled otherwise by another event, the organisation is still one node, with both reuses
    // (until the thirty-second session "gemeente voorbeeldstad" was a node of its own).
    let again = json!({ "organisation": "gemeente voorbeeldstad", "doetankId": demo_id(DOETANK_2010), "pledge": "Nog eens" });
    ok(&app, "reuseKnowledge", "ReuseKnowledgeInput", again).await;
    let from_organisation = app.gql_as(None, LINEAGE, json!({ "id": "Gemeente Voorbeeldstad" })).await;
    let nodes = from_organisation["data"]["lineage"]["nodes"].as_array().expect("nodes").clone();
    let organisations: Vec<&Value> = nodes.iter().filter(|n| n["kind"] == "organisation").collect();
    assert_eq!(organisations.len(), 1, "{nodes:#?}");
    assert_eq!(organisations[0]["id"], "gemeente voorbeeldstad", "keyed as the filters match names");
    assert_eq!(nodes.iter().filter(|n| n["kind"] == "reuse").count(), 2, "{nodes:#?}");

    // The informal doetank of "Hack de OR!" shows in its idea's lineage for facilitators only.
    let anonymous = app.gql_as(None, LINEAGE, json!({ "id": demo_id(IDEA_HACK_DE_OR) })).await.to_string();
    let staff = app.gql(LINEAGE, json!({ "id": demo_id(IDEA_HACK_DE_OR) })).await.to_string();
    let informal = demo_id(DOETANK_HACK_DE_OR).to_string();
    assert!(!anonymous.contains(&informal) && anonymous.contains("Gemeente Utrecht"));
    assert!(staff.contains(&informal));

    // An idea names the challenges raised from it.
    let idea = app
        .data("query($id: ID!) { idea(id: $id) { challenges { id } } }", json!({ "id": demo_id(IDEA_2010) }))
        .await;
    assert_eq!(idea["idea"]["challenges"], json!([{ "id": demo_id(0x400).to_string() }]));

    // A challenge names its origin as things, not as ids in JSON.
    let challenge = app
        .data(
            "query($id: ID!) { challenge(id: $id) { origin { kind ideationEvent { name } idea { title juryRank } cafe { id } } } }",
            json!({ "id": demo_id(0x400) }),
        )
        .await;
    assert_eq!(
        challenge["challenge"]["origin"],
        json!({ "kind": "IDEA", "ideationEvent": { "name": "Stampij!fabriek" }, "idea": { "title": "20/10", "juryRank": 1 }, "cafe": null })
    );
}

async fn the_timeline_tells_the_demo_history_in_order(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let query = "query($kinds: [String!], $from: DateTime, $to: DateTime, $after: String) { \
                 timeline(kinds: $kinds, from: $from, to: $to, first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor } \
                 edges { node { position kind occurredAt summary } } } }";
    let mut entries = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.gql_as(None, query, json!({ "after": after })).await;
        let timeline = &data["data"]["timeline"];
        entries.extend(timeline["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()));
        if timeline["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = timeline["pageInfo"]["endCursor"].clone();
    }
    let positions: Vec<i64> = entries.iter().map(|e| e["position"].as_i64().unwrap_or(0)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in log order");
    // Pages of ten, their cursors positions (keyset pages since the thirty-first session, so a
    // deep page costs what the first does), give the same lines; a position is a cursor too.
    let small = "query($after: String) { timeline(first: 10, after: $after) { \
                 pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { position } } } }";
    let (mut paged, mut after) = (Vec::new(), Value::Null);
    loop {
        let timeline = app.gql_as(None, small, json!({ "after": after })).await["data"]["timeline"].clone();
        assert_eq!(timeline["pageInfo"]["hasPreviousPage"], !after.is_null());
        paged.extend(
            timeline["edges"].as_array().expect("edges").iter().map(|e| e["node"]["position"].clone()),
        );
        if timeline["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = timeline["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(paged, positions.iter().map(|p| json!(p)).collect::<Vec<_>>());
    // Backwards, the newest ten first and then the ten before them, each page in log order,
    // give the same lines; a wall shows its latest news so.
    let newest = "query($before: String) { timeline(last: 10, before: $before) { totalCount \
                  pageInfo { hasNextPage hasPreviousPage startCursor } edges { node { position } } } }";
    let (mut pages, mut before) = (Vec::new(), Value::Null);
    loop {
        let timeline =
            app.gql_as(None, newest, json!({ "before": before })).await["data"]["timeline"].clone();
        assert_eq!(timeline["pageInfo"]["hasNextPage"], !before.is_null(), "{timeline:#}");
        assert_eq!(timeline["totalCount"], positions.len(), "{timeline:#}");
        let page: Vec<Value> = timeline["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["position"].clone())
            .collect();
        assert!(page.len() == 10 || timeline["pageInfo"]["hasPreviousPage"] == false, "{timeline:#}");
        pages.push(page);
        if timeline["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = timeline["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(pages.concat().len(), positions.len());
    assert_eq!(pages.into_iter().rev().flatten().collect::<Vec<_>>(), paged);
    let before_position = app.gql_as(None, newest, json!({ "before": positions[5].to_string() })).await;
    let edges = before_position["data"]["timeline"]["edges"].as_array().expect("edges").clone();
    assert_eq!(edges.iter().map(|e| e["node"]["position"].clone()).collect::<Vec<_>>(), paged[..5]);
    let newest_cafe = app
        .data("{ timeline(kinds: [\"cafe\"], last: 1) { edges { node { kind position } } } }", json!({}))
        .await;
    let cafes: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "cafe").collect();
    assert_eq!(newest_cafe["timeline"]["edges"][0]["node"]["position"], cafes[cafes.len() - 1]["position"]);
    let both = app.gql_as(None, "{ timeline(first: 5, last: 5) { totalCount } }", json!({})).await;
    assert_eq!(both["errors"][0]["extensions"]["code"], "BAD_INPUT", "{both:#}");
    assert_eq!(both["errors"][0]["extensions"]["field"], "last", "{both:#}");
    let from_position = app.gql_as(None, small, json!({ "after": positions[4].to_string() })).await;
    assert_eq!(
        from_position["data"]["timeline"]["edges"][0]["node"]["position"], positions[5],
        "{from_position}"
    );
    let index = |text: &str| {
        entries
            .iter()
            .position(|e| e["summary"].as_str().is_some_and(|s| s.contains(text)))
            .unwrap_or_else(|| panic!("no entry with {text:?}"))
    };
    let story = [
        "Slimmernetwerk Café was held with 60 attendees",
        "The jury of Stampij!fabriek ranked 3 ideas, 20/10 first",
        "Stampij!fabriek concluded with 150 participants",
        "Gemeente Utrecht took up idea Hack de OR!",
        "Tweede Slimmernetwerk Café van 2013 was held",
        "Charter voor een innovatieve overheid published",
        "Doetank 20/10 formed",
        "suspended from 2013-09-01 until 2014-03-01",
        "Doetank 20/10 completed hand over",
        "Gemeente Voorbeeldstad reuses the results of doetank 20/10",
    ];
    let at: Vec<usize> = story.iter().map(|s| index(s)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "the demo history is told in order: {at:?}");
    assert!(
        !entries.iter().any(|e| e["summary"].as_str().is_some_and(|s| s.contains("Voorbeeld (fictief)"))),
        "no people's names"
    );

    // Filtered by kind and by the time things happened in the world.
    let cafes = app.gql_as(None, query, json!({ "kinds": ["cafe"] })).await;
    assert!(cafes["data"]["timeline"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .all(|e| e["node"]["kind"] == "cafe"));
    // A kind the network does not have is a typo to be told of, not an empty timeline.
    let typo = app.gql_as(None, query, json!({ "kinds": ["cafes"] })).await;
    assert_eq!(typo["errors"][0]["extensions"]["code"], "BAD_INPUT", "{typo:#}");
    assert_eq!(typo["errors"][0]["extensions"]["field"], "kinds", "{typo:#}");
    // So is a window that ends before it starts.
    let swapped = app
        .gql_as(None, query, json!({ "from": "2013-04-01T00:00:00Z", "to": "2013-03-01T00:00:00Z" }))
        .await;
    assert_eq!(swapped["errors"][0]["extensions"]["field"], "to", "{swapped:#}");
    let spring = app
        .gql_as(None, query, json!({ "from": "2013-03-01T00:00:00Z", "to": "2013-04-01T00:00:00Z" }))
        .await;
    let edges = spring["data"]["timeline"]["edges"].as_array().expect("edges").clone();
    assert!(
        !edges.is_empty()
            && edges
                .iter()
                .all(|e| e["node"]["occurredAt"].as_str().is_some_and(|t| t.starts_with("2013-03")))
    );
    assert!(edges
        .iter()
        .any(|e| e["node"]["summary"].as_str().is_some_and(|s| s.contains("Stampij!fabriek"))));

    // From any time, the lines at or after it, whose times do not rise with positions (cafés
    // and ideation days are told at their dates, ahead of the lines after them): a read from a
    // time starts at the first line later than every line before it there (since the
    // forty-second session; until then it read from the beginning), and finds every line.
    let occurred = |e: &Value| e["occurredAt"].as_str().unwrap_or_default().to_string();
    let times: std::collections::BTreeSet<String> = entries.iter().map(occurred).collect();
    assert!(
        entries.windows(2).any(|w| occurred(&w[1]) < occurred(&w[0])),
        "the demo's times go back somewhere"
    );
    // Up to any time, likewise, the lines before it: a read to a time ends at the first line no
    // later than every line after it there (since the forty-fourth session; until then it read
    // to the end), forwards and backwards.
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).expect("a time").to_utc();
    for time in &times {
        for at in [parse(time), parse(time) + chrono::Duration::microseconds(1)] {
            let expected = |keep: &dyn Fn(chrono::DateTime<chrono::Utc>) -> bool| -> Vec<Value> {
                entries.iter().filter(|e| keep(parse(&occurred(e)))).map(|e| e["position"].clone()).collect()
            };
            let since = expected(&|t| t >= at);
            let until = expected(&|t| t < at);
            let (found, total) = timeline_pages(&app, json!({ "from": at.to_rfc3339() }), true).await;
            assert_eq!((found, total), (since.clone(), since.len()), "from {at}");
            let (found, total) = timeline_pages(&app, json!({ "to": at.to_rfc3339() }), true).await;
            assert_eq!((found, total), (until.clone(), until.len()), "to {at}");
            let (found, total) = timeline_pages(&app, json!({ "to": at.to_rfc3339() }), false).await;
            assert_eq!((found, total), (until.clone(), until.len()), "to {at}, backwards");
        }
    }
}

/// Every line of the timeline within the window `bounds` (`from`, `to`), read in pages of
/// seven forwards or backwards, in log order, and the count of the first page.
async fn timeline_pages(app: &TestApp, bounds: Value, forwards: bool) -> (Vec<Value>, usize) {
    let (query, cursor, more, next) = if forwards {
        ("query($from: DateTime, $to: DateTime, $cursor: String) { timeline(from: $from, to: $to, first: 7, after: $cursor) { \
          totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { position } } } }",
         "endCursor", "hasNextPage", true)
    } else {
        ("query($from: DateTime, $to: DateTime, $cursor: String) { timeline(from: $from, to: $to, last: 7, before: $cursor) { \
          totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { position } } } }",
         "startCursor", "hasPreviousPage", false)
    };
    let (mut pages, mut at, mut total) = (Vec::new(), Value::Null, None);
    loop {
        let mut vars = bounds.clone();
        vars["cursor"] = at;
        let timeline = app.gql_as(None, query, vars).await["data"]["timeline"].clone();
        let page: Vec<Value> = timeline["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["position"].clone())
            .collect();
        pages.push(page);
        total.get_or_insert_with(|| timeline["totalCount"].as_u64().expect("a count") as usize);
        if timeline["pageInfo"][more] != true {
            break;
        }
        at = timeline["pageInfo"][cursor].clone();
    }
    if !next {
        pages.reverse();
    }
    (pages.concat(), total.unwrap_or_default())
}

/// The demo's steps are recorded at their dates in the network's history, in the order they
/// happened, so time travel and the log's activity per month show 2013 and 2014; once it is
/// loaded, appends are recorded at the wall clock again.
async fn the_demo_history_is_recorded_at_its_own_dates(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    assert!(doetank_api::demo::load(&app.app).await.expect("demo"));
    let d = doetank_api::demo::demo_id(doetank_api::demo::DOETANK_2010).to_string();

    let first = app.data("{ events(first: 1) { edges { node { recordedAt } } } }", json!({})).await;
    assert_eq!(first["events"]["edges"][0]["node"]["recordedAt"], "2013-01-07T10:00:00+00:00", "{first:#}");
    let last = app.data("{ events(last: 1) { edges { node { type recordedAt } } } }", json!({})).await;
    assert_eq!(last["events"]["edges"][0]["node"]["type"], "KnowledgeReused", "{last:#}");
    assert_eq!(last["events"]["edges"][0]["node"]["recordedAt"], "2014-05-12T10:00:00+00:00", "{last:#}");

    // The log's times go on as its positions do.
    let times: Vec<_> = whole_log(&app, "recordedAt")
        .await
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(e["recordedAt"].as_str().expect("a time")).expect("RFC 3339")
        })
        .collect();
    assert!(times.len() > 50, "the public log: {} events", times.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "recorded in the order it happened");

    // Time travel by date: 20/10 as it stood in summer 2013, after discovering and researching.
    let query = "query($id: ID!, $asOf: DateTime) { doetank(id: $id, asOf: $asOf) { status currentPhase phases { phase completedAt } isPublic } }";
    let summer = app.data(query, json!({ "id": d, "asOf": "2013-08-01T00:00:00Z" })).await;
    assert_eq!(summer["doetank"]["currentPhase"], "DEVELOP", "{summer:#}");
    let completed: Vec<&Value> = summer["doetank"]["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter(|p| !p["completedAt"].is_null())
        .map(|p| &p["phase"])
        .collect();
    assert_eq!(completed, [&json!("DISCOVER"), &json!("RESEARCH")], "{summer:#}");
    assert_eq!(summer["doetank"]["isPublic"], false, "made public in September: {summer:#}");
    let before = app.data(query, json!({ "id": d, "asOf": "2013-04-30T00:00:00Z" })).await;
    assert_eq!(before["doetank"], Value::Null, "not yet formed: {before:#}");
    let now = app.data(query, json!({ "id": d, "asOf": null })).await;
    assert_eq!(now["doetank"]["status"], "COMPLETED", "{now:#}");

    // The network's months: the Stampij!fabriek's March busiest of the first spring.
    let months = app.data("{ eventActivity(interval: MONTH) { period count } }", json!({})).await;
    let mut per_month = std::collections::BTreeMap::<String, i64>::new();
    for row in months["eventActivity"].as_array().expect("a list") {
        let period = row["period"].as_str().expect("a period");
        *per_month.entry(period[..7].to_string()).or_default() += row["count"].as_i64().expect("a count");
    }
    let first_months: Vec<&str> = per_month.keys().take(4).map(String::as_str).collect();
    assert_eq!(first_months, ["2013-01", "2013-02", "2013-03", "2013-04"], "{per_month:?}");
    assert_eq!(per_month.keys().last().map(String::as_str), Some("2014-05"), "{per_month:?}");
    let busiest = per_month.iter().take(4).max_by_key(|(_, n)| **n).map(|(m, _)| m.as_str());
    assert_eq!(busiest, Some("2013-03"), "{per_month:?}");

    // After the demo, the wall clock: a new member is recorded now.
    let before_command = chrono::Utc::now() - chrono::Duration::seconds(5);
    register(&app, "Na de demo", "Kennisland", "PUBLIC").await;
    let newest = app.data("{ events(last: 1) { edges { node { recordedAt } } } }", json!({})).await;
    let newest = newest["events"]["edges"][0]["node"]["recordedAt"].as_str().expect("a time").to_string();
    let newest = chrono::DateTime::parse_from_rfc3339(&newest).expect("RFC 3339");
    assert!(newest > before_command, "recorded at the wall clock: {newest}");
}

/// `eventTypes` is the log's data dictionary: every payload of the demo history validates
/// against the JSON Schema it gives for the event's type (a real validator, draft 2020-12), each
/// type is described, and a stream type it does not know is BAD_INPUT, not an empty list.
async fn every_event_fits_the_schema_event_types_gives_for_it(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    assert!(doetank_api::demo::load(&app.app).await.expect("demo"));
    let catalogue = app
        .gql_as(
            None,
            "{ eventTypes { type streamType schemaVersion readVersions description payloadSchema } }",
            json!({}),
        )
        .await;
    assert!(catalogue.get("errors").is_none(), "needs no token: {catalogue:#}");
    let types = catalogue["data"]["eventTypes"].as_array().expect("a list").clone();
    assert!(types.len() >= 40, "every event type of the eight streams: {}", types.len());
    let mut validators = std::collections::HashMap::new();
    for t in &types {
        let name = t["type"].as_str().expect("a type").to_string();
        assert!(t["description"].as_str().is_some_and(|d| d.len() > 10), "{name} is described: {t:#}");
        let versions: Vec<i64> = (1..=t["schemaVersion"].as_i64().expect("a version")).collect();
        assert_eq!(t["readVersions"], json!(versions), "{name}");
        let validator = jsonschema::validator_for(&t["payloadSchema"])
            .unwrap_or_else(|e| panic!("{name}'s schema is no JSON Schema: {e}"));
        validators.insert(name, validator);
    }
    let lesson = types.iter().find(|t| t["type"] == "LessonRecorded").expect("LessonRecorded");
    assert_eq!((lesson["streamType"].as_str(), lesson["schemaVersion"].as_i64()), (Some("doetank"), Some(2)));
    assert_eq!(lesson["readVersions"], json!([1, 2]));

    let (mut checked, mut seen_types) = (0, std::collections::BTreeSet::new());
    for event in whole_log(&app, "type streamType payload").await {
        let name = event["type"].as_str().expect("a type");
        let validator = validators.get(name).unwrap_or_else(|| panic!("{name} is not in eventTypes"));
        let errors: Vec<String> = validator.iter_errors(&event["payload"]).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name} {}: {errors:?}", event["payload"]);
        let described = types.iter().find(|t| t["type"] == name).expect("described");
        assert_eq!(described["streamType"], event["streamType"], "{name}");
        checked += 1;
        seen_types.insert(name.to_string());
    }
    assert!(checked > 50 && seen_types.len() >= 30, "{checked} events of {} types", seen_types.len());

    // A schema refuses what its type would not write.
    let formed = &validators["DoetankFormed"];
    assert!(!formed.is_valid(&json!({ "name": "zonder team" })), "required fields");
    let held = &validators["CafeHeld"];
    assert!(!held.is_valid(&json!({ "attendance": "veel" })), "types");

    let doetank = app.data("{ eventTypes(streamType: \"doetank\") { type opensStream } }", json!({})).await;
    let names: Vec<&str> =
        doetank["eventTypes"].as_array().expect("a list").iter().filter_map(|t| t["type"].as_str()).collect();
    assert_eq!(names.first(), Some(&"DoetankFormed"));
    let opening: Vec<&Value> = doetank["eventTypes"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|t| t["opensStream"] == true)
        .collect();
    assert_eq!(opening, [&json!({ "type": "DoetankFormed", "opensStream": true })], "one opens the stream");
    assert!(names.contains(&"LessonRecorded") && !names.contains(&"CafeHeld"), "{names:?}");
    let error = app.error("{ eventTypes(streamType: \"doetanks\") { type } }", json!({})).await;
    assert_eq!(error["extensions"]["code"], "BAD_INPUT", "{error:#}");
    assert_eq!(error["extensions"]["field"], "streamType", "{error:#}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("doetank, cafe")), "{error:#}");
    // The capital a reader of the schema's type names writes, as the log's filters take it.
    let error = app.error("{ eventTypes(streamType: \"Pilot\") { type } }", json!({})).await;
    assert!(error["message"].as_str().is_some_and(|m| m.ends_with("did you mean \"pilot\"?")), "{error:#}");
}

/// Relay's `node(id)` and `nodes(ids)` on the demo: every kind of thing by its id alone, each
/// with its own query's rules (the informal doetank, its lesson and a reuse of its results are
/// null for outsiders, as an id that names nothing is), ids in their order, and BAD_INPUT for
/// what is no UUID or too many ids.
async fn node_fetches_anything_by_its_id_with_its_own_query_s_rules(db: &TestDb) {
    use doetank_api::demo::{demo_id, DOETANK_2010, DOETANK_HACK_DE_OR, IDEA_2010, STAMPIJFABRIEK};
    let app = TestApp::spawn(db).await;
    assert!(doetank_api::demo::load(&app.app).await.expect("demo"));
    let id = |n: u128| demo_id(n).to_string();
    let query = "query($id: ID!) { node(id: $id) { __typename id \
                 ... on Doetank { name } ... on Member { organisation } ... on Lesson { title } \
                 ... on Cafe { title } ... on IdeationEvent { name } ... on Idea { title } \
                 ... on Pilot { hinderingRule } ... on Charter { title } ... on Reuse { organisation } \
                 ... on Challenge { title } } }";
    let node_as = |token: Option<String>, id: String| {
        let app = &app;
        async move {
            let body = app.gql_as(token.as_deref(), query, json!({ "id": id })).await;
            assert!(body.get("errors").is_none(), "{body:#}");
            body["data"]["node"].clone()
        }
    };
    let expected = [
        (DOETANK_2010, "Doetank", "name", "20/10"),
        (3, "Member", "organisation", "Ministerie van BZK"),
        (0x501, "Lesson", "title", "Het probleem achter het probleem is kennisverlies"),
        (0x300, "Cafe", "title", "Slimmernetwerk Café"),
        (STAMPIJFABRIEK, "IdeationEvent", "name", "Stampij!fabriek"),
        (IDEA_2010, "Idea", "title", "20/10"),
        (0x600, "Charter", "title", "Charter voor een innovatieve overheid"),
        (0x800, "Reuse", "organisation", "Gemeente Voorbeeldstad"),
        (0x400, "Challenge", "title", "Vergrijzing, kennisbehoud en instroom van jonge medewerkers"),
    ];
    for (n, typename, field, value) in expected {
        let node = node_as(None, id(n)).await;
        assert_eq!(node["__typename"], typename, "{node:#}");
        assert_eq!(node["id"], id(n), "{node:#}");
        assert_eq!(node[field], value, "{node:#}");
    }
    let pilot = node_as(None, id(0x700)).await;
    assert_eq!(pilot["__typename"], "Pilot", "{pilot:#}");
    assert!(pilot["hinderingRule"].as_str().is_some_and(|r| r.starts_with("Declaraties")), "{pilot:#}");

    // Rule 5: the informal doetank and its lesson are seen by its team, not by outsiders.
    let informal = [(DOETANK_HACK_DE_OR, "Doetank"), (0x510, "Lesson")];
    let lead = member(&id(5));
    for (n, typename) in informal {
        assert_eq!(node_as(None, id(n)).await, Value::Null, "{typename} to anyone");
        assert_eq!(node_as(Some(member(&id(3))), id(n)).await, Value::Null, "{typename} to an outsider");
        assert_eq!(
            node_as(Some(lead.clone()), id(n)).await["__typename"],
            typename,
            "{typename} to its lead"
        );
    }
    // A reuse of its results would tell of it: null for outsiders, through `reuse` too.
    let reuse = ok(
        &app,
        "reuseKnowledge",
        "ReuseKnowledgeInput",
        json!({ "organisation": "Gemeente Zeist", "doetankId": id(DOETANK_HACK_DE_OR), "pledge": "Wij delen onze ervaringen" }),
    )
    .await;
    assert_eq!(node_as(None, reuse.clone()).await, Value::Null);
    let direct =
        app.gql_as(None, "query($id: ID!) { reuse(id: $id) { pledge } }", json!({ "id": reuse })).await;
    assert_eq!(direct["data"]["reuse"], Value::Null, "{direct:#}");
    assert_eq!(node_as(Some(facilitator()), reuse.clone()).await["__typename"], "Reuse");

    // An id that names nothing is null; `nodes` keeps the order and the nulls.
    assert_eq!(node_as(None, uuid::Uuid::new_v4().to_string()).await, Value::Null);
    let many = app
        .gql_as(
            None,
            "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
            json!({ "ids": [id(0x600), id(DOETANK_HACK_DE_OR), id(3)] }),
        )
        .await;
    assert_eq!(
        many["data"]["nodes"],
        json!([{ "__typename": "Charter", "id": id(0x600) }, null, { "__typename": "Member", "id": id(3) }]),
        "{many:#}"
    );

    // From the log to the thing: an event's subject is its stream's read model, as `node`.
    let subjects = app
        .data(
            "{ events(filter: { types: [\"LessonRecorded\", \"KnowledgeReused\"] }, first: 20) { edges { node { type \
             subject { __typename id ... on Doetank { name } ... on Reuse { organisation } } } } } }",
            json!({}),
        )
        .await;
    let edges = subjects["events"]["edges"].as_array().expect("edges");
    assert_eq!(edges[0]["node"]["subject"]["name"], "20/10", "{subjects:#}");
    let reused = edges.iter().find(|e| e["node"]["type"] == "KnowledgeReused").expect("a reuse");
    assert_eq!(
        reused["node"]["subject"],
        json!({ "__typename": "Reuse", "id": id(0x800), "organisation": "Gemeente Voorbeeldstad" })
    );

    let error = app.error("{ node(id: \"20/10\") { id } }", json!({})).await;
    assert_eq!(
        (error["extensions"]["code"].as_str(), error["extensions"]["field"].as_str()),
        (Some("BAD_INPUT"), Some("id")),
        "{error:#}"
    );
    let ids: Vec<String> = (0..101).map(|n| id(n as u128)).collect();
    let too_many = app.error("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": ids })).await;
    assert_eq!(
        (too_many["extensions"]["code"].as_str(), too_many["extensions"]["field"].as_str()),
        (Some("BAD_INPUT"), Some("ids")),
        "{too_many:#}"
    );
}

/// Whom to ask: a doetank looking for a coach or an expert finds members by what they know.
async fn members_are_found_by_their_expertise(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let query = "query($expertise: String, $organisation: String) { \
                 members(expertise: $expertise, organisation: $organisation) { totalCount edges { node { name expertise } } } }";
    let names = |answer: &Value| -> Vec<String> {
        assert!(answer.get("errors").is_none(), "{answer:#}");
        let members = &answer["data"]["members"];
        let names: Vec<String> = members["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(members["totalCount"].as_u64(), Some(names.len() as u64), "{answer:#}");
        names
    };
    let find = |expertise: &str, organisation: Option<&str>| {
        app.gql_as(None, query, json!({ "expertise": expertise, "organisation": organisation }))
    };
    // A whole entry, without regard to case or surrounding spaces.
    assert_eq!(names(&find("Coaching", None).await), ["Femke Voorbeeld (fictief)"]);
    assert_eq!(names(&find(" hrm ", None).await), ["Sanne Voorbeeld (fictief)"]);
    assert_eq!(names(&find("innovatie", None).await), ["Henk Volberda", "Lucas Lombaers"]);
    assert_eq!(names(&find("innovatie", Some("Ministerie van BZK")).await), ["Lucas Lombaers"]);
    // Not a part of an entry: `innovatie` is not `sociale innovatie`.
    assert!(names(&find("coach", None).await).is_empty());
    // An erased member lists nothing any more.
    let femke = doetank_api::demo::demo_id(1).to_string();
    let erase = "mutation($id: ID!) { eraseMember(input: { memberId: $id }) { result { position } } }";
    let erased = app.gql(erase, json!({ "id": femke })).await;
    assert!(erased.get("errors").is_none(), "{erased:#}");
    assert!(names(&find("coaching", None).await).is_empty());
    // A blank expertise is a mistake, not "everyone".
    let blank = find("  ", None).await;
    assert_eq!(blank["errors"][0]["extensions"]["code"], "BAD_INPUT", "{blank:#}");
    assert_eq!(blank["errors"][0]["extensions"]["field"], "expertise", "{blank:#}");

    // A member's expertise is a list of keywords: a repeat in another case is kept once, as
    // written first; more than fifty, or one longer than 200 characters, is refused (until the
    // thirtieth session 5,000 entries, or one of 50,000 characters, were kept).
    let register =
        "mutation($e: [String!]!) { registerMember(input: { name: \"Kim\", organisation: \"TNO\", \
                    sector: PUBLIC, expertise: $e }) { member { expertise } } }";
    let kept = app.gql(register, json!({ "e": ["Data", " data ", "DATA", "", "Ethiek"] })).await;
    assert_eq!(kept["data"]["registerMember"]["member"]["expertise"], json!(["Data", "Ethiek"]), "{kept:#}");
    let many: Vec<String> = (0..51).map(|i| format!("onderwerp {i}")).collect();
    for expertise in [json!(many), json!(["x".repeat(201)])] {
        let head = app.head().await;
        let refused = app.gql(register, json!({ "e": expertise })).await;
        let ext = &refused["errors"][0]["extensions"];
        assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_INPUT"), &json!("expertise")), "{refused:#}");
        assert_eq!(app.head().await, head, "a refused registration writes nothing");
    }
}

/// A researcher asks how the network stood at a date: the whole log up to then, replayed
/// through the same projections, with the viewer's eyes.
async fn the_figures_are_told_as_they_stood_at_a_date(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let query = "query($at: DateTime) { statistics(asOf: $at) { doetanksPerPhase { key count } \
                 lessonsPerKind { key count } membersPerOrganisation { key count } \
                 medianDaysPerPhase { phase medianDays completed } } }";
    let staff_token = facilitator();
    let at = |staff: bool, at: Option<&'static str>| {
        app.gql_as(staff.then_some(staff_token.as_str()), query, json!({ "at": at }))
    };
    let figures = |answer: Value| -> Value {
        assert!(answer.get("errors").is_none(), "{answer:#}");
        answer["data"]["statistics"].clone()
    };
    // Before the network began: nothing.
    let before = figures(at(false, Some("2012-12-31T00:00:00Z")).await);
    assert_eq!(before["doetanksPerPhase"], json!([]));
    assert_eq!(before["membersPerOrganisation"], json!([]));
    // The summer of 2013: 20/10 developing and Hack de OR! researching, both informal then, so
    // only a facilitator counts them; the members were there for everyone.
    let staff = figures(at(true, Some("2013-08-01T00:00:00Z")).await);
    assert_eq!(
        staff["doetanksPerPhase"],
        json!([{ "key": "DEVELOP", "count": 1 }, { "key": "RESEARCH", "count": 1 }])
    );
    let anyone = figures(at(false, Some("2013-08-01T00:00:00Z")).await);
    assert_eq!(anyone["doetanksPerPhase"], json!([]));
    assert!(anyone["membersPerOrganisation"].as_array().is_some_and(|m| !m.is_empty()), "{anyone:#}");
    // After the last event, the figures are today's.
    let later = figures(at(false, Some("2030-01-01T00:00:00Z")).await);
    assert_eq!(later, figures(at(false, None).await));
    assert_ne!(
        later["lessonsPerKind"], anyone["lessonsPerKind"],
        "lessons were recorded since the summer of 2013"
    );

    // The replay is bounded: a longer log is refused, naming the argument.
    let refused = doetank_api::history::network_of_at_most(&app.app.store, chrono::Utc::now(), 10).await;
    let Err(doetank_api::error::AppError::BadInput { field, message }) = refused else {
        panic!("more than 10 events replayed")
    };
    assert_eq!(field, "asOf");
    assert!(message.contains("export --to"), "{message}");
}

/// Whole-network replays take turns (`history::NetworkReplays`): one request asking the figures
/// at six dates, whose fields resolve at once, never runs more replays at once than the node's
/// limit (half its cores), and every date is answered as it is when asked alone.
async fn the_network_s_past_is_replayed_a_few_at_a_time(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let dates = ["2013-02-01", "2013-03-01", "2013-03-20", "2013-05-01", "2013-08-01", "2013-12-01"];
    let figures = "{ membersPerOrganisation { key count } lessonsPerKind { key count } }";
    let all_at_once: Vec<String> = dates
        .iter()
        .enumerate()
        .map(|(i, date)| format!("d{i}: statistics(asOf: \"{date}T00:00:00Z\") {figures}"))
        .collect();
    let replays = |text: String| -> (f64, f64, f64) {
        let sample = |name: &str| -> f64 {
            let line = text.lines().find(|line| line.starts_with(&format!("{name} ")));
            let value = line.and_then(|line| line.rsplit_once(' ')).map(|(_, value)| value.parse());
            value.unwrap_or_else(|| panic!("{name} missing:\n{text}")).expect("a number")
        };
        (
            sample("doetank_network_replays_total"),
            sample("doetank_network_replays_most_at_once"),
            sample("doetank_network_replays_limit"),
        )
    };
    let scrape = || async {
        let response = app.http.get(app.url("/metrics")).send().await.expect("GET /metrics");
        response.text().await.expect("text")
    };
    let (before, _, _) = replays(scrape().await);
    let together = app.data(&format!("{{ {} }}", all_at_once.join(" ")), json!({})).await;
    let (after, most_at_once, limit) = replays(scrape().await);
    assert!(after - before >= dates.len() as f64, "{before} -> {after} replays");
    assert!(limit >= 1.0);
    assert!(most_at_once <= limit, "{most_at_once} replays ran at once, past the limit of {limit}");
    for (i, date) in dates.iter().enumerate() {
        let alone =
            app.data(&format!("{{ statistics(asOf: \"{date}T00:00:00Z\") {figures} }}"), json!({})).await;
        assert_eq!(together[format!("d{i}")], alone["statistics"], "{date}");
    }
    assert_ne!(together["d0"], together["d5"], "the network grew in 2013");
}

/// Fields whose work grows with the log count for more of a request's complexity, as a
/// request's fields resolve at once. A past state is replayed into a database of its own: a
/// hundred doetanks as of a version are too complex, a hundred now are not; twenty figures as
/// of dates are too complex, where six were answered above. `eventActivity` reads the whole
/// log, the present figures whole tables, a count every row it counts, and a search every
/// match: 25, 100, 200 and 200 of them are too complex.
async fn costly_fields_count_for_more_of_a_request_s_complexity(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let listed = app.data("{ doetanks(first: 1) { edges { node { id } } } }", json!({})).await;
    let id = listed["doetanks"]["edges"][0]["node"]["id"].as_str().expect("a public doetank").to_string();
    let aliases = |n: usize, field: &dyn Fn(usize) -> String| -> String {
        format!("{{ {} }}", (0..n).map(|i| format!("a{i}: {}", field(i))).collect::<Vec<_>>().join(" "))
    };
    let too_complex = |answer: Value| {
        assert_eq!(answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{answer:#}");
        assert!(
            answer["errors"][0]["message"].as_str().is_some_and(|m| m.contains("too complex")),
            "{answer:#}"
        );
        assert!(answer.get("data").is_none_or(Value::is_null), "{answer:#}");
    };
    let now = app.data(&aliases(100, &|_| format!("doetank(id: \"{id}\") {{ id }}")), json!({})).await;
    assert_eq!(now["a99"]["id"], json!(id));
    let past = |i: usize| format!("doetank(id: \"{id}\", atVersion: {}) {{ id }}", i % 3 + 1);
    too_complex(app.gql(&aliases(100, &past), json!({})).await);
    let answered = app.data(&aliases(5, &past), json!({})).await;
    assert_eq!(answered["a4"]["id"], json!(id));
    let figures = |i: usize| {
        format!("statistics(asOf: \"2013-0{}-01T00:00:00Z\") {{ lessonsPerKind {{ count }} }}", i % 9 + 1)
    };
    too_complex(app.gql(&aliases(20, &figures), json!({})).await);
    let activity = app.data(&aliases(5, &|_| "eventActivity { count }".into()), json!({})).await;
    assert!(activity["a4"].as_array().is_some_and(|rows| !rows.is_empty()), "{activity:#}");
    too_complex(app.gql(&aliases(25, &|_| "eventActivity { count }".into()), json!({})).await);
    let present = |_| "statistics { lessonsPerKind { count } }".to_string();
    assert!(app.data(&aliases(5, &present), json!({})).await["a4"]["lessonsPerKind"].is_array());
    too_complex(app.gql(&aliases(100, &present), json!({})).await);
    // A count reads every row its filters match: a hundred are answered, two hundred too complex.
    let counted = |_| "timeline(first: 1) { totalCount }".to_string();
    let counts = app.data(&aliases(100, &counted), json!({})).await;
    assert!(counts["a99"]["totalCount"].as_i64().is_some_and(|n| n > 0), "{counts:#}");
    too_complex(app.gql(&aliases(200, &counted), json!({})).await);
    // A search finds and ranks every match before its page: the same.
    let searched = |_| "lessons(filter: { search: \"werk\" }, first: 1) { edges { cursor } }".to_string();
    let found = app.data(&aliases(100, &searched), json!({})).await;
    assert!(found["a99"]["edges"].is_array(), "{found:#}");
    too_complex(app.gql(&aliases(200, &searched), json!({})).await);
    let listed = |_| "lessons(first: 1) { edges { cursor } }".to_string();
    assert!(app.data(&aliases(200, &listed), json!({})).await["a199"]["edges"].is_array());
}

/// `medianDaysPerPhase`: per phase, how many doetanks completed it and the median of their whole
/// seconds from start to completion, in days, as the doetanks' own phases tell them (the middle
/// one of an odd count, the mean of the middle two of an even one).
async fn the_median_days_of_a_phase_are_the_median_of_its_completions(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let staff = facilitator();
    let answer = app
        .gql_as(
            Some(&staff),
            "{ doetanks(first: 100) { edges { node { phases { phase startedAt completedAt } } } } \
               statistics { medianDaysPerPhase { phase medianDays completed } } }",
            json!({}),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer:#}");
    let time =
        |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339");
    let mut days: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for edge in answer["data"]["doetanks"]["edges"].as_array().expect("doetanks") {
        for phase in edge["node"]["phases"].as_array().expect("phases") {
            if !phase["completedAt"].is_null() {
                let seconds = (time(&phase["completedAt"]) - time(&phase["startedAt"])).num_seconds();
                let name = phase["phase"].as_str().expect("phase").to_string();
                days.entry(name).or_default().push(seconds as f64 / 86_400.0);
            }
        }
    }
    assert!(days.values().any(|d| d.len() >= 2), "the demo completes some phase more than once: {days:?}");
    for figure in answer["data"]["statistics"]["medianDaysPerPhase"].as_array().expect("figures") {
        let mut spans = days.remove(figure["phase"].as_str().expect("phase")).unwrap_or_default();
        spans.sort_by(f64::total_cmp);
        let median = match spans.len() {
            0 => None,
            n if n % 2 == 1 => Some(spans[n / 2]),
            n => Some((spans[n / 2 - 1] + spans[n / 2]) / 2.0),
        };
        assert_eq!(figure["completed"], spans.len(), "{figure}");
        match median {
            None => assert!(figure["medianDays"].is_null(), "{figure}"),
            Some(median) => {
                let told = figure["medianDays"].as_f64().expect("a median");
                assert!((told - median).abs() < 1e-9, "{figure}: {median}");
            }
        }
    }
}

/// An answer's fields come in the order the query asked for them (GraphQL's "Serialized Map
/// Ordering"), also where a field waits for a batched loader and its siblings do not:
/// async-graphql wrote them as they completed (`origin` and `doetanks` came out swapped).
async fn an_answer_keeps_the_order_of_the_query(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    doetank_api::demo::load(&app.app).await.expect("demo");
    let query = "{ challenges { edges { node { title origin { kind idea { title } cafe { title } } doetanks { name } } } } }";
    let order = |text: &str| -> Vec<usize> {
        ["\"title\"", "\"origin\"", "\"kind\"", "\"idea\"", "\"cafe\"", "\"doetanks\""]
            .iter()
            .map(|key| text.find(key).unwrap_or(usize::MAX))
            .collect()
    };
    let ascending = |at: &[usize]| at.windows(2).all(|w| w[0] < w[1]);
    let text = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("text");
    assert!(ascending(&order(&text)), "over HTTP: {text}");
    let mut socket = crate::support::ws::WsClient::connect(&app, crate::support::ws::MODERN).await;
    socket.init(json!({})).await;
    socket.subscribe("q", query, json!({})).await;
    let answer = socket.next_text().await;
    assert!(ascending(&order(&answer)), "over a WebSocket: {answer}");
}
