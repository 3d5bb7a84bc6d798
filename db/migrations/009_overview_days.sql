-- Per-user figures of the CLOSED days of W30 for GET /api/dashboard/overview,
-- which otherwise reads every call of the user's last 30 days live with a
-- lead_analytics probe each: 1.55 s for the heaviest user of `large` (issue
-- 16). One view per user and UTC day; the same exactness rules as
-- 003_agent_totals.sql and 004_analytics_days.sql (docs/freshness.md): the
-- view covers calls with created_at < boundary, back to boundary - 30 days;
-- the fill reads the rest live; a user marked in late_changes (a write to a
-- call or lead dated before the current UTC day) is read wholly live until a
-- refresh whose snapshot contains the write. The marks of 003 and 004 cover
-- every column read here (calls: status, duration, credits; leads: score).
CREATE SCHEMA IF NOT EXISTS sidecache;

CREATE MATERIALIZED VIEW IF NOT EXISTS sidecache.overview_day_totals AS
SELECT c.user_id,
       (date_trunc('day', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS day,
       count(*)                                              AS calls,
       count(*) FILTER (WHERE c.status = 'completed')        AS completed,
       count(*) FILTER (WHERE c.status = 'failed')           AS failed,
       count(*) FILTER (WHERE c.status = 'in_progress')      AS in_progress,
       count(*) FILTER (WHERE c.status = 'cancelled')        AS cancelled,
       coalesce(sum(c.duration_minutes), 0)                  AS duration_sum,
       coalesce(sum(c.credits_used), 0)                      AS credits_sum,
       count(la.total_score)                                 AS leads,
       count(*) FILTER (WHERE la.total_score >= 70)          AS qualified,
       count(*) FILTER (WHERE la.total_score >= 80)          AS hot,
       count(*) FILTER (WHERE la.total_score BETWEEN 50 AND 79) AS warm,
       count(*) FILTER (WHERE la.total_score < 50)           AS cold,
       coalesce(sum(la.total_score), 0)                      AS score_sum
FROM calls c
LEFT JOIN lead_analytics la ON la.call_id = c.id
WHERE c.created_at < (SELECT boundary FROM sidecache.refresh_state)
  AND c.created_at >= (SELECT boundary FROM sidecache.refresh_state) - interval '30 days'
GROUP BY 1, 2;

-- REFRESH ... CONCURRENTLY needs a UNIQUE index; the fill reads by user and day.
CREATE UNIQUE INDEX IF NOT EXISTS overview_day_totals_key
    ON sidecache.overview_day_totals (user_id, day);

-- 004's refresh, plus this view (same snapshot, before the marks are forgotten).
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
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.overview_day_totals;
    DELETE FROM sidecache.late_changes;
END
$$;
