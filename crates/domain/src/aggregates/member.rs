//! A person in the network. Events hold no personal data (names, contact details live outside the
//! log, so that `MemberErased` can remove them for good); the pseudonymous id stays in history.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{ensure, keywords, organisation_name, Decision, DomainError, Rule};
use crate::types::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum MemberEvent {
    /// A civil servant, adviser or academic joined the network. Name and e-mail are personal data kept outside the log.
    MemberRegistered { member_id: MemberId, organisation: String, sector: Sector, expertise: Vec<String> },
    /// The member's organisation or expertise changed.
    MemberProfileUpdated { organisation: String, expertise: Vec<String> },
    /// The member joined the support committee: senior figures who open doors at the administrative top (seed 000).
    SupportCommitteeAppointed {},
    /// The member's personal data was removed for good; the pseudonymous id stays in history.
    MemberErased {},
}

domain_event!(MemberEvent {
    MemberRegistered,
    MemberProfileUpdated,
    SupportCommitteeAppointed,
    MemberErased
});

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Member {
    pub id: Option<MemberId>,
    pub organisation: String,
    pub sector: Option<Sector>,
    pub expertise: Vec<String>,
    pub on_support_committee: bool,
    pub erased: bool,
}

impl Aggregate for Member {
    type Event = MemberEvent;
    const STREAM_TYPE: &'static str = "member";
    const OPENED_BY: &'static str = "MemberRegistered";

    fn apply(&mut self, event: &MemberEvent) {
        match event {
            MemberEvent::MemberRegistered { member_id, organisation, sector, expertise } => {
                self.id = Some(*member_id);
                self.organisation = organisation.clone();
                self.sector = Some(*sector);
                self.expertise = expertise.clone();
            }
            MemberEvent::MemberProfileUpdated { organisation, expertise } => {
                self.organisation = organisation.clone();
                self.expertise = expertise.clone();
            }
            MemberEvent::SupportCommitteeAppointed {} => self.on_support_committee = true,
            MemberEvent::MemberErased {} => self.erased = true,
        }
    }
}

impl Member {
    fn active(&self) -> Result<(), DomainError> {
        if self.id.is_none() {
            return Err(DomainError::NotCreated("member"));
        }
        ensure(!self.erased, Rule::ErasedIsFinal, || "the member has been erased".into())
    }

    /// Whether the member may still send commands, under whatever role: an erased member has
    /// left the network for good, and what they did before stays under their pseudonymous id.
    pub fn may_act(&self) -> Result<(), DomainError> {
        ensure(!self.erased, Rule::ErasedIsFinal, || {
            "the member has been erased and takes no further part".into()
        })
    }

    /// The member's sector, as doetanks need it for rule 2.
    pub fn innovator(&self) -> Result<Innovator, DomainError> {
        self.active()?;
        Ok(Innovator {
            member_id: self.id.ok_or(DomainError::NotCreated("member"))?,
            sector: self.sector.unwrap_or(Sector::Public),
        })
    }

    pub fn register(
        &self,
        member_id: MemberId,
        organisation: &str,
        sector: Sector,
        expertise: Vec<String>,
    ) -> Decision<MemberEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("member"));
        }
        Ok(vec![MemberEvent::MemberRegistered {
            member_id,
            organisation: organisation_name("organisation", organisation)?,
            sector,
            expertise: keywords("expertise", expertise)?,
        }])
    }

    pub fn update_profile(
        &self,
        organisation: Option<&str>,
        expertise: Option<Vec<String>>,
    ) -> Decision<MemberEvent> {
        self.active()?;
        let organisation = match organisation {
            Some(o) => organisation_name("organisation", o)?,
            None => self.organisation.clone(),
        };
        let expertise = match expertise {
            Some(given) => keywords("expertise", given)?,
            None => self.expertise.clone(),
        };
        if organisation == self.organisation && expertise == self.expertise {
            return Ok(vec![]);
        }
        Ok(vec![MemberEvent::MemberProfileUpdated { organisation, expertise }])
    }

    pub fn appoint_to_support_committee(&self) -> Decision<MemberEvent> {
        self.active()?;
        ensure(!self.on_support_committee, Rule::Lifecycle, || "already on the support committee".into())?;
        Ok(vec![MemberEvent::SupportCommitteeAppointed {}])
    }

    pub fn erase(&self) -> Decision<MemberEvent> {
        self.active()?;
        Ok(vec![MemberEvent::MemberErased {}])
    }
}
