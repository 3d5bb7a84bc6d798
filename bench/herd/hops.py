#!/usr/bin/env python3
"""Where a herd's time goes, hop by hop, from packets on the loopback.

    hops.py SERVER_PORT UPSTREAM_PORT TOKEN -- herd_client ARGS...

Opens a packet socket on `lo` (root), runs the command (bench/herd's
herd_client), then reads the packets queued meanwhile, each with the
kernel's timestamp of when it was sent, so the capture adds nothing to what
it times. For the herd (the first N requests carrying TOKEN) it prints, in
ms from the herd's first request packet:
  fill out   the cache's request to the upstream leaves   (cache: read, auth, key, start the fill)
  fill back  the upstream's answer arrives                (upstream: its 200 ms and its own overhead)
  first/p50/last answer leaves the cache                  (cache: wake the waiters, write N answers)
and "HOPS fill_out fill_back first p50 last n_answers" for scripts.
"""
import socket
import struct
import subprocess
import sys

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    server_port, upstream_port, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
    command = sys.argv[5:]

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind(("lo", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    sys.stdout.write(out)

    # (time s, sport, dport, payload) of each TCP segment with a payload, as sent.
    packets = []
    sock.setblocking(False)
    while True:
        try:
            data, anc, _, addr = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except BlockingIOError:
            break
        if addr[2] != PACKET_OUTGOING:  # lo shows each packet twice: keep its sending
            continue
        ts = next((struct.unpack("qq", d[:16]) for lvl, typ, d in anc if typ == SO_TIMESTAMPNS), None)
        ip = data[14:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport = struct.unpack("!HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload and ts:
            packets.append((ts[0] + ts[1] / 1e9, sport, dport, payload))
    packets.sort(key=lambda p: p[0])

    requests = [p for p in packets if p[2] == server_port and token in p[3]]
    n = int(command[4]) if len(command) > 4 else 200
    if len(requests) < n:
        sys.exit(f"hops.py: saw {len(requests)} herd requests, expected {n}")
    t0 = requests[0][0]
    t_end = requests[n][0] if len(requests) > n else float("inf")  # the hits round
    to_upstream = [p for p in packets if p[2] == upstream_port and t0 <= p[0] < t_end]
    from_upstream = [p for p in packets if p[1] == upstream_port and to_upstream and to_upstream[0][0] <= p[0] < t_end]
    if not to_upstream or not from_upstream:
        sys.exit("hops.py: no fill seen")
    fill_back = from_upstream[0][0]
    answers = sorted(p[0] for p in packets if p[1] == server_port and fill_back <= p[0] < t_end)
    ms = lambda t: (t - t0) * 1000
    p50 = answers[(len(answers) + 1) // 2 - 1]
    print(f"last herd request packet {ms(requests[n - 1][0]):.3f} ms; fill out {ms(to_upstream[0][0]):.3f} ms;"
          f" fill back {ms(fill_back):.3f} ms; answers: {len(answers)} packets,"
          f" first {ms(answers[0]):.3f} p50 {ms(p50):.3f} last {ms(answers[-1]):.3f} ms")
    print(f"HOPS {ms(to_upstream[0][0]):.3f} {ms(fill_back):.3f} {ms(answers[0]):.3f} {ms(p50):.3f}"
          f" {ms(answers[-1]):.3f} {len(answers)} {ms(requests[n - 1][0]):.3f}")


if __name__ == "__main__":
    main()
