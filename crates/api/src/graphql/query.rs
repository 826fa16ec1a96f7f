//! Queries: read models built by the projections.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use doetank_store::{Backend, EventStore, LogFilter, Period};

use super::errors::GqlResult;
use super::objects::*;
use super::pagination::{
    all_shown, by_position, in_log_order, total_asked, total_if_asked, After, ByPosition, Counted, LogPaging,
    Page, Paging, Window,
};
use super::scalars::*;
use super::statistics::Statistics;
use super::viewer;
use super::{
    PAST_NETWORK_COMPLEXITY, PAST_STATE_COMPLEXITY, SEARCH_COMPLEXITY, WHOLE_LOG_COMPLEXITY,
    WHOLE_TABLES_COMPLEXITY,
};
use crate::app::App;
use crate::error::AppError;
use crate::history::{self, AsOf};
use crate::lesson_ranking::{self, Start};
use crate::log_names;
use crate::rows::*;
use crate::search::{self, SearchTerms};
use crate::sql::{self, Arg, Filter};
use crate::text::exact_key;
use crate::visibility;

/// The doetanks, their people and their lessons (merged into the root `Query`).
#[derive(Default)]
pub struct Query;

/// Which doetanks; every field given must hold.
#[derive(InputObject, Default)]
pub struct DoetankFilter {
    /// Only doetanks in this phase now.
    pub phase: Option<Phase>,
    /// Only doetanks with this status.
    pub status: Option<DoetankStatus>,
    /// A member's organisation or the commissioner (its name, whatever its case).
    pub organisation: Option<String>,
    /// Only doetanks this member coaches.
    pub coach_id: Option<ID>,
    /// Only doetanks this member is one of the innovators of (the lead included).
    pub member_id: Option<ID>,
    /// Only doetanks whose name holds this text, without regard to case (on SQLite, ASCII
    /// letters only): `or` finds "Hack de OR!".
    pub name: Option<String>,
}

/// Which lessons; every field given must hold.
#[derive(InputObject, Default)]
pub struct LessonFilter {
    /// Only lessons of this kind.
    pub kind: Option<LessonKind>,
    /// Only lessons recorded for this phase.
    pub phase: Option<Phase>,
    /// Only lessons with this tag (without regard to case).
    pub tag: Option<String>,
    /// Only lessons recorded by members of this organisation (its name, whatever its case).
    pub organisation: Option<String>,
    /// Only this doetank's lessons.
    pub doetank_id: Option<ID>,
    /// Full-text search over title, body and tags, Dutch-aware (stems, no diacritics);
    /// results are ranked by relevance, title and tags weighing more than the body.
    pub search: Option<String>,
}

/// Which events of the log; every field given must hold.
#[derive(InputObject, Default)]
pub struct EventFilter {
    /// Only the events of this stream (`doetank-<uuid>`; an entity's bare id is refused).
    pub stream_id: Option<String>,
    /// Only the events of streams of this kind (`doetank`, `member`, ...).
    pub stream_type: Option<String>,
    /// Only events of these types (`eventTypes` lists them).
    pub types: Option<Vec<String>>,
    /// Recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this time.
    pub to: Option<DateTime<Utc>>,
}

/// The periods `eventActivity` counts by, in UTC.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Interval {
    /// Calendar days (UTC).
    Day,
    /// From Monday (ISO 8601 weeks).
    Week,
    /// Calendar months.
    Month,
    /// Calendar years.
    Year,
}

impl From<Interval> for Period {
    fn from(interval: Interval) -> Self {
        match interval {
            Interval::Day => Period::Day,
            Interval::Week => Period::Week,
            Interval::Month => Period::Month,
            Interval::Year => Period::Year,
        }
    }
}

/// How many events of one type the log recorded in one period.
#[derive(SimpleObject)]
pub struct EventActivity {
    /// The period's first instant (UTC).
    pub period: DateTime<Utc>,
    /// The kind of stream the events belong to.
    pub stream_type: String,
    /// The event type counted.
    #[graphql(name = "type")]
    pub event_type: String,
    /// How many events of that type the log recorded in the period.
    pub count: i64,
}

