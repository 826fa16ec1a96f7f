-- Where a timeline read `to` a time can end. A line's time is the story's (a café is scheduled
-- ahead, a fact is recorded late), so the times do not rise with positions; the lines whose time
-- is no later than every line's after them do (each a "fall"). No line at or after the first
-- fall at or after T is before T: a read to T ends there instead of at the timeline's end.
CREATE TABLE rm_timeline_falls (
    position BIGINT PRIMARY KEY,
    occurred_at TEXT NOT NULL
);
CREATE INDEX rm_timeline_falls_by_time ON rm_timeline_falls (occurred_at, position);

INSERT INTO rm_timeline_falls (position, occurred_at)
SELECT position, occurred_at
  FROM (SELECT position, occurred_at,
               MIN(occurred_at) OVER (ORDER BY position ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS earliest
          FROM rm_timeline) AS lines
 WHERE earliest IS NULL OR occurred_at <= earliest;
