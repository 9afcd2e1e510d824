"""Runs the student's program: {host}/{port} filled in, its own process group, a time limit
for the whole tree, and output kept up to a bound.

A student's server may start threads, a shell may start the interpreter, a program may
hang in accept() forever: the check must end all of it and never hang itself. So the
program runs in its own process group (a job on Windows), every wait has a timeout, and
kill() ends the group and every descendant psutil can still see (a child that moved to
its own session escapes the group, not its parent's list of children).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from netlab.errors import ExitStatus, NetlabError

OUTPUT_LIMIT = 256 * 1024  # per stream; a program printing in a loop must not fill memory
IS_WINDOWS = sys.platform.startswith("win")
TRACEBACK = "Traceback (most recent call last)"


class ProgramCannotStart(NetlabError):
    exit_code = ExitStatus.FAILED


def fill(template: list[str], host: str, port: str) -> list[str]:
    """{host} and {port} in any argument, e.g. `--addr={host}:{port}`."""
    return [arg.replace("{host}", host).replace("{port}", port) for arg in template]


def resolve_program(argv: list[str]) -> list[str]:
    """`python` where only `python3` (or only the py launcher's interpreter) exists: run it
    with the interpreter netlab runs on, so the same command works on every system."""
    if argv and argv[0] in ("python", "python3") and shutil.which(argv[0]) is None:
        return [sys.executable, *argv[1:]]
    return argv


class _Collector:
    """Reads one pipe in a thread, keeps the first OUTPUT_LIMIT bytes, counts the rest."""

    def __init__(self, stream: object, cond: threading.Condition) -> None:
        self.data = bytearray()
        self.dropped = 0
        self.done = False
        self._stream = stream
        self._cond = cond
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        read = self._stream.read1 if hasattr(self._stream, "read1") else self._stream.read  # type: ignore[attr-defined]
        try:
            while True:
                chunk = read(65536)
                if not chunk:
                    break
                with self._cond:
                    room = OUTPUT_LIMIT - len(self.data)
                    self.data.extend(chunk[:max(room, 0)])
                    self.dropped += max(0, len(chunk) - max(room, 0))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.done = True
                self._cond.notify_all()


class StudentProgram:
    def __init__(self, proc: subprocess.Popen[bytes], argv: list[str], timeout: float) -> None:
        self.proc = proc
        self.argv = argv
        self.timed_out = False
        self.interrupted = False
        self._cond = threading.Condition()
        self._out = _Collector(proc.stdout, self._cond)
        self._err = _Collector(proc.stderr, self._cond)
        self._timer = threading.Timer(timeout, self._time_up)
        self._timer.daemon = True
        self._timer.start()

    @classmethod
    def start(cls, template: list[str], host: str, port: str, *, timeout: float,
              env: dict[str, str] | None = None, stdin: bool = False) -> StudentProgram:
        argv = resolve_program(fill(template, host, port))
        environ = dict(os.environ)
        environ.update({"NETLAB_HOST": host, "NETLAB_PORT": port,
                        # print() to a pipe is block-buffered: without this a Python
                        # student's lines would reach the check only when it exits.
                        "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})
        environ.update(env or {})
        kwargs: dict[str, object] = {}
        if IS_WINDOWS:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True  # its own process group: killpg ends the tree
        try:
            proc = subprocess.Popen(  # type: ignore[call-overload]
                argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, **kwargs)
        except FileNotFoundError:
            raise ProgramCannotStart(f"cannot start {argv[0]!r}: no such program",
                                     "check the command after --, e.g. "
                                     "`-- python my_server.py {host} {port}`") from None
        except OSError as exc:
            raise ProgramCannotStart(f"cannot start {' '.join(argv)}: {exc}") from None
        return cls(proc, argv, timeout)

    # ------------------------------------------------------------------ output
    @property
    def stdout(self) -> str:
        with self._cond:
            return self._out.data.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        with self._cond:
            return self._err.data.decode("utf-8", "replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.output.splitlines() if line.strip()]

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.output

    def wait_output(self, ready: Callable[[str], bool], timeout: float) -> bool:
        """Wait until ready(stdout + stderr) or the program's output ends, at most timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = (self._out.data + self._err.data).decode("utf-8", "replace")
                if ready(text):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self._out.done and self._err.done):
                    return False
                self._cond.wait(left)

    # ------------------------------------------------------------------ input
    def send_input(self, text: str) -> bool:
        if self.proc.stdin is None:
            return False
        try:
            self.proc.stdin.write(text.encode("utf-8"))
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def close_input(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()

    # ------------------------------------------------------------------ life
    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after timeout."""
        try:
            code = self.proc.wait(max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return None
        self._join_output(1.0)
        return code

    def interrupt(self) -> None:
        """What Ctrl-C in a terminal does: SIGINT to the whole foreground group. Windows has
        no SIGINT for another console group; CTRL_BREAK_EVENT is the closest (SIGBREAK)."""
        self.interrupted = True
        if not self.running:
            return
        with contextlib.suppress(OSError):
            if IS_WINDOWS:
                os.kill(self.proc.pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            else:
                os.killpg(self.proc.pid, signal.SIGINT)

    def _time_up(self) -> None:
        if self.running:
            self.timed_out = True
            self.kill()

    def kill(self) -> None:
        """End the program and every process it started; only ours, by pid and group."""
        self._timer.cancel()
        children = _descendants(self.proc.pid) if self.running else []
        if self.running:
            with contextlib.suppress(OSError):
                if IS_WINDOWS:
                    self.proc.kill()
                else:
                    os.killpg(self.proc.pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(Exception):
                child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._join_output(1.0)
        self.close_input()
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def _join_output(self, timeout: float) -> None:
        # A grandchild that kept the pipe open would keep a reader blocked: bounded join.
        self._out.thread.join(timeout)
        self._err.thread.join(timeout)

    def describe(self, last: int = 3) -> str:
        """A short account for a criterion: how it ended and its last lines."""
        if self.timed_out:
            state = "was still running at the time limit (stopped)"
        elif self.running:
            state = "was still running"
        else:
            state = f"exited with code {self.proc.returncode}"
        shown = self.lines()[-last:]
        tail = "; last output: " + " | ".join(s[:160] for s in shown) if shown else "; no output"
        return state + tail


def _descendants(pid: int) -> list[object]:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return []
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except (psutil.Error, OSError):
        return []
