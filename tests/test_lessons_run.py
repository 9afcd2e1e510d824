"""The lessons stay true: their runnable blocks run, and their error codes match the catalog.

Each ```python run / ```console run block is executed for real (a `netlab serve` on
loopback where the fence says `server`); lessons/README.md describes the fence contract.
Blocks that would reach beyond loopback are refused, not run.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ServerProcess, require

from netlab.diagnose.catalog import SYSTEMS, ErrorEntry, load_catalog
from netlab.lessons import EXECUTABLE_LANGS, KNOWN_TAGS, Block, Lesson, list_lessons

ROOT = Path(__file__).resolve().parent.parent
LESSONS = list_lessons(ROOT / "lessons")
DEFAULT_PORT = "55555"
BLOCK_TIMEOUT = 30.0


def _runnable() -> list[tuple[Lesson, Block]]:
    return [(lesson, block) for lesson in LESSONS for block in lesson.blocks() if block.runnable]


RUNNABLE = _runnable()


# --- refusing anything beyond loopback ------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_HOST_OPTION = re.compile(r"--(?:host|connect|bind)[ =]+(\S+)|\bnc\s+(?:-\S+\s+)*(\S+)")
_QUOTED_NAME = re.compile(r"""["']([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9-]*)["']""")


def _is_loopback(text: str) -> bool:
    host = text.strip("'\"")
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]  # HOST:PORT
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def non_loopback_addresses(code: str) -> list[str]:
    """Addresses and host names in a block that are not this machine's loopback."""
    found: list[str] = []
    for m in _IPV4.finditer(code):
        try:
            if not ipaddress.ip_address(m.group()).is_loopback:
                found.append(m.group())
        except ValueError:
            continue
    for m in _IPV6.finditer(code):
        try:
            address = ipaddress.ip_address(m.group())
        except ValueError:
            continue
        if not address.is_loopback:
            found.append(m.group())
    # Host options only on command lines: shown output may say "nc" or "--host" in prose.
    commands = [ln for ln in code.splitlines() if ln.startswith("$ ")] or [code]
    for m in _HOST_OPTION.finditer("\n".join(commands)):
        value = m.group(1) or m.group(2)
        if not _is_loopback(value):
            found.append(value)
    for m in _QUOTED_NAME.finditer(code):
        try:
            ipaddress.ip_address(m.group(1))
            continue  # an address: judged above
        except ValueError:
            found.append(m.group(1))
    return sorted(set(found))


def refuse_non_loopback(block: Block, code: str) -> None:
    outside = non_loopback_addresses(code)
    if outside:
        pytest.fail(f"refusing to run a block that names non-loopback addresses {outside} "
                    f"(line {block.line}); fence it `norun: <why>`")


@pytest.mark.parametrize("code", [
    "$ netlab chat --host 192.168.1.23", "$ netlab serve --host 0.0.0.0",
    "$ netlab serve --host ::", "$ nc example.org 80",
    's.connect(("10.0.0.1", 80))', 'socket.getaddrinfo("no-such-host.invalid", 80)',
    "$ netlab diagnose --connect 192.0.2.1:55555", "$ netlab chat --host [fe80::1]",
])
def test_runner_refuses_non_loopback(code: str) -> None:
    assert non_loopback_addresses(code), code


@pytest.mark.parametrize("code", [
    "$ netlab chat --host 127.0.0.1 --port 55555", "$ netlab diagnose --bind ::1",
    'socket.create_connection(("127.0.0.2", 1))', "$ nc 127.0.0.1 55555",
    'socket.getaddrinfo("localhost", 55555)', "$ netlab diagnose --connect localhost:55555",
    "print(data[:4], buffer[end + 1:])",
])
def test_runner_allows_loopback(code: str) -> None:
    assert non_loopback_addresses(code) == []


def test_runnable_blocks_name_only_loopback() -> None:
    bad = {f"{lesson.name}:{block.line}": non_loopback_addresses(block.code)
           for lesson, block in RUNNABLE if non_loopback_addresses(block.code)}
    assert bad == {}


