DROP FUNCTION IF EXISTS sidecache.refresh_views();
DROP MATERIALIZED VIEW IF EXISTS sidecache.agent_call_totals;
DROP TRIGGER IF EXISTS sidecache_calls_late_insert ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_late_update ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_late_delete ON calls;
DROP FUNCTION IF EXISTS sidecache.calls_mark_late();
DROP TABLE IF EXISTS sidecache.late_changes;
DROP TABLE IF EXISTS sidecache.refresh_state;
