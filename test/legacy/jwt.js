// HS256 JSON Web Tokens with node:crypto only: what the legacy backend accepts
// (/work/shared/contract/api.md, "Authentication") and what test/data/mint.js issues.
'use strict';

const crypto = require('node:crypto');

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

function sign(payload, secret, { alg = 'HS256', forged = false } = {}) {
  const header = { alg, typ: 'JWT' };
  const head = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  if (alg === 'none') return `${head}.`;
  const key = forged ? `${secret}-forged` : secret;
  const sig = crypto.createHmac('sha256', key).update(head).digest();
  return `${head}.${b64url(sig)}`;
}

// Verifies a token: {ok: true, sub} or {ok: false, reason}. now_s: seconds since epoch.
function verify(token, secret, now_s = Math.floor(Date.now() / 1000)) {
  if (typeof token !== 'string') return { ok: false, reason: 'missing token' };
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed token' };
  const [h, p, s] = parts;
  const b64 = /^[A-Za-z0-9_-]*$/;
  if (!b64.test(h) || !b64.test(p) || !b64.test(s)) return { ok: false, reason: 'malformed token' };
  let header, payload;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed token' };
  }
  if (!header || typeof header !== 'object' || !payload || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, reason: 'malformed token' };
  }
  if (header.alg !== 'HS256') return { ok: false, reason: 'unsupported alg' };
  const expected = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, 'base64url');
  if (got.length !== expected.length || !crypto.timingSafeEqual(got, expected)) {
    return { ok: false, reason: 'bad signature' };
  }
  if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) return { ok: false, reason: 'no exp' };
  if (now_s >= payload.exp) return { ok: false, reason: 'token expired' };
  if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, reason: 'no sub' };
  return { ok: true, sub: payload.sub };
}

module.exports = { sign, verify };