/// At most this many rows of `eventActivity` in one answer.
const MAX_ACTIVITY_ROWS: i64 = 10_000;

impl EventFilter {
    /// The log as the viewer of `ctx` reads it through this filter: only a signed-in reader
    /// reads the log, and informal doetanks' events only their team and facilitators do.
    async fn for_reader(filter: Option<Self>, ctx: &Context<'_>) -> Result<LogFilter> {
        let viewer = viewer(ctx);
        viewer.require_reader().gql()?;
        let filter = filter.unwrap_or_default();
        // As `/events.ndjson` does: refused on both backends alike, not only by PostgreSQL.
        let texts = filter.stream_id.iter().map(|t| ("streamId", t));
        let texts = texts.chain(filter.stream_type.iter().map(|t| ("streamType", t)));
        for (field, text) in texts.chain(filter.types.iter().flatten().map(|t| ("types", t))) {
            crate::text::check(field, text).gql()?;
            exact_key(field, text).gql()?;
        }
        let filter = LogFilter {
            stream_ids: filter.stream_id.into_iter().collect(),
            stream_types: filter.stream_type.into_iter().collect(),
            event_types: filter.types.unwrap_or_default(),
            from: filter.from,
            to: filter.to,
            doetanks_visible_to: visibility::log_viewer(&viewer),
        };
        log_names::check_filter(&app(ctx)?.store, &filter).await.gql()?;
        Ok(filter)
    }
}

fn app<'a>(ctx: &'a Context<'_>) -> Result<&'a App> {
    ctx.data::<App>()
}

