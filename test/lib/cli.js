// Helpers shared by the Node test scripts (test/data, test/legacy, test/mocks).
'use strict';

const path = require('node:path');

// `--name value`, `--name=value` and bare `--flag` (true) into an object keyed by name.
function parse_args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument: ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) { out[a.slice(2, eq)] = a.slice(eq + 1); continue; }
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
    else { out[a.slice(2)] = next; i++; }
  }
  return out;
}

// mulberry32: a tiny seeded PRNG (floats in [0, 1)), so data and faults are reproducible.
function make_prng(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The `pg` package installed under test/ (npm ci --prefix test), whoever requires it.
const load_pg = () => require(require.resolve('pg', { paths: [path.join(__dirname, '..')] }));

module.exports = { parse_args, make_prng, load_pg };
