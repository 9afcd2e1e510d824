"""One capture session: frames -> analysis -> what the student sees, live or from a file.

The Pipeline is the only place that turns frames into shown packets, so live capture,
--read and --demo number, explain, count and save packets identically: the pcap written
holds exactly the packets shown, in the same order, so Wireshark's frame N is netlab's N.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netlab.capture.analysis import FlowAnalyzer, PacketEvent
from netlab.capture.decode import decode_frame
from netlab.capture.pcapio import PcapWriter, iter_frames
from netlab.capture.render import (
    Recorder,
    click_style,
    connection_json,
    follow_chunk,
    json_line,
    ladder_text,
    packet_json,
    packet_line,
    plain,
    stream_header,
    summary_text,
)
from netlab.env import Environment


@dataclass
class CaptureOptions:
    host: str = "127.0.0.1"
    port: int = 55555
    iface: str = "auto"
    count: int | None = None
    timeout: float | None = None
    write: Path | None = None
    read: Path | None = None
    follow: bool = False
    json: bool = False
    svg: Path | None = None
    ladder: bool = True
    title: str | None = None


def emit(stream: object, text: str) -> None:
    """Write a line; a console that cannot encode a character gets a replacement."""
    try:
        stream.write(text + "\n")  # type: ignore[attr-defined]
    except UnicodeEncodeError:
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write((text + "\n").encode(enc, "replace").decode(enc))  # type: ignore[attr-defined]
    stream.flush()  # type: ignore[attr-defined]


class Presenter:
    """Where each thing goes: JSON or story on stdout, narration on stderr."""

    def __init__(self, env: Environment, opts: CaptureOptions) -> None:
        self.env = env
        self.opts = opts
        self.style = click_style if env.color else plain
        self._seen_streams: set[int] = set()
        self._lock = threading.Lock()

    def out(self, text: str) -> None:
        emit(self.env.stdout, text)

    def say(self, text: str) -> None:
        emit(self.env.stderr, text)

    def event(self, ev: PacketEvent) -> None:
        with self._lock:
            if self.opts.json:
                self.out(json_line(packet_json(ev)))
                return
            new = ev.stream not in self._seen_streams
            self._seen_streams.add(ev.stream)
            if self.opts.follow:
                if new:
                    self.out(self.style(f"== {stream_header(ev)} ==", "head"))
                chunk = follow_chunk(ev, self.style)
                if chunk:
                    self.out(chunk)
                return
            if new:
                self.out(self.style(stream_header(ev), "head"))
            self.out(packet_line(ev, self.style))

    def finish(self, analyzer: FlowAnalyzer, recorder: Recorder) -> None:
        conns = analyzer.connections()
        if self.opts.json:
            for conn in conns:
                self.out(json_line(connection_json(conn)))
            self.say(summary_text(conns, analyzer.packets))
            return
        if self.opts.ladder and not self.opts.follow and recorder.events:
            self.out("")
            self.out(ladder_text(recorder.events, self.style))
            if recorder.dropped:
                self.out(f"(ladder shows the first {len(recorder.events)} packets;"
                         f" {recorder.dropped} more are in the summary)")
        self.out("")
        self.out(summary_text(conns, analyzer.packets))


class Pipeline:
    """frame -> segment -> event -> shown, saved, recorded. Returns True to stop (--count)."""

    def __init__(self, presenter: Presenter, opts: CaptureOptions,
                 writer: PcapWriter | None = None) -> None:
        self.presenter = presenter
        self.opts = opts
        self.analyzer = FlowAnalyzer(server_port=opts.port)
        self.recorder = Recorder()
        self.writer = writer
        self.frames = 0
        self.shown = 0
        self.closed_streams: set[int] = set()

    def frame(self, data: bytes, linktype: int, when: float) -> bool:
        self.frames += 1
        seg = decode_frame(data, linktype, when)
        if seg is None:
            return False
        if self.writer is not None:
            self.writer.write(data, when, linktype)
        ev = self.analyzer.feed(seg)
        self.shown += 1
        if ev.kind in ("close", "rst"):
            self.closed_streams.add(ev.stream)
        self.recorder.add(ev)
        self.presenter.event(ev)
        return self.opts.count is not None and self.shown >= self.opts.count

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.presenter.finish(self.analyzer, self.recorder)
        if self.opts.svg is not None:
            from netlab.capture.svg import ladder_svg

            title = self.opts.title or "netlab capture: " + (
                self.opts.read.name if self.opts.read else "live")
            try:
                self.opts.svg.write_text(ladder_svg(self.recorder.events, title), "utf-8")
            except OSError as exc:
                from netlab.capture.pcapio import CaptureFileError

                raise CaptureFileError(f"cannot write {self.opts.svg}: {exc}") from exc
            self.presenter.say(f"ladder diagram saved to {self.opts.svg}")


def run_read(env: Environment, opts: CaptureOptions, path: Path) -> int:
    """--read: the same analysis from a file, no privileges needed."""
    presenter = Presenter(env, opts)
    pipeline = Pipeline(presenter, opts)
    try:
        for data, linktype, when in iter_frames(path, on_cut=presenter.say):
            if pipeline.frame(data, linktype, when):
                break
    except KeyboardInterrupt:
        presenter.say("interrupted: summary of what was read so far")
    if pipeline.shown == 0:
        what = f"{pipeline.frames} packet{'s' if pipeline.frames != 1 else ''}"
        presenter.say(f"{path} holds {what} and no TCP segment: nothing to explain"
                      " (netlab capture explains TCP only)")
        return 0
    pipeline.finish()
    return 0


def run_live(env: Environment, opts: CaptureOptions) -> int:
    from netlab.capture.sniffer import LiveCapture, check_capture_right, choose_interface

    check_capture_right()  # before importing scapy: the answer comes at once
    iface, addresses = choose_interface(opts.host, opts.iface)
    presenter = Presenter(env, opts)
    writer = PcapWriter(opts.write) if opts.write else None
    pipeline = Pipeline(presenter, opts, writer)
    capture = LiveCapture(iface=iface, port=opts.port, addresses=addresses,
                          on_frame=pipeline.frame)
    with ctrl_c_stops(capture):
        try:
            capture.start()
        except BaseException:
            if writer is not None:
                writer.close()
            raise
        announce(presenter, capture, opts)
        reason = capture.wait(opts.timeout)
        capture.stop()
        finish_live(presenter, pipeline, capture, reason)
    return 0


@contextlib.contextmanager
def ctrl_c_stops(capture: object) -> Iterator[None]:
    """Ctrl-C is the normal way to end a capture: the first one stops it cleanly wherever
    the main thread is (even mid-print), so the summary always comes; a second one aborts."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        capture.interrupt()  # type: ignore[attr-defined]

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def announce(presenter: Presenter, capture: object, opts: CaptureOptions) -> None:
    from netlab.capture.sniffer import LiveCapture

    assert isinstance(capture, LiveCapture)
    stop = (f"stops after {opts.count} packets" if opts.count else
            f"stops after {opts.timeout:g} s" if opts.timeout else "Ctrl-C to stop")
    presenter.say(f"capturing on {capture.iface} (not promiscuous): {capture.filter_mode}")
    if capture.dedup_mode:
        presenter.say(f"  loopback shows each packet twice; duplicates removed by "
                      f"{capture.dedup_mode}")
    for note in capture.notes:
        presenter.say(f"  note: {note}")
    presenter.say(f"  {stop}")


def finish_live(presenter: Presenter, pipeline: Pipeline, capture: object, reason: str) -> None:
    from netlab.capture.sniffer import LiveCapture

    assert isinstance(capture, LiveCapture)
    if capture.error is not None:
        raise capture.error
    words = {"interrupted": "stopped by Ctrl-C", "timeout": "timeout reached",
             "count": f"{pipeline.shown} packets shown", "stopped": "capture stopped"}
    presenter.say(f"{words.get(reason, reason)}")
    if capture.kernel_drops:
        presenter.say(f"the kernel dropped {capture.kernel_drops} packets before netlab could"
                      " read them (receive buffer full): the story may have gaps")
    if pipeline.shown == 0:
        presenter.say(f"no TCP packets for port {capture.port} were seen"
                      " (is the chat running there? try --demo)")
    pipeline.finish()
    if pipeline.writer is not None:
        presenter.say(f"saved {pipeline.writer.count} packets to {pipeline.writer.path}"
                      " (open it in Wireshark: the frame numbers match)")
