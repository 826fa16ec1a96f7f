//! Subscriptions (over WebSocket or server-sent events): the log itself, and the doetanks' read
//! models as they change, one doetank's or every one the viewer may see.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::{Context, Result, Subscription, ID};
use doetank_store::{LogFilter, RecordedEvent, StreamId};
use futures::future::ready;
use futures::{stream, Stream, StreamExt};

use super::errors::GqlResult;
use super::network::{timeline_at, TimelineEntry};
use super::objects::{Doetank, Event, Lesson};
use super::resume::{now_listening, resumed, Marker};
use super::scalars::{parse_enum, parse_id, LessonKind};
use super::statistics::{Asked, Figures, Statistics};
use super::viewer;
use crate::app::App;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::log_names;
use crate::rows::{DoetankRow, LessonRow, DOETANK_SELECT, LESSON_SELECT};
use crate::sql;

pub struct Subscription;

/// Waits until the read models include `position`, so visibility is judged on current data.
async fn projected(app: &App, position: i64) {
    let mut applied = app.projector.watch_applied();
    while *applied.borrow_and_update() < position {
        if applied.changed().await.is_err() {
            break;
        }
    }
}

/// Rule 5 for a live event: an event that tells of a doetank (its own, a reuse of it, an idea
/// taken into it) reaches only those who may see the doetank.
async fn visible_event(app: &App, viewer: &Viewer, event: &RecordedEvent) -> Result<bool, AppError> {
    let Some(told) = crate::visibility::told_of(event) else {
        return Ok(true);
    };
    if viewer.is_facilitator() {
        return Ok(true);
    }
    projected(app, event.position).await;
    let id = crate::visibility::doetank_of(&app.store, told).await?;
    app.public_doetanks.can_see(&app.store, viewer, &id).await
}

