-- Where a timeline read `from` a time can start. A line's time is the story's (a café is
-- scheduled ahead, a fact is recorded late), so the times do not rise with positions; the lines
-- whose time is later than every line's before them do (each a "rise"). The first line at or
-- after T is the first rise at or after T, or after it: a read from T starts there instead of
-- at the timeline's beginning.
CREATE TABLE rm_timeline_rises (
    position INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL
);
CREATE INDEX rm_timeline_rises_by_time ON rm_timeline_rises (occurred_at, position);

INSERT INTO rm_timeline_rises (position, occurred_at)
SELECT position, occurred_at
  FROM (SELECT position, occurred_at,
               MAX(occurred_at) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS latest
          FROM rm_timeline)
 WHERE latest IS NULL OR occurred_at > latest;
