-- GET /api/dashboard/overview for user $1 (text), the whole response body.
-- NULL when $1 is not an active user: the request is then forwarded (403).
-- One statement, every figure as api.md defines it. W30's closed days come
-- from sidecache.overview_day_totals (009), the hours since its boundary from
-- sidecache.hour_totals (010, kept by triggers), unless the user has a late
-- change or the views' boundary is older than what hour_totals holds: then
-- the part since the boundary is read live (W30 wholly, for a late change;
-- docs/freshness.md shows why this is exact). So a fill's work is bounded by
-- days and hours, not by calls (recentActivity: the 10 newest, by index).
WITH u AS (
    SELECT id, credits FROM users WHERE id = sidecache.try_uuid($1) AND is_active
),
s AS (  -- live30_from: where W30's part after the views starts; live_from: the view's end for this user;
        -- by_hours: that part is in hour_totals (else read live)
    SELECT greatest(sidecache.utc_day(-30), x.live_from) AS live30_from, x.live_from,
           x.live_from > '-infinity' AND x.live_from >= x.exact_from AS by_hours
    FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM sidecache.late_changes l, u WHERE l.user_id = u.id)
                      THEN '-infinity'::timestamptz ELSE r.boundary END AS live_from,
                 coalesce((SELECT exact_from FROM sidecache.hour_totals_state), 'infinity') AS exact_from
          FROM sidecache.refresh_state r) x
),
c AS (  -- unless by_hours, the user's calls read live (W30 since live_from), with their lead's score (NULL: no lead)
    SELECT c.status, c.duration_minutes, c.credits_used, c.created_at, la.total_score
    FROM u
    JOIN calls c ON c.user_id = u.id AND c.created_at >= (SELECT live30_from FROM s)
    LEFT JOIN lead_analytics la ON la.call_id = c.id
    WHERE NOT (SELECT by_hours FROM s)
),
f AS (  -- W30: the view's closed days plus the live part
    SELECT sum(calls)::bigint AS calls, sum(completed)::bigint AS completed,
           sum(failed)::bigint AS failed, sum(in_progress)::bigint AS in_progress,
           sum(cancelled)::bigint AS cancelled,
           coalesce(sum(duration_sum), 0) AS duration_sum,
           coalesce(sum(credits_30), 0)::bigint AS credits_30,
           coalesce(sum(credits_month), 0)::bigint AS credits_month,
           sum(leads)::bigint AS leads, sum(qualified)::bigint AS qualified,
           sum(hot)::bigint AS hot, sum(warm)::bigint AS warm, sum(cold)::bigint AS cold,
           coalesce(sum(score_sum), 0)::bigint AS score_sum
    FROM (
        SELECT count(*)                                          AS calls,
               count(*) FILTER (WHERE status = 'completed')      AS completed,
               count(*) FILTER (WHERE status = 'failed')         AS failed,
               count(*) FILTER (WHERE status = 'in_progress')    AS in_progress,
               count(*) FILTER (WHERE status = 'cancelled')      AS cancelled,
               sum(duration_minutes)                             AS duration_sum,
               sum(credits_used)                                 AS credits_30,
               sum(credits_used) FILTER (WHERE created_at >= sidecache.utc_month()) AS credits_month,
               count(total_score)                                AS leads,
               count(*) FILTER (WHERE total_score >= 70)         AS qualified,
               count(*) FILTER (WHERE total_score >= 80)         AS hot,
               count(*) FILTER (WHERE total_score BETWEEN 50 AND 79) AS warm,
               count(*) FILTER (WHERE total_score < 50)          AS cold,
               sum(total_score)                                  AS score_sum
        FROM c
        UNION ALL
        SELECT d.calls, d.completed, d.failed, d.in_progress, d.cancelled, d.duration_sum,
               d.credits_sum, CASE WHEN d.day >= sidecache.utc_month() THEN d.credits_sum ELSE 0 END,
               d.leads, d.qualified, d.hot, d.warm, d.cold, d.score_sum
        FROM u JOIN sidecache.overview_day_totals d ON d.user_id = u.id
        WHERE d.day >= sidecache.utc_day(-30) AND d.day < (SELECT live_from FROM s)
        UNION ALL
        SELECT h.calls, h.completed, h.failed, h.in_progress, h.cancelled, h.duration_sum,
               h.credits_sum, CASE WHEN h.hour >= sidecache.utc_month() THEN h.credits_sum ELSE 0 END,
               h.leads, h.qualified, h.hot, h.warm, h.cold, h.score_sum
        FROM u JOIN sidecache.hour_totals h ON h.user_id = u.id
        WHERE (SELECT by_hours FROM s) AND h.hour >= (SELECT live30_from FROM s) AND h.calls > 0
    ) parts
),
a AS (
    SELECT count(*)                                   AS total,
           count(*) FILTER (WHERE status = 'active')  AS active,
           count(*) FILTER (WHERE status = 'draft')   AS draft,
           count(*) FILTER (WHERE status = 'paused')  AS paused
    FROM u JOIN agents ag ON ag.user_id = u.id
),
recent AS (  -- the 10 newest calls of W7
    SELECT json_agg(json_build_object(
               'callId', r.id, 'agentId', r.agent_id, 'agentName', ag.name, 'status', r.status,
               'durationMinutes', trim_scale(r.duration_minutes), 'leadScore', la.total_score,
               'createdAt', sidecache.iso_ms(r.created_at))
           ORDER BY r.created_at DESC, r.id) AS items
    FROM (SELECT c.id, c.agent_id, c.status, c.duration_minutes, c.created_at
          FROM calls c  -- the user as a parameter: a backward index scan stops after 10
          WHERE c.user_id = (SELECT id FROM u) AND c.created_at >= sidecache.utc_day(-6)
          ORDER BY c.created_at DESC, c.id
          LIMIT 10) r
    JOIN agents ag ON ag.id = r.agent_id
    LEFT JOIN lead_analytics la ON la.call_id = r.id
)
SELECT json_build_object('success', true, 'data', json_build_object(
    'kpis', json_build_array(
        json_build_object('id', 'total_leads', 'label', 'Total Leads', 'value', f.leads, 'unit', 'count'),
        json_build_object('id', 'total_interactions', 'label', 'Total Interactions', 'value', f.calls, 'unit', 'count'),
        json_build_object('id', 'leads_converted', 'label', 'Leads Converted', 'value', f.qualified, 'unit', 'count'),
        json_build_object('id', 'conversion_rate', 'label', 'Conversion Rate',
                          'value', sidecache.pct(f.qualified, f.leads), 'unit', 'percent'),
        json_build_object('id', 'avg_conversations_per_hour', 'label', 'Avg Conversations/Hour',
                          'value', trim_scale(round(f.calls::numeric / 720, 2)), 'unit', 'count'),
        json_build_object('id', 'avg_lead_score', 'label', 'Avg Lead Score',
                          'value', sidecache.avg2(f.score_sum, f.leads), 'unit', 'score'),
        json_build_object('id', 'call_success_rate', 'label', 'Call Success Rate',
                          'value', sidecache.pct(f.completed, f.calls), 'unit', 'percent')),
    'credits', json_build_object('current', u.credits, 'usedThisMonth', f.credits_month,
                                 'usedLast30Days', f.credits_30),
    'agents', json_build_object('total', a.total, 'active', a.active, 'draft', a.draft, 'paused', a.paused),
    'conversations', json_build_object('total', f.calls, 'completed', f.completed, 'failed', f.failed,
                                       'inProgress', f.in_progress, 'cancelled', f.cancelled,
                                       'totalDurationMinutes', trim_scale(f.duration_sum),
                                       'avgDurationMinutes', sidecache.avg2(f.duration_sum, f.calls)),
    'leads', json_build_object('total', f.leads, 'qualified', f.qualified, 'hot', f.hot, 'warm', f.warm,
                               'cold', f.cold, 'avgScore', sidecache.avg2(f.score_sum, f.leads)),
    'recentActivity', coalesce(recent.items, '[]'::json),
    'cacheInfo', json_build_object('cached', false, 'calculatedAt', sidecache.iso_ms(clock_timestamp()))
))::text
FROM u, f, a, recent;
