//! Whole lives of aggregates and the guards around them that are not numbered rules.

use chrono::{NaiveDate, TimeZone, Utc};

use super::fixtures::*;
use crate::aggregates::cafe::CafeStatus;
use crate::aggregates::pilot::{Applicant, ApplicantFunction, PilotOutcome};
use crate::aggregates::reuse::ReuseSource;
use crate::testing::{given, given_nothing};
use crate::*;

#[test]
fn a_doetank_goes_through_all_six_phases_and_completes() {
    let mut state = Doetank::from_events(&coached(3));
    for phase in Phase::ALL {
        let events = state.complete_phase(phase, "samenvatting", at()).expect("phase completes");
        for e in &events {
            state.apply(e);
        }
    }
    assert_eq!(state.completed_phases, Phase::ALL.to_vec());
    let events = state.hand_over_business_case("Gemeente Utrecht", "businesscase").expect("hand over");
    assert_eq!(events.len(), 1);
    let events = state.conclude(DoetankOutcome::Completed, "gelukt", at()).expect("conclude");
    state.apply(&events[0]);
    assert_eq!(state.outcome, Some(DoetankOutcome::Completed));
}

#[test]
fn a_doetank_completes_only_after_hand_over() {
    given::<Doetank>(coached(3))
        .when(|d| d.conclude(DoetankOutcome::Completed, "klaar?", at()))
        .then_expect_rule(Rule::PhaseOrder);
    given::<Doetank>(coached(3))
        .when(|d| d.conclude(DoetankOutcome::Discontinued, "gestopt", at()))
        .then_ok();
}

#[test]
fn commands_on_a_doetank_that_was_never_formed_say_so() {
    given_nothing::<Doetank>()
        .when(|d| d.make_public())
        .then_expect_error(DomainError::NotCreated("doetank"));
}

#[test]
fn forming_needs_a_name() {
    given_nothing::<Doetank>()
        .when(|d| d.form(id(1), "  ", id(2), Innovator::public(id(1)), vec![], at()))
        .then_expect_invalid("name");
}

#[test]
fn a_lesson_cannot_belong_to_a_phase_not_reached() {
    given::<Doetank>(coached(3))
        .when(|d| {
            d.record_lesson(crate::aggregates::doetank::NewLesson {
                lesson_id: id(1),
                recorded_by: id(LEAD),
                phase: Some(Phase::Learn),
                kind: LessonKind::Insight,
                title: "t".into(),
                body: "b".into(),
                tags: vec![],
            })
        })
        .then_expect_invalid("phase");
}

#[test]
fn a_cafe_is_held_once_and_not_after_cancellation() {
    let date = NaiveDate::from_ymd_opt(2013, 2, 28).expect("date");
    let cafe = given_nothing::<Cafe>()
        .when(|c| c.schedule(id(1), "Slimmernetwerk Café", date, "Kennisland, Amsterdam"))
        .then_ok();
    let held = given::<Cafe>(vec![
        CafeEvent::CafeScheduled { cafe_id: id(1), title: "Café".into(), date, venue: "Kennisland".into() },
        CafeEvent::CafeHeld { attendance: 60 },
    ]);
    assert_eq!(cafe.status, CafeStatus::Scheduled);
    held.when(|c| c.cancel("regen")).then_expect_rule(Rule::Lifecycle);
    given::<Cafe>(vec![
        CafeEvent::CafeScheduled { cafe_id: id(1), title: "Café".into(), date, venue: "Kennisland".into() },
        CafeEvent::CafeCancelled { reason: "zaal dicht".into() },
    ])
    .when(|c| c.hold(10, date))
    .then_expect_rule(Rule::Lifecycle);
}

