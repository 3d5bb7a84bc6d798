#!/usr/bin/env node
// Deterministic data generator for the legacy tables.
//
//   node test/data/generate.js --database-url URL --preset tiny|small|large [--seed 42]
//                              [--heavy-calls N]
//
// --heavy-calls N adds one more user, heavy@example.com ("Heavy User", 12 agents), with N
// calls over the preset's days: the heaviest customer, whose fills must stay fast (issue 16).
// The other users' rows are the same with or without it.
//
// Drops and creates the legacy schema (test/fixtures/legacy_schema.sql), then loads
// users, agents, calls and lead_analytics through COPY (rows piped to `psql -c "COPY ..."`).
// The same seed gives the same rows, with every timestamp relative to now (so the
// dashboard windows are populated). To load fast, the schema's constraints are dropped
// during the load and added back after (the final schema is exactly the fixture's),
// then ANALYZE.
//
// Shape: skewed activity per user (a few users make most calls), agents per user skewed
// (some 1, some 50, a few none), statuses and lead scores skewed per user, ~60% of calls
// with a lead analysis, a few future-dated calls, some inactive users, agents with NULL /
// agent_gone_* / agent_partial_* ElevenLabs ids, names with quotes, backslashes, control
// characters and non-ASCII.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { parse_args, make_prng } = require('../lib/cli');

const PRESETS = {
  tiny: { users: 6, calls: 300, days: 90 },
  small: { users: 100, calls: 50_000, days: 90 },
  large: { users: 2_000, calls: 5_000_000, days: 90 },
};

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function make_uuid(rand) {
  const w = () => (rand() * 4294967296) >>> 0;
  const a = w(), b = w(), c = w(), d = w();
  const bytes = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255,
    b >>> 24, (b >>> 16) & 255, ((b >>> 8) & 15) | 0x40, b & 255,
    ((c >>> 24) & 0x3f) | 0x80, (c >>> 16) & 255, (c >>> 8) & 255, c & 255,
    d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255];
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += HEX[bytes[i]];
  }
  return s;
}

// COPY text format escaping.
function esc(s) {
  return s.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

// Timestamp with microseconds, from microseconds since the epoch.
function ts(us) {
  const ms = Math.floor(us / 1000);
  const micro = us - ms * 1000;
  return `${new Date(ms).toISOString().slice(0, 23)}${String(micro).padStart(3, '0')}Z`;
}

const FIRST = ['Ana', 'Bo', 'Chloé', 'Dmitri', 'Eun-ji', 'François', 'Grace', 'Hiroshi', 'Ingrid', 'José',
  'Kwame', 'Łukasz', 'Mía', 'Nguyễn', 'Olu', 'Priya', 'Quinn', 'Renée', 'Søren', 'Tomás', 'Zoë', '李', 'Анна'];
const LAST = ['Smith', 'O\'Brien', 'Müller', 'García', 'Nakamura', 'Kowalski', 'Øster', 'Dubois', 'Rossi', 'Ivanov'];
const AGENT_NAMES = ['Sales follow-up', 'Appointment setter', 'Support "tier 1"', 'Renewals \\ upsell',
  'Lead qualifier', 'Survey caller', 'Onboarding', 'Collections', 'Demo booker', 'Re-engagement',
  'Front desk', 'Événements', 'Ventas España', '日本語サポート', 'Night shift\tQ', 'Bell\u0007 agent',
  'Line\nbreak', 'Emoji 🚀 outreach', 'Zed', 'alpha', 'Alpha', 'Ünïcödé'];
const DESCRIPTIONS = ['', 'Calls inbound leads back within 5 minutes.', 'Books demos; says "hi" first.',
  'Path C:\\agents\\main', 'Multi\nline description', 'Non-ASCII: ça marche, 你好'];

async function psql(url, sql, { stdin_writer } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql],
      { stdio: [stdin_writer ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql failed (${code}): ${err}`))));
    if (stdin_writer) {
      p.stdin.on('error', () => {});  // psql died: its exit code says why
      stdin_writer(p.stdin).catch(reject);
    }
  });
}

async function psql_file(url, file) {
  return new Promise((resolve, reject) => {
    const p = spawn('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql -f ${file} failed: ${err}`))));
  });
}

async function psql_query(url, sql) {
  return new Promise((resolve, reject) => {
    const p = spawn('psql', [url, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`psql failed: ${err}`))));
  });
}

