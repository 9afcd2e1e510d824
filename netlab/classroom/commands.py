"""`netlab class`: serve a class, report on its log, verify tokens, run drills.

Only click and light modules load at import; the server, rich and psutil load inside the
commands (a test asserts `import netlab.cli` loads none of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from netlab.chat import protocol as p
from netlab.classroom.drills import FAULTS
from netlab.errors import ExitStatus, NetlabError, UsageError
from netlab.output import err as _err
from netlab.output import out as _out
from netlab.params import HOST, FiniteRange

DRILL_HELP = "Faults: " + ", ".join(FAULTS) + "."




F = TypeVar("F", bound=Callable[..., Any])


def _server_options(f: F) -> F:
    options = [
        click.option("--host", default=None, type=HOST,
                     help="Address to listen on [default: '::' and 0.0.0.0, the whole LAN]."),
        click.option("--port", default=p.DEFAULT_PORT, show_default=True,
                     type=click.IntRange(0, 65535), help="Class port; 0 picks a free one."),
        click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
                     help="Class log (JSON Lines) [default: ./netlab-class-DATE.jsonl]."),
        click.option("--allow", multiple=True, metavar="CIDR",
                     help="Admit only these addresses (repeatable), e.g. 192.168.1.0/24."),
        click.option("--deny", multiple=True, metavar="CIDR",
                     help="Refuse these addresses (repeatable; checked before --allow)."),
        click.option("--password", "use_password", is_flag=True,
                     help="Ask students for a class password after the nickname (read from "
                          "NETLAB_CLASS_PASSWORD, or typed here)."),
        click.option("--max-clients", type=click.IntRange(1, None), default=None,
                     help="Most connections at once."),
        click.option("--drill-port", type=click.IntRange(0, 65535), default=None,
                     help="Port announced for the drill server [default: class port + 1]."),
        click.option("--fault-delay", type=FiniteRange(0.1, 60), default=2.0,
                     show_default=True, help="Seconds of delay for slow-broadcast."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group("class")
def class_group() -> None:
    """Run a class: one server for the room, a roster, a log, proofs and drills."""


@class_group.command("serve")
@_server_options
@click.option("--fault", type=click.Choice(list(FAULTS)), default=None,
              help="Start a drill server with this one deliberate problem.")
def serve(fault: str | None, **options: object) -> None:
    """Serve the whole class (Ctrl-C stops it; exit 0).

    Prints the addresses students should type and a command for the projector; every
    join, leave, message count, proof and drill answer goes to the class log.
    """
    from netlab.classroom.session import ClassSession

    session = ClassSession.open(**options, fault=fault)  # type: ignore[arg-type]
    with session:
        session.wait()
    raise click.exceptions.Exit(ExitStatus.OK)


@class_group.command("drill")
@_server_options
@click.option("--faults", default=None, metavar="NAME,NAME",
              help="Rounds in this order [default: every fault, shuffled].")
def drill(faults: str | None, **options: object) -> None:
    """Troubleshooting drills, round by round (Enter ends a round).

    Each round starts the drill server with one fault; students diagnose it (netlab
    diagnose --connect HOST:PORT) and answer with `netlab check drill NAME --server
    HOST:PORT`; the class server grades against the fault and logs it. End of input,
    Ctrl-C or SIGTERM ends the drill.

    Faults: loopback-only, wrong-port, backlog-full, silent-handshake, reset-after-join,
    slow-broadcast.
    """
    import random

    from netlab.classroom.session import ClassSession

    if faults:
        names = [n.strip() for n in faults.split(",") if n.strip()]
        unknown = [n for n in names if n not in FAULTS]
        if unknown or not names:
            raise UsageError(f"--faults: unknown fault {', '.join(unknown) or '(none)'}",
                             DRILL_HELP)
    else:
        names = list(FAULTS)
        random.shuffle(names)
    session = ClassSession.open(**options)  # type: ignore[arg-type]
    with session:
        session.run_rounds(names)
    raise click.exceptions.Exit(ExitStatus.OK)


@class_group.command("report")
@click.argument("logs", nargs=-1, required=True, type=click.Path())
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Also write the table as CSV to FILE ('-': stdout).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def report(logs: tuple[str, ...], csv_path: str | None, as_json: bool) -> None:
    """One row per student from class logs: sessions, messages, exercises, drills."""
    import json

    from netlab.classroom.report import aggregate, to_csv, to_text

    events, bad = _read_logs(logs)
    if bad and not events:  # not one event: this is no class log
        raise NetlabError(f"no class events in {', '.join(logs)}: is it a class log?",
                          "class logs are the netlab-class-*.jsonl files `netlab class "
                          "serve` writes")
    students = aggregate(events)
    if bad:
        _err(f"note: skipped {bad} line(s) that are not events (a hand edit, or a torn "
             "last line)")
    if csv_path is not None:
        text = to_csv(students)
        if csv_path == "-":
            click.echo(text, nl=False)
        else:
            try:
                with open(csv_path, "w", encoding="utf-8", newline="") as out:
                    out.write(text)
            except OSError as exc:
                raise NetlabError(f"cannot write {csv_path}: {exc.strerror or exc}") from None
            _err(f"wrote {len(students)} students to {csv_path}")
    if as_json:
        click.echo(json.dumps({"type": "class_report", "logs": list(logs),
                               "events": len(events), "skipped_lines": bad,
                               "students": [s.to_json() for s in students]}, indent=2))
    elif csv_path != "-":
        click.echo(to_text(students), nl=False)


@class_group.command("verify")
@click.argument("token")
@click.option("--log", "logs", multiple=True, type=click.Path(),
              help="Class log(s) to compare with [default: ./netlab-class-*.jsonl].")
@click.option("--nick", default=None, help="Who handed the token in.")
@click.option("--address", default=None, help="The address they use (from the roster).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def verify(token: str, logs: tuple[str, ...], nick: str | None, address: str | None,
           as_json: bool) -> None:
    """Check a proof token: its claims, its signature, and the class log.

    Exit 0 when the signature holds and the log agrees (and the token is the one who
    handed it in), 1 when not.
    """
    import glob
    import json

    from netlab.classroom.secret import load_secret
    from netlab.classroom.verify import verify as check

    paths = list(logs) or sorted(glob.glob("netlab-class-*.jsonl"))
    events = _read_logs(tuple(paths))[0] if paths else None
    verdict = check(token, load_secret(create=False), events, nick=nick, address=address)
    if as_json:
        data = verdict.to_json()
        data["logs"] = paths
        click.echo(json.dumps(data, indent=2))
    else:
        c = verdict.claims
        if c is not None:
            _out(f"token for exercise {c.exercise}")
            _out(f"  nick       {c.nick}")
            _out(f"  address    {c.address}")
            _out(f"  issued     {c.when()}")
            _out(f"  signature  {'ok' if verdict.signature else 'DOES NOT MATCH'}")
            agrees = "agrees" if verdict.in_log else "has no record of it"
            _out(f"  class log  {agrees if verdict.log_checked else 'not checked'}")
        _out("verified" if verdict.ok else "NOT verified:")
        for problem in verdict.problems:
            _out(f"  - {problem}")
    if events is None and verdict.claims is not None and verdict.signature:
        raise NetlabError("no class log to compare with",
                          "run this where the log is, or give --log FILE")
    raise click.exceptions.Exit(ExitStatus.OK if verdict.ok else ExitStatus.NO)


def _read_logs(paths: tuple[str, ...]) -> tuple[list[dict[str, object]], int]:
    from netlab.classroom.events import parse_lines

    events: list[dict[str, object]] = []
    bad = 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                found, skipped = parse_lines(f)
        except OSError as exc:
            raise NetlabError(f"cannot read the class log {path}: {exc.strerror or exc}"
                              ) from None
        events.extend(found)
        bad += skipped
    return events, bad
