"""The class server's signing secret: made on first start, kept under NETLAB_HOME (or the
platform's config directory) readable by the instructor only, never printed or logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from netlab.env import netlab_home
from netlab.errors import NetlabError

SECRET_NAME = "class-secret"


def secret_path(environ: dict[str, str] | None = None) -> Path:
    return netlab_home("config", environ) / SECRET_NAME


def load_secret(path: Path | None = None, create: bool = True) -> bytes:
    """The secret's bytes; created (0600) when missing and `create`. Raises NetlabError."""
    path = path or secret_path()
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        if not create:
            raise NetlabError(
                f"no class secret at {path}: tokens can only be checked on the machine "
                "(and NETLAB_HOME) that ran `netlab class serve`",
                "run netlab class verify where the class server ran, or set NETLAB_HOME",
            ) from None
        return _create(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlabError(f"cannot read the class secret {path}: {exc}") from None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) < 16:
        raise NetlabError(f"the class secret {path} is damaged",
                          "delete it to make a new one (tokens already given out stop verifying)")
    return value


def _create(path: Path) -> bytes:
    value = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two servers starting at once must not each write a different secret;
        # 0o600 at creation, so the secret is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_secret(path, create=False)
    except OSError as exc:
        raise NetlabError(f"cannot create the class secret {path}: {exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value.hex() + "\n")
    return value
