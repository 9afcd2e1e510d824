"""Every exercise, end to end: the packaged starter fails, the reference passes, and each
plausible wrong solution fails on the criterion its mistake is about. Real processes, real
sockets on loopback, short waits (--step) so a failing run costs seconds, not minutes."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from netlab.exercises.registry import all_exercises
from tests.conftest import netlab_cmd

HERE = Path(__file__).parent / "exercise_solutions"
STEP = "2.5"  # failing runs wait this long per step; good programs answer in ms
FAST = ["--step", STEP, "--timeout", "15", "--clients", "6", "--volume-kb", "6144"]


def starter(name: str) -> Path:
    return Path(str(resources.files("netlab.exercises") / "starters" / name))


def run_check(number: int, *args: str, cwd: Path | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = subprocess.run(netlab_cmd("check", str(number), "--json", *FAST, *args),
                          capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(done.stdout)  # stdout is one JSON object and nothing else
    assert data["type"] == "check" and data["exercise"] == number
    assert data["passed"] == (done.returncode == 0)
    return done.returncode, data


def failed_names(data: dict) -> list[str]:  # type: ignore[type-arg]
    return [c["name"] for c in data["criteria"] if not c["passed"]]


PROGRAMS = [
    # (exercise, file, expected: None = passes, else a substring of a failing criterion)
    (0, starter("ex00_client.py"), "answers NICK"),
    (0, HERE / "ex00_client.py", None),
    (0, HERE / "ex00_wrong_decode_chunks.py", "character split"),
    (1, starter("ex01_bind.py"), "explains a bind"),
    (1, HERE / "chat_server.py", None),
    (1, HERE / "ex01_wrong_vague.py", "explains a bind"),
    (2, starter("ex02_errors.py"), "refused"),
    (2, HERE / "ex02_client.py", None),
    (2, HERE / "ex02_wrong_catchall.py", "name error"),
    (3, starter("ex03_stream.py"), "one byte at a time"),
    (3, HERE / "ex03_server.py", None),
    (3, HERE / "ex03_wrong_single_recv.py", "BYTES 10"),
    (4, starter("chat_server.py"), ""),  # the tutorial server fails somewhere: any FAIL
    (4, HERE / "chat_server.py", None),
    (4, HERE / "ex04_wrong_no_limit.py", "1 MB line is not passed on"),
    (5, starter("chat_server.py"), ""),
    (5, HERE / "chat_server.py", None),
    # The reset goes unannounced. (A writer thread that met the reset first would shut the
    # socket down and the reader would see a plain EOF: the check has the crasher read what
    # was sent to it before it resets, so no send is on its way. Either criterion counts.)
    (5, HERE / "ex05_wrong_only_eof.py", ("resets (RST)", "stops gracefully on Ctrl-C")),
    (6, starter("chat_server.py"), ""),
    (6, HERE / "chat_server.py", None),
    (6, HERE / "ex06_wrong_blocking.py", "never reads"),
    (7, starter("chat_server.py"), "restarts on the same port"),
    (7, HERE / "chat_server.py", None),
    (7, HERE / "ex07_wrong_no_reuse.py", "restarts on the same port"),
    (10, starter("ex10_names.py"), "unknown host"),
    (10, HERE / "ex10_client.py", None),
    (10, HERE / "ex10_wrong_traceback.py", "unknown host"),
]


@pytest.mark.parametrize(("number", "program", "fails_on"), PROGRAMS,
                         ids=[f"ex{n}-{p.parent.name}-{p.stem}" for n, p, _ in PROGRAMS])
def test_program_exercise(number: int, program: Path,
                          fails_on: str | tuple[str, ...] | None) -> None:
    code, data = run_check(number, "--", "python", str(program), "{host}", "{port}")
    failing = failed_names(data)
    if fails_on is None:
        assert code == 0, json.dumps(data["criteria"], indent=1)
        assert not failing
    else:
        assert code == 1
        wanted = (fails_on,) if isinstance(fails_on, str) else fails_on
        assert any(w in name for w in wanted for name in failing), failing
        for c in data["criteria"]:
            assert set(c) >= {"name", "passed", "detail", "why"}
            assert c["detail"]


def _chat_pcap(path: Path) -> None:
    """One chat session as a capture: client 127.0.0.1:40123 (ISN 1,000,000), the server's
    ISN near 2**32, nickname `alice\\n`, one line, /quit, the server closes first."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    c, s = ("127.0.0.1", 40123), ("127.0.0.1", 55555)
    nxt = {c: 1_000_000, s: 3_999_999_999}
    frames = []

    def send(frm: tuple[str, int], flags: str, data: bytes = b"") -> None:
        to = s if frm == c else c
        ack = nxt[to] % 2**32 if "A" in flags else 0
        pkt = Ether() / IP(src=frm[0], dst=to[0]) / TCP(
            sport=frm[1], dport=to[1], flags=flags, seq=nxt[frm] % 2**32, ack=ack)
        frames.append(pkt / Raw(data) if data else pkt)
        nxt[frm] += len(data) + ("S" in flags) + ("F" in flags)

    send(c, "S"), send(s, "SA"), send(c, "A")
    send(s, "PA", b"NICK\r\n"), send(c, "A")
    send(c, "PA", b"alice\n"), send(s, "PA", b"*** alice joined\r\n")
    send(c, "PA", b"hi\n"), send(s, "PA", b"alice: hi\r\n")
    send(c, "PA", b"/quit\n"), send(s, "PA", b"*** alice left (quit)\r\n")
    send(s, "FA"), send(c, "FA"), send(s, "A")
    wrpcap(str(path), frames)


