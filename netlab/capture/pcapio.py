"""Capture files in and out: stream frames from pcap/pcapng, write the frames we showed.

Reading goes through scapy's raw readers, which detect pcap and pcapng and hand over
bytes without dissecting them (about 60x faster than rdpcap, and nothing is held in
memory: a 10 GB file streams like a small one). Writing is the classic pcap format,
which every Wireshark and tcpdump version opens.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from netlab.errors import ExitStatus, NetlabError

PCAP_MAGIC_US = 0xA1B2C3D4
SNAPLEN = 262144


class CaptureFileError(NetlabError):
    exit_code = ExitStatus.FAILED


Frame = tuple[bytes, int, float]  # frame bytes, link type, time (seconds since the epoch)


def iter_frames(path: Path, on_cut: Callable[[str], None] | None = None) -> Iterator[Frame]:
    """Every frame of a pcap or pcapng file, in order, one at a time. A classic pcap that
    ends inside a record (a capture killed mid-write, a partial download) is read up to
    the last whole frame, and `on_cut` is told."""
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    try:
        reader = RawPcapReader(str(path))
    except FileNotFoundError as exc:
        raise CaptureFileError(f"cannot read {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise CaptureFileError(f"cannot read {path}: it is a directory") from exc
    except PermissionError as exc:
        raise CaptureFileError(f"cannot read {path}: permission denied",
                               "check the file's permissions (ls -l)") from exc
    except (Scapy_Exception, EOFError, OSError) as exc:
        raise CaptureFileError(
            f"{path} is not a pcap or pcapng capture ({exc})",
            "save captures from Wireshark as .pcap or .pcapng, or with tcpdump -w",
        ) from exc
    with reader:
        ng = hasattr(reader, "interfaces")
        size = path.stat().st_size
        frames = 0
        while True:
            before = reader.f.tell()
            try:
                item = reader._read_packet(size=SNAPLEN)
            except EOFError:
                item = None
            except Scapy_Exception as exc:
                raise CaptureFileError(f"{path}: damaged capture file ({exc})") from exc
            cut = not ng and (
                (item is None and before < size)  # bytes left, too few for a record header
                or (item is not None and reader.f.tell() >= size  # the last record...
                    and len(item[0]) < min(item[1].caplen, SNAPLEN)))  # ...shorter than said
            if cut and on_cut is not None:
                whole = f"{frames} whole packet{'s' if frames != 1 else ''}"
                on_cut(f"{path} ends in the middle of a packet (cut short?): the {whole} "
                       "before it are read")
            if item is None or cut:
                return
            frames += 1
            data, meta = item
            if ng:
                linktype = int(meta.linktype)
                when = 0.0
                if meta.tshigh is not None:
                    when = ((meta.tshigh << 32) + meta.tslow) / meta.tsresol
            else:
                linktype = int(reader.linktype)
                when = meta.sec + meta.usec / (1e9 if reader.nano else 1e6)
            yield bytes(data), linktype, float(when)


class PcapWriter:
    """Classic pcap, microsecond timestamps, one link type (as a single capture has).

    The file is opened at once (a bad path fails before capturing starts); the header,
    which names the link type, is written with the first frame.
    """

    def __init__(self, path: Path, linktype: int = 1) -> None:
        self.path = path
        self.linktype = linktype
        self.count = 0
        self._header_done = False
        try:
            self._f: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise CaptureFileError(f"cannot write {path}: {exc.strerror or exc}",
                                   "choose another --write path") from exc

    def _header(self) -> None:
        assert self._f is not None
        self._f.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, self.linktype))
        self._header_done = True

    def write(self, frame: bytes, when: float, linktype: int | None = None) -> None:
        if self._f is None:
            return
        if not self._header_done:
            if linktype is not None:
                self.linktype = linktype
            self._header()
        elif linktype is not None and linktype != self.linktype:
            return  # one link type per pcap file; a live capture never mixes them
        sec = int(when)
        usec = round((when - sec) * 1e6)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self._f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        self._f.write(frame)
        self._f.flush()  # a Ctrl-C or a crash still leaves a file Wireshark can open
        self.count += 1

    def close(self) -> None:
        if self._f is not None:
            if not self._header_done:
                self._header()
            self._f.close()
            self._f = None
