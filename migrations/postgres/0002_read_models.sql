-- Read models: tables built only from events, with a checkpoint (the last position applied).

CREATE TABLE rm_checkpoint (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO rm_checkpoint (name, position) VALUES ('read_models', 0);

CREATE TABLE rm_members (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    sector TEXT NOT NULL,
    expertise TEXT NOT NULL,
    support_committee BOOLEAN NOT NULL,
    erased BOOLEAN NOT NULL,
    registered_at TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_position BIGINT NOT NULL
);
CREATE INDEX rm_members_organisation ON rm_members (organisation);

CREATE TABLE rm_challenges (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    raised_by TEXT NOT NULL,
    origin TEXT NOT NULL,
    commissioner TEXT,
    raised_at TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_position BIGINT NOT NULL
);

CREATE TABLE rm_challenge_supporters (
    challenge_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (challenge_id, member_id)
);

CREATE TABLE rm_doetanks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    coach_id TEXT,
    commissioner TEXT,
    current_phase TEXT,
    status TEXT NOT NULL,
    is_public BOOLEAN NOT NULL,
    formed_at TEXT NOT NULL,
    concluded_at TEXT,
    reflection TEXT,
    version BIGINT NOT NULL,
    created_position BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX rm_doetanks_phase ON rm_doetanks (current_phase);
CREATE INDEX rm_doetanks_coach ON rm_doetanks (coach_id);

CREATE TABLE rm_doetank_members (
    doetank_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    sector TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    PRIMARY KEY (doetank_id, member_id)
);
CREATE INDEX rm_doetank_members_member ON rm_doetank_members (member_id);

CREATE TABLE rm_doetank_phases (
    doetank_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    summary TEXT,
    PRIMARY KEY (doetank_id, phase)
);

-- Kick-offs, expert consultations, updates and hand-overs: one row per event.
CREATE TABLE rm_doetank_activities (
    position BIGINT PRIMARY KEY,
    doetank_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    organisation TEXT,
    channel TEXT,
    link TEXT,
    on_date TEXT,
    at TEXT NOT NULL
);
CREATE INDEX rm_doetank_activities_doetank ON rm_doetank_activities (doetank_id, kind);

CREATE TABLE rm_lesson_tags (
    lesson_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (lesson_id, tag)
);
CREATE INDEX rm_lesson_tags_tag ON rm_lesson_tags (tag);

-- Personal data lives outside the log, so that erasing a member removes it for good.
-- It is not a projection: a rebuild leaves it alone.
CREATE TABLE member_personal_data (
    member_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT
);

CREATE TABLE rm_lessons (
    id TEXT PRIMARY KEY,
    doetank_id TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    organisation TEXT,
    phase TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL,
    title_stems TEXT NOT NULL,
    body_stems TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    position BIGINT NOT NULL,
    -- PostgreSQL's own Dutch snowball configuration; title and tags weigh more than the body.
    search TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('dutch', title), 'A')
        || setweight(to_tsvector('simple', tags), 'A')
        || setweight(to_tsvector('dutch', body), 'B')
    ) STORED
);
CREATE INDEX rm_lessons_doetank ON rm_lessons (doetank_id);
CREATE INDEX rm_lessons_search ON rm_lessons USING GIN (search);
