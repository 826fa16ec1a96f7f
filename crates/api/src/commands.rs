//! Command handlers that need more than one aggregate: they look up what the deciding aggregate
//! must know (a member's sector, whether a challenge exists) and then run the command.
//! GraphQL mutations and the demo loader both go through here.

use chrono::{DateTime, NaiveDate, Utc};
use doetank_domain::aggregates::challenge::ChallengeOrigin;
use doetank_domain::{
    Aggregate, Cafe, Challenge, Doetank, IdeationEvent, Innovator, Member, MemberId, Sector,
};
use doetank_store::StreamId;
use uuid::Uuid;

use crate::app::{App, CommandOptions, CommandOutcome};
use crate::error::AppError;
use crate::sql;

/// One id, as a query selects it.
#[derive(sqlx::FromRow)]
struct IdRow {
    id: String,
}

/// A member's address, as a query selects it.
#[derive(sqlx::FromRow)]
struct EmailRow {
    email: Option<String>,
}

/// A change of a member's personal data: what is left out stays as it is.
pub struct PersonalChange<'a> {
    pub name: Option<&'a str>,
    /// A blank address removes the one kept.
    pub email: Option<&'a str>,
}

/// Personal data kept outside the log (see `member_personal_data`).
#[derive(Debug, Clone)]
pub struct PersonalData {
    pub name: String,
    pub email: Option<String>,
}

impl App {
    /// Fails with NOT_FOUND unless the aggregate's stream exists.
    pub async fn require<A: Aggregate>(&self, id: Uuid, what: &'static str) -> Result<A, AppError> {
        let (state, version) = self.load::<A>(id).await?;
        if version == 0 {
            return Err(AppError::not_found(what, id));
        }
        Ok(state)
    }

    /// The café or idea a challenge says it came from exists (an idea: submitted to that
    /// ideation day), so its origin and the lineage drawn from it never point at nothing; a
    /// café met, or meets `today` (not cancelled, not still to come), and an ideation day came.
    pub async fn origin_exists(&self, origin: &ChallengeOrigin, today: NaiveDate) -> Result<(), AppError> {
        match origin {
            ChallengeOrigin::Cafe { cafe_id } => {
                self.require::<Cafe>(*cafe_id, "cafe").await?.raises_challenges(today)?;
            }
            ChallengeOrigin::Idea { ideation_event_id, idea_id } => {
                let day = self.require::<IdeationEvent>(*ideation_event_id, "ideation event").await?;
                if !day.ideas.contains(idea_id) {
                    return Err(AppError::not_found("idea", idea_id));
                }
                day.raises_challenges(today)?;
            }
            ChallengeOrigin::Commissioner { .. } | ChallengeOrigin::OwnFrustration => {}
        }
        Ok(())
    }

    /// The member as a doetank sees it (id and sector); erased members cannot take part.
    pub async fn innovator(&self, member_id: MemberId) -> Result<Innovator, AppError> {
        Ok(self.require::<Member>(member_id, "member").await?.innovator()?)
    }

    pub async fn register_member(
        &self,
        options: &CommandOptions,
        member_id: Uuid,
        personal: PersonalData,
        organisation: &str,
        sector: Sector,
        expertise: Vec<String>,
    ) -> Result<CommandOutcome, AppError> {
        let name = valid_name(&personal.name)?;
        let email = personal.email.as_deref().map(given_email).transpose()?.flatten();
        if let Some(first) = self.replayed::<Member>(member_id, options).await? {
            // A retry: the first registration stands, its personal data included.
            return Ok(first);
        }
        // Read afresh, not taken from what this process last wrote: personal data is written
        // before the event. The read is kept, so the decision below does not read it again.
        let stream = StreamId::new(Member::STREAM_TYPE, member_id);
        if self.store.stream_to_decide(&stream, true).await?.version > 0 {
            let exists = doetank_domain::DomainError::AlreadyExists("member").into();
            return self.unless_replayed::<Member>(member_id, options, exists).await;
        }
        if let Some(email) = email {
            self.address_is_free(email, member_id).await?;
        }
        let backend = self.store.backend();
        let written = sql::execute(
            backend,
            "INSERT INTO member_personal_data (member_id, name, email) VALUES ($1, $2, $3) \
             ON CONFLICT (member_id) DO UPDATE SET name = excluded.name, email = excluded.email",
            &[member_id.into(), name.to_string().into(), email.map(str::to_string).into()],
        )
        .await;
        self.address_claimed(written, email, member_id).await?;
        self.personal_data_written().await?;
        let result = self
            .decide_and_append::<Member>(member_id, options, |m| {
                m.register(member_id, organisation, sector, expertise.clone())
            })
            .await;
        if result.is_err() && self.load::<Member>(member_id).await?.1 == 0 {
            // The event was refused: leave no personal data behind.
            sql::execute(
                backend,
                "DELETE FROM member_personal_data WHERE member_id = $1",
                &[member_id.into()],
            )
            .await?;
            self.personal_data_written().await?;
        }
        result
    }

