-- Agent payloads (docs/freshness.md, "Invalidation"): the triggers on `agents`
-- of 005_notify.sql also send 'agent:<uuid>' for every agent an UPDATE or
-- DELETE changed, so a sidecar drops that agent's cached external
-- configuration (the ElevenLabs answer) as well as its user's entries
-- ('user:<uuid>', sent as before). An INSERT sends none: no sidecar has a
-- configuration cached for an agent that did not exist. Past bulk_threshold
-- distinct agents one 'all' is sent instead, as for users: each payload is at
-- most 42 bytes, and the number sent per statement stays bounded.
--
-- 005 is not edited: deployed databases have it applied. This replaces its
-- agents_notify(); 007_notify_agents.down.sql puts 005's back.
CREATE OR REPLACE FUNCTION sidecache.notify_agents(agents uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s sidecache.notify_settings;
BEGIN
    IF cardinality(agents) = 0 THEN RETURN; END IF;
    SELECT * INTO s FROM sidecache.notify_settings;
    IF NOT FOUND THEN RETURN; END IF;
    IF cardinality(agents) > s.bulk_threshold THEN
        PERFORM pg_notify(s.channel, 'all');
    ELSE
        PERFORM pg_notify(s.channel, 'agent:' || a::text) FROM unnest(agents) a;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION sidecache.agents_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    users uuid[];
    agents uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM new_rows LIMIT sidecache.notify_limit()));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM sidecache.notify_users(ARRAY(
            SELECT DISTINCT user_id FROM old_rows LIMIT sidecache.notify_limit()));
        PERFORM sidecache.notify_agents(ARRAY(
            SELECT DISTINCT id FROM old_rows LIMIT sidecache.notify_limit()));
    ELSE
        -- The changed rows, computed once (a CTE read twice is materialized).
        WITH d AS (
            (SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
             FROM old_rows
             EXCEPT SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
             FROM new_rows)
            UNION ALL
            (SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
             FROM new_rows
             EXCEPT SELECT id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at
             FROM old_rows))
        SELECT ARRAY(SELECT DISTINCT user_id FROM d LIMIT sidecache.notify_limit()),
               ARRAY(SELECT DISTINCT id FROM d LIMIT sidecache.notify_limit())
        INTO users, agents;
        PERFORM sidecache.notify_users(users);
        PERFORM sidecache.notify_agents(agents);
    END IF;
    RETURN NULL;
END
$$;
