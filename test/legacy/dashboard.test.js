// The legacy stand-in, figure by figure, against expectations worked out by hand from a
// tiny dataset whose timestamps are placed relative to today's UTC date (the legacy
// uses the real clock). Needs PostgreSQL: SIDECACHE_TEST_DATABASE_URL; without it every test
// fails (SIDECACHE_SKIP_PG=1 skips them instead).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');
const { agent_config } = require('../mocks/elevenlabs');
const { mint } = require('../data/mint');

const ADMIN_URL = h.test_database_url();
const DB = `legacy_dashboard_${process.pid}`;
const SECRET = 'legacy-test-secret';
const KEY = 'mock-key';
const DAY_US = 86_400_000_000;
const HOUR_US = 3_600_000_000;

const uid = (p, n) => `${p.repeat(8)}-0000-4000-8000-${String(n).padStart(12, '0')}`;
const A = uid('a', 1), B = uid('b', 1), C = uid('c', 1), D = uid('d', 1), E = uid('e', 1), F = uid('f', 1);
const G = uid('9', 1), G2 = uid('9', 2);
const AG = (n) => uid('a', 0xa00 + n);  // agents of A
const AC = (n) => uid('a', 0xc00 + n);  // calls of A
const EMILE = 'Émile "quoted" \\back\\ \u0001\t\n 日本';

// Users: [id, name, credits, active]
const USERS = [
  [A, 'Alice "A" O\'Hara', 500, true],
  [B, 'Bob', 100, true],
  [C, 'Carol', 0, true],
  [D, 'Dan (no agents)', 42, true],
  [E, 'Eve (inactive)', 10, false],
  [F, 'Fay (month)', 7, true],
  [G, 'Gus (mutations)', 100, true],
  [G2, 'Other owner', 100, true],
];

// Agents: [id, user, elevenlabs id, name, type, status, created offset (µs from today 00:00)]
const AGENTS = [
  [AG(3), A, 'agent_gone_x', 'beta', 'chat', 'draft', -8 * DAY_US],  // inserted before AG(1) on purpose
  [AG(1), A, 'agent_alpha1', 'beta', 'call', 'active', -10 * DAY_US],
  [AG(2), A, null, 'Zed', 'call', 'paused', -9 * DAY_US],
  [AG(4), A, 'agent_partial_p', EMILE, 'call', 'active', -8 * DAY_US],
  [AG(5), A, 'agent_beta2', 'zulu', 'chat', 'active', -1 * DAY_US],
  [uid('c', 0xa01), C, null, 'c-six', 'call', 'active', -50 * DAY_US],
  [uid('c', 0xa02), C, null, 'c-forty', 'call', 'active', -45 * DAY_US],
  [uid('e', 0xa01), E, null, 'eve agent', 'call', 'active', -5 * DAY_US],
  [uid('f', 0xa01), F, null, 'month', 'call', 'active', -40 * DAY_US],
  [uid('9', 0xa01), G, null, 'gus agent', 'call', 'active', -5 * DAY_US],
  [uid('9', 0xa02), G2, null, 'not gus', 'call', 'active', -5 * DAY_US],
];
// B: 11 agents n00..n10, inserted in reverse order, one call each today.
for (let i = 10; i >= 0; i--) {
  AGENTS.push([uid('b', 0xa00 + i), B, null, `n${String(i).padStart(2, '0')}`, 'call', 'active', -3 * DAY_US]);
}

