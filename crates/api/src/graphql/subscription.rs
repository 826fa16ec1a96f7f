//! Subscriptions over WebSocket: the log itself, and a doetank's read model as it changes.

use async_graphql::{Context, Result, Subscription, ID};
use doetank_store::{LogFilter, StreamId};
use futures::{Stream, StreamExt};

use super::errors::GqlResult;
use super::objects::{Doetank, Event};
use super::scalars::parse_id;
use crate::app::App;
use crate::error::AppError;
use crate::rows::{DoetankRow, DOETANK_SELECT};
use crate::sql;

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every event of the log in global order. With `after`, first everything after that
    /// position (a reconnecting client passes the last position it saw and loses nothing), then
    /// live, without a gap or a duplicate at the seam. Without it, only what is written from now.
    /// `streams` takes stream ids (`doetank-<uuid>`) or stream types (`doetank`).
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<i64>,
        types: Option<Vec<String>>,
        streams: Option<Vec<String>>,
    ) -> Result<impl Stream<Item = Result<Event>>> {
        let app = ctx.data::<App>()?.clone();
        let after = match after {
            Some(after) if after < 0 => return Err(AppError::bad_input("after", "must be 0 or more")).gql(),
            Some(after) => after,
            None => app.store.head_position().await.gql()?,
        };
        let types = types.unwrap_or_default();
        let streams = streams.unwrap_or_default();
        Ok(app.feed.subscribe(after).filter_map(move |item| {
            let keep = match &item {
                Ok(e) => {
                    (types.is_empty() || types.contains(&e.event_type))
                        && (streams.is_empty()
                            || streams.iter().any(|s| *s == e.stream_id || *s == e.stream_type))
                }
                Err(_) => true,
            };
            let out = if keep { Some(item.map(|e| Event(e.as_ref().clone())).gql()) } else { None };
            async move { out }
        }))
    }

    /// The doetank's read model, each time one of its events has been projected.
    async fn doetank_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<Doetank>>> {
        let app = ctx.data::<App>()?.clone();
        let uuid = parse_id("id", &id).gql()?;
        let stream_id = StreamId::new("doetank", uuid).to_string();
        let head = app.store.head_position().await.gql()?;
        let filter = LogFilter { stream_ids: vec![stream_id], ..Default::default() };
        let events = app.feed.subscribe(head).filter(move |item| {
            let keep = item.as_ref().map_or(true, |e| filter.matches(e));
            async move { keep }
        });
        Ok(events.then(move |item| {
            let app = app.clone();
            async move {
                let event = item.gql()?;
                let mut applied = app.projector.watch_applied();
                while *applied.borrow_and_update() < event.position {
                    if applied.changed().await.is_err() {
                        break;
                    }
                }
                let sql_text = format!("{DOETANK_SELECT} WHERE d.id = $1");
                let row: Option<DoetankRow> =
                    sql::fetch_optional(app.store.backend(), &sql_text, &[uuid.into()]).await.gql()?;
                row.map(Doetank::live).ok_or_else(|| AppError::not_found("doetank", uuid)).gql()
            }
        }))
    }
}
