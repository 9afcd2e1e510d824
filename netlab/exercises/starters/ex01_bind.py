"""Exercise 1: a server that binds the address it is given.

Run it:    python my_server.py 127.0.0.1 55555
Check it:  netlab check 1 -- python my_server.py {host} {port}

It must bind HOST:PORT from the command line, print `listening on HOST:PORT`, and accept
connections. For an address this machine does not have, it must print one line that says
which address failed and why (e.g. `cannot bind 192.0.2.10:55555: ...`), not a traceback.
"""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind((host, port))                 # TODO: what if this machine has no such address?
server.listen()
print(f"listening on {host}:{port}", flush=True)
while True:
    conn, addr = server.accept()
    conn.sendall(b"hello\r\n")
    conn.close()
