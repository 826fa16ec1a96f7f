-- Which version of the projection code built the read models. A server finding another
-- version (0: built before this table existed) rebuilds them from the log when it starts, so
-- that a change of how a projection writes its rows reaches rows written before it.
CREATE TABLE projection_version (version BIGINT NOT NULL);
INSERT INTO projection_version (version) VALUES (0);