# --- the fence contract -----------------------------------------------------------------

def test_every_executable_block_says_run_or_norun() -> None:
    problems = []
    for lesson in LESSONS:
        for block in lesson.blocks():
            unknown = set(block.tags) - KNOWN_TAGS - {"output", "ipv6"}
            if unknown:
                problems.append(f"{lesson.name}:{block.line} unknown tags {sorted(unknown)}")
            if block.lang in EXECUTABLE_LANGS and not (block.tags & {"run", "norun"}):
                problems.append(f"{lesson.name}:{block.line} ```{block.info}: say run or norun")
            if "norun" in block.tags and not block.norun_reason:
                problems.append(f"{lesson.name}:{block.line} norun without a reason")
            if block.runnable and block.lang not in ("python", "console", "sh", "bash"):
                problems.append(f"{lesson.name}:{block.line} cannot run {block.lang} blocks")
    assert problems == []
    assert len(RUNNABLE) >= 20  # the lessons really are exercised


# --- running ----------------------------------------------------------------------------

def _available_commands() -> set[str]:
    from netlab.cli import cli

    return set(cli.list_commands(None))  # type: ignore[arg-type]


def _wrappers(directory: Path) -> dict[str, str]:
    """`netlab` and `python` on PATH are the ones under test, whatever the shell finds."""
    directory.mkdir()
    for name, target in (("netlab", f'exec "{sys.executable}" -m netlab "$@"'),
                         ("python", f'exec "{sys.executable}" "$@"'),
                         ("python3", f'exec "{sys.executable}" "$@"')):
        path = directory / name
        path.write_text(f"#!/bin/sh\n{target}\n")
        path.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{directory}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["NO_COLOR"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _can_capture() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, "capture checks run on Linux only"
    try:
        probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)  # type: ignore[attr-defined]
    except PermissionError:
        return False, "no right to capture packets (needs root or cap_net_raw)"
    except OSError as exc:
        return False, f"cannot open a packet socket: {exc}"
    probe.close()
    return True, ""


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def _expected_exits(block: Block) -> set[int]:
    return {int(code) for code in block.options.get("exit", "0").split(",")}


def _check_output(block: Block, code: str, output: str) -> None:
    """Each shown output line appears, in order, in what the commands printed."""
    actual = [line.strip() for line in output.splitlines()]
    at = 0
    for shown in code.splitlines():
        shown = shown.strip()
        if not shown or shown.startswith("$ ") or shown == "...":
            continue
        while at < len(actual) and shown not in actual[at]:
            at += 1
        assert at < len(actual), f"line {block.line}: {shown!r} not in output:\n{output}"
        at += 1


def _ids() -> list[str]:
    return [f"{lesson.name}:{block.line}" for lesson, block in RUNNABLE]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("lesson", "block"), RUNNABLE, ids=_ids())