#[Object(name = "DoetankQuery")]
impl Query {
    /// A doetank now, or, with `asOf` (recorded at or before that time) or `atVersion` (up to
    /// that stream version), as it stood then, replayed from its stream.
    #[graphql(
        complexity = "child_complexity + if as_of.is_some() || at_version.is_some() { PAST_STATE_COMPLEXITY } else { 1 }"
    )]
    pub(super) async fn doetank(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The doetank's id (a UUID).")] id: ID,
        #[graphql(
            desc = "A time: the doetank as the log stood then (what was recorded at or before it); null if it was not yet formed."
        )]
        as_of: Option<DateTime<Utc>>,
        #[graphql(
            desc = "A version of its stream: the doetank just after that event (one past its last is BAD_INPUT)."
        )]
        at_version: Option<i64>,
    ) -> Result<Option<Doetank>> {
        let uuid = parse_id("id", &id).gql()?;
        let as_of = AsOf { time: as_of, version: at_version };
        if as_of.is_now() {
            return load_doetank(ctx, &uuid.to_string()).await;
        }
        if !visibility::can_see_id(&app(ctx)?.store, &viewer(ctx), uuid).await.gql()? {
            return Ok(None);
        }
        let past =
            past_row::<DoetankRow>(ctx, "doetank", uuid, as_of, &format!("{DOETANK_SELECT} WHERE d.id = $1"))
                .await?;
        Ok(past.map(|(row, past)| Doetank { row, past: Some(past) }))
    }

    /// Doetanks in the order they were formed.
    async fn doetanks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which doetanks; all that the viewer may see when absent.")] filter: Option<
            DoetankFilter,
        >,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Doetank>> {
        let paging = Paging::new(first, after).gql()?;
        let filter = filter.unwrap_or_default();
        let mut f = Filter::default();
        if let Some(phase) = filter.phase {
            f.push("d.current_phase = ?", enum_name(phase));
        }
        if let Some(status) = filter.status {
            f.push("d.status = ?", enum_name(status));
        }
        if let Some(org) = filter.organisation {
            f.push(
                "(lower(d.commissioner) = lower(?) OR EXISTS (SELECT 1 FROM rm_doetank_members dm \
                 JOIN rm_members m ON m.id = dm.member_id WHERE dm.doetank_id = d.id AND lower(m.organisation) = lower(?)))",
                exact_key("organisation", &org).gql()?,
            );
        }
        if let Some(coach) = filter.coach_id {
            f.push("d.coach_id = ?", parse_id("coachId", &coach).gql()?);
        }
        if let Some(name) = filter.name {
            f.push("lower(d.name) LIKE ? ESCAPE '\\'", contains_pattern(&name));
        }
        visibility::restrict_doetanks(&mut f, "d", &viewer(ctx));
        if let Some(member) = filter.member_id {
            f.push(
                "EXISTS (SELECT 1 FROM rm_doetank_members dm WHERE dm.doetank_id = d.id AND dm.member_id = ?)",
                parse_id("memberId", &member).gql()?,
            );
        }
        let order = ByPosition::Ascending("d.created_position");
        page_by_position(ctx, "rm_doetanks d", DOETANK_SELECT, f, order, paging, Doetank::live).await
    }

    /// A member now, or as of a time or stream version. Personal data (the name, the e-mail
    /// address) is not history: a past state shows it as it is now, and none once erased.
    #[graphql(
        complexity = "child_complexity + if as_of.is_some() || at_version.is_some() { PAST_STATE_COMPLEXITY } else { 1 }"
    )]
    pub(super) async fn member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member's id (a UUID).")] id: ID,
        #[graphql(desc = "A time: the member as the log stood then; null if not yet registered.")]
        as_of: Option<DateTime<Utc>>,
        #[graphql(
            desc = "A version of its stream: the member just after that event (one past its last is BAD_INPUT)."
        )]
        at_version: Option<i64>,
    ) -> Result<Option<Member>> {
        let uuid = parse_id("id", &id).gql()?;
        let as_of = AsOf { time: as_of, version: at_version };
        if as_of.is_now() {
            return load_member(ctx, &uuid.to_string()).await;
        }
        let past =
            past_row::<MemberRow>(ctx, "member", uuid, as_of, &format!("{MEMBER_SELECT} WHERE m.id = $1"))
                .await?;
        let Some((mut row, _)) = past else { return Ok(None) };
        // Until the thirty-first session a past member had no name, while the same member
        // in a past doetank's list had theirs.
        let personal: Option<PersonalRow> = sql::fetch_small_optional(
            &app(ctx)?.store,
            "SELECT name, email FROM member_personal_data WHERE member_id = $1",
            &[uuid.into()],
        )
        .await
        .gql()?;
        (row.name, row.email) = personal.map_or((None, None), |p| (Some(p.name), p.email));
        Ok(Some(Member(row)))
    }

    /// Members in the order they registered: whom to ask, e.g. a coach or an expert to consult.
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only members of this organisation (its name, whatever its case).")]
        organisation: Option<String>,
        #[graphql(desc = "Only members who list this expertise, matched as a whole entry without \
                          regard to case: `coaching` finds `Coaching`, not `coaching op de werkvloer`.")]
        expertise: Option<String>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Member>> {
        let paging = Paging::new(first, after).gql()?;
        let mut f = Filter::default();
        if let Some(org) = organisation {
            f.push("lower(m.organisation) = lower(?)", exact_key("organisation", &org).gql()?);
        }
        let backend = app(ctx)?.store.backend();
        if let Some(expertise) = expertise {
            f.push(expertise_clause(backend), expertise_key(&expertise).gql()?);
        }
        page_by_position(
            ctx,
            "rm_members m",
            MEMBER_SELECT,
            f,
            ByPosition::Ascending("m.created_position"),
            paging,
            Member,
        )
        .await
    }

    /// A challenge now, or as of a time or stream version.
    #[graphql(
        complexity = "child_complexity + if as_of.is_some() || at_version.is_some() { PAST_STATE_COMPLEXITY } else { 1 }"
    )]
    pub(super) async fn challenge(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The challenge's id (a UUID).")] id: ID,
        #[graphql(desc = "A time: the challenge as the log stood then; null if not yet raised.")]
        as_of: Option<DateTime<Utc>>,
        #[graphql(
            desc = "A version of its stream: the challenge just after that event (one past its last is BAD_INPUT)."
        )]
        at_version: Option<i64>,
    ) -> Result<Option<Challenge>> {
        let uuid = parse_id("id", &id).gql()?;
        let as_of = AsOf { time: as_of, version: at_version };
        if as_of.is_now() {
            return load_challenge(ctx, &uuid.to_string()).await;
        }
        let past = past_row::<ChallengeRow>(
            ctx,
            "challenge",
            uuid,
            as_of,
            &format!("{CHALLENGE_SELECT} WHERE id = $1"),
        )
        .await?;
        Ok(past.map(|(row, _)| Challenge(row)))
    }

    /// Challenges in the order they were raised; `withoutDoetank` lists those still looking for one.
    async fn challenges(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "True: only challenges no doetank the viewer may see has taken on (one that \
                          was discontinued gave its challenge up); false: only those one has.")]
        without_doetank: Option<bool>,
        #[graphql(desc = "Only challenges whose title holds this text, without regard to case (on SQLite, \
                          ASCII letters only).")]
        title: Option<String>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Challenge>> {
        let paging = Paging::new(first, after).gql()?;
        let mut f = Filter::default();
        if let Some(without) = without_doetank {
            // Counted among the doetanks the viewer may see: an informal one works under the
            // radar (rule 5), and its challenge still looks untaken to outsiders. A discontinued
            // doetank gave the challenge up: it is looking again (until the thirty-first session
            // it stayed taken for good).
            let mut taken = String::from(
                "EXISTS (SELECT 1 FROM rm_doetanks vd WHERE vd.challenge_id = c.id AND vd.status <> 'DISCONTINUED'",
            );
            if let Some(condition) = visibility::doetank_condition(&mut f, "vd", &viewer(ctx)) {
                taken.push_str(&format!(" AND {condition}"));
            }
            taken.push(')');
            f.clauses.push(if without { format!("NOT {taken}") } else { taken });
        }
        if let Some(title) = title {
            f.push("lower(c.title) LIKE ? ESCAPE '\\'", contains_pattern(&title));
        }
        let select = CHALLENGE_SELECT.replace("FROM rm_challenges", "FROM rm_challenges c");
        let order = ByPosition::Ascending("c.created_position");
        page_by_position(ctx, "rm_challenges c", &select, f, order, paging, Challenge).await
    }

    /// The network's knowledge base: lessons from every doetank. Newest first, or by relevance
    /// when searching.
    #[graphql(
        complexity = "child_complexity + if filter.as_ref().is_some_and(|f| f.search.is_some()) { SEARCH_COMPLEXITY } else { 1 }"
    )]
    async fn lessons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which lessons; with `search`, ordered by relevance.")] filter: Option<LessonFilter>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Lesson>> {
        let filter = filter.unwrap_or_default();
        let mut f = Filter::default();
        if let Some(kind) = filter.kind {
            f.push("l.kind = ?", enum_name(kind));
        }
        if let Some(phase) = filter.phase {
            f.push("l.phase = ?", enum_name(phase));
        }
        let tag =
            filter.tag.map(|tag| exact_key("tag", &tag).map(|tag| tag.to_lowercase())).transpose().gql()?;
        if let Some(org) = filter.organisation {
            f.push("lower(l.organisation) = lower(?)", exact_key("organisation", &org).gql()?);
        }
        if let Some(doetank) = filter.doetank_id {
            f.push("l.doetank_id = ?", parse_id("doetankId", &doetank).gql()?);
        }
        visibility::restrict_lessons(&mut f, &viewer(ctx), app(ctx)?.store.is_sqlite());
        let backend = app(ctx)?.store.backend();
        let search = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let Some(search) = search else {
            // Newest first, counted only when asked, as the other lists.
            let paging = Paging::new(first, after).gql()?;
            let (from, select, order) = match tag {
                None => ("rm_lessons l", Cow::Borrowed(LESSON_SELECT), ByPosition::Descending("l.position")),
                // A tag's lessons from its index, newest first, so that a page reads its own
                // rows whether the tag is rare or on every lesson: walking all lessons newest
                // first for it took 16 ms at 15,800 lessons for a tag on one, and looking up the
                // tag's lessons and sorting them 53 ms for a tag on all.
                Some(tag) => {
                    f.push("t.tag = ?", tag);
                    let select =
                        LESSON_SELECT.replace(" FROM rm_lessons l", &format!(" FROM {TAGGED_LESSONS}"));
                    (TAGGED_LESSONS, Cow::Owned(select), ByPosition::Descending("t.position"))
                }
            };
            return page_by_position(ctx, from, &select, f, order, paging, Lesson::listed).await;
        };
        if let Some(tag) = tag {
            f.push("EXISTS (SELECT 1 FROM rm_lesson_tags t WHERE t.lesson_id = l.id AND t.tag = ?)", tag);
        }
        // A ranked page's cursor names the lesson before it by its position, and the page goes
        // on from where that lesson ranks now (as a list by date goes on from its row's date):
        // a better match recorded meanwhile shifts no page, and on SQLite, whose bm25 weighs
        // every rank by the whole index, neither do the ranks all moving with it. Until the
        // forty-second session the cursors were offsets; those given out then still read so.
        let paging = Paging::new(first, after).gql()?;
        // A search of punctuation or symbols alone, or of common words alone, would match
        // nothing, which reads as "nothing found" (until the thirty-second session it did).
        let terms = SearchTerms::new(search)
            .map(Arc::new)
            .map_err(|nothing| AppError::bad_input("search", nothing.told()))
            .gql()?;
        // By relevance, then newest first.
        let (from, rank) = match backend {
            Backend::Sqlite(_) => {
                f.push("rm_lessons_fts MATCH ?", terms.fts5_query());
                (
                    "rm_lessons l JOIN rm_lessons_fts ON rm_lessons_fts.rowid = l.rowid",
                    "-bm25(rm_lessons_fts, 10.0, 1.0, 5.0)".to_string(),
                )
            }
            Backend::Postgres(_) => {
                f.push("l.search @@ to_tsquery('dutch', ?)", search::tsquery(search));
                let n = f.args.len();
                ("rm_lessons l", format!("ts_rank_cd(l.search, to_tsquery('dutch', ${n}))::float8"))
            }
        };
        let start = match paging.after {
            After::Start => Start::Offset(0),
            After::Offset(offset) => Start::Offset(offset),
            // The cursor's lesson ranked alone, under the search's own filter.
            After::Position(position) => {
                let mut rank_args = f.args.clone();
                rank_args.push(Arg::Int(position));
                let rank_sql = format!(
                    "SELECT {rank} FROM {from}{} AND l.position = ${}",
                    f.where_sql(),
                    rank_args.len()
                );
                Start::After { position, rank_sql, rank_args }
            }
        };
        // One lesson past the page tells whether another follows.
        let fetched = paging.limit + 1;
        let page = |lessons: Vec<(LessonRow, Option<f64>)>, total: i64| {
            let lessons = lessons
                .into_iter()
                .map(|(row, rank)| (row.position, Lesson { row, rank, search: Some(terms.clone()) }));
            by_position(lessons.collect(), paging, Some(total))
        };
        // On a SQLite file the matches are ordered and counted in memory (see `lesson_ranking`).
        if matches!(backend, Backend::Sqlite(_)) {
            let store = &app(ctx)?.store;
            let (where_sql, args) = (f.where_sql(), f.args.clone());
            let ranked =
                lesson_ranking::on_own_readers(store, from, &where_sql, &rank, args, start.clone(), fetched);
            if let Some(ranked) = ranked.await {
                let ranked = ranked.gql()?;
                let lessons = ranked.lessons.into_iter().map(|(row, rank)| (row, Some(rank)));
                return Ok(page(lessons.collect(), ranked.total));
            }
        }
        // Where the page starts: an offset, or after the cursor's lesson as it ranks now.
        let mut args = f.args.clone();
        let (after_cursor, offset) = match start {
            Start::Offset(offset) => (String::new(), offset),
            Start::After { position, rank_sql, rank_args } => {
                let ranked: Option<(f64,)> =
                    sql::fetch_optional(backend, &rank_sql, &rank_args).await.gql()?;
                let Some((cursor_rank,)) = ranked else {
                    return Err(lesson_ranking::not_found_by_this_search()).gql();
                };
                let n = args.len() + 1;
                args.extend([Arg::Float(cursor_rank), Arg::Int(position)]);
                let after = format!(" WHERE rank < ${n} OR (rank = ${n} AND position < ${})", n + 1);
                (after, 0)
            }
        };
        // Rank and order only what names a lesson, then read the page's rows (late
        // materialisation): sorting hundreds of matches with their bodies cost more than ranking.
        // The matches are counted in the same pass (a search evaluated once, not twice), before
        // a cursor narrows them. Every match is read, so the filter is said as for a count.
        let n = args.len() + 1;
        // (SQLite refuses bm25 beside a window function, hence the innermost query.)
        let sql = format!(
            "{}, m.rank AS rank, m.total AS total FROM (SELECT lesson_id, position, rank, total FROM \
             (SELECT lesson_id, position, rank, COUNT(*) OVER () AS total \
             FROM (SELECT l.id AS lesson_id, l.position AS position, {rank} AS rank FROM {from}{}) matches) \
             counted{after_cursor} ORDER BY rank DESC, position DESC LIMIT ${n} OFFSET ${}) m \
             JOIN rm_lessons l ON l.id = m.lesson_id ORDER BY m.rank DESC, m.position DESC",
            LESSON_SELECT.trim_end_matches(" FROM rm_lessons l"),
            f.counting_where_sql(),
            n + 1,
        );
        args.extend([Arg::Int(fetched), Arg::Int(offset)]);
        let rows: Vec<RankedLesson> = sql::fetch_all(backend, &sql, &args).await.gql()?;
        let total = match rows.first() {
            Some(row) => row.total,
            // A page past the end has no row to carry the count.
            None => sql::fetch_count(
                backend,
                &format!("SELECT COUNT(*) FROM {from}{}", f.counting_where_sql()),
                &f.args,
            )
            .await
            .gql()?,
        };
        Ok(page(rows.into_iter().map(|r| (r.lesson, r.rank)).collect(), total))
    }

    /// The event log itself, in global order: for researchers. Cursors are positions, so a page
    /// never shifts when new events arrive. Page forwards with `first`/`after`, or backwards
    /// with `last`/`before`: the newest `last` events (before the cursor `before`), each page
    /// still in global order — a dashboard's feed of what just happened.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events; the whole log (that the viewer may read) when absent.")]
        filter: Option<EventFilter>,
        #[graphql(desc = "Page forwards: this many events after `after` (20 when absent, at most 100).")]
        first: Option<i32>,
        #[graphql(
            desc = "The `endCursor` of the page before, or a position (`\"1234\"`): the events after it."
        )]
        after: Option<String>,
        #[graphql(desc = "Page backwards: the last this many events before `before` (at most 100).")]
        last: Option<i32>,
        #[graphql(desc = "The `startCursor` of the page after, or a position: the events before it.")]
        before: Option<String>,
    ) -> Result<Page<Event>> {
        let paging = LogPaging::new(first, after, last, before).gql()?;
        let filter = EventFilter::for_reader(filter, ctx).await?;
        let store = &app(ctx)?.store;
        if let Some(after) = paging.after() {
            crate::history::check_resume(store, after).await.gql()?;
        }
        let mut events = if paging.backwards {
            store.read_log_before(&filter, paging.cursor.unwrap_or(i64::MAX), paging.limit + 1).await.gql()?
        } else {
            store.read_log(&filter, paging.cursor.unwrap_or(0), paging.limit + 1).await.gql()?
        };
        let (has_previous, has_next, all_shown) = paging.trim(&mut events);
        // Counted only when asked for: a count reads the whole filtered log, and a researcher
        // paging through it (whose reads pass rule 5's filter) paid for it on every page (until
        // the thirty-first session; 0.3 s a page at 1,000,000 events, the page itself 0.02 s).
        // A page that holds the whole filtered log (a stream's events, say) is its count.
        let total = match all_shown {
            _ if !total_asked(ctx) => None,
            Some(shown) => Some(shown),
            None => Some(store.count_log(&filter).await.gql()?),
        };
        let events = events.into_iter().map(|e| Event(Arc::new(e))).collect();
        Ok(in_log_order(events, |e: &Event| e.0.position, has_previous, has_next, total))
    }

    /// For researchers: how many events of each type the log recorded per day, week, month
    /// (the default) or year — how the network's work went over time, from doetanks formed to
    /// lessons recorded. The same filter and the same eyes as `events`: an informal doetank's
    /// events count only for its team and facilitators. In order of period, stream type and
    /// type; periods without events are left out. At most 10,000 rows: beyond, BAD_INPUT asks
    /// for a narrower filter or a longer interval.
    #[graphql(complexity = "child_complexity + WHOLE_LOG_COMPLEXITY")]
    async fn event_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which events to count, as for `events`.")] filter: Option<EventFilter>,
        #[graphql(default_with = "Interval::Month", desc = "The period to count by; MONTH when absent.")]
        interval: Interval,
    ) -> Result<Vec<EventActivity>> {
        let filter = EventFilter::for_reader(filter, ctx).await?;
        let store = &app(ctx)?.store;
        let rows = store.log_activity(&filter, interval.into(), MAX_ACTIVITY_ROWS + 1).await.gql()?;
        if rows.len() as i64 > MAX_ACTIVITY_ROWS {
            return Err(AppError::bad_input(
                "interval",
                "more than 10,000 periods and types: narrow the filter (types, from, to) or take a longer interval",
            ))
            .gql();
        }
        Ok(rows
            .into_iter()
            .map(|a| EventActivity {
                period: a.period,
                stream_type: a.stream_type,
                event_type: a.event_type,
                count: a.count,
            })
            .collect())
    }

    /// The position of the newest event this answer reflects (its read models' state, the one
    /// state every part of an answer sees). A dashboard asks it with its lists and passes it as
    /// `after` to `doetanksUpdated`, `timelineAppended` or `lessonRecorded`: the changes made
    /// after its answer come first, then live, none lost between the query and the subscription.
    async fn position(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(crate::stamp::Stamp::read(app(ctx)?).await.gql()?.read_models())
    }

    /// Figures for dashboards, now; or, with `asOf`, as they stood then: the whole log up to
    /// that time replayed through the same projections (at most 50,000 events), for a
    /// researcher asking how the network stood at a date.
    #[graphql(
        complexity = "child_complexity + if as_of.is_some() { PAST_NETWORK_COMPLEXITY } else { WHOLE_TABLES_COMPLEXITY }"
    )]
    async fn statistics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A time: the figures over what the log had recorded by then.")] as_of: Option<
            DateTime<Utc>,
        >,
    ) -> Result<Statistics> {
        let Some(as_of) = as_of else { return Ok(Statistics::default()) };
        // At or after the newest event the network stood as it stands: no replay, at any size.
        let store = &app(ctx)?.store;
        let newest = store.read_log_before(&doetank_store::LogFilter::default(), i64::MAX, 1).await.gql()?;
        if newest.last().is_none_or(|e| e.recorded_at <= as_of) {
            return Ok(Statistics::default());
        }
        let past = history::network(store, as_of).await.gql()?;
        let figures = super::statistics::Figures::compute(&past, &viewer(ctx)).await.gql()?;
        Ok(Statistics::known(Arc::new(figures)))
    }
}

