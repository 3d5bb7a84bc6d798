#!/usr/bin/env node
// Mock of the external agent API (ElevenLabs Conversational AI), as described in
// /work/shared/contract/elevenlabs.md. Only node's http module.
//
//   node test/mocks/elevenlabs.js [--port 0] [--host 127.0.0.1] [--api-key KEY]
//        [--latency-ms 150] [--jitter-ms 100] [--seed 1]
//
// Prints `listening <port>` as its first stdout line.
//
// GET /v1/convai/agents/{id}: 200 with a configuration that is a pure function of
// the id; `agent_gone_*` -> 404; `agent_partial_*` omit llm and first_message.
// `hold: true` (POST /__mock/config) holds every agent answer until a config
// with `hold: false` (or a reset) releases them, each then after its delay: a
// test can keep a fetch open for as long as it needs, with no timing.
// Control plane (never counted, never delayed):
//   GET  /__mock/stats   {"requests", "byAgent", "inFlight", "maxInFlight"} (the most in flight at once)
//   POST /__mock/reset   counters, per-agent state and settings back to start values
//   POST /__mock/config  JSON merged into the settings; answers the full settings
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { parse_args, make_prng } = require('../lib/cli');

const NAMES = ['Sales follow-up', 'Appointment setter', 'Support triage', 'Renewal reminder',
  'Lead qualifier', 'Survey caller', 'Onboarding guide', 'Collections desk',
  'Demo booker', 'Re-engagement', 'Front desk', 'Event invites'];
const PERSONAS = ['Ava', 'Ben', 'Chloé', 'Dmitri', 'Eun-ji', 'Farah', 'Gus', 'Hana'];
const COMPANIES = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark & Sons'];
const LANGUAGES = ['en', 'en', 'en', 'es', 'fr', 'de', 'pt', 'it', 'ja'];
const LLMS = ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-sonnet', 'gemini-1.5-flash', 'llama-3.1-70b'];
const VOICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// The configuration of an agent: a pure function of its id.
function agent_config(id) {
  const h = crypto.createHash('sha256').update(id, 'utf8').digest();
  const pick = (arr, i) => arr[h[i] % arr.length];
  let voice = '';
  for (let i = 0; i < 20; i++) voice += VOICE_CHARS[h[8 + i] % VOICE_CHARS.length];
  const persona = pick(PERSONAS, 1);
  const company = pick(COMPANIES, 2);
  const agent = {
    first_message: `Hi, this is ${persona} from ${company}.`,
    language: pick(LANGUAGES, 3),
    prompt: { prompt: `You are ${persona}, a helpful assistant for ${company}.`, llm: pick(LLMS, 4) },
  };
  if (id.startsWith('agent_partial_')) {
    delete agent.first_message;
    delete agent.prompt.llm;
  }
  return {
    agent_id: id,
    name: `${pick(NAMES, 0)} ${h[5] % 100}`,
    conversation_config: {
      agent,
      tts: { voice_id: voice, model_id: 'eleven_turbo_v2' },
    },
    metadata: { created_at_unix_secs: 1700000000 + (h.readUInt32BE(28) % 30000000) },
    tags: [],
  };
}

