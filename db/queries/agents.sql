-- GET /api/agents for user $1 (text), the whole response body WITHOUT the
-- external part: every agent carries "elevenLabs": null, "configStatus": "none",
-- which the enrichment (upstream/) replaces for agents with an elevenLabsAgentId.
-- NULL (no row) when $1 is not an active user.
--
-- performance covers all the agent's calls: the closed days come from the
-- view sidecache.agent_call_totals, the calls since its boundary are read
-- live; a user with a late change (sidecache.late_changes) is read wholly
-- live until the next refresh. docs/freshness.md shows why this is exact.
WITH u AS (
    SELECT id FROM users WHERE id = sidecache.try_uuid($1) AND is_active
),
s AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM sidecache.late_changes l, u WHERE l.user_id = u.id)
                THEN '-infinity'::timestamptz ELSE r.boundary END AS live_from
    FROM sidecache.refresh_state r
),
parts AS (
    SELECT t.agent_id, t.calls, t.completed, t.duration_sum, t.credits_sum, t.last_call_at
    FROM u JOIN sidecache.agent_call_totals t ON t.user_id = u.id
    WHERE (SELECT live_from FROM s) > '-infinity'
    UNION ALL
    SELECT c.agent_id, count(*), count(*) FILTER (WHERE c.status = 'completed'),
           sum(c.duration_minutes), sum(c.credits_used), max(c.created_at)
    FROM u JOIN calls c ON c.user_id = u.id AND c.created_at >= (SELECT live_from FROM s)
    GROUP BY c.agent_id
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
