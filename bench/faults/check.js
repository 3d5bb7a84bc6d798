#!/usr/bin/env node
// The checking client of bench/faults/run, beside its wrk load: it sends
// hits, misses and pass-through requests through sidecache and checks every
// answer's body against the one expected for its user.
//
//   node bench/faults/check.js --sidecache PORT --admin PORT --legacy PORT
//        --cached FILE --fresh FILE [--workers 6] [--out FILE]
//
// FILE: lines "user_id<TAB>token" (test/data/mint.js --all). At the start it
// learns, for each user and route, the expected answer twice: from sidecache
// (cached users' answers are thereby cached) and straight from the legacy (a
// fill may fall back to it); bodies are compared without what legitimately
// varies (cacheInfo, calculatedAt, an agent's elevenLabs/configStatus, which
// a degraded answer fills in differently). Then, until SIGINT/SIGTERM, each
// worker loops over three kinds of request:
//   hit   a cached user's dashboard route
//   miss  a fresh user's route, purged first (POST /purge {"user"}, and each of
//         their agents for /api/agents), so a fill
//   pass  GET /api/billing/credits (passed through; its credits are checked)
// Prints "ready" on stdout once the expected answers are learnt, then writes
// one line per request to --out: "t_ms kind status latency_ms verdict
// degraded", the verdict ok, wrong (not this user's answer), cross (another
// user's answer) or an error code (ECONNREFUSED, ECONNRESET, ...) with status
// 0; degraded 1 for an /api/agents answer with an agent's configuration
// stale or unavailable.
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const { parse_args } = require('../../test/lib/cli');

const args = parse_args(process.argv.slice(2));
const side = Number(args.sidecache), admin = Number(args.admin), legacy = Number(args.legacy);
const workers = Number(args.workers ?? 6);
const out = fs.openSync(args.out || '/dev/stdout', 'w');
const ROUTES = ['/api/dashboard/overview', '/api/dashboard/analytics', '/api/agents'];
const CREDITS = '/api/billing/credits';

const read_tokens = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [user, token] = l.split('\t');
  return { user, token };
});
const cached = read_tokens(args.cached);
const fresh = read_tokens(args.fresh);

const agent = new http.Agent({ keepAlive: true, maxSockets: workers * 2 });

function request(port, method, path, headers = {}, body = null) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent, timeout: 30000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'),
        ms: Number(process.hrtime.bigint() - started) / 1e6 }));
      res.on('error', (e) => resolve({ status: 0, error: e.code || 'EBODY', ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ status: 0, error: e.code || 'ERROR', ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    if (body) req.end(body); else req.end();
  });
}

// The body without what varies between two correct answers, keys sorted.
const VOLATILE = new Set(['cacheInfo', 'calculatedAt', 'elevenLabs', 'configStatus']);
function canonical(text) {
  let v;
  try { v = JSON.parse(text); } catch { return null; }
  const walk = (x) => {
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') {
      const o = {};
      for (const k of Object.keys(x).sort()) if (!VOLATILE.has(k)) o[k] = walk(x[k]);
      return o;
    }
    return x;
  };
  return JSON.stringify(walk(v));
}

const expected = new Map();  // `${user} ${path}` -> Set of canonical bodies
const owners = new Map();    // `${path} ${canonical}` -> Set of users whose answer it is
function learn(user, path, body) {
  const c = canonical(body);
  if (c === null) return false;
  const k = `${user} ${path}`;
  if (!expected.has(k)) expected.set(k, new Set());
  expected.get(k).add(c);
  const o = `${path} ${c}`;
  if (!owners.has(o)) owners.set(o, new Set());
  owners.get(o).add(user);
  return true;
}

function verdict(user, path, r) {
  if (r.status === 0) return r.error;
  if (r.status !== 200) return 'ok';  // an error is counted by its status, not as a wrong answer
  const c = canonical(r.body);
  const mine = expected.get(`${user} ${path}`);
  if (c !== null && mine && mine.has(c)) return 'ok';
  const theirs = c === null ? null : owners.get(`${path} ${c}`);
  return theirs && !theirs.has(user) ? 'cross' : 'wrong';
}

const agents_of = new Map();  // user -> the ids of their agents
const auth = (t) => ({ Authorization: `Bearer ${t.token}` });

async function learn_all() {
  const jobs = [];
  for (const t of [...cached, ...fresh]) {
    for (const path of [...ROUTES, CREDITS]) {
      jobs.push(async () => {
        const l = await request(legacy, 'GET', path, auth(t));
        if (l.status !== 200 || !learn(t.user, path, l.body)) throw new Error(`legacy ${path} for ${t.user}: ${l.status}`);
        if (path === CREDITS) return;
        const s = await request(side, 'GET', path, auth(t));
        if (s.status !== 200 || !learn(t.user, path, s.body)) throw new Error(`sidecache ${path} for ${t.user}: ${s.status}`);
        if (path === '/api/agents') agents_of.set(t.user, JSON.parse(s.body).data.map((a) => a.id));
      });
    }
  }
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

let stopping = false;
const lines = [];
// 1 when an /api/agents answer has an agent the external API could not give
// (configStatus stale or unavailable): a degraded answer, not a wrong one.
function degraded(path, r) {
  if (path !== '/api/agents' || r.status !== 200) return 0;
  try {
    return JSON.parse(r.body).data.some((a) => a.configStatus === 'stale' || a.configStatus === 'unavailable') ? 1 : 0;
  } catch {
    return 0;
  }
}

function record(kind, r, v, path) {
  lines.push(`${Date.now()} ${kind} ${r.status} ${r.ms.toFixed(2)} ${v} ${degraded(path, r)}\n`);
  if (lines.length >= 256) fs.writeSync(out, lines.splice(0).join(''));
}

async function worker(w) {
  for (let i = w; !stopping; i += workers) {
    const kind = ['hit', 'hit', 'miss', 'pass'][i % 4];
    if (kind === 'pass') {
      const t = cached[i % cached.length];
      const r = await request(side, 'GET', CREDITS, auth(t));
      record(kind, r, verdict(t.user, CREDITS, r), CREDITS);
    } else if (kind === 'hit') {
      const t = cached[Math.floor(i / 4) % cached.length];
      const path = ROUTES[i % 3];
      const r = await request(side, 'GET', path, auth(t));
      record(kind, r, verdict(t.user, path, r), path);
    } else {
      const t = fresh[Math.floor(i / 4) % fresh.length];
      const path = ROUTES[Math.floor(i / 4) % 3];
      // The user's answers, and for /api/agents their agents' configurations too
      // (else the external API would not be asked: they stay known for config_ttl).
      const purge = (what) => request(admin, 'POST', '/purge', { 'Content-Type': 'application/json' }, JSON.stringify(what));
      await purge({ user: t.user });
      if (path === '/api/agents') for (const id of agents_of.get(t.user) || []) await purge({ agent: id });
      const r = await request(side, 'GET', path, auth(t));
      record(kind, r, verdict(t.user, path, r), path);
    }
  }
}

async function main() {
  await learn_all();
  process.stdout.write('ready\n');
  const stop = () => { stopping = true; };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  fs.writeSync(out, lines.join(''));
  agent.destroy();
}

main().catch((e) => { console.error(`check: ${e.message}`); process.exit(1); });