#[Subscription]
impl Subscription {
    /// Every event of the log in global order. With `after`, first everything after that
    /// position (a reconnecting client passes the last position it saw and loses nothing), then
    /// live, without a gap or a duplicate at the seam. Without it, only what is written from now.
    /// `streams` takes stream ids (`doetank-<uuid>`) or stream types (`doetank`). For signed-in
    /// readers; informal doetanks' events reach only their team and facilitators.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A position: first every event after it, then live. Absent: only what is written from now."
        )]
        after: Option<i64>,
        #[graphql(desc = "Only events of these types (`eventTypes` lists them).")] types: Option<Vec<String>>,
        #[graphql(
            desc = "Only events of these streams: stream ids (`doetank-<uuid>`) or stream types (`doetank`)."
        )]
        streams: Option<Vec<String>>,
    ) -> Result<impl Stream<Item = Result<Event>>> {
        let app = ctx.data::<App>()?.clone();
        let viewer = viewer(ctx);
        viewer.require_reader().gql()?;
        let after = start_after(ctx, &app, after).await.gql()?;
        let marker = Marker::of(ctx);
        let types = types.unwrap_or_default();
        let streams = streams.unwrap_or_default();
        // A stream id holds a dash (`doetank-<uuid>`); a stream type never does. Ids are checked
        // for their shape only: whether one exists is the informal doetank's secret.
        log_names::check_event_types(&app.store, "types", &types).await.gql()?;
        let (stream_ids, stream_types): (Vec<String>, Vec<String>) =
            streams.iter().cloned().partition(|s| s.contains('-'));
        log_names::check_stream_types(&app.store, "streams", &stream_types).await.gql()?;
        log_names::check_stream_ids(&app.store, "streams", &stream_ids).await.gql()?;
        let events = live_events(ctx, &app, after, move |e| {
            (types.is_empty() || types.contains(&e.event_type))
                && (streams.is_empty() || streams.iter().any(|s| *s == e.stream_id || *s == e.stream_type))
        });
        Ok(events.filter_map(move |item| {
            let (app, viewer, marker) = (app.clone(), viewer.clone(), marker.clone());
            async move {
                match item {
                    Ok(event) => match visible_event(&app, &viewer, &event).await {
                        Ok(true) => {
                            marker.mark(event.position);
                            Some(Ok(Event(event)))
                        }
                        Ok(false) => None,
                        Err(err) => Some(Err(err).gql()),
                    },
                    Err(err) => Some(Err(err).gql()),
                }
            }
        }))
    }

    /// The doetank's read model, each time one of its events has been projected (only while the
    /// viewer may see it); a state already sent is not sent again. With `afterVersion` (the
    /// `version` the client last saw, 0 for none) the doetank as it is now comes first when it
    /// has moved past that version: a dashboard that queried it and then subscribes misses no
    /// change made in between.
    async fn doetank_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The doetank's id (a UUID).")] id: ID,
        #[graphql(
            desc = "The `version` the client last saw (0 for none): if the doetank has moved past it, it comes first as it is now."
        )]
        after_version: Option<i64>,
    ) -> Result<impl Stream<Item = Result<Doetank>>> {
        let app = ctx.data::<App>()?.clone();
        let viewer = viewer(ctx);
        let uuid = parse_id("id", &id).gql()?;
        let after_version = resumed(ctx).or(after_version);
        if after_version.is_some_and(|v| v < 0) {
            return Err(AppError::bad_input("afterVersion", "must be 0 or more")).gql();
        }
        let stream_id = StreamId::new("doetank", uuid).to_string();
        // Listening starts before the first read: a change is either in that read or heard.
        let head = app.store.head_position().await.gql()?;
        // With `afterVersion`, the doetank as it is once the read models hold the log read: it
        // comes first if it moved past that version. A version it never had (one from another
        // database, say) would wait in silence until the doetank grew that far: refused, as a
        // position past the log's head is, but only for a doetank the viewer may see (else its
        // version would tell that it exists).
        let current = match after_version {
            Some(asked) => {
                projected(&app, head).await;
                let row = visible_now(&app, &viewer, uuid).await.gql()?;
                if let Some(at) = row.as_ref().map(|row| row.version).filter(|at| *at < asked) {
                    let message = format!("the doetank is at version {at}: it never had version {asked}");
                    return Err(AppError::bad_input("afterVersion", message)).gql();
                }
                row
            }
            None => None,
        };
        let filter = LogFilter { stream_ids: vec![stream_id], ..Default::default() };
        let events = live_events(ctx, &app, head, move |e| filter.matches(e));
        // The version last sent (or the client's own): events up to it change nothing sent.
        let sent = Arc::new(AtomicI64::new(after_version.unwrap_or(0)));
        let now = ready(newer_than_sent(current, &sent));
        let changes = events.then(move |item| {
            let (app, viewer, sent) = (app.clone(), viewer.clone(), sent.clone());
            async move { state_after(&app, &viewer, uuid, &*item?, &sent).await }
        });
        // A reconnecting stream resumes after the version it heard last, as `afterVersion`.
        let marker = Marker::of(ctx);
        let marked = move |doetank: &Doetank| marker.mark(doetank.row.version);
        Ok(states(stream::once(now).chain(changes)).inspect(move |item| item.iter().for_each(&marked)))
    }

    /// Every doetank the viewer may see, each time one of its events has been projected: a
    /// dashboard of the whole network in one subscription rather than one per doetank. A
    /// doetank's state already sent is not sent again, so a command of several events arrives
    /// once. An informal doetank reaches only its team and facilitators, and everyone once it
    /// is made public. With `after` (the query's `position`) the doetanks changed since that
    /// answer come first, each once as it is now: nothing is lost between query and subscription.
    async fn doetanks_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A position (`position` of the query the dashboard answered from): first each doetank changed after it, as it is now, then live. Absent: only what changes from now."
        )]
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<Doetank>>> {
        let app = ctx.data::<App>()?.clone();
        let viewer = viewer(ctx);
        let head = start_after(ctx, &app, after).await.gql()?;
        let events = live_events(ctx, &app, head, |e| e.stream_type == "doetank");
        let marker = Marker::of(ctx);
        // The version last sent of each doetank: one entry per doetank heard of.
        let sent: Arc<Mutex<HashMap<uuid::Uuid, Arc<AtomicI64>>>> = Arc::default();
        let changes = events.then(move |item| {
            let (app, viewer, sent, marker) = (app.clone(), viewer.clone(), sent.clone(), marker.clone());
            async move {
                let event = item?;
                let Some(uuid) = event.aggregate_id() else { return Ok(None) };
                let sent =
                    Arc::clone(sent.lock().unwrap_or_else(PoisonError::into_inner).entry(uuid).or_default());
                let state = state_after(&app, &viewer, uuid, &event, &sent).await?;
                // Resumed after this event, the doetanks changed since come first, as now.
                if state.is_some() {
                    marker.mark(event.position);
                }
                Ok(state)
            }
        });
        Ok(states(changes))
    }

    /// The network's history as it happens: each new line of `timeline` once its event is
    /// projected, as the viewer may see it (a line about an informal doetank reaches only its
    /// team and facilitators). `kinds` keeps the lines about those kinds of thing only (member,
    /// challenge, doetank, cafe, ideation_event, pilot, charter, reuse). With `after` (the
    /// `position` of the last line the client has, from `timeline` or from this subscription
    /// before it reconnected) the lines after it come first, then live, with no gap.
    async fn timeline_appended(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only lines about these kinds of thing; all when absent.")] kinds: Option<
            Vec<String>,
        >,
        #[graphql(
            desc = "A position: first the lines after it, then live. Absent: only what is written from now."
        )]
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<TimelineEntry>>> {
        let app = ctx.data::<App>()?.clone();
        let viewer = viewer(ctx);
        let kinds = super::catalogue::known_kinds(kinds)?;
        let head = start_after(ctx, &app, after).await.gql()?;
        let marker = Marker::of(ctx);
        // A line's kind is its event's stream type.
        let events =
            live_events(ctx, &app, head, move |e| kinds.is_empty() || kinds.contains(&e.stream_type));
        let lines = events.then(move |item| {
            let (app, viewer) = (app.clone(), viewer.clone());
            async move {
                let event = item?;
                projected(&app, event.position).await;
                timeline_at(&app, &viewer, event.position).await
            }
        });
        Ok(lines.flat_map(move |lines| match lines {
            Ok(lines) => {
                let marker = marker.clone();
                // One line per position; marked as it is yielded, not as the batch is read.
                stream::iter(lines).map(move |line| {
                    marker.mark(line.position);
                    Ok(line)
                })
            }
            .left_stream(),
            Err(err) => stream::once(async move { Err(err).gql() }).right_stream(),
        }))
    }

    /// The network's knowledge base as it grows: each lesson once it is recorded and projected,
    /// as `lessons` gives it, for a wall of what the doetanks are learning. A lesson of an
    /// informal doetank reaches only its team and facilitators. With `after` (a lesson's
    /// `position`, from `lessons` or from this subscription before it reconnected) the lessons
    /// recorded after it come first, then live, with no gap.
    async fn lesson_recorded(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this doetank's lessons.")] doetank_id: Option<ID>,
        #[graphql(desc = "Only lessons of this kind.")] kind: Option<LessonKind>,
        #[graphql(
            desc = "A position: first the lessons recorded after it, then live. Absent: only what is recorded from now."
        )]
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<Lesson>>> {
        let app = ctx.data::<App>()?.clone();
        let viewer = viewer(ctx);
        let doetank = doetank_id.map(|id| parse_id("doetankId", &id)).transpose().gql()?;
        let head = start_after(ctx, &app, after).await.gql()?;
        let marker = Marker::of(ctx);
        let events = live_events(ctx, &app, head, move |e| {
            e.event_type == "LessonRecorded" && doetank.is_none_or(|d| e.aggregate_id() == Some(d))
        });
        let lessons = events.then(move |item| {
            let (app, viewer, marker) = (app.clone(), viewer.clone(), marker.clone());
            async move {
                let event = item?;
                let Some(lesson_id) = event.payload.get("lesson_id").and_then(|id| id.as_str()) else {
                    return Ok(None);
                };
                projected(&app, event.position).await;
                let lesson = visible_lesson(&app, &viewer, lesson_id).await?;
                let lesson = lesson.filter(|l| kind.is_none_or(|k| parse_enum(&l.row.kind) == Some(k)));
                if lesson.is_some() {
                    marker.mark(event.position);
                }
                Ok(lesson)
            }
        });
        Ok(states(lessons))
    }

    /// The dashboard's figures (as `statistics` gives them, with the viewer's eyes) each time a
    /// change of a doetank or a member has been projected and moved the figures it selects:
    /// figures equal to those last sent are not sent again, and a burst of changes arrives as
    /// one. With `initial: true`
    /// the figures as they are now come first, so a dashboard needs no query before it.
    async fn statistics_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(default, desc = "True: the figures as they are now come first.")] initial: bool,
    ) -> Result<impl Stream<Item = Result<Statistics>>> {
        let app = ctx.data::<App>()?.clone();
        // Figures are a state, not a history: a reconnecting stream gets them as they are now.
        let initial = initial || resumed(ctx).is_some();
        let marker = Marker::of(ctx);
        let viewer = viewer(ctx);
        let asked = Asked::of(ctx);
        // Listening starts before the first figures are read: a change is in them or heard.
        let head = app.store.head_position().await.gql()?;
        let sent: Arc<Mutex<Option<Figures>>> = Arc::default();
        // The figures as of a position: marked with it, although a stream resumed after it
        // starts from the figures now.
        let figures_at =
            move |app: App, viewer: Viewer, sent: Arc<Mutex<Option<Figures>>>, marker: Marker| {
                move |position: i64| async move {
                    projected(&app, position).await;
                    let figures = figures_if_moved(&app, &viewer, asked, &sent).await?;
                    if figures.is_some() {
                        marker.mark(position);
                    }
                    Ok(figures)
                }
            };
        let now = {
            let at = figures_at(app.clone(), viewer.clone(), sent.clone(), marker.clone());
            async move {
                if !initial {
                    return Ok(None);
                }
                at(head).await
            }
        };
        let bursts = live_events(ctx, &app, head, |e| matches!(e.stream_type.as_str(), "doetank" | "member"))
            .ready_chunks(256);
        let changes = bursts.then(move |burst| {
            let at = figures_at(app.clone(), viewer.clone(), sent.clone(), marker.clone());
            async move {
                let mut last = 0;
                for item in burst {
                    last = last.max(item?.position);
                }
                at(last).await
            }
        });
        Ok(states(stream::once(now).chain(changes)))
    }
}

