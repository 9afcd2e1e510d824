"""`netlab bench`: how many clients does a chat server hold, and what happens when one
stops reading?

Exit status: 0 every scenario's verdict is "ok"; 1 at least one verdict says the server
failed (the answer to "does it hold up?" is no); 2 usage (also a remote target without
--allow-remote); 3 the server could not be reached (the socket error, explained);
130 interrupted.

`--json` prints one object on stdout (progress and narration go to stderr):

    {"type": "bench",
     "target": {"host", "port", "protocol", "pid", "process"},
     "options": {"clients", "senders", "messages", "rate", "size"},   # rate null: --max
     "connect": {"clients", "joined", "failed", "errors": {name: count}, "seconds",
                 "in_flight", "connect_ms": LAT, "handshake_ms": LAT, "server": SRV},
     "chat": CHAT,                                   # absent with --messages 0
     "slow_readers": {"stalled", "joined", "dropped", "dropped_after_s": [s, ...],
                      "newcomer_ok", "newcomer_join_ms", "server_rss_growth_kib",
                      "chat": CHAT},                 # only with --slow-readers
     "churn": {"rounds", "ok", "failed", "errors", "close", "concurrency", "seconds",
               "rounds_per_s", "server_before": SRV, "server_after": SRV,
               "back_to_baseline", "idle_cpu_percent", "pair_ok", "pair_text"},
     "bad_input": [{"case", "title", "detail", "ok", "text", "server_cpu_s",
                    "server_rss_growth_kib"}, ...],
     "server": {"start": SRV, "end": SRV, "peak_rss_kib", "alive"},  # SRV null: not local
     "generator": {"processes", "cpu_percent": {phase: percent of one core}, "limited",
                   "limited_phases": [phase, ...], "note"},
     "workers": [{"clients"}, ...],
     "machine": {"steal_percent"},  # CPU time the host of a VM took; null off Linux
     "verdicts": [{"scenario", "ok", "text"}, ...],
     "ok": bool}
    LAT  = {"p50", "p90", "p99", "max" (milliseconds), "count"}
    SRV  = {"cpu_s", "rss_kib", "threads", "fds"}
    CHAT = {"senders", "observers", "messages_per_sender", "rate", "size", "expected",
            "delivered", "lost", "duplicated", "corrupted", "delivered_percent", "seconds",
            "deliveries_per_s", "latency_ms": LAT, "freeze_s", "generator_cpu_percent",
            "wall_s", "server": {"cpu_s", "rss_kib", "threads", "fds",
                                 "cpu_s_per_million_deliveries",
                                 "machine_cpu_s_per_million_deliveries"}}

Deliveries count lines received by observer clients from *other* clients (servers differ
on echoing a line to its sender); server CPU per delivery divides by every delivery to
another client, observers or not.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys

import click

from netlab.chat import protocol as p
from netlab.errors import ExitStatus, UsageError
from netlab.params import HOST, FiniteRange

CASE_NAMES = ("long-line", "invalid-utf8", "ansi", "nick-empty", "nick-long", "nick-duplicate",
              "nick-non-ascii", "no-nick", "partial-rst", "reset-before-accept")
# Bounds: every run is finite in count and time; a remote target gets lower ones.
LOCAL = {"clients": 10000, "rate": 50000.0, "churn": 100000, "time": 600.0}
REMOTE = {"clients": 50, "rate": 20.0, "churn": 50, "time": 60.0}


def is_loopback(host: str) -> bool:
    """True when every address the name resolves to is loopback (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    addresses = {str(info[4][0]) for info in infos}  # typeshed allows an int (AF_CAN...)
    return bool(addresses) and all(
        ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


@click.command()
@click.option("--host", default=p.DEFAULT_HOST, show_default=True, type=HOST,
              help="Server address.")
@click.option("--port", default=p.DEFAULT_PORT, show_default=True,
              type=click.IntRange(1, 65535), help="Server port.")
@click.option("--clients", default=20, show_default=True, type=click.IntRange(0, None),
              help="Clients that join and stay (0: only the scenarios).")
@click.option("--senders", default=5, show_default=True, type=click.IntRange(0, 1000),
              help="How many of them send lines.")
@click.option("--messages", default=100, show_default=True,
              type=click.IntRange(0, 100000), help="Lines per sender.")
@click.option("--rate", default=200.0, show_default=True, type=FiniteRange(0.1, None),
              help="Lines per second, all senders together.")
@click.option("--max", "flood", is_flag=True,
              help="Instead of --rate: as fast as the server takes them, each sender with "
                   "at most --window lines not yet delivered.")
@click.option("--window", default=50, show_default=True, type=click.IntRange(1, 10000),
              help="Lines in flight per sender with --max.")
@click.option("--size", default=100, show_default=True,
              type=click.IntRange(48, 65536), help="Bytes per line, newline included.")
@click.option("--protocol", type=click.Choice(["netlab", "raw"]), default="netlab",
              show_default=True,
              help="netlab: answer the NICK prompt (netlab and tutorial-style servers); "
                   "raw: no handshake (ncat --chat).")
@click.option("--observers", type=click.IntRange(1, None), default=None,
              help="Clients that check every line [default: all up to 100 clients, else 30].")
@click.option("--slow-readers", default=0, type=click.IntRange(0, 100),
              help="Scenario: this many extra clients join and never read.")
@click.option("--churn", default=0, type=click.IntRange(0, None),
              help="Scenario: this many rounds of connect, handshake, abrupt close.")
@click.option("--close", type=click.Choice(["rst", "fin"]), default="rst", show_default=True,
              help="How churn clients close.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=None,
              help="Connects in flight [default: 50 when joining, 1 for --churn].")
@click.option("--bad-input", is_flag=True,
              help="Scenario: bad input cases, each followed by a fresh pair that must chat.")
@click.option("--case", "cases", multiple=True, type=click.Choice(CASE_NAMES),
              help="Only these bad-input cases (repeatable).")
@click.option("--pid", type=int, default=None,
              help="The server's process id [default: found from the listening port].")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="Extra processes for reading clients [default: by client count].")
@click.option("--time-limit", default=120.0, show_default=True,
              type=FiniteRange(1, None), help="Seconds the whole run may take.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a target that is not this machine (lower limits apply).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench(host: str, port: int, clients: int, senders: int, messages: int, rate: float,
          flood: bool, window: int, size: int, protocol: str, observers: int | None,
          slow_readers: int, churn: int, close: str, concurrency: int | None,
          bad_input: bool, cases: tuple[str, ...], pid: int | None, workers: int | None,
          time_limit: float, allow_remote: bool, as_json: bool) -> None:
    """Load-test a line-based chat server: yours, netlab's, or ncat --chat."""
    from netlab.bench.report import ProgressBar, render
    from netlab.bench.scenarios import Options, run_bench

    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise UsageError(f"{host} is not this machine; bench only loads loopback servers",
                         hint="test your own server on 127.0.0.1, or add --allow-remote "
                              "(with lower limits) for a server you run elsewhere")
    caps = REMOTE if remote else LOCAL
    if remote and (flood or bad_input):
        raise UsageError("--max and --bad-input are for servers on this machine only")
    if cases and not bad_input:
        bad_input = True
    for name, value, cap in (("--clients", clients, caps["clients"]),
                             ("--rate", rate, caps["rate"]),
                             ("--churn", churn, caps["churn"]),
                             ("--time-limit", time_limit, caps["time"])):
        if value > cap:
            raise UsageError(f"{name} {value:g} is above the limit of {cap:g}"
                             + (" for a remote server" if remote else ""))
    if not (clients or churn or bad_input):
        raise UsageError("nothing to do: give --clients, --churn or --bad-input")
    opts = Options(host=host, port=port, clients=clients, senders=senders, messages=messages,
                   rate=None if flood else rate, size=size, protocol=protocol,
                   observers=observers, concurrency=concurrency or 50,
                   slow_readers=slow_readers, churn=churn, close=close,
                   churn_concurrency=concurrency or 1, bad_input=bad_input, cases=cases,
                   pid=pid, workers=workers, window=window, time_limit=time_limit)
    watch = _watch(host, port, pid)
    from netlab.chat.sockets import raise_fd_limit

    raise_fd_limit()  # 5,000 clients need 5,000 fds; Debian's soft limit is 1,024
    progress = ProgressBar(enabled=True)
    try:
        result = run_bench(opts, watch, progress)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(render(result))
    sys.exit(ExitStatus.OK if result["ok"] else ExitStatus.NO)


def _watch(host: str, port: int, pid: int | None):  # type: ignore[no-untyped-def]
    """The server's process when it runs here: given by --pid or found by its port."""
    import psutil

    from netlab.bench.watch import ServerWatch, find_listener, listeners

    if not is_loopback(host):
        return None
    if pid is None:
        pid = find_listener(port)
        if pid is None:
            return None
    else:
        owners = listeners(port)
        if owners and None not in owners and pid not in owners:
            shown = ", ".join(str(owner) for owner in dict.fromkeys(owners))
            raise UsageError(f"process {pid} does not listen on port {port}: the server "
                             "figures would be another program's",
                             hint=f"give the server's pid ({shown}), or leave out --pid: "
                                  "bench finds the server by its port")
    try:
        return ServerWatch(pid)
    except psutil.NoSuchProcess:
        raise UsageError(f"no process {pid} on this machine",
                         hint="leave out --pid: bench finds the server by its port") from None
    except Exception:  # not ours to inspect
        click.echo(f"bench: cannot watch process {pid}; no server figures", err=True)
        return None
