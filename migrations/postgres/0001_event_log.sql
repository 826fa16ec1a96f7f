-- The append-only event log shared by every stream, and what makes appends safe.

-- Global position counter. Every append updates this one row first; the row lock is held until
-- commit, so positions become visible in the order they were given out and no reader can skip
-- one (a plain sequence would let position 11 commit before 10).
CREATE TABLE log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO log_head (id, position) VALUES (1, 0);

CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE events (
    position BIGINT PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    stream_type TEXT NOT NULL,
    version BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload JSONB NOT NULL,
    actor TEXT,
    command_id UUID,
    correlation_id UUID NOT NULL,
    causation_id UUID,
    recorded_at TIMESTAMPTZ NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_stream_type ON events (stream_type, position);
CREATE INDEX events_event_type ON events (event_type, position);

CREATE TABLE commands (
    command_id UUID PRIMARY KEY,
    stream_id TEXT NOT NULL,
    stream_version BIGINT NOT NULL,
    first_position BIGINT NOT NULL,
    last_position BIGINT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
