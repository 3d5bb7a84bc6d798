#!/usr/bin/env node
// Stand-in of the legacy Node.js backend: /work/shared/contract/api.md in full, the
// slow way the legacy does it (raw tables, queries one after another, N+1 per agent,
// sequential external calls, no cache). It is the reference the sidecar is compared
// with, so every figure is computed by PostgreSQL in exact decimal (round(numeric, 2));
// JavaScript only formats.
//
//   node test/legacy/server.js [--port 3000] [--host 127.0.0.1] [--database-url URL]
//        [--jwt-secret S] [--elevenlabs-url URL] [--elevenlabs-key KEY] [--pool-size 10]
//
// Env: PORT, DATABASE_URL, JWT_SECRET, ELEVENLABS_URL, ELEVENLABS_API_KEY.
// Prints `listening <port>` as its first stdout line; exits cleanly on SIGTERM.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { parse_args, load_pg } = require('../lib/cli');
const { Pool } = load_pg();
const jwt = require('./jwt');

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const EXTERNAL_TIMEOUT_MS = 10_000;

// Windows, as SQL over the session's UTC clock (TimeZone is set to UTC on connect).
const W30 = "(CURRENT_DATE - INTERVAL '30 days')";
const W7 = "(CURRENT_DATE - INTERVAL '6 days')";
const MONTH = "date_trunc('month', CURRENT_DATE)";
// Date.prototype.toISOString() layout, truncated to milliseconds, computed by PostgreSQL
// (no float rounding of microseconds on the way).
const iso = (col) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const num = (v) => (v === null || v === undefined ? null : Number(v));

class http_error extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const bad_request = (m) => new http_error(400, 'BAD_REQUEST', m);
const not_found = (m = 'Not found') => new http_error(404, 'NOT_FOUND', m);

class legacy_app {
  constructor({ pool, jwt_secret, elevenlabs_url, elevenlabs_key }) {
    this.pool = pool;
    this.jwt_secret = jwt_secret;
    this.elevenlabs_url = (elevenlabs_url || '').replace(/\/+$/, '');
    this.elevenlabs_key = elevenlabs_key || '';
  }

  async q(text, params) {
    return (await this.pool.query(text, params)).rows;
  }