// Calls: [id, user, agent, status, duration, credits, offset µs, lead score or null]
const CALLS = [
  [AC(1), A, AG(1), 'completed', '3.25', 10, -30 * DAY_US, 70],        // W30 boundary: in
  [AC(2), A, AG(1), 'completed', '9.99', 100, -30 * DAY_US - 1, 100],  // 1 µs before: out
  [AC(3), A, AG(1), 'failed', '0.00', 0, 2 * HOUR_US, 49],
  [AC(4), A, AG(1), 'completed', '1.50', 5, 2 * HOUR_US, 50],           // same instant as AC(3)
  [AC(5), A, AG(2), 'in_progress', '2.00', 3, -6 * DAY_US, 69],         // W7 boundary: in
  [AC(6), A, AG(2), 'cancelled', '0.01', 1, -6 * DAY_US - 1, 79],       // 1 µs before: out of W7
  [AC(7), A, AG(3), 'completed', '4.00', 7, -3 * DAY_US + 5 * HOUR_US, 80],
  [AC(8), A, AG(3), 'completed', '0.33', 2, DAY_US + 3 * HOUR_US, 0],   // future-dated
  [AC(9), A, AG(4), 'completed', '1.00', 4, -1, null],                  // yesterday's last µs
  [AC(10), A, AG(4), 'failed', '2.00', 0, -20 * DAY_US, null],
];
// C: c-six: 6 old calls whose 60*sum/count is a tie (123.5 s); c-forty: 40 calls at one
// instant, avg duration 1.025 and avg score 1.025 (ties that binary floats round down).
['2.00', '2.00', '2.00', '2.00', '2.00', '2.35'].forEach((d, i) => {
  CALLS.push([uid('c', 0xc00 + i + 1), C, uid('c', 0xa01), i === 0 ? 'completed' : 'failed', d, 1, -60 * DAY_US, null]);
});
for (let i = 1; i <= 40; i++) {
  CALLS.push([uid('c', i), C, uid('c', 0xa02), i === 1 ? 'completed' : 'failed', i === 40 ? '2.00' : '1.00', 0,
    -2 * DAY_US + 10 * HOUR_US, i === 1 ? 41 : 0]);
}
for (let i = 0; i <= 10; i++) {
  CALLS.push([uid('b', 0xc00 + i), B, uid('b', 0xa00 + i), 'completed', '0.50', 1, HOUR_US + i, null]);
}
CALLS.push([uid('e', 0xc01), E, uid('e', 0xa01), 'completed', '1.00', 1, -1 * DAY_US, 90]);

let today_ms;   // today 00:00:00 UTC, from the server's clock
let month_us;   // first day of this month 00:00, µs relative to today
let mock, legacy;
let skip = false;

const iso = (offset_us) => new Date(today_ms + Math.floor(offset_us / 1000)).toISOString();
const day = (n) => new Date(today_ms + n * 86_400_000).toISOString().slice(0, 10);
const token = (user, opts) => mint(SECRET, user, opts);
const get = (p, user, opts) => h.request(legacy.port, 'GET', p, { headers: user ? { Authorization: `Bearer ${token(user, opts)}` } : {} });
const mock_stats = async () => (await h.request(mock.port, 'GET', '/__mock/stats')).json;

