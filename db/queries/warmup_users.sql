-- cache.warmup's users: the most recently active, the most recent caller
-- first. $1 (text) is {"users": N, "lookback_seconds": S}; the answer a JSON
-- array of user ids (text), never NULL. Active: an active user with a call
-- within the lookback. One index probe per user (calls (user_id, created_at),
-- migration 001), never a scan of every call.
SELECT coalesce(json_agg(r.id ORDER BY r.last_call DESC), '[]')::text
FROM (
    SELECT u.id, l.last_call
    FROM users u
    CROSS JOIN LATERAL (SELECT max(c.created_at) AS last_call FROM calls c WHERE c.user_id = u.id) l
    WHERE u.is_active
      AND l.last_call >= now() - make_interval(secs => ($1::json->>'lookback_seconds')::double precision)
    ORDER BY l.last_call DESC
    LIMIT ($1::json->>'users')::int
) r;
