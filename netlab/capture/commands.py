"""The Click command `netlab capture`: parse options, pick the mode, call the session.

Only click and light modules at import time: scapy (about half a second), rich and
psutil are imported by the functions that need them, so `netlab --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from netlab.chat.protocol import DEFAULT_HOST, DEFAULT_PORT
from netlab.errors import ExitStatus, UsageError
from netlab.params import HOST, FiniteRange


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, type=HOST,
              help="The chat server's address (selects the interface and the filter).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="The chat server's TCP port.")
@click.option("--iface", default="auto", show_default=True,
              help="Interface to capture on; auto: loopback for 127.0.0.1 and ::1, else the "
                   "interface that owns --host.")
@click.option("--count", type=click.IntRange(min=1),
              help="Stop after N packets shown (not with --timeout).")
@click.option("--timeout", type=FiniteRange(min=0, min_open=True),
              help="Stop after S seconds (not with --count).")
@click.option("--write", "write", type=click.Path(dir_okay=False, path_type=Path),
              help="Save exactly the packets shown to FILE, in pcap format (for "
                   "Wireshark), under the name given.")
@click.option("--read", "read", type=click.Path(path_type=Path),
              help="Analyse a saved pcap or pcapng file instead (no privileges needed).")
@click.option("--follow", is_flag=True,
              help="Show the conversation as a transcript (like Follow TCP Stream).")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines on stdout (one per packet, then one per connection).")
@click.option("--demo", is_flag=True,
              help="Start a chat server and two scripted clients, capture and explain it all.")
@click.option("--svg", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the ladder diagram as an SVG file.")
@click.option("--no-ladder", is_flag=True, help="Skip the ladder diagram at the end.")
def capture(host: str, port: int, iface: str, count: int | None, timeout: float | None,
            write: Path | None, read: Path | None, follow: bool, as_json: bool, demo: bool,
            svg: Path | None, no_ladder: bool) -> None:
    """Capture the chat's TCP traffic and explain it as it happens.

    \b
    Examples:
      sudo netlab capture                      # the chat on 127.0.0.1:55555, live
      sudo netlab capture --demo               # a scripted chat, captured and explained
      netlab capture --read chat.pcap --follow # a saved capture, as a transcript
      netlab capture --read chat.pcap --json   # JSON Lines for scripts and graders
    """
    from netlab.capture.session import CaptureOptions, run_live, run_read
    from netlab.env import Environment

    if count is not None and timeout is not None:
        raise UsageError("use either --count or --timeout, not both")
    if read is not None and demo:
        raise UsageError("--read and --demo are different modes: pick one")
    if read is not None and write is not None:
        raise UsageError("--write saves a live capture; with --read the file is already saved")
    if port == 0 and not demo:
        raise UsageError("--port 0 means 'any port' to a server; give the port to capture")
    opts = CaptureOptions(host=host, port=port, iface=iface, count=count, timeout=timeout,
                          write=write, read=read, follow=follow, json=as_json, svg=svg,
                          ladder=not no_ladder)
    env = Environment()
    if demo:
        from netlab.capture.demo import run_demo

        code = run_demo(env, opts)
    elif read is not None:
        code = run_read(env, opts, read)
    else:
        code = run_live(env, opts)
    if code != ExitStatus.OK:
        raise SystemExit(code)
