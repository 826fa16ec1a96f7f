//! Value types shared by several aggregates.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type MemberId = Uuid;
pub type ChallengeId = Uuid;
pub type DoetankId = Uuid;
pub type CafeId = Uuid;
pub type IdeationEventId = Uuid;
pub type IdeaId = Uuid;
pub type PilotId = Uuid;
pub type CharterId = Uuid;
pub type ReuseId = Uuid;
pub type LessonId = Uuid;

/// Where a member works. Only public-sector members are the primary group (rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sector {
    Public,
    ExternalAdviser,
    Academic,
}

/// The six steps of the doetank plan, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Discover,
    Research,
    Develop,
    TryOut,
    Learn,
    HandOver,
}

impl Phase {
    pub const ALL: [Phase; 6] =
        [Phase::Discover, Phase::Research, Phase::Develop, Phase::TryOut, Phase::Learn, Phase::HandOver];

    pub fn next(self) -> Option<Phase> {
        let i = Phase::ALL.iter().position(|p| *p == self)?;
        Phase::ALL.get(i + 1).copied()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Discover => "DISCOVER",
            Phase::Research => "RESEARCH",
            Phase::Develop => "DEVELOP",
            Phase::TryOut => "TRY_OUT",
            Phase::Learn => "LEARN",
            Phase::HandOver => "HAND_OVER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LessonKind {
    Works,
    DoesNotWork,
    Insight,
}

impl LessonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LessonKind::Works => "WORKS",
            LessonKind::DoesNotWork => "DOES_NOT_WORK",
            LessonKind::Insight => "INSIGHT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Linkedin,
    Blog,
    Website,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DoetankOutcome {
    Completed,
    Discontinued,
}

/// A member as a doetank sees it: who, and from which sector (for rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Innovator {
    pub member_id: MemberId,
    pub sector: Sector,
}

impl Innovator {
    pub fn public(member_id: MemberId) -> Self {
        Innovator { member_id, sector: Sector::Public }
    }
    pub fn external(member_id: MemberId) -> Self {
        Innovator { member_id, sector: Sector::ExternalAdviser }
    }
}
