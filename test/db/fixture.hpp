#pragma once
// A small hand-made dataset whose figures are worked out by hand from
// /work/shared/contract/api.md (see test_fills.cpp). Times are relative to
// T = the current UTC midnight, so the windows hold whatever today is.

namespace sidecache::test {

inline constexpr const char* u1 = "11111111-1111-4111-8111-111111111111";  // active, the data
inline constexpr const char* u2 = "22222222-2222-4222-8222-222222222222";  // inactive
inline constexpr const char* u3 = "33333333-3333-4333-8333-333333333333";  // active, no data
inline constexpr const char* a1 = "a0000000-0000-4000-8000-000000000001";
inline constexpr const char* a2 = "a0000000-0000-4000-8000-000000000002";
inline constexpr const char* a3 = "a0000000-0000-4000-8000-000000000003";

inline constexpr const char* fixture_sql = R"SQL(
INSERT INTO users (id, email, name, credits, is_active) VALUES
  ('11111111-1111-4111-8111-111111111111', 'u1@example.com', 'U1', 1000, true),
  ('22222222-2222-4222-8222-222222222222', 'u2@example.com', 'U2', 5, false),
  ('33333333-3333-4333-8333-333333333333', 'u3@example.com', 'U3', 7, true);
INSERT INTO agents (id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at) VALUES
  ('a0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'agent_z', 'Zed', 'call', 'active', 'first', '2025-01-01 00:00:00.123999+00'),
  ('a0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111', NULL, 'alpha', 'chat', 'paused', '', '2025-02-01 00:00:00+00'),
  ('a0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111', NULL, 'Beta', 'call', 'draft', 'b', '2025-02-01 00:00:00+00'),
  ('a0000000-0000-4000-8000-000000000009', '22222222-2222-4222-8222-222222222222', NULL, 'other', 'call', 'active', '', '2025-02-01 00:00:00+00');
CREATE TEMP TABLE t AS SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t0;
INSERT INTO calls (id, user_id, agent_id, phone_number, status, duration_minutes, credits_used, created_at)
SELECT v.id::uuid, '11111111-1111-4111-8111-111111111111', v.agent::uuid, '+1', v.status, v.d, v.cr, t.t0 + v.at::interval
FROM t, (VALUES
  ('c0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'completed',   1.25,  10, '1 hour'),
  ('c0000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000001', 'failed',      1.25,   5, '-1 day 2 hours'),
  ('c0000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000002', 'completed',   2.00,   3, '-6 days'),
  ('c0000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000002', 'in_progress', 0,      0, '-6 days -1 second'),
  ('c0000000-0000-4000-8000-000000000005', 'a0000000-0000-4000-8000-000000000001', 'cancelled',   3.00,   7, '-30 days'),
  ('c0000000-0000-4000-8000-000000000006', 'a0000000-0000-4000-8000-000000000001', 'completed',   9.00, 100, '-30 days -1 second'),
  ('c0000000-0000-4000-8000-000000000007', 'a0000000-0000-4000-8000-000000000003', 'completed',   0.50,   1, '2 days 5 hours')
) AS v(id, agent, status, d, cr, at);
INSERT INTO calls (id, user_id, agent_id, phone_number, status, duration_minutes, credits_used, created_at)
SELECT 'c0000000-0000-4000-8000-000000000099', '22222222-2222-4222-8222-222222222222',
       'a0000000-0000-4000-8000-000000000009', '+1', 'completed', 1, 1, t0 FROM t;
INSERT INTO lead_analytics (id, call_id, total_score) VALUES
  ('d0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 85),
  ('d0000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000002', 70),
  ('d0000000-0000-4000-8000-000000000003', 'c0000000-0000-4000-8000-000000000003', 49),
  ('d0000000-0000-4000-8000-000000000005', 'c0000000-0000-4000-8000-000000000005', 50),
  ('d0000000-0000-4000-8000-000000000006', 'c0000000-0000-4000-8000-000000000006', 99);
DROP TABLE t;
)SQL";

}  // namespace sidecache::test