before(async () => {
  if (!ADMIN_URL) { skip = true; return; }
  // The dataset is placed relative to today: do not straddle a UTC midnight.
  const to_midnight = 86_400_000 - (Date.now() % 86_400_000);
  if (to_midnight < 120_000) await new Promise((r) => setTimeout(r, to_midnight + 1000));
  const url = await h.create_database(ADMIN_URL, DB);
  const c = new h.pg.Client({ connectionString: url, options: '-c TimeZone=UTC' });
  await c.connect();
  await c.query(fs.readFileSync(path.join(h.ROOT, 'test/fixtures/legacy_schema.sql'), 'utf8'));
  const at = (n) => `(CURRENT_DATE::timestamptz + $${n}::bigint * interval '1 microsecond')`;
  for (const [id, name, credits, active] of USERS) {
    await c.query('INSERT INTO users (id, email, name, credits, is_active) VALUES ($1, $2, $3, $4, $5)',
      [id, `${id}@example.com`, name, credits, active]);
  }
  for (const [id, user, el, name, type, status, off] of AGENTS) {
    await c.query(`INSERT INTO agents (id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, ${at(8)})`, [id, user, el, name, type, status, `about ${name}`, off]);
  }
  for (const [id, user, agent, status, dur, cr, off, score] of CALLS) {
    await c.query(`INSERT INTO calls (id, user_id, agent_id, phone_number, status, duration_minutes, credits_used, created_at)
                   VALUES ($1, $2, $3, '+15550100', $4, $5, $6, ${at(7)})`, [id, user, agent, status, dur, cr, off]);
    if (score !== null) {
      await c.query('INSERT INTO lead_analytics (id, call_id, total_score) VALUES ($1, $2, $3)',
        [id.replace(/^(.)/, 'f'), id, score]);
    }
  }
  const { rows: [t] } = await c.query(
    `SELECT extract(epoch FROM CURRENT_DATE::timestamptz)::bigint * 1000 AS today_ms,
            extract(epoch FROM date_trunc('month', CURRENT_DATE) - CURRENT_DATE::timestamptz)::bigint * 1000000 AS month_us`);
  today_ms = Number(t.today_ms);
  month_us = Number(t.month_us);
  // F: one call at the month's first instant (in), one 1 µs before it (out of MONTH).
  await c.query(`INSERT INTO calls (id, user_id, agent_id, phone_number, status, duration_minutes, credits_used, created_at)
                 VALUES ($1, $3, $4, '+1', 'completed', 1, 1000, ${at(2)}),
                        ($5, $3, $4, '+1', 'completed', 1, 2000, ${at(2)} - interval '1 microsecond')`,
  [uid('f', 0xc01), month_us, F, uid('f', 0xa01), uid('f', 0xc02)]);
  await c.end();

  mock = await h.start_node(path.join(h.ROOT, 'test/mocks/elevenlabs.js'),
    ['--port', '0', '--api-key', KEY, '--latency-ms', '5', '--jitter-ms', '5']);
  legacy = await h.start_node(path.join(h.ROOT, 'test/legacy/server.js'),
    ['--port', '0', '--database-url', url, '--jwt-secret', SECRET,
      '--elevenlabs-url', `http://127.0.0.1:${mock.port}`, '--elevenlabs-key', KEY]);
});

after(async () => {
  h.agent.destroy();
  if (legacy) assert.deepEqual(await legacy.stop(), { code: 0, signal: null }, 'legacy exits cleanly on SIGTERM');
  if (mock) assert.deepEqual(await mock.stop(), { code: 0, signal: null }, 'mock exits cleanly on SIGTERM');
  if (ADMIN_URL) await h.drop_database(ADMIN_URL, DB);
});

// Without a database the tests fail, unless skipping was asked for explicitly.
function check_skip(t) {
  if (!skip) return false;
  if (process.env.SIDECACHE_SKIP_PG === '1') {
    console.warn('WARNING: SIDECACHE_SKIP_PG=1: legacy tests skipped');
    t.skip('SIDECACHE_SKIP_PG=1');
    return true;
  }
  throw new Error('SIDECACHE_TEST_DATABASE_URL is not set: start PostgreSQL (scripts/pg start) '
                  + 'or set SIDECACHE_SKIP_PG=1 to skip these tests');
}

