"""One error hierarchy for every command: each error knows its exit code and its hint.

Expected failures (a port in use, a refused connection, an unreadable file) are raised as
NetlabError anywhere in the library and rendered once, by the CLI, as a short message on
stderr. A traceback is shown only with --debug or NETLAB_DEBUG=1.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # success, including a requested stop of serve, chat or capture
    NO = 1  # the answer is "no": a problem found, a check failed, text not recognised
    USAGE = 2  # usage error (Click uses 2 as well)
    FAILED = 3  # the job could not be done: bind/connect failed, no right to capture, ...
    INTERRUPTED = 130  # a one-shot command interrupted by Ctrl-C (128 + SIGINT)


class NetlabError(Exception):
    """An expected failure: a message for a person, an optional hint, an exit code."""

    exit_code: int = ExitStatus.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(NetlabError):
    exit_code = ExitStatus.USAGE


class NotRecognised(NetlabError):
    exit_code = ExitStatus.NO


class SocketProblem(NetlabError):
    """A socket call failed; carries the catalog entry that explains it (when known)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        code: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.code = code
        self.operation = operation
