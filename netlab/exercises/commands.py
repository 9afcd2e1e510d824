"""`netlab check`: run an exercise's check on the student's program or answers.

Only click and the light registry at import time; the checks (sockets, subprocesses) load
when a check runs, psutil when a program's process tree is killed, scapy for a capture.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from netlab.env import Environment
from netlab.errors import ExitStatus, UsageError
from netlab.output import encodable as _encodable
from netlab.params import FiniteRange


@click.command("check", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--list", "show_list", is_flag=True,
              help="List the exercises and which ones you have passed.")
@click.option("--starter", is_flag=True,
              help="Print the exercise's starter file (e.g. `--starter > my_server.py`).")
@click.option("--answers", type=click.Path(path_type=Path),
              help="Your answers file (exercises 8 and 9).")
@click.option("--timeout", type=FiniteRange(min=1), default=20.0, show_default=True,
              help="Seconds one run of your program may take; then its whole process tree "
                   "is stopped.")
@click.option("--step", type=FiniteRange(min=0.5), default=5.0, show_default=True,
              help="Seconds for each wait: to listen, to connect, to answer a line.")
@click.option("--clients", type=click.IntRange(4, 500), default=50, show_default=True,
              help="Clients for exercise 6.")
@click.option("--volume-kb", type=click.IntRange(64), default=8192, hidden=True,
              help="Kilobytes of chat exercise 6 sends while one client stalls.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object on stdout (for graders); narration on stderr.")
@click.option("--server", metavar="HOST:PORT", default=None,
              help="The class server (netlab class serve): prove exercise 1 or 9 across the "
                   "LAN, or hand in `drill ANSWER` (class password: NETLAB_CLASS_PASSWORD).")
@click.option("--nick", envvar="NETLAB_NICK", default=None,
              help="Your nickname on the class server (also NETLAB_NICK).")
def check(name: str | None, command: tuple[str, ...], show_list: bool, starter: bool,
          answers: Path | None, timeout: float, step: float, clients: int, volume_kb: int,
          as_json: bool, server: str | None, nick: str | None) -> None:
    """Check an exercise: NAME is its number or name (`netlab check --list`).

    \b
    Programs go after `--`; {host} and {port} are filled in, and NETLAB_HOST and
    NETLAB_PORT are set:
      netlab check 3 --starter > my_server.py
      netlab check 3 -- python my_server.py {host} {port}
      netlab check 8 --answers answers.txt
    Exit 0 when every criterion passes, 1 when one fails.
    """
    from netlab.exercises import progress
    from netlab.exercises.registry import all_exercises, find_exercise

    if show_list:
        from netlab.exercises.report import list_rows, list_text

        rows = list_rows(all_exercises(), progress.passed_numbers(progress.load()))
        if as_json:
            click.echo(json.dumps({"type": "exercises", "exercises": rows}))
        else:
            click.echo(list_text(rows), nl=False)
        return
    if not name or not name.strip():
        names = ", ".join(f"{ex.number} ({ex.name})" for ex in all_exercises())
        raise UsageError("name an exercise, or use --list", f"the exercises are: {names}")
    if name.strip().lower() == "drill" or server is not None:  # the classroom (issue 9)
        from netlab.classroom.check import lan_exercise, run_drill

        if name.strip().lower() == "drill":
            run_drill(list(command), server, nick, as_json)
        assert server is not None
        _run(lan_exercise(name, list(command), server, nick), list(command), None, timeout,
             step, {}, as_json, server=server)
        return
    exercise = find_exercise(name)
    if starter:
        click.echo(exercise.starter_text(), nl=False)
        return
    if exercise.needs_command and not command:
        raise UsageError(f"exercise {exercise.number} checks your program: give it after --",
                         f"e.g. {exercise.usage}")
    if not exercise.needs_command and answers is None:
        raise UsageError(f"exercise {exercise.number} checks your answers: give --answers FILE",
                         f"netlab check {exercise.number} --starter > answers.txt, fill it in, "
                         f"then {exercise.usage}")
    _run(exercise, list(command), answers, timeout, step,
         {"clients": clients, "volume": volume_kb * 1024}, as_json)


def _run(exercise: object, command: list[str], answers: Path | None, timeout: float,
         step: float, options: dict[str, int], as_json: bool,
         server: str | None = None) -> None:
    from netlab.exercises import progress
    from netlab.exercises.registry import CheckContext, Exercise
    from netlab.exercises.report import CheckResult, to_json, to_text

    assert isinstance(exercise, Exercise)
    env = Environment()
    ctx = CheckContext(command=command, timeout=timeout, step=step, answers=answers,
                       options=dict(options), server=server,
                       narrate=lambda text: click.echo(text, err=True))
    click.echo(f"checking exercise {exercise.number} ({exercise.name}): {exercise.title}",
               err=True)
    started = time.monotonic()
    with ctx.session():
        criteria = exercise.check(ctx)
    result = CheckResult(exercise, criteria, time.monotonic() - started)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        progress.save(progress.record(progress.load(), exercise.number, result.passed, when))
    except OSError as exc:  # progress is a convenience; the verdict still counts
        click.echo(f"netlab: could not save progress: {exc}", err=True)
    if as_json:
        click.echo(json.dumps(to_json(result)))
    else:
        click.echo(_encodable(to_text(result, env.color)), nl=False, color=env.color)
    if not result.passed:
        click.get_current_context().exit(ExitStatus.NO)
