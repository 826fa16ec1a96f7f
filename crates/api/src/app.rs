//! The application service: loads an aggregate from its stream, lets it decide on a command,
//! appends the events with optimistic concurrency, and brings the read models up to date
//! before answering, so every response reflects its own write.

use doetank_domain::codec::{decode, encode};
use doetank_domain::{Aggregate, DomainError, EncodedEvent};
use doetank_store::{
    AppendResult, EventStore, ExpectedVersion, Fingerprint, Metadata, StreamId, StreamState,
};
use uuid::Uuid;

use crate::error::AppError;
use crate::live::LogFeed;
use crate::projection::Projector;
use crate::sql;
use crate::visibility::PublicDoetanks;

/// When the caller gave no expected version, a conflict means someone else wrote first: the
/// command is decided again on the fresh state, this many times at most.
const RETRIES_WITHOUT_EXPECTED_VERSION: usize = 5;

/// Who sends a command, and how it guards against lost updates and retries.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    pub actor: String,
    pub expected_version: Option<i64>,
    pub command_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    /// The hash of what was asked, kept with the command id: the id sent again with another
    /// input is refused. `None` (the demo loader, tests) compares the id alone.
    pub fingerprint: Option<Fingerprint>,
    /// The member sending the command, if the sender is one: an erased member sends none.
    pub acting_member: Option<Uuid>,
}

/// Where a command left its stream and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOutcome {
    pub id: Uuid,
    pub stream_version: i64,
    pub position: i64,
    pub deduplicated: bool,
}

#[derive(Clone, Debug)]
pub struct App {
    pub store: EventStore,
    pub projector: Projector,
    pub feed: LogFeed,
    /// Shared by live subscribers: which doetanks need no visibility query any more.
    pub public_doetanks: PublicDoetanks,
}

impl App {
    pub fn new(store: EventStore) -> Self {
        let projector = Projector::new(store.clone());
        let feed = LogFeed::new(store.clone());
        App { store, projector, feed, public_doetanks: PublicDoetanks::default() }
    }

    /// Records that personal data (kept outside the log) changed, so that answers cached before
    /// it, on any node, are not served after it.
    pub async fn personal_data_written(&self) -> Result<(), AppError> {
        sql::execute(
            self.store.backend(),
            "UPDATE rm_checkpoint SET position = position + 1 WHERE name = 'personal_data'",
            &[],
        )
        .await?;
        Ok(())
    }

    /// The aggregate's current state and stream version.
    pub async fn load<A: Aggregate>(&self, id: Uuid) -> Result<(A, i64), AppError> {
        self.load_until::<A>(id, |_| true).await
    }

    /// The state from the events of the stream for which `keep` holds (time travel).
    pub async fn load_until<A: Aggregate>(
        &self,
        id: Uuid,
        keep: impl Fn(&doetank_store::RecordedEvent) -> bool,
    ) -> Result<(A, i64), AppError> {
        let stream = StreamId::new(A::STREAM_TYPE, id);
        let mut state = A::default();
        let mut version = 0;
        for recorded in self.store.read_stream(&stream, 1).await? {
            if !keep(&recorded) {
                break;
            }
            let event: A::Event = decode(&recorded.event_type, recorded.schema_version, &recorded.payload)?;
            state.apply(&event);
            version = recorded.version;
        }
        Ok((state, version))
    }

    /// Runs a command on the aggregate `id`: decide, append, project.
    pub async fn execute<A: Aggregate>(
        &self,
        id: Uuid,
        options: &CommandOptions,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    ) -> Result<CommandOutcome, AppError> {
        match self.replayed::<A>(id, options).await? {
            Some(first) => Ok(first),
            None => self.decide_and_append(id, options, decide).await,
        }
    }

    /// The first outcome, when `options` carries a command id already seen on `id`'s stream.
    pub(crate) async fn replayed<A: Aggregate>(
        &self,
        id: Uuid,
        options: &CommandOptions,
    ) -> Result<Option<CommandOutcome>, AppError> {
        let Some(command_id) = options.command_id else { return Ok(None) };
        let first = self.replay(&StreamId::new(A::STREAM_TYPE, id), command_id, options).await?;
        Ok(first.map(|first| CommandOutcome { id, ..first }))
    }

    /// `refused`, unless the command id was written on `id`'s stream in the meantime: a retry
    /// racing its first attempt finds the stream changed (a conflict, or a rule such as "already
    /// exists") by that very attempt, and must get its result like any later retry.
    pub(crate) async fn unless_replayed<A: Aggregate>(
        &self,
        id: Uuid,
        options: &CommandOptions,
        refused: AppError,
    ) -> Result<CommandOutcome, AppError> {
        match self.replayed::<A>(id, options).await? {
            Some(first) => Ok(first),
            None => Err(refused),
        }
    }

