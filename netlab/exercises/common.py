"""Small helpers the checks share: waiting for a server, reading a program's verdicts."""

from __future__ import annotations

import re
import socket
import time

from netlab.exercises.registry import Criterion, failed, passed
from netlab.exercises.runner import StudentProgram

WHY_LISTEN = ("a server exercise starts your program with {host} and {port} filled in (and "
              "NETLAB_HOST/NETLAB_PORT set); it must listen there within the time limit")
WHY_TRACEBACK = ("a traceback tells a user nothing they can act on; one line that says what "
                 "failed and why does (lessons 1 and 2)")


def wait_listening(prog: StudentProgram, host: str, port: int, timeout: float) -> bool:
    """True once the program says `listening on` or accepts a connection; False if it
    exits or the time runs out. A probe connection is made only while it says nothing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "listening on" in prog.stdout.lower():
            return True
        if not prog.running:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            pass
        # Wake up at once when it prints; otherwise try the port again shortly.
        prog.wait_output(lambda t: "listening on" in t.lower(), 0.1)
    return "listening on" in prog.stdout.lower()


def listening_criterion(prog: StudentProgram, host: str, port: int, timeout: float,
                        name: str = "listens on {host}:{port}") -> Criterion:
    where = f"{host}:{port}"
    title = name.format(host=host, port=port)
    if wait_listening(prog, host, port, timeout):
        said = listening_address(prog.stdout)
        if said is not None and said[1] != port:  # the usual slip: a port written in
            return failed(title, f"your program says it is listening on port {said[1]}, "
                          f"but it was given port {port}: take the port from the command "
                          "line or NETLAB_PORT instead of writing it in the code", WHY_LISTEN)
        return passed(title, f"your server is listening on {where}", WHY_LISTEN)
    return failed(title, f"nothing listened on {where} within {timeout:g} s; your program "
                  f"{prog.describe()}", WHY_LISTEN)


def has_line(text: str, *needles: str) -> bool:
    """Some output line contains every needle (case-insensitive)."""
    for line in text.splitlines():
        low = line.lower()
        if all(n.lower() in low for n in needles):
            return True
    return False


def listening_address(text: str) -> tuple[str, int] | None:
    match = re.search(r"listening on \[?([0-9A-Za-z.:%-]+?)\]?:(\d+)", text)
    if not match:
        return None
    return match.group(1), int(match.group(2))
