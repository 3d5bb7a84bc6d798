#!/usr/bin/env node
// The herd's upstream: answers any GET after DELAY_MS (default 200) with a
// small JSON body naming the token's user, and counts the requests per
// Authorization header. `GET /__count?auth=<header value>` on CONTROL_PORT
// (a second listener no cache sits in front of) returns that count.
//   PORT=... CONTROL_PORT=... DELAY_MS=200 node bench/herd/upstream.js
'use strict';
const http = require('node:http');

const delay = Number(process.env.DELAY_MS ?? 200);
const counts = new Map();

http.createServer((req, res) => {
  const auth = req.headers.authorization ?? '';
  counts.set(auth, (counts.get(auth) ?? 0) + 1);
  setTimeout(() => {
    const body = JSON.stringify({ success: true, data: { auth: auth.slice(-16), url: req.url } });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }, delay);
}).listen(Number(process.env.PORT), '127.0.0.1');

http.createServer((req, res) => {
  const auth = new URL(req.url, 'http://x').searchParams.get('auth') ?? '';
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(String(counts.get(auth) ?? 0));
}).listen(Number(process.env.CONTROL_PORT), '127.0.0.1');
