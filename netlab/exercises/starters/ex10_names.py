"""Exercise 10: try every address of a name; report name errors.

Check it:  netlab check 10 -- python my_client.py {host} {port}

The check runs your client with `localhost` against a server on ::1 only and one on
127.0.0.1 only, and with a name that does not exist. Your client must:
  - try every address getaddrinfo() returns, in order, until one connects;
  - print `connected to ADDRESS` (the address it reached);
  - print `unknown host NAME` (EAI_NONAME) or `cannot look up NAME right now` (EAI_AGAIN)
    instead of a traceback, and exit.
"""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "localhost")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))

address = socket.gethostbyname(host)       # TODO: IPv4 only, one address, no error handling
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.connect((address, port))
print(f"connected to {address}")
print(sock.recv(1024))
sock.close()
