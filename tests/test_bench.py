"""`netlab bench`: pure tokens and statistics, then real runs against a real `netlab serve`,
a deliberately broken server (tests/broken_server.py), the tutorial baseline and ncat."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netlab.bench import stats, tokens
from tests.conftest import (
    WAIT,
    ServerProcess,
    _readline,
    netlab_cmd,
    require,
    require_tool,
)

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 60  # no bench run in these tests may take longer


# ---------------------------------------------------------------------- pure: tokens
def test_a_token_is_found_anywhere_in_a_line_and_has_the_size_asked_for() -> None:
    line = tokens.encode(7, 3, 41, 123456, size=100)
    assert len(line) == 100 and line.endswith(b"\n")
    found = tokens.Found()
    tokens.scan(b"<user5> alice: " + line.rstrip(b"\n"), 7, found)
    assert found.tokens == [(3, 41, 123456)]
    assert found.corrupted == 0


def test_a_token_cut_by_another_line_counts_as_corrupted_not_delivered() -> None:
    a = tokens.encode(7, 1, 0, 1).rstrip(b"\n")
    b = tokens.encode(7, 2, 0, 2).rstrip(b"\n")
    found = tokens.Found()
    tokens.scan(a[:30] + b + a[30:], 7, found)  # raw recv() chunks relayed: glued pieces
    assert found.tokens == [(2, 0, 2)]
    assert found.corrupted == 1


@given(st.lists(st.sampled_from(["token", "cut", "foreign", "noise"]), max_size=30),
       st.lists(st.integers(min_value=1, max_value=400), max_size=40))
def test_scanning_chunks_as_they_arrive_counts_what_scanning_line_by_line_counts(
        kinds: list[str], cuts: list[int]) -> None:
    from netlab.bench import loadgen as lg

    a, b = tokens.encode(7, 1, 0, 1), tokens.encode(7, 2, 0, 2)
    make = {"token": lambda i: tokens.encode(7, 3, i, 5, size=60 + i),
            "cut": lambda i: a[:30] + b + a[30:],  # two tokens glued: one lost, one corrupted
            "foreign": lambda i: tokens.encode(8, 1, i, 5),
            "noise": lambda i: b"*** someone joined ~T\n"}
    stream = b"".join(make[k](i) for i, k in enumerate(kinds))
    by_line = tokens.Found()
    for line in stream.split(b"\n"):
        tokens.scan(line, 7, by_line)
    client, by_chunk, pos = lg.Client(0, "o", lg.OBSERVER), tokens.Found(), 0
    client.tail = b""
    for size in [*cuts, len(stream)]:
        tokens.scan(lg._complete_lines(client, stream[pos:pos + size]), 7, by_chunk)
        pos += size
    assert by_chunk == by_line
    assert client.tail == b""


def test_a_changed_byte_fails_the_checksum_and_other_runs_are_foreign() -> None:
    line = bytearray(tokens.encode(7, 1, 5, 9))
    line[20] = ord("y") if line[20] != ord("y") else ord("z")
    found = tokens.Found()
    tokens.scan(bytes(line), 7, found)
    tokens.scan(tokens.encode(8, 1, 5, 9), 7, found)
    assert (found.tokens, found.corrupted, found.foreign) == ([], 1, 1)


# ---------------------------------------------------------------------- pure: stats
def test_percentiles_are_nearest_rank_values_that_really_occurred() -> None:
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile(values, 100) == 100
    assert stats.percentile([], 50) is None
    summary = stats.summary_ms([1_000_000, 2_000_000, 3_000_000])
    assert summary == {"p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0, "count": 3}


def _chat(**changes: Any) -> dict[str, Any]:
    base = {"expected": 100, "delivered": 100, "lost": 0, "duplicated": 0, "corrupted": 0,
            "delivered_percent": 100.0, "freeze_s": 0.01, "frozen_at_end": False,
            "latency_ms": {"p99": 0.5}}
    base.update(changes)
    return base


def test_verdicts_speak_plain_words() -> None:
    assert stats.chat_verdict(_chat()) == (
        True, "every line reached every client once, intact, p99 0.5 ms")
    ok, text = stats.chat_verdict(_chat(delivered=79, lost=21, delivered_percent=79.0,
                                        corrupted=3))
    assert not ok and "21 of 100 deliveries never arrived" in text and "3 lines" in text
    frozen = {"stalled": 1, "dropped": 0, "newcomer_ok": False, "server_rss_growth_kib": 0,
              "chat": _chat(freeze_s=4.2, delivered=79, lost=21, delivered_percent=79.0)}
    ok, text = stats.slow_verdict(frozen, 0.5)
    assert not ok
    assert text.startswith("your server froze for 4.2 s when one client stopped reading")
    assert "newcomer" in text


def test_time_a_virtual_machine_lost_to_its_host_is_reported_as_noise() -> None:
    from netlab.bench import report
    from netlab.bench.watch import steal_percent

    assert steal_percent((10.0, 1000.0), (13.0, 1100.0)) == 3.0
    assert steal_percent(None, (13.0, 1100.0)) is None  # not Linux: no steal figure
    assert steal_percent((10.0, 1000.0), (10.0, 1000.0)) is None  # no time passed
    r = {"target": {"host": "127.0.0.1", "port": 1, "protocol": "netlab"},
         "generator": {"processes": 1, "cpu_percent": {}}, "verdicts": [],
         "machine": {"steal_percent": 3.0}}
    assert "the host took 3.0 % of this machine's CPU time" in report.render(r)
    r["machine"]["steal_percent"] = 0.4
    assert "the host took" not in report.render(r)


def test_machine_cpu_counts_work_done_in_any_process() -> None:
    from netlab.bench.watch import host_busy

    before = host_busy()
    end = time.process_time() + 0.2
    while time.process_time() < end:  # 0.2 s of CPU in this process
        pass
    assert host_busy() - before >= 0.15


def test_the_generator_is_flagged_when_it_used_most_of_a_core() -> None:
    assert stats.generator_note({"chat": 40.0}) is None
    assert "load generator" in (stats.generator_note({"chat": 40.0, "connect": 93.0}) or "")
    assert stats.limited_phases({"chat": 40.0, "connect worker 1": 93.0, "connect": 81.0}) \
        == ["connect", "connect worker 1"]


# ---------------------------------------------------------------------- real runs
def bench(*args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(netlab_cmd("bench", "--json", "--time-limit", "40", *args),
                          capture_output=True, timeout=RUN_TIMEOUT)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        result = {}
    return proc.returncode, result, stderr


class Script:
    """A Python server script of the tests or benchmarks, on a free port, killed at the end."""

    def __init__(self, path: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(path), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        line = _readline(self.proc.stdout, WAIT)
        if not line.startswith(b"listening on "):
            self.kill()
            raise AssertionError(f"{path.name} did not start: {line!r}")
        self.port = int(line.decode().rsplit(":", 1)[1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(WAIT)


@pytest.fixture
def script() -> Iterator[Any]:
    started: list[Script] = []

    def start(path: Path, *args: str) -> Script:
        started.append(Script(path, *args))
        return started[-1]

    yield start
    for s in started:
        s.kill()


def test_bench_against_netlab_counts_every_delivery(server: ServerProcess) -> None:
    code, r, _ = bench("--port", str(server.port), "--clients", "6", "--senders", "2",
                       "--messages", "20", "--rate", "400")
    assert code == 0, r.get("verdicts")
    chat = r["chat"]
    assert chat["expected"] == 2 * 20 * 5 == chat["delivered"]
    assert (chat["lost"], chat["duplicated"], chat["corrupted"]) == (0, 0, 0)
    assert chat["latency_ms"]["count"] == chat["delivered"]
    assert r["connect"]["joined"] == 6 and r["connect"]["failed"] == 0
    assert r["target"]["pid"] == server.pid  # found from the listening port
    assert r["server"]["end"]["threads"] >= 1 and r["ok"] is True
    assert r["type"] == "bench"
    assert chat["server"]["machine_cpu_s_per_million_deliveries"] >= 0
    if sys.platform.startswith("linux"):
        assert 0.0 <= r["machine"]["steal_percent"] <= 100.0


def test_sinks_in_a_worker_process_still_join_and_drain(server: ServerProcess) -> None:
    code, r, _ = bench("--port", str(server.port), "--clients", "10", "--observers", "3",
                       "--workers", "1", "--senders", "2", "--messages", "10")
    assert code == 0, r.get("verdicts")
    assert r["workers"] == [{"clients": 7}] and r["connect"]["joined"] == 10
    assert r["chat"]["delivered"] == r["chat"]["expected"] == 2 * 10 * 2
    # Each phase's CPU is its own, the worker's draining during the chat included.
    assert {"connect", "connect worker 1", "chat", "chat worker 1"} <= set(
        r["generator"]["cpu_percent"])
    assert r["generator"]["limited_phases"] == sorted(
        name for name, p in r["generator"]["cpu_percent"].items() if p > 80)


def test_interleave_spreads_the_few_evenly_among_the_many_and_loses_none() -> None:
    from netlab.bench.scenarios import interleave

    assert interleave([0, 1], [10, 11, 12, 13]) == [0, 10, 11, 1, 12, 13]
    assert interleave([0, 1, 2], []) == [0, 1, 2]
    assert interleave([], [5, 6]) == [5, 6]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_observers_sit_all_along_the_servers_join_order(server: ServerProcess,
                                                       workers: str) -> None:
    """Servers fan a line out in join order: observers bunched at the front would read
    the latency of the first clients served, not of all of them."""
    clients, observers = 150, 5
    code, r, _ = bench("--port", str(server.port), "--clients", str(clients),
                       "--observers", str(observers), "--workers", workers,
                       "--senders", "1", "--messages", "1")
    assert code == 0, r.get("verdicts")
    assert len(r["workers"]) == int(workers)
    deadline = time.monotonic() + WAIT  # the log writer runs behind the room
    while server.log().count(" joined from ") < clients and time.monotonic() < deadline:
        time.sleep(0.05)
    joins = [line.split()[1] for line in server.log().splitlines() if " joined from " in line]
    assert len(joins) == clients
    prefix = joins[0].rstrip("0123456789")
    at = sorted(joins.index(f"{prefix}{i}") for i in range(observers))
    # Loose bounds: sinks join in bursts of up to --concurrency at a time.
    assert at[0] < clients * 0.4 and at[-1] >= clients * 0.6, at
    if workers == "0":  # (a worker process's sinks race the observers: on a loaded
        # machine the middle observer was seen at 122 of 150, the ends still spread)
        assert clients * 0.2 <= at[observers // 2] <= clients * 0.8, at


def test_netlab_drops_stalled_readers_and_the_others_keep_chatting(start_server) -> None:  # type: ignore[no-untyped-def]
    srv = start_server("--max-queue", "64k")
    code, r, _ = bench("--port", str(srv.port), "--clients", "5", "--senders", "3",
                       "--messages", "2500", "--size", "1000", "--max", "--slow-readers", "1")
    slow = r["slow_readers"]
    assert slow["dropped"] == 1, slow
    assert slow["chat"]["lost"] == 0 and slow["newcomer_ok"]
    assert code == 0, r["verdicts"]


def test_bench_reports_a_server_that_corrupts_lines(script) -> None:  # type: ignore[no-untyped-def]
    srv = script(ROOT / "tests" / "broken_server.py", "16")
    # Interleaving needs senders that overlap in time: enough lines that they always do.
    code, r, _ = bench("--port", str(srv.port), "--clients", "4", "--senders", "3",
                       "--messages", "300", "--max")
    assert code == 1
    assert r["chat"]["corrupted"] > 0
    chat_verdict = next(v for v in r["verdicts"] if v["scenario"] == "chat")
    assert not chat_verdict["ok"] and "corrupted" in chat_verdict["text"]


def test_bench_reports_a_server_frozen_by_one_client_that_stopped_reading(script) -> None:  # type: ignore[no-untyped-def]
    srv = script(ROOT / "tests" / "broken_server.py", "65536")
    code, r, _ = bench("--port", str(srv.port), "--clients", "3", "--senders", "2",
                       "--messages", "5000", "--size", "1000", "--max", "--slow-readers", "1")
    assert code == 1
    slow = r["slow_readers"]
    assert slow["dropped"] == 0 and not slow["newcomer_ok"] and slow["chat"]["lost"] > 0
    text = next(v["text"] for v in r["verdicts"] if v["scenario"] == "slow readers")
    assert text.startswith("your server froze for at least"), text


def test_the_tutorial_server_dies_on_a_reset_before_accept(script) -> None:  # type: ignore[no-untyped-def]
    srv = script(ROOT / "benchmarks" / "tutorial_server.py", "0")
    code, r, _ = bench("--port", str(srv.port), "--clients", "0", "--bad-input",
                       "--case", "reset-before-accept")
    assert code == 1
    [case] = r["bad_input"]
    assert not case["ok"]
    assert "server process died" in case["text"] or "could not chat" in case["text"]


def test_the_bare_reference_server_answers_every_churn_round_but_is_no_chat(script) -> None:  # type: ignore[no-untyped-def]
    srv = script(ROOT / "benchmarks" / "bare_server.py", "0")
    code, r, _ = bench("--port", str(srv.port), "--clients", "0", "--churn", "20")
    assert (r["churn"]["ok"], r["churn"]["errors"]) == (20, {})
    assert code == 1 and r["churn"]["pair_ok"] is False  # it relays nothing


def test_the_split_reference_server_relays_every_line_across_its_two_processes(script) -> None:  # type: ignore[no-untyped-def]
    srv = script(ROOT / "benchmarks" / "split_server.py", "0", "2")
    code, r, _ = bench("--port", str(srv.port), "--clients", "20", "--senders", "4",
                       "--messages", "20")
    chat = r["chat"]
    assert chat["delivered"] == chat["expected"] == 4 * 20 * 19 and chat["corrupted"] == 0
    assert code == 0, r.get("verdicts")


def test_the_fanout_floor_times_one_send_per_client() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fanout_floor.py"),
                          "50", "20"], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert out.returncode == 0, out.stderr
    median, p90, fastest = (float(x) for x in re.findall(r"([\d.]+) ms", out.stdout))
    assert out.stdout.startswith("50 clients, one line each:")
    assert 0 < fastest <= median <= p90


def test_churn_and_bad_input_leave_netlab_chatting(server: ServerProcess) -> None:
    code, r, _ = bench("--port", str(server.port), "--clients", "0", "--churn", "40",
                       "--concurrency", "4", "--bad-input", "--case", "nick-non-ascii",
                       "--case", "partial-rst", "--case", "no-nick")
    assert code == 0, r.get("verdicts")
    assert r["churn"]["ok"] == 40 and r["churn"]["pair_ok"]
    assert r["churn"]["back_to_baseline"] is True
    assert [c["case"] for c in r["bad_input"] if c["ok"]] == [
        "nick-non-ascii", "partial-rst", "no-nick"]


@pytest.mark.parametrize("close", ["rst", "fin"])
def test_churn_one_at_a_time_leaves_netlab_as_it_was(server: ServerProcess, close: str) -> None:
    code, r, _ = bench("--port", str(server.port), "--clients", "0", "--churn", "30",
                       "--concurrency", "1", "--close", close)
    assert code == 0, r.get("verdicts")
    assert (r["churn"]["ok"], r["churn"]["failed"], r["churn"]["errors"]) == (30, 0, {})
    assert r["churn"]["back_to_baseline"] is True and r["churn"]["pair_ok"]


def test_churn_one_at_a_time_names_what_went_wrong() -> None:
    # A listener that accepts but never prompts: every round times out in the handshake.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        code, r, _ = bench("--port", str(port), "--pid", str(os.getpid()), "--clients", "0",
                           "--churn", "1", "--concurrency", "1", "--time-limit", "30")
    assert code == 1
    assert r["churn"]["ok"] == 0
    assert r["churn"]["errors"] == {"no NICK prompt within 5 s": 1}


def test_latency_ends_when_the_line_reaches_the_socket_not_when_the_loop_reads_it() -> None:
    from netlab.bench import loadgen as lg

    require(lg.KERNEL_STAMPS, "arrival stamps from the kernel are a Linux feature")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        engine = lg.Engine("127.0.0.1", listener.getsockname()[1], "raw", run=7)
        observer = lg.Client(1, "obs", lg.OBSERVER)
        engine.add([observer], 1)
        engine.loop(lambda: observer.state == lg._READY, time.monotonic() + WAIT)
        server_side, _ = listener.accept()
        with server_side:
            _wait_for_arrival_stamps(server_side, observer.sock)
            engine.tally.expected = 1
            server_side.sendall(tokens.encode(7, 2, 0, lg.send_clock() // 1000))
            time.sleep(0.3)  # the generator is busy elsewhere; the line waits in the socket
            engine.loop(lambda: engine.tally.delivered == 1, time.monotonic() + WAIT)
        engine.close_all()
    [latency_ns] = engine.tally.latencies
    assert 0 <= latency_ns < 100_000_000


def _wait_for_arrival_stamps(sender: socket.socket, receiver: Any) -> None:
    """Linux turns packet stamping on a moment after the first socket asks for it (in
    deferred work): until then packets arrive unstamped."""
    from netlab.bench import loadgen as lg

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        sender.sendall(b"\n")
        time.sleep(0.01)
        with contextlib.suppress(BlockingIOError):
            _, ancillary, _, _ = receiver.recvmsg(16, lg._STAMP_SPACE)
            if lg._arrival(ancillary):
                return
    raise AssertionError("no arrival stamps from the kernel")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_raw_mode_against_a_server_that_asks_for_nicknames_says_so(
        server: ServerProcess) -> None:
    """It failed every line and said only "your server froze"."""
    code, r, _ = bench("--port", str(server.port), "--protocol", "raw",
                       "--clients", "3", "--messages", "3")
    assert code == 1
    last = r["verdicts"][-1]
    assert last["scenario"] == "protocol" and not last["ok"]
    assert "opens with NICK" in last["text"] and "--protocol netlab" in last["text"]


def test_bench_against_ncat_chat_in_raw_mode() -> None:
    ncat = require_tool("ncat")
    for _ in range(5):  # ncat cannot be told port 0 and report it: retry on a lost race
        port = _free_port()
        proc = subprocess.Popen([ncat, "--chat", "-l", "127.0.0.1", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            if proc.poll() is not None:
                continue
            code, r, _ = bench("--port", str(port), "--protocol", "raw", "--clients", "4",
                               "--senders", "2", "--messages", "20")
            assert code == 0, r.get("verdicts")
            assert r["chat"]["delivered"] == r["chat"]["expected"] == 2 * 20 * 3
            return
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(WAIT)
    pytest.fail("ncat --chat did not start on a free port in 5 tries")


# ---------------------------------------------------------------------- the CLI's edges
def test_a_remote_target_is_refused_without_allow_remote() -> None:
    proc = subprocess.run(netlab_cmd("bench", "--host", "192.0.2.1", "--port", "9"),
                          capture_output=True, timeout=WAIT, text=True)
    assert proc.returncode == 2
    assert "not this machine" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("scenario", [
    ["--clients", "2", "--messages", "1"],
    ["--clients", "0", "--churn", "50"],
    ["--clients", "0", "--churn", "50", "--concurrency", "4"],
    ["--clients", "0", "--bad-input", "--case", "no-nick"],  # used to be an internal error
    ["--clients", "0", "--bad-input", "--case", "ansi", "--case", "no-nick"],
])
def test_nobody_listening_is_exit_3_with_the_catalog_explanation(
        scenario: list[str]) -> None:
    port = _free_port()
    code, r, stderr = bench("--port", str(port), *scenario)
    assert code == 3 and r == {}, stderr
    assert "ECONNREFUSED" in stderr and "nothing is listening" in stderr
    assert "internal error" not in stderr and "Traceback" not in stderr


def test_a_server_that_dies_during_the_first_case_fails_that_case_not_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It was there when the run began, so it is no "start the server first" (exit 3):
    the case fails (ncat --chat dies so on `reset-before-accept`). Run in this process
    so that the server's death falls exactly inside the case."""
    from types import SimpleNamespace

    from netlab.bench import misbehave

    listener = socket.create_server(("127.0.0.1", 0))  # bench's first look is let in
    title, reset_before_accept = misbehave.CASES["reset-before-accept"]

    def dies_first(opts: Any) -> str:
        listener.close()  # the server is gone: the case's connects are refused
        return reset_before_accept(opts)

    monkeypatch.setitem(misbehave.CASES, "reset-before-accept", (title, dies_first))
    opts = SimpleNamespace(host="127.0.0.1", port=listener.getsockname()[1],
                           cases=["reset-before-accept"], protocol="netlab",
                           handshake_timeout=5.0)
    [case] = misbehave.bad_input(opts, None, SimpleNamespace(end=time.monotonic() + WAIT),
                                 lambda *args: None)
    assert not case["ok"]
    assert case["detail"].startswith("the case itself could not run: could not connect")


