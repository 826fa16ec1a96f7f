//! Rows of the read models, as both backends return them.

/// A row type readable through sqlx (both pools) and through the store's own SQLite
/// connections ([`crate::sql::OwnRow`]): by name like sqlx's `FromRow`, or by position where
/// the statement's column names were checked once against the fields.
macro_rules! read_model_row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, sqlx::FromRow)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
        }

        impl crate::sql::OwnRow for $name {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn from_own(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let mut column = 0..;
                Ok($name { $($field: row.get(column.next().unwrap_or_default())?,)* })
            }
        }
    };
}

/// A row of a list ordered by its rows' positions in the log (see `pagination::After`).
pub trait Positioned {
    fn position(&self) -> i64;
}

/// Implements [`Positioned`] for row types by the field that holds their position.
macro_rules! positioned {
    ($($row:ident),+ => $field:ident) => {
        $(impl crate::rows::Positioned for $row {
            fn position(&self) -> i64 {
                self.$field
            }
        })+
    };
}
pub(crate) use positioned;
pub(crate) use read_model_row;

positioned!(MemberRow, ChallengeRow, DoetankRow => created_position);
positioned!(LessonRow => position);

read_model_row! {
    pub struct MemberRow {
        pub id: String,
        pub name: Option<String>,
        pub email: Option<String>,
        pub organisation: String,
        pub sector: String,
        pub expertise: String,
        pub support_committee: bool,
        pub erased: bool,
        pub registered_at: String,
        pub version: i64,
        pub created_position: i64,
    }
}

pub const MEMBER_SELECT: &str =
    "SELECT m.id, p.name, p.email, m.organisation, m.sector, m.expertise, m.support_committee, \
     m.erased, m.registered_at, m.version, m.created_position FROM rm_members m \
     LEFT JOIN member_personal_data p ON p.member_id = m.id";

read_model_row! {
    pub struct ChallengeRow {
        pub id: String,
        pub title: String,
        pub description: String,
        pub raised_by: String,
        pub origin: String,
        pub commissioner: Option<String>,
        pub raised_at: String,
        pub version: i64,
        pub created_position: i64,
    }
}

pub const CHALLENGE_SELECT: &str =
    "SELECT id, title, description, raised_by, origin, commissioner, raised_at, version, created_position \
     FROM rm_challenges";

read_model_row! {
    pub struct DoetankRow {
        pub id: String,
        pub name: String,
        pub challenge_id: String,
        pub lead_id: String,
        pub coach_id: Option<String>,
        pub commissioner: Option<String>,
        pub current_phase: Option<String>,
        pub status: String,
        pub is_public: bool,
        pub formed_at: String,
        pub concluded_at: Option<String>,
        pub reflection: Option<String>,
        pub version: i64,
        pub updated_at: String,
        pub created_position: i64,
    }
}

pub const DOETANK_SELECT: &str = "SELECT d.id, d.name, d.challenge_id, d.lead_id, d.coach_id, d.commissioner, \
     d.current_phase, d.status, d.is_public, d.formed_at, d.concluded_at, d.reflection, d.version, d.updated_at, \
     d.created_position FROM rm_doetanks d";

read_model_row! {
    pub struct MembershipRow {
        pub doetank_id: String,
        pub member_id: String,
        pub sector: String,
        pub role: String,
        pub joined_at: String,
    }
}

pub const MEMBERSHIP_SELECT: &str =
    "SELECT doetank_id, member_id, sector, role, joined_at FROM rm_doetank_members";

read_model_row! {
    pub struct PhaseRow {
        pub doetank_id: String,
        pub phase: String,
        pub started_at: String,
        pub completed_at: Option<String>,
        pub summary: Option<String>,
    }
}

pub const PHASE_SELECT: &str =
    "SELECT doetank_id, phase, started_at, completed_at, summary FROM rm_doetank_phases";

read_model_row! {
    pub struct ActivityRow {
        pub position: i64,
        pub doetank_id: String,
        pub kind: String,
        pub title: String,
        pub detail: String,
        pub organisation: Option<String>,
        pub channel: Option<String>,
        pub link: Option<String>,
        pub on_date: Option<String>,
        pub at: String,
    }
}

pub const ACTIVITY_SELECT: &str =
    "SELECT position, doetank_id, kind, title, detail, organisation, channel, link, \
     on_date, at FROM rm_doetank_activities";

read_model_row! {
    pub struct LessonRow {
        pub id: String,
        pub doetank_id: String,
        pub recorded_by: String,
        pub organisation: Option<String>,
        pub phase: String,
        pub kind: String,
        pub title: String,
        pub body: String,
        pub tags: String,
        pub recorded_at: String,
        pub position: i64,
    }
}

pub const LESSON_SELECT: &str =
    "SELECT l.id, l.doetank_id, l.recorded_by, l.organisation, l.phase, l.kind, l.title, \
     l.body, l.tags, l.recorded_at, l.position FROM rm_lessons l";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyCount {
    pub key: Option<String>,
    pub count: i64,
}

read_model_row! {
    /// A counter the read models' stamp is made of (`crate::stamp`).
    pub struct CounterRow {
        pub name: String,
        pub position: i64,
    }
}

/// `$start, $start+1, ...` for an IN list of `n` values.
pub fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
