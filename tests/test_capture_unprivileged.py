"""Without the right to capture, for real: a throwaway user with no privileges runs netlab
from a virtual environment built inside this test's own temporary directory.

Safety: the user is created with --no-create-home and removed in a finally; permissions
change only inside the temporary directory this test created (checked before chown);
the interpreter, the checkout and every home stay untouched.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = pytest.mark.root

# Pure-Python (or abi-stable) packages `netlab capture` needs; copied, never downloaded.
PACKAGES = ("click", "scapy", "platformdirs", "psutil", "netlab")


@dataclass
class Sandbox:
    root: Path
    python: Path
    user: str
    uid: int
    gid: int

    def netlab(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.root), "NO_COLOR": "1",
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.run([str(self.python), "-m", "netlab", *args], cwd=self.root,
                              env=env, user=self.uid, group=self.gid, extra_groups=[],
                              capture_output=True, text=True, timeout=60)


def _base_python() -> str:
    if os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3"
    return getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    require(hasattr(os, "geteuid") and os.geteuid() == 0,
            "creating a throwaway user needs root")
    require(shutil.which("useradd") is not None and shutil.which("userdel") is not None,
            "useradd/userdel are not installed")
    tmp_root = os.path.realpath(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="netlab-unpriv-"))
    assert os.path.realpath(root).startswith(tmp_root + os.sep)  # only ever our own dir
    user = f"nlcap{uuid.uuid4().hex[:10]}"
    created = False
    try:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(root),
                        "--shell", "/usr/sbin/nologin", "--user-group", user],
                       check=True, capture_output=True, timeout=30)
        created = True
        info = pwd.getpwnam(user)
        venv = root / "venv"
        subprocess.run([_base_python(), "-m", "venv", "--without-pip", str(venv)],
                       check=True, capture_output=True, timeout=60)
        python = venv / "bin" / "python"
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True, timeout=30).stdout.strip()
        for name in PACKAGES:
            spec = find_spec(name)
            assert spec is not None and spec.submodule_search_locations, name
            source = Path(next(iter(spec.submodule_search_locations)))
            shutil.copytree(source, Path(purelib) / name, symlinks=False)
        assert os.path.realpath(root).startswith(tmp_root + os.sep)
        for path in (root, *root.rglob("*")):
            os.chown(path, info.pw_uid, info.pw_gid, follow_symlinks=False)
        yield Sandbox(root=root, python=python, user=user, uid=info.pw_uid, gid=info.pw_gid)
    finally:
        if created:
            subprocess.run(["userdel", user], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_the_user_really_has_no_capture_rights(sandbox: Sandbox) -> None:
    probe = subprocess.run(
        [str(sandbox.python), "-c",
         "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)"],
        user=sandbox.uid, group=sandbox.gid, extra_groups=[], capture_output=True, text=True,
        timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": str(sandbox.root)})
    assert probe.returncode != 0 and "PermissionError" in probe.stderr


def test_live_capture_explains_the_missing_right(sandbox: Sandbox) -> None:
    result = sandbox.netlab("capture", "--port", "55555", "--timeout", "1")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    err = result.stderr
    assert "root or Administrator" in err and "CAP_NET_RAW" in err and "Npcap" in err
    assert "sudo" in err and "--read" in err


def test_demo_falls_back_to_the_shipped_sample(sandbox: Sandbox) -> None:
    result = sandbox.netlab("capture", "--demo")
    assert result.returncode == 0, result.stderr
    assert "root or Administrator" in result.stderr
    assert "sample capture" in result.stderr and "sample-chat.pcap" in result.stderr
    assert "server asks for a nickname" in result.stdout
    assert "ladder, stream 1" in result.stdout and "summary: 39 TCP packets" in result.stdout


def test_read_needs_no_privilege(sandbox: Sandbox) -> None:
    sample = next(sandbox.root.rglob("sample-chat.pcap"))
    result = sandbox.netlab("capture", "--read", str(sample), "--json", "--count", "3")
    assert result.returncode == 0, result.stderr
    objs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["type"] for o in objs] == ["packet"] * 3 + ["connection"]
    assert [o.get("flags") for o in objs[:3]] == ["S", "SA", "A"]