def test_lesson_block_runs(lesson: Lesson, block: Block, tmp_path: Path) -> None:
    if sys.platform.startswith("win"):
        pytest.skip("the lesson runner uses a POSIX shell")
    systems = block.options.get("os")
    if systems and not any(sys.platform.startswith(s) for s in systems.split(",")):
        pytest.skip(f"this block is for {systems}")
    if block.needs_capture:
        ok, why = _can_capture()
        if not ok:
            pytest.skip(why)
    if "ipv6" in block.tags and not _has_ipv6_loopback():
        pytest.skip("IPv6 loopback (::1) is not available here")
    commands = block.commands() if block.lang != "python" else []
    if block.lang != "python":
        assert commands, f"line {block.line}: a runnable console block without `$ ` lines"
    wanted = {m.group(1) for cmd in commands for m in re.finditer(r"\bnetlab\s+([a-z][\w-]*)", cmd)}
    missing = sorted(wanted - _available_commands())
    require(not missing, f"command not yet available: {', '.join(missing)}")
    for cmd in commands:
        tool = cmd.split()[0]
        if tool not in ("netlab", "python", "python3", "printf", "cat"):
            require(subprocess.run(["/bin/sh", "-c", f"command -v {tool}"],
                                   capture_output=True).returncode == 0,
                    f"{tool} is not installed")

    env = _wrappers(tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    deadline = time.monotonic() + float(block.options.get("timeout", BLOCK_TIMEOUT))
    server: ServerProcess | None = None
    try:
        code = block.code
        if block.needs_server:
            server = ServerProcess(log=tmp_path / "serve.log")
            code = code.replace(DEFAULT_PORT, str(server.port))
        refuse_non_loopback(block, code)
        allowed = _expected_exits(block)
        outputs: list[str] = []
        if block.lang == "python":
            script = work / "block.py"
            script.write_text(code, encoding="utf-8")
            runs = [[sys.executable, str(script)]]
        else:
            runs = [["/bin/sh", "-c", cmd.replace(DEFAULT_PORT, str(server.port))
                     if server else cmd] for cmd in commands]
        for argv in runs:
            left = deadline - time.monotonic()
            assert left > 0, f"line {block.line}: block ran out of time"
            try:
                done = subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=left)
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"{lesson.name} line {block.line}: {argv[-1]!r} timed out:\n"
                            f"{exc.stdout!r}\n{exc.stderr!r}")
            out = done.stdout.decode("utf-8", "replace")
            err = done.stderr.decode("utf-8", "replace")
            outputs.append(out + err)
            assert done.returncode in allowed, (
                f"{lesson.name} line {block.line}: {argv[-1]!r} exited {done.returncode}, "
                f"expected {sorted(allowed)}\nstdout:\n{out}\nstderr:\n{err}")
            assert "Traceback (most recent call last)" not in err or block.lang == "python", err
        if "output" in block.tags:
            _check_output(block, code, "\n".join(outputs))
    finally:
        if server is not None:
            server.kill()


# --- error names and codes agree with the catalog ---------------------------------------

_NAME = re.compile(r"\b(WSA[A-Z_]{3,}|EAI_[A-Z]+|E[A-Z]{3,})\b")
_TRIPLE = re.compile(r"Windows (\d+), macOS (\d+), Linux (-?\d+)")
_LABELLED = re.compile(r"^\s*(Windows|macOS|Linux):\s+(-?\d+)\b")
_WSA_NUMBER = re.compile(r"\b(WSA[A-Z_]+) (\d+)\b")
_WINERROR = re.compile(r"WinError (\d+)")
_ERRNO = re.compile(r"\[Errno (-?\d+)\]")
_OS_COLUMNS = {"windows": "windows", "macos": "macos", "linux": "linux"}


def _error_like_names() -> set[str]:
    names = set(errno.errorcode.values())
    names |= {attr for attr in dir(socket) if attr.startswith("EAI_")}
    return names


def _names_on(line: str) -> list[str]:
    known = _error_like_names()
    return [n for n in _NAME.findall(line) if n in known or n.startswith(("WSA", "EAI_"))]


def _claims(lesson: Lesson) -> list[tuple[int, str, list[str], list[tuple[str | None, int]]]]:
    """(line number, line, error names, [(system or None, number)]) for lines with codes."""
    out = []
    header: list[str] | None = None
    lines = lesson.text.splitlines()
    for i, line in enumerate(lines):
        claims: list[tuple[str | None, int]] = []
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|?$", lines[i + 1]):
                header = [c.lower() for c in cells]
            elif header and not re.match(r"^\|[\s:|-]+\|?$", line):
                for column, cell in zip(header, cells, strict=False):
                    system = _OS_COLUMNS.get(column)
                    if system is None or cell in ("-", "—") or cell.lower().startswith("none"):
                        continue
                    m = re.search(r"-?\d+", cell)
                    if m:
                        claims.append((system, int(m.group())))
        else:
            header = None
        for m in _TRIPLE.finditer(line):
            claims += [("windows", int(m.group(1))), ("macos", int(m.group(2))),
                       ("linux", int(m.group(3)))]
        m = _LABELLED.match(line)
        if m:
            claims.append((m.group(1).lower(), int(m.group(2))))
        claims += [("windows", int(n)) for n in _WINERROR.findall(line)]
        claims += [(None, int(n)) for n in _ERRNO.findall(line)]
        names = _names_on(line)
        for name, number in _WSA_NUMBER.findall(line):
            claims.append(("windows", int(number)))
            names.append(name)
        if names or claims:
            out.append((i + 1, line, names, claims))
    return out


