"""The benchmark run: connect, chat, then the scenarios that misbehave.

run_bench() returns one dict (the JSON shape is documented in commands.py). Every phase has
a deadline inside the run's --time-limit, and every socket and worker process it starts is
closed or killed before it returns, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netlab.bench import loadgen as lg
from netlab.bench import stats
from netlab.bench.watch import ServerWatch, delta, host_busy, host_times, steal_percent

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 55555
    clients: int = 20
    senders: int = 5
    messages: int = 100
    rate: float | None = 200.0  # None: --max (flow-controlled flood)
    size: int = 100
    protocol: str = "netlab"
    observers: int | None = None  # None: all clients up to 100, else 30
    concurrency: int = 50  # connects (and churn rounds) in flight
    slow_readers: int = 0
    churn: int = 0
    close: str = "rst"
    churn_concurrency: int = 1
    bad_input: bool = False
    cases: tuple[str, ...] = ()
    pid: int | None = None
    workers: int | None = None  # None: automatic
    window: int = 50
    time_limit: float = 120.0
    handshake_timeout: float = 10.0
    quiet: float = 3.0  # a run ends this long after the last delivery once all is sent


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def within(self, seconds: float) -> float:
        """A phase's own deadline, never past the run's."""
        return min(self.end, time.monotonic() + seconds)


def run_bench(opts: Options, watch: ServerWatch | None, progress: Progress) -> dict[str, Any]:
    deadline = Deadline(opts.time_limit)
    run_id = random.randrange(1, 0xFFFFFF)
    result: dict[str, Any] = {
        "type": "bench",
        "target": {"host": opts.host, "port": opts.port, "protocol": opts.protocol,
                   "pid": watch.pid if watch else None,
                   "process": watch.name if watch else None},
        "options": {"clients": opts.clients, "senders": opts.senders,
                    "messages": opts.messages, "rate": opts.rate, "size": opts.size},
        "generator": {"cpu_percent": {}},
        "verdicts": [],
    }
    busy: dict[str, float] = result["generator"]["cpu_percent"]
    host0 = host_times()
    sample = watch.sample if watch else (lambda: None)
    result["server"] = {"start": sample()}
    if opts.clients:
        room = Room(opts, run_id, deadline, progress, watch)
        try:
            room.connect(result, busy)
            if result["connect"]["joined"] and opts.messages and opts.senders:
                room.chat(result, busy)
            if result["connect"]["joined"] and opts.slow_readers:
                room.slow_readers(result, busy)
        finally:
            room.close(busy)
    if opts.churn or opts.bad_input:
        from netlab.bench import misbehave

        if opts.churn:
            result["churn"] = misbehave.churn(opts, watch, deadline, progress, busy)
            ok, text = misbehave.churn_verdict(result["churn"])
            _verdict(result, "churn", ok, text)
        if opts.bad_input:
            result["bad_input"] = misbehave.bad_input(opts, watch, deadline, progress)
            for case in result["bad_input"]:
                _verdict(result, f"bad input: {case['case']}", case["ok"], case["text"])
    result["server"]["end"] = sample()
    if watch:
        result["server"]["peak_rss_kib"] = watch.peak_rss // 1024
        result["server"]["alive"] = watch.alive()
    steal = steal_percent(host0, host_times() if host0 else None)
    result["machine"] = {"steal_percent": steal}
    note = stats.generator_note(busy)
    result["generator"]["limited"] = note is not None
    result["generator"]["limited_phases"] = stats.limited_phases(busy)
    result["generator"]["note"] = note
    result["generator"]["processes"] = 1 + len(result.get("workers", []))
    # Looked at only after a failed raw run: a look before would disturb fragile servers
    # (ncat --chat reset the next clients), and the figures are taken by then.
    if (opts.protocol == "raw" and not all(v["ok"] for v in result["verdicts"])
            and opens_with_nick(opts.host, opts.port)):
        _verdict(result, "protocol", False,
                 "the server asks each client for a nickname (it opens with NICK), so "
                 "--protocol raw sent chat lines as nicknames: use --protocol netlab "
                 "(the default) for netlab and tutorial-style servers")
    result["ok"] = all(v["ok"] for v in result["verdicts"])
    return result


def opens_with_nick(host: str, port: int, wait: float = 0.3) -> bool:
    """One look at what the server says first (ncat --chat says nothing)."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.settimeout(wait)
            first = sock.recv(64)
    except OSError:
        return False  # silent, or not there: the run itself tells
    return first.lstrip().upper().startswith(b"NICK")


