"""NOT A SERVER: how long one process takes to send one line to N loopback clients.

The floor under the 1,000-client latency row: a bare loop of `send()` calls, one per
client, nothing else (no room, no framing, no bookkeeping). A child process holds the
clients and drains them 50 times a second, as the benchmark's sinks do.

Usage: python benchmarks/fanout_floor.py [CLIENTS] [LINES]   (1000 and 400 by default;
Linux and macOS: it forks). Prints the median, 90th percentile and fastest fan-out.
"""

import contextlib
import os
import selectors
import socket
import statistics
import sys
import time

clients = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
lines = int(sys.argv[2]) if len(sys.argv) > 2 else 400

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(clients)
ready_r, ready_w = os.pipe()
child = os.fork()
if child == 0:
    socks = [socket.create_connection(listener.getsockname()) for _ in range(clients)]
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    os.write(ready_w, b"x")
    end = time.monotonic() + 60
    while time.monotonic() < end:
        for key, _ in sel.select(0.05):
            with contextlib.suppress(OSError):
                key.fileobj.recv(262144)
        time.sleep(0.02)
    os._exit(0)

try:
    os.read(ready_r, 1)
    sends = []
    for _ in range(clients):
        s, _ = listener.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sends.append(s.send)
    line = b"x" * 99 + b"\n"
    took = []
    for _ in range(lines):
        t = time.perf_counter()
        for send in sends:
            send(line)
        took.append(time.perf_counter() - t)
        time.sleep(0.005)  # 200 lines a second
    took.sort()
    print(f"{clients} clients, one line each: median {statistics.median(took) * 1e3:.2f} ms, "
          f"p90 {took[int(0.9 * len(took))] * 1e3:.2f} ms, fastest {took[0] * 1e3:.2f} ms")
finally:
    os.kill(child, 9)
    os.waitpid(child, 0)
