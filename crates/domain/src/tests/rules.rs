//! One test (at least) per rule of DOMAIN.md "Rules the facts obey", named after the rule.
//! Each fails if the rule's check is removed from the aggregate.

use chrono::NaiveDate;

use super::fixtures::*;
use crate::aggregates::charter::Signatory;
use crate::aggregates::doetank::NewLesson;
use crate::aggregates::pilot::{Applicant, ApplicantFunction, PilotOutcome};
use crate::testing::{given, given_nothing};
use crate::*;

#[test]
fn rule_1_doetank_size_refuses_a_tenth_member() {
    given::<Doetank>(formed(9))
        .when(|d| d.join(Innovator::public(id(10)), at()))
        .then_expect_rule(Rule::DoetankSize);
}

#[test]
fn rule_1_doetank_size_accepts_the_ninth_member() {
    given::<Doetank>(formed(8))
        .when(|d| d.join(Innovator::public(id(9)), at()))
        .then_expect_events(vec![DoetankEvent::MemberJoined { member: Innovator::public(id(9)), at: at() }]);
}

#[test]
fn rule_1_doetank_size_refuses_forming_with_ten() {
    given_nothing::<Doetank>()
        .when(|d| {
            d.form(
                id(1),
                "Te groot",
                id(2),
                Innovator::public(id(1)),
                (2..=10).map(|i| Innovator::public(id(i))).collect(),
                at(),
            )
        })
        .then_expect_rule(Rule::DoetankSize);
}

#[test]
fn rule_1_doetank_size_does_not_count_the_coach() {
    let mut events = coached(8);
    events.push(DoetankEvent::MemberJoined { member: Innovator::public(id(9)), at: at() });
    let doetank = given::<Doetank>(events).when(|d| d.complete_phase(Phase::Discover, "ok", at())).then_ok();
    assert_eq!(doetank.members.len(), 9);
}

#[test]
fn rule_2_externals_not_primary_refuses_an_external_majority() {
    // 2 public members + 1 external: a second external would make them equal.
    let mut events = formed(2);
    events.push(DoetankEvent::MemberJoined { member: Innovator::external(id(50)), at: at() });
    given::<Doetank>(events)
        .when(|d| d.join(Innovator::external(id(51)), at()))
        .then_expect_rule(Rule::ExternalsNotPrimary);
}

#[test]
fn rule_2_externals_not_primary_refuses_forming_led_by_an_external_alone() {
    given_nothing::<Doetank>()
        .when(|d| {
            d.form(
                id(1),
                "Adviesclub",
                id(2),
                Innovator::external(id(1)),
                vec![Innovator::public(id(2))],
                at(),
            )
        })
        .then_expect_rule(Rule::ExternalsNotPrimary);
}

#[test]
fn rule_2_externals_not_primary_refuses_a_public_member_leaving_the_externals_equal() {
    let mut events = formed(2);
    events.push(DoetankEvent::MemberJoined { member: Innovator::external(id(50)), at: at() });
    given::<Doetank>(events.clone())
        .when(|d| d.leave(id(2), at()))
        .then_expect_rule(Rule::ExternalsNotPrimary);
    // The refusal counts in words that agree with the numbers.
    let refusal = Doetank::from_events(&events).leave(id(2), at()).expect_err("refused").to_string();
    assert!(
        refusal.ends_with("1 external adviser would not be fewer than 1 public-sector member"),
        "{refusal}"
    );
}

#[test]
fn rule_3_lead_is_member_when_changing_lead() {
    given::<Doetank>(formed(3)).when(|d| d.change_lead(id(77))).then_expect_rule(Rule::LeadIsMember);
}

#[test]
fn rule_3_lead_is_member_so_the_lead_cannot_leave() {
    given::<Doetank>(formed(3)).when(|d| d.leave(id(LEAD), at())).then_expect_rule(Rule::LeadIsMember);
}

#[test]
fn rule_3_coach_not_member_refuses_a_member_as_coach() {
    given::<Doetank>(formed(3)).when(|d| d.assign_coach(id(2))).then_expect_rule(Rule::CoachNotMember);
}

#[test]
fn rule_3_coach_not_member_refuses_the_coach_joining() {
    given::<Doetank>(coached(3))
        .when(|d| d.join(Innovator::public(id(COACH)), at()))
        .then_expect_rule(Rule::CoachNotMember);
}

#[test]
fn rule_4_phase_order_refuses_skipping_a_phase() {
    given::<Doetank>(coached(3))
        .when(|d| d.complete_phase(Phase::Research, "te vroeg", at()))
        .then_expect_rule(Rule::PhaseOrder);
}

