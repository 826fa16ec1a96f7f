//! The log as researchers take it away: newline-delimited JSON (one event per line, exactly as
//! stored, metadata included) or CSV, written page by page so the log is never held in memory;
//! and the same formats read back for `doetank import`.

use std::io::Write;

use chrono::{DateTime, Utc};
use doetank_domain::codec::Payload;
use doetank_store::{EventStore, LogFilter, Metadata, RecordedEvent};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::error::AppError;

const PAGE: i64 = 1_000;

/// Pages read and waiting while one is written (and one more being read). The next page is read
/// while this one is turned into text, so the database (PostgreSQL's process, or a blocking
/// thread on a SQLite file) and the writer each have a core: read one after the other, an
/// export's time was the sum of both.
const READ_AHEAD: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

pub const CSV_HEADER: [&str; 13] = [
    "position",
    "event_id",
    "stream_id",
    "stream_type",
    "version",
    "event_type",
    "schema_version",
    "payload",
    "actor",
    "command_id",
    "correlation_id",
    "causation_id",
    "recorded_at",
];

/// The log after `after` that passes `filter`, page by page, up to the head as it was when the
/// stream started; read by a task of its own, up to [`READ_AHEAD`] pages ahead of the reader,
/// which stops once the stream is dropped (a client that went away).
pub fn pages(
    store: EventStore,
    after: i64,
    filter: LogFilter,
) -> impl Stream<Item = Result<Vec<Exported>, AppError>> + Send {
    read_ahead(pages_in_turn(store, after, filter), READ_AHEAD)
}

/// `items`, pulled by a task of its own: up to `ahead` items wait to be taken while one more is
/// pulled. The task stops when the stream it returns is dropped (at the latest once the item it
/// is pulling is there).
fn read_ahead<S>(items: S, ahead: usize) -> impl Stream<Item = S::Item> + Send
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    let (give, taken) = tokio::sync::mpsc::channel(ahead.max(1));
    let reading = async move {
        let mut items = std::pin::pin!(items);
        while let Some(item) = items.next().await {
            if give.send(item).await.is_err() {
                break;
            }
        }
    };
    tokio::spawn(reading.instrument(tracing::Span::current()));
    tokio_stream::wrappers::ReceiverStream::new(taken)
}

/// [`pages`], each read when the one before has been taken.
fn pages_in_turn(
    store: EventStore,
    after: i64,
    filter: LogFilter,
) -> impl Stream<Item = Result<Vec<Exported>, AppError>> + Send {
    struct Cursor {
        store: EventStore,
        filter: LogFilter,
        last: i64,
        end: Option<i64>,
        done: bool,
    }
    let cursor = Cursor { store, filter, last: after, end: None, done: false };
    futures::stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        let end = match c.end {
            Some(end) => end,
            None => match c.store.head_position().await {
                Ok(head) => *c.end.insert(head),
                Err(err) => {
                    c.done = true;
                    return Some((Err(err.into()), c));
                }
            },
        };
        if c.last >= end {
            return None;
        }
        match c.store.read_log_text(&c.filter, c.last, PAGE).await {
            Ok(events) if events.is_empty() => None,
            Ok(mut events) => {
                events.retain(|(e, _)| e.position <= end);
                c.last = events.last().map_or(end, |(e, _)| e.position);
                Some((Ok(events), c))
            }
            Err(err) => {
                c.done = true;
                Some((Err(err.into()), c))
            }
        }
    })
}

/// An event as the export reads it: its payload as JSON text (`EventStore::read_log_text`),
/// written as it is; the event's own `payload` is `Null`.
pub type Exported = (RecordedEvent, Box<RawValue>);

/// A [`RecordedEvent`] as it serialises, with the payload's text in place of its value: the
/// export writes the stored text rather than reading it into a value and writing it out again
/// (a fifth of an export's CPU). The fields and their order are `RecordedEvent`'s.
#[derive(Serialize)]
struct Line<'a> {
    position: i64,
    event_id: uuid::Uuid,
    stream_id: &'a str,
    stream_type: &'a str,
    version: i64,
    event_type: &'a str,
    schema_version: i32,
    payload: &'a RawValue,
    metadata: &'a Metadata,
    recorded_at: &'a DateTime<Utc>,
}

