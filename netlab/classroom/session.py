"""One class, from `netlab class serve` or `netlab class drill`: the class server, its log,
the roster, the drill server of the current round, and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import sys
import threading
import time
from datetime import date
from pathlib import Path
from types import TracebackType

import click

from netlab.chat import protocol as p
from netlab.chat.server import ServerConfig
from netlab.classroom.drills import FAULTS, answer_menu
from netlab.classroom.eventlog import EventLog
from netlab.classroom.events import event
from netlab.classroom.faults import FaultEndpoint
from netlab.classroom.policy import Policy
from netlab.classroom.roster import LiveRoster, PlainRoster
from netlab.classroom.secret import load_secret
from netlab.classroom.server import ClassServer
from netlab.diagnose.catalog import format_address
from netlab.errors import SocketProblem, UsageError
from netlab.output import err as _err
from netlab.output import out as _out

PASSWORD_ENV = "NETLAB_CLASS_PASSWORD"




def _chat_log(text: str) -> None:
    # The chat server's own join/leave lines repeat the roster's; keep its warnings.
    kept = [line for line in text.split("\n") if not line.startswith(("+ ", "- "))]
    if kept:
        _err("\n".join(kept))


class ClassSession:
    def __init__(self, server: ClassServer, events: EventLog, roster: LiveRoster | PlainRoster,
                 drill_port: int, fault_delay: float) -> None:
        self.server, self.events, self.roster = server, events, roster
        self.drill_port = drill_port
        self.fault_delay = fault_delay
        self.endpoint: FaultEndpoint | None = None
        self.named: list[tuple[str, str]] = []  # (address, interface) students may use
        self.addresses: list[str] = []

    # ------------------------------------------------------------------ setting up
    @classmethod
    def open(cls, host: str | None, port: int, log_path: str | None, allow: tuple[str, ...],
             deny: tuple[str, ...], use_password: bool, max_clients: int | None,
             drill_port: int | None, fault_delay: float,
             fault: str | None = None) -> ClassSession:
        """Bind, start the drill server of `fault` (round 1) if given, then accept: a
        student's first /drill can never arrive before the round exists."""
        policy = Policy.parse(allow, deny)  # UsageError: exit 2
        password = _password() if use_password else None
        secret = load_secret()
        path = Path(log_path or f"netlab-class-{date.today().isoformat()}.jsonl").absolute()
        interactive = sys.stdout.isatty()
        roster: LiveRoster | PlainRoster = LiveRoster("netlab class") if interactive \
            else PlainRoster()
        events = EventLog(path, sinks=[roster])
        config = ServerConfig(host=host or ("::" if socket.has_ipv6 else "0.0.0.0"),
                              port=port, max_clients=max_clients, small_stacks=True)
        server = ClassServer(config, events=events, secret=secret, policy=policy,
                             password=password, log=_chat_log)
        try:
            try:
                server.bind()
            except SocketProblem as exc:
                if host is not None or config.host == "0.0.0.0" or exc.code not in (
                        "EAFNOSUPPORT", "EADDRNOTAVAIL"):
                    raise
                config.host = "0.0.0.0"  # no IPv6 here: the LAN is IPv4 anyway
                server.bind()
        except BaseException:
            events.close()
            raise
        assert server.address is not None
        if drill_port is None:
            drill_port = server.address[1] + 1 if port else 0
        self = cls(server, events, roster, drill_port, fault_delay)
        self.named = _named_addresses(server.address[0])
        self.addresses = [address for address, _ in self.named]
        events.emit(event("start", host=server.address[0], port=server.address[1],
                          drill_port=drill_port, password=password is not None,
                          max_clients=server.max_clients, **policy.to_json()))
        try:
            if fault is not None:
                self._setup_round(1, fault)
        except BaseException:
            server.stop()
            events.close()
            raise
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError, AttributeError):
                signal.signal(signum, lambda *_: server.request_stop())
        server.start()
        self._announce(path)
        if fault is not None:
            self._print_round(1)
        return self

    def _announce(self, path: Path) -> None:
        host, port = self.server.address  # type: ignore[misc]
        _out(f"listening on {format_address(host, port)}")
        _out(f"class log: {path}")
        if self.named:
            _out("students connect to:")
            for address, where in self.named:
                _out(f"  {format_address(address, port)}    ({where})")
            suffix = "" if port == p.DEFAULT_PORT else f" --port {port}"
            _out(f"projector: netlab chat --host {self.addresses[0]}{suffix}")
        else:
            _out("no LAN address found: is this machine on the classroom network?")
        if self.server.room.password is not None:
            _out("the class password is required after the nickname")
        _err(f"up to {self.server.max_clients} clients; Ctrl-C stops the class")

    # ------------------------------------------------------------------ drills
    def start_round(self, round_no: int, fault: str) -> None:
        self._setup_round(round_no, fault)
        self._print_round(round_no)

    def _setup_round(self, round_no: int, fault: str) -> None:
        host = self.server.config.host
        endpoint = FaultEndpoint(fault, host, self.drill_port, self.fault_delay)
        announced = endpoint.start()
        self.endpoint = endpoint
        self.drill_port = announced  # the next round keeps the announced port
        shown = self.addresses[0] if self.addresses else host
        self.server.set_drill(round_no, fault, format_address(shown, announced))

    def _print_round(self, round_no: int) -> None:
        shown = self.addresses[0] if self.addresses else self.server.config.host
        announced = self.drill_port
        class_port = self.server.address[1]  # type: ignore[index]
        _out(f"drill round {round_no}: the drill server is at {format_address(shown, announced)}")
        _out(f"  students: netlab diagnose --connect {format_address(shown, announced)}")
        _out(f"  then:     netlab check drill ANSWER --server "
             f"{format_address(shown, class_port)}")
        _out(f"  answers:  {answer_menu()}")

    def end_round(self, round_no: int) -> None:
        fault = self.server.drill_fault
        self.server.set_drill(round_no, None)
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
        results = self.server.drill_results(round_no)
        right = [nick for nick, correct in results if correct]
        if fault is not None:
            _out(f"round {round_no} was {fault}: {FAULTS[fault].title}")
        _out(f"  {len(right)} of {len(results)} answers correct"
             + (f": {', '.join(right)}" if right else ""))

    def run_rounds(self, faults: list[str]) -> None:
        lines = _stdin_lines()
        for number, fault in enumerate(faults, 1):
            self.start_round(number, fault)
            _err("press Enter to end the round" if sys.stdin.isatty() else
                 "a line on stdin ends the round")
            got = self._wait_line(lines)
            self.end_round(number)
            if got is None:
                break
        else:
            _out("drill finished")

    def _wait_line(self, lines: queue.Queue[str | None]) -> str | None:
        while not self.server.stopping:
            with contextlib.suppress(queue.Empty):
                return lines.get(timeout=0.25)
        return None

    def wait(self) -> None:
        self.server.serve_forever()

    # ------------------------------------------------------------------ stopping
    def __enter__(self) -> ClassSession:
        self.roster.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if self.endpoint is not None:
            self.endpoint.stop()
        self.server.stop()
        st = self.server.stats
        self.events.emit(event("stop", reason="interrupted" if kind else "stopped"))
        self.events.close()
        self.roster.stop()
        _err(f"class stopped after {time.monotonic() - st.started:.0f} s: {st.accepted} "
             f"connections, {st.joined} joins, {st.refused} refused; log: {self.events.path}")
        return kind is KeyboardInterrupt  # Ctrl-C is the normal stop


def _password() -> str:
    value = os.environ.get(PASSWORD_ENV)
    if value is None:
        if not sys.stdin.isatty():
            raise UsageError("--password: no terminal to type it on",
                             f"set {PASSWORD_ENV} instead")
        value = click.prompt("class password", hide_input=True, err=True)
    value = value.strip()
    if not value or "\n" in value:
        raise UsageError("the class password must not be empty")
    return value


def _stdin_lines() -> queue.Queue[str | None]:
    """stdin lines from a thread, so the main thread stays free for Ctrl-C and SIGTERM."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        with contextlib.suppress(Exception):
            for line in sys.stdin:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True, name="netlab-drill-stdin").start()
    return lines


def _named_addresses(host: str) -> list[tuple[str, str]]:
    if host not in ("0.0.0.0", "::"):
        return [(host, "the address given")]
    from netlab.diagnose.netinfo import lan_candidates
    from netlab.diagnose.probes import LiveSystem

    return [(a.address, a.interface) for a in lan_candidates(LiveSystem().interfaces())
            if a.version == 4 or host == "::"]