def _matches(entry: ErrorEntry, system: str | None, number: int) -> bool:
    systems = SYSTEMS if system is None else (system,)
    return any(entry.code(s) is not None and entry.code(s).number == number  # type: ignore[union-attr]
               for s in systems)


def wrong_codes(lessons: list[Lesson]) -> list[str]:
    catalog = load_catalog()
    wrong = []
    for lesson in lessons:
        for number, line, names, claims in _claims(lesson):
            entries = [catalog.get(n) for n in names]
            if any(e is None for e in entries):
                continue  # a name the catalog lacks: reported by the test below
            for system, code in claims:
                pool = entries or catalog.entries
                if not any(_matches(e, system, code) for e in pool if e is not None):
                    wrong.append(f"{lesson.name}:{number}: {system or 'any system'} {code} "
                                 f"is not {'/'.join(names) or 'in the catalog'}: {line.strip()}")
    return wrong


def lacking_side_by_side(lessons: list[Lesson]) -> list[str]:
    """Errors a lesson names without ever giving their Windows, macOS and Linux codes."""
    catalog = load_catalog()
    lacking = []
    for lesson in lessons:
        named: set[str] = set()
        complete: set[str] = set()
        for _number, _line, names, claims in _claims(lesson):
            entries = [e for e in (catalog.get(n) for n in names) if e is not None]
            named |= {e.name for e in entries}
            for entry in entries:
                covered = {s for s, n in claims if s and _matches(entry, s, n)}
                if covered >= set(entry.codes):
                    complete.add(entry.name)
        lacking += [f"{lesson.name}: {name}" for name in sorted(named - complete)]
    return lacking


def test_error_codes_agree_with_the_catalog() -> None:
    assert wrong_codes(LESSONS) == []


def test_each_named_error_has_its_three_codes_side_by_side() -> None:
    assert lacking_side_by_side(LESSONS) == []


def test_the_code_checks_catch_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "99-bad.md"
    bad.write_text(
        "# Lesson 99: Bad\n\nRefused is ECONNREFUSED (Windows 10061, macOS 61, Linux 110).\n"
        "| error | Windows | macOS | Linux |\n|---|---|---|---|\n"
        "| EADDRINUSE | WinError 10048 | Errno 49 | Errno 98 |\n"
        "EADDRNOTAVAIL is mentioned without codes.\nA bare `[WinError 10061]` is fine.\n",
        encoding="utf-8")
    lessons = list_lessons(tmp_path)
    wrong = wrong_codes(lessons)
    assert any("linux 110 is not ECONNREFUSED" in w for w in wrong), wrong
    assert any("macos 49 is not EADDRINUSE" in w for w in wrong), wrong
    assert len(wrong) == 2, wrong
    # Wrong codes don't count as given: all three errors lack a correct side-by-side mention.
    assert lacking_side_by_side(lessons) == [
        "99-bad: EADDRINUSE", "99-bad: EADDRNOTAVAIL", "99-bad: ECONNREFUSED"]


def test_every_error_name_is_in_the_catalog() -> None:
    catalog = load_catalog()
    missing: dict[str, set[str]] = {}
    for lesson in LESSONS:
        for _number, _line, names, _found in _claims(lesson):
            for name in names:
                if catalog.get(name) is None:
                    missing.setdefault(name, set()).add(lesson.name)
    assert catalog.get("ECONNREFUSED") is not None  # the check itself works
    require(not missing, "the catalog has no entry for: " + "; ".join(
        f"{name} ({', '.join(sorted(where))})" for name, where in sorted(missing.items())))
