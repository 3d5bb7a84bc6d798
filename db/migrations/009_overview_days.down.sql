-- Back to 004's refresh, then drop the view.
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
DROP MATERIALIZED VIEW IF EXISTS sidecache.overview_day_totals;
