-- Cache invalidation by LISTEN/NOTIFY (docs/freshness.md, "Invalidation").
-- Statement-level triggers with transition tables on the four legacy tables
-- send, in the writer's transaction (so only on COMMIT), one notification per
-- distinct user whose answers the statement changes:
--
--   channel: sidecache.notify_settings.channel (`sidecache migrate` writes
--            database.notify_channel there; default sidecache_invalidate)
--   payload: 'user:<uuid>'  something one of this user's three answers shows
--                           changed (users.credits or is_active, the row
--                           deleted; an agent, call or lead of theirs)
--            'all'          a statement touched more than bulk_threshold users,
--                           or a TRUNCATE: every answer may have changed
--
-- PostgreSQL folds identical notifications of one transaction into one, so a
-- legacy POST /api/calls (a call inserted and users.credits updated) sends one.
-- A write that changes no column any answer shows (users.name, email;
-- agents.updated_at; calls.phone_number; lead_analytics.created_at) sends none:
-- the rows are compared on the shown columns (EXCEPT), which also covers a
-- primary key that changes.
CREATE SCHEMA IF NOT EXISTS sidecache;

CREATE TABLE IF NOT EXISTS sidecache.notify_settings (
    only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    channel        text    NOT NULL DEFAULT 'sidecache_invalidate',
    -- More distinct users than this in one statement: one 'all' instead.
    bulk_threshold integer NOT NULL DEFAULT 1000 CHECK (bulk_threshold >= 0)
);
INSERT INTO sidecache.notify_settings DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Notifies each user of `users` (distinct already), or 'all' past the threshold.
CREATE OR REPLACE FUNCTION sidecache.notify_users(users uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s sidecache.notify_settings;
BEGIN
    IF cardinality(users) = 0 THEN RETURN; END IF;
    SELECT * INTO s FROM sidecache.notify_settings;
    IF NOT FOUND THEN RETURN; END IF;
    IF cardinality(users) > s.bulk_threshold THEN
        PERFORM pg_notify(s.channel, 'all');
    ELSE
        PERFORM pg_notify(s.channel, 'user:' || u::text) FROM unnest(users) u;
    END IF;
END
$$;

-- The distinct users are collected with LIMIT bulk_threshold + 1: a bulk
-- statement costs one bounded DISTINCT, never an array of every row.
CREATE OR REPLACE FUNCTION sidecache.notify_limit() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT bulk_threshold::bigint + 1 FROM sidecache.notify_settings), 1)
$$;

CREATE OR REPLACE FUNCTION sidecache.users_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT id FROM old_rows LIMIT sidecache.notify_limit()));
    ELSE  -- UPDATE; an INSERT changes no cached answer (an unknown user's 403 is never cached)
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT id FROM (
                (SELECT id, credits, is_active FROM old_rows
                 EXCEPT SELECT id, credits, is_active FROM new_rows)
                UNION ALL
                (SELECT id, credits, is_active FROM new_rows
                 EXCEPT SELECT id, credits, is_active FROM old_rows)) d
            LIMIT sidecache.notify_limit()));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sidecache.agents_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM new_rows LIMIT sidecache.notify_limit()));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM old_rows LIMIT sidecache.notify_limit()));
    ELSE
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM (
                (SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
                 FROM old_rows
                 EXCEPT SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
                 FROM new_rows)
                UNION ALL
                (SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
                 FROM new_rows
                 EXCEPT SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
                 FROM old_rows)) d
            LIMIT sidecache.notify_limit()));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sidecache.calls_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM new_rows LIMIT sidecache.notify_limit()));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM old_rows LIMIT sidecache.notify_limit()));
    ELSE
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM (
                (SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM old_rows
                 EXCEPT SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM new_rows)
                UNION ALL
                (SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM new_rows
                 EXCEPT SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM old_rows)) d
            LIMIT sidecache.notify_limit()));
    END IF;
    RETURN NULL;
END
$$;

-- A lead's user is its call's. A lead deleted by its call's cascade finds no
-- call here: the call's own trigger notified.
CREATE OR REPLACE FUNCTION sidecache.leads_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT c.user_id FROM new_rows n JOIN calls c ON c.id = n.call_id
            LIMIT sidecache.notify_limit()));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT c.user_id FROM old_rows o JOIN calls c ON c.id = o.call_id
            LIMIT sidecache.notify_limit()));
    ELSE
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT c.user_id FROM (
                (SELECT call_id, total_score FROM old_rows EXCEPT SELECT call_id, total_score FROM new_rows)
                UNION ALL
                (SELECT call_id, total_score FROM new_rows EXCEPT SELECT call_id, total_score FROM old_rows)) d
            JOIN calls c ON c.id = d.call_id
            LIMIT sidecache.notify_limit()));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION sidecache.truncate_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(channel, 'all') FROM sidecache.notify_settings;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sidecache_users_notify_update ON users;
DROP TRIGGER IF EXISTS sidecache_users_notify_delete ON users;
DROP TRIGGER IF EXISTS sidecache_users_notify_truncate ON users;
CREATE TRIGGER sidecache_users_notify_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.users_notify();
CREATE TRIGGER sidecache_users_notify_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.users_notify();
CREATE TRIGGER sidecache_users_notify_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.truncate_notify();

DROP TRIGGER IF EXISTS sidecache_agents_notify_insert ON agents;
DROP TRIGGER IF EXISTS sidecache_agents_notify_update ON agents;
DROP TRIGGER IF EXISTS sidecache_agents_notify_delete ON agents;
DROP TRIGGER IF EXISTS sidecache_agents_notify_truncate ON agents;
CREATE TRIGGER sidecache_agents_notify_insert AFTER INSERT ON agents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.agents_notify();
CREATE TRIGGER sidecache_agents_notify_update AFTER UPDATE ON agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.agents_notify();
CREATE TRIGGER sidecache_agents_notify_delete AFTER DELETE ON agents
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.agents_notify();
CREATE TRIGGER sidecache_agents_notify_truncate AFTER TRUNCATE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.truncate_notify();

DROP TRIGGER IF EXISTS sidecache_calls_notify_insert ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_notify_update ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_notify_delete ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_notify_truncate ON calls;
CREATE TRIGGER sidecache_calls_notify_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_notify();
CREATE TRIGGER sidecache_calls_notify_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_notify();
CREATE TRIGGER sidecache_calls_notify_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_notify();
CREATE TRIGGER sidecache_calls_notify_truncate AFTER TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.truncate_notify();

DROP TRIGGER IF EXISTS sidecache_leads_notify_insert ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_notify_update ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_notify_delete ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_notify_truncate ON lead_analytics;
CREATE TRIGGER sidecache_leads_notify_insert AFTER INSERT ON lead_analytics
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_notify();
CREATE TRIGGER sidecache_leads_notify_update AFTER UPDATE ON lead_analytics
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_notify();
CREATE TRIGGER sidecache_leads_notify_delete AFTER DELETE ON lead_analytics
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_notify();
CREATE TRIGGER sidecache_leads_notify_truncate AFTER TRUNCATE ON lead_analytics
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.truncate_notify();
