//! The story of a whole log told in memory, for a rebuild. [`write`](super::write)'s statements
//! look a label and a clock up for every event and upsert nodes and clocks that later events
//! change again: a third of a rebuild's statements, the slowest third (a timeline line selects
//! three times). Here those look-ups are map look-ups, each node, link and clock is written once
//! at the end, and a timeline line is a plain insert. The rows are the statements' rows, in the
//! order the statements would have made them (the rebuild tests compare the two whole).

use std::collections::HashMap;

use super::Chapter;

/// One event's line of the story: what the statements take from the event, and its chapter.
pub struct Line {
    pub position: i64,
    pub stream_type: String,
    pub stream_id: String,
    pub event_type: String,
    /// When it was recorded, as stored (`ts`).
    pub recorded_at: String,
    pub chapter: Chapter,
}

/// Rows keyed as their table's primary key, kept in the order they were first written (their
/// rowid order, had each been inserted by a statement).
struct Rows<K, V> {
    at: HashMap<K, usize>,
    rows: Vec<(K, V)>,
}

impl<K, V> Default for Rows<K, V> {
    fn default() -> Self {
        Rows { at: HashMap::new(), rows: Vec::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Rows<K, V> {
    /// `INSERT ... ON CONFLICT DO UPDATE`: a new key goes last, a known one keeps its place.
    fn upsert(&mut self, key: K, value: V) {
        match self.at.get(&key) {
            Some(&i) => self.rows[i].1 = value,
            None => self.insert(key, value),
        }
    }

    /// `INSERT ... ON CONFLICT DO NOTHING`.
    fn insert_new(&mut self, key: K, value: V) {
        if !self.at.contains_key(&key) {
            self.insert(key, value);
        }
    }

    fn insert(&mut self, key: K, value: V) {
        self.at.insert(key.clone(), self.rows.len());
        self.rows.push((key, value));
    }

    fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.at.get(key).map(|&i| &self.rows[i].1)
    }
}

/// A lineage node's key, `kind` and `id` in one string (so a look-up borrows instead of
/// allocating a pair): a kind never holds the separator.
fn node_key(kind: &str, id: &str) -> String {
    format!("{kind}\u{1}{id}")
}

/// The story so far: the tables of [`super::TABLES`] but the timeline, which is written as it
/// goes.
#[derive(Default)]
pub struct StoryFold {
    /// `rm_lineage_nodes`: (kind, id) to label.
    nodes: Rows<String, String>,
    /// `rm_lineage_links`: (from kind, from id, to kind, to id, relation) to the first position.
    links: Rows<(&'static str, String, &'static str, String, &'static str), i64>,
    /// `rm_stream_clock`: stream id to the latest domain time.
    clock: Rows<String, String>,
}

/// A line of `rm_timeline`: position, kind, subject id, event type, when it occurred, summary.
type TimelineRow = (i64, String, String, String, String, String);

impl StoryFold {
    /// Tells `line` as the statements of `write` would: its labels, clock and links first, then
    /// its timeline line, which names things by their labels as they stand after this event.
    fn tell(&mut self, line: Line) -> TimelineRow {
        let c = line.chapter;
        // The subject's id: the stream id after `type-`, as `apply::id_of` takes it.
        let subject_id =
            line.stream_id.get(line.stream_type.len() + 1..).unwrap_or(&line.stream_id).to_string();
        let subject = node_key(&line.stream_type, &subject_id);
        if let Some(label) = c.label {
            self.nodes.upsert(subject.clone(), label);
        }
        for (kind, id, label) in c.nodes {
            self.nodes.upsert(node_key(kind, &id), label);
        }
        if let Some(at) = &c.at {
            self.clock.upsert(line.stream_id.clone(), at.clone());
        }
        let occurred_at =
            c.at.or_else(|| self.clock.get(line.stream_id.as_str()).cloned())
                .unwrap_or_else(|| line.recorded_at.clone());
        let label = |key: Option<&str>| key.and_then(|k| self.nodes.get(k)).map_or("?", String::as_str);
        let other = c.other.map(|(kind, id)| node_key(kind, &id));
        let summary =
            c.summary.replace("{name}", label(Some(&subject))).replace("{other}", label(other.as_deref()));
        for (from_kind, from_id, to_kind, to_id, relation) in c.links {
            self.links.insert_new((from_kind, from_id, to_kind, to_id, relation), line.position);
        }
        (line.position, line.stream_type, subject_id, line.event_type, occurred_at, summary)
    }

    /// Tells every line of a batch, in order, writing their timeline lines on `db`.
    pub fn tell_all(&mut self, db: &rusqlite::Connection, lines: Vec<Line>) -> rusqlite::Result<()> {
        let mut insert = db.prepare_cached(
            "INSERT INTO rm_timeline (position, kind, subject_id, event_type, occurred_at, summary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
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
        }
        Ok(())
    }

    /// Writes the nodes, links and clocks on `db`, once each, as they stand at the end, in the
    /// order of their primary keys: each insert then appends to the key's B-tree, here and in
    /// the swap, instead of landing on a random page of it. No reader depends on their rowids.
    pub fn finish(self, db: &rusqlite::Connection) -> rusqlite::Result<()> {
        let (mut nodes, mut links, mut clocks) = (self.nodes.rows, self.links.rows, self.clock.rows);
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
        Ok(())
    }
}
