-- Every user of the `small` data copied 9 times, with their agents, calls and leads:
-- 1,000 users (bench/warmup/run, bench/l2/run).
CREATE TEMP TABLE mu AS SELECT id AS old, k, gen_random_uuid() AS new FROM users, generate_series(1, 9) k;
INSERT INTO users SELECT mu.new, mu.k || '-' || email, name, credits, is_active, created_at FROM users u JOIN mu ON mu.old = u.id;
CREATE TEMP TABLE ma AS SELECT a.id AS old, mu.k, gen_random_uuid() AS new, mu.new AS user_new
  FROM agents a JOIN mu ON mu.old = a.user_id;
INSERT INTO agents SELECT ma.new, ma.user_new, elevenlabs_agent_id, name, agent_type, status, description, created_at, updated_at
  FROM agents a JOIN ma ON ma.old = a.id;
CREATE TEMP TABLE mc AS SELECT c.id AS old, ma.k, gen_random_uuid() AS new, ma.user_new, ma.new AS agent_new
  FROM calls c JOIN ma ON ma.old = c.agent_id;
INSERT INTO calls SELECT mc.new, mc.user_new, mc.agent_new, phone_number, status, duration_minutes, credits_used, created_at
  FROM calls c JOIN mc ON mc.old = c.id;
INSERT INTO lead_analytics SELECT gen_random_uuid(), mc.new, total_score, l.created_at
  FROM lead_analytics l JOIN mc ON mc.old = l.call_id;
ANALYZE;
