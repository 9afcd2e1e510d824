"""Wrong for exercise 2: no traceback, but one message for every kind of failure."""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
try:
    socket.create_connection((host, port),
                             timeout=float(os.environ.get("NETLAB_CONNECT_TIMEOUT", "5")))
except OSError as exc:
    print(f"could not connect to {host}:{port}: {exc}")
    sys.exit(1)
