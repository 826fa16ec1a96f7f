-- A lineage query starts from a bare id (`lineage(id:)` does not say its kind): without an index
-- on `id` alone every call scanned all nodes (1.9 ms at 18,000 nodes on SQLite, growing with the
-- network; 0.01 ms with it).
CREATE INDEX rm_lineage_nodes_id ON rm_lineage_nodes (id);
