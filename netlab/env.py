"""The environment a command runs in, passed in rather than read from globals.

Tests build an Environment that plays Windows or a non-terminal on Linux without
monkeypatching sys or os (the idea of httpie's context.Environment).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Environment:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    platform: str = sys.platform
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def is_windows(self) -> bool:
        return self.platform.startswith("win")

    @property
    def is_macos(self) -> bool:
        return self.platform == "darwin"

    @property
    def stdin_isatty(self) -> bool:
        return _isatty(self.stdin)

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def color(self) -> bool:
        """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
        if "NO_COLOR" in self.environ:
            return False
        return self.stdout_isatty and self.environ.get("TERM") != "dumb"

    @property
    def debug(self) -> bool:
        return self.environ.get("NETLAB_DEBUG", "") not in ("", "0")


def netlab_home(kind: str = "data", environ: dict[str, str] | None = None) -> Path:
    """Where netlab keeps files it writes for the user (progress, secrets, logs).

    NETLAB_HOME when set, else the platform's user directory (platformdirs).
    """
    environ = os.environ if environ is None else environ
    home = environ.get("NETLAB_HOME")
    if home:
        return Path(home)
    import platformdirs

    if kind == "config":
        return Path(platformdirs.user_config_dir("netlab", appauthor=False))
    return Path(platformdirs.user_data_dir("netlab", appauthor=False))
