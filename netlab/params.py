"""Command-line value types that several commands share."""

from __future__ import annotations

import math
import re
from typing import Any

import click

# "127.0.0.1:55555", "localhost:80", "[::1]:55555": an address with its port, as a
# server prints it or a URL writes it. (A bare IPv6 address never matches: outside
# brackets only one colon is allowed, and IPv6 has two at least.)
_WITH_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]+)):(?P<port>\d+)$")


class Host(click.ParamType):
    """An address or a name, as typed or pasted: " 127.0.0.1 " and "[::1]" work too."""

    name = "host"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value).strip()
        if "://" in text:  # never looked up as a name: the resolver would get it
            from urllib.parse import urlsplit

            try:
                url = urlsplit(text)
                host, port = url.hostname or "127.0.0.1", url.port
            except ValueError:
                host, port = "127.0.0.1", None
            with_port = f" --port {port}" if port else ""
            self.fail(f"{text!r} is a URL: give only the address, as in --host {host}"
                      f"{with_port}", param, ctx)
        pasted = _WITH_PORT.match(text)
        if pasted:
            host = (pasted["v6"] or pasted["host"] or "").strip()
            self.fail(f"{text!r} has a port in it: give it with --port, as in "
                      f"--host {host or '127.0.0.1'} --port {pasted['port']}", param, ctx)
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1].strip()  # an IPv6 literal as URLs write it
        if not text:
            self.fail("is empty: give an address such as 127.0.0.1, or a name such as "
                      "localhost", param, ctx)
        if any(ch.isspace() for ch in text):
            self.fail(f"{value!r} has a space in it: an address or a name has none",
                      param, ctx)
        return text


class FiniteRange(click.FloatRange):
    """A FloatRange that refuses nan and inf: Python reads both as floats, and nan passes
    every bound (`--handshake-timeout nan` was taken)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number: give digits, such as 5 or 0.5",
                      param, ctx)
        return number


HOST = Host()
