DROP FUNCTION IF EXISTS sidecache.duration_text(numeric, numeric);
DROP FUNCTION IF EXISTS sidecache.avg2(numeric, numeric, numeric);
DROP FUNCTION IF EXISTS sidecache.pct(numeric, numeric);
DROP FUNCTION IF EXISTS sidecache.utc_month();
DROP FUNCTION IF EXISTS sidecache.utc_day(integer);
DROP FUNCTION IF EXISTS sidecache.iso_ms(timestamptz);
DROP FUNCTION IF EXISTS sidecache.try_uuid(text);