    /// [`App::execute`] after its replay check: load, decide, append (deciding again on a
    /// concurrent write when the caller gave no expected version).
    pub(crate) async fn decide_and_append<A: Aggregate>(
        &self,
        id: Uuid,
        options: &CommandOptions,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    ) -> Result<CommandOutcome, AppError> {
        if let Some(member) = options.acting_member {
            // After the replay check: a retry of what the member sent before erasure is
            // still answered. Read afresh: the erasure may have been written by another node.
            self.load::<doetank_domain::Member>(member).await?.0.may_act()?;
        }
        match self.try_decide_and_append(id, options, decide).await {
            Err(refused) if options.command_id.is_some() && refused.is_refusal() => {
                self.unless_replayed::<A>(id, options, refused).await
            }
            outcome => outcome,
        }
    }

    async fn try_decide_and_append<A: Aggregate>(
        &self,
        id: Uuid,
        options: &CommandOptions,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    ) -> Result<CommandOutcome, AppError> {
        let stream = StreamId::new(A::STREAM_TYPE, id);
        let metadata = Metadata {
            actor: Some(options.actor.clone()),
            command_id: options.command_id,
            correlation_id: options.correlation_id.unwrap_or_else(Uuid::new_v4),
            causation_id: options.command_id,
        };
        let attempts = if options.expected_version.is_some() { 1 } else { RETRIES_WITHOUT_EXPECTED_VERSION };
        let mut conflicts = 0;
        let mut fresh = false;
        loop {
            let known = self.store.stream_to_decide(&stream, fresh).await?;
            fresh = true;
            let outcome = match decide_on::<A>(&stream, &known, options, &decide) {
                Ok(encoded) => self
                    .store
                    .append_command(
                        &stream,
                        ExpectedVersion::Exact(known.version),
                        &encoded,
                        &metadata,
                        options.fingerprint.as_ref(),
                    )
                    .await
                    .map_err(AppError::from),
                Err(refused) => Err(refused),
            };
            match outcome {
                Ok(result) => return self.settle(id, result).await,
                // What this process last wrote may be old: another node or process can have
                // written since. Refuse only what the log itself refuses. (Not after other
                // errors: a commit that failed midway may have written.)
                Err(refused) if known.cached && refused.is_refusal() => {
                    tracing::debug!(stream = %stream, "decided on a kept state; deciding again on the log");
                }
                Err(AppError::VersionConflict { .. }) if conflicts + 1 < attempts => {
                    conflicts += 1;
                    tracing::debug!(stream = %stream, conflicts, "concurrent write; deciding again");
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The first outcome of a command id already seen on this stream for this same command.
    async fn replay(
        &self,
        stream: &StreamId,
        command_id: Uuid,
        options: &CommandOptions,
    ) -> Result<Option<CommandOutcome>, AppError> {
        let Some(first) = self.store.command_result(command_id).await? else { return Ok(None) };
        let result = first.again(command_id, &stream.to_string(), options.fingerprint.as_ref())?;
        Ok(Some(self.settle(stream.id, result).await?))
    }

    async fn settle(&self, id: Uuid, result: AppendResult) -> Result<CommandOutcome, AppError> {
        self.projector.catch_up_to(result.last_position).await?;
        Ok(CommandOutcome {
            id,
            stream_version: result.stream_version,
            position: result.last_position,
            deduplicated: result.deduplicated,
        })
    }
}

/// The events `decide` makes of the stream's state, encoded for the log.
fn decide_on<A: Aggregate>(
    stream: &StreamId,
    known: &StreamState,
    options: &CommandOptions,
    decide: impl Fn(&A) -> Result<Vec<A::Event>, DomainError>,
) -> Result<Vec<EncodedEvent>, AppError> {
    if let Some(expected) = options.expected_version {
        if expected != known.version {
            return Err(AppError::VersionConflict {
                stream_id: stream.to_string(),
                expected: ExpectedVersion::Exact(expected),
                actual: known.version,
            });
        }
    }
    let mut state = A::default();
    for event in known.events.iter() {
        state.apply(&decode::<A::Event>(&event.event_type, event.schema_version, &event.payload)?);
    }
    let encoded = decide(&state)?.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
    for event in &encoded {
        crate::text::check_payload(&event.payload)?;
    }
    Ok(encoded)
}