    /// A member's profile: the organisation and expertise as an event, the name and e-mail
    /// address as personal data outside the log. All of it is checked before anything is
    /// written; a new address is claimed first, then the event goes, then the name: a refused
    /// command (a rule, a bad organisation, a stale `expectedVersion`, an address another
    /// member took meanwhile) leaves the personal data as it was, and a retry with the same
    /// command id writes it again.
    pub async fn update_member_profile(
        &self,
        options: &CommandOptions,
        member_id: Uuid,
        personal: PersonalChange<'_>,
        organisation: Option<&str>,
        expertise: Option<Vec<String>>,
    ) -> Result<CommandOutcome, AppError> {
        let name = personal.name.map(valid_name).transpose()?;
        // A blank address removes the one kept.
        let email = personal.email.map(given_email).transpose()?;
        if let Some(Some(email)) = email {
            self.address_is_free(email, member_id).await?;
        }
        // A new address is claimed before the event, so that losing it to another member at
        // the same moment refuses the whole command; a refused event gives it back.
        let previous = match email {
            Some(new) => {
                let previous = self.current_email(member_id).await?;
                self.update_personal_data(member_id, None, Some(new)).await?;
                Some(previous)
            }
            None => None,
        };
        let outcome = self
            .execute::<Member>(member_id, options, |m| m.update_profile(organisation, expertise.clone()))
            .await;
        let outcome = match (outcome, previous) {
            (Err(refused), Some(previous)) => {
                self.update_personal_data(member_id, None, Some(previous.as_deref())).await?;
                return Err(refused);
            }
            (outcome, _) => outcome?,
        };
        self.update_personal_data(member_id, name, None).await?;
        Ok(outcome)
    }

    /// The address a member has now, if any.
    async fn current_email(&self, member_id: Uuid) -> Result<Option<String>, AppError> {
        let row: Option<EmailRow> = sql::fetch_optional(
            self.store.backend(),
            "SELECT email FROM member_personal_data WHERE member_id = $1",
            &[member_id.into()],
        )
        .await?;
        Ok(row.and_then(|row| row.email))
    }

    /// The result of writing `email` as `member_id`'s address: the index that keeps an
    /// address to one member refuses it when another member took it after
    /// [`Self::address_is_free`] looked (two registrations racing under one new address), and
    /// that refusal is the same `BAD_INPUT`.
    async fn address_claimed(
        &self,
        written: Result<u64, sqlx::Error>,
        email: Option<&str>,
        member_id: Uuid,
    ) -> Result<(), AppError> {
        match (written, email) {
            (Err(sqlx::Error::Database(refusal)), Some(email)) if refusal.is_unique_violation() => {
                self.address_is_free(email, member_id).await?;
                Err(AppError::bad_input("email", "is already the address of another member"))
            }
            (written, _) => written.map(drop).map_err(AppError::from),
        }
    }

    /// Refuses an e-mail address another member already has, whatever its case: a person is
    /// registered once, and the address is what tells a second registration of them (until
    /// the thirty-first session "anna@x.nl" and "ANNA@x.nl" made two members).
    async fn address_is_free(&self, email: &str, member_id: Uuid) -> Result<(), AppError> {
        let taken: Option<IdRow> = sql::fetch_optional(
            self.store.backend(),
            "SELECT member_id AS id FROM member_personal_data WHERE lower(email) = lower($1) AND member_id <> $2 LIMIT 1",
            &[email.into(), member_id.into()],
        )
        .await?;
        match taken {
            Some(other) => {
                Err(AppError::bad_input("email", format!("is already the address of member {}", other.id)))
            }
            None => Ok(()),
        }
    }

