#!/usr/bin/env node
// Token minter for tests, the demo and benchmarks.
//
//   node test/data/mint.js --secret S --user UUID [--exp-in 3600] [--expired] [--forged]
//        [--alg-none] [--no-sub]                        prints one JWT
//   node test/data/mint.js --secret S --all --database-url URL [--exp-in 3600]
//                                                       prints `user_id<TAB>token` per active user
// --secret defaults to env JWT_SECRET, --database-url to env DATABASE_URL.
'use strict';

const jwt = require('../legacy/jwt');
const { parse_args, load_pg } = require('../lib/cli');

function mint(secret, user, { exp_in = 3600, expired = false, forged = false, alg_none = false, no_sub = false } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = {};
  if (!no_sub) payload.sub = user;
  payload.iat = now;
  payload.exp = expired ? now - 60 : now + exp_in;
  return jwt.sign(payload, secret, { alg: alg_none ? 'none' : 'HS256', forged });
}

async function main() {
  const args = parse_args(process.argv.slice(2));
  const secret = typeof args.secret === 'string' ? args.secret : process.env.JWT_SECRET;
  if (!secret) { console.error('mint: --secret (or JWT_SECRET) is required'); process.exit(2); }
  const opts = {
    exp_in: Number(args['exp-in'] ?? 3600),
    expired: !!args.expired,
    forged: !!args.forged,
    alg_none: !!args['alg-none'],
    no_sub: !!args['no-sub'],
  };
  if (args.all) {
    const url = args['database-url'] || process.env.DATABASE_URL;
    if (!url) { console.error('mint: --all needs --database-url (or DATABASE_URL)'); process.exit(2); }
    const { Client } = load_pg();
    const client = new Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query('SELECT id FROM users WHERE is_active ORDER BY id');
    await client.end();
    const lines = rows.map((r) => `${r.id}\t${mint(secret, r.id, opts)}`);
    process.stdout.write(lines.join('\n') + (lines.length ? '\n' : ''));
    return;
  }
  if (typeof args.user !== 'string' && !opts.no_sub) { console.error('mint: --user UUID is required'); process.exit(2); }
  process.stdout.write(mint(secret, args.user, opts) + '\n');
}

if (require.main === module) main().catch((e) => { console.error(`mint: ${e.message}`); process.exit(1); });
module.exports = { mint };
