"""Exercise 0: a chat client that speaks lesson 0's protocol.

Run it:    python my_client.py 127.0.0.1 55555      (against `netlab serve`)
Check it:  netlab check 0 -- python my_client.py {host} {port}

What the check does: it is the server. It sends NICK in small pieces, several lines in one
packet, and a line cut inside a UTF-8 character. It types your nickname and one message
on your program's stdin. Your client must answer NICK with the nickname line, send each
typed line with a "\\n", and print every line the server sends, whole.

This starter is the classic tutorial client: it compares one recv() with "NICK" and sends
without newlines. Fix it (lessons 0, 3 and 4).
"""

import os
import socket
import sys
import threading

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))

nickname = input("nickname: ")
client = socket.create_connection((host, port))


def receive() -> None:
    while True:
        message = client.recv(1024).decode("ascii")      # TODO: one recv() is not one line
        if message == "NICK":                             # TODO: the server sends NICK\r\n
            client.send(nickname.encode("ascii"))         # TODO: a line ends with \n
        else:
            print(message)


threading.Thread(target=receive, daemon=True).start()
for line in sys.stdin:
    client.send(line.strip().encode("ascii"))             # TODO: send the \n, and UTF-8