/// One aggregate's read-model row as it stood at `as_of`, with the replayed database it came from.
async fn past_row<T: sql::AnyRow>(
    ctx: &Context<'_>,
    stream_type: &str,
    id: uuid::Uuid,
    as_of: AsOf,
    select_by_id: &str,
) -> Result<Option<(T, Backend)>> {
    let Some(past) = history::replay(&app(ctx)?.store, stream_type, id, as_of).await.gql()? else {
        return Ok(None);
    };
    let row: Option<T> = sql::fetch_optional(&past, select_by_id, &[id.into()]).await.gql()?;
    Ok(row.map(|row| (row, past)))
}

read_model_row! {
    /// A member's personal data as it is now.
    struct PersonalRow {
        name: String,
        email: Option<String>,
    }
}

/// Lessons with one tag: `rm_lesson_tags` keeps each lesson's position beside its tags, in an
/// index by tag then position.
const TAGGED_LESSONS: &str = "rm_lesson_tags t JOIN rm_lessons l ON l.id = t.lesson_id";

#[derive(sqlx::FromRow)]
struct RankedLesson {
    #[sqlx(flatten)]
    lesson: LessonRow,
    rank: Option<f64>,
    /// Every lesson the filter matches, not only this page's.
    total: i64,
}

/// A page of `select` from `from` (a table and the alias `select` and `f` use) under `f`, in
/// the order of its rows' positions: keyed by the position of the row before it, so that rows
/// leaving the list meanwhile shift nothing (see [`After`]); counted only when `totalCount` is
/// asked for.
pub(super) async fn page_by_position<
    T: sql::AnyRow + sql::OwnRow + Positioned,
    N: async_graphql::OutputType,
