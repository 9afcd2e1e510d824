"""End to end: a real `netlab serve` process, real sockets on loopback, real nc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import (
    WAIT,
    LineClient,
    ServerProcess,
    _readline,
    connect_and_reset,
    netlab_cmd,
    require,
    require_tool,
)

Connect = Callable[..., LineClient]


def wait_until(check: Callable[[], bool], timeout: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def test_first_line_is_exactly_where_it_listens(server: ServerProcess) -> None:
    assert server.first_line == f"listening on 127.0.0.1:{server.port}"
    assert server.port > 0


def test_several_clients_chat_and_all_see_one_order(connect: Connect) -> None:
    clients = [connect(nick) for nick in ("alice", "bob", "carol")]
    for c in clients:  # consume the join notices of later clients
        for nick in ("bob", "carol")[clients.index(c):]:
            c.expect(f"*** {nick} joined")
    for i in range(20):
        clients[i % 3].send(f"message {i}")
    expected = [f"{('alice', 'bob', 'carol')[i % 3]}: message {i}" for i in range(20)]
    orders = []
    for c in clients:
        got = [c.expect(lambda line: ": message " in line) for _ in range(20)]
        orders.append(got)
    assert orders[0] == orders[1] == orders[2]
    assert sorted(orders[0]) == sorted(expected)


def test_nc_is_a_real_client(server: ServerProcess, connect: Connect) -> None:
    nc = require_tool("nc")
    alice = connect("alice")
    proc = subprocess.Popen([nc, "127.0.0.1", str(server.port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"ncuser\r\n")
        proc.stdin.flush()
        alice.expect("*** ncuser joined")
        proc.stdin.write(b"hello from nc\n")
        proc.stdin.flush()
        assert alice.expect(lambda line: line.startswith("ncuser:")) == "ncuser: hello from nc"
        alice.send("hi nc")
        alice.expect("alice: hi nc")  # broadcast to nc too, in the same locked step
        proc.stdin.write(b"/quit\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
    text = out.decode()
    assert text.startswith("NICK\r\n*** Welcome, ncuser! 2 online")
    assert "alice: hi nc\r\n" in text
    assert "*** ncuser left (quit)\r\n" in text
    alice.expect("*** ncuser left (quit)")


def test_duplicate_nickname_is_refused_then_another_accepted(connect: Connect) -> None:
    connect("alice")
    second = connect()
    second.expect("NICK")
    second.send("ALICE")
    assert second.expect(lambda line: line.startswith("! ")) == (
        "! nickname ALICE is taken, choose another")
    second.expect("NICK")
    second.send("alice2")
    second.expect(lambda line: line.startswith("*** Welcome, alice2!"))


def test_non_ascii_and_empty_nicknames(connect: Connect) -> None:
    client = connect()
    client.expect("NICK")
    client.send("")
    client.send("x" * 1000)
    client.expect(lambda line: "too long" in line)
    client.send("Zoë")
    client.expect(lambda line: line.startswith("*** Welcome, Zoë!"))


def test_invalid_utf8_and_escapes_are_made_harmless(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.send(b"caf\xe9 \x1b[2J\xff\n")
    assert bob.expect(lambda line: line.startswith("alice:")) == "alice: caf\ufffd \\x1b[2J\ufffd"


def test_a_10mb_line_is_refused_and_the_connection_stays(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.send(b"z" * 10_000_000 + b"\n")
    assert alice.expect(lambda line: line.startswith("! ")) == "! line too long (max 4096 bytes)"
    alice.send("still here")
    bob.expect("alice: still here")


def test_rst_in_the_middle_of_a_line(connect: Connect) -> None:
    alice, bob = connect("alice"), connect("bob")
    alice.expect("*** bob joined")
    bob.send(b"half a li")
    time.sleep(0.05)
    bob.reset()
    alice.expect("*** bob left (reset)")
    carol = connect("carol")
    carol.send("after the reset")
    alice.expect("carol: after the reset")


def test_a_client_that_never_reads_is_dropped_and_delays_nobody(
    start_server: Callable[..., ServerProcess],
) -> None:
    srv = start_server("--max-queue", "256k")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up fast
    stalled.settimeout(WAIT)
    stalled.connect(("127.0.0.1", srv.port))
    stalled.sendall(b"sloth\n")  # joins, then never reads again
    alice = LineClient(srv.port).join("alice")
    bob = LineClient(srv.port).join("bob")
    alice.expect("*** bob joined")
    line = "x" * 4000
    started = time.monotonic()
    # About 8 MB towards the stalled reader: more than the kernel's buffers (up to ~4 MB
    # on loopback) plus the server's 256 KiB backlog.
    for i in range(2000):
        alice.send(f"{i} {line}")
        if i % 100 == 99:  # flow control: stay at most 100 lines ahead of the readers
            for reader in (alice, bob):
                reader.expect(lambda got, i=i: got.startswith(f"alice: {i} "))
    elapsed = time.monotonic() - started
    assert "*** sloth left (too slow)" in bob.history
    newcomer = LineClient(srv.port).join("late")
    newcomer.send("made it")
    bob.expect("late: made it")
    assert elapsed < WAIT
    stalled.close()


def test_silent_client_in_handshake_blocks_no_one_and_times_out(
    start_server: Callable[..., ServerProcess],
) -> None:
    srv = start_server("--handshake-timeout", "0.5")
    silent = LineClient(srv.port)
    silent.expect("NICK")
    alice = LineClient(srv.port).join("alice")  # joins while the silent one waits
    assert alice.lines == []
    assert silent.wait_closed() == ["! nickname timeout"]


def test_a_silent_client_after_quick_handshakes_still_times_out_on_time(
    start_server: Callable[..., ServerProcess],
) -> None:
    # Handshakes that end at once leave the housekeeper nothing to watch; the silent
    # client's deadline must still be kept, though no wake-up announces it.
    srv = start_server("--handshake-timeout", "0.5")
    for i in range(20):
        LineClient(srv.port).join(f"quick{i}").close()
    silent = LineClient(srv.port)
    silent.expect("NICK")
    started = time.monotonic()
    assert silent.wait_closed() == ["! nickname timeout"]
    assert 0.4 < time.monotonic() - started < 0.5 + 0.5


def test_every_join_and_leave_of_a_burst_reaches_the_log(tmp_path: Path) -> None:
    srv = ServerProcess(log=tmp_path / "err.log")
    for i in range(200):
        LineClient(srv.port).join(f"n{i}").reset()
    last = LineClient(srv.port).join("last")

    def only_last_online() -> bool:
        last.send("/who")
        return last.expect(lambda got: got.startswith("*** online")) == "*** online (1): last"

    wait_until(only_last_online, what="the server to see every reset")
    assert srv.stop() == 0  # the log writer finishes before the process ends
    log = srv.log()
    assert sum(f"+ n{i} joined from" in log for i in range(200)) == 200
    assert sum(f"- n{i} left (" in log for i in range(200)) == 200


def test_server_full_refuses_with_a_line(start_server: Callable[..., ServerProcess]) -> None:
    srv = start_server("--max-clients", "2")
    a = LineClient(srv.port).join("a")
    waiting = LineClient(srv.port)
    waiting.expect("NICK")  # in the handshake: counts too
    third = LineClient(srv.port)
    assert third.wait_closed() == ["! server full (max 2 clients)"]
    a.send("still fine")
    a.expect("a: still fine")
    waiting.close()


def test_ctrl_c_tells_clients_and_exits_0_without_traceback(tmp_path: Path) -> None:
    srv = ServerProcess(log=tmp_path / "err.log")
    client = LineClient(srv.port).join("alice")
    started = time.monotonic()
    assert srv.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 2.0
    assert client.wait_closed() == ["*** server shutdown"]
    assert "Traceback" not in srv.log()
    assert "stopped after" in srv.log()


def test_sigterm_is_a_normal_stop(server: ServerProcess) -> None:
    assert server.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("engine", ["threads", "selectors"])
def test_an_idle_server_wakes_no_thread_and_still_stops_at_once(
        start_server: Callable[..., ServerProcess], engine: str) -> None:
    """Idle CPU 0 %: no thread polls on a timer (a laptop's battery, a class of 30)."""
    require(os.path.isdir(f"/proc/{os.getpid()}/task"), "needs Linux's /proc")
    srv = start_server("--engine", engine)
    proc = psutil.Process(srv.pid)

    def switches() -> int:
        return sum(sum(psutil.Process(t.id).num_ctx_switches()) for t in proc.threads())

    time.sleep(0.5)  # let the threads start and settle
    before = switches()
    time.sleep(1.5)
    assert switches() == before
    started = time.monotonic()
    assert srv.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 2.0


def test_restart_on_the_same_port_right_after_a_stop(tmp_path: Path) -> None:
    first = ServerProcess(log=tmp_path / "1.log")
    client = LineClient(first.port).join("alice")
    assert first.stop() == 0  # the server closes first: its side sits in TIME_WAIT
    client.wait_closed()
    client.close()
    proc = subprocess.Popen(netlab_cmd("serve", "--port", str(first.port)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().decode().strip() == f"listening on 127.0.0.1:{first.port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=WAIT)
    assert proc.returncode == 0


def test_bind_to_an_address_of_another_machine(tmp_path: Path) -> None:
    # Documentation ranges (RFC 5737) are meant never to be on a real interface, but some
    # sandboxes use them: take the first one that this machine really does not have.
    local = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    address = next(a for a in ("192.0.2.7", "198.51.100.7", "203.0.113.7") if a not in local)
    result = subprocess.run(netlab_cmd("serve", "--host", address, "--port", "0"),
                            capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 3
    assert result.stdout == ""
    assert f"{address} is not an address of this machine" in result.stderr
    assert "EADDRNOTAVAIL" in result.stderr and "WinError 10049" in result.stderr
    assert "Traceback" not in result.stderr


def test_bind_to_a_port_in_use() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = subprocess.run(netlab_cmd("serve", "--port", str(port)),
                                capture_output=True, text=True, timeout=WAIT)
    finally:
        holder.close()
    assert result.returncode == 3
    assert f"port {port} is already in use" in result.stderr
    assert "EADDRINUSE" in result.stderr and "Traceback" not in result.stderr


def test_ipv6_loopback(start_server: Callable[..., ServerProcess]) -> None:
    require(socket.has_ipv6 and _ipv6_loopback_works(), "IPv6 loopback is not available")
    srv = start_server(host="::1")
    assert srv.first_line == f"listening on [::1]:{srv.port}"
    client = LineClient(srv.port, host="::1").join("six")
    client.send("over ipv6")
    client.expect("six: over ipv6")


def test_a_pasted_host_is_taken_as_meant(start_server: Callable[..., ServerProcess]) -> None:
    srv = start_server(host=" 127.0.0.1 ")  # copied with the spaces around it
    assert srv.first_line == f"listening on 127.0.0.1:{srv.port}"
    LineClient(srv.port).join("paste")
    if socket.has_ipv6 and _ipv6_loopback_works():
        srv6 = start_server(host="[::1]")  # as a URL writes it
        assert srv6.first_line == f"listening on [::1]:{srv6.port}"


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_trace_shows_the_socket_calls(start_server: Callable[..., ServerProcess]) -> None:
    srv = start_server("--trace")
    client = LineClient(srv.port).join("alice")
    client.send("hi")
    client.expect("alice: hi")
    client.close()
    srv.stop()
    log = srv.log()
    for call in ("accept()", "recv()", "send()", "close()"):
        assert f"trace: {call}" in log


def test_connect_abort_cycles_leave_no_threads_or_fds_behind(server: ServerProcess) -> None:
    proc = psutil.Process(server.pid)
    baseline_threads, baseline_fds = proc.num_threads(), proc.num_fds()
    connect_and_reset(server.port, 2000)
    survivor = LineClient(server.port).join("survivor")
    wait_until(lambda: proc.num_threads() <= baseline_threads + 1, what="threads to settle")
    wait_until(lambda: proc.num_fds() <= baseline_fds + 1, what="fds to settle")
    survivor.send("alive")
    survivor.expect("survivor: alive")


def test_a_low_fd_limit_lowers_capacity_and_refuses_politely(tmp_path: Path) -> None:
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))

    proc = subprocess.Popen(netlab_cmd("serve", "--port", "0", "--max-clients", "1000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=low_limit)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().decode().rsplit(":", 1)[1])
        clients = [LineClient(port) for _ in range(36)]  # 100 fds minus a margin of 64
        for c in clients:
            c.expect("NICK")
        extra = LineClient(port)
        assert extra.wait_closed() == ["! server full (max 36 clients)"]
        clients[0].send("ok")  # still serving
        clients[0].expect(lambda line: line.startswith("*** Welcome, ok!"))
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0
    assert b"above what the file-descriptor limit allows; using 36" in err
    assert err.count(b"server full") == 1  # logged once, not per refusal


def test_classroom_bind_lists_the_addresses_to_give_classmates(
    start_server: Callable[..., ServerProcess],
) -> None:
    srv = start_server(host="0.0.0.0")
    assert srv.first_line == f"listening on 0.0.0.0:{srv.port}"
    assert srv.proc.stdout is not None
    from tests.conftest import _readline

    following = _readline(srv.proc.stdout, WAIT).decode()
    lan = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
           if a.family == socket.AF_INET and not a.address.startswith("127.")]
    if lan:
        assert following == "classmates can connect to:\n"
        hint = _readline(srv.proc.stdout, WAIT).decode()
        assert hint.strip().startswith("netlab chat --host ")
        assert any(f"--host {address} --port {srv.port}" in hint for address in lan)
    else:
        assert following.startswith("no network address found")
    client = LineClient(srv.port).join("local")  # loopback works on a wildcard bind too
    client.close()


def test_accepted_sockets_send_at_once_and_find_dead_peers() -> None:
    """TCP_NODELAY (no 40 ms Nagle wait) and keepalive (60 s idle, 3 probes 10 s apart)."""
    from netlab.chat.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(port=0))
    _, port = server.bind()
    server.start()
    try:
        client = LineClient(port).join("probe")
        with server._lock.raw:
            (conn,) = server._conns
        sock = conn.sock
        assert sock.getblocking()  # its reader thread blocks in recv()
        if sys.platform != "win32":
            import fcntl

            assert not fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        client.close()
    finally:
        server.stop()


def test_debug_shows_the_traceback_that_is_otherwise_hidden() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = str(holder.getsockname()[1])
    try:
        quiet = subprocess.run(netlab_cmd("serve", "--port", port), capture_output=True,
                               text=True, timeout=WAIT)
        loud = subprocess.run(netlab_cmd("--debug", "serve", "--port", port),
                              capture_output=True, text=True, timeout=WAIT)
    finally:
        holder.close()
    assert quiet.returncode == 3 and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "SocketProblem" in loud.stderr


@pytest.mark.parametrize("engine", ["threads", "selectors"])
def test_json_mode_streams_only_the_documented_lines_on_stdout(
        tmp_path: Path, engine: str) -> None:
    import json

    err = open(tmp_path / "err.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(netlab_cmd("serve", "--port", "0", "--json", "--engine", engine),
                            stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    err.close()
    try:
        listening = json.loads(_readline(proc.stdout, WAIT))  # type: ignore[arg-type]
        assert listening == {"type": "listening", "host": "127.0.0.1",
                             "port": listening["port"], "max_clients": listening["max_clients"]}
        assert listening["port"] > 0 and listening["max_clients"] > 0
        alice = LineClient(listening["port"]).join("alice")
        bob = LineClient(listening["port"]).join("bob")
        alice.expect("*** bob joined")
        alice.send("hello")
        bob.expect("alice: hello")
        bob.send("/quit")
        alice.expect("*** bob left (quit)")
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in rest.decode().splitlines()]
    # (alice, still in at the stop, gets no leave: "stopped" ends everyone's session)
    assert [line["type"] for line in lines] == ["join", "join", "leave", "stopped"]
    joined, _, quit_, stopped = lines
    assert joined["nick"] == "alice" and joined["online"] == 1
    assert joined["peer"] == f"127.0.0.1:{alice.sock.getsockname()[1]}"
    assert joined["t"][:4].isdigit() and "T" in joined["t"]  # local ISO time, as the class log
    assert (quit_["nick"], quit_["reason"], quit_["online"]) == ("bob", "quit", 1)
    # Lines received: two nicknames, "hello" and "/quit".
    assert (stopped["connections"], stopped["joined"], stopped["peak_online"],
            stopped["lines"], stopped["refused"], stopped["dropped_too_slow"]) == (2, 2, 2, 4, 0, 0)
    assert proc.returncode == 0
    assert "+ alice joined" in (tmp_path / "err.log").read_text()


def test_hundreds_of_clients_dying_at_once_are_dropped_without_recursion(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One flush may find hundreds of dead peers; dropping each announces a departure that
    may find more. That cascade is a loop, not a recursion 2 frames deep per client (which
    past ~500 clients killed the thread doing the flush)."""
    from netlab.chat.server import ChatServer, ServerConfig
    from netlab.chat.sockets import raise_fd_limit

    require((raise_fd_limit() or 1 << 20) >= 2 * 700 + 100, "needs 1,500 fds")
    crashed: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    server = ChatServer(ServerConfig(port=0), log=lambda text: None)
    _, port = server.bind()
    server.start()
    try:
        clients = [LineClient(port).join(f"c{i}") for i in range(700)]
        with server._lock.raw:  # readers see their RST only after all 700 are sent
            for c in clients:
                c.reset()
        wait_until(lambda: server.online == 0, what="every dead client dropped")
        alice, bob = LineClient(port).join("alice"), LineClient(port).join("bob")
        alice.expect("*** bob joined")  # held notices need a living housekeeper
        bob.send("still here")
        alice.expect("bob: still here")
        assert crashed == []
    finally:
        server.stop()


def test_a_burst_of_log_lines_is_one_write_and_an_overflow_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each write releases the interpreter lock: a write per line made the log writer trade
    it with the serving threads twice per line. Lines beyond the queue's bound are counted
    and the count is logged, never silently lost."""
    import netlab.chat.server as chat_server

    monkeypatch.setattr(chat_server, "_LOG_MAX", 100)
    calls: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def sink(text: str) -> None:
        calls.append(text)
        entered.set()
        release.wait(WAIT)

    server = chat_server.ChatServer(chat_server.ServerConfig(port=0), log=sink)
    server.bind()
    server.start()
    try:
        server.log("first")
        assert entered.wait(WAIT)  # the writer is busy with "first": the rest piles up
        for i in range(300):
            server.log(f"line {i}")
        release.set()
        wait_until(lambda: len(calls) >= 2, what="the second batch")
    finally:
        release.set()
        server.stop()
    assert calls[0] == "first"
    assert calls[1].split("\n") == [f"line {i}" for i in range(100)] + [
        "(200 log lines skipped: the log was not read fast enough)"]


def test_an_uncontended_line_goes_straight_to_every_client_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Queueing a line per client pays off only when several lines can share a send();
    when nobody else wants the lock it is bookkeeping alone (at 1,000 clients, 5 ms a line
    instead of 3). A client that still has a join notice held back gets the line after
    the notice, never before it."""
    from netlab.chat.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(port=0), log=lambda text: None)
    _, port = server.bind()
    server.start()
    try:
        clients = [LineClient(port).join(f"c{i}") for i in range(40)]
        for c in clients[:-1]:
            c.expect("*** c39 joined")
        queued: list[object] = []
        deliver = server._deliver
        monkeypatch.setattr(server, "_deliver", lambda *a, **k: (queued.append(a[0]),
                                                                deliver(*a, **k)))
        clients[0].send("to everyone")
        for c in clients:
            assert c.expect(lambda line: ": " in line) == "c0: to everyone"
        assert queued == []  # nothing went through a queue
        late = LineClient(port).join("late")  # its notice is held back for the others...
        clients[1].send("right after")  # ...so this line queues behind it for them
        for c in clients:
            assert c.expect(lambda line: line.startswith(("***", "c1:"))) == "*** late joined"
            assert c.expect(lambda line: line.startswith("c1:")) == "c1: right after"
        assert late.expect(lambda line: line.startswith("c1:")) == "c1: right after"
    finally:
        server.stop()


def test_lines_said_while_others_wait_go_out_together_in_one_order() -> None:
    """Under contention a broadcast waits for the lock's last waiter, which sends it with
    the others to each member in one send(). A newcomer still gets none of the lines said
    before it joined, and a client that quits gets every line said before its /quit."""
    from netlab.chat.server import ChatServer, ServerConfig

    server = ChatServer(ServerConfig(port=0), log=lambda text: None)
    _, port = server.bind()
    server.start()
    try:
        alice, bob, dave = (LineClient(port).join(n) for n in ("alice", "bob", "dave"))
        alice.expect("*** dave joined")
        bob.expect("*** dave joined")
        carol = LineClient(port)
        carol.expect("NICK")
        with server._lock:
            conns = {server.room.nick(c): c for c in server.room.members()}
            (newcomer,) = server._handshaking
            server._lock._waiters.append(None)  # as if another reader waited for the lock
            server._receive(conns["alice"], b"one")
            assert server._pending  # waiting for company, not sent yet
            server._receive(newcomer, b"carol")
            server._receive(conns["bob"], b"two")
            server._receive(conns["dave"], b"/quit")
            server._lock._waiters.pop()  # the last one out sends everything
        said = ["alice: one", "*** carol joined", "bob: two", "*** dave left (quit)"]
        for client in (alice, bob, dave):
            assert [client.expect(lambda line: not line.startswith("*** Welcome"))
                    for _ in said] == said
        assert carol.expect(lambda line: True).startswith("*** Welcome, carol!")
        assert [carol.expect(lambda line: True) for _ in said[1:]] == said[1:]
    finally:
        server.stop()
