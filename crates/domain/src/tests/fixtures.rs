use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use chrono::NaiveDate;

use crate::types::*;
use crate::{DoetankEvent, IdeationEventEvent};

pub fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2013, 3, 15, 9, 0, 0).single().expect("valid date")
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub const LEAD: u128 = 1;
pub const COACH: u128 = 100;

/// A formed doetank with `n` public-sector members (the lead is member 1).
pub fn formed(n: u128) -> Vec<DoetankEvent> {
    vec![
        DoetankEvent::DoetankFormed {
            doetank_id: id(1000),
            name: "20/10".into(),
            challenge_id: id(2000),
            lead: Innovator::public(id(LEAD)),
            founding_members: (2..=n).map(|i| Innovator::public(id(i))).collect(),
            at: at(),
        },
        DoetankEvent::PhaseStarted { phase: Phase::Discover, at: at() },
    ]
}

/// A formed doetank with `n` members and a coach, ready to complete phases.
pub fn coached(n: u128) -> Vec<DoetankEvent> {
    let mut events = formed(n);
    events.push(DoetankEvent::CoachAssigned { coach_id: id(COACH) });
    events
}

pub fn completed(phase: Phase) -> [DoetankEvent; 2] {
    [
        DoetankEvent::PhaseCompleted { phase, summary: "done".into(), at: at() },
        DoetankEvent::PhaseStarted { phase: phase.next().unwrap_or(Phase::HandOver), at: at() },
    ]
}

/// The day of the Stampij!fabriek (ideation event 1, on 15 March 2013) with one idea (20)
/// submitted to it.
pub fn ideation_day(idea_title: &str) -> (NaiveDate, Vec<IdeationEventEvent>) {
    let date = NaiveDate::from_ymd_opt(2013, 3, 15).expect("date");
    let events = vec![
        IdeationEventEvent::IdeationEventScheduled {
            ideation_event_id: id(1),
            name: "Stampij!fabriek".into(),
            central_question: "?".into(),
            date,
            venue: "Den Haag".into(),
        },
        IdeationEventEvent::IdeaSubmitted {
            idea_id: id(20),
            title: idea_title.into(),
            description: "...".into(),
            submitted_by: None,
        },
    ];
    (date, events)
}
