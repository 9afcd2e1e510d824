"""`netlab check` as a command, and the pure parts under it: answers, progress, report,
the runner's process-tree handling and output bound."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab.errors import UsageError
from netlab.exercises import progress
from netlab.exercises.answers import as_int, parse_answers
from netlab.exercises.ex_answers import Packet, facts_of, grade_lan
from netlab.exercises.registry import find_exercise, passed, skipped
from netlab.exercises.report import CheckResult, to_json, to_text
from netlab.exercises.runner import OUTPUT_LIMIT, ProgramCannotStart, StudentProgram, fill
from tests.conftest import WAIT, netlab_cmd

HERE = Path(__file__).parent / "exercise_solutions"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(netlab_cmd("check", *args), capture_output=True, text=True,
                          timeout=60)


# ------------------------------------------------------------------ pure parts


def test_answers_parse_keys_comments_and_numbers() -> None:
    got = parse_answers("# c\nClient Port: 40123  # mine\nfirst-fin = Server\nempty:\n")
    assert got == {"client_port": "40123", "first_fin": "Server", "empty": ""}
    assert [as_int(v) for v in ("1", "+7", "1,000", "0x10", "x")] == [1, 7, 1000, 16, None]
    with pytest.raises(UsageError, match="line 2"):
        parse_answers("a: 1\nnot an answer\n")


def test_progress_merges_and_a_pass_stays() -> None:
    p = progress.record(progress.empty(), 3, False, "t1")
    p = progress.record(p, 3, True, "t2")
    p = progress.record(p, 3, False, "t3")
    entry = p["exercises"]["3"]
    assert entry == {"attempts": 3, "first_passed": "t2", "last_attempt": "t3",
                     "last_result": "failed", "passed": True}
    assert progress.passed_numbers(p) == {3}
    assert progress.normalise({"version": 99}) == progress.empty()
    assert progress.normalise("garbage") == progress.empty()


def test_capture_facts_from_packets() -> None:
    pk = [Packet(1, True, "S", 0, 0, 0, b"", 500), Packet(2, False, "SA", 0, 1, 0, b"", 9),
          Packet(3, False, "PA", 1, 1, 6, b"NICK\r\n", 10),
          Packet(4, True, "PA", 1, 7, 7, b"bob\r\nhi", 501),
          Packet(5, True, "FA", 8, 7, 0, b"", 508)]
    facts = facts_of(pk, 40000)
    assert (facts.client_isn, facts.nick_line_bytes, facts.first_fin, facts.time_wait) == \
        (500, 5, "client", "client")
    assert facts.first_data["server"].number == 3


def test_lan_answers_use_this_machines_addresses() -> None:
    answers = {"lan_address": "10.1.2.3", "classroom_bind": "0.0.0.0",
               "bound_to_loopback": "Refused.", "firewall_drops": "timeout",
               "other_subnet": "timeout", "obstacle": "vpn"}
    assert all(c.passed for c in grade_lan(answers, ["10.1.2.3"]))
    first = grade_lan(answers, ["192.168.1.5"])[0]
    assert not first.passed and "netlab diagnose --bind" in first.detail
    assert grade_lan({**answers, "lan_address": "none"}, [])[0].passed


def test_report_text_and_json() -> None:
    ex = find_exercise("framing")
    result = CheckResult(ex, [passed("a", "did a", "w"), skipped("b", "n/a here", "w")], 1.0)
    data = to_json(result)
    assert data["passed"] and data["exercise"] == 4 and data["criteria"][1]["skipped"]
    assert "PASS  a" in to_text(result) and "skip  b" in to_text(result)


def test_exercise_lookup() -> None:
    assert find_exercise("04").number == find_exercise("ex4").number == 4
    assert find_exercise("names").number == 10
    with pytest.raises(UsageError) as err:
        find_exercise("nope")
    assert "10 (names)" in (err.value.hint or "")
    assert fill(["--a={host}:{port}", "x"], "h", "1") == ["--a=h:1", "x"]


# ------------------------------------------------------------------ the runner


def test_time_limit_ends_the_whole_process_tree(tmp_path: Path) -> None:
    import psutil

    script = tmp_path / "tree.py"
    script.write_text("import subprocess, sys, time\n"
                      "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                      "print('started', flush=True)\ntime.sleep(60)\n")
    prog = StudentProgram.start(["python", str(script)], "h", "1", timeout=1.5)
    assert prog.wait_output(lambda t: "started" in t, WAIT)
    child = psutil.Process(prog.proc.pid).children()[0]
    assert prog.wait(WAIT) is not None and prog.timed_out
    child.wait(WAIT)  # raises TimeoutExpired if the grandchild survived
    assert not child.is_running()
    prog.kill()


def test_output_is_bounded_and_env_is_set(tmp_path: Path) -> None:
    script = tmp_path / "loud.py"
    script.write_text("import os\nprint(os.environ['NETLAB_HOST'], os.environ['NETLAB_PORT'])\n"
                      "print('x' * 1_000_000)\n")
    prog = StudentProgram.start(["python", str(script)], "127.0.0.1", "5", timeout=WAIT)
    assert prog.wait(WAIT) == 0
    assert prog.stdout.startswith("127.0.0.1 5\n") and len(prog.stdout) == OUTPUT_LIMIT
    prog.kill()
    with pytest.raises(ProgramCannotStart):
        StudentProgram.start(["/no/such/program"], "h", "1", timeout=WAIT)


# ------------------------------------------------------------------ the command


def test_list_shows_progress_after_a_pass(isolated_home: Path) -> None:
    before = json.loads(run("--list", "--json").stdout)
    assert before["type"] == "exercises" and len(before["exercises"]) == 11
    assert not any(row["passed"] for row in before["exercises"])
    done = run("3", "--step", "2", "--", "python", str(HERE / "ex03_server.py"), "{host}",
               "{port}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed: 5 of 5" in done.stdout
    listed = run("--list")
    assert listed.returncode == 0 and "[x]  3  byte-stream" in listed.stdout
    assert "[ ]  4" in listed.stdout
    saved = json.loads((isolated_home / "netlab" / "progress.json").read_text())
    assert saved["exercises"]["3"]["passed"] is True


def test_starter_prints_the_file() -> None:
    done = run("1", "--starter")
    assert done.returncode == 0 and "listening on" in done.stdout
    compile(done.stdout, "ex01_bind.py", "exec")


@pytest.mark.parametrize(("args", "code", "text"), [
    (["frobnicate"], 2, "0 (client)"),
    ([], 2, "name an exercise"),
    ([" "], 2, "name an exercise"),
    (["3"], 2, "give it after --"),
    (["8"], 2, "--answers"),
    (["3", "--", "/no/such/program"], 3, "no such program"),
])
def test_usage_and_cannot_start(args: list[str], code: int, text: str) -> None:
    done = run(*args)
    assert done.returncode == code
    assert text in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_hang_is_reported_and_the_check_ends(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(600)\n")
    start = time.monotonic()
    done = run("2", "--json", "--step", "1", "--timeout", "3", "--", sys.executable,
               str(script))
    assert time.monotonic() - start < 30
    data = json.loads(done.stdout)
    assert done.returncode == 1 and not data["passed"]
    assert any("still running" in c["detail"] for c in data["criteria"])


@pytest.mark.parametrize("args", [["9"], ["drill", "loopback-only"]])
def test_an_unreachable_class_server_gets_a_students_fix(args: list[str]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run(*args, "--server", f"127.0.0.1:{port}", "--nick", "bob")
    assert done.returncode == 3, done.stderr
    assert "ECONNREFUSED" in done.stderr and "Traceback" not in done.stderr
    # The student starts nothing: the fix points at the instructor's server and at diagnose.
    assert "netlab class serve" in done.stderr and "Start the server first" not in done.stderr
    assert f"netlab diagnose --connect 127.0.0.1:{port}" in done.stderr
