-- Where a filter on when events were recorded (`to`) can stop reading the log. The marks of
-- `log_seconds` rise with positions; an event recorded in an earlier second than the latest time
-- before it (a clock set back, another node behind, an imported history) is "late" and is kept
-- here. An event recorded before T is at a position before the first mark past T's second, or
-- is a late one of T's second or earlier: a read up to T stops at the later of the two instead
-- of reading on to the end of the log.
CREATE TABLE log_late (
    position INTEGER PRIMARY KEY,
    second INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX log_late_by_second ON log_late (second, position);

INSERT INTO log_late (position, second)
SELECT position, s
  FROM (SELECT position, CAST(strftime('%s', recorded_at) AS INTEGER) AS s,
               CAST(strftime('%s', MAX(recorded_at) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING
                                                                              AND 1 PRECEDING)) AS INTEGER) AS latest
          FROM events)
 WHERE s < latest;

-- Every insert into the log keeps them; the latest second before it is the last mark before it
-- (whether or not this insert's own mark is written yet).
CREATE TRIGGER events_mark_late AFTER INSERT ON events
WHEN CAST(strftime('%s', NEW.recorded_at) AS INTEGER)
     < (SELECT second FROM log_seconds WHERE position < NEW.position ORDER BY second DESC LIMIT 1)
BEGIN
    INSERT INTO log_late (position, second)
    VALUES (NEW.position, CAST(strftime('%s', NEW.recorded_at) AS INTEGER));
END;
