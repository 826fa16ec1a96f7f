-- Every answer reads the read models in one snapshot, and a rebuild swaps their tables for new
-- ones. An answer shares this table's lock before its snapshot, and the swap takes it alone
-- before its renames: a snapshot is then either held across the swap, which waits for it, or
-- taken after it. One lock per answer, where locking each read-model table took 22, more than
-- the 16 a backend takes on its fast path.
CREATE TABLE read_model_swap_guard ();
