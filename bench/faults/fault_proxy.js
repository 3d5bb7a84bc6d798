#!/usr/bin/env node
// A TCP proxy in front of the legacy stand-in for bench/faults/run, whose
// behaviour a control port switches, so that the legacy can fail the ways a
// real backend does while sidecache stays pointed at one address:
//
//   node bench/faults/fault_proxy.js --target PORT
//
// Prints `listening <port> <control port>` as its first stdout line (both on
// 127.0.0.1, chosen by the kernel). POST /mode/<m> on the control port:
//   pass    relay bytes both ways (the start)
//   reset   every connection, open or new, is reset (RST) at once
//   down    the listening socket is closed (connections refused) and open
//           connections are reset; `pass` listens again on the same port
'use strict';

const net = require('node:net');
const http = require('node:http');
const { parse_args } = require('../../test/lib/cli');

const args = parse_args(process.argv.slice(2));
const target = Number(args.target);
if (!target) { console.error('fault_proxy: --target PORT is required'); process.exit(2); }

let mode = 'pass';
let port = 0;
const open = new Set();

function reset_all() {
  for (const s of open) s.resetAndDestroy();
  open.clear();
}

function relay(client) {
  if (mode !== 'pass') { client.resetAndDestroy(); return; }
  const up = net.connect(target, '127.0.0.1');
  open.add(client);
  open.add(up);
  const end = () => { open.delete(client); open.delete(up); };
  client.on('close', end);
  up.on('close', end);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
  client.pipe(up);
  up.pipe(client);
}

let server = null;
function listen(done) {
  server = net.createServer(relay);
  server.listen(port, '127.0.0.1', () => { port = server.address().port; done(); });
}

const control = http.createServer((req, res) => {
  const m = /^\/mode\/(pass|reset|down)$/.exec(req.url);
  if (req.method !== 'POST' || !m) { res.writeHead(404); res.end('POST /mode/pass|reset|down\n'); return; }
  const next = m[1];
  const answer = () => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end(`${next}\n`); };
  if (next !== 'pass') reset_all();
  if (next === 'down' && server) {
    const s = server;
    server = null;
    mode = next;
    s.close(answer);
    return;
  }
  mode = next;
  if (!server) listen(answer); else answer();
});

listen(() => control.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${port} ${control.address().port}\n`);
}));
