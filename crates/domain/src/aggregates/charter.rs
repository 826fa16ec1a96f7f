//! The charter for an innovative government: published once, signed by people and organisations.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{
    ensure, keywords, name_key, organisation_name, required_text, Decision, DomainError, Rule,
};
use crate::types::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Signatory {
    Member { member_id: MemberId },
    Organisation { name: String },
}

impl Signatory {
    /// Organisations are the same signatory whatever the case or spacing of their name.
    fn key(&self) -> String {
        match self {
            Signatory::Member { member_id } => format!("member:{member_id}"),
            // One-spaced too: a signature the log kept before names were (a space typed twice)
            // is the same signatory as the name kept now.
            Signatory::Organisation { name } => format!("organisation:{}", name_key(name)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum CharterEvent {
    /// A charter that people and organisations sign was published by its initiators.
    CharterPublished { charter_id: CharterId, title: String, text: String, initiators: Vec<String> },
    /// A member or an organisation signed the charter, once each (rule 8).
    CharterSigned { signatory: Signatory },
}

domain_event!(CharterEvent { CharterPublished, CharterSigned });

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Charter {
    pub id: Option<CharterId>,
    pub signatories: Vec<Signatory>,
}

impl Aggregate for Charter {
    type Event = CharterEvent;
    const STREAM_TYPE: &'static str = "charter";
    const OPENED_BY: &'static str = "CharterPublished";

    fn apply(&mut self, event: &CharterEvent) {
        match event {
            CharterEvent::CharterPublished { charter_id, .. } => self.id = Some(*charter_id),
            CharterEvent::CharterSigned { signatory } => self.signatories.push(signatory.clone()),
        }
    }
}

impl Charter {
    pub fn publish(
        &self,
        charter_id: CharterId,
        title: &str,
        text: &str,
        initiators: Vec<String>,
    ) -> Decision<CharterEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("charter"));
        }
        required_text("title", title, 200)?;
        required_text("text", text, 50_000)?;
        Ok(vec![CharterEvent::CharterPublished {
            charter_id,
            title: title.trim().into(),
            text: text.trim().into(),
            initiators: keywords("initiators", initiators)?,
        }])
    }

    /// Rule 8: a signatory signs once.
    pub fn sign(&self, signatory: Signatory) -> Decision<CharterEvent> {
        if self.id.is_none() {
            return Err(DomainError::NotCreated("charter"));
        }
        let signatory = match signatory {
            Signatory::Organisation { name } => {
                Signatory::Organisation { name: organisation_name("organisation", &name)? }
            }
            member => member,
        };
        let key = signatory.key();
        ensure(!self.signatories.iter().any(|s| s.key() == key), Rule::SignOnce, || {
            "this signatory has already signed the charter".into()
        })?;
        Ok(vec![CharterEvent::CharterSigned { signatory }])
    }
}
