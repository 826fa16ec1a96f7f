-- Lists page in log order (`ORDER BY position` / `created_position`, keyset cursors), and without
-- an index in that order every page read and sorted the whole filtered table: the knowledge
-- base's newest twenty lessons took ~30 ms at 15,800 lessons. With one a page walks the index
-- and stops once it has its rows. The organisation filters compare case-folded names, so their
-- indexes hold the same expression, with the list's order after it.
CREATE INDEX rm_lessons_position ON rm_lessons (position);
CREATE INDEX rm_lessons_organisation ON rm_lessons (lower(organisation), position);
CREATE INDEX rm_members_created ON rm_members (created_position);
CREATE INDEX rm_members_organisation_folded ON rm_members (lower(organisation), created_position);
CREATE INDEX rm_challenges_created ON rm_challenges (created_position);
CREATE INDEX rm_doetanks_created ON rm_doetanks (created_position);
CREATE INDEX rm_reuses_created ON rm_reuses (created_position);
