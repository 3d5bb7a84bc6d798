-- sidecache:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS sidecache_agents_user_created;
DROP INDEX CONCURRENTLY IF EXISTS sidecache_calls_agent_created;
DROP INDEX CONCURRENTLY IF EXISTS sidecache_calls_user_created;
