#!/usr/bin/env node
// Users reading their three dashboards in a steady loop across a UTC midnight
// of a shifted clock (bench/midnight/run), against one sidecache:
//
//   node bench/midnight/reader.js --port P --tokens FILE --offset-ms O --midnight-ms M
//        --until-ms U --window-s W [--connections C] [--admin-port A]
//
// FILE: "user<TAB>token" lines. O: shifted minus real time. M: the midnight
// (epoch ms, shifted). It reads until shifted time U, each connection
// reading one user's dashboard at random each time, and prints one JSON line: before
// midnight (hit ratio), and the first W seconds after it: answers, hits,
// p50/p99 latency, answers from yesterday (X-Cache STALE, an overview
// calculatedAt before midnight, or an Age larger than the time since
// midnight when the answer arrived), and, sampled each second from the admin
// /stats, the fills that reached PostgreSQL (fills.postgres) per second.
'use strict';
const http = require('node:http');
const fs = require('node:fs');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const port = Number(args.port);
const offset = Number(args['offset-ms']);
const midnight = Number(args['midnight-ms']);
const until = Number(args['until-ms']);
const windowMs = Number(args['window-s']) * 1000;
const connections = Number(args.connections || 16);
const adminPort = Number(args['admin-port'] || 0);
const tokens = fs.readFileSync(args.tokens, 'utf8').trim().split('\n').map((l) => l.split('\t'));
const endpoints = ['/api/dashboard/overview', '/api/dashboard/analytics', '/api/agents'];
const now = () => Date.now() + offset;  // the shifted clock
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });

const before = { answers: 0, hits: 0, errors: 0 };
const after = { answers: 0, hits: 0, misses: 0, stale: 0, yesterday: 0, errors: 0, latencies: [] };
const midnightIso = new Date(midnight).toISOString();

function get(path, token) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0) }));
  });
}

function fromYesterday(r, arrived) {
  if ((r.headers['x-cache'] || '').startsWith('STALE')) return true;
  // Age is whole seconds: above the time since midnight, computed before it.
  const age = Number(r.headers.age || 0);
  if (age * 1000 > arrived - midnight) return true;
  if (r.status === 200 && r.body.includes('"calculatedAt"')) {
    const at = JSON.parse(r.body).data.cacheInfo.calculatedAt;
    if (at < midnightIso) return true;
  }
  return false;
}

// Each request: a user and one of their dashboards at random (uniform), so
// every user reads all three in a steady loop, in no common order (a loop in
// one order would walk in step with the refill, or against it).
async function connection() {
  while (now() < until) {
    const i = Math.floor(Math.random() * tokens.length * endpoints.length);
    const [, token] = tokens[Math.floor(i / endpoints.length)];
    const path = endpoints[i % endpoints.length];
    const sent = now();
    const r = await get(path, token);
    const arrived = now();
    const xcache = r.headers['x-cache'] || '';
    if (sent < midnight && arrived < midnight) {
      before.answers += 1;
      if (r.status !== 200) before.errors += 1;
      if (xcache === 'HIT') before.hits += 1;
    } else if (sent >= midnight && sent < midnight + windowMs) {
      after.answers += 1;
      if (r.status !== 200) after.errors += 1;
      if (xcache === 'HIT') after.hits += 1;
      if (xcache.startsWith('MISS') || xcache.startsWith('COLLAPSED')) after.misses += 1;
      if (xcache.startsWith('STALE')) after.stale += 1;
      if (fromYesterday(r, arrived)) after.yesterday += 1;
      after.latencies.push(arrived - sent);
    }
  }
}

async function stats() {
  const r = await new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port: adminPort, path: '/stats' }, (res) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => { try { resolve(JSON.parse(b)); } catch { resolve(null); } });
    }).on('error', () => resolve(null));
  });
  return r;
}

// fills.postgres each second from midnight - 5 s to the window's end.
async function sampleFills(samples) {
  while (now() < Math.min(until, midnight + windowMs)) {
    const t = now();
    if (t >= midnight - 5000) {
      const s = await stats();
      if (s) samples.push({ t: (t - midnight) / 1000, postgres: s.fills.postgres, refill: s.midnight_refill });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

(async () => {
  const samples = [];
  const work = [];
  for (let k = 0; k < connections; k++) work.push(connection());
  if (adminPort) work.push(sampleFills(samples));
  await Promise.all(work);
  const lat = after.latencies.sort((a, b) => a - b);
  let peak = 0;
  for (let i = 1; i < samples.length; i++) {
    const rate = (samples[i].postgres - samples[i - 1].postgres) / (samples[i].t - samples[i - 1].t);
    if (samples[i].t > 0) peak = Math.max(peak, rate);
  }
  const inWindow = samples.filter((s) => s.t >= 0);
  const first = samples.filter((s) => s.t < 0).pop() || inWindow[0];
  const last = inWindow[inWindow.length - 1];
  const fills = first && last ? last.postgres - first.postgres : null;
  const final = await stats();
  process.stdout.write(JSON.stringify({
    before_answers: before.answers,
    before_hit_ratio: before.answers ? before.hits / before.answers : 0,
    before_errors: before.errors,
    after_answers: after.answers,
    after_hit_ratio: after.answers ? after.hits / after.answers : 0,
    after_misses: after.misses,
    after_stale: after.stale,
    after_yesterday: after.yesterday,
    after_errors: after.errors,
    p50_ms: pct(lat, 50),
    p99_ms: pct(lat, 99),
    max_ms: lat.length ? lat[lat.length - 1] : 0,
    postgres_fills_in_window: fills,
    postgres_fills_peak_per_s: peak,
    midnight_refill: final ? final.midnight_refill : null,
  }) + '\n');
})();
