"""NOT A CHAT SERVER: the least a server can do per churn round, as a reference figure.

One connection at a time, blocking sockets, no threads, no room, no log: send the NICK
prompt, read the nickname, send a welcome that names it, wait for the client to go. It
answers one question only: how many connect-and-leave rounds a second can the load
generator drive on this machine when the server side costs next to nothing? The
sequential churn row of benchmarks/run.py is read against it.

Usage: python benchmarks/bare_server.py [PORT]   (0 picks a free port; prints
"listening on 127.0.0.1:PORT" first, for the benchmark script).
"""

import socket
import sys

host = "127.0.0.1"
port = int(sys.argv[1]) if len(sys.argv) > 1 else 55555

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen(128)
print(f"listening on {host}:{listener.getsockname()[1]}", flush=True)

while True:
    conn, _ = listener.accept()
    conn.settimeout(5.0)  # a client that never answers costs one round, not the server
    try:
        conn.sendall(b"NICK\n")
        nick = conn.recv(1024).strip()
        conn.sendall(b"*** Welcome, " + nick + b"!\n")
        while conn.recv(1024):
            pass
    except OSError:
        pass
    finally:
        conn.close()
