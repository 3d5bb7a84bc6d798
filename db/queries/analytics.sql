-- GET /api/dashboard/analytics for user $1 (text), the whole response body.
-- NULL (no row) when $1 is not an active user. One statement. The closed days
-- come from the views sidecache.analytics_{day,hour,agent_day}_totals, the
-- hours since their boundary from sidecache.hour_totals (010, kept by
-- triggers), unless the user has a late change or the boundary is older than
-- what hour_totals holds: then the part since the boundary is read live (W30
-- wholly, for a late change; docs/freshness.md shows why this is exact).
WITH u AS (
    SELECT id FROM users WHERE id = sidecache.try_uuid($1) AND is_active
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
c AS (  -- unless by_hours, the user's calls read live (W30 since live_from), with their lead's score
    SELECT c.id, c.agent_id, c.status, c.created_at, la.total_score
    FROM u
    JOIN calls c ON c.user_id = u.id AND c.created_at >= (SELECT live30_from FROM s)
    LEFT JOIN lead_analytics la ON la.call_id = c.id
    WHERE NOT (SELECT by_hours FROM s)
),
h AS (  -- if by_hours, the hours since live_from (W30's part after the views)
    SELECT t.hour, t.agent_id, t.calls, t.completed, t.failed, t.in_progress, t.cancelled,
           t.leads, t.qualified, t.hot, t.warm, t.cold, t.score_sum
    FROM u JOIN sidecache.hour_totals t ON t.user_id = u.id
    WHERE (SELECT by_hours FROM s) AND t.hour >= (SELECT live30_from FROM s) AND t.calls > 0
),
w7 AS (  -- W7's closed hours from the view (none when the user is read live)
    SELECT h.hour, h.calls, h.leads, h.qualified
    FROM u JOIN sidecache.analytics_hour_totals h ON h.user_id = u.id
    WHERE h.hour >= sidecache.utc_day(-6) AND h.hour < (SELECT live_from FROM s)
),
per_day AS (  -- W7 by UTC day, view + live; future calls fall in no point
    SELECT day, sum(calls) AS calls, sum(leads) AS leads, sum(qualified) AS qualified
    FROM (SELECT date_trunc('day', created_at AT TIME ZONE 'UTC') AS day, count(*) AS calls,
                 count(total_score) AS leads, count(*) FILTER (WHERE total_score >= 70) AS qualified
          FROM c WHERE created_at >= sidecache.utc_day(-6) AND created_at < sidecache.utc_day(1)
          GROUP BY 1
          UNION ALL
          SELECT date_trunc('day', hour AT TIME ZONE 'UTC'), calls, leads, qualified FROM w7
          UNION ALL
          SELECT date_trunc('day', hour AT TIME ZONE 'UTC'), calls, leads, qualified
          FROM h WHERE hour >= sidecache.utc_day(-6) AND hour < sidecache.utc_day(1)) x
    GROUP BY day
),
days AS (  -- leadsOverTime: today-6 .. today, zero-filled
    SELECT json_agg(json_build_object(
               'date', to_char(g.day, 'YYYY-MM-DD'), 'calls', coalesce(p.calls, 0),
               'leads', coalesce(p.leads, 0), 'qualified', coalesce(p.qualified, 0))
           ORDER BY g.day) AS items
    FROM (SELECT sidecache.utc_day(-i) AT TIME ZONE 'UTC' AS day FROM generate_series(0, 6) i) g
    LEFT JOIN per_day p ON p.day = g.day
),
f AS (  -- W30: the view's closed days plus the live part
    SELECT sum(hot)::bigint AS hot, sum(warm)::bigint AS warm, sum(cold)::bigint AS cold,
           sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
           sum(in_progress)::bigint AS in_progress, sum(cancelled)::bigint AS cancelled
    FROM (
        SELECT count(*) FILTER (WHERE total_score >= 80)              AS hot,
               count(*) FILTER (WHERE total_score BETWEEN 50 AND 79)  AS warm,
               count(*) FILTER (WHERE total_score < 50)               AS cold,
               count(*) FILTER (WHERE status = 'completed')           AS completed,
               count(*) FILTER (WHERE status = 'failed')              AS failed,
               count(*) FILTER (WHERE status = 'in_progress')         AS in_progress,
               count(*) FILTER (WHERE status = 'cancelled')           AS cancelled
        FROM c WHERE created_at >= (SELECT live30_from FROM s)
        UNION ALL
        SELECT d.hot, d.warm, d.cold, d.completed, d.failed, d.in_progress, d.cancelled
        FROM u JOIN sidecache.analytics_day_totals d ON d.user_id = u.id
        WHERE d.day >= sidecache.utc_day(-30) AND d.day < (SELECT live_from FROM s)
        UNION ALL
        SELECT hot, warm, cold, completed, failed, in_progress, cancelled FROM h
    ) parts
),
perf AS (  -- agents with a call in W7: at most 10, calls desc, name (bytes), id
    SELECT ag.id, ag.name, p.calls, p.completed, p.leads, p.score_sum
    FROM (SELECT agent_id, sum(calls) AS calls, sum(completed) AS completed,
                 sum(leads) AS leads, sum(score_sum) AS score_sum
          FROM (SELECT agent_id, count(*) AS calls,
                       count(*) FILTER (WHERE status = 'completed') AS completed,
                       count(total_score) AS leads, coalesce(sum(total_score), 0) AS score_sum
                FROM c WHERE created_at >= sidecache.utc_day(-6)
                GROUP BY agent_id
                UNION ALL
                SELECT d.agent_id, d.calls, d.completed, d.leads, d.score_sum
                FROM u JOIN sidecache.analytics_agent_day_totals d ON d.user_id = u.id
                WHERE d.day >= sidecache.utc_day(-6) AND d.day < (SELECT live_from FROM s)
                UNION ALL
                SELECT agent_id, calls, completed, leads, score_sum
                FROM h WHERE hour >= sidecache.utc_day(-6)) x
          GROUP BY agent_id) p
    JOIN agents ag ON ag.id = p.agent_id
    ORDER BY p.calls DESC, ag.name COLLATE "C", ag.id
    LIMIT 10
),
perf_json AS (
    SELECT json_agg(json_build_object(
               'agentId', id, 'name', name, 'calls', calls, 'completed', completed,
               'successRate', sidecache.pct(completed, calls),
               'avgLeadScore', sidecache.avg2(score_sum, leads, NULL))
           ORDER BY calls DESC, name COLLATE "C", id) AS items
    FROM perf
),
per_hour AS (  -- W7 (future calls included) by UTC hour of day, view + live
    SELECT h, sum(n) AS n
    FROM (SELECT extract(hour FROM created_at AT TIME ZONE 'UTC')::int AS h, count(*) AS n
          FROM c WHERE created_at >= sidecache.utc_day(-6)
          GROUP BY 1
          UNION ALL
          SELECT extract(hour FROM hour AT TIME ZONE 'UTC')::int, calls FROM w7
          UNION ALL
          SELECT extract(hour FROM hour AT TIME ZONE 'UTC')::int, calls
          FROM h WHERE hour >= sidecache.utc_day(-6)) x
    GROUP BY h
),
hours AS (
    SELECT json_agg(coalesce(p.n, 0) ORDER BY g.h) AS items
    FROM generate_series(0, 23) g(h) LEFT JOIN per_hour p ON p.h = g.h
)
SELECT json_build_object('success', true, 'data', json_build_object(
    'leadsOverTime', days.items,
    'leadQualityDistribution', json_build_array(
        json_build_object('label', 'hot', 'min', 80, 'max', 100, 'count', f.hot),
        json_build_object('label', 'warm', 'min', 50, 'max', 79, 'count', f.warm),
        json_build_object('label', 'cold', 'min', 0, 'max', 49, 'count', f.cold)),
    'callOutcomes', json_build_object('completed', f.completed, 'failed', f.failed,
                                      'inProgress', f.in_progress, 'cancelled', f.cancelled),
    'agentPerformance', coalesce(perf_json.items, '[]'::json),
    'hourlyDistribution', hours.items
))::text
FROM u, days, f, perf_json, hours;
