-- Where a filter on when events were recorded (`to`) can stop reading the log. The marks of
-- `log_seconds` rise with positions; an event recorded in an earlier second than the latest time
-- before it (nodes' clocks differ, a clock is set back, an imported history) is "late" and is
-- kept here. An event recorded before T is at a position before the first mark past T's second,
-- or is a late one of T's second or earlier: a read up to T stops at the later of the two
-- instead of reading on to the end of the log.
CREATE TABLE log_late (
    position BIGINT PRIMARY KEY,
    second BIGINT NOT NULL -- Unix seconds
);
CREATE INDEX log_late_by_second ON log_late (second, position);

INSERT INTO log_late (position, second)
SELECT position, s
  FROM (SELECT position, floor(extract(epoch FROM recorded_at))::BIGINT AS s,
               floor(extract(epoch FROM MAX(recorded_at) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING
                                                                                AND 1 PRECEDING)))::BIGINT AS latest
          FROM events) AS times
 WHERE s < latest;

-- The insert's statement trigger keeps them, before it writes this insert's marks: the latest
-- second before a new event is that of the marks so far or of the new events before it.
CREATE OR REPLACE FUNCTION notify_log_appended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head BIGINT;
    marked BIGINT;
BEGIN
    SELECT MAX(position) INTO head FROM appended;
    IF head IS NOT NULL THEN
        SELECT COALESCE(MAX(second), -9223372036854775808) INTO marked FROM log_seconds;
        INSERT INTO log_late (position, second)
        SELECT position, s
          FROM (SELECT position, floor(extract(epoch FROM recorded_at))::BIGINT AS s,
                       GREATEST(marked, COALESCE(floor(extract(epoch FROM MAX(recorded_at) OVER (
                           ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)))::BIGINT, marked)) AS latest_before
                  FROM appended) AS times
         WHERE s < latest_before;
        INSERT INTO log_seconds (second, position)
        SELECT s, MIN(position)
          FROM (SELECT position, floor(extract(epoch FROM MAX(recorded_at) OVER (ORDER BY position)))::BIGINT AS s
                  FROM appended) AS latest
         WHERE s > marked
         GROUP BY s;
        PERFORM pg_notify('doetank_log', head::text);
    END IF;
    RETURN NULL;
END
$$;
