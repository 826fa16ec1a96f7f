-- Fewer statements per append (each one is a hop to SQLite's connection thread).

-- A stream's version is the highest version among its events: the UNIQUE (stream_id, version)
-- index answers that directly, so a separate table kept in step costs a write and buys nothing.
DROP TABLE streams;

-- On SQLite, BEGIN IMMEDIATE already serialises writers, so the head need not be bumped up
-- front to take a lock: it follows the inserted events, inside the same transaction.
CREATE TRIGGER events_advance_head AFTER INSERT ON events
BEGIN UPDATE log_head SET position = NEW.position WHERE id = 1 AND position < NEW.position; END;
