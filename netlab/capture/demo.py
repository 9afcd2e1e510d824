"""`netlab capture --demo`: a whole chat, captured and explained, in one command.

A chat server on a free loopback port, a capture on it, two scripted clients (join, chat,
a private /msg, leave), then the story, the ladder and a saved pcap. Without the right to
capture, the same analysis of the sample capture shipped with netlab (made by this demo).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path

from netlab.capture.pcapio import PcapWriter
from netlab.capture.session import (
    CaptureOptions,
    Pipeline,
    Presenter,
    announce,
    finish_live,
    run_read,
)
from netlab.chat.protocol import LineFramer, LineTooLong
from netlab.env import Environment

WAIT = 5.0  # the longest the demo waits for any one reply


class ScriptedClient:
    """A chat client that follows a script: real socket, the protocol's framer, timeouts."""

    def __init__(self, host: str, port: int, timeout: float = WAIT) -> None:
        from netlab.diagnose.catalog import socket_problem

        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise socket_problem(exc, "connect", host, port) from exc
        self.framer = LineFramer()
        self.lines: list[str] = []
        self.closed = False

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\n")

    def expect(self, wanted: Callable[[str], bool], timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            while self.lines:
                line = self.lines.pop(0)
                if wanted(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise TimeoutError("the chat server did not answer as expected")
            self.sock.settimeout(left)
            data = self.sock.recv(4096)
            if not data:
                self.closed = True
            for item in self.framer.feed(data):
                if not isinstance(item, LineTooLong):
                    self.lines.append(item.decode("utf-8", "replace"))

    def wait_closed(self, timeout: float = WAIT) -> None:
        """Read until the server closes (recv() returns b''), then close our side."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not self.sock.recv(4096):
                self.closed = True
        self.sock.close()

    def join(self, nick: str) -> ScriptedClient:
        self.expect(lambda line: line == "NICK")
        self.send(nick)
        self.expect(lambda line: line == f"*** {nick} joined")
        return self


def chat_script(host: str, port: int, pause: float = 0.02) -> None:
    """Alice and Bob join, talk, whisper and leave; each step waits for the server's echo,
    so the capture tells the story in the same order every time."""
    alice = ScriptedClient(host, port).join("alice")
    time.sleep(pause)  # small gaps make the ladder's time column readable
    bob = ScriptedClient(host, port).join("bob")
    alice.expect(lambda line: line == "*** bob joined")
    time.sleep(pause)
    alice.send("hi bob, welcome!")
    bob.expect(lambda line: line == "alice: hi bob, welcome!")
    alice.expect(lambda line: line == "alice: hi bob, welcome!")
    time.sleep(pause)
    bob.send("/msg alice this one is just for you")
    alice.expect(lambda line: line.startswith("[pm] bob -> alice"))
    bob.expect(lambda line: line.startswith("[pm] bob -> alice"))
    time.sleep(pause)
    bob.send("/quit")
    bob.wait_closed()
    alice.expect(lambda line: line.startswith("*** bob left"))
    alice.send("/quit")
    alice.wait_closed()


def sample_capture() -> Path:
    return Path(str(resources.files("netlab.capture").joinpath("data/sample-chat.pcap")))


def default_pcap_name(now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(f"netlab-demo-{stamp}.pcap")


def run_demo(env: Environment, opts: CaptureOptions) -> int:
    from netlab.capture.sniffer import CaptureNotPermitted, check_capture_right

    opts.title = opts.title or "netlab demo: a TCP chat on loopback"
    try:
        check_capture_right()
    except CaptureNotPermitted as exc:
        presenter = Presenter(env, opts)
        presenter.say(f"netlab: {exc.message}")
        if exc.hint:
            presenter.say(f"  fix: {exc.hint}")
        sample = sample_capture()
        presenter.say(f"showing the sample capture that ships with netlab instead: {sample}")
        opts.read = sample
        return run_read(env, opts, sample)
    return _live_demo(env, opts)


def _live_demo(env: Environment, opts: CaptureOptions) -> int:
    from netlab.capture.sniffer import LiveCapture, choose_interface
    from netlab.chat.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0))
    host, port = server.bind()
    opts.host, opts.port = host, port
    path = opts.write or default_pcap_name()
    presenter = Presenter(env, opts)
    writer = PcapWriter(path)
    pipeline = Pipeline(presenter, opts, writer)
    iface, addresses = choose_interface(host, opts.iface)
    capture = LiveCapture(iface=iface, port=port, addresses=addresses, on_frame=pipeline.frame)
    reason = "stopped"
    server.start()
    try:
        capture.start()
        presenter.say(f"demo: chat server listening on {host}:{port}")
        announce(presenter, capture, opts)
        try:
            chat_script(host, port)
            _wait_for_close(pipeline, streams=2, timeout=2.0)
        except KeyboardInterrupt:
            reason = "interrupted"
        except (OSError, TimeoutError) as exc:
            presenter.say(f"demo: a scripted client failed ({exc}); showing what was captured")
    finally:
        capture.stop()
        server.stop()
    finish_live(presenter, pipeline, capture, reason)
    if not opts.write:
        presenter.say(f"the demo's capture is in {path.resolve()}: wireshark {path}")
    return 0


def _wait_for_close(pipeline: Pipeline, streams: int, timeout: float) -> None:
    """The last ACK of each close comes a moment after the client's socket is closed."""
    deadline = time.monotonic() + timeout
    while len(pipeline.closed_streams) < streams and time.monotonic() < deadline:
        time.sleep(0.01)

