"""The Click group. Commands parse options, call library code and render; nothing more.

Heavy libraries (scapy, prompt_toolkit, rich, psutil) are imported inside the commands that
need them, so `netlab --help` starts fast; tests/test_cli.py guards this.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from netlab import __version__
from netlab.errors import ExitStatus, NetlabError


class NetlabGroup(click.Group):
    """Renders every expected failure once, with its exit code; no traceback without --debug."""

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


def _register() -> None:
    from netlab.chat.commands import chat, serve

    cli.add_command(serve)
    cli.add_command(chat)
    from netlab.lessons_commands import lesson, lessons
    cli.add_command(lessons)
    cli.add_command(lesson)
    from netlab.capture.commands import capture
    cli.add_command(capture)
    from netlab.bench.commands import bench
    cli.add_command(bench)
    from netlab.diagnose.commands import diagnose, explain
    cli.add_command(diagnose)
    cli.add_command(explain)
    from netlab.exercises.commands import check
    cli.add_command(check)
    from netlab.classroom.commands import class_group
    cli.add_command(class_group)


_register()


def main(argv: list[str] | None = None, prog_name: str = "netlab") -> None:
    cli.main(args=argv, prog_name=prog_name)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])

