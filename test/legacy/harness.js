// Helpers for the node:test suites of the stand-ins: a database per test file,
// child servers on port 0 (waiting for their `listening <port>` line, with a deadline),
// and a small HTTP client that returns what a user sees.
'use strict';

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');

const ROOT = path.resolve(__dirname, '..', '..');
// `pg` is loaded on first use, so the mock's tests run without node_modules.
const { load_pg } = require('../lib/cli');

// The DSN of the throwaway PostgreSQL, or null (the caller then warns and passes).
function test_database_url() {
  return process.env.SIDECACHE_TEST_DATABASE_URL || null;
}

function with_database(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

// Drops and creates database `db` on the server of `admin_url`; returns its URL.
async function create_database(admin_url, db) {
  const c = new (load_pg().Client)({ connectionString: admin_url });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${db}`);
  } finally {
    await c.end();
  }
  return with_database(admin_url, db);
}

async function drop_database(admin_url, db) {
  const c = new (load_pg().Client)({ connectionString: admin_url });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

// Starts `node script args...`; resolves {port, proc, stop()} once it printed
// `listening <port>`, rejects if it exits or stays silent past the deadline.
function start_node(script, args, { env = {}, deadline_ms = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; process.stderr.write(d); });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${script}: no "listening" line within ${deadline_ms} ms\n${stderr}`));
    }, deadline_ms);
    const onexit = (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before listening\n${stderr}`));
    };
    proc.once('exit', onexit);
    const rl = readline.createInterface({ input: proc.stdout });
    rl.once('line', (line) => {
      clearTimeout(timer);
      proc.off('exit', onexit);
      const m = /^listening (\d+)$/.exec(line);
      if (!m) { proc.kill('SIGKILL'); return reject(new Error(`${script}: unexpected first line: ${line}`)); }
      const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
      resolve({
        port: Number(m[1]),
        proc,
        exited,
        // SIGTERM, then wait for the exit (SIGKILL past the deadline).
        async stop(deadline = 5000) {
          if (proc.exitCode !== null || proc.signalCode !== null) return exited;
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), deadline);
          const r = await exited;
          clearTimeout(t);
          return r;
        },
      });
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// One HTTP request; resolves {status, headers, text, json} (json: parsed or undefined).
function request(port, method, urlpath, { headers = {}, body, timeout_ms = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port, method, path: urlpath, agent,
      headers: { ...(data !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeout_ms, () => req.destroy(new Error(`request timed out after ${timeout_ms} ms`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

module.exports = {
  ROOT, get pg() { return load_pg(); }, test_database_url, with_database, create_database, drop_database, start_node, request, agent,
};