#[test]
fn a_pilot_runs_its_whole_course() {
    let from = NaiveDate::from_ymd_opt(2013, 9, 1).expect("date");
    let mut pilot = given_nothing::<Pilot>()
        .when(|p| {
            p.propose(
                id(1),
                "regel",
                "alternatief",
                "winst",
                Applicant { member_id: id(1), function: ApplicantFunction::Policy, in_primary_process: true },
                Sector::Public,
            )
        })
        .then_ok();
    for step in [pilot.grant_mandate("BZK"), Ok(vec![])] {
        for e in step.expect("step") {
            pilot.apply(&e);
        }
    }
    for e in pilot.suspend_rule(from, NaiveDate::from_ymd_opt(2014, 3, 1)).expect("suspend") {
        pilot.apply(&e);
    }
    let early = pilot.evaluate("Nog niets te zien", from.pred_opt().expect("the day before"));
    assert_eq!(
        early.map_err(|e| e.broken_rule()),
        Err(Some(Rule::Lifecycle)),
        "before the rule was set aside"
    );
    for e in pilot.evaluate("Doorlooptijd halveerde", from).expect("evaluate") {
        pilot.apply(&e);
    }
    for e in pilot.conclude(PilotOutcome::RuleChanged, "regel aangepast").expect("conclude") {
        pilot.apply(&e);
    }
    given::<Pilot>(vec![])
        .when(|p| p.evaluate("x", from))
        .then_expect_error(DomainError::NotCreated("pilot"));
    assert_eq!(pilot.outcome, Some(PilotOutcome::RuleChanged));
    assert_eq!(pilot.grant_mandate("x").map_err(|e| e.broken_rule()), Err(Some(Rule::Lifecycle)));
}

#[test]
fn a_member_erased_takes_no_more_commands() {
    given::<Member>(vec![
        MemberEvent::MemberRegistered {
            member_id: id(1),
            organisation: "TNO".into(),
            sector: Sector::Public,
            expertise: vec![],
        },
        MemberEvent::MemberErased {},
    ])
    .when(|m| m.update_profile(Some("Kennisland"), None))
    .then_expect_rule(Rule::ErasedIsFinal);
}

#[test]
fn an_erased_member_may_not_act_and_one_never_registered_is_not_refused_for_it() {
    let mut member = Member::default();
    assert_eq!(member.may_act(), Ok(()), "a facilitator's id need not be a member's");
    member.apply(&MemberEvent::MemberRegistered {
        member_id: id(1),
        organisation: "TNO".into(),
        sector: Sector::Public,
        expertise: vec![],
    });
    assert_eq!(member.may_act(), Ok(()));
    member.apply(&MemberEvent::MemberErased {});
    assert_eq!(member.may_act().map_err(|e| e.broken_rule()), Err(Some(Rule::ErasedIsFinal)));
}

#[test]
fn a_challenge_gets_one_commissioner_and_one_pledge_per_member() {
    let raised = vec![ChallengeEvent::ChallengeRaised {
        challenge_id: id(1),
        title: "Vergrijzing".into(),
        description: "…".into(),
        raised_by: id(2),
        origin: crate::aggregates::challenge::ChallengeOrigin::OwnFrustration,
    }];
    given::<Challenge>(raised.clone()).when(|c| c.find_commissioner("Gemeente Utrecht")).then_ok();
    let mut pledged = raised;
    pledged.push(ChallengeEvent::SupportPledged { member_id: id(3) });
    given::<Challenge>(pledged).when(|c| c.pledge_support(id(3))).then_expect_rule(Rule::Lifecycle);
}

#[test]
fn a_pledge_is_fulfilled_once() {
    let events = vec![
        KnowledgeReuseEvent::KnowledgeReused {
            reuse_id: id(1),
            organisation: "Gemeente Utrecht".into(),
            source: ReuseSource::Doetank { doetank_id: id(2) },
            pledge: "We delen onze ervaringen".into(),
        },
        KnowledgeReuseEvent::PledgeFulfilled { note: "gedeeld".into() },
    ];
    given::<KnowledgeReuse>(events).when(|r| r.fulfil_pledge("nog eens")).then_expect_rule(Rule::Lifecycle);
}

