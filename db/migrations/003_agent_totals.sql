-- Per-agent call totals of the CLOSED part of history, for GET /api/agents
-- (performance covers every call of any date). docs/freshness.md explains why
-- the figures stay exact:
--   * the view covers calls with created_at < refresh_state.boundary (a UTC
--     midnight), the fill adds the calls since the boundary read live;
--   * a write to a call dated before the current UTC day (a late insert, an
--     update, a cascade delete) records its user in late_changes, in the same
--     transaction; the fill reads such a user's history wholly live until a
--     refresh whose snapshot contains the write clears the mark;
--   * writes take a shared advisory lock that a refresh takes exclusively
--     while it starts its snapshot, so a write dated today can never commit
--     behind a refresh that moves the boundary past it.
CREATE SCHEMA IF NOT EXISTS sidecache;

CREATE TABLE IF NOT EXISTS sidecache.refresh_state (
    only_row     boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    boundary     timestamptz NOT NULL,  -- the views cover created_at < boundary
    refreshed_at timestamptz            -- NULL: never refreshed
);
-- -infinity: the view is empty and every figure is read live until the first refresh.
INSERT INTO sidecache.refresh_state (boundary) VALUES ('-infinity') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS sidecache.late_changes (
    user_id   uuid        NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS late_changes_user ON sidecache.late_changes (user_id);

CREATE OR REPLACE FUNCTION sidecache.calls_mark_late() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    today timestamptz;
BEGIN
    -- Lock first, clock second: once a refresh has released the lock, any
    -- clock read here is later than the refresh's snapshot (see the header).
    PERFORM pg_advisory_xact_lock_shared(1399742796, 1);
    today := date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO sidecache.late_changes (user_id)
        SELECT DISTINCT user_id FROM new_rows WHERE created_at < today;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO sidecache.late_changes (user_id)
        SELECT DISTINCT user_id FROM old_rows WHERE created_at < today;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sidecache_calls_late_insert ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_late_update ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_late_delete ON calls;
CREATE TRIGGER sidecache_calls_late_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_mark_late();
CREATE TRIGGER sidecache_calls_late_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_mark_late();
CREATE TRIGGER sidecache_calls_late_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_mark_late();

CREATE MATERIALIZED VIEW IF NOT EXISTS sidecache.agent_call_totals AS
SELECT c.user_id,
       c.agent_id,
       count(*)                                        AS calls,
       count(*) FILTER (WHERE c.status = 'completed')  AS completed,
       sum(c.duration_minutes)                         AS duration_sum,
       sum(c.credits_used)                             AS credits_sum,
       max(c.created_at)                               AS last_call_at
FROM calls c
WHERE c.created_at < (SELECT boundary FROM sidecache.refresh_state)
GROUP BY c.user_id, c.agent_id;

-- REFRESH ... CONCURRENTLY needs a UNIQUE index; the fill reads by user_id.
CREATE UNIQUE INDEX IF NOT EXISTS agent_call_totals_key
    ON sidecache.agent_call_totals (user_id, agent_id);

-- The refresh proper, called by sidecache (db/refresh.cpp) inside a
-- REPEATABLE READ transaction whose snapshot it took while holding the
-- exclusive writers' lock. Moves the boundary to the current UTC midnight,
-- refreshes the view without blocking its readers, and forgets the late
-- changes that this snapshot contains (those committed later stay marked).
CREATE OR REPLACE FUNCTION sidecache.refresh_views() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sidecache.refresh_state
       SET boundary = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           refreshed_at = now();
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.agent_call_totals;
    DELETE FROM sidecache.late_changes;
END
$$;
