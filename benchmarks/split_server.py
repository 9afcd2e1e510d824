"""NOT A CHAT SERVER: the 1,000-client fan-out split over two processes, as a reference.

A line to 1,000 clients is 1,000 `send()` calls, and on loopback each one also runs the
receiving side of TCP: milliseconds of kernel time that one Python process spends on one
core. This server asks whether the latency row is within reach when that work is shared
by two cores. Two processes accept from one listening socket; each sends the lines of its
own clients to them and passes them to the other process over a socketpair, which sends
them to its clients. No bounds, no framing limits, no commands, no join notices: only the
NICK handshake and the relay, with TCP_NODELAY. Linux and macOS (it forks).

Usage: python benchmarks/split_server.py [PORT] [PROCESSES]   (0 picks a free port;
prints "listening on 127.0.0.1:PORT" first, for the benchmark script; 2 processes).
"""

import os
import selectors
import socket
import sys

host = "127.0.0.1"
port = int(sys.argv[1]) if len(sys.argv) > 1 else 55555
processes = int(sys.argv[2]) if len(sys.argv) > 2 else 2

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen(1024)
listener.setblocking(False)
print(f"listening on {host}:{listener.getsockname()[1]}", flush=True)

inboxes = [socket.socketpair() for _ in range(processes)]  # [i][1]: process i reads
me = 0
for i in range(1, processes):
    if os.fork() == 0:
        me = i
        break
inbox = inboxes[me][1]
peers = [inboxes[j][0] for j in range(processes) if j != me]

sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ)
sel.register(inbox, selectors.EVENT_READ)
nicks: dict[socket.socket, bytes] = {}
partial: dict[socket.socket, bytes] = {}
members: list[socket.socket] = []


def fan_out(data: bytes) -> None:
    for client in members:
        try:  # noqa: SIM105 - suppress() costs more, once per client per line
            client.send(data)  # a client whose buffer is full loses the line: no bounds
        except OSError:
            pass


def leave(client: socket.socket) -> None:
    sel.unregister(client)
    client.close()
    nicks.pop(client, None)
    partial.pop(client, None)
    if client in members:
        members.remove(client)


while True:
    lines = []
    for key, _ in sel.select():
        sock = key.fileobj
        if sock is listener:
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                continue  # the other process took it
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setblocking(False)
            client.send(b"NICK\n")
            partial[client] = b""
            sel.register(client, selectors.EVENT_READ)
        elif sock is inbox:
            data = inbox.recv(1 << 20)
            if data:
                fan_out(data)
        else:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                leave(sock)
                continue
            *complete, partial[sock] = (partial[sock] + data).split(b"\n")
            for line in complete:
                if sock in nicks:
                    lines.append(nicks[sock] + b": " + line + b"\n")
                else:
                    nicks[sock] = line.strip()
                    sock.send(b"*** Welcome, " + nicks[sock] + b"!\n")
                    members.append(sock)
    if lines:
        data = b"".join(lines)
        for peer in peers:
            peer.sendall(data)
        fan_out(data)