/// The figures now, unless those the subscriber `asked` for are as sent last (until the
/// thirty-second session a change of a figure it did not select sent it the same answer
/// again); what it asked for of them becomes what was sent.
async fn figures_if_moved(
    app: &App,
    viewer: &Viewer,
    asked: Asked,
    sent: &Mutex<Option<Figures>>,
) -> Result<Option<Statistics>, AppError> {
    let figures = Figures::compute(app.store.backend(), viewer).await?;
    let seen = figures.as_asked(asked);
    let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    if sent.as_ref() == Some(&seen) {
        return Ok(None);
    }
    *sent = Some(seen);
    Ok(Some(Statistics::known(Arc::new(figures))))
}

/// The doetank's state once `event` of its stream is projected, unless a state at least that
/// new was sent already (or the viewer may not see it).
async fn state_after(
    app: &App,
    viewer: &Viewer,
    uuid: uuid::Uuid,
    event: &RecordedEvent,
    sent: &AtomicI64,
) -> Result<Option<Doetank>, AppError> {
    if event.version <= sent.load(Ordering::Relaxed) {
        return Ok(None);
    }
    projected(app, event.position).await;
    newer_than_sent(visible_now(app, viewer, uuid).await?, sent)
}

/// The states to send, and the errors, of a subscription that sends only some of what it
/// computes (a state already sent is `None`).
fn states<T>(items: impl Stream<Item = Result<Option<T>, AppError>>) -> impl Stream<Item = Result<T>> {
    items.filter_map(|item| async move { item.transpose().map(GqlResult::gql) })
}

