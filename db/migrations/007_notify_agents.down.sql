-- Back to 005_notify.sql's agents_notify(): 'user:<uuid>' only.
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

DROP FUNCTION IF EXISTS sidecache.notify_agents(uuid[]);
