//! The type names a log filter asks for, checked before it runs. A misspelt event or stream
//! type matches nothing, and an empty answer reads as an empty history; so a name that neither
//! the catalogue lists nor the log holds is refused, with the nearest name the catalogue has.

use std::sync::OnceLock;

use doetank_domain::catalogue::{catalogue, STREAM_TYPES};
use doetank_store::{EventStore, LogFilter, LogName};

use crate::error::AppError;

/// Every event type the catalogue lists, made once: the catalogue builds payload schemas.
fn event_types() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| catalogue().into_iter().map(|entry| entry.event_type).collect())
}

/// A filter of the log as `events`, `eventActivity` and `/events.ndjson` read it, checked before
/// it runs: a window that holds nothing, then a type or stream type this log does not have,
/// each refused naming the field as the three call it.
pub async fn check_filter(store: &EventStore, filter: &LogFilter) -> Result<(), AppError> {
    crate::history::check_window(filter.from, filter.to)?;
    check_event_types(store, "types", &filter.event_types).await?;
    check_stream_types(store, "streamType", &filter.stream_types).await?;
    check_stream_ids(store, "streamId", &filter.stream_ids).await
}

/// Refuses, as `field`, the first of `ids` that has not the shape of a stream id,
/// `<stream type>-<uuid>`, and that the log does not hold (an imported log may hold others). A
/// well-formed id of a stream not written is no error: it reads as an informal doetank's does.
/// An entity's bare id, as `doetank { id }` gives it, is the slip this catches most.
pub async fn check_stream_ids(store: &EventStore, field: &str, ids: &[String]) -> Result<(), AppError> {
    for id in ids {
        let (stream_type, rest) = id.split_once('-').unwrap_or((id, ""));
        // The id as the log writes it, lower-case and hyphenated, when its parts can be read.
        let meant = uuid::Uuid::try_parse(rest).ok().and_then(|uuid| {
            let stream_type = STREAM_TYPES
                .into_iter()
                .find(|t| *t == stream_type)
                .or_else(|| nearest(stream_type, STREAM_TYPES.into_iter()))?;
            Some(format!("{stream_type}-{uuid}"))
        });
        if meant.as_ref() == Some(id) || store.log_holds(LogName::StreamId(id)).await? {
            continue;
        }
        let message = match meant {
            Some(meant) => format!("\"{id}\" is no stream id of this log; did you mean \"{meant}\"?"),
            None => {
                let whose = if uuid::Uuid::try_parse(id).is_ok() {
                    "an entity's id, not a stream's"
                } else {
                    "no stream id of this log"
                };
                format!(
                    "\"{id}\" is {whose}: a stream id is its stream type and its entity's id, as \"doetank-<uuid>\" (stream types: {})",
                    STREAM_TYPES.join(", ")
                )
            }
        };
        return Err(AppError::bad_input(field, message));
    }
    Ok(())
}

/// Refuses, as `field`, the first of `names` that is no event type of this log.
pub async fn check_event_types<'a>(
    store: &EventStore,
    field: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), AppError> {
    check(store, field, names, "event type", event_types(), |n| LogName::EventType(n)).await
}

/// Refuses, as `field`, the first of `names` that is no stream type of this log.
pub async fn check_stream_types<'a>(
    store: &EventStore,
    field: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), AppError> {
    check(store, field, names, "stream type", &STREAM_TYPES, |n| LogName::StreamType(n)).await
}

/// Refuses the first of `names` that `known` does not list and the log does not hold.
async fn check<'a>(
    store: &EventStore,
    field: &str,
    names: impl IntoIterator<Item = &'a String>,
    what: &str,
    known: &[impl AsRef<str>],
    in_log: fn(&str) -> LogName<'_>,
) -> Result<(), AppError> {
    for name in names {
        if !known.iter().any(|k| k.as_ref() == name) && !store.log_holds(in_log(name)).await? {
            let guess = did_you_mean(name, known.iter().map(AsRef::as_ref));
            let message = format!("\"{name}\" is no {what} of this log (`eventTypes` lists them){guess}");
            return Err(AppError::bad_input(field, message));
        }
    }
    Ok(())
}

/// `; did you mean "<name>"?` for the known name a slip of `name` meant, else nothing: the
/// end of a refusal's message.
pub(crate) fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    nearest(name, known).map_or_else(String::new, |near| format!("; did you mean \"{near}\"?"))
}

/// The known name nearest to `name`, case aside, when it is near enough to be a slip: at most
/// a third of its letters (and at least one) typed wrong.
fn nearest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    known
        .map(|k| (strsim::damerau_levenshtein(&name, &k.to_lowercase()), k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    const KNOWN: [&str; 3] = ["DoetankFormed", "MemberJoined", "doetank"];

    #[test]
    fn a_slip_finds_the_name_meant() {
        assert_eq!(nearest("DoetankFormd", KNOWN.into_iter()), Some("DoetankFormed"));
        assert_eq!(nearest("memberjoined", KNOWN.into_iter()), Some("MemberJoined"));
        assert_eq!(nearest("Doetank", KNOWN.into_iter()), Some("doetank"));
    }

    #[test]
    fn a_name_far_from_every_known_one_gets_no_guess() {
        assert_eq!(nearest("Lesson", KNOWN.into_iter()), None);
        assert_eq!(nearest("x", KNOWN.into_iter()), None);
    }
}
