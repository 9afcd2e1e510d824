"""Reference for exercise 10: every address of the name, in order; clear name errors."""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "localhost")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
SHOW_GAIERROR = False  # the wrong solution's mistake


def main() -> int:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if SHOW_GAIERROR:
            raise
        if exc.errno == getattr(socket, "EAI_AGAIN", None):
            print(f"cannot look up {host} right now")
        else:
            print(f"unknown host {host}")
        return 1
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(3)
        try:
            sock.connect(address)
        except OSError as exc:
            print(f"{address[0]}: {type(exc).__name__}")
            sock.close()
            continue
        print(f"connected to {address[0]} port {address[1]}")
        sock.close()
        return 0
    print(f"could not connect to any address of {host}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