#[test]
fn ideas_follow_up_by_adoption_and_doetank() {
    let (on_the_day, mut events) = ideation_day("Hack de OR!");
    // One title once a day, whatever its case and spacing.
    given::<IdeationEvent>(events.clone())
        .when(|e| e.submit_idea(id(22), " hack de  or! ", "nog eens", None))
        .then_expect_rule(Rule::Lifecycle);
    given::<IdeationEvent>(events.clone())
        .when(|e| e.submit_idea(id(22), "Hack de OR! 2", "anders", None))
        .then_ok();
    events.push(IdeationEventEvent::IdeationEventConcluded { participant_count: 150 });
    let the_eve = on_the_day.pred_opt().expect("a day before");
    given::<IdeationEvent>(events.clone())
        .when(|e| e.adopt_idea(id(20), "Gemeente Utrecht", on_the_day))
        .then_ok();
    // Follow-ups come after the day: not on its eve.
    given::<IdeationEvent>(events.clone())
        .when(|e| e.adopt_idea(id(20), "Gemeente Utrecht", the_eve))
        .then_expect_rule(Rule::Lifecycle);
    // An organisation adopts an idea once, however its name is cased.
    let mut adopted = events.clone();
    adopted
        .push(IdeationEventEvent::IdeaAdopted { idea_id: id(20), organisation: "Gemeente Utrecht".into() });
    given::<IdeationEvent>(adopted.clone())
        .when(|e| e.adopt_idea(id(20), " gemeente UTRECHT ", on_the_day))
        .then_expect_rule(Rule::Lifecycle);
    given::<IdeationEvent>(adopted).when(|e| e.adopt_idea(id(20), "Gemeente Delft", on_the_day)).then_ok();
    given::<IdeationEvent>(events.clone())
        .when(|e| e.submit_idea(id(21), "laat", "te laat", None))
        .then_expect_rule(Rule::Lifecycle);
    let doetank = Doetank::from_events(&formed(3));
    given::<IdeationEvent>(events.clone())
        .when(|e| e.take_idea_into_doetank(id(21), &doetank, on_the_day))
        .then_expect_rule(Rule::JuryRanksOwnIdeas);
    given::<IdeationEvent>(events.clone())
        .when(|e| e.take_idea_into_doetank(id(20), &doetank, on_the_day))
        .then_ok();
    given::<IdeationEvent>(events.clone())
        .when(|e| e.take_idea_into_doetank(id(20), &doetank, the_eve))
        .then_expect_rule(Rule::Lifecycle);
    // A concluded doetank takes nothing more up (rule 6).
    let mut concluded = formed(3);
    concluded.push(DoetankEvent::DoetankConcluded {
        outcome: DoetankOutcome::Completed,
        reflection: "klaar".into(),
        at: at(),
    });
    given::<IdeationEvent>(events)
        .when(|e| e.take_idea_into_doetank(id(20), &Doetank::from_events(&concluded), on_the_day))
        .then_expect_rule(Rule::ConcludedIsFinal);
}

#[test]
fn a_doetank_s_story_moves_forward() {
    let before = at() - chrono::Duration::days(1);
    let mut started_later = coached(3);
    let later = at() + chrono::Duration::days(30);
    started_later.extend([
        DoetankEvent::PhaseCompleted { phase: Phase::Discover, summary: "ok".into(), at: later },
        DoetankEvent::PhaseStarted { phase: Phase::Research, at: later },
    ]);
    // A phase completed before it started, a member who joined or left before the doetank's
    // latest dated fact, a conclusion before it: each would tell time backwards.
    given::<Doetank>(started_later.clone())
        .when(|d| d.complete_phase(Phase::Research, "te vroeg", at()))
        .then_expect_invalid("at");
    given::<Doetank>(coached(3)).when(|d| d.join(Innovator::public(id(7)), before)).then_expect_invalid("at");
    given::<Doetank>(coached(4)).when(|d| d.leave(id(4), before)).then_expect_invalid("at");
    given::<Doetank>(started_later.clone())
        .when(|d| d.conclude(DoetankOutcome::Discontinued, "gestopt", at()))
        .then_expect_invalid("at");
    // At or after the latest dated fact is fine, also with facts that carry no time between.
    given::<Doetank>(started_later).when(|d| d.complete_phase(Phase::Research, "klaar", later)).then_ok();
    let message = coached(3)
        .into_iter()
        .fold(Doetank::default(), |mut d, e| {
            d.apply(&e);
            d
        })
        .join(Innovator::public(id(7)), before)
        .map_err(|e| e.to_string());
    assert!(
        message.as_ref().is_err_and(|m| m.contains("DISCOVER started")),
        "the refusal names the fact it would precede: {message:?}"
    );
}

