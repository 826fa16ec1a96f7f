-- A command id sent again must come with the same command: each command keeps the hash of its
-- input (computed by the API), and a retry whose hash differs is refused rather than answered
-- with the first command's result. Commands recorded before, or imported, have none and are
-- matched by their id alone.
ALTER TABLE commands ADD COLUMN fingerprint BLOB;
