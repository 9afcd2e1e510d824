"""The scripted peers: real sockets on loopback that misbehave on purpose, every wait bounded.

For a client exercise netlab is the server (Listener, then PeerConn from accept); for a
server exercise netlab is the clients (connect(), then PeerConn). Framing is the chat's own
LineFramer: the checks read the stream exactly as netlab's server and client do.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from netlab.chat.protocol import LineFramer, LineTooLong, clean_text
from netlab.errors import ExitStatus, NetlabError

LOOPBACK = "127.0.0.1"
GAP = 0.02  # between tiny segments: long enough that loopback delivers each on its own


class PeerCannotBind(NetlabError):
    exit_code = ExitStatus.FAILED


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Line:
    raw: bytes
    too_long: bool = False

    @property
    def text(self) -> str:
        return clean_text(self.raw)


class PeerConn:
    """One connection, framed into lines; send helpers that cut the bytes on purpose."""

    def __init__(self, sock: socket.socket, max_line: int = 65536) -> None:
        self.sock = sock
        self.framer = LineFramer(max_line)
        self.lines: list[Line] = []  # received, not yet consumed
        self.history: list[Line] = []
        self.eof = False  # the other side closed (b'') or reset
        self.reset_seen = False
        self.bytes_in = 0
        with contextlib.suppress(OSError):
            # Each send() its own segment: that is what lets "one byte at a time" arrive so.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ------------------------------------------------------------------ sending
    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def send_tiny(self, data: bytes, size: int = 1, gap: float = GAP) -> bool:
        """`size` bytes per send with a pause: the stream arrives in many recv()s."""
        for start in range(0, len(data), size):
            if not self.send(data[start:start + size]):
                return False
            time.sleep(gap)  # the point is the pause itself: there is nothing to wait for
        return True

    def send_split(self, data: bytes, cuts: list[int], gap: float = GAP) -> bool:
        """Send in pieces cut at these offsets (e.g. inside a UTF-8 character)."""
        bounds = [0, *cuts, len(data)]
        for a, b in itertools.pairwise(bounds):
            if not self.send(data[a:b]):
                return False
            time.sleep(gap)
        return True

    def shutdown_write(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER on, 0 s): what a crash looks like."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    # ------------------------------------------------------------------ receiving
    def pump(self, timeout: float) -> bool:
        """One recv() (waiting at most timeout); False when nothing came or the end came."""
        if self.eof:
            return False
        try:
            self.sock.settimeout(max(timeout, 0.0001))
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except BlockingIOError:
            return False
        except ConnectionResetError:
            self.eof = self.reset_seen = True
            return False
        except OSError:
            self.eof = True
            return False
        if not data:
            self.eof = True
            return False
        self.take(data)
        return True

    def take(self, data: bytes) -> None:
        self.bytes_in += len(data)
        for item in self.framer.feed(data):
            line = Line(b"", True) if isinstance(item, LineTooLong) else Line(item)
            self.lines.append(line)
            self.history.append(line)

    def next_line(self, timeout: float) -> Line | None:
        deadline = time.monotonic() + timeout
        while not self.lines:
            left = deadline - time.monotonic()
            if (left <= 0 or not self.pump(left)) and not self.lines and (
                    self.eof or time.monotonic() >= deadline):
                return None
        return self.lines.pop(0)

    def expect(self, match: Callable[[str], bool], timeout: float) -> tuple[str | None, list[str]]:
        """Consume lines until one matches: (the line or None, every line seen on the way)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(deadline - time.monotonic())
            if line is None:
                return None, seen
            text = "<line over the limit>" if line.too_long else line.text
            seen.append(text)
            if not line.too_long and match(text):
                return text, seen

    def wait_eof(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())
        return self.eof


class Listener:
    """netlab as the server of a client exercise: a loopback socket on a free port."""

    def __init__(self, host: str = LOOPBACK, backlog: int = 16) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.sock.bind((host, 0))
            self.sock.listen(backlog)
        except OSError as exc:
            self.sock.close()
            raise PeerCannotBind(f"the check cannot listen on {host}: {exc}") from None
        self.host = host
        self.port = int(self.sock.getsockname()[1])

    def accept(self, timeout: float) -> PeerConn | None:
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return None
        conn.settimeout(None)
        return PeerConn(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def connect(host: str, port: int, timeout: float, max_line: int = 65536,
            rcvbuf: int | None = None) -> PeerConn | None:
    """netlab as a client of the student's server. Retries a refusal until timeout: a
    server may print its `listening on` line a moment before it calls listen()."""
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect(), so the window we announce in the handshake is small.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            sock.connect((host, port))
            sock.settimeout(None)
            return PeerConn(sock, max_line)
        except ConnectionRefusedError:
            sock.close()
            if time.monotonic() + 0.05 >= deadline:
                return None
            time.sleep(0.05)  # nothing to wait on: a refusal is the only answer we get
        except OSError:
            sock.close()
            return None


class ChatPeer(PeerConn):
    """A client of the student's chat server, speaking lesson 0's protocol."""

    nick = ""

    def join(self, nick: str, timeout: float) -> tuple[bool, str]:
        """(joined, what happened). Joined means: NICK came, we answered, `*** nick joined`
        came back (the protocol sends it to everyone, the newcomer included)."""
        self.nick = nick
        prompt, seen = self.expect(lambda t: t.strip() == "NICK", timeout)
        if prompt is None:
            pending = self.framer.pending
            if pending.strip() == b"NICK":
                return False, "the server sent NICK without a newline (lesson 0: \\r\\n)"
            closed = ", then the connection closed" if self.eof else ""
            return False, f"no NICK line (got {_shown(seen)}{closed})"
        if not self.send(nick.encode() + b"\n"):
            return False, "the connection broke while sending the nickname"
        done, seen = self.expect(lambda t: t.strip() == f"*** {nick} joined", timeout)
        if done is None:
            return False, f"no `*** {nick} joined` after the nickname (got {_shown(seen)})"
        return True, "joined"

    def say(self, text: str) -> bool:
        return self.send(text.encode("utf-8") + b"\n")


def chat_connect(host: str, port: int, timeout: float, **kw: int) -> ChatPeer | None:
    conn = connect(host, port, timeout, **kw)
    if conn is None:
        return None
    peer = ChatPeer(conn.sock, conn.framer.max_line)
    return peer


def _shown(seen: list[str]) -> str:
    if not seen:
        return "nothing"
    return ", ".join(repr(s[:60]) for s in seen[-3:])
