//! The one error type of the domain layer. Business-rule violations carry the [`Rule`] they break.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

/// A rule the facts obey. Numbered rules are those of DOMAIN.md "Rules the facts obey";
/// the others guard the life cycle of an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Rule {
    /// 1. A doetank has 3 to 9 innovators (lead included); the coach is not counted.
    DoetankSize,
    /// 2. External advisers stay fewer than the public-sector members.
    ExternalsNotPrimary,
    /// 3. The lead is a member of the doetank.
    LeadIsMember,
    /// 3. The coach is not a member of the same doetank.
    CoachNotMember,
    /// 4. Phases complete in order, each once.
    PhaseOrder,
    /// 4. A phase completes only with at least 3 members and a coach.
    PhaseNeedsTeamAndCoach,
    /// 4. Lessons are recorded by the doetank's members or its coach.
    LessonByTeam,
    /// 5. A doetank starts informal and is made public once.
    InformalUntilPublic,
    /// 6. A concluded doetank takes no further commands.
    ConcludedIsFinal,
    /// 7. A rule is suspended only after a mandate is granted.
    MandateBeforeSuspension,
    /// 7. A suspension is for a period with an end.
    SuspensionHasEnd,
    /// 7. A pilot is concluded only after it is evaluated.
    EvaluationBeforeConclusion,
    /// 7. Applicants are policy or operational civil servants in the primary process.
    ApplicantEligibility,
    /// 8. A signatory signs a charter once.
    SignOnce,
    /// 8. A jury ranks only ideas submitted to its event.
    JuryRanksOwnIdeas,
    /// Each thing happens once or in its order (a café is held once, an idea pitched once, ...).
    Lifecycle,
    /// An erased member takes no further commands.
    ErasedIsFinal,
}

impl Rule {
    /// The rule's number in DOMAIN.md, where it has one.
    pub fn number(self) -> Option<u8> {
        use Rule::*;
        Some(match self {
            DoetankSize => 1,
            ExternalsNotPrimary => 2,
            LeadIsMember | CoachNotMember => 3,
            PhaseOrder | PhaseNeedsTeamAndCoach | LessonByTeam => 4,
            InformalUntilPublic => 5,
            ConcludedIsFinal => 6,
            MandateBeforeSuspension
            | SuspensionHasEnd
            | EvaluationBeforeConclusion
            | ApplicantEligibility => 7,
            SignOnce | JuryRanksOwnIdeas => 8,
            Lifecycle | ErasedIsFinal => return None,
        })
    }