>(
    ctx: &Context<'_>,
    from: &str,
    select: &str,
    mut f: Filter,
    order: ByPosition,
    paging: Paging,
    wrap: impl Fn(T) -> N,
) -> Result<Page<N>> {
    let store = &app(ctx)?.store;
    // The count is of the whole list, without the cursor's clause pushed below.
    let counted = Counted::if_asked(ctx, from, &f);
    // The order, and what "after the row at the cursor's position" is in it.
    let (order, past) = match order {
        ByPosition::Ascending(column) => (column.to_string(), format!("{column} > ?")),
        ByPosition::Descending(column) => (format!("{column} DESC"), format!("{column} < ?")),
        ByPosition::Dated { table, latest_first } => {
            let (direction, later) = if latest_first { (" DESC", "<") } else { ("", ">") };
            let past = format!(
                "EXISTS (SELECT 1 FROM {table} c WHERE c.created_position = ? AND (t.date {later} c.date \
                 OR (t.date = c.date AND t.created_position > c.created_position)))"
            );
            (format!("t.date{direction}, t.created_position"), past)
        }
    };
    let offset = match paging.after {
        After::Start => 0,
        After::Offset(offset) => offset,
        After::Position(position) => {
            f.push(&past, position);
            0
        }
    };
    let window = Window { offset, limit: paging.limit }.probing();
    let rows: Vec<T> = fetch_window(store, select, &f, &order, window).await?;
    let shown = all_shown(paging.after == After::Start, rows.len(), paging.limit);
    let total = total_if_asked(counted, store.backend(), shown).await?;
    Ok(by_position(rows.into_iter().map(|row| (row.position(), wrap(row))).collect(), paging, total))
}

