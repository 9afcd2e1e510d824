"""Exercises 4-7: your chat server (lesson 0's protocol), made robust one lesson at a time.

Run it:    python chat_server.py 127.0.0.1 55555   then   netlab chat --port 55555
Check it:  netlab check 4 -- python chat_server.py {host} {port}     (and 5, 6, 7)

This starter is the classic tutorial server. Each check finds what its lesson fixes:
  4  a line buffer: frame on \\n, strip \\r, decode UTF-8 with errors="replace", 4096-byte limit
  5  b'', ConnectionResetError, BrokenPipeError, ConnectionAbortedError = "this client left"
     (announce `*** NICK left (REASON)` once, close the socket); stop cleanly on Ctrl-C
  6  a lock, and a broadcast that never blocks on a client that does not read
  7  SO_REUSEADDR (SO_EXCLUSIVEADDRUSE on Windows) before bind(); one clear line for
     EADDRINUSE and EACCES that names the port and suggests `netlab diagnose --port PORT`
"""

import os
import socket
import sys
import threading

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind((host, port))
server.listen()
print(f"listening on {host}:{port}", flush=True)
clients = []
nicknames = []


def broadcast(message: bytes) -> None:
    for client in clients:
        client.send(message)                        # blocks on a client that does not read


def handle(client: socket.socket) -> None:
    while True:
        message = client.recv(1024)                 # a chunk, not a line; b'' never checked
        broadcast(nicknames[clients.index(client)].encode() + b": " + message)


while True:
    client, address = server.accept()
    client.send(b"NICK\r\n")
    nickname = client.recv(1024).decode("ascii").strip()   # one recv() is not one line
    nicknames.append(nickname)
    clients.append(client)
    broadcast(f"*** {nickname} joined\r\n".encode())
    threading.Thread(target=handle, args=(client,)).start()
