#!/usr/bin/env node
// Writer and prober of bench/freshness/run: steady writes to a set of users,
// and, after each, the time until every reader shows it.
//
//   node bench/freshness/writes.js --database-url URL --tokens FILE --read PORT[,PORT...]
//        --patch PORT [--rate 100] [--duration 60] [--give-up-ms 5000]
//
// Each write renames one agent of a random user of --tokens (lines
// "user_id<TAB>token"), alternately from outside by SQL (UPDATE agents; the
// clock starts when COMMIT returns) and through a proxy's pass-through route
// (PATCH /api/agents/{id} on 127.0.0.1:--patch; the legacy has committed when
// its 200 comes back). Then each --read port is polled with GET /api/agents
// for that user, back to back, until an answer carries the new name: the
// visibility time of that (write, reader) pair. A user is written again only
// after every reader showed its last write, so each poll has one right answer.
// Prints one JSON line: writes, the visibility times' p50/p99/max in ms over
// all pairs, how many pairs never showed the write within --give-up-ms, and
// the answers polled.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { parse_args } = require(path.join(__dirname, '../../test/lib/cli'));
const { Client } = require(require.resolve('pg', { paths: [path.join(__dirname, '../../test')] }));

const args = parse_args(process.argv.slice(2));
const rate = Number(args.rate ?? 100);
const duration_ms = 1000 * Number(args.duration ?? 60);
const give_up_ms = Number(args['give-up-ms'] ?? 5000);
const read_ports = String(args.read).split(',').map(Number);
const patch_port = Number(args.patch);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(port, method, url, token, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = { Authorization: `Bearer ${token}` };
    if (data !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(data);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// Polls one reader until the user's agents show `name`: ms since `since`, or null.
// With FRESHNESS_SLOW set, a pair that gives up is logged with its polls and last answer.
async function visible(port, token, agent_id, name, since, counts) {
  let polls = 0, last = 'none';
  for (;;) {
    const res = await request(port, 'GET', '/api/agents', token).catch((e) => ({ status: 0, error: e.message }));
    counts.polls++;
    polls++;
    const now = performance.now();
    if (res.status === 200) {
      const found = JSON.parse(res.body).data.find((a) => a.id === agent_id);
      if (found && found.name === name) return now - since;
      last = `200 ${res.headers['x-cache']} name ${found ? found.name : '(none)'}`;
    } else {
      last = `${res.status} ${res.error ?? res.body.slice(0, 120)}`;
    }
    if (now - since > give_up_ms) {
      if (process.env.FRESHNESS_SLOW) console.error(`gave up on port ${port} after ${polls} polls; last: ${last}`);
      return null;
    }
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const db = new Client({ connectionString: args['database-url'] });
  await db.connect();
  const users = fs.readFileSync(args.tokens, 'utf8').trim().split('\n').map((l) => l.split('\t'));
  const agents = await db.query('SELECT id, user_id FROM agents WHERE user_id = ANY($1) ORDER BY id',
                                [users.map((u) => u[0])]);
  const by_user = new Map();
  for (const r of agents.rows) (by_user.get(r.user_id) ?? by_user.set(r.user_id, []).get(r.user_id)).push(r.id);
  const writable = users.filter((u) => by_user.has(u[0]));
  if (writable.length === 0) throw new Error('no user of --tokens has an agent');

  const busy = new Set();
  const times = [];
  const by_kind = { sql: [], patch: [] };
  const counts = { writes: 0, sql: 0, patch: 0, skipped: 0, lost: 0, polls: 0, patch_errors: 0 };
  let seq = 0;
  const started = performance.now();

  async function one_write() {
    const free = writable.filter((u) => !busy.has(u[0]));
    if (free.length === 0) { counts.skipped++; return; }
    const [user, token] = free[Math.floor(Math.random() * free.length)];
    busy.add(user);
    try {
      const ids = by_user.get(user);
      const agent_id = ids[Math.floor(Math.random() * ids.length)];
      const name = `fresh-${process.pid}-${++seq}`;
      const kind = seq % 2 === 0 ? 'sql' : 'patch';
      if (kind === 'sql') {
        await db.query('UPDATE agents SET name = $1 WHERE id = $2', [name, agent_id]);
        counts.sql++;
      } else {
        const res = await request(patch_port, 'PATCH', `/api/agents/${agent_id}`, token, { name });
        if (res.status !== 200) { counts.patch_errors++; return; }
        counts.patch++;
      }
      const since = performance.now();
      counts.writes++;
      const seen = await Promise.all(read_ports.map((p) => visible(p, token, agent_id, name, since, counts)));
      for (const t of seen) {
        if (process.env.FRESHNESS_SLOW && (t === null || t > Number(process.env.FRESHNESS_SLOW)))
          console.error(`slow: at ${((since - started) / 1000).toFixed(2)} s, ${kind}, ${t === null ? 'lost' : t.toFixed(1) + ' ms'}`);
        if (t === null) counts.lost++;
        else {
          times.push(t);
          by_kind[kind].push(t);
        }
      }
    } finally {
      busy.delete(user);
    }
  }

  const pending = new Set();
  for (let k = 0; performance.now() - started < duration_ms; k++) {
    const due = started + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const p = one_write().catch((e) => { counts.patch_errors++; console.error(e.message); });
    pending.add(p);
    p.finally(() => pending.delete(p));
  }
  await Promise.all(pending);
  await db.end();
  agent.destroy();

  const round = (x) => (x === null ? null : Math.round(x * 100) / 100);
  const summary = (list) => {
    list.sort((a, b) => a - b);
    return { p50_ms: round(percentile(list, 50)), p99_ms: round(percentile(list, 99)),
             max_ms: round(list.length ? list[list.length - 1] : null) };
  };
  console.log(JSON.stringify({
    ...counts,
    pairs: times.length,
    ...summary(times),
    sql: summary(by_kind.sql),
    patch: summary(by_kind.patch),
  }));
}

main().catch((e) => { console.error(`writes.js: ${e.stack || e}`); process.exit(1); });
