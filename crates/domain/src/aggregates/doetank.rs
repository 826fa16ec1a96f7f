//! The doetank: a team of 3–9 innovators taking one challenge through six phases.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{
    calendar_date, ensure, keywords, name_key, organisation_name, required_text, Decision, DomainError, Rule,
};
use crate::types::*;

pub const MIN_INNOVATORS: usize = 3;
pub const MAX_INNOVATORS: usize = 9;
/// The most members a kick-off lists: the team and guests, never a whole network's worth
/// (each is looked up before the kick-off is recorded).
pub const MAX_ATTENDEES: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum DoetankEvent {
    /// A doetank was formed around a challenge by its lead and founding members (informal until made public, rule 5).
    DoetankFormed {
        doetank_id: DoetankId,
        name: String,
        challenge_id: ChallengeId,
        lead: Innovator,
        founding_members: Vec<Innovator>,
        at: DateTime<Utc>,
    },
    /// An innovator joined the doetank (3 to 9, rule 1; external advisers stay fewer, rule 2).
    MemberJoined { member: Innovator, at: DateTime<Utc> },
    /// A member left the doetank.
    MemberLeft { member_id: MemberId, at: DateTime<Utc> },
    /// Another member of the doetank leads it (rule 3).
    LeadChanged { member_id: MemberId },
    /// A coach, who is not a member of the doetank (rule 3), guides it.
    CoachAssigned { coach_id: MemberId },
    /// The coach stopped guiding the doetank.
    CoachReleased { coach_id: MemberId },
    /// An organisation commissions the doetank's work.
    CommissionerAttached { organisation: String },
    /// The doetank's kick-off took place.
    KickoffHeld { date: NaiveDate, venue: String, attendees: Vec<MemberId> },
    /// The doetank began a phase of the plan: discover, research, develop, try out, learn, hand over.
    PhaseStarted { phase: Phase, at: DateTime<Utc> },
    /// The doetank completed a phase, in order and once each, with at least 3 members and a coach (rule 4).
    PhaseCompleted { phase: Phase, summary: String, at: DateTime<Utc> },
    /// The doetank asked an expert about a topic.
    ExpertConsulted { topic: String, expert: String },
    /// What worked, what did not, or an insight, recorded by the team in a phase. Version 1 had one `text`; it is read as version 2 (its first sentence the title, the whole the body).
    LessonRecorded {
        lesson_id: LessonId,
        recorded_by: MemberId,
        phase: Phase,
        kind: LessonKind,
        title: String,
        body: String,
        #[serde(default)]
        tags: Vec<String>,
    },
    /// The doetank told the outside world of its progress.
    UpdatePublished { channel: Channel, title: String, link: String },
    /// The doetank handed its result over to an organisation that carries it on.
    BusinessCaseHandedOver { organisation: String, summary: String },
    /// The doetank came out from under the radar: from here on everyone sees it and its whole history (rule 5).
    DoetankMadePublic {},
    /// The doetank ended, completed or discontinued, with a reflection; it takes no further commands (rule 6).
    DoetankConcluded { outcome: DoetankOutcome, reflection: String, at: DateTime<Utc> },
}

domain_event!(DoetankEvent {
    DoetankFormed,
    MemberJoined,
    MemberLeft,
    LeadChanged,
    CoachAssigned,
    CoachReleased,
    CommissionerAttached,
    KickoffHeld,
    PhaseStarted,
    PhaseCompleted,
    ExpertConsulted,
    LessonRecorded,
    UpdatePublished,
    BusinessCaseHandedOver,
    DoetankMadePublic,
    DoetankConcluded,
});

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doetank {
    pub id: Option<DoetankId>,
    pub name: String,
    pub challenge_id: Option<ChallengeId>,
    pub lead: Option<MemberId>,
    /// The innovators, lead included, in the order they joined.
    pub members: Vec<Innovator>,
    pub coach: Option<MemberId>,
    pub commissioner: Option<String>,
    pub current_phase: Option<Phase>,
    pub completed_phases: Vec<Phase>,
    pub lessons: Vec<LessonId>,
    pub is_public: bool,
    pub outcome: Option<DoetankOutcome>,
    /// The latest dated fact of its story (formed, joined, left, a phase started or completed)
    /// and what it was: what comes after it cannot have happened before it.
    pub last_dated: Option<(DateTime<Utc>, DatedFact)>,
    /// When it was formed: its kick-off is held that day or later.
    pub formed_at: Option<DateTime<Utc>>,
    /// The day of its kick-off, once held: its first meeting, held once (seed 001).
    pub kicked_off: Option<NaiveDate>,
}

