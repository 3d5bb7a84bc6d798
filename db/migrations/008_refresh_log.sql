-- One refresher per database (docs/freshness.md "The refresher"): every
-- refresh is logged, so the replica that holds the refresher's lock
-- (pg_try_advisory_lock(1399742796, 4)) decides from the database, not from
-- its own memory, whether a refresh would change anything; a replica that
-- starts after another refreshed today does not refresh again.
CREATE TABLE IF NOT EXISTS sidecache.refresh_log (
    id          bigserial   PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    reason      text        NOT NULL,  -- first, day, marks, requested, command
    views       text[]      NOT NULL,  -- the views it refreshed
    by          text        NOT NULL   -- host:pid of the sidecar that ran it
);

-- What the refresher decides on, as one line of text
-- "<refreshes logged> <day moved: 0|1> <marked users>":
--   * the day moved when the views' boundary is before the UTC midnight of
--     now() (a new closed day to fold in; -infinity: never refreshed);
--   * marked users are the distinct users of late_changes, each read wholly
--     live until a refresh folds their changes into the views.
CREATE OR REPLACE FUNCTION sidecache.refresh_facts() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT concat_ws(' ',
        (SELECT count(*) FROM sidecache.refresh_log),
        (SELECT (boundary < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')::int
           FROM sidecache.refresh_state),
        (SELECT count(DISTINCT user_id) FROM sidecache.late_changes))
$$;

-- sidecache.refresh_views() (the same transaction and snapshot as before:
-- db/refresh.hpp's steps call this in its place), then one row in the log.
-- Every view is refreshed, whatever the reason: they share one boundary and
-- one set of marks, so refreshing some would leave the others behind a
-- boundary they were not computed for, or drop marks they still need.
CREATE OR REPLACE FUNCTION sidecache.refresh_views_logged(reason text, by text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
BEGIN
    PERFORM sidecache.refresh_views();
    INSERT INTO sidecache.refresh_log (started_at, finished_at, reason, views, by)
    VALUES (started, clock_timestamp(), reason,
            -- refresh_views() refreshes every view of the schema (003, 004, 009).
            ARRAY(SELECT matviewname::text FROM pg_matviews WHERE schemaname = 'sidecache' ORDER BY 1),
            by);
END
$$;
