-- Per user, agent and UTC hour, the figures of the calls dated today or later,
-- kept by triggers in the writer's own transaction, so that a fill reads the
-- part since the views' boundary by hours, not by calls: the heaviest user of
-- `large` has ~12,800 calls a day, and reading them live (one lead probe
-- each) made its overview fill 209 ms by the day's end (issue 16).
-- docs/freshness.md ("today: hour_totals") shows why every figure stays exact:
--   * each statement on calls or lead_analytics adds its rows' deltas (old
--     versions subtracted, new ones added) for the rows dated on or after the
--     current UTC day, read under the shared writers' lock as 003's triggers
--     do; older rows are not counted here, and their writes mark the user in
--     late_changes (003, 004) until a refresh moves the boundary past them;
--   * a bucket's row is updated under its row lock, buckets in key order, so
--     any snapshot sees the table as the sum of the rows it sees;
--   * a lead counts in its call's bucket: the calls-side trigger locks the
--     leads it reads, the leads-side trigger locks the calls it starts to
--     count in (INSERT, call_id changed), so a lead written while its call
--     moves is counted in the bucket the call ends in.
CREATE SCHEMA IF NOT EXISTS sidecache;

CREATE TABLE IF NOT EXISTS sidecache.hour_totals (
    user_id      uuid        NOT NULL,
    hour         timestamptz NOT NULL,  -- a UTC hour
    agent_id     uuid        NOT NULL,
    calls        bigint      NOT NULL,  -- 0: every call of the bucket is gone (the fills skip it)
    completed    bigint      NOT NULL,
    failed       bigint      NOT NULL,
    in_progress  bigint      NOT NULL,
    cancelled    bigint      NOT NULL,
    duration_sum numeric     NOT NULL,
    credits_sum  bigint      NOT NULL,
    leads        bigint      NOT NULL,
    qualified    bigint      NOT NULL,  -- total_score >= 70
    hot          bigint      NOT NULL,  -- >= 80
    warm         bigint      NOT NULL,  -- 50 .. 79
    cold         bigint      NOT NULL,  -- < 50
    score_sum    bigint      NOT NULL,
    PRIMARY KEY (user_id, hour, agent_id)
) WITH (fillfactor = 50);  -- room on the page: a busy bucket's updates stay HOT

-- The table holds every call with created_at >= exact_from (the UTC midnight
-- of this migration): a fill uses it only when its boundary is at or after it.
CREATE TABLE IF NOT EXISTS sidecache.hour_totals_state (
    only_row   boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    exact_from timestamptz NOT NULL
);

-- The leads of the calls a DELETE removes, read before ON DELETE CASCADE
-- removes them too (the leads' own trigger then finds no call to count them
-- in): filled by a row trigger, emptied by the statement trigger of the same
-- statement, so it never holds a committed row.
CREATE UNLOGGED TABLE IF NOT EXISTS sidecache.hour_totals_deleted_leads (
    call_id     uuid    NOT NULL,
    total_score integer NOT NULL
);

DO $$ BEGIN
    IF to_regtype('sidecache.hour_delta') IS NULL THEN
        -- One row's change: sign -1 (old version) or +1 (new); is_call: its
        -- call's figures; score not NULL: its lead's figures.
        CREATE TYPE sidecache.hour_delta AS (
            user_id uuid, agent_id uuid, created_at timestamptz, sign integer,
            is_call boolean, status text, duration numeric, credits integer, score integer);
    END IF;
END $$;

-- Lock first, clock second (003's rule): the current UTC midnight, after
-- which a write's rows are counted here.
CREATE OR REPLACE FUNCTION sidecache.hour_totals_today() RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1399742796, 1);
    RETURN date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
END
$$;