#[test]
fn a_cafe_and_an_ideation_day_happen_on_their_day_or_after() {
    let date = NaiveDate::from_ymd_opt(2013, 3, 15).expect("date");
    let eve = date.pred_opt().expect("the day before");
    let cafe = vec![CafeEvent::CafeScheduled {
        cafe_id: id(1),
        title: "Café".into(),
        date,
        venue: "Kennisland".into(),
    }];
    given::<Cafe>(cafe.clone()).when(|c| c.hold(60, eve)).then_expect_rule(Rule::Lifecycle);
    given::<Cafe>(cafe.clone()).when(|c| c.hold(3_000_000_000, date)).then_expect_invalid("attendance");
    // A café no one came to was not held: it is cancelled.
    given::<Cafe>(cafe.clone()).when(|c| c.hold(0, date)).then_expect_invalid("attendance");
    // A talk or a workshop is on the program once, however its announcement was spelled again.
    let mut announced = cafe.clone();
    announced.push(CafeEvent::SpeakerAnnounced { speaker: "Femke".into(), topic: "Lef".into() });
    announced.push(CafeEvent::WorkshopAnnounced { title: "Doen".into(), host: "Joris".into() });
    given::<Cafe>(announced.clone())
        .when(|c| c.announce_speaker(" femke ", "LEF"))
        .then_expect_rule(Rule::Lifecycle);
    given::<Cafe>(announced.clone())
        .when(|c| c.announce_workshop("doen", "Joris"))
        .then_expect_rule(Rule::Lifecycle);
    given::<Cafe>(announced.clone()).when(|c| c.announce_speaker("Femke", "Doen")).then_ok();
    given::<Cafe>(announced).when(|c| c.announce_speaker("Joris", "Lef")).then_ok();
    given::<Cafe>(cafe.clone()).when(|c| c.hold(60, date)).then_ok();
    // A challenge is raised at a café that met, or meets that day: not before, not cancelled.
    let scheduled = Cafe::from_events(&cafe);
    assert_eq!(scheduled.raises_challenges(eve).map_err(|e| e.broken_rule()), Err(Some(Rule::Lifecycle)));
    assert_eq!(scheduled.raises_challenges(date), Ok(()));
    let mut cancelled = cafe;
    cancelled.push(CafeEvent::CafeCancelled { reason: "zaal dicht".into() });
    let cancelled = Cafe::from_events(&cancelled);
    assert_eq!(cancelled.raises_challenges(date).map_err(|e| e.broken_rule()), Err(Some(Rule::Lifecycle)));

    let (_, day) = ideation_day("20/10");
    given::<IdeationEvent>(day.clone()).when(|e| e.pitch_idea(id(20), eve)).then_expect_rule(Rule::Lifecycle);
    given::<IdeationEvent>(day.clone())
        .when(|e| e.give_jury_verdict(vec![id(20)], "", eve))
        .then_expect_rule(Rule::Lifecycle);
    given::<IdeationEvent>(day.clone()).when(|e| e.conclude(150, eve)).then_expect_rule(Rule::Lifecycle);
    given::<IdeationEvent>(day.clone())
        .when(|e| e.conclude(2_000_000, date))
        .then_expect_invalid("participantCount");
    given::<IdeationEvent>(day).when(|e| e.conclude(150, date)).then_ok();
}

#[test]
fn a_kickoff_comes_after_the_doetank_was_formed() {
    let formed_on = at().date_naive();
    given::<Doetank>(formed(3))
        .when(|d| d.hold_kickoff(formed_on.pred_opt().expect("a day before"), "Utrecht", vec![], formed_on))
        .then_expect_invalid("date");
    // Recorded once held: not for a day still to come.
    let next_day = formed_on.succ_opt().expect("a day after");
    given::<Doetank>(formed(3))
        .when(|d| d.hold_kickoff(next_day, "Utrecht", vec![], formed_on))
        .then_expect_invalid("date");
    let held = given::<Doetank>(formed(3))
        .when(|d| d.hold_kickoff(formed_on, "Utrecht", vec![], formed_on))
        .then_ok();
    // The first meeting is held once (until the thirty-first session a second was recorded).
    let again = held.hold_kickoff(formed_on, "Kennisland", vec![], formed_on);
    assert_eq!(again.map_err(|e| e.broken_rule()), Err(Some(Rule::Lifecycle)));
}

