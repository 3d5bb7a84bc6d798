-- Per-user figures of the CLOSED days for GET /api/dashboard/analytics, which
-- otherwise costs one lead_analytics probe per call of W30: the heavy users'
-- fills made its p95 (bench/README.md "## fill"). Three views: per UTC day
-- (W30: call outcomes, lead quality), per UTC hour and per UTC day and agent
-- (W7: leadsOverTime, hourlyDistribution, agentPerformance). The same
-- exactness rules as 003_agent_totals.sql (docs/freshness.md):
--   * the views cover calls with created_at < boundary (refresh_state.boundary,
--     a UTC midnight), back to the window they serve; the fill reads the rest live;
--   * a write to a call dated before the current UTC day marks its user in
--     late_changes (003's triggers); these figures also depend on the calls'
--     leads, so a write to lead_analytics whose call is dated before the
--     current UTC day marks the call's user too (the triggers below), under
--     the same lock-then-clock rule; a marked user is read wholly live until
--     a refresh whose snapshot contains the write.
CREATE SCHEMA IF NOT EXISTS sidecache;

CREATE MATERIALIZED VIEW IF NOT EXISTS sidecache.analytics_day_totals AS
SELECT c.user_id,
       (date_trunc('day', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS day,
       count(*) FILTER (WHERE c.status = 'completed')        AS completed,
       count(*) FILTER (WHERE c.status = 'failed')           AS failed,
       count(*) FILTER (WHERE c.status = 'in_progress')      AS in_progress,
       count(*) FILTER (WHERE c.status = 'cancelled')        AS cancelled,
       count(*) FILTER (WHERE la.total_score >= 80)          AS hot,
       count(*) FILTER (WHERE la.total_score BETWEEN 50 AND 79) AS warm,
       count(*) FILTER (WHERE la.total_score < 50)           AS cold
FROM calls c
LEFT JOIN lead_analytics la ON la.call_id = c.id
WHERE c.created_at < (SELECT boundary FROM sidecache.refresh_state)
  AND c.created_at >= (SELECT boundary FROM sidecache.refresh_state) - interval '30 days'
GROUP BY 1, 2;

-- REFRESH ... CONCURRENTLY needs a UNIQUE index; the fill reads by user and day.
CREATE UNIQUE INDEX IF NOT EXISTS analytics_day_totals_key
    ON sidecache.analytics_day_totals (user_id, day);

-- W7's closed days (W7 starts at utc_day(-6) >= boundary - 6 days): per user and
-- UTC hour (leadsOverTime by day, hourlyDistribution by hour of day), and per
-- user, UTC day and agent (agentPerformance).
CREATE MATERIALIZED VIEW IF NOT EXISTS sidecache.analytics_hour_totals AS
SELECT c.user_id,
       (date_trunc('hour', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS hour,
       count(*)                                    AS calls,
       count(la.total_score)                       AS leads,
       count(*) FILTER (WHERE la.total_score >= 70) AS qualified
FROM calls c
LEFT JOIN lead_analytics la ON la.call_id = c.id
WHERE c.created_at < (SELECT boundary FROM sidecache.refresh_state)
  AND c.created_at >= (SELECT boundary FROM sidecache.refresh_state) - interval '6 days'
GROUP BY 1, 2;
CREATE UNIQUE INDEX IF NOT EXISTS analytics_hour_totals_key
    ON sidecache.analytics_hour_totals (user_id, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS sidecache.analytics_agent_day_totals AS
SELECT c.user_id,
       (date_trunc('day', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS day,
       c.agent_id,
       count(*)                                       AS calls,
       count(*) FILTER (WHERE c.status = 'completed') AS completed,
       count(la.total_score)                          AS leads,
       coalesce(sum(la.total_score), 0)               AS score_sum
FROM calls c
LEFT JOIN lead_analytics la ON la.call_id = c.id
WHERE c.created_at < (SELECT boundary FROM sidecache.refresh_state)
  AND c.created_at >= (SELECT boundary FROM sidecache.refresh_state) - interval '6 days'
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX IF NOT EXISTS analytics_agent_day_totals_key
    ON sidecache.analytics_agent_day_totals (user_id, day, agent_id);

-- Marks the users whose closed days a lead write changes: the calls of the
-- written leads (old and new versions) dated before the current UTC day.
CREATE OR REPLACE FUNCTION sidecache.leads_mark_late() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    today timestamptz;
BEGIN
    -- Lock first, clock second, as sidecache.calls_mark_late().
    PERFORM pg_advisory_xact_lock_shared(1399742796, 1);
    today := date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO sidecache.late_changes (user_id)
        SELECT DISTINCT c.user_id FROM new_rows n JOIN calls c ON c.id = n.call_id
        WHERE c.created_at < today;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- A lead deleted with its call (ON DELETE CASCADE) finds no call here:
        -- the call's own delete trigger marked its user.
        INSERT INTO sidecache.late_changes (user_id)
        SELECT DISTINCT c.user_id FROM old_rows o JOIN calls c ON c.id = o.call_id
        WHERE c.created_at < today;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sidecache_leads_late_insert ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_late_update ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_late_delete ON lead_analytics;
CREATE TRIGGER sidecache_leads_late_insert AFTER INSERT ON lead_analytics
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_mark_late();
CREATE TRIGGER sidecache_leads_late_update AFTER UPDATE ON lead_analytics
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_mark_late();
CREATE TRIGGER sidecache_leads_late_delete AFTER DELETE ON lead_analytics
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_mark_late();

-- 003's refresh, plus these views (same snapshot, before the marks are forgotten).
CREATE OR REPLACE FUNCTION sidecache.refresh_views() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sidecache.refresh_state
       SET boundary = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           refreshed_at = now();
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.agent_call_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.analytics_day_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.analytics_hour_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.analytics_agent_day_totals;
    DELETE FROM sidecache.late_changes;
END
$$;
