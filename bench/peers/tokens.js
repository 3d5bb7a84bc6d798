#!/usr/bin/env node
// HS256 bearer tokens for the benches: `node bench/peers/tokens.js SECRET COUNT [PREFIX]`
// prints COUNT lines "user_id<TAB>token" (users PREFIX-0000.., valid for 1 h).
'use strict';
const crypto = require('node:crypto');

const [secret, count = '1', prefix = 'bench-user'] = process.argv.slice(2);
if (!secret) { console.error('usage: tokens.js SECRET COUNT [PREFIX]'); process.exit(2); }
const b64 = (s) => Buffer.from(s).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const out = [];
for (let i = 0; i < Number(count); i++) {
  const user = `${prefix}-${String(i).padStart(4, '0')}`;
  const body = `${head}.${b64(JSON.stringify({ sub: user, iat: now, exp: now + 3600 }))}`;
  const sig = crypto.createHmac('sha256', secret).update(body).digest('base64url');
  out.push(`${user}\t${body}.${sig}`);
}
process.stdout.write(out.join('\n') + '\n');