/// One NDJSON line, newline included.
pub fn ndjson_line((event, payload): &Exported) -> Result<Vec<u8>, AppError> {
    let line = Line {
        position: event.position,
        event_id: event.event_id,
        stream_id: &event.stream_id,
        stream_type: &event.stream_type,
        version: event.version,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        payload,
        metadata: &event.metadata,
        recorded_at: &event.recorded_at,
    };
    let mut line = serde_json::to_vec(&line).map_err(|e| AppError::bad_input("event", e.to_string()))?;
    line.push(b'\n');
    Ok(line)
}

pub fn csv_writer<W: Write>(out: W) -> Result<csv::Writer<W>, AppError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER).map_err(csv_error)?;
    Ok(writer)
}

fn csv_error(err: csv::Error) -> AppError {
    AppError::bad_input("csv", err.to_string())
}

fn text<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub fn write_csv_row<W: Write>(writer: &mut csv::Writer<W>, (e, payload): &Exported) -> Result<(), AppError> {
    writer
        .write_record([
            e.position.to_string(),
            e.event_id.to_string(),
            e.stream_id.clone(),
            e.stream_type.clone(),
            e.version.to_string(),
            e.event_type.clone(),
            e.schema_version.to_string(),
            payload.get().to_string(),
            text(e.metadata.actor.as_ref()),
            text(e.metadata.command_id),
            e.metadata.correlation_id.to_string(),
            text(e.metadata.causation_id),
            e.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ])
        .map_err(csv_error)
}

/// The CSV rows of `events`, without the header (a page of a stream that sent it first).
pub fn csv_rows(events: &[Exported]) -> Result<Vec<u8>, AppError> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(events.len() * 512));
    for event in events {
        write_csv_row(&mut writer, event)?;
    }
    writer.into_inner().map_err(|e| AppError::bad_input("csv", e.to_string()))
}

/// The CSV header line, as `csv_writer` writes it.
pub fn csv_header() -> Result<Vec<u8>, AppError> {
    csv_writer(Vec::new())?.into_inner().map_err(|e| AppError::bad_input("csv", e.to_string()))
}

/// Reads an exported log; the format is told by the first byte (`{` for NDJSON).
pub fn read_export(bytes: &[u8]) -> Result<Vec<RecordedEvent>, AppError> {
    let bad = |line: usize, msg: String| AppError::bad_input("file", format!("line {line}: {msg}"));
    if bytes.first() == Some(&b'{') {
        return bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.is_empty())
            .map(|(i, line)| serde_json::from_slice(line).map_err(|e| bad(i + 1, e.to_string())))
            .collect();
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        // An export of nothing (NDJSON of an empty log, or past its head).
        return Ok(Vec::new());
    }
    let mut reader = csv::Reader::from_reader(bytes);
    // Columns are read by position: a file with other columns, or these in another order (a
    // spreadsheet's), would be misread, and one that is no CSV at all would import nothing.
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?;
    if !header.iter().eq(CSV_HEADER) {
        return Err(bad(
            1,
            format!("not a doetank export: NDJSON, or CSV whose header is {}", CSV_HEADER.join(",")),
        ));
    }
    let mut events = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let r = record.map_err(|e| bad(i + 2, e.to_string()))?;
        let field = |n: usize| r.get(n).unwrap_or_default();
        let parse_err = |e: String| bad(i + 2, e);
        let opt_uuid = |n: usize| -> Result<Option<uuid::Uuid>, AppError> {
            match field(n) {
                "" => Ok(None),
                s => s.parse().map(Some).map_err(|e: uuid::Error| parse_err(e.to_string())),
            }
        };
        events.push(RecordedEvent {
            position: field(0).parse().map_err(|e: std::num::ParseIntError| parse_err(e.to_string()))?,
            event_id: field(1).parse().map_err(|e: uuid::Error| parse_err(e.to_string()))?,
            stream_id: field(2).to_string(),
            stream_type: field(3).to_string(),
            version: field(4).parse().map_err(|e: std::num::ParseIntError| parse_err(e.to_string()))?,
            event_type: field(5).to_string(),
            schema_version: field(6)
                .parse()
                .map_err(|e: std::num::ParseIntError| parse_err(e.to_string()))?,
            payload: serde_json::from_str(field(7)).map_err(|e| parse_err(e.to_string()))?,
            metadata: Metadata {
                actor: Some(field(8)).filter(|s| !s.is_empty()).map(str::to_string),
                command_id: opt_uuid(9)?,
                correlation_id: field(10).parse().map_err(|e: uuid::Error| parse_err(e.to_string()))?,
                causation_id: opt_uuid(11)?,
            },
            recorded_at: chrono::DateTime::parse_from_rfc3339(field(12))
                .map_err(|e| parse_err(e.to_string()))?
                .with_timezone(&chrono::Utc),
        });
    }
    Ok(events)
}

