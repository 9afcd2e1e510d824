"""The command line itself: help, version, exit codes, and a fast start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab.cli import cli
from tests.conftest import WAIT, netlab_cmd

HEAVY = ("scapy", "prompt_toolkit", "rich", "psutil")


def test_help_lists_every_command_with_a_description() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].rstrip().splitlines()[1:]
    assert commands, result.output
    names = [line.split()[0] for line in commands if line.startswith("  ") and
             not line.startswith("   ")]
    assert set(names) == set(cli.list_commands(None))  # type: ignore[arg-type]
    for line in commands:
        if line.startswith("  ") and not line.startswith("   "):
            assert len(line.split(None, 1)) == 2, f"no description: {line!r}"


def test_version() -> None:
    result = subprocess.run(netlab_cmd("--version"), capture_output=True, text=True,
                            timeout=WAIT)
    assert result.returncode == 0
    assert result.stdout.startswith("netlab, version ")


def test_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(netlab_cmd("frobnicate"), capture_output=True, text=True,
                            timeout=WAIT)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_cli_start_imports_no_heavy_library() -> None:
    """`netlab --help` must start fast: scapy alone costs ~500 ms to import."""
    code = (
        "import sys, json, netlab.cli; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=WAIT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_help_of_each_command_imports_nothing_heavy() -> None:
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from netlab.cli import cli\n"
        "for name in cli.list_commands(None):\n"
        "    assert CliRunner().invoke(cli, [name, '--help']).exit_code == 0, name\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=WAIT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_python_dash_m_is_the_unambiguous_entry() -> None:
    result = subprocess.run(netlab_cmd("--help"), capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: netlab ")


def test_a_reader_that_leaves_early_is_not_an_error() -> None:
    """`netlab explain 98 | head -c 0`: EPIPE on stdout ends the command quietly."""
    proc = subprocess.Popen(netlab_cmd("explain", "98"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # before the command writes anything
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0
    assert b"internal error" not in err and b"Traceback" not in err


def test_the_help_table_matches_the_commands() -> None:
    """`netlab --help` reads a table so it need not import every command: keep it true."""
    import click

    from netlab.cli import COMMANDS

    ctx = click.Context(cli)
    for name, (_, _, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=200) == short


PORT_IN_IT = "has a port in it: give it with --port, as in "
A_URL = "is a URL: give only the address, as in "


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["chat"], ["bench"],
                                     ["capture"], ["class", "serve", "--port", "0"]])
@pytest.mark.parametrize(("host", "said"), [
    ("127.0.0.1:55555", PORT_IN_IT + "--host 127.0.0.1 --port 55555"),
    (" [::1]:4000 ", PORT_IN_IT + "--host ::1 --port 4000"),
    ("localhost:80", PORT_IN_IT + "--host localhost --port 80"),
    ("http://127.0.0.1:8080/", A_URL + "--host 127.0.0.1 --port 8080"),
    ("tcp://[::1]", A_URL + "--host ::1"),
])
def test_an_address_pasted_with_its_port_is_a_usage_error_that_splits_it(
        command: list[str], host: str, said: str, tmp_path: Path) -> None:
    """It used to be looked up as a name ("the name 127.0.0.1:55555 is not known", exit 3):
    a query to the resolver, and no word of what was wrong."""
    result = subprocess.run(netlab_cmd(*command, "--host", host), capture_output=True,
                            text=True, timeout=WAIT, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr


@pytest.mark.parametrize("host", ["::1", "[::1]", "::ffff:127.0.0.1", "fe80::1:80"])
def test_an_ipv6_address_is_not_taken_for_a_host_with_a_port(host: str) -> None:
    from netlab.params import HOST

    assert HOST.convert(host, None, None) == host.strip("[]")


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["chat"], ["bench"],
                                     ["capture"], ["class", "serve", "--port", "0"]])
@pytest.mark.parametrize("host", ["", "  ", "[]", "127.0.0.1 55555"])
def test_an_empty_or_spaced_host_is_a_usage_error(command: list[str], host: str,
                                                  tmp_path: Path) -> None:
    # (in tmp_path: were the host taken, `class serve` would write its log in the cwd)
    result = subprocess.run(netlab_cmd(*command, "--host", host), capture_output=True,
                            text=True, timeout=WAIT, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--host" in result.stderr and "Traceback" not in result.stderr
    assert ("is empty" in result.stderr) if not host.strip("[] ") else (
        "has a space in it" in result.stderr)


INPUT_FILES = (["capture", "--read", "{path}"], ["check", "8", "--answers", "{path}"],
               ["class", "report", "{path}"], ["class", "verify", "x", "--log", "{path}"])


@pytest.mark.parametrize(("command", "kind"), [
    *[(command, kind) for command in INPUT_FILES for kind in ("missing", "directory")],
    *[(command, "binary") for command in INPUT_FILES[:3]],  # (verify reads logs last)
])
def test_an_input_file_that_cannot_be_read_is_exit_3(command: list[str], kind: str,
                                                    tmp_path: Path) -> None:
    """Missing, a directory or not text: the job cannot be done (3), whichever it is; a
    directory used to be Click's usage error (2), a missing answers file too."""
    path = tmp_path / "input"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(bytes(range(128, 256)) * 4)
    args = [str(path) if part == "{path}" else part for part in command]
    result = subprocess.run(netlab_cmd(*args), capture_output=True, text=True, timeout=WAIT,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert str(path) in result.stderr  # the message is about the file
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr


@pytest.mark.parametrize("args", [
    ["serve", "--port", "0", "--handshake-timeout", "nan"],
    ["chat", "--timeout", "inf"],
    ["bench", "--rate", "nan"],
    ["capture", "--timeout", "nan"],
    ["check", "3", "--timeout", "nan"],
    ["class", "serve", "--port", "0", "--fault", "wrong-port", "--fault-delay", "nan"],
])
def test_nan_and_inf_are_no_numbers_of_seconds(args: list[str], tmp_path: Path) -> None:
    """Python reads 'nan' as a float and nan passes every bound: the server took it."""
    result = subprocess.run(netlab_cmd(*args), capture_output=True, text=True, timeout=WAIT,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is not a finite number" in result.stderr
