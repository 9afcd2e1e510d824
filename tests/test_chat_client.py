"""`netlab chat` as a real process: line mode, failures, and a tutorial-style server."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import threading

import pytest

from tests.conftest import WAIT, LineClient, ServerProcess, netlab_cmd


def run_chat(port: int, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(netlab_cmd("chat", "--port", str(port), *args), input=stdin,
                          capture_output=True, text=True, timeout=WAIT)


def test_line_mode_first_line_is_the_nickname(server: ServerProcess) -> None:
    watcher = LineClient(server.port).join("watcher")
    result = run_chat(server.port, "alice\nhello there\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "*** Welcome, alice! 2 online; /help for commands"
    assert "alice: hello there" in out
    assert out[-1] == "*** alice left (quit)"  # end of input is a polite /quit
    watcher.expect("alice: hello there")
    watcher.expect("*** alice left (quit)")


def test_line_mode_with_nick_option_and_commands(server: ServerProcess) -> None:
    bob = LineClient(server.port).join("bob")
    result = run_chat(server.port, "/who\n/msg bob hi bob\n/quit\n", "--nick", "alice")
    assert result.returncode == 0
    assert "*** online (2): bob, alice" in result.stdout
    assert "[pm] alice -> bob: hi bob" in result.stdout
    bob.expect("[pm] alice -> bob: hi bob")


def test_a_refused_nickname_takes_the_next_line(server: ServerProcess) -> None:
    first = LineClient(server.port).join("alice")
    result = run_chat(server.port, "Alice\nalice2\nhi\n")
    first.expect("alice2: hi")
    assert "! nickname Alice is taken, choose another" in result.stdout
    assert "alice2: hi" in result.stdout


def test_bad_nick_option_is_a_usage_error() -> None:
    result = run_chat(1, "", "--nick", "no spaces please")
    assert result.returncode == 2
    assert "letters, digits" in result.stderr and "Traceback" not in result.stderr


def test_connection_refused_is_explained() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_chat(port, "")
    assert result.returncode == 3
    assert f"nothing is listening on 127.0.0.1:{port}" in result.stderr
    assert "ECONNREFUSED" in result.stderr and "WinError 10061" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_shutdown_is_reported_and_not_a_hang(server: ServerProcess) -> None:
    chat = subprocess.Popen(netlab_cmd("chat", "--port", str(server.port), "--nick", "al"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watcher = LineClient(server.port).join("watcher")
    watcher.expect("*** al joined", timeout=WAIT)
    server.stop(signal.SIGINT)
    assert chat.wait(WAIT) == 0  # stdin still open: it must not wait for input
    assert chat.stdout is not None
    out = chat.stdout.read()
    assert out.splitlines()[-1] == "*** server shutdown"


def test_a_server_that_dies_is_reported(server: ServerProcess) -> None:
    chat = subprocess.Popen(netlab_cmd("chat", "--port", str(server.port), "--nick", "al"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    LineClient(server.port).join("watcher").expect("*** al joined")
    server.kill()
    assert chat.wait(WAIT) == 3  # stdin stays open: the client notices on its own
    assert chat.stderr is not None
    err = chat.stderr.read()
    assert "the server closed the connection" in err and "Traceback" not in err


def resets_after_the_nickname(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    conn.settimeout(WAIT)
    conn.sendall(b"NICK\n")
    conn.recv(1024)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST


def test_a_server_that_resets_after_the_nickname_is_reported_every_time() -> None:
    """The client's next send could meet the reset first, and report it, once; the client
    then said /quit to a dead server and exited 0 in silence (2 runs in 3)."""
    for _ in range(5):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            thread = threading.Thread(target=resets_after_the_nickname, args=(listener,),
                                      daemon=True)
            thread.start()
            chat = subprocess.Popen(
                netlab_cmd("chat", "--port", str(listener.getsockname()[1]), "--nick", "bob"),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            assert chat.stdin is not None
            chat.stdin.write("hello\n")  # typed at once; the input stays open
            chat.stdin.flush()
            try:
                chat.wait(WAIT)  # stdin still open: it must notice on its own
            finally:
                if chat.poll() is None:
                    chat.kill()
            assert chat.stderr is not None
            err = chat.stderr.read()
            chat.stdin.close()
            thread.join(WAIT)
        assert chat.returncode == 3, err
        # (which call meets the reset first is timing: "cannot send", "cannot recv", or
        # the end of the stream after it)
        assert err.startswith("netlab: ") and "Traceback" not in err


def own_words_server(listener: socket.socket, prompt: bytes, got: list[bytes]) -> None:
    """A student's server: its own prompt (or none), then it reads a nickname and a line."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(WAIT)
        if prompt:
            conn.sendall(prompt)
        data = b""
        while data.count(b"\n") < 2:
            chunk = conn.recv(1024)
            if not chunk:
                break
            data += chunk
        got.append(data)


@pytest.mark.parametrize("prompt", [b"Enter nickname: ", b"nick?\n", b""])
def test_the_nick_option_reaches_a_server_that_asks_in_its_own_words_or_not_at_all(
        prompt: bytes) -> None:
    """--nick was sent only after an exact NICK: elsewhere the first message became the
    nickname. A server that never asks gets it after a few seconds."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        got: list[bytes] = []
        thread = threading.Thread(target=own_words_server, args=(listener, prompt, got),
                                  daemon=True)
        thread.start()
        proc = subprocess.Popen(
            netlab_cmd("chat", "--port", str(listener.getsockname()[1]), "--nick", "bob"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdin is not None
        proc.stdin.write("hello\n")
        proc.stdin.flush()
        thread.join(WAIT)
        proc.stdin.close()
        proc.wait(WAIT)
    assert got and got[0].startswith(b"bob\nhello\n"), got


def tutorial_server(listener: socket.socket, got: list[bytes]) -> None:
    """The classic tutorial server's manners: a bare "NICK", lines without newlines."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(WAIT)
        conn.send(b"NICK")
        nick = conn.recv(1024).decode().strip()
        conn.send(f"{nick} joined!".encode())
        got.append(conn.recv(1024))


def test_works_against_a_tutorial_style_server() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    got: list[bytes] = []
    thread = threading.Thread(target=tutorial_server, args=(listener, got), daemon=True)
    thread.start()
    proc = subprocess.Popen(
        netlab_cmd("chat", "--port", str(listener.getsockname()[1]), "--nick", "alice"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == "alice joined!\n"  # shown after a pause, no newline sent
    proc.stdin.write("hello\n")
    proc.stdin.close()
    proc.wait(WAIT)
    thread.join(WAIT)
    listener.close()
    assert got and got[0].startswith(b"hello\n")  # then /quit, in the same recv() or not
