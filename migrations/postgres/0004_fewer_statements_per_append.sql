-- A stream's version is the highest version among its events: the UNIQUE (stream_id, version)
-- index answers that directly, so a separate table kept in step costs a write and buys nothing.
DROP TABLE streams;
