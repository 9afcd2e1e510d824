"""The class server: the threaded chat server plus access control, the class log, proofs
and drill answers. A thin shell: the rules are in ClassRoom, Policy, tokens and drills.

Everything that runs under the room lock stays quick: it puts an event on the log's queue
or starts a thread. The connect-back of a proof, the disk writes and the TOKEN line that
waits for its event to be on disk all happen outside the lock.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from netlab.chat import protocol as p
from netlab.chat.room import Action, Joined, Left, Send
from netlab.chat.server import ChatServer, Conn, Logger, ServerConfig
from netlab.classroom.drills import grade
from netlab.classroom.eventlog import EventLog
from netlab.classroom.events import event
from netlab.classroom.policy import Policy, host_of, normalize_ip
from netlab.classroom.room import (
    PROOFS,
    ClassRoom,
    DrillSubmit,
    PasswordRefused,
    ProofRequest,
    Said,
    drill_line,
    token_line,
)
from netlab.classroom.tokens import Claims, make_token
from netlab.diagnose.catalog import format_address


@dataclass
class Seat:
    nick: str
    address: str
    since: float = field(default_factory=time.time)
    messages: int = 0


class ClassServer(ChatServer):
    def __init__(self, config: ServerConfig, *, events: EventLog, secret: bytes,
                 policy: Policy | None = None, password: str | None = None,
                 log: Logger | None = None, proof_timeout: float = 3.0) -> None:
        super().__init__(config, log=log)
        self.room: ClassRoom = ClassRoom(password)
        self.events = events
        self.policy = policy or Policy()
        self.proof_timeout = proof_timeout
        self._secret = secret
        self._seats: dict[Hashable, Seat] = {}
        self.drill_round = 0
        self.drill_fault: str | None = None
        self._answered: set[tuple[int, str]] = set()
        self._results: dict[int, list[tuple[str, bool]]] = {}

    # ------------------------------------------------------------------ drills
    def set_drill(self, round_no: int, fault: str | None, announced: str = "") -> None:
        with self._lock:
            self.drill_round, self.drill_fault = round_no, fault
            if fault is not None:
                self.events.emit(event("drill_round", round=round_no, fault=fault,
                                       announced=announced))

    # ------------------------------------------------------------------ admission
    def _admit(self, sock: socket.socket, addr: object) -> None:
        why = self.policy.refusal(str(addr[0]))  # type: ignore[index]
        if why is not None:
            self.stats.refused += 1
            self._refuse(sock, why)
            return
        super()._admit(sock, addr)

    def _refuse(self, sock: socket.socket, why: str) -> None:
        # Every refusal (policy, server full, out of resources) gets its line and its event.
        try:
            address = normalize_ip(str(sock.getpeername()[0]))
        except OSError:
            address = "?"
        self.events.emit(event("refused", address=address, reason=why, nick=None))
        super()._refuse(sock, why)

    # ------------------------------------------------------------------ actions (lock held)
    def _apply(self, actions: list[Action]) -> None:
        items: list[object] = list(actions)  # the class room adds its own action types
        for action in items:
            if isinstance(action, Joined):
                conn: Conn = action.who  # type: ignore[assignment]
                address = host_of(conn.peer)
                self._seats[conn] = Seat(action.nick, address)
                self.events.emit(event("join", nick=action.nick, address=address,
                                       port=_port_of(conn.peer)))
            elif isinstance(action, Left):
                seat = self._seats.pop(action.who, None)
                if seat is not None:
                    self._log_leave(seat, action.reason)
            elif isinstance(action, Said):
                seat = self._seats.get(action.who)
                if seat is not None:
                    seat.messages += 1
                    self.events.emit(event("message", nick=seat.nick, address=seat.address))
            elif isinstance(action, ProofRequest):
                self._start_proof(action)
            elif isinstance(action, DrillSubmit):
                self._answer(action)
            elif isinstance(action, PasswordRefused):
                conn = action.who  # type: ignore[assignment]
                self.events.emit(event("refused", address=host_of(conn.peer),
                                       reason="wrong password", nick=action.nick))
        super()._apply(actions)

    def _log_leave(self, seat: Seat, reason: str) -> None:
        self.events.emit(event("leave", nick=seat.nick, address=seat.address, reason=reason,
                               messages=seat.messages,
                               seconds=round(time.time() - seat.since, 1)))

    def _answer(self, req: DrillSubmit) -> None:
        conn = req.who
        if self.drill_fault is None:
            self._deliver(conn, p.encode_line(p.error_line("no drill is running")))  # type: ignore[arg-type]
            return
        key = (self.drill_round, p.nick_key(req.nick))
        counted = key not in self._answered
        self._answered.add(key)
        result = grade(self.drill_fault, req.answer)
        if counted:
            self._results.setdefault(self.drill_round, []).append((req.nick, result.correct))
        reply = (drill_line(self.drill_round, result.correct) if counted else p.error_line(
            f"you already answered round {self.drill_round}; your first answer counts"))
        self.events.emit(
            event("drill_answer", nick=req.nick, address=host_of(conn.peer),  # type: ignore[attr-defined]
                  round=self.drill_round, fault=self.drill_fault, answer=req.answer,
                  named=result.named, correct=result.correct, counted=counted),
            then=lambda: self._tell(conn, reply))  # the reply promises the answer is logged

    def _tell(self, conn: Hashable, text: str) -> None:
        with self._lock:
            self._apply([Send(conn, p.encode_line(text))])

    # ------------------------------------------------------------------ proofs
    def _start_proof(self, req: ProofRequest) -> None:
        thread = threading.Thread(target=self._prove, args=(req,), daemon=True,
                                  name="netlab-proof")
        thread.start()

    def _prove(self, req: ProofRequest) -> None:
        """Off the lock: check the network action, then sign what was seen."""
        conn: Conn = req.who  # type: ignore[assignment]
        address = host_of(conn.peer)
        try:
            local = normalize_ip(str(conn.sock.getsockname()[0]))
        except OSError:
            return  # gone already
        problem = _same_machine(address, local)
        if problem is None and req.exercise == "1":
            assert req.port is not None
            problem = connect_back(address, req.port, self.proof_timeout)
        if problem is not None:
            self.events.emit(event("proof_failed", nick=req.nick, address=address,
                                   exercise=req.exercise, reason=problem),
                             then=lambda: self._tell(conn, p.error_line(
                                 f"proof {req.exercise} failed: {problem}")))
            return
        issued = int(time.time())
        token = make_token(self._secret, Claims(req.nick, req.exercise, address, issued))
        # The TOKEN line goes out only once the proof is on disk: a token the student holds
        # is always in the log, whatever happens to this process afterwards.
        self.events.emit(event("proof", nick=req.nick, address=address,
                               exercise=req.exercise, token=token, time=issued),
                         then=lambda: self._tell(conn, token_line(req.exercise, token)))

    # ------------------------------------------------------------------ stopping
    def stop(self, timeout: float = 0.8) -> None:
        if not self._stopped.is_set():
            with self._lock:
                for seat in self._seats.values():
                    self._log_leave(seat, p.Reason.SHUTDOWN)
                self._seats.clear()
        super().stop(timeout)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def drill_results(self, round_no: int) -> list[tuple[str, bool]]:
        with self._lock:
            return list(self._results.get(round_no, []))

    def roster(self) -> list[Seat]:
        with self._lock:
            return [Seat(s.nick, s.address, s.since, s.messages) for s in self._seats.values()]


def _port_of(peer: str) -> int | None:
    tail = peer.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


def _same_machine(address: str, local: str) -> str | None:
    """Why this connection can't prove a LAN exercise, or None when it comes from afar."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"the class server cannot read your address {address!r}"
    # A connection from this machine to its own address arrives from that same address.
    if ip.is_loopback or address == local:
        return (f"it needs a second machine, and you connected from {address}, the class "
                "server's own machine: run it on your laptop with the address on the projector")
    return None


def connect_back(address: str, port: int, timeout: float) -> str | None:
    """Lesson 1's proof: can a classmate (this server) reach the student's own server?"""
    where = format_address(address, port)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        return None
    except ConnectionRefusedError:
        return (f"the class server was refused at {where}: is your server running, and bound "
                "to 0.0.0.0 rather than 127.0.0.1? (lesson 1)")
    except TimeoutError:
        return (f"no answer from {where} within {timeout:g} s: a firewall on your machine "
                "drops connections from classmates (lesson 9)")
    except OSError as exc:
        return f"the class server cannot reach {where}: {exc.strerror or exc}"
    finally:
        with contextlib.suppress(OSError):
            sock.close()


__all__ = ["PROOFS", "ClassServer", "Seat", "connect_back"]