test('overview of a user with every kind of call, figure by figure', async (t) => {
  if (check_skip(t)) return;
  const r = await get('/api/dashboard/overview', A);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(r.json.success, true);
  const d = r.json.data;
  assert.deepEqual(d.kpis, [
    { id: 'total_leads', label: 'Total Leads', value: 7, unit: 'count' },
    { id: 'total_interactions', label: 'Total Interactions', value: 9, unit: 'count' },
    { id: 'leads_converted', label: 'Leads Converted', value: 3, unit: 'count' },
    { id: 'conversion_rate', label: 'Conversion Rate', value: 42.86, unit: 'percent' },
    { id: 'avg_conversations_per_hour', label: 'Avg Conversations/Hour', value: 0.01, unit: 'count' },
    { id: 'avg_lead_score', label: 'Avg Lead Score', value: 56.71, unit: 'score' },
    { id: 'call_success_rate', label: 'Call Success Rate', value: 55.56, unit: 'percent' },
  ]);
  // MONTH depends on today's date: the calls of A at or after the 1st, 00:00.
  const month = CALLS.filter((c) => c[1] === A && c[6] >= month_us).reduce((s, c) => s + c[5], 0);
  assert.deepEqual(d.credits, { current: 500, usedThisMonth: month, usedLast30Days: 32 });
  assert.deepEqual(d.agents, { total: 5, active: 3, draft: 1, paused: 1 });
  assert.deepEqual(d.conversations, {
    total: 9, completed: 5, failed: 2, inProgress: 1, cancelled: 1,
    totalDurationMinutes: 14.09, avgDurationMinutes: 1.57,
  });
  assert.deepEqual(d.leads, { total: 7, qualified: 3, hot: 1, warm: 4, cold: 2, avgScore: 56.71 });
  const act = (n, agent, name, status, dur, score, off) => ({
    callId: AC(n), agentId: AG(agent), agentName: name, status, durationMinutes: dur, leadScore: score, createdAt: iso(off),
  });
  assert.deepEqual(d.recentActivity, [
    act(8, 3, 'beta', 'completed', 0.33, 0, DAY_US + 3 * HOUR_US),
    act(3, 1, 'beta', 'failed', 0, 49, 2 * HOUR_US),
    act(4, 1, 'beta', 'completed', 1.5, 50, 2 * HOUR_US),
    act(9, 4, EMILE, 'completed', 1, null, -1),
    act(7, 3, 'beta', 'completed', 4, 80, -3 * DAY_US + 5 * HOUR_US),
    act(5, 2, 'Zed', 'in_progress', 2, 69, -6 * DAY_US),
  ]);
  // Millisecond truncation of 23:59:59.999999.
  assert.match(d.recentActivity[3].createdAt, /T23:59:59\.999Z$/);
  assert.equal(d.cacheInfo.cached, false);
  assert.match(d.cacheInfo.calculatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // JSON escaping of quotes, backslashes, control characters; non-ASCII as UTF-8.
  assert.ok(r.text.includes('"agentName":"Émile \\"quoted\\" \\\\back\\\\ \\u0001\\t\\n 日本"'), r.text);
});

test('overview: rounding ties are exact (1.025 -> 1.03), 10 newest with id tiebreak', async (t) => {
  if (check_skip(t)) return;
  const d = (await get('/api/dashboard/overview', C)).json.data;
  assert.deepEqual(d.kpis.map((k) => k.value), [40, 40, 0, 0, 0.06, 1.03, 2.5]);
  assert.deepEqual(d.conversations, {
    total: 40, completed: 1, failed: 39, inProgress: 0, cancelled: 0, totalDurationMinutes: 41, avgDurationMinutes: 1.03,
  });
  assert.deepEqual(d.leads, { total: 40, qualified: 0, hot: 0, warm: 0, cold: 40, avgScore: 1.03 });
  assert.deepEqual(d.recentActivity.map((x) => x.callId), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => uid('c', i)));
  assert.equal(d.recentActivity[0].leadScore, 41);
  assert.equal(d.recentActivity[0].durationMinutes, 1);
  assert.deepEqual(d.agents, { total: 2, active: 2, draft: 0, paused: 0 });
});

test('overview: month boundary to the microsecond', async (t) => {
  if (check_skip(t)) return;
  const d = (await get('/api/dashboard/overview', F)).json.data;
  // The 1st 00:00 is always within W30; 1 µs before it is too, unless today is the 31st.
  const day_of_month = new Date(today_ms).getUTCDate();
  assert.deepEqual(d.credits, { current: 7, usedThisMonth: 1000, usedLast30Days: day_of_month === 31 ? 1000 : 3000 });
});

