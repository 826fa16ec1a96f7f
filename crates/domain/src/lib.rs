//! The doetank network as a pure domain model.
//!
//! Every aggregate here is rebuilt from its events and decides on commands by returning new
//! events or a [`DomainError`]; nothing in this crate performs I/O or reads a clock, so every
//! decision is reproducible from the log alone.

pub mod aggregate;
pub mod aggregates;
pub mod catalogue;
pub mod codec;
pub mod error;
pub mod testing;
pub mod types;
pub mod upcast;

pub use aggregate::{Aggregate, DomainEvent};
pub use aggregates::{
    cafe::{Cafe, CafeEvent},
    challenge::{Challenge, ChallengeEvent},
    charter::{Charter, CharterEvent},
    doetank::{Doetank, DoetankEvent},
    ideation::{IdeationEvent, IdeationEventEvent},
    member::{Member, MemberEvent},
    pilot::{Pilot, PilotEvent},
    reuse::{KnowledgeReuse, KnowledgeReuseEvent},
};
pub use codec::{CodecError, EncodedEvent};
pub use error::{DomainError, Rule};
pub use types::*;

#[cfg(test)]
mod tests;
