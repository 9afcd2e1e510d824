"""The lessons ship: a wheel install and an editable install both find all of them.

Both are built from a copy of the checkout and run from a working directory outside it, so
nothing can be found by accident through the current directory. Offline and fast:
--no-deps, --no-build-isolation (hatchling from this venv), and the new venvs borrow this
venv's third-party packages through a .pth file instead of downloading them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parent.parent
LESSON_FILES = sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]-*.md"))
pytestmark = pytest.mark.timeout(240)


def _pip(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check",
                           "--no-input", *args], capture_output=True, text=True,
                          timeout=timeout, env=_clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "NETLAB_LESSONS_DIR")}
    env["PIP_NO_INDEX"] = "1"  # never reach for the network
    return env


def _source_copy(tmp: Path) -> Path:
    """The files a build needs, copied: the build leaves nothing in the real checkout."""
    require(importlib.util.find_spec("hatchling") is not None,
            "hatchling is not installed in this venv (needed to build offline)")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_lessons")
    for name in ("netlab", "lessons"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    return src


def _venv(path: Path) -> Path:
    """A fresh venv without pip that sees this venv's packages after its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=60, capture_output=True)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(python), "-c", ask], capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip()
    # A plain path line in a .pth appends that directory; .pth files inside it (such as an
    # editable netlab of this venv) are not processed, so netlab comes only from the new venv.
    borrowed = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "_borrowed_deps.pth").write_text("\n".join(borrowed) + "\n")
    return python


def _list_from_outside(python: Path, cwd: Path) -> dict[str, object]:
    done = subprocess.run([str(python), "-m", "netlab", "lessons", "--json"], cwd=cwd,
                          capture_output=True, text=True, timeout=60, env=_clean_env())
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    files = sorted(item["file"] for item in data["lessons"])  # type: ignore[attr-defined, index]
    assert files == LESSON_FILES
    shown = subprocess.run([str(python), "-m", "netlab", "lesson", "address-in-use"], cwd=cwd,
                           capture_output=True, text=True, timeout=60, env=_clean_env())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("# Lesson 7:")
    return data


def test_wheel_install_finds_every_lesson(tmp_path: Path) -> None:
    assert len(LESSON_FILES) == 11
    src = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src))
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1
    python = _venv(tmp_path / "venv")
    _pip("--python", str(python), "install", "--no-deps", str(wheels[0]))
    shutil.rmtree(src)  # the installed copy must not lean on the source
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    data = _list_from_outside(python, outside)
    directory = Path(str(data["directory"]))
    assert directory.name == "_lessons"
    assert directory.is_relative_to(tmp_path / "venv")


def test_editable_install_finds_every_lesson(tmp_path: Path) -> None:
    # hatchling builds editable wheels with the `editables` package (a build requirement).
    require(importlib.util.find_spec("editables") is not None,
            "the editables package is not installed (hatchling needs it for pip install -e)")
    src = _source_copy(tmp_path)
    python = _venv(tmp_path / "venv")
    _pip("--python", str(python), "install", "--no-deps", "--no-build-isolation", "-e", str(src))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    data = _list_from_outside(python, outside)
    assert Path(str(data["directory"])).resolve() == (src / "lessons").resolve()