    /// A stable SCREAMING_SNAKE_CASE name, for APIs and logs.
    pub fn code(self) -> &'static str {
        use Rule::*;
        match self {
            DoetankSize => "DOETANK_SIZE",
            ExternalsNotPrimary => "EXTERNALS_NOT_PRIMARY",
            LeadIsMember => "LEAD_IS_MEMBER",
            CoachNotMember => "COACH_NOT_MEMBER",
            PhaseOrder => "PHASE_ORDER",
            PhaseNeedsTeamAndCoach => "PHASE_NEEDS_TEAM_AND_COACH",
            LessonByTeam => "LESSON_BY_TEAM",
            InformalUntilPublic => "INFORMAL_UNTIL_PUBLIC",
            ConcludedIsFinal => "CONCLUDED_IS_FINAL",
            MandateBeforeSuspension => "MANDATE_BEFORE_SUSPENSION",
            SuspensionHasEnd => "SUSPENSION_HAS_END",
            EvaluationBeforeConclusion => "EVALUATION_BEFORE_CONCLUSION",
            ApplicantEligibility => "APPLICANT_ELIGIBILITY",
            SignOnce => "SIGN_ONCE",
            JuryRanksOwnIdeas => "JURY_RANKS_OWN_IDEAS",
            Lifecycle => "LIFECYCLE",
            ErasedIsFinal => "ERASED_IS_FINAL",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.number() {
            Some(n) => write!(f, "{} (rule {n})", self.code()),
            None => f.write_str(self.code()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{rule} violated: {message}")]
    RuleViolated { rule: Rule, message: String },
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    #[error("this {0} does not exist yet")]
    NotCreated(&'static str),
    #[error("this {0} already exists")]
    AlreadyExists(&'static str),
}

impl DomainError {
    pub fn rule(rule: Rule, message: impl Into<String>) -> Self {
        DomainError::RuleViolated { rule, message: message.into() }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::InvalidInput { field, message: message.into() }
    }

    /// The rule this error names, if it is a rule violation.
    pub fn broken_rule(&self) -> Option<Rule> {
        match self {
            DomainError::RuleViolated { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

/// Shorthand for commands.
pub type Decision<E> = Result<Vec<E>, DomainError>;

/// Fails with `rule` unless `condition` holds.
pub(crate) fn ensure(
    condition: bool,
    rule: Rule,
    message: impl FnOnce() -> String,
) -> Result<(), DomainError> {
    if condition {
        Ok(())
    } else {
        Err(DomainError::rule(rule, message()))
    }
}

/// The most people one gathering (a café, an ideation day) can count: beyond it a count is a
/// typing mistake, and it stays inside GraphQL's 32-bit `Int`, which strict clients enforce.
pub const MAX_PEOPLE: u32 = 1_000_000;

/// Rejects a head count of a gathering of no one (a café no one came to was not held; it is
/// cancelled) or beyond [`MAX_PEOPLE`].
pub(crate) fn people(field: &'static str, count: u32) -> Result<(), DomainError> {
    if count == 0 {
        return Err(DomainError::invalid(
            field,
            "must be at least 1: a gathering no one came to did not take place",
        ));
    }
    if count > MAX_PEOPLE {
        return Err(DomainError::invalid(field, format!("must be at most {MAX_PEOPLE}")));
    }
    Ok(())
}

/// The years a date the network records may name. The read models keep dates as ISO 8601 text,
/// whose order is the dates' own only for four-digit years (`+12000-02-28` sorted before
/// `0001-02-28`, and a year before 0 did not read back at all); and a year before 1900 is a typing
/// mistake, the network having begun in 2012.
pub const CALENDAR_YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// Rejects a date outside [`CALENDAR_YEARS`].
pub(crate) fn calendar_date(field: &'static str, date: NaiveDate) -> Result<(), DomainError> {
    if CALENDAR_YEARS.contains(&date.year()) {
        return Ok(());
    }
    Err(DomainError::invalid(
        field,
        format!(
            "{date} is outside the years {} to {} the network's dates lie in",
            CALENDAR_YEARS.start(),
            CALENDAR_YEARS.end()
        ),
    ))
}

/// The most entries a list of keywords (a lesson's tags, a member's expertise, a charter's
/// initiators) holds, and the most characters one has: beyond them a list is a pasted text or a
/// client's loop, not keywords (5,000 tags were taken until the thirtieth session).
pub const MAX_KEYWORDS: usize = 50;
pub const MAX_KEYWORD_CHARS: usize = 200;

/// A list of keywords as the log keeps it: each trimmed, blanks dropped, a repeat (whatever its
/// case, as every filter matches them) kept once as first written; refused beyond
/// [`MAX_KEYWORDS`] entries or with an entry beyond [`MAX_KEYWORD_CHARS`].
pub(crate) fn keywords(field: &'static str, items: Vec<String>) -> Result<Vec<String>, DomainError> {
    if items.iter().any(|item| item.trim().chars().count() > MAX_KEYWORD_CHARS) {
        return Err(DomainError::invalid(
            field,
            format!("each must be at most {MAX_KEYWORD_CHARS} characters"),
        ));
    }
    // Stops at the first entry past the limit: a body of tens of thousands of entries is not
    // compared with itself pairwise.
    let (mut kept, mut keys): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for item in items {
        let (key, item) = (name_key(&item), one_spaced(&item));
        if item.is_empty() || keys.contains(&key) {
            continue;
        }
        if kept.len() == MAX_KEYWORDS {
            return Err(DomainError::invalid(field, format!("must hold at most {MAX_KEYWORDS} entries")));
        }
        kept.push(item);
        keys.push(key);
    }
    Ok(kept)
}

/// An organisation's name as the log keeps it: trimmed, and each run of white space inside it
/// one space, so that a space typed twice does not make a second organisation of "Gemeente
/// Utrecht" in every list, count and "once each" rule that compares names.
pub(crate) fn organisation_name(field: &'static str, value: &str) -> Result<String, DomainError> {
    required_text(field, value, 200)?;
    Ok(one_spaced(value))
}

/// `text` trimmed, with each run of white space inside it one space: how a name or a keyword
/// is kept.
pub fn one_spaced(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as names, titles and keywords are compared by the "once" rules: one-spaced and
/// without regard to case, as the filters match them.
pub fn name_key(text: &str) -> String {
    one_spaced(text).to_lowercase()
}

/// Rejects empty or whitespace-only text and text longer than `max` characters.
pub(crate) fn required_text(field: &'static str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}