test('overview and analytics of a user without agents: zeros', async (t) => {
  if (check_skip(t)) return;
  const o = (await get('/api/dashboard/overview', D)).json.data;
  assert.deepEqual(o.kpis.map((k) => k.value), [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(o.credits, { current: 42, usedThisMonth: 0, usedLast30Days: 0 });
  assert.deepEqual(o.agents, { total: 0, active: 0, draft: 0, paused: 0 });
  assert.deepEqual(o.conversations, {
    total: 0, completed: 0, failed: 0, inProgress: 0, cancelled: 0, totalDurationMinutes: 0, avgDurationMinutes: 0,
  });
  assert.deepEqual(o.leads, { total: 0, qualified: 0, hot: 0, warm: 0, cold: 0, avgScore: 0 });
  assert.deepEqual(o.recentActivity, []);
  const a = (await get('/api/dashboard/analytics', D)).json.data;
  assert.deepEqual(a.leadsOverTime, [6, 5, 4, 3, 2, 1, 0].map((n) => ({ date: day(-n), calls: 0, leads: 0, qualified: 0 })));
  assert.deepEqual(a.leadQualityDistribution.map((b) => b.count), [0, 0, 0]);
  assert.deepEqual(a.callOutcomes, { completed: 0, failed: 0, inProgress: 0, cancelled: 0 });
  assert.deepEqual(a.agentPerformance, []);
  assert.deepEqual(a.hourlyDistribution, new Array(24).fill(0));
  const g = await get('/api/agents', D);
  assert.equal(g.status, 200);
  assert.equal(g.text, '{"success":true,"data":[]}');
});

test('analytics, figure by figure', async (t) => {
  if (check_skip(t)) return;
  const r = await get('/api/dashboard/analytics', A);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  const d = r.json.data;
  assert.deepEqual(d.leadsOverTime, [
    { date: day(-6), calls: 1, leads: 1, qualified: 0 },
    { date: day(-5), calls: 0, leads: 0, qualified: 0 },
    { date: day(-4), calls: 0, leads: 0, qualified: 0 },
    { date: day(-3), calls: 1, leads: 1, qualified: 1 },
    { date: day(-2), calls: 0, leads: 0, qualified: 0 },
    { date: day(-1), calls: 1, leads: 0, qualified: 0 },
    { date: day(0), calls: 2, leads: 2, qualified: 0 },
  ]);
  assert.deepEqual(d.leadQualityDistribution, [
    { label: 'hot', min: 80, max: 100, count: 1 },
    { label: 'warm', min: 50, max: 79, count: 4 },
    { label: 'cold', min: 0, max: 49, count: 2 },
  ]);
  assert.deepEqual(d.callOutcomes, { completed: 5, failed: 2, inProgress: 1, cancelled: 1 });
  // 2 calls: two agents named "beta", by id; 1 call: "Zed" before "Émile" (byte order).
  assert.deepEqual(d.agentPerformance, [
    { agentId: AG(1), name: 'beta', calls: 2, completed: 1, successRate: 50, avgLeadScore: 49.5 },
    { agentId: AG(3), name: 'beta', calls: 2, completed: 2, successRate: 100, avgLeadScore: 40 },
    { agentId: AG(2), name: 'Zed', calls: 1, completed: 0, successRate: 0, avgLeadScore: 69 },
    { agentId: AG(4), name: EMILE, calls: 1, completed: 1, successRate: 100, avgLeadScore: null },
  ]);
  const hourly = new Array(24).fill(0);
  hourly[0] = 1; hourly[2] = 2; hourly[3] = 1; hourly[5] = 1; hourly[23] = 1;
  assert.deepEqual(d.hourlyDistribution, hourly);
  assert.deepEqual(Object.keys(d), ['leadsOverTime', 'leadQualityDistribution', 'callOutcomes', 'agentPerformance', 'hourlyDistribution']);
});

test('analytics: ties and the limit of 10 agents', async (t) => {
  if (check_skip(t)) return;
  const c = (await get('/api/dashboard/analytics', C)).json.data;
  assert.deepEqual(c.agentPerformance, [
    { agentId: uid('c', 0xa02), name: 'c-forty', calls: 40, completed: 1, successRate: 2.5, avgLeadScore: 1.03 },
  ]);
  assert.deepEqual(c.leadsOverTime[4], { date: day(-2), calls: 40, leads: 40, qualified: 0 });
  assert.equal(c.hourlyDistribution[10], 40);
  assert.deepEqual(c.leadQualityDistribution.map((b) => b.count), [0, 0, 40]);
  const b = (await get('/api/dashboard/analytics', B)).json.data;
  assert.deepEqual(b.agentPerformance.map((x) => x.name), ['n00', 'n01', 'n02', 'n03', 'n04', 'n05', 'n06', 'n07', 'n08', 'n09']);
  assert.deepEqual(b.agentPerformance[0], { agentId: uid('b', 0xa00), name: 'n00', calls: 1, completed: 1, successRate: 100, avgLeadScore: null });
  assert.equal(b.leadsOverTime[6].calls, 11);
});

test('agents: performance over all dates, external configuration per agent', async (t) => {
  if (check_skip(t)) return;
  await h.request(mock.port, 'POST', '/__mock/reset');
  const r = await get('/api/agents', A);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  const el = (id) => {
    const c = agent_config(id);
    const a = c.conversation_config.agent;
    return {
      name: c.name, voiceId: c.conversation_config.tts.voice_id, language: a.language,
      firstMessage: a.first_message ?? null, llm: a.prompt.llm ?? null,
    };
  };
  const agent = (n, name, type, status, created, elid, perf, elevenLabs, configStatus) => ({
    id: AG(n), name, type, status, description: `about ${name}`, createdAt: iso(created), elevenLabsAgentId: elid,
    performance: perf, elevenLabs, configStatus,
  });
  const perf = (conversations, successRate, avgDuration, creditsUsed, last) => ({
    conversations, successRate, avgDuration, creditsUsed, lastCallAt: last === null ? null : iso(last),
  });
  assert.deepEqual(r.json.data, [
    agent(5, 'zulu', 'chat', 'active', -DAY_US, 'agent_beta2', perf(0, 0, '0m 0s', 0, null), el('agent_beta2'), 'ok'),
    agent(3, 'beta', 'chat', 'draft', -8 * DAY_US, 'agent_gone_x', perf(2, 100, '2m 10s', 9, DAY_US + 3 * HOUR_US), null, 'missing'),
    agent(4, EMILE, 'call', 'active', -8 * DAY_US, 'agent_partial_p', perf(2, 50, '1m 30s', 4, -1), el('agent_partial_p'), 'ok'),
    agent(2, 'Zed', 'call', 'paused', -9 * DAY_US, null, perf(2, 0, '1m 0s', 4, -6 * DAY_US), null, 'none'),
    agent(1, 'beta', 'call', 'active', -10 * DAY_US, 'agent_alpha1', perf(4, 75, '3m 41s', 115, 2 * HOUR_US), el('agent_alpha1'), 'ok'),
  ]);
  assert.equal(r.json.data[2].elevenLabs.firstMessage, null);
  assert.equal(r.json.data[2].elevenLabs.llm, null);
  assert.notEqual(r.json.data[0].elevenLabs.llm, null);
  // One external call per agent with an id, none for the NULL one.
  const s = await mock_stats();
  assert.equal(s.requests, 4);
  assert.deepEqual(s.byAgent, { agent_beta2: 1, agent_gone_x: 1, agent_partial_p: 1, agent_alpha1: 1 });
});

test('agents: avgDuration rounds the exact tie 123.5 s up; failures are "unavailable"', async (t) => {
  if (check_skip(t)) return;
  const c = (await get('/api/agents', C)).json.data;
  assert.deepEqual(c.map((a) => [a.name, a.performance]), [
    ['c-forty', { conversations: 40, successRate: 2.5, avgDuration: '1m 2s', creditsUsed: 0, lastCallAt: iso(-2 * DAY_US + 10 * HOUR_US) }],
    ['c-six', { conversations: 6, successRate: 16.67, avgDuration: '2m 4s', creditsUsed: 6, lastCallAt: iso(-60 * DAY_US) }],
  ]);
  for (const [cfg, expect_requests] of [[{ failFirst: 1 }, 4], [{ failFirst: 1, failFirstStatus: 429 }, 4],
    [{ down: true }, 4], [{ hangRate: 1 }, null]]) {
    await h.request(mock.port, 'POST', '/__mock/reset');
    await h.request(mock.port, 'POST', '/__mock/config', { body: { latencyMs: 0, jitterMs: 0, ...cfg } });
    if (cfg.hangRate) {
      // A hung external call: the legacy waits its 10 s timeout; check it is asked, then leave.
      const pending = get('/api/agents', A);
      const deadline = Date.now() + 5000;
      while ((await mock_stats()).inFlight < 1) {
        assert.ok(Date.now() < deadline, 'the legacy never called the hung mock');
        await new Promise((res) => setImmediate(res));
      }
      const [s] = [await mock_stats()];
      assert.equal(s.requests, 1, 'sequential: one external call at a time');
      await h.request(mock.port, 'POST', '/__mock/config', { body: { hangRate: 0 } });
      const r = await pending;  // the first agent's call times out after 10 s, the rest answer
      assert.equal(r.json.data[0].configStatus, 'unavailable');
      assert.deepEqual(r.json.data.map((a) => a.configStatus), ['unavailable', 'missing', 'ok', 'none', 'ok']);
      continue;
    }
    const r = (await get('/api/agents', A)).json.data;
    // The AG(3) "gone" agent answers 500/429 before it can say 404: unavailable too.
    assert.deepEqual(r.map((a) => a.configStatus), ['unavailable', 'unavailable', 'unavailable', 'none', 'unavailable'], JSON.stringify(cfg));
    assert.ok(r.every((a) => a.elevenLabs === null));
    assert.equal((await mock_stats()).requests, expect_requests, 'a single try per agent');
  }
  await h.request(mock.port, 'POST', '/__mock/reset');
});

test('401 for each kind of bad token, 403 unknown/inactive, 404, content type', async (t) => {
  if (check_skip(t)) return;
  const cases = [
    ['no header', {}],
    ['not Bearer', { Authorization: `Basic ${token(A)}` }],
    ['malformed', { Authorization: 'Bearer abc.def' }],
    ['garbage base64', { Authorization: 'Bearer !!!.???.***' }],
    ['forged', { Authorization: `Bearer ${token(A, { forged: true })}` }],
    ['alg none', { Authorization: `Bearer ${token(A, { alg_none: true })}` }],
    ['expired', { Authorization: `Bearer ${token(A, { expired: true })}` }],
    ['no sub', { Authorization: `Bearer ${token(A, { no_sub: true })}` }],
  ];
  for (const p of ['/api/dashboard/overview', '/api/dashboard/analytics', '/api/agents', '/api/billing/credits']) {
    for (const [what, headers] of cases) {
      const r = await h.request(legacy.port, 'GET', p, { headers });
      assert.equal(r.status, 401, `${p} ${what}`);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(r.json.success, false);
      assert.equal(r.json.error.code, 'UNAUTHORIZED', `${p} ${what}`);
      assert.equal(typeof r.json.error.message, 'string');
    }
    for (const user of [uid('0', 7), E, 'not-a-uuid']) {
      const r = await get(p, user);
      assert.equal(r.status, 403, `${p} ${user}`);
      assert.equal(r.json.error.code, 'FORBIDDEN');
    }
  }
  const nf = await get('/api/nope', A);
  assert.equal(nf.status, 404);
  assert.equal(nf.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(nf.json.error.code, 'NOT_FOUND');
  assert.equal((await h.request(legacy.port, 'PUT', '/api/agents')).json.error.code, 'NOT_FOUND');
});

test('pass-through routes: billing, agents CRUD, calls with credits, analysis 201/409, 400', async (t) => {
  if (check_skip(t)) return;
  const auth = (user = G) => ({ Authorization: `Bearer ${token(user)}` });
  const call = (m, p, body, user) => h.request(legacy.port, m, p, { headers: auth(user), body });

  let r = await call('GET', '/api/billing/credits');
  assert.equal(r.status, 200);
  assert.equal(r.text, '{"success":true,"data":{"credits":100}}');

  r = await call('POST', '/api/agents', { name: 'New "one"', type: 'chat', description: 'fresh' });
  assert.equal(r.status, 201);
  const made = r.json.data;
  assert.match(made.id, /^[0-9a-f-]{36}$/);
  assert.deepEqual({ ...made, createdAt: undefined, id: undefined }, {
    id: undefined, name: 'New "one"', type: 'chat', status: 'draft', description: 'fresh', createdAt: undefined,
    elevenLabsAgentId: null,
    performance: { conversations: 0, successRate: 0, avgDuration: '0m 0s', creditsUsed: 0, lastCallAt: null },
    elevenLabs: null, configStatus: 'none',
  });
  r = await call('GET', '/api/agents');
  assert.deepEqual(r.json.data.map((a) => a.name), ['New "one"', 'gus agent']);

  r = await call('PATCH', `/api/agents/${made.id}`, { status: 'active', name: 'Renamed' });
  assert.equal(r.status, 200);
  assert.equal(r.json.data.status, 'active');
  assert.equal(r.json.data.name, 'Renamed');
  assert.equal(r.json.data.description, 'fresh');
  r = await call('PATCH', `/api/agents/${uid('9', 0xa02)}`, { name: 'x' });  // G2's agent
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'NOT_FOUND');
  r = await call('PATCH', `/api/agents/${made.id}`, { status: 'bogus' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'BAD_REQUEST');

  r = await call('POST', '/api/calls', { agentId: uid('9', 0xa01), phoneNumber: '+1555', status: 'completed', durationMinutes: 2.5, creditsUsed: 30 });
  assert.equal(r.status, 201);
  const call_id = r.json.data.id;
  assert.deepEqual(Object.keys(r.json.data), ['id']);
  r = await call('GET', '/api/billing/credits');
  assert.equal(r.json.data.credits, 70);
  r = await call('POST', '/api/calls', { agentId: uid('9', 0xa02), phoneNumber: '+1', status: 'completed', durationMinutes: 1, creditsUsed: 5 });
  assert.equal(r.status, 404, 'a call on another user\'s agent');
  assert.equal((await call('GET', '/api/billing/credits')).json.data.credits, 70, 'nothing subtracted');
  const ov = (await get('/api/dashboard/overview', G)).json.data;
  assert.deepEqual(ov.conversations, { total: 1, completed: 1, failed: 0, inProgress: 0, cancelled: 0, totalDurationMinutes: 2.5, avgDurationMinutes: 2.5 });
  assert.deepEqual(ov.credits, { current: 70, usedThisMonth: 30, usedLast30Days: 30 });

  r = await call('POST', `/api/calls/${call_id}/analysis`, { totalScore: 85 });
  assert.equal(r.status, 201);
  r = await call('POST', `/api/calls/${call_id}/analysis`, { totalScore: 10 });
  assert.equal(r.status, 409);
  assert.equal(r.json.success, false);
  r = await call('POST', `/api/calls/${call_id}/analysis`, { totalScore: 10 }, G2);
  assert.equal(r.status, 404);
  assert.equal((await get('/api/dashboard/overview', G)).json.data.leads.hot, 1);

  for (const [p, body] of [['/api/agents', '{"name": '], ['/api/agents', { type: 'call' }], ['/api/agents', '[1]'],
    ['/api/calls', { agentId: uid('9', 0xa01), phoneNumber: '+1', status: 'completed', creditsUsed: 1 }],
    [`/api/calls/${call_id}/analysis`, {}], [`/api/calls/${call_id}/analysis`, { totalScore: 101 }]]) {
    r = await call('POST', p, body);
    assert.equal(r.status, 400, `${p} ${JSON.stringify(body)}`);
    assert.equal(r.json.error.code, 'BAD_REQUEST');
  }

  r = await call('DELETE', `/api/agents/${made.id}`);
  assert.equal(r.status, 204);
  assert.equal(r.text, '');
  r = await call('DELETE', `/api/agents/${made.id}`);
  assert.equal(r.status, 404);
  r = await call('DELETE', `/api/agents/${uid('9', 0xa02)}`);
  assert.equal(r.status, 404);
  assert.deepEqual((await call('GET', '/api/agents')).json.data.map((a) => a.name), ['gus agent']);
});
