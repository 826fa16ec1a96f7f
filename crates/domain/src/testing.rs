//! Given events / when command / then events or error: a test harness for aggregates, in the
//! spirit of cqrs-es's `TestFramework`. Public so that other crates' tests can use it too.

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Rule};

pub struct Given<A: Aggregate> {
    state: A,
}

/// Starts a scenario from the events already in the stream.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given { state: A::from_events(&events) }
}

/// Starts a scenario on an empty stream.
pub fn given_nothing<A: Aggregate>() -> Given<A> {
    Given { state: A::default() }
}

impl<A: Aggregate> Given<A> {
    pub fn when(self, command: impl FnOnce(&A) -> Result<Vec<A::Event>, DomainError>) -> Then<A> {
        let result = command(&self.state);
        Then { state: self.state, result }
    }
}

pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, DomainError>,
}

impl<A: Aggregate> Then<A> {
    #[track_caller]
    pub fn then_expect_events(self, expected: Vec<A::Event>) -> A {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                let mut state = self.state;
                for e in &events {
                    state.apply(e);
                }
                state
            }
            Err(e) => panic!("expected events, got error: {e}"),
        }
    }

    /// Passes when the command succeeds, whatever its events; returns the new state.
    #[track_caller]
    pub fn then_ok(self) -> A {
        match self.result {
            Ok(events) => {
                let mut state = self.state;
                for e in &events {
                    state.apply(e);
                }
                state
            }
            Err(e) => panic!("expected success, got error: {e}"),
        }
    }

    #[track_caller]
    pub fn then_expect_rule(self, rule: Rule) {
        match self.result {
            Err(DomainError::RuleViolated { rule: broken, .. }) => {
                assert_eq!(broken, rule, "a different rule was named")
            }
            Err(other) => panic!("expected {rule} to be violated, got {other}"),
            Ok(events) => panic!("expected {rule} to be violated, got events {events:?}"),
        }
    }

    #[track_caller]
    pub fn then_expect_error(self, expected: DomainError) {
        match self.result {
            Err(e) => assert_eq!(e, expected),
            Ok(events) => panic!("expected error {expected}, got events {events:?}"),
        }
    }

    #[track_caller]
    pub fn then_expect_invalid(self, field: &str) {
        match self.result {
            Err(DomainError::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            Err(other) => panic!("expected invalid {field}, got {other}"),
            Ok(events) => panic!("expected invalid {field}, got events {events:?}"),
        }
    }
}