@pytest.mark.parametrize(("answers", "fails_on"), [
    (None, "initial sequence number"),
    ("ex08_answers.txt", None),
    ("ex08_wrong_answers.txt", "TIME_WAIT"),
])
def test_capture_exercise(tmp_path: Path, answers: str | None, fails_on: str | None) -> None:
    _chat_pcap(tmp_path / "chat.pcap")
    target = tmp_path / "answers.txt"
    if answers is None:
        shutil.copy(starter("ex08_answers.txt"), target)
        target.write_text(target.read_text().replace("client_port:", "client_port: 40123"))
    else:
        shutil.copy(HERE / answers, target)
    code, data = run_check(8, "--answers", str(target))
    failing = failed_names(data)
    if fails_on is None:
        assert code == 0 and not failing, data["criteria"]
    else:
        assert code == 1 and any(fails_on in n for n in failing), failing
    if answers == "ex08_wrong_answers.txt":
        assert "relative seq of the server's first data packet" in failing
        assert "4000000000" not in json.dumps(data)  # a failed answer never shows the value


def test_capture_exercise_refuses_netlabs_own_sample(tmp_path: Path) -> None:
    sample = resources.files("netlab.capture") / "data" / "sample-chat.pcap"
    (tmp_path / "chat.pcap").write_bytes(sample.read_bytes())
    shutil.copy(HERE / "ex08_answers.txt", tmp_path / "answers.txt")
    code, data = run_check(8, "--answers", str(tmp_path / "answers.txt"))
    assert code == 1 and failed_names(data) == ["your own capture"]


def _lan() -> str:
    from netlab.diagnose.netinfo import lan_candidates
    from netlab.diagnose.probes import LiveSystem

    found = lan_candidates(LiveSystem().interfaces())
    return found[0].address if found else "none"


@pytest.mark.parametrize(("answers", "fails_on"), [
    (None, "your LAN address"),
    ("ex09_answers.txt", None),
    ("ex09_wrong_answers.txt", "your LAN address"),
])
def test_classroom_exercise(tmp_path: Path, answers: str | None, fails_on: str | None) -> None:
    source = starter("ex09_answers.txt") if answers is None else HERE / answers
    target = tmp_path / "answers.txt"
    target.write_text(source.read_text().replace("{lan}", _lan()))
    code, data = run_check(9, "--answers", str(target))
    failing = failed_names(data)
    if fails_on is None:
        assert code == 0 and not failing, data["criteria"]
    else:
        assert code == 1 and any(fails_on in n for n in failing), failing


def test_every_exercise_is_covered_here() -> None:
    covered = {n for n, _, _ in PROGRAMS} | {8, 9}
    assert covered == {ex.number for ex in all_exercises()}
    assert {ex.lesson for ex in all_exercises()} == set(range(11))


def check_source(tmp_path: Path, number: int, source: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """`netlab check NUMBER` on a student program written here."""
    program = tmp_path / "student.py"
    program.write_text(source)
    return run_check(number, "--", "python", str(program), "{host}", "{port}")


def test_a_server_on_a_port_of_its_own_fails_listens_on_and_says_why(tmp_path: Path) -> None:
    """The commonest slip: the port written in the code, the one given ignored. The check
    used to believe the printed "listening on" and fail later without saying why."""
    code, data = check_source(tmp_path, 3,
                              "import socket, time\n"
                              "s = socket.create_server(('127.0.0.1', 0))  # not the given port\n"
                              "print('listening on 127.0.0.1:%d' % s.getsockname()[1], "
                              "flush=True)\n"
                              "time.sleep(30)\n")
    assert code == 1
    first = data["criteria"][0]
    assert first["name"].startswith("listens on") and not first["passed"]
    assert "says it is listening on port" in first["detail"]
    assert "take the port from the command line or NETLAB_PORT" in first["detail"]


def test_a_client_that_ends_after_its_nickname_is_told_it_ended(tmp_path: Path) -> None:
    """It used to read "your client sent b''", as if it were still there."""
    code, data = check_source(tmp_path, 0,
                              "import socket, sys\n"
                              "s = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
                              "data = b''\n"
                              "while b'\\n' not in data:\n"
                              "    data += s.recv(100)\n"
                              "s.sendall(b'ana\\n')\n"
                              "s.close()\n")
    assert code == 1
    typed = next(c for c in data["criteria"] if c["name"] == "sends each typed line with \\n")
    assert not typed["passed"] and "it had ended: your program exited with code 0" in \
        typed["detail"]
