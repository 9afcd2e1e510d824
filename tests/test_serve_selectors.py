"""`netlab serve --engine selectors`: the same protocol, limits and manners, one thread."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Callable

import psutil
import pytest

from tests.conftest import WAIT, LineClient, ServerProcess, connect_and_reset
from tests.test_fault_suite import run_chaos

Start = Callable[..., ServerProcess]
ENGINE = ("--engine", "selectors")


@pytest.fixture
def loop_server(start_server: Start) -> ServerProcess:
    return start_server(*ENGINE)


def test_clients_chat_in_one_order(loop_server: ServerProcess) -> None:
    alice = LineClient(loop_server.port).join("alice")
    bob = LineClient(loop_server.port).join("bob")
    alice.expect("*** bob joined")
    for i in range(10):
        (alice, bob)[i % 2].send(f"m{i}")
    seen = [[c.expect(lambda line: ": m" in line) for _ in range(10)] for c in (alice, bob)]
    assert seen[0] == seen[1]
    bob.send("/msg alice psst")
    alice.expect("[pm] bob -> alice: psst")
    bob.send("/quit")
    assert bob.wait_closed()[-1] == "*** bob left (quit)"
    alice.expect("*** bob left (quit)")


def test_bad_input_leaves_the_others_chatting(loop_server: ServerProcess) -> None:
    alice = LineClient(loop_server.port).join("alice")
    bob = LineClient(loop_server.port).join("bob")
    alice.send(b"z" * 5_000_000 + b"\n")
    assert alice.expect(lambda line: line.startswith("! ")) == "! line too long (max 4096 bytes)"
    alice.send(b"\xff\x1b[2J\n")
    assert bob.expect(lambda line: line.startswith("alice:")) == "alice: \ufffd\\x1b[2J"
    carol = LineClient(loop_server.port)
    carol.send(b"half a li")
    carol.reset()
    bob.send("still here")
    alice.expect("bob: still here")


def test_a_client_that_never_reads_is_dropped(start_server: Start) -> None:
    srv = start_server(*ENGINE, "--max-queue", "256k")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.settimeout(WAIT)
    stalled.connect(("127.0.0.1", srv.port))
    stalled.sendall(b"sloth\n")
    alice = LineClient(srv.port).join("alice")
    bob = LineClient(srv.port).join("bob")
    line = "x" * 4000
    for i in range(2000):
        alice.send(f"{i} {line}")
        if i % 100 == 99:
            for reader in (alice, bob):
                reader.expect(lambda got, i=i: got.startswith(f"alice: {i} "))
    assert "*** sloth left (too slow)" in bob.history
    stalled.close()


def test_handshake_timeout_and_server_full(start_server: Start) -> None:
    srv = start_server(*ENGINE, "--handshake-timeout", "0.5", "--max-clients", "2")
    silent = LineClient(srv.port)
    silent.expect("NICK")
    alice = LineClient(srv.port).join("alice")
    assert LineClient(srv.port).wait_closed() == ["! server full (max 2 clients)"]
    assert silent.wait_closed() == ["! nickname timeout"]
    alice.send("ok")
    alice.expect("alice: ok")


def test_churn_leaves_no_fds_and_ctrl_c_says_goodbye(loop_server: ServerProcess) -> None:
    proc = psutil.Process(loop_server.pid)
    base_fds, base_threads = proc.num_fds(), proc.num_threads()
    connect_and_reset(loop_server.port, 1000)
    client = LineClient(loop_server.port).join("last")
    deadline = time.monotonic() + WAIT
    while proc.num_fds() > base_fds + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.num_fds() <= base_fds + 1
    assert proc.num_threads() == base_threads  # one thread serves them all
    assert loop_server.stop(signal.SIGINT) == 0
    assert client.wait_closed() == ["*** server shutdown"]


@pytest.mark.parametrize("engine", ["threads", "selectors"])
def test_a_started_server_has_all_its_descriptors_open(engine: str) -> None:
    """Once start() returns, counting the server's descriptors is fair: none is opened
    later by a thread still starting (the loop's selector once was, and a leak check
    that counted too early saw it as a leaked fd)."""
    from netlab.chat.evloop import EventLoopServer
    from netlab.chat.server import ChatServer, ServerConfig

    kind = EventLoopServer if engine == "selectors" else ChatServer
    me = psutil.Process()
    for _ in range(30):  # the old race lost about one start in four
        server = kind(ServerConfig(port=0), log=lambda text: None)
        server.start()
        try:
            at_start = me.num_fds()
            time.sleep(0.01)
            assert me.num_fds() == at_start
        finally:
            server.stop()


class FakeClock:
    """Time moves only when select() says so: the polling rule, without timing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[float | None] = []

    def __call__(self) -> float:
        return self.now

    def selector(self, answers: list[tuple[float, list[str]]]) -> Callable:
        """Each select() call takes the next (seconds it lasts, events) answer."""
        def select(timeout: float | None) -> list[str]:
            self.calls.append(timeout)
            took, events = answers.pop(0)
            self.now += took
            return events
        return select


def test_after_a_short_wait_the_loop_polls_before_it_sleeps() -> None:
    from netlab.chat.evloop import BusyPoll

    clock = FakeClock()
    poll = BusyPoll(0.001, clock=clock)
    select = clock.selector([(0, []), (0.0002, ["nick"]), (0.0001, []), (0.0001, ["bye"])])
    assert poll.wait(select, None) == ["nick"]  # first wait: a look, then it sleeps
    assert clock.calls == [0, None]
    assert poll.wait(select, None) == ["bye"]  # the answer came fast: now it polls
    assert clock.calls == [0, None, 0, 0]


