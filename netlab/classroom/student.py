"""The student's side: prove an exercise to the class server, or hand in a drill answer.

`netlab check NAME --server HOST:PORT` and `netlab check drill` call these. One short chat
session each: NICK, PASS when asked, one command, the one answer line, /quit.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field

from netlab.chat import protocol as p
from netlab.classroom.room import PASS_PROMPT
from netlab.diagnose.catalog import format_address, socket_problem
from netlab.diagnose.hostport import HostPort, parse_host_port
from netlab.errors import NetlabError


@dataclass
class Outcome:
    ok: bool
    message: str  # the server's answer line, or why there was none
    token: str | None = None
    correct: bool | None = None  # drills
    lines: list[str] = field(default_factory=list)  # everything the server said

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "message": self.message, "token": self.token,
                "correct": self.correct}


def parse_server(server: str | HostPort) -> HostPort:
    if isinstance(server, HostPort):
        return server
    return parse_host_port(server, default_port=p.DEFAULT_PORT)


class _Session:
    def __init__(self, server: HostPort, timeout: float) -> None:
        self.server = server
        self.deadline = time.monotonic() + timeout
        self.reader = p.ClientReader()
        self.lines: list[str] = []
        self.pending: list[str | p.NickPrompt] = []
        try:
            self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        except OSError as exc:
            problem = socket_problem(exc, "connect", server.host, server.port)
            if not isinstance(exc, socket.gaierror):  # (for a name: "check the name" stands)
                # The catalog's fix says "start the server first": a student starts nothing.
                where = format_address(server.host, server.port)
                problem.hint = ("the class server is the instructor's `netlab class serve`: "
                                "use the address and port it shows, from the class network; "
                                f"`netlab diagnose --connect {where}` finds what is in the way")
            raise problem from None

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("utf-8") + b"\n")

    def next(self) -> str | p.NickPrompt | None:
        """The next line or prompt; None when the server closed or time ran out."""
        while not self.pending:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                return None
            if not data:
                return None
            self.pending.extend(self.reader.feed(data))
        item = self.pending.pop(0)
        if isinstance(item, str):
            self.lines.append(item)
        return item

    def join(self, nick: str, password: str | None) -> str | None:
        """None when joined, else the reason."""
        asked_nick = False
        while True:
            item = self.next()
            if item is None:
                return self._silence("joining")
            if isinstance(item, p.NickPrompt):
                if asked_nick:
                    errors = [li for li in self.lines if li.startswith("! ")]
                    return errors[-1][2:] if errors else "the nickname was not accepted"
                asked_nick = True
                self.send(nick)
            elif item == PASS_PROMPT:
                if password is None:
                    return "the class server asks for the class password: give --password"
                self.send(password)
            elif item.startswith("*** Welcome,"):
                return None
            elif item.startswith("! ") and not asked_nick:
                return item[2:]  # refused before the handshake: not allowed, server full
            elif item.startswith("! wrong password"):
                return "wrong password"

    def ask(self, command: str, answer_prefix: str) -> tuple[str | None, str | None]:
        """(answer line, None) or (None, error text)."""
        self.send(command)
        while True:
            item = self.next()
            if item is None:
                return None, self._silence(command)
            if isinstance(item, str):
                if item.startswith(answer_prefix):
                    return item, None
                if item.startswith("! "):
                    return None, item[2:]

    def _silence(self, doing: str) -> str:
        return (f"no answer from the class server at {self.server} while {doing}"
                if time.monotonic() < self.deadline else
                f"the class server at {self.server} did not answer in time ({doing})")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("/quit")
        with contextlib.suppress(OSError):
            self.sock.close()


def _run(server: str | HostPort, nick: str, password: str | None, timeout: float,
         command: str, prefix: str) -> tuple[str | None, str | None, list[str]]:
    checked, problem = p.check_nick(nick)
    if checked is None:
        raise NetlabError(f"nickname: {problem}", "choose 1-16 letters, digits and - _ .")
    session = _Session(parse_server(server), timeout)
    try:
        problem = session.join(checked, password)
        if problem is not None:
            return None, problem, session.lines
        line, problem = session.ask(command, prefix)
        return line, problem, session.lines
    finally:
        session.close()


def prove(exercise: str, server: str | HostPort, nick: str, *, port: int | None = None,
          password: str | None = None, timeout: float = 15.0) -> Outcome:
    """Ask the class server to witness an exercise: '9' (this connection crosses the LAN)
    or '1' with the port of the student's own server (the class server connects to it)."""
    command = f"/prove {exercise}" + (f" {port}" if port is not None else "")
    line, problem, lines = _run(server, nick, password, timeout, command,
                                f"*** TOKEN {exercise} ")
    if line is None:
        return Outcome(False, problem or "no answer", lines=lines)
    token = line.split()[3]
    return Outcome(True, line, token=token, lines=lines)


def submit_drill(answer: str, server: str | HostPort, nick: str, *,
                 password: str | None = None, timeout: float = 15.0) -> Outcome:
    """Hand in a drill diagnosis (a fault's name, see `netlab class drill --help`)."""
    line, problem, lines = _run(server, nick, password, timeout, f"/drill {answer}",
                                "*** DRILL ")
    if line is None:
        return Outcome(False, problem or "no answer", lines=lines)
    correct = line.endswith(" correct")
    return Outcome(True, line, correct=correct, lines=lines)