/// What a lesson says; its phase defaults to the doetank's current phase.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLesson {
    pub lesson_id: LessonId,
    pub recorded_by: MemberId,
    pub phase: Option<Phase>,
    pub kind: LessonKind,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

impl Aggregate for Doetank {
    type Event = DoetankEvent;
    const STREAM_TYPE: &'static str = "doetank";
    const OPENED_BY: &'static str = "DoetankFormed";

    fn apply(&mut self, event: &DoetankEvent) {
        use DoetankEvent::*;
        if let Some((at, what)) = dated(event) {
            if self.last_dated.as_ref().is_none_or(|(last, _)| at >= *last) {
                self.last_dated = Some((at, what));
            }
        }
        match event {
            DoetankFormed { doetank_id, name, challenge_id, lead, founding_members, at } => {
                self.id = Some(*doetank_id);
                self.formed_at = Some(*at);
                self.name = name.clone();
                self.challenge_id = Some(*challenge_id);
                self.lead = Some(lead.member_id);
                self.members = std::iter::once(*lead)
                    .chain(founding_members.iter().copied().filter(|m| m.member_id != lead.member_id))
                    .collect();
            }
            MemberJoined { member, .. } => self.members.push(*member),
            MemberLeft { member_id, .. } => self.members.retain(|m| m.member_id != *member_id),
            LeadChanged { member_id } => self.lead = Some(*member_id),
            CoachAssigned { coach_id } => self.coach = Some(*coach_id),
            CoachReleased { .. } => self.coach = None,
            CommissionerAttached { organisation } => self.commissioner = Some(organisation.clone()),
            PhaseStarted { phase, .. } => self.current_phase = Some(*phase),
            PhaseCompleted { phase, .. } => self.completed_phases.push(*phase),
            LessonRecorded { lesson_id, .. } => self.lessons.push(*lesson_id),
            DoetankMadePublic {} => self.is_public = true,
            DoetankConcluded { outcome, .. } => self.outcome = Some(*outcome),
            KickoffHeld { date, .. } => self.kicked_off = self.kicked_off.or(Some(*date)),
            ExpertConsulted { .. } | UpdatePublished { .. } | BusinessCaseHandedOver { .. } => {}
        }
    }
}

/// A dated fact of a doetank's story; told in words only when a refusal names it, so applying
/// an event allocates nothing for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatedFact {
    Formed,
    Joined,
    Left,
    Started(Phase),
    Completed(Phase),
    Concluded,
}

impl std::fmt::Display for DatedFact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatedFact::Formed => f.write_str("it was formed"),
            DatedFact::Joined => f.write_str("a member joined"),
            DatedFact::Left => f.write_str("a member left"),
            DatedFact::Started(phase) => write!(f, "{} started", phase.as_str()),
            DatedFact::Completed(phase) => write!(f, "{} was completed", phase.as_str()),
            DatedFact::Concluded => f.write_str("it was concluded"),
        }
    }
}

/// When a dated event says it happened, and what it was.
fn dated(event: &DoetankEvent) -> Option<(DateTime<Utc>, DatedFact)> {
    use DoetankEvent::*;
    match event {
        DoetankFormed { at, .. } => Some((*at, DatedFact::Formed)),
        MemberJoined { at, .. } => Some((*at, DatedFact::Joined)),
        MemberLeft { at, .. } => Some((*at, DatedFact::Left)),
        PhaseStarted { phase, at } => Some((*at, DatedFact::Started(*phase))),
        PhaseCompleted { phase, at, .. } => Some((*at, DatedFact::Completed(*phase))),
        DoetankConcluded { at, .. } => Some((*at, DatedFact::Concluded)),
        _ => None,
    }
}

