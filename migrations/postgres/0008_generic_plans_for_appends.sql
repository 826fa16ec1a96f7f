-- The statements inside doetank_append take arrays; PostgreSQL planned them again for each call
-- (custom plans: a fifth of the function's time in `perf`). Their plans do not depend on the
-- values (each probes an index per stream or command id), so one generic plan serves.
ALTER FUNCTION doetank_append(
    TEXT[], TEXT[], SMALLINT[], BIGINT[], INTEGER[], TEXT[], UUID[], UUID[], UUID[],
    UUID[], TEXT[], INTEGER[], JSONB[], TIMESTAMPTZ
) SET plan_cache_mode = force_generic_plan;