#[test]
fn dates_lie_in_the_years_the_network_s_calendar_holds() {
    let far = NaiveDate::from_ymd_opt(12_000, 2, 28).expect("a far date");
    let ancient = NaiveDate::from_ymd_opt(213, 2, 28).expect("a typo's date");
    let first = NaiveDate::from_ymd_opt(1900, 1, 1).expect("the first day");
    let last = NaiveDate::from_ymd_opt(9999, 12, 31).expect("the last day");
    for (date, ok) in [(far, false), (ancient, false), (first, true), (last, true)] {
        let cafe = given_nothing::<Cafe>().when(|c| c.schedule(id(1), "Café", date, "Den Haag"));
        let day = given_nothing::<IdeationEvent>().when(|e| e.schedule(id(1), "Dag", "?", date, "Den Haag"));
        if ok {
            cafe.then_ok();
            day.then_ok();
        } else {
            cafe.then_expect_invalid("date");
            day.then_expect_invalid("date");
            given::<Doetank>(formed(3))
                .when(|d| d.hold_kickoff(date, "Utrecht", vec![], last))
                .then_expect_invalid("date");
        }
    }
    let bc = Utc.with_ymd_and_hms(-500, 1, 1, 0, 0, 0).single().expect("a time before our era");
    given_nothing::<Doetank>()
        .when(|d| d.form(id(1), "Oudheid", id(2), Innovator::public(id(1)), vec![], bc))
        .then_expect_invalid("at");
}

#[test]
fn keyword_lists_keep_each_entry_once_and_stay_short() {
    let lesson = |tags: Vec<String>| crate::aggregates::doetank::NewLesson {
        lesson_id: id(50),
        recorded_by: id(LEAD),
        phase: None,
        kind: LessonKind::Insight,
        title: "t".into(),
        body: "b".into(),
        tags,
    };
    let repeated = vec!["Werving".into(), " werving ".into(), "".into(), "HRM".into()];
    let events = Doetank::from_events(&formed(3)).record_lesson(lesson(repeated)).expect("recorded");
    assert!(
        matches!(&events[..], [DoetankEvent::LessonRecorded { tags, .. }] if tags == &["werving", "hrm"]),
        "{events:?}"
    );
    let many: Vec<String> = (0..51).map(|i| format!("tag{i}")).collect();
    given::<Doetank>(formed(3)).when(|d| d.record_lesson(lesson(many.clone()))).then_expect_invalid("tags");
    given::<Doetank>(formed(3))
        .when(|d| d.record_lesson(lesson(vec!["x".repeat(201)])))
        .then_expect_invalid("tags");

    // A space typed twice makes no second keyword, nor a second organisation.
    let expertise = vec!["Data".into(), "DATA".into(), "Open  data".into(), " open data".into()];
    let registered = Member::default()
        .register(id(1), " Gemeente \t Utrecht ", Sector::Public, expertise)
        .expect("registered");
    assert!(
        matches!(&registered[..], [MemberEvent::MemberRegistered { expertise, organisation, .. }]
            if expertise == &["Data", "Open data"] && organisation == "Gemeente Utrecht"),
        "{registered:?}"
    );
    given_nothing::<Member>()
        .when(|m| m.register(id(1), "TNO", Sector::Public, many.clone()))
        .then_expect_invalid("expertise");
    given_nothing::<Charter>()
        .when(|c| c.publish(id(1), "Charter", "tekst", many.clone()))
        .then_expect_invalid("initiators");

    let twice = vec![id(1), id(2), id(1)];
    assert_eq!(Doetank::kickoff_attendees(twice), Ok(vec![id(1), id(2)]));
    let crowd = (0..1_001).map(id).collect();
    assert!(Doetank::kickoff_attendees(crowd)
        .is_err_and(|e| e == DomainError::invalid("attendeeIds", "must name at most 1000 members")));
}

#[test]
fn an_update_links_to_a_page_a_browser_opens() {
    let publish = |link: &str| Doetank::from_events(&formed(3)).publish_update(Channel::Blog, "Blog", link);
    for (given, kept) in [
        ("HTTPS://Example.org", "https://example.org/"),
        (" https://example.org/een blog ", "https://example.org/een%20blog"),
        ("http://example.org/a?b=c", "http://example.org/a?b=c"),
    ] {
        let events = publish(given).expect("published");
        assert!(
            matches!(&events[..], [DoetankEvent::UpdatePublished { link, .. }] if link == kept),
            "{given}: {events:?}"
        );
    }
    for link in
        ["https://", "https://exa mple.org", "javascript:alert(1)", "ftp://example.org", "example.org"]
    {
        given::<Doetank>(formed(3))
            .when(|d| d.publish_update(Channel::Blog, "Blog", link))
            .then_expect_invalid("link");
    }
}