/// Where a subscription with `after` starts: after that position (or after the `Last-Event-ID`
/// of a reconnecting stream, which is later than the `after` its URL still holds), or without
/// either at the head (only what is written from now). A position past the head was never
/// given out by this log (one from another database, say): the subscription would wait in
/// silence for the log to grow that far, so it is refused.
async fn start_after(ctx: &Context<'_>, app: &App, after: Option<i64>) -> Result<i64, AppError> {
    match resumed(ctx).or(after) {
        Some(after) => {
            crate::history::check_resume(&app.store, after).await?;
            Ok(after)
        }
        None => Ok(app.store.head_position().await?),
    }
}

/// The log's events after `head` that `keep` accepts, live, and the feed's errors (each ends as
/// an answer of the subscription). From here on the subscription is listening: its start is
/// fixed, and every later event reaches it.
fn live_events(
    ctx: &Context<'_>,
    app: &App,
    head: i64,
    keep: impl Fn(&RecordedEvent) -> bool + Send + 'static,
) -> impl Stream<Item = Result<Arc<RecordedEvent>, AppError>> + Send + 'static {
    let at_the_head = ctx.data_opt::<crate::live::AtTheHead>().cloned();
    let events = app.feed.subscribe(head, at_the_head).filter(move |item| {
        let keep = item.as_ref().map_or(true, |e| keep(e));
        async move { keep }
    });
    now_listening(ctx);
    events
}

/// The doetank's row now, `None` while the viewer may not see it (or before it exists).
async fn visible_now(app: &App, viewer: &Viewer, uuid: uuid::Uuid) -> Result<Option<DoetankRow>, AppError> {
    if !app.public_doetanks.can_see(&app.store, viewer, &uuid.to_string()).await? {
        return Ok(None);
    }
    let sql_text = format!("{DOETANK_SELECT} WHERE d.id = $1");
    sql::fetch_small_optional(&app.store, &sql_text, &[uuid.into()]).await
}

/// The lesson as `lessons` lists it, `None` while the viewer may not see its doetank.
async fn visible_lesson(app: &App, viewer: &Viewer, lesson_id: &str) -> Result<Option<Lesson>, AppError> {
    let sql_text = format!("{LESSON_SELECT} WHERE l.id = $1");
    let row: Option<LessonRow> =
        sql::fetch_small_optional(&app.store, &sql_text, &[lesson_id.to_string().into()]).await?;
    let Some(row) = row else { return Ok(None) };
    if !app.public_doetanks.can_see(&app.store, viewer, &row.doetank_id).await? {
        return Ok(None);
    }
    Ok(Some(Lesson::listed(row)))
}

/// `row` to send, unless its version was sent already; it becomes the version sent.
fn newer_than_sent(row: Option<DoetankRow>, sent: &AtomicI64) -> Result<Option<Doetank>, AppError> {
    Ok(row.filter(|row| row.version > sent.load(Ordering::Relaxed)).map(|row| {
        sent.store(row.version, Ordering::Relaxed);
        Doetank::live(row)
    }))
}
