-- sidecache:no-transaction
-- Composite indexes for the fills. Built CONCURRENTLY, so the legacy keeps writing
-- while they build; that cannot run inside a transaction, so the runner sends
-- these statements one by one (statements end with ';' at the end of a line).
-- Names start with sidecache_ so the runner can find (and drop) an INVALID
-- leftover of an interrupted build before retrying.

-- One user's calls by date, with every column the three fills read: overview
-- and analytics scan the user's last 30 days, agents reads the calls since the
-- view boundary; all index-only when the visibility map is current.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sidecache_calls_user_created
    ON calls (user_id, created_at)
    INCLUDE (id, agent_id, status, duration_minutes, credits_used);

-- The materialized view's refresh and ON DELETE CASCADE from agents.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sidecache_calls_agent_created
    ON calls (agent_id, created_at);

-- A user's agents, newest first (GET /api/agents order).
CREATE INDEX CONCURRENTLY IF NOT EXISTS sidecache_agents_user_created
    ON agents (user_id, created_at DESC, id)
    INCLUDE (status);

-- lead_analytics(call_id) is UNIQUE already: its index serves the lead joins.
