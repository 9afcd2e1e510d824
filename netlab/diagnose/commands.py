"""`netlab diagnose` and `netlab explain`: parse options, call the library, render.

Only click and light modules load at import; psutil and rich load inside the calls.
"""

from __future__ import annotations

import click

from netlab.env import Environment
from netlab.errors import NetlabError, UsageError
from netlab.params import FiniteRange


def _host_port(for_bind: bool):  # type: ignore[no-untyped-def]
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
        if value is None:
            return None
        from netlab.diagnose.hostport import parse_host_port

        try:
            return parse_host_port(value, for_bind=for_bind, default_port=0 if for_bind else None)
        except UsageError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise click.BadParameter(f"{exc.message}{hint}") from None

    return convert


@click.command()
@click.option(
    "--bind",
    "bind_target",
    metavar="HOST[:PORT]",
    callback=_host_port(for_bind=True),
    help="Could a server bind this address and port? (IPv6 in brackets: [::1]:55555)",
)
@click.option(
    "--connect",
    "connect_target",
    metavar="HOST:PORT",
    callback=_host_port(for_bind=False),
    help="Could a client connect there? Resolves, finds the route, tries one TCP connect.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Who listens on this port, and could a new server bind it?",
)
@click.option(
    "--timeout",
    type=FiniteRange(0.1, 120),
    default=3.0,
    show_default=True,
    help="Seconds to wait for --connect.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def diagnose(
    bind_target: object,
    connect_target: object,
    port: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Find why a socket call fails, on this machine, and explain the fix.

    With no option: this machine's interfaces and the address to give classmates.
    Exit 0 when nothing is a problem (warnings allowed), 1 when something is.
    """
    chosen = [o for o in (bind_target, connect_target, port) if o is not None]
    if len(chosen) > 1:
        raise click.UsageError("give only one of --bind, --connect and --port")
    from netlab.diagnose import diagnosis as dx
    from netlab.diagnose.hostport import HostPort
    from netlab.diagnose.render import emit_json, render_diagnosis

    try:
        from netlab.diagnose.probes import LiveSystem

        system = LiveSystem()
        if isinstance(bind_target, HostPort):
            result = dx.diagnose_bind(bind_target, system)
        elif isinstance(connect_target, HostPort):
            result = dx.diagnose_connect(connect_target, system, timeout)
        elif port is not None:
            result = dx.diagnose_port(port, system)
        else:
            result = dx.overview(system)
    except ImportError as exc:  # psutil is a dependency, but a broken install happens
        raise NetlabError(f"cannot inspect this machine: {exc}", "pip install psutil") from None
    env = Environment()
    if as_json:
        emit_json(result.to_json(), env)
    else:
        render_diagnosis(result, env)
    raise click.exceptions.Exit(result.exit_code)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("text", nargs=-1, type=click.UNPROCESSED)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def explain(text: tuple[str, ...], as_json: bool) -> None:
    """Explain a socket error: a number, a name, a message or a whole traceback.

    \b
    netlab explain 10049
    netlab explain EADDRINUSE
    netlab explain "OSError: [Errno 98] Address already in use"
    python app.py 2>&1 | netlab explain

    Exit 0 when recognised, 1 when not.
    """
    from netlab.diagnose.explain import explain_text
    from netlab.diagnose.render import emit_json, explanation_to_json, render_explanation

    env = Environment()
    if text:
        pasted = " ".join(text)
    else:
        if env.stdin_isatty:
            click.echo("Paste the error, then press Ctrl-D (Windows: Ctrl-Z, Enter).", err=True)
        pasted = env.stdin.read()
    if not pasted.strip():
        raise UsageError(
            "nothing to explain", 'give the error text: netlab explain "OSError: [Errno 98] ..."'
        )
    result = explain_text(pasted)
    if as_json:
        emit_json(explanation_to_json(result), env)
    else:
        render_explanation(result, env)
    raise click.exceptions.Exit(0 if result.recognised else 1)
