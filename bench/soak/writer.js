#!/usr/bin/env node
// The writer of bench/soak/run: --rate writes a second for --duration s,
// alternately through sidecache's pass-through (PATCH /api/agents/{id}, so a
// write invalidation) and by SQL from outside (UPDATE agents: the triggers'
// NOTIFY invalidates), each renaming one agent of a random user of --tokens.
// PostgreSQL may restart meanwhile: a failed write is counted, never fatal.
//
//   node bench/soak/writer.js --database-url URL --tokens FILE --port PORT [--rate 20] [--duration 1800]
//
// Prints one JSON line at the end: {"patch": {"ok", "failed"}, "sql": {"ok", "failed"}, "by_status": {...}}.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { parse_args } = require(path.join(__dirname, '../../test/lib/cli'));
const { Pool } = require(require.resolve('pg', { paths: [path.join(__dirname, '../../test')] }));

const args = parse_args(process.argv.slice(2));
const rate = Number(args.rate ?? 20);
const duration_ms = 1000 * Number(args.duration ?? 1800);
const port = Number(args.port);
const users = fs.readFileSync(args.tokens, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [id, token] = l.split('\t');
  return { id, token };
});
const pool = new Pool({ connectionString: args['database-url'], max: 2 });
pool.on('error', () => {});  // an idle client lost to a restart: the pool replaces it
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const result = { patch: { ok: 0, failed: 0 }, sql: { ok: 0, failed: 0 }, by_status: {} };

function patch(id, token, name) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ name });
    const req = http.request({ host: '127.0.0.1', port, method: 'PATCH', path: `/api/agents/${id}`, agent,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body) }, timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function main() {
  // Each user's agents, once (they are renamed, never added or removed).
  const rows = (await pool.query('SELECT id, user_id FROM agents')).rows;
  const agents_of = new Map();
  for (const r of rows) {
    if (!agents_of.has(r.user_id)) agents_of.set(r.user_id, []);
    agents_of.get(r.user_id).push(r.id);
  }
  const writable = users.filter((u) => agents_of.has(u.id));
  const end = Date.now() + duration_ms;
  let n = 0;
  const inflight = new Set();
  while (Date.now() < end) {
    const u = writable[Math.floor(Math.random() * writable.length)];
    const ids = agents_of.get(u.id);
    const id = ids[Math.floor(Math.random() * ids.length)];
    const name = `soak ${n}`;
    const p = (n++ % 2 === 0)
      ? patch(id, u.token, name).then((s) => {
        result.by_status[s] = (result.by_status[s] || 0) + 1;
        result.patch[s === 200 ? 'ok' : 'failed']++;
      })
      : pool.query('UPDATE agents SET name = $1, updated_at = now() WHERE id = $2', [name, id])
        .then(() => { result.sql.ok++; }, () => { result.sql.failed++; });
    inflight.add(p);
    p.finally(() => inflight.delete(p));
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await Promise.all(inflight);
  await pool.end();
  agent.destroy();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => { console.error(`writer: ${e.message}`); process.exit(1); });
