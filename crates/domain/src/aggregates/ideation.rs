//! An ideation day (Stampij!fabriek): ideas are submitted, pitched and ranked by a jury, and
//! followed up by organisations and doetanks.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::aggregates::doetank::Doetank;
use crate::domain_event;
use crate::error::{
    calendar_date, ensure, name_key, organisation_name, people, required_text, Decision, DomainError, Rule,
};
use crate::types::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum IdeationEventEvent {
    /// An ideation day around one central question was planned.
    IdeationEventScheduled {
        ideation_event_id: IdeationEventId,
        name: String,
        central_question: String,
        date: NaiveDate,
        venue: String,
    },
    /// An idea was put forward at the ideation day.
    IdeaSubmitted { idea_id: IdeaId, title: String, description: String, submitted_by: Option<MemberId> },
    /// The idea was pitched to the jury.
    IdeaPitched { idea_id: IdeaId },
    /// The jury ranked ideas of this ideation day only (rule 8), best first.
    JuryVerdictGiven { ranking: Vec<IdeaId>, motivation: String },
    /// The ideation day ended, with how many took part.
    IdeationEventConcluded { participant_count: u32 },
    /// An organisation took the idea up.
    IdeaAdopted { idea_id: IdeaId, organisation: String },
    /// The idea went on as a doetank.
    IdeaTakenIntoDoetank { idea_id: IdeaId, doetank_id: DoetankId },
}

domain_event!(IdeationEventEvent {
    IdeationEventScheduled,
    IdeaSubmitted,
    IdeaPitched,
    JuryVerdictGiven,
    IdeationEventConcluded,
    IdeaAdopted,
    IdeaTakenIntoDoetank,
});

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdeationEvent {
    pub id: Option<IdeationEventId>,
    /// The day it takes place: its pitches, verdict and close happen on that day or after.
    pub date: Option<NaiveDate>,
    pub ideas: Vec<IdeaId>,
    pub pitched: Vec<IdeaId>,
    pub ranking: Option<Vec<IdeaId>>,
    pub concluded: bool,
    pub adoptions: Vec<(IdeaId, String)>,
    pub taken_into_doetank: Vec<(IdeaId, DoetankId)>,
    /// The ideas' titles as they are compared (one-spaced, lower case): an idea is pitched,
    /// ranked and followed up by its title, so one day has each title once.
    titles: Vec<String>,
}

impl Aggregate for IdeationEvent {
    type Event = IdeationEventEvent;
    const STREAM_TYPE: &'static str = "ideation_event";
    const OPENED_BY: &'static str = "IdeationEventScheduled";

    fn apply(&mut self, event: &IdeationEventEvent) {
        use IdeationEventEvent::*;
        match event {
            IdeationEventScheduled { ideation_event_id, date, .. } => {
                self.id = Some(*ideation_event_id);
                self.date = Some(*date);
            }
            IdeaSubmitted { idea_id, title, .. } => {
                self.ideas.push(*idea_id);
                self.titles.push(name_key(title));
            }
            IdeaPitched { idea_id } => self.pitched.push(*idea_id),
            JuryVerdictGiven { ranking, .. } => self.ranking = Some(ranking.clone()),
            IdeationEventConcluded { .. } => self.concluded = true,
            IdeaAdopted { idea_id, organisation } => self.adoptions.push((*idea_id, organisation.clone())),
            IdeaTakenIntoDoetank { idea_id, doetank_id } => {
                self.taken_into_doetank.push((*idea_id, *doetank_id))
            }
        }
    }
}

impl IdeationEvent {
    fn exists(&self) -> Result<(), DomainError> {
        self.id.map(|_| ()).ok_or(DomainError::NotCreated("ideation event"))
    }

    /// Ideas, pitches and the verdict belong to the day itself; follow-ups come after it.
    fn open(&self) -> Result<(), DomainError> {
        self.exists()?;
        ensure(!self.concluded, Rule::Lifecycle, || "the ideation event is concluded".into())
    }

    /// What happens at the day itself (a pitch, the verdict, its close) happens on that day or
    /// after it: `today` is the date where the day has begun first.
    fn on_the_day(&self, today: NaiveDate) -> Result<(), DomainError> {
        match self.date {
            Some(date) => ensure(today >= date, Rule::Lifecycle, || {
                format!("the ideation day is on {date}: what happens there happens on that day or after")
            }),
            None => Ok(()),
        }
    }

    /// Whether a challenge can have come from one of its ideas: a follow-up of the day, so on
    /// it or after it (`today`: the date where the day has begun first).
    pub fn raises_challenges(&self, today: NaiveDate) -> Result<(), DomainError> {
        self.exists()?;
        self.on_the_day(today)
    }

    fn known_idea(&self, idea_id: IdeaId) -> Result<(), DomainError> {
        ensure(self.ideas.contains(&idea_id), Rule::JuryRanksOwnIdeas, || {
            format!("idea {idea_id} was not submitted to this event")
        })
    }

