//! A Slimmernetwerk Café: a physical meeting with speakers and workshops.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{calendar_date, ensure, name_key, people, required_text, Decision, DomainError, Rule};
use crate::types::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum CafeEvent {
    /// A network café was planned.
    CafeScheduled { cafe_id: CafeId, title: String, date: NaiveDate, venue: String },
    /// A speaker will talk at the café.
    SpeakerAnnounced { speaker: String, topic: String },
    /// A workshop will be held at the café.
    WorkshopAnnounced { title: String, host: String },
    /// The café took place, with its attendance.
    CafeHeld { attendance: u32 },
    /// The café will not take place.
    CafeCancelled { reason: String },
}

domain_event!(CafeEvent { CafeScheduled, SpeakerAnnounced, WorkshopAnnounced, CafeHeld, CafeCancelled });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CafeStatus {
    #[default]
    Scheduled,
    Held,
    Cancelled,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cafe {
    pub id: Option<CafeId>,
    pub date: Option<NaiveDate>,
    pub status: CafeStatus,
    /// What the program holds, each as [`program_key`] gives it: the same talk or workshop is
    /// on it once.
    program: Vec<String>,
}

/// A talk or workshop as the program compares it: its kind and both its texts, without regard to
/// case or spacing, so that an announcement sent twice (a retry without a `commandId`) does not
/// list it twice.
fn program_key(kind: &str, what: &str, who: &str) -> String {
    format!("{kind}\n{}\n{}", name_key(what), name_key(who))
}

impl Aggregate for Cafe {
    type Event = CafeEvent;
    const STREAM_TYPE: &'static str = "cafe";
    const OPENED_BY: &'static str = "CafeScheduled";

    fn apply(&mut self, event: &CafeEvent) {
        match event {
            CafeEvent::CafeScheduled { cafe_id, date, .. } => {
                self.id = Some(*cafe_id);
                self.date = Some(*date);
            }
            CafeEvent::CafeHeld { .. } => self.status = CafeStatus::Held,
            CafeEvent::CafeCancelled { .. } => self.status = CafeStatus::Cancelled,
            CafeEvent::SpeakerAnnounced { speaker, topic } => {
                self.program.push(program_key("talk", topic, speaker))
            }
            CafeEvent::WorkshopAnnounced { title, host } => {
                self.program.push(program_key("workshop", title, host))
            }
        }
    }
}

impl Cafe {
    fn still_scheduled(&self) -> Result<(), DomainError> {
        if self.id.is_none() {
            return Err(DomainError::NotCreated("cafe"));
        }
        ensure(self.status == CafeStatus::Scheduled, Rule::Lifecycle, || {
            format!(
                "the café is already {}",
                if self.status == CafeStatus::Held { "held" } else { "cancelled" }
            )
        })
    }

    pub fn schedule(
        &self,
        cafe_id: CafeId,
        title: &str,
        date: NaiveDate,
        venue: &str,
    ) -> Decision<CafeEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("cafe"));
        }
        required_text("title", title, 200)?;
        required_text("venue", venue, 200)?;
        calendar_date("date", date)?;
        Ok(vec![CafeEvent::CafeScheduled {
            cafe_id,
            title: title.trim().into(),
            date,
            venue: venue.trim().into(),
        }])
    }

    pub fn announce_speaker(&self, speaker: &str, topic: &str) -> Decision<CafeEvent> {
        self.still_scheduled()?;
        required_text("speaker", speaker, 200)?;
        required_text("topic", topic, 500)?;
        self.not_yet_on_the_program(
            program_key("talk", topic, speaker),
            "this speaker is already announced on this topic",
        )?;
        Ok(vec![CafeEvent::SpeakerAnnounced { speaker: speaker.trim().into(), topic: topic.trim().into() }])
    }

    pub fn announce_workshop(&self, title: &str, host: &str) -> Decision<CafeEvent> {
        self.still_scheduled()?;
        required_text("title", title, 200)?;
        required_text("host", host, 200)?;
        self.not_yet_on_the_program(
            program_key("workshop", title, host),
            "this workshop is already announced",
        )?;
        Ok(vec![CafeEvent::WorkshopAnnounced { title: title.trim().into(), host: host.trim().into() }])
    }

    fn not_yet_on_the_program(&self, key: String, already: &str) -> Result<(), DomainError> {
        ensure(!self.program.contains(&key), Rule::Lifecycle, || already.into())
    }

    /// Held on its day or after it (`today`: the date where the day has begun first), not
    /// before: a café scheduled for next year was not held with its attendance today.
    pub fn hold(&self, attendance: u32, today: NaiveDate) -> Decision<CafeEvent> {
        self.still_scheduled()?;
        people("attendance", attendance)?;
        self.on_its_day(today, "it is held")?;
        Ok(vec![CafeEvent::CafeHeld { attendance }])
    }

    /// `what` happens on the café's day or after (`today`: the date where the day has begun
    /// first).
    fn on_its_day(&self, today: NaiveDate, what: &str) -> Result<(), DomainError> {
        match self.date {
            Some(date) => ensure(today >= date, Rule::Lifecycle, || {
                format!("the café is on {date}: {what} on that day or after")
            }),
            None => Ok(()),
        }
    }

    /// Whether a challenge can have been raised at the café: one that met, or meets on its day
    /// (`today`: the date where the day has begun first); not a cancelled one, nor before its
    /// day.
    pub fn raises_challenges(&self, today: NaiveDate) -> Result<(), DomainError> {
        ensure(self.status != CafeStatus::Cancelled, Rule::Lifecycle, || {
            "the café was cancelled: nothing was raised there".into()
        })?;
        self.on_its_day(today, "challenges are raised there")
    }

    pub fn cancel(&self, reason: &str) -> Decision<CafeEvent> {
        self.still_scheduled()?;
        required_text("reason", reason, 2_000)?;
        Ok(vec![CafeEvent::CafeCancelled { reason: reason.trim().into() }])
    }
}