-- Adds the deltas dated on or after `today`, one upsert per bucket, buckets
-- in key order (two writers of the same buckets cannot deadlock on them).
-- PL/pgSQL, not SQL: its plan is kept for the session (a SQL function's
-- statement was planned at every call: 0.3 ms of a one-row INSERT).
CREATE OR REPLACE FUNCTION sidecache.hour_totals_apply(ds sidecache.hour_delta[], today timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sidecache.hour_totals AS t
    SELECT d.user_id, date_trunc('hour', d.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', d.agent_id,
           sum(CASE WHEN d.is_call THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.is_call AND d.status = 'completed' THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.is_call AND d.status = 'failed' THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.is_call AND d.status = 'in_progress' THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.is_call AND d.status = 'cancelled' THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.is_call THEN d.sign * d.duration ELSE 0 END),
           sum(CASE WHEN d.is_call THEN d.sign * d.credits ELSE 0 END),
           sum(CASE WHEN d.score IS NOT NULL THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.score >= 70 THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.score >= 80 THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.score BETWEEN 50 AND 79 THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.score < 50 THEN d.sign ELSE 0 END),
           sum(CASE WHEN d.score IS NOT NULL THEN d.sign * d.score ELSE 0 END)
    FROM unnest(ds) d
    WHERE d.created_at >= today
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (user_id, hour, agent_id) DO UPDATE SET
        calls = t.calls + excluded.calls, completed = t.completed + excluded.completed,
        failed = t.failed + excluded.failed, in_progress = t.in_progress + excluded.in_progress,
        cancelled = t.cancelled + excluded.cancelled, duration_sum = t.duration_sum + excluded.duration_sum,
        credits_sum = t.credits_sum + excluded.credits_sum, leads = t.leads + excluded.leads,
        qualified = t.qualified + excluded.qualified, hot = t.hot + excluded.hot,
        warm = t.warm + excluded.warm, cold = t.cold + excluded.cold,
        score_sum = t.score_sum + excluded.score_sum;
END
$$;

-- calls: INSERT adds the rows (a new call has no lead yet); UPDATE moves the
-- rows whose counted columns changed, with their leads when the bucket
-- changed; DELETE subtracts the rows and the leads the row trigger kept.
CREATE OR REPLACE FUNCTION sidecache.calls_hour_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    today timestamptz := sidecache.hour_totals_today();
    ds sidecache.hour_delta[];
    moved uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ds := ARRAY(SELECT ROW(user_id, agent_id, created_at, 1, true, status, duration_minutes,
                               credits_used, NULL)::sidecache.hour_delta
                    FROM new_rows WHERE created_at >= today);
    ELSIF TG_OP = 'UPDATE' THEN
        WITH o AS (SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM old_rows
                   EXCEPT ALL
                   SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM new_rows),
             n AS (SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM new_rows
                   EXCEPT ALL
                   SELECT id, user_id, agent_id, status, duration_minutes, credits_used, created_at FROM old_rows)
        SELECT ARRAY(SELECT ROW(user_id, agent_id, created_at, -1, true, status, duration_minutes,
                                credits_used, NULL)::sidecache.hour_delta FROM o WHERE created_at >= today
                     UNION ALL
                     SELECT ROW(user_id, agent_id, created_at, 1, true, status, duration_minutes,
                                credits_used, NULL)::sidecache.hour_delta FROM n WHERE created_at >= today),
               ARRAY(SELECT o.id FROM o JOIN n USING (id)
                     WHERE (o.created_at >= today OR n.created_at >= today)
                       AND (o.user_id, o.agent_id, date_trunc('hour', o.created_at AT TIME ZONE 'UTC'))
                           IS DISTINCT FROM (n.user_id, n.agent_id, date_trunc('hour', n.created_at AT TIME ZONE 'UTC'))
                     ORDER BY o.id)
          INTO ds, moved;
        IF cardinality(moved) > 0 THEN
            -- Locked before read: a concurrent write of these leads commits
            -- first, and its trigger counted it in the bucket the call left.
            PERFORM 1 FROM lead_analytics WHERE call_id = ANY (moved) ORDER BY call_id FOR SHARE;
            ds := ds || ARRAY(
                SELECT ROW(o.user_id, o.agent_id, o.created_at, -1, false, NULL, 0, 0, l.total_score)::sidecache.hour_delta
                FROM old_rows o JOIN lead_analytics l ON l.call_id = o.id WHERE o.id = ANY (moved)
                UNION ALL
                SELECT ROW(n.user_id, n.agent_id, n.created_at, 1, false, NULL, 0, 0, l.total_score)::sidecache.hour_delta
                FROM new_rows n JOIN lead_analytics l ON l.call_id = n.id WHERE n.id = ANY (moved));
        END IF;
    ELSE
        ds := ARRAY(SELECT ROW(user_id, agent_id, created_at, -1, true, status, duration_minutes,
                               credits_used, NULL)::sidecache.hour_delta
                    FROM old_rows WHERE created_at >= today
                    UNION ALL
                    SELECT ROW(o.user_id, o.agent_id, o.created_at, -1, false, NULL, 0, 0,
                               k.total_score)::sidecache.hour_delta
                    FROM old_rows o JOIN sidecache.hour_totals_deleted_leads k ON k.call_id = o.id
                    WHERE o.created_at >= today);
        DELETE FROM sidecache.hour_totals_deleted_leads k USING old_rows o WHERE k.call_id = o.id;
    END IF;
    IF cardinality(ds) > 0 THEN
        PERFORM sidecache.hour_totals_apply(ds, today);
    END IF;
    RETURN NULL;
END
$$;

-- Before a call's row goes, its lead (locked: a concurrent score update
-- commits first and is the one read) is kept for the statement trigger.
CREATE OR REPLACE FUNCTION sidecache.calls_keep_deleted_lead() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sidecache.hour_totals_deleted_leads (call_id, total_score)
    SELECT call_id, total_score FROM lead_analytics WHERE call_id = OLD.id FOR UPDATE;
    RETURN OLD;
END
$$;

-- lead_analytics: the lead's figures in its call's bucket. Calls a lead
-- starts to count in are locked first (FOR SHARE waits for a concurrent move
-- of the call to commit, so the bucket read is the one it ends in); a lead
-- whose call is gone was deleted with it (calls_keep_deleted_lead).
CREATE OR REPLACE FUNCTION sidecache.leads_hour_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    today timestamptz := sidecache.hour_totals_today();
    ds sidecache.hour_delta[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM calls WHERE id IN (SELECT call_id FROM new_rows) ORDER BY id FOR SHARE;
        ds := ARRAY(SELECT ROW(c.user_id, c.agent_id, c.created_at, 1, false, NULL, 0, 0,
                               n.total_score)::sidecache.hour_delta
                    FROM new_rows n JOIN calls c ON c.id = n.call_id WHERE c.created_at >= today);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM 1 FROM calls
        WHERE id IN (SELECT n.call_id FROM new_rows n JOIN old_rows o USING (id) WHERE o.call_id <> n.call_id)
        ORDER BY id FOR SHARE;
        WITH o AS (SELECT id, call_id, total_score FROM old_rows
                   EXCEPT ALL SELECT id, call_id, total_score FROM new_rows),
             n AS (SELECT id, call_id, total_score FROM new_rows
                   EXCEPT ALL SELECT id, call_id, total_score FROM old_rows)
        SELECT ARRAY(SELECT ROW(c.user_id, c.agent_id, c.created_at, -1, false, NULL, 0, 0,
                                o.total_score)::sidecache.hour_delta
                     FROM o JOIN calls c ON c.id = o.call_id WHERE c.created_at >= today
                     UNION ALL
                     SELECT ROW(c.user_id, c.agent_id, c.created_at, 1, false, NULL, 0, 0,
                                n.total_score)::sidecache.hour_delta
                     FROM n JOIN calls c ON c.id = n.call_id WHERE c.created_at >= today)
          INTO ds;
    ELSE
        ds := ARRAY(SELECT ROW(c.user_id, c.agent_id, c.created_at, -1, false, NULL, 0, 0,
                               o.total_score)::sidecache.hour_delta
                    FROM old_rows o JOIN calls c ON c.id = o.call_id WHERE c.created_at >= today);
    END IF;
    IF cardinality(ds) > 0 THEN
        PERFORM sidecache.hour_totals_apply(ds, today);
    END IF;
    RETURN NULL;
END
$$;

-- TRUNCATE fires no row trigger: empty what the truncated table counted.
CREATE OR REPLACE FUNCTION sidecache.hour_totals_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'calls' THEN
        DELETE FROM sidecache.hour_totals;
    ELSE
        UPDATE sidecache.hour_totals
           SET leads = 0, qualified = 0, hot = 0, warm = 0, cold = 0, score_sum = 0;
    END IF;
    RETURN NULL;
END
$$;

-- Writers wait here until the table is filled (the triggers exist from now on).
LOCK TABLE calls, lead_analytics IN SHARE ROW EXCLUSIVE MODE;

DROP TRIGGER IF EXISTS sidecache_calls_hours_insert ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_hours_update ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_hours_delete ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_hours_keep_lead ON calls;
DROP TRIGGER IF EXISTS sidecache_calls_hours_truncate ON calls;
CREATE TRIGGER sidecache_calls_hours_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_hour_totals();
CREATE TRIGGER sidecache_calls_hours_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_hour_totals();
CREATE TRIGGER sidecache_calls_hours_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.calls_hour_totals();
-- Only calls that can be dated today (now() is the transaction's start, so
-- now() - 1 day is before the current UTC midnight): a bulk delete of old
-- history runs no row trigger.
CREATE TRIGGER sidecache_calls_hours_keep_lead BEFORE DELETE ON calls
    FOR EACH ROW WHEN (OLD.created_at >= now() - interval '1 day')
    EXECUTE FUNCTION sidecache.calls_keep_deleted_lead();
CREATE TRIGGER sidecache_calls_hours_truncate AFTER TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.hour_totals_truncate();

DROP TRIGGER IF EXISTS sidecache_leads_hours_insert ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_hours_update ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_hours_delete ON lead_analytics;
DROP TRIGGER IF EXISTS sidecache_leads_hours_truncate ON lead_analytics;
CREATE TRIGGER sidecache_leads_hours_insert AFTER INSERT ON lead_analytics
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_hour_totals();
CREATE TRIGGER sidecache_leads_hours_update AFTER UPDATE ON lead_analytics
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_hour_totals();
CREATE TRIGGER sidecache_leads_hours_delete AFTER DELETE ON lead_analytics
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.leads_hour_totals();
CREATE TRIGGER sidecache_leads_hours_truncate AFTER TRUNCATE ON lead_analytics
    FOR EACH STATEMENT EXECUTE FUNCTION sidecache.hour_totals_truncate();

-- The calls already dated today or later, from the same UTC midnight the
-- triggers start at.
DELETE FROM sidecache.hour_totals_state;
INSERT INTO sidecache.hour_totals_state (exact_from) VALUES (sidecache.hour_totals_today());
DELETE FROM sidecache.hour_totals;
INSERT INTO sidecache.hour_totals
SELECT c.user_id, date_trunc('hour', c.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', c.agent_id,
       count(*),
       count(*) FILTER (WHERE c.status = 'completed'),
       count(*) FILTER (WHERE c.status = 'failed'),
       count(*) FILTER (WHERE c.status = 'in_progress'),
       count(*) FILTER (WHERE c.status = 'cancelled'),
       coalesce(sum(c.duration_minutes), 0),
       coalesce(sum(c.credits_used), 0),
       count(la.total_score),
       count(*) FILTER (WHERE la.total_score >= 70),
       count(*) FILTER (WHERE la.total_score >= 80),
       count(*) FILTER (WHERE la.total_score BETWEEN 50 AND 79),
       count(*) FILTER (WHERE la.total_score < 50),
       coalesce(sum(la.total_score), 0)
FROM calls c
LEFT JOIN lead_analytics la ON la.call_id = c.id
WHERE c.created_at >= (SELECT exact_from FROM sidecache.hour_totals_state)
GROUP BY 1, 2, 3;

-- 009's refresh, plus: the hours before the new boundary are the views' now.
-- No writer touches them concurrently (lock-then-clock: a writer's rows
-- counted here are dated on or after the UTC day of a clock read after this
-- refresh's snapshot), so the DELETE never conflicts with one.
CREATE OR REPLACE FUNCTION sidecache.refresh_views() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sidecache.refresh_state
       SET boundary = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           refreshed_at = now();
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.agent_call_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.analytics_day_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.analytics_hour_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.analytics_agent_day_totals;
    REFRESH MATERIALIZED VIEW CONCURRENTLY sidecache.overview_day_totals;
    DELETE FROM sidecache.hour_totals WHERE hour < (SELECT boundary FROM sidecache.refresh_state);
    DELETE FROM sidecache.late_changes;
END
$$;
