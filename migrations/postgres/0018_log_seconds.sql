-- Where a filter on when events were recorded (`from`) can start reading the log. Times are the
-- appending node's clock, so they need not rise with positions (nodes' clocks differ, a clock is
-- set back), and the log cannot be searched by time as it can by position. What does rise is
-- the latest time recorded so far: a row here is the first position at which it reached a new
-- second. No event before that position was recorded in that second or later, so a page of
-- events recorded from T starts at the mark of T's second (or the next one there is) instead of
-- at the start of the log.
CREATE TABLE log_seconds (
    second BIGINT PRIMARY KEY, -- Unix seconds
    position BIGINT NOT NULL
);

INSERT INTO log_seconds (second, position)
SELECT s, MIN(position)
  FROM (SELECT position, floor(extract(epoch FROM MAX(recorded_at) OVER (ORDER BY position)))::BIGINT AS s
          FROM events) AS latest
 GROUP BY s;

-- The insert's statement trigger already sees its new rows: it keeps the marks too. Appends
-- hold the log's head locked, so marks are written in the order of the positions they name.
CREATE OR REPLACE FUNCTION notify_log_appended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head BIGINT;
BEGIN
    SELECT MAX(position) INTO head FROM appended;
    IF head IS NOT NULL THEN
        INSERT INTO log_seconds (second, position)
        SELECT s, MIN(position)
          FROM (SELECT position, floor(extract(epoch FROM MAX(recorded_at) OVER (ORDER BY position)))::BIGINT AS s
                  FROM appended) AS latest
         WHERE s > COALESCE((SELECT MAX(second) FROM log_seconds), -9223372036854775808)
         GROUP BY s;
        PERFORM pg_notify('doetank_log', head::text);
    END IF;
    RETURN NULL;
END
$$;
