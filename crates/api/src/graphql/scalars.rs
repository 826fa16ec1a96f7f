//! GraphQL enums mirroring the domain's, and parsing of the text the read models store.

use async_graphql::{Enum, EnumType, ID};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::error::AppError;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::Phase")]
pub enum Phase {
    Discover,
    Research,
    Develop,
    TryOut,
    Learn,
    HandOver,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::LessonKind")]
pub enum LessonKind {
    Works,
    DoesNotWork,
    Insight,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::Sector")]
pub enum Sector {
    Public,
    ExternalAdviser,
    Academic,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::Channel")]
pub enum Channel {
    Linkedin,
    Blog,
    Website,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "doetank_domain::DoetankOutcome")]
pub enum DoetankOutcome {
    Completed,
    Discontinued,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DoetankStatus {
    Active,
    Completed,
    Discontinued,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DoetankRole {
    Lead,
    Member,
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
