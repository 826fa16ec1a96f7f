-- The append-only event log shared by every stream, and what makes appends safe.

-- Global position counter. Every append updates this one row first, which serialises writers,
-- so positions become visible in the order they were given out and no reader can skip one.
CREATE TABLE log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO log_head (id, position) VALUES (1, 0);

CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    event_id BLOB NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    stream_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    actor TEXT,
    command_id BLOB,
    correlation_id BLOB NOT NULL,
    causation_id BLOB,
    recorded_at TEXT NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_stream_type ON events (stream_type, position);
CREATE INDEX events_event_type ON events (event_type, position);

-- Idempotency keys: the first result of each command, returned again on a retry.
CREATE TABLE commands (
    command_id BLOB PRIMARY KEY,
    stream_id TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    first_position INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    recorded_at TEXT NOT NULL
);

-- Append-only is enforced by the database too, not only by our code.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
