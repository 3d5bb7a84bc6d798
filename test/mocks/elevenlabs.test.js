// The ElevenLabs mock, as the sidecar's tests rely on it: determinism, 404, 401,
// latency, failFirst, 429 Retry-After, down, stats, hang. Real sockets on port 0.
'use strict';

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const h = require('../legacy/harness');

const SCRIPT = path.join(h.ROOT, 'test/mocks/elevenlabs.js');
const KEY = 'k-123';
let mock;

const agent_get = (id, { key = KEY, port = mock.port, timeout_ms } = {}) =>
  h.request(port, 'GET', `/v1/convai/agents/${encodeURIComponent(id)}`, { headers: key ? { 'xi-api-key': key } : {}, timeout_ms });
const stats = async () => (await h.request(mock.port, 'GET', '/__mock/stats')).json;
const configure = async (body) => (await h.request(mock.port, 'POST', '/__mock/config', { body })).json;

before(async () => {
  mock = await h.start_node(SCRIPT, ['--port', '0', '--api-key', KEY, '--latency-ms', '0', '--jitter-ms', '0']);
});
after(async () => {
  h.agent.destroy();
  assert.deepEqual(await mock.stop(), { code: 0, signal: null }, 'clean exit on SIGTERM');
});
beforeEach(async () => {
  const r = await h.request(mock.port, 'POST', '/__mock/reset');
  assert.equal(r.status, 200);
});

test('answers are a pure function of the id, across processes', async () => {
  const a = await agent_get('agent_7f3a');
  assert.equal(a.status, 200);
  assert.equal(a.json.agent_id, 'agent_7f3a');
  assert.equal(typeof a.json.name, 'string');
  const cc = a.json.conversation_config;
  for (const v of [cc.tts.voice_id, cc.agent.language, cc.agent.first_message, cc.agent.prompt.llm]) {
    assert.equal(typeof v, 'string');
    assert.ok(v.length > 0);
  }
  assert.equal((await agent_get('agent_7f3a')).text, a.text, 'same id, same bytes');
  const b = await agent_get('agent_other');
  assert.notEqual(b.text.replace(/agent_other/g, ''), a.text.replace(/agent_7f3a/g, ''), 'another id, another config');
  // A second mock process with another seed answers the same bytes.
  const other = await h.start_node(SCRIPT, ['--port', '0', '--latency-ms', '0', '--jitter-ms', '0', '--seed', '9'],
    { env: { ELEVENLABS_API_KEY: '' } });
  try {
    assert.equal((await agent_get('agent_7f3a', { port: other.port, key: null })).text, a.text);
  } finally {
    await other.stop();
  }
});

test('agent_partial_ ids omit llm and first_message; agent_gone_ ids are 404', async () => {
  const p = await agent_get('agent_partial_1');
  assert.equal(p.status, 200);
  assert.equal('first_message' in p.json.conversation_config.agent, false);
  assert.equal('llm' in p.json.conversation_config.agent.prompt, false);
  assert.equal(typeof p.json.conversation_config.agent.language, 'string');
  const g = await agent_get('agent_gone_1');
  assert.equal(g.status, 404);
  assert.equal(g.json.detail.status, 'agent_not_found');
  assert.equal((await h.request(mock.port, 'GET', '/v1/other')).status, 404);
});

test('401 without the right xi-api-key, counted', async () => {
  for (const key of [null, 'wrong']) {
    const r = await agent_get('agent_x', { key });
    assert.equal(r.status, 401);
    assert.equal(r.json.detail.status, 'invalid_api_key');
  }
  assert.equal((await stats()).requests, 2);
});

test('latency: fixed delay plus jitter, changeable at run time; control plane never delayed', async () => {
  await configure({ latencyMs: 200, jitterMs: 50 });
  let t0 = Date.now();
  assert.equal((await agent_get('agent_slow')).status, 200);
  const took = Date.now() - t0;
  assert.ok(took >= 195 && took < 1000, `took ${took} ms`);
  t0 = Date.now();
  await stats();
  assert.ok(Date.now() - t0 < 150, 'stats are not delayed');
  // Concurrent requests are delayed in parallel, not one after another.
  await configure({ latencyMs: 300, jitterMs: 0 });
  t0 = Date.now();
  const all = await Promise.all(Array.from({ length: 200 }, (_, i) => agent_get(`agent_${i}`)));
  const wall = Date.now() - t0;
  assert.ok(all.every((r) => r.status === 200));
  assert.ok(wall < 2500, `200 concurrent requests took ${wall} ms`);
  assert.equal((await stats()).requests, 201);
});

test('failFirst: the first N requests of each id fail with the given status', async () => {
  let s = await configure({ failFirst: 2 });
  assert.equal(s.failFirst, 2);
  assert.equal(s.failFirstStatus, 500);
  const seq = async (id) => { const out = []; for (let i = 0; i < 3; i++) out.push((await agent_get(id)).status); return out; };
  assert.deepEqual(await seq('agent_a'), [500, 500, 200]);
  assert.deepEqual(await seq('agent_b'), [500, 500, 200]);
  assert.deepEqual(await seq('agent_gone_c'), [500, 500, 404]);
  s = await configure({ failFirst: 1, failFirstStatus: 429, retryAfterS: 7 });
  assert.equal(s.retryAfterS, 7);
  const r = await agent_get('agent_d');
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '7');
  assert.equal(r.json.detail.status, 'too_many_requests');
  assert.equal((await agent_get('agent_d')).status, 200);
  assert.equal((await agent_get('agent_a')).status, 200, 'agent_a is past its first request');
});

