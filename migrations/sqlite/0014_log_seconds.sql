-- Where a filter on when events were recorded (`from`) can start reading the log. Times are the
-- appending node's clock, so they need not rise with positions (a clock set back, another node
-- behind), and the log cannot be searched by time as it can by position. What does rise is the
-- latest time recorded so far: a row here is the first position at which it reached a new
-- second. No event before that position was recorded in that second or later, so a page of
-- events recorded from T starts at the mark of T's second (or the next one there is) instead of
-- at the start of the log: at 1,000,000 events, 0.2 s a page became a few milliseconds.
CREATE TABLE log_seconds (
    second INTEGER PRIMARY KEY, -- Unix seconds
    position INTEGER NOT NULL
);

INSERT INTO log_seconds (second, position)
SELECT s, MIN(position)
  FROM (SELECT position, CAST(strftime('%s', MAX(recorded_at) OVER (ORDER BY position)) AS INTEGER) AS s
          FROM events)
 GROUP BY s;

-- Every insert into the log (appends and imports alike) keeps the marks.
CREATE TRIGGER events_mark_second AFTER INSERT ON events
WHEN CAST(strftime('%s', NEW.recorded_at) AS INTEGER)
     > COALESCE((SELECT second FROM log_seconds ORDER BY second DESC LIMIT 1), -9223372036854775808)
BEGIN
    INSERT INTO log_seconds (second, position)
    VALUES (CAST(strftime('%s', NEW.recorded_at) AS INTEGER), NEW.position);
END;
