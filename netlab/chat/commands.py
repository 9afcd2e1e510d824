"""`netlab serve` and `netlab chat`: parse options, call the server or client, render."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from typing import Any

import click

from netlab.chat import protocol as p
from netlab.errors import ExitStatus, UsageError
from netlab.output import err as _err
from netlab.output import log_line as _log_line
from netlab.output import out as _out
from netlab.params import HOST, FiniteRange

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
               "mib": 1024**2}


class ByteSize(click.ParamType):
    """4096, 64k, 1MiB."""

    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number):]
        if not number or unit not in _SIZE_UNITS:
            self.fail(f"{value!r} is not a size (examples: 4096, 64k, 1MiB)", param, ctx)
        try:
            size = int(float(number) * _SIZE_UNITS[unit])
        except ValueError:
            self.fail(f"{value!r} is not a size (examples: 4096, 64k, 1MiB)", param, ctx)
        if size < 1:
            self.fail("must be at least 1 byte", param, ctx)
        return size




@click.command()
@click.option("--host", default=p.DEFAULT_HOST, show_default=True, type=HOST,
              help="Address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 (or ::) "
                   "for the whole classroom.")
@click.option("--port", default=p.DEFAULT_PORT, show_default=True,
              type=click.IntRange(0, 65535), help="Port to listen on; 0 picks a free one.")
@click.option("--max-clients", type=click.IntRange(1, None), default=None,
              help="Most connections at once, handshakes included [default: 10000, or the "
                   "file-descriptor limit minus a margin].")
@click.option("--max-line", type=ByteSize(), default=p.MAX_LINE, show_default=True,
              help="Longest line a client may send, in bytes.")
@click.option("--max-queue", type=ByteSize(), default="1MiB", show_default=True,
              help="Bytes waiting for one client before it is dropped as 'too slow'.")
@click.option("--handshake-timeout", type=FiniteRange(0.1, None), default=30.0,
              show_default=True, help="Seconds a new client has to choose a nickname.")
@click.option("--trace", is_flag=True,
              help="Teaching mode: log every socket call (accept, recv, send, close).")
@click.option("--engine", type=click.Choice(["threads", "selectors"]), default="threads",
              show_default=True,
              help="threads: a reader thread per client, as the exercise teaches; selectors: "
                   "one thread serving every socket (lesson 6's next step).")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines on stdout (listening, join, leave, stopped); the log goes to "
                   "stderr.")
def serve(host: str, port: int, max_clients: int | None, max_line: int, max_queue: int,
          handshake_timeout: float, trace: bool, engine: str, as_json: bool) -> None:
    """Run the chat server (Ctrl-C stops it)."""
    from netlab.chat.server import ChatServer, ServerConfig

    server_class: type[ChatServer] = ChatServer
    if engine == "selectors":
        from netlab.chat.evloop import EventLoopServer

        server_class = EventLoopServer
    from netlab.diagnose.catalog import format_address

    config = ServerConfig(host=host, port=port, max_clients=max_clients, max_line=max_line,
                          max_queue=max_queue, handshake_timeout=handshake_timeout, trace=trace,
                          small_stacks=True)
    server = server_class(config, log=_log_line,
                          on_events=_print_events if as_json else None)
    bound_host, bound_port = server.bind()  # SocketProblem -> exit 3 with the catalog's words
    # Ctrl-C and SIGTERM (kill, systemd, docker stop) are the normal stop. SIGINT is set
    # explicitly: a shell starts background jobs with it ignored, and Python then never
    # raises KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            signal.signal(signum, lambda *_: server.request_stop())
    server.start()  # threads up before anyone is told the address
    where = format_address(bound_host, bound_port)
    if as_json:
        _out(json.dumps({"type": "listening", "host": bound_host, "port": bound_port,
                         "max_clients": server.max_clients}))
    else:
        _out(f"listening on {where}")
        for line in _classroom_notes(bound_host, bound_port):
            _out(line)
        _err(f"up to {server.max_clients} clients; Ctrl-C stops the server")

    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    st = server.stats
    uptime = time.monotonic() - st.started
    if as_json:
        _out(json.dumps({"type": "stopped", "uptime_s": round(uptime, 3),
                         "connections": st.accepted, "joined": st.joined,
                         "peak_online": st.peak_online, "lines": st.lines,
                         "refused": st.refused, "dropped_too_slow": st.dropped_slow}))
    else:
        _err(f"stopped after {uptime:.1f} s: {st.accepted} connections, {st.joined} joined, "
             f"peak {st.peak_online} online, {st.lines} lines")
    sys.exit(ExitStatus.OK)


def _print_events(events: list[dict[str, Any]]) -> None:
    """`serve --json`: joins and leaves as JSON Lines, a batch in one write."""
    _out("\n".join(json.dumps(event) for event in events))


def _classroom_notes(host: str, port: int) -> list[str]:
    """For a wildcard bind: the addresses classmates should type, and the firewall trap."""
    if host not in ("0.0.0.0", "::"):
        return []
    from netlab.diagnose.netinfo import lan_candidates
    from netlab.diagnose.probes import LiveSystem

    lines = []
    addresses = [a for a in lan_candidates(LiveSystem().interfaces())
                 if a.version == 4 or host == "::"]
    if addresses:
        lines.append("classmates can connect to:")
        for addr in addresses:
            lines.append(f"  netlab chat --host {addr.address} --port {port}    "
                         f"({addr.interface})")
    else:
        lines.append("no network address found besides loopback: is this machine on a network?")
    if sys.platform.startswith("win"):
        lines.append("note: Windows Firewall may ask whether to allow Python. Allow it on "
                     "Private networks; choosing Public or Cancel makes classmates time out.")
    elif sys.platform == "darwin":
        lines.append("note: macOS may ask whether Python may accept incoming connections. "
                     "Choosing Deny makes classmates time out.")
    return lines


@click.command()
@click.option("--host", default=p.DEFAULT_HOST, show_default=True, type=HOST,
              help="Server address.")
@click.option("--port", default=p.DEFAULT_PORT, show_default=True,
              type=click.IntRange(1, 65535), help="Server port.")
@click.option("--nick", default=None, help="Nickname (asked for when missing).")
@click.option("--timeout", "connect_timeout", type=FiniteRange(0.1, None), default=10.0,
              show_default=True, help="Seconds to wait for the connection.")
@click.option("--plain", is_flag=True, help="Plain line mode even on a terminal.")
def chat(host: str, port: int, nick: str | None, connect_timeout: float, plain: bool) -> None:
    """Chat with a netlab (or tutorial-style) server. /help lists commands, /quit leaves."""
    from netlab.chat.client import ChatClient, make_terminal_ui, run_line_mode, run_terminal

    if nick is not None:
        checked, problem = p.check_nick(nick)
        if checked is None:
            raise UsageError(f"--nick: {problem}")
        nick = checked
    interactive = not plain and sys.stdin.isatty() and sys.stdout.isatty()
    ui = make_terminal_ui() if interactive else None
    show = ui[1] if ui else _print_line
    client = ChatClient(host, port, nick, show, connect_timeout=connect_timeout)
    client.connect()  # SocketProblem -> exit 3 with the catalog's words
    try:
        if ui is not None:
            try:
                status = run_terminal(client, ui[0])
            except (OSError, RuntimeError) as exc:
                _err(f"terminal mode failed ({exc}); using plain line mode")
                status = run_line_mode(client, sys.stdin)
        else:
            status = run_line_mode(client, sys.stdin)
    except KeyboardInterrupt:
        client.quit(wait=0.5)
        status = ExitStatus.OK
    if client.session.error and status != ExitStatus.OK:
        _err(f"netlab: {client.session.error}")
    sys.exit(status)


def _print_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