#[test]
fn rule_4_phase_order_refuses_completing_a_phase_twice() {
    let mut events = coached(3);
    events.extend(completed(Phase::Discover));
    given::<Doetank>(events)
        .when(|d| d.complete_phase(Phase::Discover, "nog eens", at()))
        .then_expect_rule(Rule::PhaseOrder);
}

#[test]
fn rule_4_phase_order_completing_starts_the_next_phase() {
    given::<Doetank>(coached(3))
        .when(|d| d.complete_phase(Phase::Discover, "Probleem achter het probleem gevonden", at()))
        .then_expect_events(vec![
            DoetankEvent::PhaseCompleted {
                phase: Phase::Discover,
                summary: "Probleem achter het probleem gevonden".into(),
                at: at(),
            },
            DoetankEvent::PhaseStarted { phase: Phase::Research, at: at() },
        ]);
}

#[test]
fn rule_4_phase_needs_team_and_coach_refuses_two_members() {
    let mut events = formed(2);
    events.push(DoetankEvent::CoachAssigned { coach_id: id(COACH) });
    given::<Doetank>(events)
        .when(|d| d.complete_phase(Phase::Discover, "ok", at()))
        .then_expect_rule(Rule::PhaseNeedsTeamAndCoach);
}

#[test]
fn rule_4_phase_needs_team_and_coach_refuses_without_coach() {
    given::<Doetank>(formed(3))
        .when(|d| d.complete_phase(Phase::Discover, "ok", at()))
        .then_expect_rule(Rule::PhaseNeedsTeamAndCoach);
}

fn lesson(by: u128) -> NewLesson {
    NewLesson {
        lesson_id: id(9000),
        recorded_by: id(by),
        phase: None,
        kind: LessonKind::DoesNotWork,
        title: "Alleen mailen werkt niet".into(),
        body: "Zonder fysieke kick-off bleef het stil.".into(),
        tags: vec!["Kickoff".into(), "kickoff ".into()],
    }
}

#[test]
fn rule_4_lesson_by_team_refuses_an_outsider() {
    given::<Doetank>(coached(3)).when(|d| d.record_lesson(lesson(42))).then_expect_rule(Rule::LessonByTeam);
}

#[test]
fn rule_4_lesson_by_team_accepts_the_coach_in_any_phase() {
    let mut events = coached(3);
    events.extend(completed(Phase::Discover));
    given::<Doetank>(events).when(|d| d.record_lesson(lesson(COACH))).then_expect_events(vec![
        DoetankEvent::LessonRecorded {
            lesson_id: id(9000),
            recorded_by: id(COACH),
            phase: Phase::Research,
            kind: LessonKind::DoesNotWork,
            title: "Alleen mailen werkt niet".into(),
            body: "Zonder fysieke kick-off bleef het stil.".into(),
            tags: vec!["kickoff".into()],
        },
    ]);
}

#[test]
fn rule_5_informal_until_public_a_doetank_starts_informal() {
    let doetank = given::<Doetank>(formed(3))
        .when(|d| d.make_public())
        .then_expect_events(vec![DoetankEvent::DoetankMadePublic {}]);
    assert!(doetank.is_public);
    assert!(!Doetank::from_events(&formed(3)).is_public);
}

#[test]
fn rule_5_informal_until_public_is_made_public_once() {
    let mut events = formed(3);
    events.push(DoetankEvent::DoetankMadePublic {});
    given::<Doetank>(events).when(|d| d.make_public()).then_expect_rule(Rule::InformalUntilPublic);
}

#[test]
fn rule_6_concluded_is_final() {
    let mut events = coached(3);
    events.push(DoetankEvent::DoetankConcluded {
        outcome: DoetankOutcome::Discontinued,
        reflection: "geen tijd".into(),
        at: at(),
    });
    given::<Doetank>(events.clone())
        .when(|d| d.join(Innovator::public(id(7)), at()))
        .then_expect_rule(Rule::ConcludedIsFinal);
    given::<Doetank>(events.clone())
        .when(|d| d.record_lesson(lesson(LEAD)))
        .then_expect_rule(Rule::ConcludedIsFinal);
    given::<Doetank>(events).when(|d| d.make_public()).then_expect_rule(Rule::ConcludedIsFinal);
}

fn proposed() -> Vec<PilotEvent> {
    vec![PilotEvent::PilotProposed {
        pilot_id: id(3000),
        hindering_rule: "Declaraties boven 50 euro vereisen twee handtekeningen".into(),
        alternative: "Eén handtekening en steekproefsgewijze controle achteraf".into(),
        expected_gain: "Twee weken minder doorlooptijd".into(),
        applicant: Applicant {
            member_id: id(1),
            function: ApplicantFunction::Operational,
            in_primary_process: true,
        },
    }]
}

