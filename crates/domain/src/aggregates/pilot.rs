//! A Right to Challenge pilot (seed 002): a hindering rule set aside for a bounded period in
//! favour of an alternative agreed beforehand.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{calendar_date, ensure, required_text, Decision, DomainError, Rule};
use crate::types::*;

/// What the applicant does (seed 002: "beleids- of uitvoeringsambtenaar ... in het primaire proces").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApplicantFunction {
    Policy,
    Operational,
    Management,
    Support,
    ExternalAdviser,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Applicant {
    pub member_id: MemberId,
    pub function: ApplicantFunction,
    pub in_primary_process: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PilotOutcome {
    RuleChanged,
    RuleRestored,
    RuleAbolished,
    Inconclusive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum PilotEvent {
    /// A civil servant in the primary process proposed to suspend a hindering rule (Right to Challenge, rule 7).
    PilotProposed {
        pilot_id: PilotId,
        hindering_rule: String,
        alternative: String,
        expected_gain: String,
        applicant: Applicant,
    },
    /// Those responsible for the rule allowed the pilot.
    MandateGranted { granted_by: String },
    /// The rule is suspended for a period with an end, after the mandate (rule 7).
    RuleSuspended { from: NaiveDate, until: NaiveDate },
    /// What the suspension showed.
    PilotEvaluated { findings: String },
    /// The pilot ended, after its evaluation (rule 7): the rule changed, was restored, or otherwise.
    PilotConcluded { outcome: PilotOutcome, note: String },
}

domain_event!(PilotEvent { PilotProposed, MandateGranted, RuleSuspended, PilotEvaluated, PilotConcluded });

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pilot {
    pub id: Option<PilotId>,
    pub mandate: Option<String>,
    pub suspension: Option<(NaiveDate, NaiveDate)>,
    pub evaluated: bool,
    pub outcome: Option<PilotOutcome>,
}

impl Aggregate for Pilot {
    type Event = PilotEvent;
    const STREAM_TYPE: &'static str = "pilot";
    const OPENED_BY: &'static str = "PilotProposed";

    fn apply(&mut self, event: &PilotEvent) {
        match event {
            PilotEvent::PilotProposed { pilot_id, .. } => self.id = Some(*pilot_id),
            PilotEvent::MandateGranted { granted_by } => self.mandate = Some(granted_by.clone()),
            PilotEvent::RuleSuspended { from, until } => self.suspension = Some((*from, *until)),
            PilotEvent::PilotEvaluated { .. } => self.evaluated = true,
            PilotEvent::PilotConcluded { outcome, .. } => self.outcome = Some(*outcome),
        }
    }
}

impl Pilot {
    fn active(&self) -> Result<(), DomainError> {
        if self.id.is_none() {
            return Err(DomainError::NotCreated("pilot"));
        }
        ensure(self.outcome.is_none(), Rule::Lifecycle, || "the pilot is concluded".into())
    }

    /// Rule 7: the applicant is a civil servant (a member of the public sector, whatever
    /// function they state) in a policy or operational function in the primary process.
    pub fn propose(
        &self,
        pilot_id: PilotId,
        hindering_rule: &str,
        alternative: &str,
        expected_gain: &str,
        applicant: Applicant,
        applicant_sector: Sector,
    ) -> Decision<PilotEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("pilot"));
        }
        required_text("hinderingRule", hindering_rule, 2_000)?;
        required_text("alternative", alternative, 5_000)?;
        required_text("expectedGain", expected_gain, 5_000)?;
        ensure(
            matches!(applicant.function, ApplicantFunction::Policy | ApplicantFunction::Operational)
                && applicant.in_primary_process,
            Rule::ApplicantEligibility,
            || "applicants are policy or operational civil servants working in the primary process".into(),
        )?;
        ensure(applicant_sector == Sector::Public, Rule::ApplicantEligibility, || {
            "applicants are civil servants: the applicant is registered outside the public sector".into()
        })?;
        Ok(vec![PilotEvent::PilotProposed {
            pilot_id,
            hindering_rule: hindering_rule.trim().into(),
            alternative: alternative.trim().into(),
            expected_gain: expected_gain.trim().into(),
            applicant,
        }])
    }

    pub fn grant_mandate(&self, granted_by: &str) -> Decision<PilotEvent> {
        self.active()?;
        required_text("grantedBy", granted_by, 200)?;
        ensure(self.mandate.is_none(), Rule::Lifecycle, || "the mandate is already granted".into())?;
        Ok(vec![PilotEvent::MandateGranted { granted_by: granted_by.trim().into() }])
    }

    /// Rule 7: only with a mandate, and only for a period with an end.
    pub fn suspend_rule(&self, from: NaiveDate, until: Option<NaiveDate>) -> Decision<PilotEvent> {
        self.active()?;
        ensure(self.mandate.is_some(), Rule::MandateBeforeSuspension, || {
            "the rule can be suspended only after a mandate is granted".into()
        })?;
        let until = until
            .ok_or_else(|| DomainError::rule(Rule::SuspensionHasEnd, "a suspension needs an end date"))?;
        calendar_date("from", from)?;
        calendar_date("until", until)?;
        ensure(until > from, Rule::SuspensionHasEnd, || "the suspension must end after it starts".into())?;
        ensure(self.suspension.is_none(), Rule::Lifecycle, || "the rule is already suspended".into())?;
        Ok(vec![PilotEvent::RuleSuspended { from, until }])
    }

    /// Evaluated once its rule has been set aside: on the suspension's first day or after
    /// (`today`: the date where the day has begun first), not while the pilot has yet to start.
    pub fn evaluate(&self, findings: &str, today: NaiveDate) -> Decision<PilotEvent> {
        self.active()?;
        required_text("findings", findings, 20_000)?;
        let Some((from, _)) = self.suspension else {
            return Err(DomainError::rule(
                Rule::Lifecycle,
                "a pilot is evaluated after its rule was suspended",
            ));
        };
        ensure(today >= from, Rule::Lifecycle, || {
            format!("the rule is set aside from {from}: the pilot is evaluated from that day on")
        })?;
        ensure(!self.evaluated, Rule::Lifecycle, || "the pilot is already evaluated".into())?;
        Ok(vec![PilotEvent::PilotEvaluated { findings: findings.trim().into() }])
    }

    /// Rule 7: concluded only after evaluation.
    pub fn conclude(&self, outcome: PilotOutcome, note: &str) -> Decision<PilotEvent> {
        self.active()?;
        ensure(self.evaluated, Rule::EvaluationBeforeConclusion, || {
            "a pilot is concluded only after it is evaluated".into()
        })?;
        Ok(vec![PilotEvent::PilotConcluded { outcome, note: note.trim().into() }])
    }
}
