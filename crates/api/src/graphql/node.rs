//! Relay's Global Object Identification: `node(id)` and `nodes(ids)` fetch anything that has an
//! id, so a Relay client can refetch what it shows, and an explorer can follow an id it found in
//! the log (`Event.payload`, `lineage`) without knowing its type. Ids are UUIDs, unique across
//! every type. Each thing is fetched by its own query's resolver, with that query's rules: an
//! informal doetank, and what belongs to it, is null for whoever may not see it (rule 5), as an
//! id that names nothing is.

use async_graphql::{Context, Interface, Object, Result, ID};

use super::errors::GqlResult;
use super::mutation::app;
use super::network::{Cafe, Charter, Idea, IdeationEvent, NetworkQuery, PilotRow, Reuse};
use super::objects::{load_lesson, Challenge, Doetank, Lesson, Member};
use super::pagination::MAX_PAGE_SIZE;
use super::query::Query;
use super::scalars::*;
use crate::error::AppError;
use crate::rows::read_model_row;
use crate::sql;

/// Anything with an id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "A UUID, unique across every type."))]
pub enum Node {
    Member(Member),
    Challenge(Challenge),
    Doetank(Doetank),
    Lesson(Lesson),
    Cafe(Cafe),
    IdeationEvent(IdeationEvent),
    Idea(Idea),
    Pilot(PilotRow),
    Charter(Charter),
    Reuse(Reuse),
}

/// Which read model holds an id: one indexed look-up per table, in one statement.
const KIND_OF_ID: &str = "SELECT 'member' AS kind FROM rm_members WHERE id = $1 \
     UNION ALL SELECT 'challenge' FROM rm_challenges WHERE id = $1 \
     UNION ALL SELECT 'doetank' FROM rm_doetanks WHERE id = $1 \
     UNION ALL SELECT 'lesson' FROM rm_lessons WHERE id = $1 \
     UNION ALL SELECT 'cafe' FROM rm_cafes WHERE id = $1 \
     UNION ALL SELECT 'ideation_event' FROM rm_ideation_events WHERE id = $1 \
     UNION ALL SELECT 'idea' FROM rm_ideas WHERE id = $1 \
     UNION ALL SELECT 'pilot' FROM rm_pilots WHERE id = $1 \
     UNION ALL SELECT 'charter' FROM rm_charters WHERE id = $1 \
     UNION ALL SELECT 'reuse' FROM rm_reuses WHERE id = $1";

read_model_row! {
    struct KindRow {
        kind: String,
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Whatever has this id, as its own query would answer for it; null when nothing the viewer
    /// may see has it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The id of anything: a member, challenge, doetank, lesson, café, ideation day, idea, pilot, charter or reuse."
        )]
        id: ID,
    ) -> Result<Option<Node>> {
        parse_id("id", &id).gql()?;
        node(ctx, id).await
    }

    /// `node` for each of up to 100 ids, in their order (null where `node` is null).
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 100 ids.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        if ids.len() > MAX_PAGE_SIZE as usize {
            return Err(AppError::bad_input("ids", format!("at most {MAX_PAGE_SIZE} ids at once"))).gql();
        }
        for id in &ids {
            parse_id("ids", id).gql()?;
        }
        futures::future::try_join_all(ids.into_iter().map(|id| node(ctx, id))).await
    }
}

/// The kinds of thing (`member`, `doetank`, `lesson`, ...) that have `id` in the read models:
/// one, or none; more only where ids chosen by clients collided before that was refused.
pub(super) async fn kinds_of(ctx: &Context<'_>, id: &str) -> Result<Vec<String>> {
    let rows: Vec<KindRow> =
        sql::fetch_small(&app(ctx)?.store, KIND_OF_ID, &[id.to_string().into()]).await.gql()?;
    Ok(rows.into_iter().map(|row| row.kind).collect())
}

async fn node(ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
    let Some(kind) = kinds_of(ctx, &id).await?.into_iter().next() else { return Ok(None) };
    node_of_kind(ctx, &kind, id).await
}

/// The thing of `kind` (a stream type, or `lesson`) with `id`, as its own query answers it.
pub(super) async fn node_of_kind(ctx: &Context<'_>, kind: &str, id: ID) -> Result<Option<Node>> {
    let network = NetworkQuery;
    Ok(match kind {
        "member" => Query.member(ctx, id, None, None).await?.map(Node::Member),
        "challenge" => Query.challenge(ctx, id, None, None).await?.map(Node::Challenge),
        "doetank" => Query.doetank(ctx, id, None, None).await?.map(Node::Doetank),
        "lesson" => load_lesson(ctx, &id).await?.map(Node::Lesson),
        "cafe" => network.cafe(ctx, id).await?.map(Node::Cafe),
        "ideation_event" => network.ideation_event(ctx, id).await?.map(Node::IdeationEvent),
        "idea" => network.idea(ctx, id).await?.map(Node::Idea),
        "pilot" => network.pilot(ctx, id).await?.map(Node::Pilot),
        "charter" => network.charter(ctx, id).await?.map(Node::Charter),
        "reuse" => network.reuse(ctx, id).await?.map(Node::Reuse),
        _ => None,
    })
}
