-- Helper functions the fill queries use. Plain SQL functions, inlined by the
-- planner. All time arithmetic is UTC whatever the session's TimeZone.
CREATE SCHEMA IF NOT EXISTS sidecache;

-- A JWT subject as uuid, NULL when it is not one (the fill then finds no user
-- and the request is forwarded: the legacy answers it).
CREATE OR REPLACE FUNCTION sidecache.try_uuid(t text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                THEN t::uuid END
$$;

-- JavaScript's Date.prototype.toISOString(): UTC, milliseconds truncated, 'Z'.
CREATE OR REPLACE FUNCTION sidecache.iso_ms(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(date_trunc('milliseconds', ts AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The start of the current UTC day (plus days), as timestamptz.
CREATE OR REPLACE FUNCTION sidecache.utc_day(days integer DEFAULT 0) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') + make_interval(days => days)) AT TIME ZONE 'UTC'
$$;

-- The first instant of the current UTC month.
CREATE OR REPLACE FUNCTION sidecache.utc_month() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- api.md pct(a, b): round(100 * a / b, 2), 0 when b = 0; trailing zeros trimmed.
CREATE OR REPLACE FUNCTION sidecache.pct(a numeric, b numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b = 0 THEN 0 ELSE trim_scale(round(100 * a / b, 2)) END
$$;

-- api.md avg2: round(sum / count, 2); when_empty where count = 0.
CREATE OR REPLACE FUNCTION sidecache.avg2(total numeric, n numeric, when_empty numeric DEFAULT 0)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n = 0 THEN when_empty ELSE trim_scale(round(total / n, 2)) END
$$;

-- api.md avgDuration: s = round(60 * sum / count) (exact, half away from zero), "Xm Ys".
CREATE OR REPLACE FUNCTION sidecache.duration_text(minutes_sum numeric, n numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n = 0 THEN '0m 0s'
           ELSE (SELECT (s / 60)::text || 'm ' || (s % 60)::text || 's'
                 FROM (SELECT round(60 * minutes_sum / n)::bigint AS s) r) END
$$;
