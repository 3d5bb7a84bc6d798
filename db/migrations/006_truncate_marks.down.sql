DROP TRIGGER IF EXISTS sidecache_calls_late_truncate ON calls;
DROP TRIGGER IF EXISTS sidecache_leads_late_truncate ON lead_analytics;
DROP FUNCTION IF EXISTS sidecache.mark_all_late();
