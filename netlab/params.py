"""Command-line value types that several commands share."""

from __future__ import annotations

from typing import Any

import click


class Host(click.ParamType):
    """An address or a name, as typed or pasted: " 127.0.0.1 " and "[::1]" work too."""

    name = "host"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1].strip()  # an IPv6 literal as URLs write it
        if not text:
            self.fail("is empty: give an address such as 127.0.0.1, or a name such as "
                      "localhost", param, ctx)
        if any(ch.isspace() for ch in text):
            self.fail(f"{value!r} has a space in it: an address or a name has none",
                      param, ctx)
        return text


HOST = Host()