    pub fn schedule(
        &self,
        id: IdeationEventId,
        name: &str,
        central_question: &str,
        date: NaiveDate,
        venue: &str,
    ) -> Decision<IdeationEventEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("ideation event"));
        }
        required_text("name", name, 200)?;
        required_text("centralQuestion", central_question, 1_000)?;
        required_text("venue", venue, 200)?;
        calendar_date("date", date)?;
        Ok(vec![IdeationEventEvent::IdeationEventScheduled {
            ideation_event_id: id,
            name: name.trim().into(),
            central_question: central_question.trim().into(),
            date,
            venue: venue.trim().into(),
        }])
    }

    pub fn submit_idea(
        &self,
        idea_id: IdeaId,
        title: &str,
        description: &str,
        submitted_by: Option<MemberId>,
    ) -> Decision<IdeationEventEvent> {
        self.open()?;
        ensure(self.ranking.is_none(), Rule::Lifecycle, || "the jury has already given its verdict".into())?;
        if self.ideas.contains(&idea_id) {
            return Err(DomainError::AlreadyExists("idea"));
        }
        required_text("title", title, 200)?;
        required_text("description", description, 10_000)?;
        // A second idea of one title is a submission sent again (a retry without a
        // `commandId`), or one the jury and the follow-ups could not tell apart (until the
        // thirty-first session both were taken).
        ensure(!self.titles.contains(&name_key(title)), Rule::Lifecycle, || {
            format!(
                "an idea titled \"{}\" is already submitted to this day: give it a title of its own",
                title.trim()
            )
        })?;
        Ok(vec![IdeationEventEvent::IdeaSubmitted {
            idea_id,
            title: title.trim().into(),
            description: description.trim().into(),
            submitted_by,
        }])
    }

    /// Pitched on the day, before the jury's verdict: the jury ranks what was pitched to it
    /// (until the thirty-first session an idea could be pitched after the verdict).
    pub fn pitch_idea(&self, idea_id: IdeaId, today: NaiveDate) -> Decision<IdeationEventEvent> {
        self.open()?;
        self.on_the_day(today)?;
        self.known_idea(idea_id)?;
        ensure(self.ranking.is_none(), Rule::Lifecycle, || "the jury has already given its verdict".into())?;
        ensure(!self.pitched.contains(&idea_id), Rule::Lifecycle, || {
            "the idea has already been pitched".into()
        })?;
        Ok(vec![IdeationEventEvent::IdeaPitched { idea_id }])
    }

    /// Rule 8: the jury ranks only ideas submitted to its own event, each once.
    pub fn give_jury_verdict(
        &self,
        ranking: Vec<IdeaId>,
        motivation: &str,
        today: NaiveDate,
    ) -> Decision<IdeationEventEvent> {
        self.open()?;
        self.on_the_day(today)?;
        ensure(self.ranking.is_none(), Rule::Lifecycle, || "the jury has already given its verdict".into())?;
        if ranking.is_empty() {
            return Err(DomainError::invalid("ranking", "must rank at least one idea"));
        }
        for (i, idea) in ranking.iter().enumerate() {
            self.known_idea(*idea)?;
            if ranking[..i].contains(idea) {
                return Err(DomainError::invalid("ranking", "ranks an idea twice"));
            }
        }
        Ok(vec![IdeationEventEvent::JuryVerdictGiven { ranking, motivation: motivation.trim().into() }])
    }

    pub fn conclude(&self, participant_count: u32, today: NaiveDate) -> Decision<IdeationEventEvent> {
        self.open()?;
        people("participantCount", participant_count)?;
        self.on_the_day(today)?;
        Ok(vec![IdeationEventEvent::IdeationEventConcluded { participant_count }])
    }

    /// A follow-up of the day, so on it or after it. An organisation adopts an idea once, however
    /// its name is cased, as the organisation filters match it.
    pub fn adopt_idea(
        &self,
        idea_id: IdeaId,
        organisation: &str,
        today: NaiveDate,
    ) -> Decision<IdeationEventEvent> {
        self.exists()?;
        self.known_idea(idea_id)?;
        let organisation = organisation_name("organisation", organisation)?;
        self.on_the_day(today)?;
        let key = name_key(&organisation);
        ensure(
            !self.adoptions.iter().any(|(idea, by)| *idea == idea_id && name_key(by) == key),
            Rule::Lifecycle,
            || "this organisation already adopted the idea".into(),
        )?;
        Ok(vec![IdeationEventEvent::IdeaAdopted { idea_id, organisation }])
    }

    /// The idea goes on in `doetank`, which must take commands still: a concluded one takes
    /// nothing more up (rule 6). A follow-up of the day, so on it or after it.
    pub fn take_idea_into_doetank(
        &self,
        idea_id: IdeaId,
        doetank: &Doetank,
        today: NaiveDate,
    ) -> Decision<IdeationEventEvent> {
        self.exists()?;
        self.known_idea(idea_id)?;
        self.on_the_day(today)?;
        doetank.active()?;
        let doetank_id = doetank.id.ok_or(DomainError::NotCreated("doetank"))?;
        ensure(!self.taken_into_doetank.contains(&(idea_id, doetank_id)), Rule::Lifecycle, || {
            "the idea is already taken into this doetank".into()
        })?;
        Ok(vec![IdeationEventEvent::IdeaTakenIntoDoetank { idea_id, doetank_id }])
    }
}