/// An update's link as readers' browsers open it: an absolute http(s) URL with a host, kept in
/// its normal form (`HTTPS://Example.org` as `https://example.org/`, a space in a path as
/// `%20`). Until the thirtieth session only its first characters were looked at, so
/// `https://` alone or a host with a space were kept, and `HTTPS://` refused.
fn web_link(link: &str) -> Result<String, DomainError> {
    let parsed = url::Url::parse(link.trim())
        .map_err(|e| DomainError::invalid("link", format!("must be an http(s) URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(DomainError::invalid("link", "must be an http(s) URL with a host"));
    }
    Ok(parsed.to_string())
}

/// Rule 2: external advisers stay fewer than the public-sector members.
fn externals_stay_minority(members: &[Innovator]) -> Result<(), DomainError> {
    let public = members.iter().filter(|m| m.sector == Sector::Public).count();
    let external = members.iter().filter(|m| m.sector == Sector::ExternalAdviser).count();
    ensure(external < public, Rule::ExternalsNotPrimary, || {
        let advisers = if external == 1 { "external adviser" } else { "external advisers" };
        let members = if public == 1 { "public-sector member" } else { "public-sector members" };
        format!("{external} {advisers} would not be fewer than {public} {members}")
    })
}

impl Doetank {
    pub fn is_member(&self, member_id: MemberId) -> bool {
        self.members.iter().any(|m| m.member_id == member_id)
    }

    /// A doetank's story moves forward: a fact recorded after the fact (`at`) may not say it
    /// happened before the latest dated one (a phase completed before it started made its
    /// duration negative, and the network's median with it).
    fn not_before_the_story(&self, at: DateTime<Utc>) -> Result<(), DomainError> {
        calendar_date("at", at.date_naive())?;
        match &self.last_dated {
            Some((last, what)) if at < *last => Err(DomainError::invalid(
                "at",
                format!(
                    "{} is before {what} ({}): a doetank's story moves forward",
                    at.to_rfc3339(),
                    last.to_rfc3339()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Every command but forming needs an existing, unconcluded doetank (rule 6); so does a
    /// command of another stream that acts on it (an idea taken into it).
    pub fn active(&self) -> Result<(), DomainError> {
        if self.id.is_none() {
            return Err(DomainError::NotCreated("doetank"));
        }
        ensure(self.outcome.is_none(), Rule::ConcludedIsFinal, || {
            "the doetank is concluded and takes no further commands".into()
        })
    }

    pub fn form(
        &self,
        doetank_id: DoetankId,
        name: &str,
        challenge_id: ChallengeId,
        lead: Innovator,
        founding_members: Vec<Innovator>,
        at: DateTime<Utc>,
    ) -> Decision<DoetankEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("doetank"));
        }
        required_text("name", name, 200)?;
        self.not_before_the_story(at)?;
        let mut founding: Vec<Innovator> = Vec::new();
        for m in founding_members {
            if m.member_id != lead.member_id && !founding.iter().any(|f| f.member_id == m.member_id) {
                founding.push(m);
            }
        }
        let team: Vec<Innovator> = std::iter::once(lead).chain(founding.iter().copied()).collect();
        ensure(team.len() <= MAX_INNOVATORS, Rule::DoetankSize, || {
            format!("{} innovators; a doetank has at most {MAX_INNOVATORS}", team.len())
        })?;
        externals_stay_minority(&team)?;
        Ok(vec![
            DoetankEvent::DoetankFormed {
                doetank_id,
                name: name.trim().to_string(),
                challenge_id,
                lead,
                founding_members: founding,
                at,
            },
            DoetankEvent::PhaseStarted { phase: Phase::Discover, at },
        ])
    }

    pub fn join(&self, member: Innovator, at: DateTime<Utc>) -> Decision<DoetankEvent> {
        self.active()?;
        self.not_before_the_story(at)?;
        if self.is_member(member.member_id) {
            return Err(DomainError::AlreadyExists("membership"));
        }
        ensure(self.coach != Some(member.member_id), Rule::CoachNotMember, || {
            "the coach cannot join the doetank they coach".into()
        })?;
        ensure(self.members.len() < MAX_INNOVATORS, Rule::DoetankSize, || {
            format!("the doetank already has {MAX_INNOVATORS} innovators")
        })?;
        let mut team = self.members.clone();
        team.push(member);
        externals_stay_minority(&team)?;
        Ok(vec![DoetankEvent::MemberJoined { member, at }])
    }

    pub fn leave(&self, member_id: MemberId, at: DateTime<Utc>) -> Decision<DoetankEvent> {
        self.active()?;
        self.not_before_the_story(at)?;
        if !self.is_member(member_id) {
            return Err(DomainError::invalid("memberId", "is not a member of this doetank"));
        }
        ensure(self.lead != Some(member_id), Rule::LeadIsMember, || {
            "the lead cannot leave; hand the lead to another member first".into()
        })?;
        let team: Vec<Innovator> =
            self.members.iter().copied().filter(|m| m.member_id != member_id).collect();
        externals_stay_minority(&team)?;
        Ok(vec![DoetankEvent::MemberLeft { member_id, at }])
    }

    pub fn change_lead(&self, member_id: MemberId) -> Decision<DoetankEvent> {
        self.active()?;
        ensure(self.is_member(member_id), Rule::LeadIsMember, || {
            "the new lead must be a member of the doetank".into()
        })?;
        if self.lead == Some(member_id) {
            return Ok(vec![]);
        }
        Ok(vec![DoetankEvent::LeadChanged { member_id }])
    }

    pub fn assign_coach(&self, coach_id: MemberId) -> Decision<DoetankEvent> {
        self.active()?;
        ensure(!self.is_member(coach_id), Rule::CoachNotMember, || {
            "the coach is not a member of the doetank they coach".into()
        })?;
        match self.coach {
            Some(current) if current == coach_id => Ok(vec![]),
            Some(_) => {
                Err(DomainError::rule(Rule::Lifecycle, "the doetank already has a coach; release them first"))
            }
            None => Ok(vec![DoetankEvent::CoachAssigned { coach_id }]),
        }
    }

    pub fn release_coach(&self) -> Decision<DoetankEvent> {
        self.active()?;
        match self.coach {
            Some(coach_id) => Ok(vec![DoetankEvent::CoachReleased { coach_id }]),
            None => Err(DomainError::rule(Rule::Lifecycle, "the doetank has no coach to release")),
        }
    }

    /// The commissioner it has already (whatever the name's case and spacing) is no change, as
    /// the lead or coach it has already is none (until the thirty-first session each repeat
    /// wrote another event).
    pub fn attach_commissioner(&self, organisation: &str) -> Decision<DoetankEvent> {
        self.active()?;
        let organisation = organisation_name("organisation", organisation)?;
        if self.commissioner.as_deref().is_some_and(|current| name_key(current) == name_key(&organisation)) {
            return Ok(vec![]);
        }
        Ok(vec![DoetankEvent::CommissionerAttached { organisation }])
    }

    /// A kick-off's attendees as the log keeps them: each once, in the order given, at most
    /// [`MAX_ATTENDEES`]. The API asks it before looking each attendee up.
    pub fn kickoff_attendees(attendees: Vec<MemberId>) -> Result<Vec<MemberId>, DomainError> {
        let mut once: Vec<MemberId> = Vec::with_capacity(attendees.len().min(MAX_ATTENDEES));
        for attendee in attendees {
            if !once.contains(&attendee) {
                if once.len() == MAX_ATTENDEES {
                    return Err(DomainError::invalid(
                        "attendeeIds",
                        format!("must name at most {MAX_ATTENDEES} members"),
                    ));
                }
                once.push(attendee);
            }
        }
        Ok(once)
    }

    /// A kick-off is recorded once held: on `today` (the date where the day has begun first)
    /// or before, and on or after the day the doetank was formed. It is the doetank's first
    /// meeting ("de eerste keer bij elkaar komen", seed 001), so there is one.
    pub fn hold_kickoff(
        &self,
        date: NaiveDate,
        venue: &str,
        attendees: Vec<MemberId>,
        today: NaiveDate,
    ) -> Decision<DoetankEvent> {
        if date > today {
            let message = format!("{date} is in the future: a kick-off is recorded once it is held");
            return Err(DomainError::invalid("date", message));
        }
        self.active()?;
        if let Some(held) = self.kicked_off {
            return Err(DomainError::rule(
                Rule::Lifecycle,
                format!("the kick-off was held on {held}: it is the doetank's first meeting, held once"),
            ));
        }
        let attendees = Self::kickoff_attendees(attendees)?;
        calendar_date("date", date)?;
        if let Some(formed) = self.formed_at.filter(|formed| date < formed.date_naive()) {
            return Err(DomainError::invalid(
                "date",
                format!(
                    "{date} is before the doetank was formed ({}): its kick-off comes after",
                    formed.date_naive()
                ),
            ));
        }
        required_text("venue", venue, 200)?;
        Ok(vec![DoetankEvent::KickoffHeld { date, venue: venue.trim().to_string(), attendees }])
    }

    /// Completes the current phase and starts the next (rule 4).
    pub fn complete_phase(&self, phase: Phase, summary: &str, at: DateTime<Utc>) -> Decision<DoetankEvent> {
        self.active()?;
        self.not_before_the_story(at)?;
        required_text("summary", summary, 10_000)?;
        ensure(!self.completed_phases.contains(&phase), Rule::PhaseOrder, || {
            format!("{} is already completed", phase.as_str())
        })?;
        ensure(self.current_phase == Some(phase), Rule::PhaseOrder, || {
            format!(
                "{} cannot be completed while the doetank is in {}",
                phase.as_str(),
                self.current_phase.map_or("no phase", Phase::as_str)
            )
        })?;
        ensure(
            self.members.len() >= MIN_INNOVATORS && self.coach.is_some(),
            Rule::PhaseNeedsTeamAndCoach,
            || {
                format!(
                    "a phase completes only with at least {MIN_INNOVATORS} members and a coach (has {} members, {})",
                    self.members.len(),
                    if self.coach.is_some() { "a coach" } else { "no coach" }
                )
            },
        )?;
        let mut events =
            vec![DoetankEvent::PhaseCompleted { phase, summary: summary.trim().to_string(), at }];
        if let Some(next) = phase.next() {
            events.push(DoetankEvent::PhaseStarted { phase: next, at });
        }
        Ok(events)
    }

    pub fn consult_expert(&self, topic: &str, expert: &str) -> Decision<DoetankEvent> {
        self.active()?;
        required_text("topic", topic, 200)?;
        required_text("expert", expert, 200)?;
        Ok(vec![DoetankEvent::ExpertConsulted {
            topic: topic.trim().to_string(),
            expert: expert.trim().to_string(),
        }])
    }

    pub fn record_lesson(&self, lesson: NewLesson) -> Decision<DoetankEvent> {
        self.active()?;
        ensure(
            self.is_member(lesson.recorded_by) || self.coach == Some(lesson.recorded_by),
            Rule::LessonByTeam,
            || "lessons are recorded by the doetank's members or its coach".into(),
        )?;
        required_text("title", &lesson.title, 200)?;
        required_text("body", &lesson.body, 20_000)?;
        let current = self.current_phase.unwrap_or(Phase::Discover);
        let phase = lesson.phase.unwrap_or(current);
        if phase > current {
            return Err(DomainError::invalid(
                "phase",
                format!("the doetank has not reached {} yet", phase.as_str()),
            ));
        }
        if self.lessons.contains(&lesson.lesson_id) {
            return Err(DomainError::AlreadyExists("lesson"));
        }
        let tags = keywords("tags", lesson.tags.into_iter().map(|tag| tag.to_lowercase()).collect())?;
        Ok(vec![DoetankEvent::LessonRecorded {
            lesson_id: lesson.lesson_id,
            recorded_by: lesson.recorded_by,
            phase,
            kind: lesson.kind,
            title: lesson.title.trim().to_string(),
            body: lesson.body.trim().to_string(),
            tags,
        }])
    }

    pub fn publish_update(&self, channel: Channel, title: &str, link: &str) -> Decision<DoetankEvent> {
        self.active()?;
        required_text("title", title, 200)?;
        required_text("link", link, 2_000)?;
        Ok(vec![DoetankEvent::UpdatePublished {
            channel,
            title: title.trim().to_string(),
            link: web_link(link)?,
        }])
    }

    /// The business case is the product of the last phase, so hand-over starts there.
    pub fn hand_over_business_case(&self, organisation: &str, summary: &str) -> Decision<DoetankEvent> {
        self.active()?;
        let organisation = organisation_name("organisation", organisation)?;
        required_text("summary", summary, 10_000)?;
        ensure(self.current_phase == Some(Phase::HandOver), Rule::PhaseOrder, || {
            "a business case is handed over in the HAND_OVER phase".into()
        })?;
        Ok(vec![DoetankEvent::BusinessCaseHandedOver { organisation, summary: summary.trim().to_string() }])
    }

    /// Rule 5: a doetank works under the radar until it is made public, once.
    pub fn make_public(&self) -> Decision<DoetankEvent> {
        self.active()?;
        ensure(!self.is_public, Rule::InformalUntilPublic, || "the doetank is already public".into())?;
        Ok(vec![DoetankEvent::DoetankMadePublic {}])
    }

    pub fn conclude(
        &self,
        outcome: DoetankOutcome,
        reflection: &str,
        at: DateTime<Utc>,
    ) -> Decision<DoetankEvent> {
        self.active()?;
        self.not_before_the_story(at)?;
        required_text("reflection", reflection, 20_000)?;
        if outcome == DoetankOutcome::Completed {
            ensure(self.completed_phases.contains(&Phase::HandOver), Rule::PhaseOrder, || {
                "a doetank completes only after its HAND_OVER phase; otherwise it is discontinued".into()
            })?;
        }
        Ok(vec![DoetankEvent::DoetankConcluded { outcome, reflection: reflection.trim().to_string(), at }])
    }
}
