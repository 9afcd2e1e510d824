"""A running server under random abuse: well-behaved clients must not notice.

Chaotic clients send random bytes, partial and huge lines, never read, and close or reset
at random moments, while three polite clients chat. Every polite message must reach every
polite client, in order, and the server's threads and fds must return to their baseline.
Both engines: the threaded one (the default) and `--engine selectors`.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable

import psutil
import pytest

from tests.conftest import WAIT, LineClient, ServerProcess


def chaos_client(port: int, rng: random.Random) -> None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    except OSError:
        return
    try:
        sock.settimeout(1.0)
        for _ in range(rng.randint(0, 6)):
            kind = rng.choice(["random", "partial", "huge", "nick", "text", "read"])
            if kind == "random":
                data = rng.randbytes(rng.randint(1, 3000))
            elif kind == "partial":
                data = b"half a line without its end"
            elif kind == "huge":
                data = b"h" * rng.randint(5000, 200_000) + b"\n"
            elif kind == "nick":
                data = rng.choice([b"chaos\n", b"\xff\xfe\n", b"x" * 1000 + b"\n", b"\n",
                                   f"c{rng.randint(0, 10**6)}\n".encode()])
            elif kind == "text":
                data = b"\x1b[2Jhello\x07\r\n"
            else:
                sock.recv(4096)
                continue
            sock.sendall(data)
    except OSError:
        pass
    finally:
        if rng.random() < 0.5:  # abort: RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class Reader(threading.Thread):
    """A polite client that never stops reading."""

    def __init__(self, client: LineClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and not self.client.closed:
            self.client._fill(time.monotonic() + 0.2)


def wait_until(check: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def run_chaos(start_server: Callable[..., ServerProcess], seed: int, rounds: int,
              engine: str = "threads") -> None:
    rng = random.Random(seed)
    srv = start_server("--max-line", "1024", "--max-queue", "64k", "--handshake-timeout", "2",
                       "--engine", engine)
    proc = psutil.Process(srv.pid)
    polite = [LineClient(srv.port).join(f"polite{i}") for i in range(3)]
    base_threads, base_fds = proc.num_threads(), proc.num_fds()
    base_rss = proc.memory_info().rss
    readers = [Reader(c) for c in polite]
    for r in readers:
        r.start()
    sent = 0
    for round_ in range(rounds):
        threads = [threading.Thread(target=chaos_client,
                                    args=(srv.port, random.Random(rng.random())))
                   for _ in range(rng.randint(1, 8))]
        for t in threads:
            t.start()
        for i, c in enumerate(polite):
            c.send(f"round {round_} from {i}")
        sent += 1
        for t in threads:
            t.join(WAIT)
    expected = {f"polite{i}: round {r} from {i}" for i in range(3) for r in range(sent)}

    def complete() -> bool:
        return all(expected <= set(c.history) for c in polite)

    assert wait_until(complete), "a polite message was lost"
    for r in readers:
        r.stop.set()
        r.join(WAIT)
    for c in polite:
        for i in range(3):
            mine = [line for line in c.history if line.startswith(f"polite{i}: round ")]
            assert mine == [f"polite{i}: round {r} from {i}" for r in range(sent)]  # in order
        assert not c.closed
    # Everything the chaos opened is closed again (handshakes time out after 2 s).
    assert wait_until(lambda: proc.num_threads() <= base_threads, timeout=WAIT), (
        proc.num_threads(), base_threads)
    assert wait_until(lambda: proc.num_fds() <= base_fds, timeout=WAIT), (
        proc.num_fds(), base_fds)
    assert proc.memory_info().rss - base_rss < 32 * 1024 * 1024


ENGINES = ["threads", "selectors"]


@pytest.mark.parametrize("engine", ENGINES)
def test_random_abuse_leaves_polite_clients_untouched(
    start_server: Callable[..., ServerProcess], engine: str,
) -> None:
    run_chaos(start_server, seed=1234, rounds=25, engine=engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", range(5))
def test_random_abuse_soak(start_server: Callable[..., ServerProcess], seed: int,
                           engine: str) -> None:
    run_chaos(start_server, seed=seed, rounds=300, engine=engine)
