-- GET /api/agents for user $1 (text), the whole response body WITHOUT the
-- external part: every agent carries "elevenLabs": null, "configStatus": "none",
-- which the enrichment (upstream/) replaces for agents with an elevenLabsAgentId.
-- NULL (no row) when $1 is not an active user.
--
-- performance covers all the agent's calls: the closed days come from the
-- view sidecache.agent_call_totals, the hours since its boundary from
-- sidecache.hour_totals (010, kept by triggers; lastCallAt: the agent's
-- calls of its latest hour); a user with a late change (sidecache.late_changes),
-- or a boundary older than what hour_totals holds, has the calls since the
-- boundary read live (wholly, for a late change) until the next refresh.
-- docs/freshness.md shows why this is exact.
WITH u AS (
    SELECT id FROM users WHERE id = sidecache.try_uuid($1) AND is_active
),
s AS (  -- by_hours: the calls since live_from are in hour_totals (else read live)
    SELECT x.live_from, x.live_from > '-infinity' AND x.live_from >= x.exact_from AS by_hours
    FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM sidecache.late_changes l, u WHERE l.user_id = u.id)
                      THEN '-infinity'::timestamptz ELSE r.boundary END AS live_from,
                 coalesce((SELECT exact_from FROM sidecache.hour_totals_state), 'infinity') AS exact_from
          FROM sidecache.refresh_state r) x
),
parts AS (
    SELECT t.agent_id, t.calls, t.completed, t.duration_sum, t.credits_sum, t.last_call_at
    FROM u JOIN sidecache.agent_call_totals t ON t.user_id = u.id
    WHERE (SELECT live_from FROM s) > '-infinity'
    UNION ALL
    SELECT c.agent_id, count(*), count(*) FILTER (WHERE c.status = 'completed'),
           sum(c.duration_minutes), sum(c.credits_used), max(c.created_at)
    FROM u JOIN calls c ON c.user_id = u.id AND c.created_at >= (SELECT live_from FROM s)
    WHERE NOT (SELECT by_hours FROM s)
    GROUP BY c.agent_id
    UNION ALL
    -- lastCallAt: the agent's newest call is in its latest hour: at most one hour
    -- of the user's calls is read (a probe over all the calls since live_from read
    -- every one of them, once per agent, when the planner chose the user's index).
    SELECT g.agent_id, g.calls, g.completed, g.duration_sum, g.credits_sum,
           (SELECT c.created_at FROM calls c
            WHERE c.user_id = g.user_id AND c.agent_id = g.agent_id
              AND c.created_at >= g.last_hour AND c.created_at < g.last_hour + interval '1 hour'
            ORDER BY c.created_at DESC LIMIT 1)
    FROM (SELECT u.id AS user_id, t.agent_id, sum(t.calls) AS calls, sum(t.completed) AS completed,
                 sum(t.duration_sum) AS duration_sum, sum(t.credits_sum) AS credits_sum,
                 max(t.hour) AS last_hour
          FROM u JOIN sidecache.hour_totals t ON t.user_id = u.id
          WHERE (SELECT by_hours FROM s) AND t.hour >= (SELECT live_from FROM s) AND t.calls > 0
          GROUP BY u.id, t.agent_id) g
),
p AS (
    SELECT agent_id, sum(calls) AS calls, sum(completed) AS completed,
           sum(duration_sum) AS duration_sum, sum(credits_sum) AS credits_sum,
           max(last_call_at) AS last_call_at
    FROM parts GROUP BY agent_id
)
SELECT json_build_object('success', true, 'data', coalesce(
    (SELECT json_agg(json_build_object(
                'id', ag.id, 'name', ag.name, 'type', ag.agent_type, 'status', ag.status,
                'description', ag.description, 'createdAt', sidecache.iso_ms(ag.created_at),
                'elevenLabsAgentId', ag.elevenlabs_agent_id,
                'performance', json_build_object(
                    'conversations', coalesce(p.calls, 0),
                    'successRate', sidecache.pct(coalesce(p.completed, 0), coalesce(p.calls, 0)),
                    'avgDuration', sidecache.duration_text(coalesce(p.duration_sum, 0), coalesce(p.calls, 0)),
                    'creditsUsed', coalesce(p.credits_sum, 0),
                    'lastCallAt', sidecache.iso_ms(p.last_call_at)),
                'elevenLabs', NULL,
                'configStatus', 'none')
            ORDER BY ag.created_at DESC, ag.id)
     FROM agents ag LEFT JOIN p ON p.agent_id = ag.id
     WHERE ag.user_id = u.id),
    '[]'::json))::text
FROM u;
