#!/usr/bin/env node
// A load balancer's view of a fleet (bench/l2/run): each request goes to one
// of the replicas at random, for a user and one of their three dashboards at
// random, over keep-alive connections, for --seconds.
//
//   node bench/l2/spread.js --ports P1,P2,P3 --tokens FILE --seconds S [--connections C]
//
// FILE: "user<TAB>token" lines. Prints one JSON line: answers, non-200s,
// hits (X-Cache HIT), of which from the second level (Cache-Status
// detail=l2), p50/p99/max latency in ms.
'use strict';
const http = require('node:http');
const fs = require('node:fs');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const ports = String(args.ports).split(',').map(Number);
const until = Date.now() + Number(args.seconds) * 1000;
const connections = Number(args.connections || 16);
const tokens = fs.readFileSync(args.tokens, 'utf8').trim().split('\n').map((l) => l.split('\t')[1]);
const endpoints = ['/api/dashboard/overview', '/api/dashboard/analytics', '/api/agents'];
const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: connections }));
const seen = { answers: 0, non200: 0, hits: 0, l2: 0, latencies: [] };

function get(k, path, token) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: ports[k], path, agent: agents[k],
                           headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, headers: {} }));
  });
}

async function connection() {
  while (Date.now() < until) {
    const k = Math.floor(Math.random() * ports.length);
    const token = tokens[Math.floor(Math.random() * tokens.length)];
    const path = endpoints[Math.floor(Math.random() * endpoints.length)];
    const sent = process.hrtime.bigint();
    const r = await get(k, path, token);
    seen.latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
    seen.answers += 1;
    if (r.status !== 200) seen.non200 += 1;
    if ((r.headers['x-cache'] || '') === 'HIT') {
      seen.hits += 1;
      if ((r.headers['cache-status'] || '').includes('detail=l2')) seen.l2 += 1;
    }
  }
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

(async () => {
  const work = [];
  for (let c = 0; c < connections; c++) work.push(connection());
  await Promise.all(work);
  const lat = seen.latencies.sort((a, b) => a - b);
  const round = (x) => Math.round(x * 100) / 100;
  process.stdout.write(JSON.stringify({
    answers: seen.answers, non200: seen.non200, hits: seen.hits, l2_hits: seen.l2,
    hit_ratio: seen.answers ? seen.hits / seen.answers : 0,
    p50_ms: round(pct(lat, 50)), p99_ms: round(pct(lat, 99)), max_ms: round(lat.length ? lat[lat.length - 1] : 0),
  }) + '\n');
  for (const a of agents) a.destroy();
})();
