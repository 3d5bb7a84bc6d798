-- Back to 003's refresh, then drop what 004 added.
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
DROP TRIGGER IF EXISTS sidecache_leads_late_insert ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_late_update ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_late_delete ON lead_analytics;
DROP FUNCTION IF EXISTS sidecache.leads_mark_late();
DROP MATERIALIZED VIEW IF EXISTS sidecache.analytics_agent_day_totals;
DROP MATERIALIZED VIEW IF EXISTS sidecache.analytics_hour_totals;
DROP MATERIALIZED VIEW IF EXISTS sidecache.analytics_day_totals;