test('rates: failRate and rateLimitRate (default Retry-After 1), seeded', async () => {
  await configure({ rateLimitRate: 1 });
  const r = await agent_get('agent_r');
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '1');
  await configure({ rateLimitRate: 0, failRate: 1 });
  assert.equal((await agent_get('agent_r')).status, 500);
  // Half the requests fail; the same seed draws the same sequence after a reset.
  const run = async () => {
    await h.request(mock.port, 'POST', '/__mock/reset');
    await configure({ latencyMs: 0, jitterMs: 0, failRate: 0.5 });
    const out = [];
    for (let i = 0; i < 40; i++) out.push((await agent_get('agent_seq')).status);
    return out;
  };
  const first = await run();
  assert.deepEqual(await run(), first);
  const fails = first.filter((x) => x === 500).length;
  assert.ok(fails > 5 && fails < 35, `${fails} of 40 failed`);
});

test('down: sockets destroyed without a response, still counted', async () => {
  await configure({ down: true });
  await assert.rejects(agent_get('agent_down'), (e) => ['ECONNRESET', 'ECONNREFUSED'].includes(e.code) || /socket hang up/.test(e.message));
  const s = await stats();
  assert.equal(s.requests, 1);
  assert.equal(s.byAgent.agent_down, 1);
  assert.equal(s.inFlight, 0);
  await configure({ down: false });
  assert.equal((await agent_get('agent_down')).status, 200);
});

test('hang: never answered until the client closes; inFlight counts it', async () => {
  await configure({ hangRate: 1 });
  const sock = net.connect(mock.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let got = '';
  sock.on('data', (d) => { got += d; });
  sock.write(`GET /v1/convai/agents/agent_h HTTP/1.1\r\nHost: x\r\nxi-api-key: ${KEY}\r\n\r\n`);
  const deadline = Date.now() + 5000;
  while ((await stats()).inFlight !== 1) {
    assert.ok(Date.now() < deadline, 'the hung request never showed up in flight');
  }
  // Another request completes meanwhile: the hang holds only its own request.
  await configure({ hangRate: 0 });
  assert.equal((await agent_get('agent_ok')).status, 200);
  assert.equal(got, '', 'no byte answered to the hung request');
  sock.destroy();
  while ((await stats()).inFlight !== 0) {
    assert.ok(Date.now() < deadline, 'inFlight not released when the client left');
  }
  const s = await stats();
  assert.equal(s.requests, 2);
  assert.deepEqual(s.byAgent, { agent_h: 1, agent_ok: 1 });
});

test('hold: answers wait until released, then each is sent', async () => {
  await configure({ hold: true });
  const pending = agent_get('agent_held');
  const deadline = Date.now() + 5000;
  while ((await stats()).inFlight !== 1) {
    assert.ok(Date.now() < deadline, 'the held request never showed up in flight');
  }
  await configure({ hold: false });
  assert.equal((await pending).status, 200);
  assert.equal((await stats()).inFlight, 0);
});

test('stats and reset; config rejects unknown keys and wrong types', async () => {
  await agent_get('agent_s1');
  await agent_get('agent_s1');
  await agent_get('agent_gone_s2');
  await agent_get('agent_s3', { key: 'bad' });
  assert.deepEqual(await stats(), {
    requests: 4, byAgent: { agent_s1: 2, agent_gone_s2: 1, agent_s3: 1 }, inFlight: 0, maxInFlight: 1,
  });
  const full = await configure({ latencyMs: 5 });
  assert.deepEqual(Object.keys(full).sort(), ['down', 'failFirst', 'failFirstStatus', 'failRate', 'hangRate',
    'hold', 'jitterMs', 'latencyMs', 'rateLimitRate', 'retryAfterS']);
  assert.equal(full.latencyMs, 5);
  assert.equal((await h.request(mock.port, 'POST', '/__mock/config', { body: { bogus: 1 } })).status, 400);
  assert.equal((await h.request(mock.port, 'POST', '/__mock/config', { body: { down: 'yes' } })).status, 400);
  assert.equal((await h.request(mock.port, 'POST', '/__mock/config', { body: '{' })).status, 400);
  await h.request(mock.port, 'POST', '/__mock/reset');
  assert.deepEqual(await stats(), { requests: 0, byAgent: {}, inFlight: 0, maxInFlight: 0 });
  const back = await configure({});
  assert.equal(back.latencyMs, 0, 'reset restores the start values');
  assert.equal(back.failFirst, 0);
});

test('the api key may come from ELEVENLABS_API_KEY; none means no check', async () => {
  const m = await h.start_node(SCRIPT, ['--port', '0', '--latency-ms', '0'], { env: { ELEVENLABS_API_KEY: 'envkey' } });
  try {
    assert.equal((await agent_get('agent_e', { port: m.port, key: 'nope' })).status, 401);
    assert.equal((await agent_get('agent_e', { port: m.port, key: 'envkey' })).status, 200);
  } finally {
    await m.stop();
  }
  const open = await h.start_node(SCRIPT, ['--port', '0', '--latency-ms', '0'], { env: { ELEVENLABS_API_KEY: '' } });
  try {
    assert.equal((await agent_get('agent_e', { port: open.port, key: null })).status, 200);
  } finally {
    await open.stop();
  }
});