/// Fails unless every event of `events` can be read by the read models: an import writes the
/// log first, and an event no projection can decode (a type this version does not know, a
/// payload that does not fit it) would leave a log whose read models can never be built.
/// Nor may a stream of the network's kinds open without its opening event, or open twice.
/// Events of stream types no read model has are kept as they are.
pub fn check_readable(events: &[RecordedEvent]) -> Result<(), AppError> {
    for event in events {
        crate::projection::statements(event, Payload::Value(&event.payload)).map_err(|e| {
            AppError::bad_input(
                "file",
                format!("the event at position {} cannot be read: {e}", event.position),
            )
        })?;
        // Read models start from a stream's opening event: a stream that opens otherwise, or
        // opens twice, would be drawn without it, silently.
        if let Some(opening) = doetank_domain::catalogue::opening_event(&event.stream_type) {
            let misplaced = match (event.version == 1, event.event_type == opening) {
                (true, false) => Some(format!("opens {} with {}", event.stream_id, event.event_type)),
                (false, true) => {
                    Some(format!("opens {} again, at version {}", event.stream_id, event.version))
                }
                _ => None,
            };
            if let Some(misplaced) = misplaced {
                return Err(AppError::bad_input(
                    "file",
                    format!(
                        "the event at position {} {misplaced}: a {} stream opens with {opening}, once",
                        event.position,
                        event.stream_type.replace('_', " ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures::StreamExt;

    use super::read_ahead;

    /// Waits until `pulled` stops changing (the reading task has gone as far as it may).
    async fn settled(pulled: &AtomicUsize) -> usize {
        let mut last = usize::MAX;
        loop {
            let now = pulled.load(Ordering::SeqCst);
            if now == last {
                return now;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn pages_are_read_ahead_of_the_writer_and_no_further_once_it_is_gone() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counting = {
            let pulled = Arc::clone(&pulled);
            futures::stream::iter(0..100).inspect(move |_| {
                pulled.fetch_add(1, Ordering::SeqCst);
            })
        };
        let mut pages = Box::pin(read_ahead(counting, 1));
        assert_eq!(pages.next().await, Some(0));
        // One taken, one waiting, one pulled and held until there is room.
        assert_eq!(settled(&pulled).await, 3, "read ahead of what was taken");
        assert_eq!(pages.next().await, Some(1));
        assert_eq!(settled(&pulled).await, 4);
        drop(pages);
        // The task hands over nothing more and pulls nothing more.
        assert_eq!(settled(&pulled).await, 4, "the reading stopped with its reader");
        let rest: Vec<i32> = read_ahead(futures::stream::iter(0..5), 1).collect().await;
        assert_eq!(rest, vec![0, 1, 2, 3, 4], "every item, in order");
    }

    /// A line is the event serialised, its payload's text in place of its value: times with
    /// whole seconds, milliseconds and the microseconds the log keeps, keys out of order in the
    /// value, text that needs escaping.
    #[test]
    fn a_line_is_the_event_serialised() {
        use chrono::TimeZone;
        let second = chrono::Utc.with_ymd_and_hms(2013, 3, 15, 10, 0, 0).single().expect("a time");
        for micros in [0, 120_000, 123_456, 1] {
            let at = second + chrono::Duration::microseconds(micros);
            let event = doetank_store::RecordedEvent {
                position: 1,
                event_id: uuid::Uuid::nil(),
                stream_id: "note-1".into(),
                stream_type: "note".into(),
                version: 1,
                event_type: "NoteTaken".into(),
                schema_version: 1,
                payload: serde_json::json!({ "b": [1, 2], "a": "é\"" }),
                metadata: doetank_store::Metadata::new("writer"),
                recorded_at: at,
            };
            let text = serde_json::value::to_raw_value(&event.payload).expect("a payload");
            let line = super::ndjson_line(&(event.clone(), text)).expect("a line");
            let expected = serde_json::to_string(&event).expect("an event serialises") + "\n";
            assert_eq!(String::from_utf8(line).expect("UTF-8"), expected, "{at:?}");
        }
    }
}
