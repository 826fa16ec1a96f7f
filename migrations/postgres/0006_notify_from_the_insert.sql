-- Other nodes are woken at commit by a notification that carries the new head. Sent by the
-- insert itself (once per statement, from its new rows), it costs the writer no round trip of
-- its own; a rolled-back append notifies no one.
CREATE FUNCTION notify_log_appended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head BIGINT;
BEGIN
    SELECT MAX(position) INTO head FROM appended;
    IF head IS NOT NULL THEN
        PERFORM pg_notify('doetank_log', head::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify_appended AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION notify_log_appended();
