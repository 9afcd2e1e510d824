"""The Click group. Commands parse options, call library code and render; nothing more.

Heavy libraries (scapy, prompt_toolkit, rich, psutil) are imported inside the commands that
need them, so `netlab --help` starts fast; tests/test_cli.py guards this.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any

import click

from netlab import __version__
from netlab.errors import ExitStatus, NetlabError


class NetlabGroup(click.Group):
    """Renders every expected failure once, with its exit code; no traceback without --debug.

    Also loads each command's module only when that command runs.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NetlabError as exc:
            if _debug(ctx):
                raise
            click.echo(f"netlab: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"  fix: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # `netlab explain ... | head`: the reader left early, which is not an error.
            # Point stdout at devnull so the interpreter's final flush stays quiet.
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(ExitStatus.OK)
        except KeyboardInterrupt:
            # serve, chat and capture treat Ctrl-C as their normal stop and never get here.
            click.echo("\ninterrupted", err=True)
            ctx.exit(ExitStatus.INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say so briefly, full traceback with --debug
            if _debug(ctx):
                raise
            click.echo(f"netlab: internal error: {type(exc).__name__}: {exc}", err=True)
            click.echo("  run again with --debug for the traceback, and report it", err=True)
            ctx.exit(ExitStatus.FAILED)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    return bool(obj.get("debug")) or os.environ.get("NETLAB_DEBUG", "") not in ("", "0")


@click.group(cls=NetlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="netlab")
@click.option("--debug", is_flag=True, help="Show tracebacks (also NETLAB_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """netlab: learn sockets by chatting, diagnosing and watching the wire."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# Commands are imported only when used: `netlab --help` reads this table instead, so
# it starts in the time it takes to import click (tests/test_cli.py checks the table
# against the commands themselves).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("netlab.chat.commands", "serve", "Run the chat server (Ctrl-C stops it)."),
    "chat": ("netlab.chat.commands", "chat", "Chat with a netlab (or tutorial-style) server."),
    "diagnose": ("netlab.diagnose.commands", "diagnose",
                 "Find why a socket call fails, on this machine, and explain the fix."),
    "explain": ("netlab.diagnose.commands", "explain",
                "Explain a socket error: a number, a name, a message or a whole traceback."),
    "capture": ("netlab.capture.commands", "capture",
                "Capture the chat's TCP traffic and explain it as it happens."),
    "bench": ("netlab.bench.commands", "bench",
              "Load-test a line-based chat server: yours, netlab's, or ncat --chat."),
    "lessons": ("netlab.lessons_commands", "lessons", "List the lessons: number, title and goal."),
    "lesson": ("netlab.lessons_commands", "lesson",
               "Show one lesson, by number (7) or name (address-in-use)."),
    "check": ("netlab.exercises.commands", "check",
              "Check an exercise: NAME is its number or name (`netlab check --list`)."),
    "class": ("netlab.classroom.commands", "class_group",
              "Run a class: one server for the room, a roster, a log, proofs and drills."),
}


def main(argv: list[str] | None = None, prog_name: str = "netlab") -> None:
    cli.main(args=argv, prog_name=prog_name)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])