def test_a_pid_that_is_not_the_server_is_a_usage_error(server: ServerProcess) -> None:
    """--pid 1 used to report init's CPU, memory and threads as the server's."""
    code, r, stderr = bench("--port", str(server.port), "--pid", str(os.getpid()),
                            "--clients", "2", "--messages", "1")
    assert code == 2 and r == {}
    assert f"process {os.getpid()} does not listen on port {server.port}" in stderr
    assert f"give the server's pid ({server.pid})" in stderr
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=WAIT)
    code, r, stderr = bench("--port", str(server.port), "--pid", gone.stdout.strip(),
                            "--clients", "2", "--messages", "1")
    assert code == 2 and "does not listen on port" in stderr
    code, r, _ = bench("--port", str(server.port), "--pid", str(server.pid),
                       "--clients", "2", "--messages", "1")
    assert code == 0 and r["target"]["pid"] == server.pid


@pytest.fixture
def run() -> Any:
    """benchmarks/run.py, loaded as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_the_host_disturbed_is_taken_again_a_bounded_number_of_times(
        run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "RETRY_PAUSE", 0.0)
    monkeypatch.setattr(run, "retry_budget", [3])
    steal = iter([9.0, 5.0, 0.5, 9.0, 9.0, 9.0, 9.0, 9.0])

    def one() -> dict[str, Any]:
        return {"machine": {"steal_percent": next(steal)}}

    quiet = run.undisturbed(one)
    assert quiet["machine"]["steal_percent"] == 0.5 and quiet["_retries"] == 2
    assert run.undisturbed(one)["_retries"] == 1  # the table's budget of retries ran out
    assert run.undisturbed(one)["_retries"] == 0
    assert run.noisy(run.undisturbed(one))  # disturbed every time: still marked


def test_the_notes_give_each_reference_servers_figures_marked_like_the_table(
        run: Any) -> None:
    quiet = {"generator": {"limited": False}, "machine": {"steal_percent": 0.1}}
    stolen = {"generator": {"limited": False}, "machine": {"steal_percent": 9.0}}

    def chat(p99: float, cpu: float, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, "chat": {"latency_ms": {"p50": 0.5, "p99": p99},
                                 "server": {"cpu_s_per_million_deliveries": cpu}}}

    refs = {"bare": {**stolen, "churn": {"rounds_per_s": 3400.5}},
            "nodelay 200": chat(6.9, 3.4, quiet), "nodelay 500": chat(150.0, 2.2, stolen),
            "split": {"error": "split server did not start"}}
    bare, nodelay, split = run.reference_notes(refs, 3, "1000")
    assert "took 3400.5 rounds/s ~ one at a time" in bare and "median of 3" in bare
    assert ("at 200 msg/s p50 0.5 / p99 6.9 ms, CPU 3.4 s per million; "
            "at 500 msg/s p50 0.5 / p99 150.0 ms, CPU 2.2 s per million ~") in nodelay
    assert "error: split server did not start at 200 msg/s" in split


def test_the_benchmark_table_marks_limited_and_disturbed_figures(run: Any) -> None:
    quiet = {"generator": {"limited": False}, "machine": {"steal_percent": 0.3}}
    stolen = {"generator": {"limited": False}, "machine": {"steal_percent": 4.0}}
    busy = {"generator": {"limited": True}, "machine": {"steal_percent": None}}
    assert [run.noisy(r) for r in (quiet, stolen, busy)] == [False, True, False]
    table = [{"scenario": "s", "target": "t", "pass": True, "pass_selectors": False,
              "cells": {"netlab": ("1 ms", False, True), "tutorial": ("9 ms", True, False)}}]
    text = run.render(table, 3, (0.1, 0.1, 0.1), [])
    assert "| s | t | 1 ms ~ | yes | not run |  | 9 ms * | not run |" in text


def test_a_figure_is_marked_limited_only_by_the_generators_phase_it_comes_from(
        run: Any) -> None:
    connecting = {"generator": {"limited": True, "limited_phases": ["connect worker 1"]}}
    draining = {"generator": {"limited": True, "limited_phases": ["chat worker 2"]}}
    assert run.limited(connecting, ("connect",)) and not run.limited(connecting, ("chat",))
    assert run.limited(draining, ("chat", "slow readers"))
    assert not run.limited(draining, ("churn",))
    older = {"generator": {"limited": True}}  # before phases were told apart: any phase
    assert run.limited(older, ("chat",))


def test_the_benchmark_table_fails_a_figure_when_the_server_printed_a_traceback(
        run: Any) -> None:
    stderr = ("+ c1 joined\nException in thread netlab-housekeeper:\n"
              "Traceback (most recent call last):\n  File \"x.py\", line 1, in _apply\n"
              "Exception in thread netlab-reader:\n"  # another thread's, interleaved
              "    self._drop(conn)\nRecursionError: maximum recursion depth exceeded\n"
              "- c1 left (reset)\n")
    assert run.tracebacks(stderr) == ["RecursionError: maximum recursion depth exceeded"]
    assert run.tracebacks("+ c1 joined\n") == []
    fine = {"chat": {"p99": 1.0}}
    crashed = {"chat": {"p99": 1.0}, "server_tracebacks": run.tracebacks(stderr)}
    fast = lambda r: r["chat"]["p99"] < 2  # noqa: E731
    assert run._passes(fast, fine) and not run._passes(fast, crashed)
    show = lambda r: f"p99 {r['chat']['p99']} ms"  # noqa: E731
    assert run._cell(show, fine) == "p99 1.0 ms"
    assert run._cell(show, crashed) == ("p99 1.0 ms; SERVER TRACEBACK (1): "
                                        "RecursionError: maximum recursion depth exceeded")


def test_a_run_that_failed_shows_its_error_on_one_line_of_the_table(run: Any) -> None:
    """A multi-line error once broke the README's table, cut mid-word ("n macOS, ...")."""
    refused = ("error: cannot connect 127.0.0.1:4: nothing is listening on 127.0.0.1:4 "
               "(ECONNREFUSED; Errno 111 on Linux, 61 on macOS, WinError 10061 on Windows)\n"
               "  fix: Start the server first\n")
    assert run.error_text(refused).startswith("cannot connect 127.0.0.1:4: nothing is")
    crash = "Traceback (most recent call last):\n  File \"x\"\nKeyError: 'a|b'\n"
    assert run.error_text(crash) == "KeyError: 'a/b'"  # a | would end the cell
    assert run.error_text("") == "no output"
    cell = run._cell(lambda r: "n/a", {"error": run.error_text(refused)})
    assert "\n" not in cell and cell.startswith("error: cannot connect")


def test_the_benchmark_takes_each_servers_runs_in_turns_and_keeps_the_median(
        run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    figures = {"a": iter([5.0, 1.0, 3.0]), "b": iter([2.0, 9.0, 4.0])}

    def fake_bench(kind: str, *args: str, limit: float = 180) -> dict[str, object]:
        order.append(kind)
        return {"p99": next(figures[kind])}

    monkeypatch.setattr(run, "bench", fake_bench)
    chosen = run.interleaved(("a", "b"), 3, lambda r: r["p99"], "--clients", "1")
    assert order == ["a", "b", "a", "b", "a", "b"]  # a burst of host load hits both
    assert chosen["a"]["p99"] == 3.0 and chosen["b"]["p99"] == 4.0
    assert chosen["a"]["_values"] == [1.0, 3.0, 5.0]
