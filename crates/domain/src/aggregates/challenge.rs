//! A practical problem from the work floor that stands for a wider public-sector question.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{ensure, organisation_name, required_text, Decision, DomainError, Rule};
use crate::types::*;

/// Where a challenge came from (seed 001: a commissioner, someone's frustration, a café, an idea).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChallengeOrigin {
    Commissioner { organisation: String },
    OwnFrustration,
    Cafe { cafe_id: CafeId },
    Idea { ideation_event_id: IdeationEventId, idea_id: IdeaId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ChallengeEvent {
    /// A problem from the work floor was put to the network, with where it came from.
    ChallengeRaised {
        challenge_id: ChallengeId,
        title: String,
        description: String,
        raised_by: MemberId,
        origin: ChallengeOrigin,
    },
    /// A member wants to work on the challenge.
    SupportPledged { member_id: MemberId },
    /// An organisation commissions work on the challenge.
    CommissionerFound { organisation: String },
}

domain_event!(ChallengeEvent { ChallengeRaised, SupportPledged, CommissionerFound });

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Challenge {
    pub id: Option<ChallengeId>,
    pub title: String,
    pub supporters: Vec<MemberId>,
    pub commissioner: Option<String>,
}

impl Aggregate for Challenge {
    type Event = ChallengeEvent;
    const STREAM_TYPE: &'static str = "challenge";
    const OPENED_BY: &'static str = "ChallengeRaised";

    fn apply(&mut self, event: &ChallengeEvent) {
        match event {
            ChallengeEvent::ChallengeRaised { challenge_id, title, origin, .. } => {
                self.id = Some(*challenge_id);
                self.title = title.clone();
                if let ChallengeOrigin::Commissioner { organisation } = origin {
                    self.commissioner = Some(organisation.clone());
                }
            }
            ChallengeEvent::SupportPledged { member_id } => self.supporters.push(*member_id),
            ChallengeEvent::CommissionerFound { organisation } => {
                self.commissioner = Some(organisation.clone())
            }
        }
    }
}

impl Challenge {
    fn exists(&self) -> Result<(), DomainError> {
        self.id.map(|_| ()).ok_or(DomainError::NotCreated("challenge"))
    }

    pub fn raise(
        &self,
        challenge_id: ChallengeId,
        title: &str,
        description: &str,
        raised_by: MemberId,
        origin: ChallengeOrigin,
    ) -> Decision<ChallengeEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("challenge"));
        }
        required_text("title", title, 200)?;
        required_text("description", description, 20_000)?;
        let origin = match origin {
            ChallengeOrigin::Commissioner { organisation } => ChallengeOrigin::Commissioner {
                organisation: organisation_name("organisation", &organisation)?,
            },
            other => other,
        };
        Ok(vec![ChallengeEvent::ChallengeRaised {
            challenge_id,
            title: title.trim().to_string(),
            description: description.trim().to_string(),
            raised_by,
            origin,
        }])
    }

    pub fn pledge_support(&self, member_id: MemberId) -> Decision<ChallengeEvent> {
        self.exists()?;
        ensure(!self.supporters.contains(&member_id), Rule::Lifecycle, || {
            "this member already pledged support".into()
        })?;
        Ok(vec![ChallengeEvent::SupportPledged { member_id }])
    }

    pub fn find_commissioner(&self, organisation: &str) -> Decision<ChallengeEvent> {
        self.exists()?;
        let organisation = organisation_name("organisation", organisation)?;
        ensure(self.commissioner.is_none(), Rule::Lifecycle, || {
            "the challenge already has a commissioner".into()
        })?;
        Ok(vec![ChallengeEvent::CommissionerFound { organisation }])
    }
}