  // 401 for every token defect, 403 for an unknown or inactive user.
  async authenticate(req) {
    const h = req.headers.authorization;
    if (!h) throw new http_error(401, 'UNAUTHORIZED', 'Missing Authorization header');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) throw new http_error(401, 'UNAUTHORIZED', 'Malformed Authorization header');
    const v = jwt.verify(m[1], this.jwt_secret);
    if (!v.ok) throw new http_error(401, 'UNAUTHORIZED', `Invalid token: ${v.reason}`);
    if (!UUID_RE.test(v.sub)) throw new http_error(403, 'FORBIDDEN', 'Unknown user');
    const rows = await this.q('SELECT id, credits, is_active FROM users WHERE id = $1', [v.sub]);
    if (rows.length === 0) throw new http_error(403, 'FORBIDDEN', 'Unknown user');
    if (!rows[0].is_active) throw new http_error(403, 'FORBIDDEN', 'User is inactive');
    return { id: rows[0].id, credits: rows[0].credits };
  }

  // ---- GET /api/dashboard/overview ------------------------------------------------
  async overview(user) {
    const uid = user.id;
    const [conv] = await this.q(
      `SELECT count(*) AS total,
              count(*) FILTER (WHERE status = 'completed')   AS completed,
              count(*) FILTER (WHERE status = 'failed')      AS failed,
              count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
              count(*) FILTER (WHERE status = 'cancelled')   AS cancelled,
              coalesce(sum(duration_minutes), 0) AS total_duration,
              CASE WHEN count(*) = 0 THEN 0
                   ELSE round(sum(duration_minutes) / count(*), 2) END AS avg_duration,
              round(count(*)::numeric / 720, 2) AS per_hour,
              CASE WHEN count(*) = 0 THEN 0
                   ELSE round(100 * count(*) FILTER (WHERE status = 'completed')::numeric / count(*), 2)
              END AS success_rate,
              coalesce(sum(credits_used), 0) AS credits_30
         FROM calls WHERE user_id = $1 AND created_at >= ${W30}`, [uid]);
    const [month] = await this.q(
      `SELECT coalesce(sum(credits_used), 0) AS credits
         FROM calls WHERE user_id = $1 AND created_at >= ${MONTH}`, [uid]);
    const [leads] = await this.q(
      `SELECT count(*) AS total,
              count(*) FILTER (WHERE l.total_score >= 70) AS qualified,
              count(*) FILTER (WHERE l.total_score BETWEEN 80 AND 100) AS hot,
              count(*) FILTER (WHERE l.total_score BETWEEN 50 AND 79) AS warm,
              count(*) FILTER (WHERE l.total_score BETWEEN 0 AND 49) AS cold,
              CASE WHEN count(*) = 0 THEN 0
                   ELSE round(sum(l.total_score)::numeric / count(*), 2) END AS avg_score,
              CASE WHEN count(*) = 0 THEN 0
                   ELSE round(100 * count(*) FILTER (WHERE l.total_score >= 70)::numeric / count(*), 2)
              END AS conversion_rate
         FROM lead_analytics l JOIN calls c ON c.id = l.call_id
        WHERE c.user_id = $1 AND c.created_at >= ${W30}`, [uid]);
    const agent_rows = await this.q(
      'SELECT status, count(*) AS n FROM agents WHERE user_id = $1 GROUP BY status', [uid]);
    const agents = { total: 0, active: 0, draft: 0, paused: 0 };
    for (const r of agent_rows) {
      agents[r.status] = Number(r.n);
      agents.total += Number(r.n);
    }
    const recent = await this.q(
      `SELECT id, agent_id, status, duration_minutes, ${iso('created_at')} AS created_at
         FROM calls WHERE user_id = $1 AND created_at >= ${W7}
        ORDER BY calls.created_at DESC, id ASC LIMIT 10`, [uid]);
    // N+1: the agent's name and the lead score, one query each per row.
    const recent_activity = [];
    for (const r of recent) {
      const [a] = await this.q('SELECT name FROM agents WHERE id = $1', [r.agent_id]);
      const l = await this.q('SELECT total_score FROM lead_analytics WHERE call_id = $1', [r.id]);
      recent_activity.push({
        callId: r.id,
        agentId: r.agent_id,
        agentName: a ? a.name : null,
        status: r.status,
        durationMinutes: num(r.duration_minutes),
        leadScore: l.length ? l[0].total_score : null,
        createdAt: r.created_at,
      });
    }
    const kpi = (id, label, value, unit) => ({ id, label, value, unit });
    return {
      kpis: [
        kpi('total_leads', 'Total Leads', num(leads.total), 'count'),
        kpi('total_interactions', 'Total Interactions', num(conv.total), 'count'),
        kpi('leads_converted', 'Leads Converted', num(leads.qualified), 'count'),
        kpi('conversion_rate', 'Conversion Rate', num(leads.conversion_rate), 'percent'),
        kpi('avg_conversations_per_hour', 'Avg Conversations/Hour', num(conv.per_hour), 'count'),
        kpi('avg_lead_score', 'Avg Lead Score', num(leads.avg_score), 'score'),
        kpi('call_success_rate', 'Call Success Rate', num(conv.success_rate), 'percent'),
      ],
      credits: {
        current: user.credits,
        usedThisMonth: num(month.credits),
        usedLast30Days: num(conv.credits_30),
      },
      agents,
      conversations: {
        total: num(conv.total),
        completed: num(conv.completed),
        failed: num(conv.failed),
        inProgress: num(conv.in_progress),
        cancelled: num(conv.cancelled),
        totalDurationMinutes: num(conv.total_duration),
        avgDurationMinutes: num(conv.avg_duration),
      },
      leads: {
        total: num(leads.total),
        qualified: num(leads.qualified),
        hot: num(leads.hot),
        warm: num(leads.warm),
        cold: num(leads.cold),
        avgScore: num(leads.avg_score),
      },
      recentActivity: recent_activity,
      cacheInfo: { cached: false, calculatedAt: new Date().toISOString() },
    };
  }

  // ---- GET /api/dashboard/analytics -----------------------------------------------
  async analytics(user) {
    const uid = user.id;
    // One query per day, oldest first.
    const leads_over_time = [];
    for (let back = 6; back >= 0; back--) {
      const [d] = await this.q(
        `SELECT to_char(CURRENT_DATE - $2::int, 'YYYY-MM-DD') AS date,
                count(c.id) AS calls, count(l.id) AS leads,
                count(l.id) FILTER (WHERE l.total_score >= 70) AS qualified
           FROM calls c LEFT JOIN lead_analytics l ON l.call_id = c.id
          WHERE c.user_id = $1
            AND c.created_at >= (CURRENT_DATE - $2::int)::timestamptz
            AND c.created_at < (CURRENT_DATE - $2::int + 1)::timestamptz`, [uid, back]);
      leads_over_time.push({ date: d.date, calls: num(d.calls), leads: num(d.leads), qualified: num(d.qualified) });
    }
    const [bands] = await this.q(
      `SELECT count(*) FILTER (WHERE l.total_score BETWEEN 80 AND 100) AS hot,
              count(*) FILTER (WHERE l.total_score BETWEEN 50 AND 79) AS warm,
              count(*) FILTER (WHERE l.total_score BETWEEN 0 AND 49) AS cold
         FROM lead_analytics l JOIN calls c ON c.id = l.call_id
        WHERE c.user_id = $1 AND c.created_at >= ${W30}`, [uid]);
    const [outcomes] = await this.q(
      `SELECT count(*) FILTER (WHERE status = 'completed')   AS completed,
              count(*) FILTER (WHERE status = 'failed')      AS failed,
              count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
              count(*) FILTER (WHERE status = 'cancelled')   AS cancelled
         FROM calls WHERE user_id = $1 AND created_at >= ${W30}`, [uid]);
    // N+1: one performance query per agent.
    const agents = await this.q(
      'SELECT id, name FROM agents WHERE user_id = $1 ORDER BY name COLLATE "C", id', [uid]);
    const perf = [];
    for (const a of agents) {
      const [p] = await this.q(
        `SELECT count(*) AS calls,
                count(*) FILTER (WHERE c.status = 'completed') AS completed,
                CASE WHEN count(*) = 0 THEN 0
                     ELSE round(100 * count(*) FILTER (WHERE c.status = 'completed')::numeric / count(*), 2)
                END AS success_rate,
                round(sum(l.total_score)::numeric / nullif(count(l.id), 0), 2) AS avg_lead_score
           FROM calls c LEFT JOIN lead_analytics l ON l.call_id = c.id
          WHERE c.agent_id = $1 AND c.created_at >= ${W7}`, [a.id]);
      if (Number(p.calls) === 0) continue;
      perf.push({
        agentId: a.id,
        name: a.name,
        calls: num(p.calls),
        completed: num(p.completed),
        successRate: num(p.success_rate),
        avgLeadScore: num(p.avg_lead_score),
      });
    }
    // calls descending, then name in byte order, then id (uuid order = hex string order).
    perf.sort((x, y) => (y.calls - x.calls)
      || Buffer.compare(Buffer.from(x.name, 'utf8'), Buffer.from(y.name, 'utf8'))
      || (x.agentId < y.agentId ? -1 : x.agentId > y.agentId ? 1 : 0));
    const hours = await this.q(
      `SELECT extract(hour FROM created_at)::int AS h, count(*) AS n
         FROM calls WHERE user_id = $1 AND created_at >= ${W7} GROUP BY 1`, [uid]);
    const hourly = new Array(24).fill(0);
    for (const r of hours) hourly[r.h] = Number(r.n);
    return {
      leadsOverTime: leads_over_time,
      leadQualityDistribution: [
        { label: 'hot', min: 80, max: 100, count: num(bands.hot) },
        { label: 'warm', min: 50, max: 79, count: num(bands.warm) },
        { label: 'cold', min: 0, max: 49, count: num(bands.cold) },
      ],
      callOutcomes: {
        completed: num(outcomes.completed),
        failed: num(outcomes.failed),
        inProgress: num(outcomes.in_progress),
        cancelled: num(outcomes.cancelled),
      },
      agentPerformance: perf.slice(0, 10),
      hourlyDistribution: hourly,
    };
  }

  // ---- GET /api/agents ------------------------------------------------------------
  async external_config(el_id) {
    if (el_id === null || el_id === undefined) return { elevenLabs: null, configStatus: 'none' };
    if (!this.elevenlabs_url) return { elevenLabs: null, configStatus: 'unavailable' };
    let res, body;
    try {
      res = await fetch(`${this.elevenlabs_url}/v1/convai/agents/${encodeURIComponent(el_id)}`, {
        headers: { 'xi-api-key': this.elevenlabs_key },
        signal: AbortSignal.timeout(EXTERNAL_TIMEOUT_MS),
      });
      if (res.status === 404) {
        await res.arrayBuffer().catch(() => {});
        return { elevenLabs: null, configStatus: 'missing' };
      }
      if (res.status !== 200) {
        await res.arrayBuffer().catch(() => {});
        return { elevenLabs: null, configStatus: 'unavailable' };
      }
      body = JSON.parse(await res.text());
    } catch {
      return { elevenLabs: null, configStatus: 'unavailable' };
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return { elevenLabs: null, configStatus: 'unavailable' };
    }
    const get = (o, ...keys) => {
      for (const k of keys) {
        if (!o || typeof o !== 'object' || !(k in o)) return null;
        o = o[k];
      }
      return o === undefined ? null : o;
    };
    return {
      elevenLabs: {
        name: get(body, 'name'),
        voiceId: get(body, 'conversation_config', 'tts', 'voice_id'),
        language: get(body, 'conversation_config', 'agent', 'language'),
        firstMessage: get(body, 'conversation_config', 'agent', 'first_message'),
        llm: get(body, 'conversation_config', 'agent', 'prompt', 'llm'),
      },
      configStatus: 'ok',
    };
  }

  async agent_json(a) {
    const [p] = await this.q(
      `SELECT count(*) AS n,
              CASE WHEN count(*) = 0 THEN 0
                   ELSE round(100 * count(*) FILTER (WHERE status = 'completed')::numeric / count(*), 2)
              END AS success_rate,
              CASE WHEN count(*) = 0 THEN 0
                   ELSE round(60 * sum(duration_minutes) / count(*)) END AS avg_secs,
              coalesce(sum(credits_used), 0) AS credits,
              ${iso('max(created_at)')} AS last_call_at
         FROM calls WHERE agent_id = $1`, [a.id]);
    const secs = Number(p.avg_secs);
    const ext = await this.external_config(a.elevenlabs_agent_id);
    return {
      id: a.id,
      name: a.name,
      type: a.agent_type,
      status: a.status,
      description: a.description,
      createdAt: a.created_at,
      elevenLabsAgentId: a.elevenlabs_agent_id,
      performance: {
        conversations: num(p.n),
        successRate: num(p.success_rate),
        avgDuration: `${Math.floor(secs / 60)}m ${secs % 60}s`,
        creditsUsed: num(p.credits),
        lastCallAt: p.last_call_at,
      },
      elevenLabs: ext.elevenLabs,
      configStatus: ext.configStatus,
    };
  }

  static agent_columns = `id, user_id, elevenlabs_agent_id, name, agent_type, status, description,
                          ${iso('created_at')} AS created_at`;

  async agents(user) {
    const rows = await this.q(
      `SELECT ${legacy_app.agent_columns} FROM agents WHERE user_id = $1
        ORDER BY agents.created_at DESC, id ASC`, [user.id]);
    const out = [];
    for (const a of rows) out.push(await this.agent_json(a));  // one after another
    return out;
  }

  async user_agent(user, id) {
    if (!UUID_RE.test(id)) throw not_found('Agent not found');
    const rows = await this.q(
      `SELECT ${legacy_app.agent_columns} FROM agents WHERE id = $1 AND user_id = $2`, [id, user.id]);
    if (rows.length === 0) throw not_found('Agent not found');
    return rows[0];
  }

  // ---- pass-through routes ----------------------------------------------------------
  async credits(user) {
    const [r] = await this.q('SELECT credits FROM users WHERE id = $1', [user.id]);
    return { credits: r.credits };
  }

  async create_agent(user, body) {
    const { name, type, description = '' } = body;
    if (typeof name !== 'string' || name === '') throw bad_request('name is required');
    if (type !== 'call' && type !== 'chat') throw bad_request('type must be "call" or "chat"');
    if (typeof description !== 'string') throw bad_request('description must be a string');
    const id = crypto.randomUUID();
    await this.q(
      `INSERT INTO agents (id, user_id, elevenlabs_agent_id, name, agent_type, status, description)
       VALUES ($1, $2, NULL, $3, $4, 'draft', $5)`, [id, user.id, name, type, description]);
    return this.agent_json(await this.user_agent(user, id));
  }

  async patch_agent(user, id, body) {
    const sets = [];
    const params = [];
    for (const k of ['name', 'description', 'status']) {
      if (!(k in body)) continue;
      const v = body[k];
      if (typeof v !== 'string') throw bad_request(`${k} must be a string`);
      if (k === 'name' && v === '') throw bad_request('name must not be empty');
      if (k === 'status' && !['active', 'draft', 'paused'].includes(v)) {
        throw bad_request('status must be "active", "draft" or "paused"');
      }
      params.push(v);
      sets.push(`${k} = $${params.length}`);
    }
    if (sets.length === 0) throw bad_request('nothing to change: give name, description or status');
    await this.user_agent(user, id);
    params.push(id, user.id);
    await this.q(
      `UPDATE agents SET ${sets.join(', ')}, updated_at = now()
        WHERE id = $${params.length - 1} AND user_id = $${params.length}`, params);
    return this.agent_json(await this.user_agent(user, id));
  }

  async delete_agent(user, id) {
    if (!UUID_RE.test(id)) throw not_found('Agent not found');
    const rows = await this.q('DELETE FROM agents WHERE id = $1 AND user_id = $2 RETURNING id', [id, user.id]);
    if (rows.length === 0) throw not_found('Agent not found');
  }

  async create_call(user, body) {
    const { agentId, phoneNumber, status, durationMinutes, creditsUsed } = body;
    if (typeof agentId !== 'string') throw bad_request('agentId is required');
    if (typeof phoneNumber !== 'string') throw bad_request('phoneNumber is required');
    if (!['completed', 'failed', 'in_progress', 'cancelled'].includes(status)) {
      throw bad_request('status must be completed, failed, in_progress or cancelled');
    }
    if (typeof durationMinutes !== 'number' || !Number.isFinite(durationMinutes) || durationMinutes < 0
        || durationMinutes >= 1e6) {
      throw bad_request('durationMinutes must be a number >= 0');
    }
    if (!Number.isInteger(creditsUsed) || creditsUsed < 0 || creditsUsed > 2147483647) {
      throw bad_request('creditsUsed must be an integer >= 0');
    }
    await this.user_agent(user, agentId);
    const id = crypto.randomUUID();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO calls (id, user_id, agent_id, phone_number, status, duration_minutes, credits_used)
         VALUES ($1, $2, $3, $4, $5, $6::numeric, $7)`,
        [id, user.id, agentId, phoneNumber, status, String(durationMinutes), creditsUsed]);
      await client.query('UPDATE users SET credits = credits - $2 WHERE id = $1', [user.id, creditsUsed]);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
    return { id };
  }

  async create_analysis(user, call_id, body) {
    const { totalScore } = body;
    if (!Number.isInteger(totalScore) || totalScore < 0 || totalScore > 100) {
      throw bad_request('totalScore must be an integer from 0 to 100');
    }
    if (!UUID_RE.test(call_id)) throw not_found('Call not found');
    const calls = await this.q('SELECT id FROM calls WHERE id = $1 AND user_id = $2', [call_id, user.id]);
    if (calls.length === 0) throw not_found('Call not found');
    const id = crypto.randomUUID();
    const rows = await this.q(
      `INSERT INTO lead_analytics (id, call_id, total_score) VALUES ($1, $2, $3)
       ON CONFLICT (call_id) DO NOTHING RETURNING id`, [id, call_id, totalScore]);
    if (rows.length === 0) throw new http_error(409, 'CONFLICT', 'The call already has an analysis');
    return { id, callId: call_id, totalScore };
  }

  // ---- routing ----------------------------------------------------------------------
  // [method, regex, handler(user, match, body) -> [status, data]]; needs_body parses JSON.
  routes() {
    return [
      ['GET', /^\/api\/dashboard\/overview$/, async (u) => [200, await this.overview(u)]],
      ['GET', /^\/api\/dashboard\/analytics$/, async (u) => [200, await this.analytics(u)]],
      ['GET', /^\/api\/agents$/, async (u) => [200, await this.agents(u)]],
      ['GET', /^\/api\/billing\/credits$/, async (u) => [200, await this.credits(u)]],
      ['POST', /^\/api\/agents$/, async (u, m, b) => [201, await this.create_agent(u, b)], true],
      ['PATCH', /^\/api\/agents\/([^/]+)$/, async (u, m, b) => [200, await this.patch_agent(u, m[1], b)], true],
      ['DELETE', /^\/api\/agents\/([^/]+)$/, async (u, m) => { await this.delete_agent(u, m[1]); return [204, null]; }],
      ['POST', /^\/api\/calls$/, async (u, m, b) => [201, await this.create_call(u, b)], true],
      ['POST', /^\/api\/calls\/([^/]+)\/analysis$/, async (u, m, b) => [201, await this.create_analysis(u, m[1], b)], true],
    ];
  }

  async handle(req, res) {
    const send = (status, obj) => {
      if (status === 204) {
        res.writeHead(204);
        return res.end();
      }
      const text = JSON.stringify(obj);
      res.writeHead(status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    try {
      const raw = await read_body(req);
      const url = new URL(req.url, 'http://legacy');
      let route = null, match = null;
      for (const r of this.routes_) {
        if (r[0] !== req.method) continue;
        match = r[1].exec(url.pathname);
        if (match) { route = r; break; }
      }
      if (!route) throw not_found(`No route for ${req.method} ${url.pathname}`);
      const user = await this.authenticate(req);
      let body = null;
      if (route[3]) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw bad_request('Body is not valid JSON');
        }
        if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad_request('Body must be a JSON object');
      }
      const [status, data] = await route[2](user, match, body);
      send(status, { success: true, data });
    } catch (e) {
      if (e instanceof http_error) {
        send(e.status, { success: false, error: { code: e.code, message: e.message } });
      } else {
        console.error('legacy: internal error:', e);
        send(500, { success: false, error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } });
      }
    }
  }
}

function read_body(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function main() {
  const args = parse_args(process.argv.slice(2));
  const port = Number(args.port ?? process.env.PORT ?? 3000);
  const host = args.host || '127.0.0.1';
  const database_url = args['database-url'] || process.env.DATABASE_URL;
  const jwt_secret = args['jwt-secret'] || process.env.JWT_SECRET;
  if (!database_url) { console.error('legacy: --database-url or DATABASE_URL is required'); process.exit(2); }
  if (!jwt_secret) { console.error('legacy: --jwt-secret or JWT_SECRET is required'); process.exit(2); }

  const pool = new Pool({
    connectionString: database_url,
    max: Number(args['pool-size'] ?? 10),
    options: '-c TimeZone=UTC',  // every window is a UTC day
  });
  pool.on('error', (e) => console.error('legacy: idle client error:', e.message));
  const app = new legacy_app({
    pool,
    jwt_secret,
    elevenlabs_url: args['elevenlabs-url'] || process.env.ELEVENLABS_URL,
    elevenlabs_key: args['elevenlabs-key'] || process.env.ELEVENLABS_API_KEY,
  });
  app.routes_ = app.routes();

  const sockets = new Set();
  const server = http.createServer({ keepAlive: true }, (req, res) => { app.handle(req, res); });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 0;
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.listen({ port, host, backlog: 1024 }, () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeIdleConnections();
    // In-flight requests get a moment; then everything is closed.
    setTimeout(() => { for (const s of sockets) s.destroy(); }, 2000).unref();
    pool.end().catch(() => {}).finally(() => {
      for (const s of sockets) s.destroy();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
module.exports = { legacy_app };
