"""Exercise 2: one clear line for each way a connection fails.

Check it:  netlab check 2 -- python my_client.py {host} {port}

The check runs your client against a closed port, a port that never answers and an
unknown name. Print exactly these lines (and exit), not a traceback:
    nothing listens on HOST:PORT (refused)
    no answer from HOST:PORT (timeout)
    HOST is not reachable from here
    unknown host HOST
Use the exception classes (ConnectionRefusedError, TimeoutError, socket.gaierror, ...),
not the message text, which is translated on Windows. Wait at most NETLAB_CONNECT_TIMEOUT
seconds for an answer (the check sets it).
"""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
timeout = float(os.environ.get("NETLAB_CONNECT_TIMEOUT", "5"))

sock = socket.create_connection((host, port), timeout=timeout)   # TODO: catch the failures
print(f"connected to {host}:{port}")
sock.close()
