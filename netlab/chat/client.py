"""The chat client: a thin socket shell around protocol.ClientReader.

Two faces: a terminal one (prompt_toolkit keeps the half-typed line intact while messages
arrive) and a plain line filter for pipes, scripts and terminals prompt_toolkit can't drive.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netlab.chat import protocol as p
from netlab.diagnose.catalog import socket_problem
from netlab.errors import ExitStatus

_IDLE_FLUSH = 0.3  # seconds of silence before an unfinished line is shown anyway


@dataclass
class Session:
    """What the reader thread learned, for the thread that talks to the person."""

    nick: str | None = None
    nick_sent: bool = False
    nick_wanted: threading.Event = field(default_factory=threading.Event)
    prompted: threading.Event = field(default_factory=threading.Event)  # first NICK seen
    closed: threading.Event = field(default_factory=threading.Event)
    quitting: bool = False
    shutdown_seen: bool = False
    error: str | None = None


class ChatClient:
    def __init__(
        self,
        host: str,
        port: int,
        nick: str | None,
        show: Callable[[str], None],
        connect_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.show = show
        self.connect_timeout = connect_timeout
        self.session = Session(nick=nick)
        self.sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.on_close: Callable[[], None] | None = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        try:
            # create_connection tries every address the name resolves to (IPv6 and IPv4).
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise socket_problem(exc, "connect", self.host, self.port) from None
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_IDLE_FLUSH)
        self.sock = sock
        self._reader = threading.Thread(target=self._read_loop, name="netlab-chat-reader",
                                        daemon=True)
        self._reader.start()

    def send_line(self, text: str) -> bool:
        if self.sock is None or self.session.closed.is_set():
            return False
        data = text.encode("utf-8", "replace") + b"\n"
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as exc:
            # A reset reported here is reported once: the reader then only sees the end.
            self._failed(str(socket_problem(exc, "send", self.host, self.port)))
            return False
        return True

    def _failed(self, why: str) -> None:
        """The first thing that went wrong before the person chose to leave."""
        if not self.session.quitting and self.session.error is None:
            self.session.error = why

    def send_nick(self, nick: str) -> None:
        self.session.nick = nick
        self.session.nick_sent = True
        self.session.nick_wanted.clear()
        self.send_line(nick)

    def quit(self, wait: float = 2.0) -> None:
        """Say /quit and give the server a moment to confirm before closing."""
        self.session.quitting = True
        if self.send_line("/quit"):
            self.session.closed.wait(wait)
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.session.closed.set()

    def exit_status(self) -> int:
        """FAILED when the connection broke before the person chose to leave (errors after
        a /quit, Ctrl-C or end of input are not recorded) and the server did not say it
        was shutting down."""
        s = self.session
        if s.error is None or s.shutdown_seen:
            return ExitStatus.OK
        return ExitStatus.FAILED

    # ------------------------------------------------------------------ reading
    def _read_loop(self) -> None:
        reader = p.ClientReader()
        sock = self.sock
        assert sock is not None
        s = self.session
        try:
            while True:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    for line in reader.flush():
                        self._item(line)  # "Enter nickname: " waits without a newline
                    continue
                if not data:
                    for line in reader.flush():
                        self._item(line)
                    if not s.shutdown_seen:
                        self._failed("the server closed the connection")
                    break
                for item in reader.feed(data):
                    self._item(item)
        except OSError as exc:
            self._failed(str(socket_problem(exc, "recv", self.host, self.port)))
        finally:
            s.closed.set()
            s.nick_wanted.set()  # release anyone waiting for a prompt
            s.prompted.set()
            if self.on_close is not None:
                with contextlib.suppress(Exception):
                    self.on_close()

    def _item(self, item: str | p.NickPrompt) -> None:
        if isinstance(item, p.NickPrompt):
            self._nick_prompt()
            return
        self._show(item)
        if not self.session.prompted.is_set() and "nick" in item.lower():
            self._nick_prompt()  # a server of its own words: "Enter nickname:", "nick?"

    def send_nick_unasked(self, wait: float) -> None:
        """A server that never asks takes the first line as the nickname: after `wait`
        seconds without a prompt, send --nick anyway (else it would never be sent)."""
        s = self.session
        if not s.prompted.wait(wait) and s.nick and not s.nick_sent and not s.closed.is_set():
            self.send_nick(s.nick)
            s.prompted.set()

    def _nick_prompt(self) -> None:
        s = self.session
        if s.nick and not s.nick_sent:
            self.send_nick(s.nick)
        else:
            s.nick_sent = False
            s.nick_wanted.set()
        s.prompted.set()  # after answering: nothing typed may overtake the nickname

    def _show(self, line: str) -> None:
        if line == "*** server shutdown":
            self.session.shutdown_seen = True
        self.show(line)


# ---------------------------------------------------------------------------------------
# Line mode: pipes, scripts, dumb terminals.


def run_line_mode(client: ChatClient, lines: Iterable[str], nick_timeout: float = 5.0) -> int:
    """Without a nickname, the first input line is the nickname. End of input quits.

    Input is read by a helper thread, so a server that goes away is noticed at once even
    while nobody types.
    """
    s = client.session
    inbox: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        with contextlib.suppress(Exception):
            for raw in lines:
                inbox.put(raw.rstrip("\r\n"))
        inbox.put(None)

    threading.Thread(target=pump, name="netlab-chat-input", daemon=True).start()

    def next_line() -> str | None:
        while not s.closed.is_set():
            try:
                return inbox.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    # Wait for the server's NICK before sending anything, as a person would: a line sent
    # earlier would be taken as the nickname. Servers that never ask are waited for only
    # up to nick_timeout; then --nick goes first.
    client.send_nick_unasked(nick_timeout)
    while True:
        line = next_line()
        if line is None:
            break
        if s.nick_wanted.is_set() or (s.nick is None and not s.nick_sent):
            client.send_nick(line)  # the first line, or the next try after a refusal
            continue
        leaving = line.strip().lower() == "/quit"
        s.quitting = s.quitting or leaving  # before the send: the server closes at once
        if not client.send_line(line):
            break  # the connection is gone: no /quit to say
        if leaving:
            s.closed.wait(2.0)
            break
    if not s.closed.is_set() and s.error is None:
        client.quit()  # end of input
    client.close()
    return client.exit_status()


# ---------------------------------------------------------------------------------------
# Terminal mode: prompt_toolkit.

_PALETTE = ("ansicyan", "ansigreen", "ansiyellow", "ansimagenta", "ansiblue", "ansired",
            "ansibrightcyan", "ansibrightgreen", "ansibrightmagenta", "ansibrightblue")


def nick_colour(nick: str) -> str:
    """The same nickname gets the same colour in every client (a stable hash)."""
    return _PALETTE[zlib.crc32(nick.casefold().encode("utf-8")) % len(_PALETTE)]


def styled(line: str) -> list[tuple[str, str]]:
    """prompt_toolkit fragments for one received line."""
    if line.startswith("*** "):
        return [("ansibrightblack", line)]
    if line.startswith("! "):
        return [("ansired bold", line)]
    if line.startswith("[pm] "):
        return [("ansimagenta", line)]
    if line.startswith("* "):
        return [("italic", line)]
    nick, sep, text = line.partition(": ")
    if sep and nick and " " not in nick:
        return [(nick_colour(nick) + " bold", nick), ("", sep + text)]
    return [("", line)]


def make_terminal_ui() -> tuple[Any, Callable[[str], None]] | None:
    """A prompt session and a thread-safe printer, or None where prompt_toolkit can't run
    (Git Bash/mintty on Windows, a dumb terminal): the caller falls back to line mode."""
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.formatted_text import FormattedText
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.shortcuts import print_formatted_text

        session: Any = PromptSession(history=InMemoryHistory())
    except Exception:
        return None

    def show(line: str) -> None:
        print_formatted_text(FormattedText(styled(line)))

    return session, show


def run_terminal(client: ChatClient, session: Any) -> int:
    from prompt_toolkit.patch_stdout import patch_stdout

    s = client.session

    def leave_prompt() -> None:
        # Called from the reader thread when the server goes away: end the prompt that is
        # waiting for the person's Enter, on prompt_toolkit's own event loop.
        app = session.app
        if app.is_running:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=EOFError()))

    client.on_close = leave_prompt
    threading.Thread(target=client.send_nick_unasked, args=(5.0,), daemon=True,
                     name="netlab-chat-nick").start()

    def message() -> str:
        wanted = s.nick_wanted.is_set() and not s.closed.is_set()
        return "nickname> " if wanted else f"{s.nick or ''}> "

    with patch_stdout(raw=True):
        while not s.closed.is_set():
            try:
                line = session.prompt(message, refresh_interval=0.5)
            except (KeyboardInterrupt, EOFError):
                if not s.closed.is_set():
                    client.quit()
                break
            if s.closed.is_set():
                break
            if s.nick_wanted.is_set():
                client.send_nick(line.strip())
                continue
            if not line.strip():
                continue
            leaving = line.strip().lower() == "/quit"
            s.quitting = s.quitting or leaving  # before the send: the server closes at once
            client.send_line(line)
            if leaving:
                s.closed.wait(2.0)
                break
    client.close()
    return client.exit_status()
