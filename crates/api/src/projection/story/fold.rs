//! The story of a whole log told in memory, for a rebuild. [`write`](super::write)'s statements
//! look a label and a clock up for every event and upsert nodes and clocks that later events
//! change again: a third of a rebuild's statements, the slowest third (a timeline line selects
//! three times). Here those look-ups are map look-ups, each node, link and clock is written once
//! at the end, and a timeline line is a plain insert. The rows are the statements' rows (the
//! rebuild tests compare the two whole); only the rowids of nodes, links and clocks differ.

// SipHash was a tenth of this fold's CPU; its keys come from our own log.
use foldhash::HashMap;

use super::Chapter;

/// One event's line of the story: what the statements take from the event, and its chapter.
pub struct Line {
    pub position: i64,
    pub stream_type: String,
    pub stream_id: String,
    /// The subject's id within its stream type (`apply::id_of`).
    pub subject_id: String,
    pub event_type: String,
    /// When it was recorded: a line's time only where neither the event nor its stream's
    /// clock says when it happened, so it is written out (`ts`) only then.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub chapter: Chapter,
}

/// A lineage node's key, `kind` and `id` in one string (so a look-up borrows instead of
/// allocating a pair): a kind never holds the separator.
fn node_key(kind: &str, id: &str) -> String {
    let mut key = String::with_capacity(kind.len() + 1 + id.len());
    key.push_str(kind);
    key.push('\u{1}');
    key.push_str(id);
    key
}

/// `summary` with `{name}` and then `{other}` replaced, as SQL's nested `REPLACE` does; the
/// second replacement (and its string) only where `{other}` is there to replace.
fn fill(summary: &str, name: &str, other: &str) -> String {
    let named = summary.replace("{name}", name);
    if named.contains("{other}") {
        named.replace("{other}", other)
    } else {
        named
    }
}

/// The story so far: the tables of [`super::TABLES`] but the timeline and its rises, which are
/// written as it goes.
#[derive(Default)]
pub struct StoryFold {
    /// `rm_lineage_nodes`: (kind, id) to label.
    nodes: HashMap<String, String>,
    /// `rm_lineage_links`: (from kind, from id, to kind, to id, relation) to the first position.
    links: HashMap<(&'static str, String, &'static str, String, &'static str), i64>,
    /// `rm_stream_clock`: stream id to the latest domain time.
    clock: HashMap<String, String>,
    /// The latest time of a timeline line told so far: a line later than it is a rise
    /// (`rm_timeline_rises`).
    latest: Option<String>,
    /// The lines no later than every line told after them so far (`rm_timeline_falls`), in
    /// order, their times rising: a line takes the place of those later than it. Written at
    /// the end, when none can stop being one.
    falls: Vec<(i64, String)>,
}

/// A line of `rm_timeline`: position, kind, subject id, event type, when it occurred, summary.
type TimelineRow = (i64, String, String, String, String, String);

impl StoryFold {
    /// Tells `line` as the statements of `write` would: its labels, clock and links first, then
    /// its timeline line, which names things by their labels as they stand after this event.
    fn tell(&mut self, line: Line) -> TimelineRow {
        let c = line.chapter;
        let subject = node_key(&line.stream_type, &line.subject_id);
        // Upserts (`ON CONFLICT DO UPDATE`).
        if let Some(label) = c.label {
            self.nodes.insert(subject.clone(), label);
        }
        for (kind, id, label) in c.nodes {
            self.nodes.insert(node_key(kind, &id), label);
        }
        if let Some(at) = &c.at {
            match self.clock.get_mut(line.stream_id.as_str()) {
                Some(clock) => clock.clone_from(at),
                None => {
                    self.clock.insert(line.stream_id.clone(), at.clone());
                }
            }
        }
        let occurred_at = c.at.or_else(|| self.clock.get(line.stream_id.as_str()).cloned());
        let occurred_at = occurred_at.unwrap_or_else(|| crate::sql::ts(line.recorded_at));
        let other = c.other.map(|(kind, id)| node_key(kind, &id));
        let label = |key: Option<&str>| key.and_then(|k| self.nodes.get(k)).map_or("?", String::as_str);
        let summary = fill(&c.summary, label(Some(&subject)), label(other.as_deref()));
        for (from_kind, from_id, to_kind, to_id, relation) in c.links {
            // `ON CONFLICT DO NOTHING`: a link keeps the position that first made it.
            self.links.entry((from_kind, from_id, to_kind, to_id, relation)).or_insert(line.position);
        }
        (line.position, line.stream_type, line.subject_id, line.event_type, occurred_at, summary)
    }

    /// Tells every line of a batch, in order, writing their timeline lines on `db`.
    pub fn tell_all(&mut self, db: &rusqlite::Connection, lines: Vec<Line>) -> rusqlite::Result<()> {
        let mut insert = db.prepare_cached(
            "INSERT INTO rm_timeline (position, kind, subject_id, event_type, occurred_at, summary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut rise =
            db.prepare_cached("INSERT INTO rm_timeline_rises (position, occurred_at) VALUES (?1, ?2)")?;
        for line in lines {
            let (position, kind, subject_id, event_type, occurred_at, summary) = self.tell(line);
            insert.execute(rusqlite::params![
                position,
                kind,
                subject_id,
                event_type,
                occurred_at,
                summary
            ])?;
            if self.latest.as_ref().is_none_or(|latest| occurred_at > *latest) {
                rise.execute(rusqlite::params![position, occurred_at])?;
                self.latest = Some(occurred_at.clone());
            }
            while self.falls.last().is_some_and(|(_, at)| *at > occurred_at) {
                self.falls.pop();
            }
            self.falls.push((position, occurred_at));
        }
        Ok(())
    }

    /// Writes the nodes, links and clocks on `db`, once each, as they stand at the end, in the
    /// order of their primary keys: each insert then appends to the key's B-tree, here and in
    /// the swap, instead of landing on a random page of it. No reader depends on their rowids.
    pub fn finish(self, db: &rusqlite::Connection) -> rusqlite::Result<()> {
        let mut nodes: Vec<_> = self.nodes.into_iter().collect();
        let mut links: Vec<_> = self.links.into_iter().collect();
        let mut clocks: Vec<_> = self.clock.into_iter().collect();
        nodes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        links.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        clocks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut node = db.prepare("INSERT INTO rm_lineage_nodes (kind, id, label) VALUES (?1, ?2, ?3)")?;
        for (key, label) in &nodes {
            let (kind, id) = key.split_once('\u{1}').unwrap_or((key, ""));
            node.execute(rusqlite::params![kind, id, label])?;
        }
        let mut link = db.prepare(
            "INSERT INTO rm_lineage_links (from_kind, from_id, to_kind, to_id, relation, position) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for ((from_kind, from_id, to_kind, to_id, relation), position) in &links {
            link.execute(rusqlite::params![from_kind, from_id, to_kind, to_id, relation, position])?;
        }
        let mut clock = db.prepare("INSERT INTO rm_stream_clock (stream_id, at) VALUES (?1, ?2)")?;
        for (stream_id, at) in &clocks {
            clock.execute(rusqlite::params![stream_id, at])?;
        }
        let mut fall = db.prepare("INSERT INTO rm_timeline_falls (position, occurred_at) VALUES (?1, ?2)")?;
        for (position, at) in &self.falls {
            fall.execute(rusqlite::params![position, at])?;
        }
        Ok(())
    }
}