#[test]
fn rule_7_mandate_before_suspension() {
    let from = NaiveDate::from_ymd_opt(2013, 9, 1).expect("date");
    let until = NaiveDate::from_ymd_opt(2014, 3, 1);
    given::<Pilot>(proposed())
        .when(|p| p.suspend_rule(from, until))
        .then_expect_rule(Rule::MandateBeforeSuspension);
}

#[test]
fn rule_7_suspension_has_end() {
    let mut events = proposed();
    events.push(PilotEvent::MandateGranted { granted_by: "Ministerie van BZK".into() });
    let from = NaiveDate::from_ymd_opt(2013, 9, 1).expect("date");
    given::<Pilot>(events.clone())
        .when(|p| p.suspend_rule(from, None))
        .then_expect_rule(Rule::SuspensionHasEnd);
    given::<Pilot>(events.clone())
        .when(|p| p.suspend_rule(from, Some(from)))
        .then_expect_rule(Rule::SuspensionHasEnd);
    // An end a hundred centuries away is no end, and would not sort as a date.
    given::<Pilot>(events)
        .when(|p| p.suspend_rule(from, NaiveDate::from_ymd_opt(262_142, 1, 1)))
        .then_expect_invalid("until");
}

#[test]
fn rule_7_evaluation_before_conclusion() {
    let mut events = proposed();
    events.push(PilotEvent::MandateGranted { granted_by: "Ministerie van BZK".into() });
    given::<Pilot>(events)
        .when(|p| p.conclude(PilotOutcome::RuleChanged, ""))
        .then_expect_rule(Rule::EvaluationBeforeConclusion);
}

#[test]
fn rule_7_applicant_eligibility() {
    let propose = |function: ApplicantFunction, primary: bool, sector: Sector| {
        Pilot::default().propose(
            id(1),
            "regel",
            "alternatief",
            "winst",
            Applicant { member_id: id(1), function, in_primary_process: primary },
            sector,
        )
    };
    let broken = |decision: crate::error::Decision<PilotEvent>| decision.map_err(|e| e.broken_rule());
    for (function, primary) in [
        (ApplicantFunction::Management, true),
        (ApplicantFunction::Policy, false),
        (ApplicantFunction::ExternalAdviser, true),
    ] {
        assert_eq!(broken(propose(function, primary, Sector::Public)), Err(Some(Rule::ApplicantEligibility)));
    }
    assert!(propose(ApplicantFunction::Policy, true, Sector::Public).is_ok());
    // A member registered outside the public sector is no civil servant, whatever function
    // they state (until the thirty-first session an external adviser's "policy" was taken).
    for sector in [Sector::ExternalAdviser, Sector::Academic] {
        let refused = propose(ApplicantFunction::Policy, true, sector);
        assert_eq!(broken(refused), Err(Some(Rule::ApplicantEligibility)), "{sector:?}");
    }
}

#[test]
fn rule_8_sign_once() {
    let events = vec![
        CharterEvent::CharterPublished {
            charter_id: id(1),
            title: "Charter voor een innovatieve overheid".into(),
            text: "Wij...".into(),
            initiators: vec![],
        },
        CharterEvent::CharterSigned {
            signatory: Signatory::Organisation { name: "Gemeente Utrecht".into() },
        },
        CharterEvent::CharterSigned { signatory: Signatory::Member { member_id: id(5) } },
        // As the log kept it before names were kept one-spaced.
        CharterEvent::CharterSigned {
            signatory: Signatory::Organisation { name: "Provincie  Utrecht".into() },
        },
    ];
    for again in [" gemeente utrecht", "Gemeente\tUtrecht", "provincie utrecht"] {
        given::<Charter>(events.clone())
            .when(|c| c.sign(Signatory::Organisation { name: again.into() }))
            .then_expect_rule(Rule::SignOnce);
    }
    given::<Charter>(events)
        .when(|c| c.sign(Signatory::Member { member_id: id(5) }))
        .then_expect_rule(Rule::SignOnce);
}

#[test]
fn rule_8_jury_ranks_own_ideas() {
    let (date, events) = ideation_day("20/10");
    given::<IdeationEvent>(events.clone())
        .when(|e| e.give_jury_verdict(vec![id(20), id(99)], "", date))
        .then_expect_rule(Rule::JuryRanksOwnIdeas);
    let judged = given::<IdeationEvent>(events)
        .when(|e| e.give_jury_verdict(vec![id(20)], "beste idee", date))
        .then_ok();
    // After the verdict nothing more is pitched to the jury.
    assert_eq!(judged.pitch_idea(id(20), date).map_err(|e| e.broken_rule()), Err(Some(Rule::Lifecycle)));
}