def _verdict(result: dict[str, Any], scenario: str, ok: bool, text: str) -> None:
    result["verdicts"].append({"scenario": scenario, "ok": ok, "text": text})


class Room:
    """The chat clients of one run: observers and senders here, sinks here or in workers."""

    def __init__(self, opts: Options, run_id: int, deadline: Deadline,
                 progress: Progress, watch: ServerWatch | None) -> None:
        self.opts, self.deadline, self.progress = opts, deadline, progress
        self.watch = watch
        n = opts.clients
        self.senders = min(opts.senders, n)
        observers = opts.observers if opts.observers is not None else (n if n <= 100 else 30)
        self.n_observers = max(min(observers, n), min(self.senders + 1, n))
        sinks = n - self.n_observers
        workers = opts.workers
        if workers is None:  # one process drains about 1,500 sinks at chat rates
            workers = 0 if sinks <= 300 else min(os.cpu_count() or 1, math.ceil(sinks / 1500))
        self.n_workers = min(workers, sinks)
        self.prefix = f"b{run_id:x}n"
        self.engine = lg.Engine(opts.host, opts.port, opts.protocol, run_id)
        self.engine.handshake_timeout = opts.handshake_timeout
        self.workers: list[Any] = []  # (process, pipe)
        self.local: list[lg.Client] = []
        self.summaries: dict[int, dict[str, Any]] = {}  # worker number -> its connect report
        self._settled: Any = []  # per worker: sinks joined or failed (shared memory)

    # ------------------------------------------------------------------ connecting
    def connect(self, result: dict[str, Any], busy: dict[str, float]) -> None:
        opts = self.opts
        sinks = list(range(self.n_observers, opts.clients))
        shares = [sinks[i::self.n_workers] for i in range(self.n_workers)] if self.n_workers \
            else []
        observers = list(range(self.n_observers))
        # Latency is read on the observers, so they must sit all along the order in which
        # the server joined its clients (and fans lines out), not bunched at its front.
        local_idx = interleave(observers, sinks) if not shares else observers
        conc_local = max(1, round(opts.concurrency * len(local_idx) / opts.clients))
        # Workers first: with fork they must not inherit this process's sockets.
        self._settled = self._shared_counts(len(shares))
        for k, share in enumerate(shares):
            self._start_worker(share, max(1, round(opts.concurrency * len(share) /
                                                   opts.clients)), k)
        if shares:
            self.engine.gate = self._observer_gate(len(sinks), len(local_idx))
        for i in local_idx:
            role = lg.SINK
            if i < self.n_observers:
                role = lg.OBSERVER | (lg.SENDER if i < self.senders else 0)
            self.local.append(lg.Client(i, f"{self.prefix}{i}", role))
        self.engine.add(self.local, conc_local)
        cpu0, wall0 = lg.cpu_seconds(), time.monotonic()
        total = opts.clients

        def done() -> bool:
            for k, (_proc, pipe) in enumerate(self.workers):
                if k not in self.summaries and pipe.poll():
                    self.summaries[k] = pipe.recv()
            joined = sum(1 for c in self.local if c.joined_ns or c.error)
            joined += sum(s["joined"] + s["failed"] for s in self.summaries.values())
            self.progress("connecting", joined, total)
            return (not self.engine.pending and not self.engine.in_flight
                    and len(self.summaries) == len(self.workers))

        # No shorter bound than the run's: join notices are O(N^2), and at 5,000 clients
        # the server needs a while to send them all.
        self.engine.loop(done, self.deadline.end)
        self.engine.gate = None  # later joiners (stalled readers, a newcomer) go at once
        busy["connect"] = lg._busy(cpu0, wall0)
        for k, s in self.summaries.items():
            busy[f"connect worker {k + 1}"] = s["cpu_percent"]
        parts = [lg.connect_summary(self.local), *self.summaries.values()]
        conn_ns = [x for p in parts for x in p["connect_ns"]]
        hs_ns = [x for p in parts for x in p["handshake_ns"]]
        errors: dict[str, int] = {}
        for p in parts:
            for k, v in p["errors"].items():
                errors[k] = errors.get(k, 0) + v
        first = min((p["first_start_ns"] for p in parts if p["first_start_ns"]), default=0)
        last = max((p["last_joined_ns"] for p in parts), default=0)
        joined = sum(p["joined"] for p in parts)
        if joined < total and sum(errors.values()) < total - joined:
            errors["not joined in time"] = total - joined - sum(errors.values())
        result["connect"] = {
            "clients": total, "joined": joined, "failed": total - joined, "errors": errors,
            "seconds": round((last - first) / 1e9, 3) if last and first else None,
            "in_flight": opts.concurrency,
            "connect_ms": stats.summary_ms(conn_ns),
            "handshake_ms": stats.summary_ms(hs_ns),
            "server": self.sample(),  # while all of them are connected
        }
        result["workers"] = [{"clients": len(s)} for s in shares]
        if not joined:
            problem = unreachable(errors, opts.host, opts.port)
            if problem is not None:
                raise problem
        ok, text = stats.connect_verdict(result["connect"])
        _verdict(result, "connect", ok, text)

    def _observer_gate(self, sinks: int, local: int) -> Callable[[int], bool]:
        """Local client k may start once the workers have settled k/local of the sinks
        (all of them, if every worker has reported or died)."""
        def gate(started: int) -> bool:
            if sum(self._settled) >= started * sinks // local:
                return True  # (checked first: the loop asks every millisecond)
            return len(self.summaries) == len(self.workers) or not all(
                proc.is_alive() for proc, _ in self.workers)

        return gate

    @staticmethod
    def _shared_counts(n: int) -> Any:
        # One slot per worker, each written by its worker only: no lock needed.
        return _mp_context().RawArray("q", n) if n else []

    def _start_worker(self, share: list[int], concurrency: int, slot: int) -> None:
        ctx = _mp_context()
        parent, child = ctx.Pipe()
        spec = {"host": self.opts.host, "port": self.opts.port, "protocol": self.opts.protocol,
                "run": self.engine.run, "prefix": self.prefix, "indices": share,
                "settled": self._settled, "slot": slot,
                "concurrency": concurrency, "handshake_timeout": self.opts.handshake_timeout,
                "time_limit": max(1.0, self.deadline.end - time.monotonic())}
        proc = ctx.Process(target=lg.worker_main, args=(child, spec), daemon=True)
        proc.start()
        child.close()
        self.workers.append((proc, parent))

    # ------------------------------------------------------------------ chatting
    def _ready_senders(self) -> list[lg.Client]:
        return [c for c in self.local if c.role & lg.SENDER and c.joined_ns and not c.closed_ns]

    def _ready_observers(self) -> list[lg.Client]:
        return [c for c in self.local if c.role & lg.OBSERVER and c.joined_ns
                and not c.closed_ns]

    def _warm_up(self) -> None:
        """One line from each sender, awaited by every observer: for raw servers (no
        handshake) it proves every client was accepted before the clock starts."""
        senders, observers = self._ready_senders(), self._ready_observers()
        e = self.engine
        e.tally.warmup_seen = 0
        for s in senders:
            e.send_line(s, lg.WARMUP_SID, s.idx, self.opts.size)
        want = sum(1 for s in senders for o in observers if o is not s)
        e.loop(lambda: e.tally.warmup_seen >= want, self.deadline.within(5.0))

    def sample(self) -> dict[str, Any] | None:
        return self.watch.sample() if self.watch else None

    def _pass(self, label: str, newcomer: bool = False) -> dict[str, Any]:
        """One chat pass: every sender sends --messages lines; observers count them."""
        opts, e = self.opts, self.engine
        self._warm_up()
        e.tally = lg.Tally()
        for o in self.local:
            o.seen.clear()
        senders, observers = self._ready_senders(), self._ready_observers()
        per_sender = {s.idx: sum(1 for o in observers if o is not s) for s in senders}
        plan = lg.SendPlan(senders, opts.messages, opts.rate, opts.size, opts.window)
        sample = self.sample
        before = sample()
        busy0 = host_busy()
        cpu0, wall0 = lg.cpu_seconds(), time.monotonic()
        e.start_plan(plan, per_sender)
        t = e.tally
        half = opts.messages * len(senders) // 2
        newbie: list[lg.Client] = []
        next_sample = 0.0

        def done() -> bool:
            nonlocal next_sample
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + 0.25
                sample()  # keeps the server's peak RSS
                self.progress(label, t.delivered, t.expected)
            if newcomer and not newbie and sum(s.sent for s in senders) >= half:
                newbie.append(self._add_newcomer())
            if t.delivered >= t.expected and (not newcomer or t.newcomer_seen_ns):
                return True
            # Nothing sent and nothing delivered for a while: all is in, or the server is
            # stuck (a flood's window stays full, so nothing is sent either).
            last = max(t.first_send_ns, t.last_delivery_ns, t.last_send_ns,
                       newbie[0].start_ns if newbie else 0)
            return time.monotonic_ns() - last > quiet_ns

        quiet_ns = int(1e9 * max(opts.quiet, 3.0 / (opts.rate or 1.0)))
        finished = e.loop(done, self.deadline.within(max(30.0, opts.time_limit)))
        end_ns = time.monotonic_ns()
        after = sample()
        machine_busy = host_busy() - busy0
        e.plan = None
        wall = time.monotonic() - wall0
        gen_busy = lg._busy(cpu0, wall0)
        # Silence at the end is a freeze when lines are missing that corruption does not
        # explain (a corrupted line is lost too, but the server was not stuck).
        frozen_at_end = t.expected - t.delivered > t.corrupted
        if frozen_at_end:
            t.max_gap_ns = max(t.max_gap_ns, end_ns - (t.last_delivery_ns or t.first_send_ns))
        span = ((t.last_delivery_ns or end_ns) - t.first_send_ns) / 1e9
        d = stats.Deliveries(t.expected, t.delivered, t.duplicated, t.corrupted)
        out: dict[str, Any] = {
            "senders": len(senders), "observers": len(observers),
            "messages_per_sender": opts.messages, "rate": opts.rate, "size": opts.size,
            "expected": d.expected, "delivered": d.delivered, "lost": d.lost,
            "duplicated": d.duplicated, "corrupted": d.corrupted,
            "delivered_percent": d.percent,
            "seconds": round(span, 3),
            "deliveries_per_s": round(d.delivered / span, 1) if span > 0 else None,
            "latency_ms": stats.summary_ms(t.latencies),
            "freeze_s": round(t.max_gap_ns / 1e9, 3),
            "frozen_at_end": frozen_at_end,
            "generator_cpu_percent": gen_busy,
            "wall_s": round(wall, 3),
            "time_limit_reached": not finished,
        }
        # Every delivery the server made to another client, not only to observers.
        total = sum(s.sent for s in senders) * max(1, self.opts.clients - 1)
        server = delta(before, after)
        if server:
            server["cpu_s_per_million_deliveries"] = round(server["cpu_s"] / total * 1e6, 3) \
                if total else None
            # The whole machine too: server, generator and the kernel's work between them.
            # It is the fair figure when a server's sends are finished off by the kernel
            # while the receiver runs (Nagle's algorithm), and billed to the receiver.
            server["machine_cpu_s_per_million_deliveries"] = (
                round(machine_busy / total * 1e6, 3) if total else None)
            out["server"] = server
        if newcomer:
            out["newcomer_join_ms"] = (round((newbie[0].joined_ns - newbie[0].start_ns) / 1e6,
                                             1) if newbie and newbie[0].joined_ns else None)
        return out

    def chat(self, result: dict[str, Any], busy: dict[str, float]) -> None:
        result["chat"] = self._pass("chatting")
        busy["chat"] = result["chat"]["generator_cpu_percent"]
        ok, text = stats.chat_verdict(result["chat"])
        _verdict(result, "chat", ok, text)

    def _add_newcomer(self) -> lg.Client:
        c = lg.Client(lg.NEWCOMER_SID - 1, f"{self.prefix}new", lg.NEWCOMER)
        e = self.engine

        def ready(client: lg.Client) -> None:
            if client is c:
                e.send_line(c, lg.NEWCOMER_SID, 0, self.opts.size)

        e.on_ready = ready
        e.add([c], e.concurrency)
        return c

    def slow_readers(self, result: dict[str, Any], busy: dict[str, float]) -> None:
        """K clients join and never read; the same pass runs again, with a newcomer."""
        opts, e = self.opts, self.engine
        k = opts.slow_readers
        stalled = [lg.Client(opts.clients + i, f"{self.prefix}s{i}", lg.STALLED)
                   for i in range(k)]
        e.add(stalled, e.concurrency)
        e.loop(lambda: not e.pending and not e.in_flight, self.deadline.within(15.0))
        base = result.get("chat", {}).get("latency_ms", {}).get("p99")
        e.run += 1  # new tokens: the first pass's stragglers are not counted again
        before = self.sample()
        if self.watch:
            self.watch.peak_rss = 0  # growth is measured from here
        t_start = time.monotonic_ns()
        chat = self._pass("stalled readers", newcomer=True)
        # Give the server its bound's worth of time to let go of the stalled clients.
        e.loop(lambda: all(c.closed_ns or not c.joined_ns for c in stalled),
               self.deadline.within(5.0))
        after = self.sample()
        drops = [round((c.closed_ns - t_start) / 1e9, 2) for c in stalled if c.closed_ns]
        out: dict[str, Any] = {
            "stalled": k, "joined": sum(1 for c in stalled if c.joined_ns),
            "dropped": len(drops), "dropped_after_s": drops,
            "newcomer_ok": bool(e.tally.newcomer_seen_ns),
            "newcomer_join_ms": chat.pop("newcomer_join_ms", None),
            "chat": chat,
            "server_rss_growth_kib": (
                max(0, max(self.watch.peak_rss // 1024, after["rss_kib"]) - before["rss_kib"])
                if self.watch and before and after else None),
        }
        result["slow_readers"] = out
        busy["slow readers"] = chat["generator_cpu_percent"]
        ok, text = stats.slow_verdict(out, base)
        _verdict(result, "slow readers", ok, text)

    # ------------------------------------------------------------------ the end
    def close(self, busy: dict[str, float]) -> None:
        for _proc, pipe in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send("stop")
        end = time.monotonic() + 3.0
        for k, (proc, pipe) in enumerate(self.workers):
            with contextlib.suppress(OSError, EOFError):
                if k in self.summaries and pipe.poll(max(0.0, end - time.monotonic())):
                    # Its sinks drained from the connect phase's end: the chat, and the
                    # stalled readers if any.
                    busy[f"chat worker {k + 1}"] = pipe.recv()["cpu_percent"]
            proc.join(max(0.0, end - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
            pipe.close()
        self.engine.close_all()


def _mp_context() -> Any:
    import multiprocessing as mp

    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def interleave(few: list[int], many: list[int]) -> list[int]:
    """`many` with the items of `few` spread evenly among them, the first one first."""
    out: list[int] = []
    taken = 0
    for j, x in enumerate(few):
        cut = j * len(many) // len(few)
        out.extend(many[taken:cut])
        out.append(x)
        taken = cut
    out.extend(many[taken:])
    return out


def unreachable(errors: dict[str, int], host: str, port: int) -> Exception | None:
    """When no client got in because of a connect error: that error, explained (exit 3).
    (No test connection first: a reset probe kills a tutorial server's accept loop.)"""
    import errno

    from netlab.diagnose.catalog import socket_problem

    for name in errors:
        number = getattr(errno, name, None)
        if number is not None:
            return socket_problem(OSError(number, os.strerror(number)), "connect", host, port)
    return None
