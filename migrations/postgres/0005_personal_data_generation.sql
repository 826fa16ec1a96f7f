-- Personal data is written outside the log; this counter moves with every such write, so an
-- answer cached before it (on any node) is known to be stale after it.
INSERT INTO rm_checkpoint (name, position) VALUES ('personal_data', 0);
