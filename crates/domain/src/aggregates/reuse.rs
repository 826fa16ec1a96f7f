//! Knowledge reuse (the Lanceerplatform): an organisation reuses a doetank's results and pledges
//! to pass its own knowledge on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::domain_event;
use crate::error::{ensure, organisation_name, required_text, Decision, DomainError, Rule};
use crate::types::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReuseSource {
    Doetank { doetank_id: DoetankId },
    Lesson { doetank_id: DoetankId, lesson_id: LessonId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum KnowledgeReuseEvent {
    /// Another organisation reuses a doetank's results or one lesson, and pledges something back.
    KnowledgeReused { reuse_id: ReuseId, organisation: String, source: ReuseSource, pledge: String },
    /// The reusing organisation did what it pledged.
    PledgeFulfilled { note: String },
}

domain_event!(KnowledgeReuseEvent { KnowledgeReused, PledgeFulfilled });

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnowledgeReuse {
    pub id: Option<ReuseId>,
    pub fulfilled: bool,
}

impl Aggregate for KnowledgeReuse {
    type Event = KnowledgeReuseEvent;
    const STREAM_TYPE: &'static str = "reuse";
    const OPENED_BY: &'static str = "KnowledgeReused";

    fn apply(&mut self, event: &KnowledgeReuseEvent) {
        match event {
            KnowledgeReuseEvent::KnowledgeReused { reuse_id, .. } => self.id = Some(*reuse_id),
            KnowledgeReuseEvent::PledgeFulfilled { .. } => self.fulfilled = true,
        }
    }
}

impl KnowledgeReuse {
    pub fn reuse(
        &self,
        reuse_id: ReuseId,
        organisation: &str,
        source: ReuseSource,
        pledge: &str,
    ) -> Decision<KnowledgeReuseEvent> {
        if self.id.is_some() {
            return Err(DomainError::AlreadyExists("reuse"));
        }
        let organisation = organisation_name("organisation", organisation)?;
        required_text("pledge", pledge, 5_000)?;
        Ok(vec![KnowledgeReuseEvent::KnowledgeReused {
            reuse_id,
            organisation,
            source,
            pledge: pledge.trim().into(),
        }])
    }

    pub fn fulfil_pledge(&self, note: &str) -> Decision<KnowledgeReuseEvent> {
        if self.id.is_none() {
            return Err(DomainError::NotCreated("reuse"));
        }
        required_text("note", note, 5_000)?;
        ensure(!self.fulfilled, Rule::Lifecycle, || "the pledge is already fulfilled".into())?;
        Ok(vec![KnowledgeReuseEvent::PledgeFulfilled { note: note.trim().into() }])
    }
}