def test_a_poll_that_finds_nothing_sleeps_and_turns_polling_off() -> None:
    from netlab.chat.evloop import BusyPoll

    clock = FakeClock()
    poll = BusyPoll(0.001, clock=clock)
    poll.polling = True
    select = clock.selector([(0.0004, [])] * 4 + [(5.0, ["line"]), (0, []), (5.0, ["line"])])
    assert poll.wait(select, None) == ["line"]
    assert clock.calls == [0, 0, 0, 0, None]  # polled for the window, then slept
    assert not poll.polling
    assert poll.wait(select, None) == ["line"]
    assert clock.calls[-2:] == [0, None]  # an idle server sleeps after one look


@pytest.mark.parametrize("polling", [False, True])
def test_lines_already_waiting_teach_nothing(polling: bool) -> None:
    """A busy chat finds its next lines at once: that says nothing of a fast reply."""
    from netlab.chat.evloop import BusyPoll

    clock = FakeClock()
    poll = BusyPoll(0.001, clock=clock)
    poll.polling = polling
    assert poll.wait(clock.selector([(0, ["line"])]), None) == ["line"]
    assert clock.calls == [0] and poll.polling is polling


def test_no_polling_past_a_deadline_nor_with_a_window_of_zero() -> None:
    from netlab.chat.evloop import BusyPoll

    clock = FakeClock()
    poll = BusyPoll(0.001, clock=clock)
    poll.polling = True
    assert poll.wait(clock.selector([(0, [])]), 0.0) == []
    assert clock.calls == [0]  # a handshake deadline is due: one look, no polling
    assert poll.wait(clock.selector([(0, []), (0.0005, [])]), 0.0005) == []
    assert clock.calls[1:] == [0, 0.0005]  # due within the window: no polling either
    one_cpu = BusyPoll(0.0, clock=clock)
    for _ in range(3):
        one_cpu.wait(clock.selector([(0, []), (0, ["x"])]), None)
    assert clock.calls[3:] == [0, None] * 3 and not one_cpu.polling


def test_a_server_that_chatted_fast_sleeps_once_it_is_idle(loop_server: ServerProcess) -> None:
    """Polling ends after one window: idle CPU goes back to 0 after a burst."""
    alice = LineClient(loop_server.port).join("alice")
    for i in range(200):  # a ping-pong: each line comes back before the next goes
        alice.send(f"ping {i}")
        alice.expect(f"alice: ping {i}")
    proc = psutil.Process(loop_server.pid)
    time.sleep(0.2)
    before = sum(proc.cpu_times()[:2])
    time.sleep(1.0)
    assert sum(proc.cpu_times()[:2]) - before < 0.05


def test_random_abuse(start_server: Start) -> None:
    def with_engine(*args: str, **kwargs: str) -> ServerProcess:
        return start_server(*ENGINE, *args, **kwargs)

    run_chaos(with_engine, seed=99, rounds=15)


def test_a_round_sends_each_client_its_lines_in_order_and_no_line_from_before_it_joined(
) -> None:
    """One round of the loop, driven by hand over socketpairs: the round's broadcasts go to
    each member in one send(), yet a newcomer gets none of the lines said before it
    joined, and a client that quits gets every line said before its /quit."""
    import selectors

    from netlab.chat.evloop import EventLoopServer, LoopConn
    from netlab.chat.server import ServerConfig

    server = EventLoopServer(ServerConfig(port=0), log=lambda text: None)
    server._sel = selectors.DefaultSelector()
    peers = {}

    def connect(nick: str) -> LoopConn:
        mine, theirs = socket.socketpair()
        mine.setblocking(False)
        theirs.settimeout(WAIT)
        conn = LoopConn(mine, nick, 4096)
        server._sel.register(mine, selectors.EVENT_READ, conn)
        server._greet(conn)
        peers[nick] = theirs
        return conn

    def say(conn: LoopConn, nick: str, line: str) -> None:
        peers[nick].sendall(line.encode() + b"\n")
        server._read(conn)

    def lines(nick: str) -> list[str]:
        peers[nick].settimeout(0.2)
        data = b""
        with contextlib.suppress(TimeoutError, BlockingIOError):
            while chunk := peers[nick].recv(65536):
                data += chunk
        return data.decode().splitlines()

    alice, bob, dave = connect("alice"), connect("bob"), connect("dave")
    for conn, nick in ((alice, "alice"), (bob, "bob"), (dave, "dave")):
        say(conn, nick, nick)
    server._round()
    for nick in ("alice", "bob", "dave"):
        lines(nick)  # prompts, welcomes, join notices
    carol = connect("carol")
    server._round()
    assert lines("carol") == ["NICK"]

    say(alice, "alice", "one")  # one round: a line, a newcomer, a line, a /quit
    say(carol, "carol", "carol")
    say(bob, "bob", "two")
    say(dave, "dave", "/quit")
    server._round()
    said = ["alice: one", "*** carol joined", "bob: two", "*** dave left (quit)"]
    assert lines("alice") == said
    assert lines("bob") == said
    welcome, *rest = lines("carol")
    assert welcome.startswith("*** Welcome, carol!")
    assert rest == said[1:]  # nothing said before it came
    assert lines("dave") == said  # the leaver gets a copy of its own departure

    queued: list[object] = []
    deliver = server._deliver
    server._deliver = lambda *a, **k: (queued.append(a[0]), deliver(*a, **k))  # type: ignore[method-assign]
    say(alice, "alice", "three")
    say(bob, "bob", "four")
    server._round()
    assert lines("carol") == ["alice: three", "bob: four"]
    assert queued == []  # plain lines from members: one send per member, no queue