// A COPY stream: write(line) buffers, flushing in large chunks with backpressure.
function copy_stream(url, table, columns) {
  let resolve_writer;
  const ready = new Promise((r) => { resolve_writer = r; });
  const done = psql(url, `COPY ${table} (${columns}) FROM STDIN`, {
    stdin_writer: async (stdin) => { resolve_writer(stdin); },
  });
  let buf = [];
  let size = 0;
  let stdin;
  return {
    async write(line) {
      buf.push(line);
      size += line.length;
      if (size > 1 << 20) await this.flush();
    },
    async flush() {
      if (!stdin) stdin = await ready;
      const chunk = buf.join('');
      buf = [];
      size = 0;
      if (!stdin.write(chunk)) await Promise.race([new Promise((r) => stdin.once('drain', r)), done]);
    },
    async end() {
      await this.flush();
      stdin.end();
      await done;
    },
  };
}

async function main() {
  const args = parse_args(process.argv.slice(2));
  const url = args['database-url'] || process.env.DATABASE_URL;
  const preset = PRESETS[args.preset || 'small'];
  const seed = Number(args.seed ?? 42);
  if (!url) throw new Error('--database-url (or DATABASE_URL) is required');
  if (!preset) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const heavy_calls = Number(args['heavy-calls'] ?? 0);
  if (!Number.isInteger(heavy_calls) || heavy_calls < 0) throw new Error('--heavy-calls must be a count');
  const t0 = Date.now();
  const log = (m) => process.stderr.write(`generate: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${m}\n`);
  const rand = make_prng(seed);

  // Schema: drop + create, then put the constraints aside during the load.
  await psql(url, 'DROP TABLE IF EXISTS lead_analytics, calls, agents, users CASCADE');
  await psql_file(url, path.join(__dirname, '..', 'fixtures', 'legacy_schema.sql'));
  const cons = (await psql_query(url, `
    SELECT c.conrelid::regclass::text || E'\\t' || c.conname || E'\\t' || c.contype::text || E'\\t' || pg_get_constraintdef(c.oid)
      FROM pg_constraint c
     WHERE c.conrelid IN ('users'::regclass, 'agents'::regclass, 'calls'::regclass, 'lead_analytics'::regclass)
       AND c.contype IN ('p', 'u', 'f')
     ORDER BY CASE c.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 ELSE 2 END, c.conname`))
    .split('\n').filter(Boolean).map((l) => l.split('\t'));
  await psql(url, cons.slice().reverse().map(([t, n]) => `ALTER TABLE ${t} DROP CONSTRAINT ${n};`).join('\n'));
  log(`schema created, ${cons.length} constraints set aside for the load`);

  const now_us = Date.now() * 1000;
  const DAY = 86_400_000_000;

  // Users, with an activity weight (heavy-tailed) and per-user traits.
  const users = [];
  const us = copy_stream(url, 'users', 'id, email, name, credits, is_active, created_at');
  for (let i = 0; i < preset.users; i++) {
    const id = make_uuid(rand);
    const name = `${FIRST[Math.floor(rand() * FIRST.length)]} ${LAST[Math.floor(rand() * LAST.length)]}`
      + (i % 97 === 5 ? ' "the boss" \\ \u0001' : '');
    const active = i === 0 ? true : rand() >= 0.03;
    const weight = Math.pow(1 - rand(), -1 / 1.3);  // Pareto(1.3): a few users make most calls
    const r = rand();
    const n_agents = i === 1 ? 0 : r < 0.01 ? 0 : r < 0.12 ? 1 : r < 0.17 ? 50 : 2 + Math.floor(rand() * 15);
    users.push({
      id, weight, n_agents, success: 0.45 + rand() * 0.45, score_mean: 25 + rand() * 55,
      lead_share: 0.35 + rand() * 0.5,
    });
    await us.write(`${id}\tuser${i}@example.com\t${esc(name)}\t${Math.floor(rand() * 100_000)}\t${active ? 't' : 'f'}\t`
      + `${ts(now_us - Math.floor((100 + rand() * 600) * DAY))}\n`);
  }
  if (heavy_calls > 0) {  // last, so that every other user's rows stay the same
    const id = make_uuid(rand);
    users.push({ id, heavy: heavy_calls, weight: 0, n_agents: 12, success: 0.7, score_mean: 55, lead_share: 0.6 });
    await us.write(`${id}\theavy@example.com\tHeavy User\t123456\tt\t${ts(now_us - 400 * DAY)}\n`);
  }
  await us.end();
  log(`${users.length} users${heavy_calls > 0 ? ` (the last one heavy: ${heavy_calls} calls)` : ''}`);

  // Agents.
  const as = copy_stream(url, 'agents',
    'id, user_id, elevenlabs_agent_id, name, agent_type, status, description, created_at, updated_at');
  let n_agents = 0;
  for (const u of users) {
    u.agents = [];
    u.agent_weights = [];
    for (let k = 0; k < u.n_agents; k++) {
      const id = make_uuid(rand);
      const r = rand();
      const hex = id.replace(/-/g, '').slice(0, 20);
      const el = r < 0.1 ? null : r < 0.13 ? `agent_gone_${hex}` : r < 0.18 ? `agent_partial_${hex}` : `agent_${hex}`;
      const name = `${AGENT_NAMES[Math.floor(rand() * AGENT_NAMES.length)]}${rand() < 0.7 ? ` #${k + 1}` : ''}`;
      const s = rand();
      const status = s < 0.6 ? 'active' : s < 0.85 ? 'draft' : 'paused';
      const created = now_us - Math.floor((92 + rand() * 300) * DAY);
      u.agents.push(id);
      u.agent_weights.push(status === 'draft' ? 0.05 : Math.pow(1 - rand(), -1 / 1.5));
      n_agents++;
      await as.write(`${id}\t${u.id}\t${el === null ? '\\N' : el}\t${esc(name)}\t${rand() < 0.8 ? 'call' : 'chat'}\t`
        + `${status}\t${esc(DESCRIPTIONS[Math.floor(rand() * DESCRIPTIONS.length)])}\t${ts(created)}\t${ts(created + DAY)}\n`);
    }
    // Cumulative weights, for picking an agent per call.
    let acc = 0;
    u.agent_cum = u.agent_weights.map((w) => (acc += w));
  }
  await as.end();
  log(`${n_agents} agents`);

  // Calls per user: proportional to the weight (users without agents make none).
  const with_agents = users.filter((u) => u.agents.length > 0);
  const total_w = with_agents.reduce((s, u) => s + u.weight, 0);
  const cs = copy_stream(url, 'calls', 'id, user_id, agent_id, phone_number, status, duration_minutes, credits_used, created_at');
  const ls = copy_stream(url, 'lead_analytics', 'id, call_id, total_score, created_at');
  let n_calls = 0, n_leads = 0, n_future = 0;
  for (const u of with_agents) {
    const n = u.heavy ?? Math.max(1, Math.round(preset.calls * u.weight / total_w));
    const cum = u.agent_cum, last = cum[cum.length - 1];
    for (let i = 0; i < n; i++) {
      const id = make_uuid(rand);
      const x = rand() * last;
      let lo = 0, hi = cum.length - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (cum[mid] < x) lo = mid + 1; else hi = mid; }
      const agent = u.agents[lo];
      // More recent days are busier; one call in 20,000 is dated up to 2 days ahead.
      let at;
      if (rand() < 0.00005) { at = now_us + Math.floor(rand() * 2 * DAY); n_future++; }
      else at = now_us - Math.floor(Math.pow(rand(), 1.3) * preset.days * DAY);
      const s = rand();
      const status = s < u.success ? 'completed' : s < u.success + 0.05 ? 'in_progress'
        : s < u.success + 0.05 + (1 - u.success - 0.05) * 0.55 ? 'failed' : 'cancelled';
      const dur_cents = status === 'completed' ? Math.floor(-Math.log(1 - rand()) * 400) + 10
        : status === 'in_progress' ? Math.floor(rand() * 300) : Math.floor(rand() * 60);
      const credits = Math.ceil(dur_cents / 100) * (1 + Math.floor(rand() * 2));
      const phone = `+1555${String(Math.floor(rand() * 1e7)).padStart(7, '0')}`;
      await cs.write(`${id}\t${u.id}\t${agent}\t${phone}\t${status}\t${Math.floor(dur_cents / 100)}.${String(dur_cents % 100).padStart(2, '0')}`
        + `\t${credits}\t${ts(at)}\n`);
      n_calls++;
      if (rand() < u.lead_share * (status === 'completed' ? 1.25 : 0.6)) {
        const score = Math.max(0, Math.min(100, Math.round(u.score_mean + (rand() + rand() + rand() - 1.5) * 40)));
        await ls.write(`${make_uuid(rand)}\t${id}\t${score}\t${ts(at + Math.floor(rand() * 600_000_000))}\n`);
        n_leads++;
      }
    }
  }
  await cs.end();
  await ls.end();
  log(`${n_calls} calls (${n_future} future-dated), ${n_leads} leads`);

  // Constraints back, exactly as the fixture made them (primary keys and UNIQUE first).
  await psql(url, `SET maintenance_work_mem = '512MB';\n${cons.map(([t, n, , def]) => `ALTER TABLE ${t} ADD CONSTRAINT ${n} ${def};`).join('\n')}`);
  log('constraints restored');
  await psql(url, 'ANALYZE');
  log('analyzed; done');
  process.stdout.write(JSON.stringify({ preset: args.preset || 'small', seed, users: users.length, agents: n_agents,
    calls: n_calls, leads: n_leads, future: n_future, seconds: (Date.now() - t0) / 1000 }) + '\n');
}

if (require.main === module) main().catch((e) => { console.error(`generate: ${e.message}`); process.exit(1); });
