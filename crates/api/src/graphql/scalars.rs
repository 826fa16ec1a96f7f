//! GraphQL enums mirroring the domain's, and parsing of the text the read models store.

use async_graphql::{Enum, EnumType, ID};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::error::AppError;

/// The six phases of a doetank's plan (stappenplan), taken in this order, each once (rule 4).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::Phase")]
pub enum Phase {
    /// Ontdekken: (re)discovering the problem: its core, why it is a problem and for whom, the
    /// problem behind the problem.
    Discover,
    /// Onderzoeken: building a base of information from theory and practice.
    Research,
    /// Ontwikkelen: designing a solution to try.
    Develop,
    /// Uitproberen: trying the solution out in practice.
    TryOut,
    /// Leren: taking stock of what worked and what did not.
    Learn,
    /// Overdragen: handing the results over (the business case) to those who carry them on.
    HandOver,
}

/// What a lesson tells: what works, what does not, or another insight.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::LessonKind")]
pub enum LessonKind {
    /// Something that worked.
    Works,
    /// Something that did not work.
    DoesNotWork,
    /// Any other insight worth passing on.
    Insight,
}

/// Where a member works. External advisers are welcome but never the primary group (rule 2).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::Sector")]
pub enum Sector {
    /// A civil servant: the network's primary group.
    Public,
    /// An adviser from outside the public sector; in a doetank they stay fewer than the
    /// public-sector members (rule 2).
    ExternalAdviser,
    /// A researcher at a university or institute.
    Academic,
}

/// Where a doetank published an update.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::Channel")]
pub enum Channel {
    /// A LinkedIn post.
    Linkedin,
    /// A blog post.
    Blog,
    /// A page on a website.
    Website,
}

/// How a doetank ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::DoetankOutcome")]
pub enum DoetankOutcome {
    /// It went through its phases and finished its work.
    Completed,
    /// It stopped before finishing.
    Discontinued,
}

/// Where a doetank stands: working, or concluded one way or the other (rule 6: a concluded doetank
/// takes no command).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DoetankStatus {
    /// Formed and not yet concluded.
    Active,
    /// Concluded after finishing its work.
    Completed,
    /// Concluded before finishing.
    Discontinued,
}

/// A person's part in a doetank.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DoetankRole {
    /// The trekker, who coordinates; always one of its members (rule 3).
    Lead,
    /// One of the innovators (doetankers).
    Member,
    /// Guides the process; never one of its members (rule 3).
    Coach,
}

/// Parses the SCREAMING_SNAKE_CASE text that read models store into a GraphQL enum.
pub fn parse_enum<T: EnumType>(text: &str) -> Option<T> {
    T::items().iter().find(|item| item.name == text).map(|item| item.value)
}

/// The SCREAMING_SNAKE_CASE name of a GraphQL enum value, as read models store it.
pub fn enum_name<T: EnumType>(value: T) -> &'static str {
    T::items().iter().find(|item| item.value == value).map_or("", |item| item.name)
}

pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::bad_input(field, format!("{:?} is not a UUID", id.as_str())))
}

pub fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

pub fn parse_opt_time(text: &Option<String>) -> Option<DateTime<Utc>> {
    text.as_deref().map(parse_time)
}

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

pub fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