function main() {
  const args = parse_args(process.argv.slice(2));
  const host = args.host || '127.0.0.1';
  const port = Number(args.port ?? 0);
  const api_key = typeof args['api-key'] === 'string' ? args['api-key'] : (process.env.ELEVENLABS_API_KEY || '');
  const seed = Number(args.seed ?? 1);

  const start_settings = {
    latencyMs: Number(args['latency-ms'] ?? 150),
    jitterMs: Number(args['jitter-ms'] ?? 100),
    failRate: 0,
    rateLimitRate: 0,
    retryAfterS: 1,
    hangRate: 0,
    down: false,
    failFirst: 0,
    failFirstStatus: 500,
    hold: false,
  };

  let settings = { ...start_settings };
  let rand = make_prng(seed);
  let stats = { requests: 0, byAgent: Object.create(null), inFlight: 0, maxInFlight: 0 };
  let generation = 0;  // bumped by reset: responses of older requests do not touch new counters
  const sockets = new Set();
  let held = [];  // answers waiting for hold: false

  function release_held() {
    const now = held;
    held = [];
    for (const start of now) start();
  }

  function send_json(res, status, body, headers = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  function read_body(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  async function control(req, res, path) {
    if (req.method === 'GET' && path === '/__mock/stats') {
      return send_json(res, 200, {
        requests: stats.requests, byAgent: stats.byAgent, inFlight: stats.inFlight, maxInFlight: stats.maxInFlight,
      });
    }
    if (req.method === 'POST' && path === '/__mock/reset') {
      await read_body(req);
      generation++;
      settings = { ...start_settings };
      release_held();
      rand = make_prng(seed);
      stats = { requests: 0, byAgent: Object.create(null), inFlight: 0, maxInFlight: 0 };
      return send_json(res, 200, settings);
    }
    if (req.method === 'POST' && path === '/__mock/config') {
      const text = await read_body(req);
      let patch;
      try {
        patch = text.trim() === '' ? {} : JSON.parse(text);
      } catch (e) {
        return send_json(res, 400, { error: `bad JSON: ${e.message}` });
      }
      if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
        return send_json(res, 400, { error: 'expected a JSON object' });
      }
      for (const [k, v] of Object.entries(patch)) {
        if (!(k in start_settings)) return send_json(res, 400, { error: `unknown setting: ${k}` });
        if (typeof v !== typeof start_settings[k]) return send_json(res, 400, { error: `bad type for ${k}` });
      }
      if ('failFirstStatus' in patch && ![500, 429].includes(patch.failFirstStatus)) {
        return send_json(res, 400, { error: 'failFirstStatus must be 500 or 429' });
      }
      settings = { ...settings, ...patch };
      if (!settings.hold) release_held();
      return send_json(res, 200, settings);
    }
    return send_json(res, 404, { error: 'no such control route' });
  }

  function agent_request(req, res, id) {
    const gen = generation;
    const s = stats;
    s.requests++;
    const nth = (s.byAgent[id] = (s.byAgent[id] || 0) + 1);
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (gen === generation) s.inFlight--;
    };
    res.on('finish', finish);
    res.on('close', finish);

    if (settings.down) {
      // Refused: the connection is dropped without a byte of response.
      req.socket.destroy();
      finish();
      return;
    }
    const key_ok = !api_key || req.headers['xi-api-key'] === api_key;

    // Decide the outcome now (PRNG draws in arrival order), answer after the delay.
    const delay = settings.latencyMs + (settings.jitterMs > 0 ? rand() * settings.jitterMs : 0);
    const r_hang = rand(), r_fail = rand(), r_limit = rand();
    let outcome;
    if (!key_ok) outcome = 'unauthorized';
    else if (nth <= settings.failFirst) outcome = settings.failFirstStatus === 429 ? 'ratelimit' : 'fail';
    else if (r_hang < settings.hangRate) outcome = 'hang';
    else if (r_fail < settings.failRate) outcome = 'fail';
    else if (r_limit < settings.rateLimitRate) outcome = 'ratelimit';
    else if (id.startsWith('agent_gone_')) outcome = 'gone';
    else outcome = 'ok';
    const retry_after = String(settings.retryAfterS);

    if (outcome === 'hang') return;  // never answered; 'close' ends it when the client leaves

    const answer = () => {
      if (res.destroyed) return;
      switch (outcome) {
        case 'unauthorized':
          return send_json(res, 401, { detail: { status: 'invalid_api_key', message: 'Invalid API key' } });
        case 'fail':
          return send_json(res, 500, { detail: { status: 'internal_error', message: 'Injected failure' } });
        case 'ratelimit':
          return send_json(res, 429, { detail: { status: 'too_many_requests', message: 'Rate limited' } },
            { 'Retry-After': retry_after });
        case 'gone':
          return send_json(res, 404, { detail: { status: 'agent_not_found', message: `Agent ${id} not found` } });
        default:
          return send_json(res, 200, agent_config(id));
      }
    };
    let timer = null;
    const start = () => { timer = setTimeout(answer, Math.max(0, delay)); };
    if (settings.hold) held.push(start);
    else start();
    res.on('close', () => { if (timer) clearTimeout(timer); });
  }

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    let url;
    try {
      url = new URL(req.url, 'http://mock');
    } catch {
      return send_json(res, 400, { detail: { status: 'bad_request', message: 'bad URL' } });
    }
    const path = url.pathname;
    if (path.startsWith('/__mock/')) {
      control(req, res, path).catch((e) => send_json(res, 500, { error: String(e) }));
      return;
    }
    const m = /^\/v1\/convai\/agents\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      let id;
      try { id = decodeURIComponent(m[1]); } catch { id = m[1]; }
      req.resume();
      return agent_request(req, res, id);
    }
    send_json(res, 404, { detail: { status: 'not_found', message: 'Not found' } });
  });
  server.maxConnections = undefined;  // unlimited (the default; stated on purpose)
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.requestTimeout = 0;  // hung requests stay until the client leaves
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  server.listen({ port, host, backlog: 1024 }, () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    for (const s of sockets) s.destroy();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
module.exports = { agent_config };