/// Runs `select` with the filter, an order and the page window. A page is a small read (at
/// most a hundred rows and one more, found along an index in the list's order), so on a SQLite
/// file it runs in the answer's own read snapshot, in the calling thread, as the data loaders'
/// look-ups do: through sqlx's pool it was a hop to a connection thread for the transaction,
/// another for the page and one message per row back, and the process spent more time
/// switching threads than in SQLite.
pub(super) async fn fetch_window<T: sql::AnyRow + sql::OwnRow>(
    store: &EventStore,
    select: &str,
    f: &Filter,
    order: &str,
    window: Window,
) -> Result<Vec<T>> {
    let n = f.next_placeholder();
    let sql = format!("{select}{} ORDER BY {order} LIMIT ${} OFFSET ${}", f.where_sql(), n, n + 1);
    let mut args = f.args.clone();
    args.push(Arg::Int(window.limit));
    args.push(Arg::Int(window.offset));
    sql::fetch_small(store, &sql, &args).await.gql()
}

/// The key `members(expertise:)` matches: one entry, without regard to case.
fn expertise_key(expertise: &str) -> Result<String, AppError> {
    Ok(exact_key("expertise", expertise)?.to_lowercase())
}

/// A member (aliased `m`) who lists the expertise bound to `?`: `rm_members.expertise` holds
/// the member's list as JSON text. Members are few next to events, so a scan is cheap.
fn expertise_clause(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite(_) => "EXISTS (SELECT 1 FROM json_each(m.expertise) e WHERE lower(e.value) = ?)",
        Backend::Postgres(_) => {
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text(m.expertise::jsonb) e WHERE lower(e) = ?)"
        }
    }
}

/// A `LIKE` pattern for text that holds `text` anywhere, without regard to case: `%`, `_` and
/// the escape itself stand for themselves.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
