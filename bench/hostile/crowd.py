#!/usr/bin/env python3
"""The hostile crowd of bench/hostile/run: N connections to 127.0.0.1:PORT,
all of one kind, held until SIGTERM/SIGINT (or --seconds).

  crowd.py --port P --kind idle|slowloris|slowread --count N [--path /big]
           [--token T] [--seconds S]

  idle       each sends one request (GET PATH with the token), reads the
             answer, then keeps the connection open, silent
  slowloris  each trickles a request head a byte every 0.5 s, reconnecting
             when cut
  slowread   each asks for PATH (a huge answer) and never reads it

Prints "ready <open>" once every connection is open (idle: answered), and
at the end "RESULT opened <n> answered <n> cut <n> refused <n>".
"""
import argparse
import asyncio
import resource
import signal
import socket
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--kind", choices=["idle", "slowloris", "slowread"], required=True)
ap.add_argument("--count", type=int, required=True)
ap.add_argument("--path", default="/api/dashboard/overview")
ap.add_argument("--token", default="")
ap.add_argument("--seconds", type=float, default=3600)
args = ap.parse_args()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

stats = {"opened": 0, "answered": 0, "cut": 0, "refused": 0}
stop = asyncio.Event()


def request(path):
    auth = f"Authorization: Bearer {args.token}\r\n" if args.token else ""
    return f"GET {path} HTTP/1.1\r\nHost: hostile\r\n{auth}\r\n".encode()


async def connect():
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection("127.0.0.1", args.port)
            stats["opened"] += 1
            return r, w
        except OSError:
            stats["refused"] += 1
            await asyncio.sleep(0.5)
    return None, None


async def idle(ready):
    r, w = await connect()
    if not r:
        return
    w.write(request(args.path))
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await r.readexactly(length)
    stats["answered"] += 1
    ready.release()
    await stop.wait()
    w.close()


async def slowloris(ready):
    first = True
    while not stop.is_set():
        r, w = await connect()
        if not r:
            return
        if first:
            ready.release()
            first = False
        head = request("/slowloris") + b"X-Pad: " + b"p" * 200
        try:
            for b in head:
                w.write(bytes([b]))
                await w.drain()
                try:
                    data = await asyncio.wait_for(r.read(1), 0.5)
                    if data or r.at_eof():
                        break  # answered (408) or closed: cut
                except asyncio.TimeoutError:
                    pass
                if stop.is_set():
                    return
        except (ConnectionError, OSError):
            pass
        stats["cut"] += 1
        w.close()


async def slowread(ready):
    r, w = await connect()
    if not r:
        return
    # A small receive buffer and no reads: the answer stalls at once. Whether
    # the server cut it shows on its side (its open descriptors), since its FIN
    # waits behind the unread bytes.
    w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    w.transport.pause_reading()
    w.write(request(args.path))
    ready.release()
    await stop.wait()
    w.transport.abort()


async def main():
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.call_later(args.seconds, stop.set)
    ready = asyncio.Semaphore(0)
    kind = {"idle": idle, "slowloris": slowloris, "slowread": slowread}[args.kind]
    tasks = []
    for i in range(args.count):
        tasks.append(asyncio.create_task(kind(ready)))
        if i % 200 == 199:
            await asyncio.sleep(0)  # let the accepts keep up
    for _ in range(args.count):
        await ready.acquire()
    print(f"ready {stats['opened']}", flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    print("RESULT " + " ".join(f"{k} {v}" for k, v in stats.items()), flush=True)


asyncio.run(main())
