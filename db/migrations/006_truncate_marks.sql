-- TRUNCATE of calls or lead_analytics fires no row trigger, so the marks of
-- 003 and 004 miss it and the views would keep the figures of rows that are
-- gone until the next refresh. A statement trigger on TRUNCATE marks every
-- user in late_changes instead: each is read wholly live (exact) until a
-- refresh whose snapshot contains the TRUNCATE clears the marks. No advisory
-- lock is taken (unlike the row triggers): every user is marked whatever the
-- dates, so no clock is read, and TRUNCATE already holds ACCESS EXCLUSIVE on
-- the table a refresh reads.
CREATE OR REPLACE FUNCTION sidecache.mark_all_late() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sidecache.late_changes (user_id) SELECT id FROM users;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sidecache_calls_late_truncate ON calls;
CREATE TRIGGER sidecache_calls_late_truncate AFTER TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.mark_all_late();
DROP TRIGGER IF EXISTS sidecache_leads_late_truncate ON lead_analytics;
CREATE TRIGGER sidecache_leads_late_truncate AFTER TRUNCATE ON lead_analytics
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.mark_all_late();