    /// Writes what is given of a member's personal data (`email: Some(None)` removes the
    /// address); an erased member has none to write.
    pub async fn update_personal_data(
        &self,
        member_id: Uuid,
        name: Option<&str>,
        email: Option<Option<&str>>,
    ) -> Result<(), AppError> {
        let mut set = Vec::new();
        let mut args: Vec<sql::Arg> = vec![member_id.into()];
        if let Some(name) = name {
            args.push(name.into());
            set.push(format!("name = ${}", args.len()));
        }
        if let Some(email) = email {
            args.push(sql::Arg::OptText(email.map(str::to_string)));
            set.push(format!("email = ${}", args.len()));
        }
        if set.is_empty() {
            return Ok(());
        }
        self.require::<Member>(member_id, "member").await?.innovator()?;
        let statement = format!("UPDATE member_personal_data SET {} WHERE member_id = $1", set.join(", "));
        let written = sql::execute(self.store.backend(), &statement, &args).await;
        self.address_claimed(written, email.flatten(), member_id).await?;
        self.personal_data_written().await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn form_doetank(
        &self,
        options: &CommandOptions,
        doetank_id: Uuid,
        name: &str,
        challenge_id: Uuid,
        lead_id: MemberId,
        member_ids: &[MemberId],
        at: DateTime<Utc>,
    ) -> Result<CommandOutcome, AppError> {
        self.require::<Challenge>(challenge_id, "challenge").await?;
        let lead = self.innovator(lead_id).await?;
        let mut founding = Vec::with_capacity(member_ids.len());
        for id in member_ids {
            founding.push(self.innovator(*id).await?);
        }
        self.execute::<Doetank>(doetank_id, options, |d| {
            d.form(doetank_id, name, challenge_id, lead, founding.clone(), at)
        })
        .await
    }

    pub async fn join_doetank(
        &self,
        options: &CommandOptions,
        doetank_id: Uuid,
        member_id: MemberId,
        at: DateTime<Utc>,
    ) -> Result<CommandOutcome, AppError> {
        let member = self.innovator(member_id).await?;
        self.execute::<Doetank>(doetank_id, options, |d| d.join(member, at)).await
    }

    /// A kick-off held on `date` (by `today`, the date where the day has begun first; it is
    /// recorded once held), its attendees each once and members of the network (not only of
    /// the doetank): an id that names none is refused, as `formDoetank`'s are, rather than kept
    /// as a dangling reference.
    pub async fn hold_kickoff(
        &self,
        options: &CommandOptions,
        doetank_id: Uuid,
        date: NaiveDate,
        venue: &str,
        attendees: Vec<MemberId>,
        today: NaiveDate,
    ) -> Result<CommandOutcome, AppError> {
        let attendees = Doetank::kickoff_attendees(attendees)?;
        for attendee in &attendees {
            self.require::<Member>(*attendee, "member").await?;
        }
        self.execute::<Doetank>(doetank_id, options, |d| {
            d.hold_kickoff(date, venue, attendees.clone(), today)
        })
        .await
    }

    /// An erased member leads nothing: the lead's commands would be left to no one.
    pub async fn change_lead(
        &self,
        options: &CommandOptions,
        doetank_id: Uuid,
        member_id: MemberId,
    ) -> Result<CommandOutcome, AppError> {
        self.innovator(member_id).await?;
        self.execute::<Doetank>(doetank_id, options, |d| d.change_lead(member_id)).await
    }

    pub async fn assign_coach(
        &self,
        options: &CommandOptions,
        doetank_id: Uuid,
        coach_id: MemberId,
    ) -> Result<CommandOutcome, AppError> {
        self.innovator(coach_id).await?;
        self.execute::<Doetank>(doetank_id, options, |d| d.assign_coach(coach_id)).await
    }

    pub async fn pledge_support(
        &self,
        options: &CommandOptions,
        challenge_id: Uuid,
        member_id: MemberId,
    ) -> Result<CommandOutcome, AppError> {
        self.innovator(member_id).await?;
        self.execute::<Challenge>(challenge_id, options, |c| c.pledge_support(member_id)).await
    }
}

/// An address as given: trimmed, none when blank, else a valid one.
fn given_email(email: &str) -> Result<Option<&str>, AppError> {
    match email.trim() {
        "" => Ok(None),
        email => valid_email(email).map(|()| Some(email)),
    }
}

/// An e-mail address as mail is sent to it: one `@` between a local part (at most 64
/// characters) and a domain with a dot, no spaces, at most 254 characters (RFC 5321's path).
/// Personal data, so checked here. Until the thirtieth session any text with an `@` in it was
/// kept, `@` alone too.
fn valid_email(email: &str) -> Result<(), AppError> {
    crate::text::check("email", email)?;
    let refused = || AppError::bad_input("email", "is not an e-mail address (name@organisation.nl)");
    let (local, domain) = email.split_once('@').ok_or_else(refused)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty()
        || local.len() > 64
        || !domain_ok
        || email.len() > 254
        || email.contains(char::is_whitespace)
    {
        return Err(refused());
    }
    Ok(())
}

/// A member's name, trimmed: personal data, kept outside the log, so checked here rather than
/// with the event's texts.
fn valid_name(name: &str) -> Result<&str, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_input("name", "must be 1 to 200 characters"));
    }
    crate::text::check("name", name)?;
    Ok(name)
}
