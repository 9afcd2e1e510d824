"""`netlab class` end to end on loopback: real processes, real sockets, the real log.

The log survives kill -9; refusals always come with a line; the password step; report and
CSV; verify; the drill rounds with `netlab diagnose --connect` as referee.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netlab.classroom.events import parse_lines
from netlab.classroom.secret import load_secret
from netlab.classroom.tokens import Claims, make_token
from tests.conftest import WAIT, LineClient, _readline, netlab_cmd


class ClassProcess:
    """A real `netlab class serve|drill --port 0` with its log in tmp; on 127.0.0.1 unless
    host is None (the default, the whole LAN), run under `prefix` (e.g. ip netns exec)."""

    def __init__(self, tmp: Path, *args: str, command: str = "serve",
                 env: dict[str, str] | None = None, stdin: int | None = None,
                 host: str | None = "127.0.0.1", prefix: tuple[str, ...] = ()) -> None:
        self.log_path = tmp / f"class-{time.monotonic_ns()}.jsonl"
        where = ("--host", host) if host else ()
        self.proc = subprocess.Popen(
            [*prefix, *netlab_cmd("class", command, *where, "--port", "0", "--log",
                                  str(self.log_path), *args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin or subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})})
        first = self.line()
        assert first.startswith(f"listening on {host or ''}"), (first, self.stderr())
        self.port = int(first.rpartition(":")[2])
        self.seen: list[str] = [first]

    def line(self, timeout: float = WAIT) -> str:
        assert self.proc.stdout is not None
        return _readline(self.proc.stdout, timeout).decode("utf-8", "replace").rstrip("\n")

    def expect(self, match: Callable[[str], bool], timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            self.seen.append(line)
            if match(line):
                return line
            if not line and (time.monotonic() > deadline or self.proc.poll() is not None):
                raise AssertionError(f"no matching line; got {self.seen[-8:]!r}")

    def events(self) -> list[dict[str, object]]:
        events, bad = parse_lines(self.log_path.read_bytes().splitlines(keepends=True))
        assert bad == 0
        return events

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(WAIT)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(WAIT)


@pytest.fixture
def start_class(tmp_path: Path) -> Iterator[Callable[..., ClassProcess]]:
    started: list[ClassProcess] = []

    def start(*args: str, **kw: object) -> ClassProcess:
        started.append(ClassProcess(tmp_path, *args, **kw))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(netlab_cmd(*args), capture_output=True, text=True, timeout=WAIT,
                          cwd=cwd)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_start_announces_the_log_and_a_projector_line(start_class: Callable[..., ClassProcess],
                                                      isolated_home: Path) -> None:
    srv = start_class()
    assert srv.line() == f"class log: {srv.log_path}"
    srv.expect(lambda line: line == f"projector: netlab chat --host 127.0.0.1 --port {srv.port}")
    assert srv.stop(signal.SIGTERM) == 0
    assert "class stopped" in srv.stderr()
    kinds = [e["type"] for e in srv.events()]
    assert kinds == ["start", "stop"]
    secret = isolated_home / "netlab" / "class-secret"
    assert secret.stat().st_mode & 0o077 == 0
    assert secret.read_text().strip() not in srv.log_path.read_text()


def test_the_log_survives_kill_9(start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--fault", "silent-handshake")
    clients = [LineClient(srv.port).join(f"s{i}") for i in range(4)]
    acked = []
    for round_no, client in enumerate(clients):
        for n in range(5):
            client.send(f"message {n}")
        # A drill reply is sent only after its event is on disk, and the log is one FIFO:
        # everything queued before it (the join, the messages) is on disk too.
        client.send("/drill wrong port" if round_no % 2 else "/drill silent")
        acked.append(client.expect(lambda line: line.startswith("*** DRILL 1 ")))
    for client in clients:  # traffic still flowing at the moment of the kill
        client.send("one more")
    os.killpg(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(WAIT)
    raw = srv.log_path.read_bytes()
    assert raw.endswith(b"\n")
    events = srv.events()  # every line parses
    answers = [e for e in events if e["type"] == "drill_answer"]
    assert [(e["nick"], e["correct"]) for e in answers] == [
        (f"s{i}", line.endswith("correct")) for i, line in enumerate(acked)]
    for i in range(4):
        said = [e for e in events if e["type"] == "message" and e["nick"] == f"s{i}"]
        assert len(said) >= 5
        assert any(e["type"] == "join" and e["nick"] == f"s{i}" for e in events)
    done = run("class", "report", str(srv.log_path), "--json")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert [s["drills_correct"] for s in report["students"]] == [1, 0, 1, 0]


@pytest.mark.parametrize(("args", "reason"), [
    (("--deny", "127.0.0.0/8"), "! not allowed from 127.0.0.1 (this class denies 127.0.0.0/8)"),
    (("--allow", "10.0.0.0/8"),
     "! not allowed from 127.0.0.1 (this class admits only 10.0.0.0/8)"),
])
def test_refused_connections_get_a_line_before_the_close(
        start_class: Callable[..., ClassProcess], args: tuple[str, ...], reason: str) -> None:
    srv = start_class(*args)
    client = LineClient(srv.port)
    assert client.wait_closed() == [reason]
    srv.expect(lambda line: line.startswith("x refused 127.0.0.1: not allowed"))
    refused = [e for e in srv.events() if e["type"] == "refused"]
    assert refused[0]["reason"] == reason[2:] and refused[0]["address"] == "127.0.0.1"


def test_a_full_class_refuses_with_a_line(start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--max-clients", "1")
    first = LineClient(srv.port).join("alice")
    second = LineClient(srv.port)
    assert second.wait_closed() == ["! server full (max 1 clients)"]
    first.send("still here")
    first.expect("alice: still here")


def test_the_class_password(start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--password", env={"NETLAB_CLASS_PASSWORD": "open sesame"})
    srv.expect(lambda line: line == "the class password is required after the nickname")
    good = LineClient(srv.port)
    good.expect("NICK")
    good.send("alice")
    good.expect("PASS")
    good.send("open sesame")
    good.expect(lambda line: line.startswith("*** Welcome, alice!"))
    bad = LineClient(srv.port)
    bad.expect("NICK")
    bad.send("mallory")
    bad.expect("PASS")
    bad.send("guess")
    assert bad.wait_closed() == ["! wrong password"]
    srv.expect(lambda line: line == "x refused mallory at 127.0.0.1: wrong password")
    log_text = srv.log_path.read_text()
    assert "open sesame" not in log_text and '"password":true' in log_text


def test_password_without_a_terminal_or_variable_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(netlab_cmd("class", "serve", "--port", "0", "--password"),
                          capture_output=True, text=True, timeout=WAIT, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "NETLAB_CLASS_PASSWORD" in done.stderr


def test_usage_and_bind_errors(tmp_path: Path) -> None:
    done = run("class", "serve", "--port", "0", "--allow", "10.0.0.0/99", cwd=tmp_path)
    assert done.returncode == 2 and "not an address range" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("class", "serve", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 3 and "EADDRINUSE" in done.stderr
    done = run("class", "report", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 3 and "cannot read the class log" in done.stderr


def test_report_and_csv(start_class: Callable[..., ClassProcess], tmp_path: Path) -> None:
    srv = start_class()
    alice = LineClient(srv.port).join("alice")
    bob = LineClient(srv.port).join("bob")
    for text in ("hi", "/me waves", "/who"):
        alice.send(text)
    alice.expect(lambda line: line.startswith("*** online"))
    bob.send("/quit")
    bob.wait_closed()
    srv.expect(lambda line: line == "- bob left (quit) after 0 messages")
    alice.send("/prove 9")
    alice.expect(lambda line: line.startswith("! proof 9 failed: it needs a second machine"))
    assert srv.stop() == 0
    csv_path = tmp_path / "grades.csv"
    done = run("class", "report", str(srv.log_path), "--csv", str(csv_path))
    assert done.returncode == 0
    assert done.stdout.splitlines()[0].split()[:3] == ["nick", "addresses", "sessions"]
    rows = csv_path.read_text().splitlines()
    assert rows[1].startswith("alice,127.0.0.1,1,") and ",2,,0,0" in rows[1]
    assert rows[2].startswith("bob,127.0.0.1,1,")
    leave = [e for e in srv.events() if e["type"] == "leave" and e["nick"] == "alice"]
    assert leave[0]["reason"] == "server shutdown" and leave[0]["messages"] == 2


def test_verify(tmp_path: Path, isolated_home: Path) -> None:
    # Without the class server's secret, nothing can be checked.
    done = run("class", "verify", "abc.def", cwd=tmp_path)
    assert done.returncode == 3 and "no class secret" in done.stderr
    secret = load_secret()  # as the class server would create it in NETLAB_HOME
    token = make_token(secret, Claims("alice", "9", "10.0.0.2", int(time.time())))
    log = tmp_path / "netlab-class-2030-01-01.jsonl"
    log.write_text(json.dumps({"type": "join", "t": "x", "nick": "alice",
                               "address": "10.0.0.2", "port": 1}) + "\n")
    done = run("class", "verify", token, "--json", cwd=tmp_path)
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["signature_ok"] and data["log"] == {"checked": True, "agrees": False}
    assert data["claims"]["nick"] == "alice" and data["logs"] == [log.name]
    with log.open("a") as f:
        f.write(json.dumps({"type": "proof", "t": "x", "nick": "alice", "address": "10.0.0.2",
                            "exercise": "9", "token": token, "time": 1}) + "\n")
    done = run("class", "verify", token, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "  nick       alice" in done.stdout and done.stdout.rstrip().endswith("verified")
    done = run("class", "verify", token, "--nick", "bob", cwd=tmp_path)
    assert done.returncode == 1 and "earned by alice, not bob" in done.stdout
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    done = run("class", "verify", forged, cwd=tmp_path)
    assert done.returncode == 1 and "DOES NOT MATCH" in done.stdout
    done = run("class", "verify", "not-a-token", "--json", cwd=tmp_path)
    assert done.returncode == 1 and json.loads(done.stdout)["claims"] is None


def diagnose(target: str, timeout: float = 1.5) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(netlab_cmd("diagnose", "--connect", target, "--json", "--timeout",
                                     str(timeout)),
                          capture_output=True, text=True, timeout=WAIT + timeout)
    assert "Traceback" not in done.stderr, done.stderr
    data = json.loads(done.stdout)
    assert done.returncode == (1 if not data["ok"] else 0)
    return data  # type: ignore[no-any-return]


def test_drill_rounds_graded_against_the_real_fault(
        start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--faults", "wrong-port,backlog-full", command="drill",
                      stdin=subprocess.PIPE)
    assert srv.proc.stdin is not None
    where = srv.expect(lambda line: line.startswith("drill round 1: the drill server is at"))
    announced = where.rpartition(" ")[2]
    (problem,) = [f for f in diagnose(announced)["findings"] if f["status"] == "problem"]
    assert problem["code"] == "ECONNREFUSED"
    assert "Nothing on this machine listens on port" in problem["explanation"]
    student = LineClient(srv.port).join("alice")
    student.send("/drill wrong-port")
    student.expect("*** DRILL 1 correct")
    srv.proc.stdin.write(b"\n")
    srv.proc.stdin.flush()
    srv.expect(lambda line: line == "round 1 was wrong-port: the server listens on another "
                                    "port than announced")
    srv.expect(lambda line: line == "  1 of 1 answers correct: alice")
    where = srv.expect(lambda line: line.startswith("drill round 2: the drill server is at"))
    assert where.rpartition(" ")[2] == announced  # the same announced port every round
    (problem,) = [f for f in diagnose(announced, 1.0)["findings"] if f["status"] == "problem"]
    assert problem["code"] == "ETIMEDOUT" and "backlog" in problem["explanation"]
    student.send("/drill loopback-only")
    student.expect("*** DRILL 2 wrong")
    srv.proc.stdin.close()
    srv.expect(lambda line: line == "  0 of 1 answers correct")
    assert srv.proc.wait(WAIT) == 0
    rounds = [(e["round"], e["fault"]) for e in srv.events() if e["type"] == "drill_round"]
    assert rounds == [(1, "wrong-port"), (2, "backlog-full")]


def test_on_a_terminal_the_roster_is_a_table_redrawn_in_place(tmp_path: Path) -> None:
    import pty
    import select as select_mod

    primary, secondary = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.Popen(
        netlab_cmd("class", "serve", "--host", "127.0.0.1", "--port", "0", "--log",
                   str(tmp_path / "c.jsonl")),
        stdin=secondary, stdout=secondary, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True)
    os.close(secondary)
    screen = b""

    def read_until(needle: bytes, after: bytes = b"") -> None:
        """Read until `needle` appears (after `after`, when given)."""
        nonlocal screen
        deadline = time.monotonic() + WAIT
        def seen() -> bool:
            _, sep, rest = screen.partition(after) if after else (b"", b"", screen)
            return (sep or not after) and needle in rest

        while not seen():
            left = deadline - time.monotonic()
            assert left > 0, screen[-500:]
            if select_mod.select([primary], [], [], left)[0]:
                screen += os.read(primary, 65536)

    try:
        read_until(b"online")
        port = int(screen.split(b"listening on 127.0.0.1:")[1].split(b"\r")[0])
        alice = LineClient(port).join("alice")
        read_until(b"alice", after=b"netlab class: 1 online")  # the row, below the title
        assert b"\x1b[1A" in screen  # the cursor goes back up: redrawn, not scrolled
        alice.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(WAIT)
        os.close(primary)


def test_netlab_check_drill_and_the_same_machine_rule(
        start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--fault", "silent-handshake")
    server = f"127.0.0.1:{srv.port}"
    done = run("check", "drill", "silent", "--server", server, "--nick", "alice", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"type": "drill", "answer": "silent", "ok": True,
                                       "message": "*** DRILL 1 correct", "token": None,
                                       "correct": True}
    # A typo or a bad nickname is a usage error before anything is sent: it must not
    # spend bob's one answer of the round (both used to).
    for args in (("wrongport",), ("nonsense", "--nick", "bob"), ("slow", "--nick", "bad nick")):
        done = run("check", "drill", *args, "--server", server,
                   *(() if "--nick" in args else ("--nick", "bob")))
        assert done.returncode == 2, (args, done.stderr)
    assert "is none of the drill's answers" in run(
        "check", "drill", "nonsense", "--server", server, "--nick", "bob").stderr
    done = run("check", "drill", "wrong", "port", "--server", server, "--nick", "bob")
    assert done.returncode == 1 and done.stdout == "DRILL 1 wrong: wrong port\n"
    done = run("check", "drill", "slow", "--server", server, "--nick", "bob")
    assert done.returncode == 3 and "your first answer counts" in done.stderr
    # On the class server's own machine exercise 9 can't be proven: no second machine.
    done = run("check", "9", "--server", server, "--nick", "carol", "--json")
    assert done.returncode == 1
    (criterion,) = json.loads(done.stdout)["criteria"]
    assert not criterion["passed"] and "needs a second machine" in criterion["detail"]
    for args in (("check", "3", "--server", server, "--nick", "x"),
                 ("check", "9", "--server", server),
                 ("check", "drill", "--server", server, "--nick", "x"),
                 ("check", "drill", "silent", "--nick", "x")):
        done = run(*args)
        assert done.returncode == 2, (args, done.stderr)
