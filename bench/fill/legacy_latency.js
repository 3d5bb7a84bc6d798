#!/usr/bin/env node
// Cold latency of the legacy stand-in per endpoint, one request at a time.
//   node legacy_latency.js PORT TOKENS_FILE [ROUNDS]   (TOKENS_FILE: mint.js --all output)
'use strict';
const http = require('node:http');
const fs = require('node:fs');

const [port, file, rounds = '1'] = process.argv.slice(2);
const users = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(path, token) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http.get({ host: '127.0.0.1', port, path, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6));
    }).on('error', reject);
  });
}

(async () => {
  for (const [name, path] of [['overview', '/api/dashboard/overview'], ['analytics', '/api/dashboard/analytics'], ['agents', '/api/agents']]) {
    const lat = [];
    for (let r = 0; r < Number(rounds); r++) for (const [, token] of users) lat.push(await get(path, token));
    lat.sort((a, b) => a - b);
    const at = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
    console.log(`${('legacy ' + name).padEnd(28)} n=${String(lat.length).padEnd(5)} p50=${at(0.5).toFixed(2).padStart(7)} p95=${at(0.95).toFixed(2).padStart(7)} p99=${at(0.99).toFixed(2).padStart(7)} max=${lat[lat.length - 1].toFixed(2).padStart(7)} ms`);
  }
  agent.destroy();
})();
