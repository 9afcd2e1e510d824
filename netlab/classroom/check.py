"""`netlab check 1|9 --server HOST:PORT` and `netlab check drill ANSWER --server HOST:PORT`:
the classroom side of `netlab check`, proven to (or graded by) the instructor's class server.

Exercises 1 and 9 become Exercise objects of the check registry whose checks use
`ctx.server`, so `netlab check` runs, renders and records them like any other check.
"""

from __future__ import annotations

import json
import os

import click

from netlab.classroom.student import Outcome, prove, submit_drill
from netlab.errors import ExitStatus, NetlabError, UsageError
from netlab.exercises.registry import CheckContext, Criterion, Exercise, find_exercise, judge

PASSWORD_ENV = "NETLAB_CLASS_PASSWORD"
WHY_TOKEN = ("the class server witnessed the network action itself and signed what it saw "
             "(your nickname and address), so the token proves it was you, across the LAN")


def _nick(nick: str | None) -> str:
    if not nick:
        raise UsageError("the class server needs your nickname: give --nick NAME",
                         "the same nickname you use in class (it is written into the token)")
    from netlab.chat.protocol import check_nick

    checked, problem = check_nick(nick)  # as `netlab chat --nick` does, before connecting
    if checked is None:
        raise UsageError(f"--nick: {problem}")
    return checked


def _token_criterion(name: str, outcome: Outcome) -> Criterion:
    good = f"the class server gave you the token {outcome.token} (it is in the class log)"
    return judge(name, outcome.ok, good, outcome.message, WHY_TOKEN)


def lan_exercise(name: str, command: list[str], server: str, nick: str | None) -> Exercise:
    """Exercise 1 or 9, checked through the class server at `server`."""
    base = find_exercise(name)
    who = _nick(nick)
    password = os.environ.get(PASSWORD_ENV)
    if base.number == 9:
        def check(ctx: CheckContext) -> list[Criterion]:
            assert ctx.server is not None
            ctx.narrate(f"connecting to the class server at {ctx.server} as {who}")
            outcome = prove("9", ctx.server, who, password=password, timeout=ctx.step * 3)
            return [_token_criterion("reached the class server from this machine", outcome)]

        usage = "netlab check 9 --server HOST:PORT --nick NAME"
    elif base.number == 1:
        if not command:
            raise UsageError("exercise 1 over the LAN starts your server: give it after --",
                             "netlab check 1 --server HOST:PORT --nick NAME -- "
                             "python my_server.py {host} {port}")

        def check(ctx: CheckContext) -> list[Criterion]:
            from netlab.exercises.common import listening_criterion
            from netlab.exercises.peer import free_port

            assert ctx.server is not None
            port = free_port()
            prog = ctx.start("0.0.0.0", port)  # for classmates: every interface
            listening = listening_criterion(prog, "127.0.0.1", port, ctx.step,
                                            name="listens on 0.0.0.0:{port}")
            if not listening.passed:
                return [listening]
            ctx.narrate(f"asking the class server at {ctx.server} to connect to port {port}")
            outcome = prove("1", ctx.server, who, port=port, password=password,
                            timeout=ctx.step * 3)
            return [listening, _token_criterion("a classmate (the class server) reached "
                                                "your server", outcome)]

        usage = "netlab check 1 --server HOST:PORT --nick NAME -- python my_server.py {host} {port}"
    else:
        raise UsageError(f"--server proves exercises 1 and 9 (across the LAN); exercise "
                         f"{base.number} is checked on this machine", f"netlab check {base.number}")
    return Exercise(base.number, base.name, base.lesson, base.title + " (class server)",
                    base.kind, base.starter, usage, check)


def run_drill(args: list[str], server: str | None, nick: str | None, as_json: bool) -> None:
    """`netlab check drill ANSWER --server HOST:PORT --nick NAME`: exit 0 right, 1 wrong."""
    if server is None:
        raise UsageError("a drill answer goes to the class server: give --server HOST:PORT",
                         "the instructor's screen shows the address")
    from netlab.classroom.drills import answer_menu, identify

    answer = " ".join(args).strip()
    if not answer:
        raise UsageError("give your diagnosis: netlab check drill ANSWER --server HOST:PORT",
                         f"the answers: {answer_menu()}")
    if identify(answer) is None:  # a typo must not spend the round's one answer
        raise UsageError(f"{answer!r} is none of the drill's answers",
                         f"the answers: {answer_menu()}")
    outcome = submit_drill(answer, server, _nick(nick), password=os.environ.get(PASSWORD_ENV))
    if not outcome.ok:
        raise NetlabError(f"the class server did not take the answer: {outcome.message}")
    if as_json:
        click.echo(json.dumps({"type": "drill", "answer": answer, **outcome.to_json()}))
    else:
        click.echo(f"{outcome.message.removeprefix('*** ')}: {answer}")
    raise click.exceptions.Exit(ExitStatus.OK if outcome.correct else ExitStatus.NO)
