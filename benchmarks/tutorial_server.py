"""DELIBERATELY NAIVE: the classic tutorial thread-per-client chat server, flaws kept.

This is the baseline of benchmarks/run.py, written the way most chat tutorials write it,
so that the benchmark measures what students actually start from. Do NOT copy it. Its
flaws, each measured in /work/shared/notes/server-facts.md and lesson 6:
- the nickname handshake runs inside the accept loop: one silent client blocks all joins,
  and a reset connection or a non-ASCII nickname kills the accept loop;
- `broadcast()` calls a blocking `sendall()` for every client in turn: one client that
  stops reading freezes every sender (and the accept loop, which broadcasts joins);
- raw `recv(1024)` chunks are relayed, never framed: lines from different senders
  interleave; `recv()` returning b'' is not treated as a disconnect (the thread spins);
- the shared lists have no lock, no TCP_NODELAY (Nagle + delayed ACK: ~40 ms), the listen
  backlog is Python's default.

Usage: python benchmarks/tutorial_server.py [PORT] [--nodelay]   (0 picks a free port;
prints "listening on 127.0.0.1:PORT" first, for the benchmark script). `--nodelay` adds
the one-line fix of lesson 6, TCP_NODELAY on each client, and changes nothing else: the
benchmark's reference for what Nagle's algorithm saves the tutorial server in CPU and
costs it in latency.
"""

import socket
import sys
import threading

host = "127.0.0.1"
port = int(sys.argv[1]) if len(sys.argv) > 1 else 55555
nodelay = "--nodelay" in sys.argv[2:]

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((host, port))
server.listen()

clients = []
nicknames = []


def broadcast(message):
    for client in clients:
        client.sendall(message)


def handle(client):
    while True:
        try:
            message = client.recv(1024)
            broadcast(message)
        except Exception:
            index = clients.index(client)
            clients.remove(client)
            client.close()
            nickname = nicknames[index]
            broadcast(f"{nickname} left!".encode("ascii"))
            nicknames.remove(nickname)
            break


def receive():
    while True:
        client, address = server.accept()  # noqa: RUF059 - as the tutorials write it
        if nodelay:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.send("NICK".encode("ascii"))
        nickname = client.recv(1024).decode("ascii")
        nicknames.append(nickname)
        clients.append(client)
        broadcast(f"{nickname} joined!".encode("ascii"))
        client.send("Connected to server!".encode("ascii"))
        thread = threading.Thread(target=handle, args=(client,))
        thread.daemon = True
        thread.start()


print(f"listening on {host}:{server.getsockname()[1]}", flush=True)
receive()
