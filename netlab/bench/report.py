"""Rendering `netlab bench` results: a plain text report, and a progress bar on stderr.

rich is imported lazily and only when stderr is a terminal; the report itself is plain
text, so it reads the same in a terminal, a CI log and a student's pasted answer.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

NOISY_STEAL = 2.0  # percent of CPU time taken by a virtual machine's host


class ProgressBar:
    """A progress bar on stderr (rich, on a terminal); otherwise one line per phase."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._rich: Any = None
        self._tasks: dict[str, Any] = {}
        self._phases: set[str] = set()
        self.enabled = enabled
        if enabled and self.stream.isatty():
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                console = Console(file=self.stream)
                self._rich = Progress(TextColumn("{task.description:<16}"), BarColumn(),
                                      MofNCompleteColumn(), console=console, transient=True)
                self._rich.start()
            except Exception:  # no rich, odd terminal: plain lines are fine
                self._rich = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._rich is None:
            if phase not in self._phases:
                self._phases.add(phase)
                print(f"bench: {phase}...", file=self.stream, flush=True)
            return
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = self._rich.add_task(phase, total=max(total, 1))
        self._rich.update(task, completed=done, total=max(total, 1))

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def _lat(lat: dict[str, Any] | None) -> str:
    if not lat or lat.get("p50") is None:
        return "no samples"
    return f"p50 {lat['p50']} / p90 {lat['p90']} / p99 {lat['p99']} / max {lat['max']} ms"


def _server(s: dict[str, Any] | None) -> str:
    if not s:
        return ""
    return (f"CPU {s['cpu_s']} s, RSS {s['rss_kib'] / 1024:.1f} MiB, {s['threads']} threads, "
            f"{s['fds']} fds")


def render(r: dict[str, Any]) -> str:
    t = r["target"]
    lines = [f"netlab bench: {t['host']}:{t['port']} ({t['protocol']} protocol)"]
    if t.get("pid"):
        lines.append(f"  server pid {t['pid']}: {t.get('process') or ''}".rstrip())
    else:
        lines.append("  server process: not found on this machine (no CPU/memory figures)")
    c = r.get("connect")
    if c:
        lines.append("")
        lines.append(f"connect: {c['joined']}/{c['clients']} joined, {c['failed']} failed, "
                     f"in {c['seconds']} s ({c['in_flight']} in flight)")
        if c["errors"]:
            lines.append("  errors: " + ", ".join(f"{k} x{v}" for k, v in c["errors"].items()))
        lines.append(f"  TCP connect: {_lat(c['connect_ms'])}")
        lines.append(f"  handshake:   {_lat(c['handshake_ms'])}")
    for key, title in (("chat", "chat"),):
        ch = r.get(key)
        if ch:
            lines.extend(_chat_lines(title, ch))
    sr = r.get("slow_readers")
    if sr:
        lines.extend(_chat_lines(f"with {sr['stalled']} stalled readers", sr["chat"]))
        lines.append(f"  stalled clients dropped by the server: {sr['dropped']} of "
                     f"{sr['stalled']} (after {sr['dropped_after_s']} s)")
        lines.append(f"  newcomer joined meanwhile: {'yes' if sr['newcomer_ok'] else 'NO'}"
                     + (f" ({sr['newcomer_join_ms']} ms)" if sr["newcomer_join_ms"] else ""))
        if sr.get("server_rss_growth_kib") is not None:
            lines.append(f"  server RSS growth: {sr['server_rss_growth_kib'] / 1024:.1f} MiB")
    ch = r.get("churn")
    if ch:
        lines.append("")
        lines.append(f"churn: {ch['ok']}/{ch['rounds']} rounds ok ({ch['close']}, "
                     f"{ch['concurrency']} at a time), {ch['rounds_per_s']} rounds/s")
        if "server_after" in ch:
            lines.append(f"  server before: {_server(ch['server_before'])}")
            lines.append(f"  server after:  {_server(ch['server_after'])}; idle CPU "
                         f"{ch['idle_cpu_percent']} %")
    bad = r.get("bad_input")
    if bad:
        lines.append("")
        lines.append("bad input:")
        for case in bad:
            cost = ""
            if "server_cpu_s" in case:
                cost = (f" [server CPU {case['server_cpu_s']} s, RSS "
                        f"{case['server_rss_growth_kib'] / 1024:+.1f} MiB]")
            lines.append(f"  {'ok ' if case['ok'] else 'FAIL'} {case['title']}{cost}")
    srv = r.get("server", {})
    if srv.get("end"):
        lines.append("")
        lines.append(f"server at the end: {_server(srv['end'])}")
    g = r["generator"]
    lines.append("")
    busy = ", ".join(f"{k} {v} %" for k, v in g["cpu_percent"].items())
    lines.append(f"load generator: {g['processes']} process(es); CPU of a core: {busy}")
    if g.get("note"):
        lines.append(f"  note: {g['note']}")
    steal = (r.get("machine") or {}).get("steal_percent")
    if steal is not None and steal >= NOISY_STEAL:
        lines.append(f"  note: the host took {steal} % of this machine's CPU time during the "
                     "run (a virtual machine sharing its cores): expect noisier figures")
    lines.append("")
    lines.append("verdicts:")
    for v in r["verdicts"]:
        lines.append(f"  {'ok ' if v['ok'] else 'FAIL'} {v['scenario']}: {v['text']}")
    return "\n".join(lines)


def _chat_lines(title: str, ch: dict[str, Any]) -> list[str]:
    rate = "as fast as flow control allows" if ch["rate"] is None else f"{ch['rate']:g} msg/s"
    out = ["", f"{title}: {ch['senders']} senders x {ch['messages_per_sender']} lines of "
               f"{ch['size']} B, {rate}; {ch['observers']} observers"]
    out.append(f"  expected {ch['expected']}, delivered {ch['delivered']} "
               f"({ch['delivered_percent']} %), lost {ch['lost']}, duplicated "
               f"{ch['duplicated']}, corrupted {ch['corrupted']}")
    out.append(f"  {ch['deliveries_per_s']} deliveries/s to observers; latency "
               f"{_lat(ch['latency_ms'])}")
    if ch["freeze_s"] >= 1:
        out.append(f"  longest silence: {ch['freeze_s']} s")
    s = ch.get("server")
    if s:
        per = s.get("cpu_s_per_million_deliveries")
        out.append(f"  server: CPU {s['cpu_s']} s ({per} s per million deliveries), RSS "
                   f"{s['rss_kib'] / 1024:+.1f} MiB")
    return out
