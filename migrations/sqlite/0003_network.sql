-- Read models for the rest of the network: cafés, ideation days, pilots, charters, knowledge
-- reuse; the lineage graph; and the timeline.

CREATE TABLE rm_cafes (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    date TEXT NOT NULL,
    venue TEXT NOT NULL,
    status TEXT NOT NULL,
    attendance INTEGER,
    cancel_reason TEXT,
    version INTEGER NOT NULL,
    created_position INTEGER NOT NULL
);

CREATE TABLE rm_cafe_program (
    position INTEGER PRIMARY KEY,
    cafe_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    person TEXT NOT NULL
);
CREATE INDEX rm_cafe_program_cafe ON rm_cafe_program (cafe_id);

CREATE TABLE rm_ideation_events (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    central_question TEXT NOT NULL,
    date TEXT NOT NULL,
    venue TEXT NOT NULL,
    status TEXT NOT NULL,
    participant_count INTEGER,
    jury_motivation TEXT,
    version INTEGER NOT NULL,
    created_position INTEGER NOT NULL
);

CREATE TABLE rm_ideas (
    id TEXT PRIMARY KEY,
    ideation_event_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    submitted_by TEXT,
    pitched BOOLEAN NOT NULL,
    jury_rank INTEGER,
    position INTEGER NOT NULL
);
CREATE INDEX rm_ideas_event ON rm_ideas (ideation_event_id);

CREATE TABLE rm_idea_follow_ups (
    position INTEGER PRIMARY KEY,
    idea_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    organisation TEXT,
    doetank_id TEXT
);
CREATE INDEX rm_idea_follow_ups_idea ON rm_idea_follow_ups (idea_id);

CREATE TABLE rm_pilots (
    id TEXT PRIMARY KEY,
    hindering_rule TEXT NOT NULL,
    alternative TEXT NOT NULL,
    expected_gain TEXT NOT NULL,
    applicant_id TEXT NOT NULL,
    applicant_function TEXT NOT NULL,
    status TEXT NOT NULL,
    mandate_granted_by TEXT,
    suspended_from TEXT,
    suspended_until TEXT,
    findings TEXT,
    outcome TEXT,
    note TEXT,
    version INTEGER NOT NULL,
    created_position INTEGER NOT NULL
);

CREATE TABLE rm_charters (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    initiators TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_position INTEGER NOT NULL
);

CREATE TABLE rm_charter_signatures (
    position INTEGER PRIMARY KEY,
    charter_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    member_id TEXT,
    organisation TEXT,
    signed_at TEXT NOT NULL
);
CREATE INDEX rm_charter_signatures_charter ON rm_charter_signatures (charter_id);

CREATE TABLE rm_reuses (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_doetank_id TEXT NOT NULL,
    source_lesson_id TEXT,
    pledge TEXT NOT NULL,
    fulfilled BOOLEAN NOT NULL,
    fulfilment_note TEXT,
    reused_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_position INTEGER NOT NULL
);

-- The multi-stage rocket (seed 003): who came from what, built from events only.
CREATE TABLE rm_lineage_nodes (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE rm_lineage_links (
    from_kind TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_kind TEXT NOT NULL,
    to_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (from_kind, from_id, to_kind, to_id, relation)
);
CREATE INDEX rm_lineage_links_to ON rm_lineage_links (to_kind, to_id);

-- The network's history as people read it: one line per event, in log order.
CREATE TABLE rm_timeline (
    position INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX rm_timeline_kind ON rm_timeline (kind, position);

-- The latest domain time seen per stream, for events that carry no time of their own.
CREATE TABLE rm_stream_clock (
    stream_id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
