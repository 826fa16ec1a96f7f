-- Look-ups by a reference rather than a key read their whole table for each row that asks:
-- `challenges(withoutDoetank:)` asked for every challenge whether a doetank took it up, and
-- scanned every doetank each time (83 ms at 1,318 of each, growing with their product);
-- a challenge's doetanks and a doetank's reuses scanned theirs too.
CREATE INDEX rm_doetanks_challenge ON rm_doetanks (challenge_id);
CREATE INDEX rm_reuses_source_doetank ON rm_reuses (source_doetank_id);
