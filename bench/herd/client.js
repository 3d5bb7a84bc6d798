#!/usr/bin/env node
// Fires N requests at once for one cold key and times each.
//   node bench/herd/client.js PORT PATH TOKEN [N=200]
// First opens N keep-alive connections (a warm-up request each, on a key of
// its own), so that the measured requests leave together on open sockets.
// Then the same N requests again, now cache hits: their p50 is what this
// client and the machine add to any answer (the floor under the herd's).
// Prints "RESULT n ok p50_ms p99_ms max_ms min_ms hit_p50_ms".
'use strict';
const http = require('node:http');

const [port, path, token, n_arg = '200', warm_token] = process.argv.slice(2);
const n = Number(n_arg);
const agent = new http.Agent({ keepAlive: true, maxSockets: n, maxFreeSockets: n });

function get(auth) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const req = http.get({ host: '127.0.0.1', port: Number(port), path, agent,
                           headers: { Authorization: `Bearer ${auth}` } }, (res) => {
      let len = 0;
      res.on('data', (c) => { len += c.length; });
      res.on('end', () => resolve({ status: res.statusCode, len,
                                    ms: Number(process.hrtime.bigint() - start) / 1e6 }));
    });
    req.on('error', () => resolve({ status: 0, len: 0, ms: Number(process.hrtime.bigint() - start) / 1e6 }));
  });
}

function pct(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]; }

(async () => {
  // Warm-up: n sockets in the agent's free pool.
  await Promise.all(Array.from({ length: n }, () => get(warm_token ?? token + 'x')));
  const results = await Promise.all(Array.from({ length: n }, () => get(token)));
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const ok = results.filter((r) => r.status === 200).length;
  const hits = (await Promise.all(Array.from({ length: n }, () => get(token)))).map((r) => r.ms).sort((a, b) => a - b);
  console.log(`RESULT ${n} ${ok} ${pct(ms, 50).toFixed(1)} ${pct(ms, 99).toFixed(1)} ${ms[ms.length - 1].toFixed(1)} ${ms[0].toFixed(1)} ${pct(hits, 50).toFixed(1)}`);
  agent.destroy();
})();
