-- A command id sent again must come with the same command: each command keeps the hash of its
-- input (computed by the API), and a retry whose hash differs on the same stream is refused
-- (verdict `changed`) rather than answered with the first command's result. Commands recorded
-- before, or imported, have none and are matched by their id alone. `doetank_append` takes
-- the hashes as a fifteenth argument; otherwise as 0007's. That fourteen-argument version
-- stays beside it: nodes of the previous build keep appending during a rolling upgrade (their
-- commands recorded without a fingerprint).
ALTER TABLE commands ADD COLUMN fingerprint BYTEA;

CREATE FUNCTION doetank_append(
    p_streams TEXT[], p_types TEXT[], p_kinds SMALLINT[], p_expected BIGINT[], p_counts INTEGER[],
    p_actors TEXT[], p_commands UUID[], p_correlations UUID[], p_causations UUID[],
    e_ids UUID[], e_types TEXT[], e_schemas INTEGER[], e_payloads JSONB[], p_now TIMESTAMPTZ,
    p_fingerprints BYTEA[]
) RETURNS TABLE (verdict TEXT, stream_version BIGINT, first_position BIGINT, last_position BIGINT, detail TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    head BIGINT;
    before BIGINT;
    versions JSONB;
    seen JSONB;
    used JSONB;
    actual BIGINT;
    n INTEGER;
    e INTEGER := 0;
    w_positions BIGINT[] := '{}';
    w_events INTEGER[] := '{}';
    w_requests INTEGER[] := '{}';
    w_versions BIGINT[] := '{}';
    c_requests INTEGER[] := '{}';
BEGIN
    SELECT l.position INTO head FROM log_head l WHERE l.id = 1 FOR UPDATE;
    before := head;
    -- One index probe per stream and per command id: the plan cached for this function must
    -- not depend on how many there are (a generic plan for `= ANY(...)` may scan the log).
    SELECT COALESCE(jsonb_object_agg(v.stream_id, v.version) FILTER (WHERE v.version IS NOT NULL), '{}')
        INTO versions
        FROM (SELECT DISTINCT s.stream_id,
                     (SELECT MAX(ev.version) FROM events ev WHERE ev.stream_id = s.stream_id) AS version
              FROM unnest(p_streams) AS s(stream_id)) v;
    SELECT COALESCE(jsonb_object_agg(c.command_id::text,
               jsonb_build_array(c.stream_id, c.stream_version, c.first_position, c.last_position,
                                 encode(c.fingerprint, 'hex'))), '{}')
        INTO seen
        FROM (SELECT DISTINCT id FROM unnest(p_commands) AS ids(id) WHERE id IS NOT NULL) ids
        JOIN LATERAL (SELECT * FROM commands cm WHERE cm.command_id = ids.id) c ON true;
    FOR i IN 1 .. COALESCE(array_length(p_streams, 1), 0) LOOP
        n := p_counts[i];
        actual := COALESCE((versions ->> p_streams[i])::BIGINT, 0);
        used := CASE WHEN p_commands[i] IS NULL THEN NULL ELSE seen -> (p_commands[i]::text) END;
        detail := NULL;
        IF used IS NOT NULL AND used ->> 0 = p_streams[i]
           AND (used ->> 4 IS NULL OR p_fingerprints[i] IS NULL OR used ->> 4 = encode(p_fingerprints[i], 'hex')) THEN
            verdict := 'replay';
            stream_version := (used ->> 1)::BIGINT;
            first_position := (used ->> 2)::BIGINT;
            last_position := (used ->> 3)::BIGINT;
        ELSIF used IS NOT NULL AND used ->> 0 = p_streams[i] THEN
            verdict := 'changed';
            stream_version := actual; first_position := head; last_position := head;
        ELSIF used IS NOT NULL THEN
            verdict := 'reused';
            detail := used ->> 0;
            stream_version := actual; first_position := head; last_position := head;
        ELSIF NOT (p_kinds[i] = 0 OR (p_kinds[i] = 1 AND actual = 0) OR (p_kinds[i] = 2 AND actual = p_expected[i])) THEN
            verdict := 'conflict';
            stream_version := actual; first_position := head; last_position := head;
        ELSIF n = 0 THEN
            verdict := 'empty';
            stream_version := actual; first_position := head; last_position := head;
        ELSE
            verdict := 'written';
            stream_version := actual + n;
            first_position := head + 1;
            last_position := head + n;
            FOR k IN 1 .. n LOOP
                w_positions := w_positions || (head + k);
                w_events := w_events || (e + k);
                w_requests := w_requests || i;
                w_versions := w_versions || (actual + k);
            END LOOP;
            head := head + n;
            versions := versions || jsonb_build_object(p_streams[i], actual + n);
            IF p_commands[i] IS NOT NULL THEN
                seen := seen || jsonb_build_object(p_commands[i]::text,
                    jsonb_build_array(p_streams[i], actual + n, first_position, last_position,
                                      encode(p_fingerprints[i], 'hex')));
                c_requests := c_requests || i;
            END IF;
        END IF;
        e := e + n;
        RETURN NEXT;
    END LOOP;
    IF head > before THEN
        INSERT INTO events (position, event_id, stream_id, stream_type, version, event_type, schema_version,
                            payload, actor, command_id, correlation_id, causation_id, recorded_at)
        SELECT w.position, e_ids[w.ev], p_streams[w.req], p_types[w.req], w.version, e_types[w.ev], e_schemas[w.ev],
               e_payloads[w.ev], p_actors[w.req], p_commands[w.req], p_correlations[w.req], p_causations[w.req], p_now
        FROM unnest(w_positions, w_events, w_requests, w_versions) AS w(position, ev, req, version)
        ORDER BY w.position;
        INSERT INTO commands (command_id, stream_id, stream_version, first_position, last_position, recorded_at,
                              fingerprint)
        SELECT p_commands[r], p_streams[r], (seen -> (p_commands[r]::text) ->> 1)::BIGINT,
               (seen -> (p_commands[r]::text) ->> 2)::BIGINT, (seen -> (p_commands[r]::text) ->> 3)::BIGINT, p_now,
               p_fingerprints[r]
        FROM unnest(c_requests) AS r;
        UPDATE log_head SET position = head WHERE id = 1;
    END IF;
END
$$;

-- As 0008: the plans of its statements do not depend on the values.
ALTER FUNCTION doetank_append(
    TEXT[], TEXT[], SMALLINT[], BIGINT[], INTEGER[], TEXT[], UUID[], UUID[], UUID[],
    UUID[], TEXT[], INTEGER[], JSONB[], TIMESTAMPTZ, BYTEA[]
) SET plan_cache_mode = force_generic_plan;
