"""Reference for exercise 2: one line per failure, chosen by exception class."""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
timeout = float(os.environ.get("NETLAB_CONNECT_TIMEOUT", "5"))


def connect() -> socket.socket | None:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        print(f"nothing listens on {host}:{port} (refused)")
    except TimeoutError:
        print(f"no answer from {host}:{port} (timeout)")
    except socket.gaierror:
        print(f"unknown host {host}")
    except OSError:
        print(f"{host} is not reachable from here")
    return None


sock = connect()
if sock is None:
    sys.exit(1)
print(f"connected to {host}:{port}")
sock.close()
