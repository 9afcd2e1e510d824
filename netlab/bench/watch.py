"""The server's side, when it runs on this machine: CPU time, RSS, threads, fds (psutil).

psutil is imported here, lazily, only when `netlab bench` runs (netlab --help stays fast).
"""

from __future__ import annotations

import contextlib
from typing import Any


def listeners(port: int) -> list[int | None] | None:
    """The pids listening on this TCP port (None for one this user may not see: Linux shows
    its own processes, macOS needs root for other processes' sockets); None when the
    system would not list sockets at all."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    return [conn.pid for conn in conns
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port]


def find_listener(port: int) -> int | None:
    """The pid listening on this TCP port, when this user may see it."""
    pids = listeners(port)
    return pids[0] if pids else None


class ServerWatch:
    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self._proc = psutil.Process(pid)
        self._psutil = psutil
        self.name = ""
        with contextlib.suppress(Exception):
            self.name = " ".join(self._proc.cmdline()[:4])[:80]
        self.peak_rss = 0

    def alive(self) -> bool:
        try:
            return self._proc.is_running() and self._proc.status() != self._psutil.STATUS_ZOMBIE
        except self._psutil.Error:
            return False

    def sample(self) -> dict[str, Any] | None:
        """cpu_s (user + system), rss_kib, threads, fds; None once the server is gone."""
        p = self._proc
        try:
            with p.oneshot():
                cpu = p.cpu_times()
                rss = p.memory_info().rss
                threads = p.num_threads()
                fds = p.num_fds() if hasattr(p, "num_fds") else p.num_handles()
        except self._psutil.Error:
            return None
        self.peak_rss = max(self.peak_rss, rss)
        return {"cpu_s": round(cpu.user + cpu.system, 3), "rss_kib": rss // 1024,
                "threads": threads, "fds": fds}


def host_times() -> tuple[float, float] | None:
    """(steal, total) CPU seconds of this machine so far. Steal is the time a virtual
    machine was ready to run but its host ran something else (Linux only: None elsewhere);
    it shows up as latency spikes and slow rounds no server can avoid."""
    import psutil

    times = psutil.cpu_times()
    steal = getattr(times, "steal", None)
    if steal is None:
        return None
    return float(steal), float(sum(times))


def host_busy() -> float:
    """CPU seconds this whole machine has spent busy (every process, kernel work in
    interrupts included): what a server's own CPU figure leaves out when the kernel does
    its sending while another process runs."""
    import psutil

    times = psutil.cpu_times()
    resting = sum(getattr(times, name, 0.0) for name in ("idle", "iowait", "steal"))
    return float(sum(times)) - resting


def steal_percent(before: tuple[float, float] | None,
                  after: tuple[float, float] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    if not before or not after:
        return None
    return {"cpu_s": round(after["cpu_s"] - before["cpu_s"], 3),
            "rss_kib": after["rss_kib"] - before["rss_kib"],
            "threads": after["threads"] - before["threads"],
            "fds": after["fds"] - before["fds"]}
