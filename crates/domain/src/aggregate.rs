//! The two tiny traits every aggregate and its events implement (in the spirit of cqrs-es).

use serde::{de::DeserializeOwned, Serialize};

/// An event of one aggregate's stream: serialisable, with a stable type name per variant.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug + PartialEq {
    /// The stable name stored in the log (the enum variant's name).
    fn event_type(&self) -> &'static str;
}

/// State rebuilt from a stream of events. Applying events is the only way state changes;
/// commands are inherent methods that read the state and return events.
pub trait Aggregate: Default + Clone + std::fmt::Debug {
    type Event: DomainEvent;
    /// The kind of stream, also the prefix of every stream id of this aggregate.
    const STREAM_TYPE: &'static str;
    /// The event that brings one into being: its stream's first event, and only there. Read
    /// models start from it, so a log whose stream opens otherwise cannot be drawn.
    const OPENED_BY: &'static str;

    fn apply(&mut self, event: &Self::Event);

    /// Folds events over the empty state.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// Implements [`DomainEvent`] for an enum whose variants are all struct-like, using the variant
/// name as the stable event type.
#[macro_export]
macro_rules! domain_event {
    ($enum:ident { $($variant:ident),+ $(,)? }) => {
        impl $crate::aggregate::DomainEvent for $enum {
            fn event_type(&self) -> &'static str {
                match self {
                    $( $enum::$variant { .. } => stringify!($variant), )+
                }
            }
        }
        impl $enum {
            /// Every event type this stream can hold.
            pub const EVENT_TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];
        }
    };
}
