DROP FUNCTION IF EXISTS sidecache.refresh_views_logged(text, text);
DROP FUNCTION IF EXISTS sidecache.refresh_facts();
DROP TABLE IF EXISTS sidecache.refresh_log;
