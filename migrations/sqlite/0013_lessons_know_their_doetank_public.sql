-- Whether a lesson's doetank is public (rule 5), on the lesson itself: a search or a list read
-- it with the lesson's row instead of probing its doetank for every match (for the anonymous,
-- about a quarter of SQLite's time in a topic search). The projection keeps it: a lesson is
-- recorded with its doetank's state, and a doetank made public makes its lessons so.
ALTER TABLE rm_lessons ADD COLUMN doetank_public BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE rm_lessons
   SET doetank_public = EXISTS (SELECT 1 FROM rm_doetanks d WHERE d.id = rm_lessons.doetank_id AND d.is_public);
