"""The class server's pure parts: tokens, access policy, the class room's protocol steps,
drill grading, the log's events, the report and verification. No sockets."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from netlab.chat.room import Close, Joined, Send
from netlab.classroom import drills
from netlab.classroom.eventlog import EventLog
from netlab.classroom.events import encode, event, parse_lines
from netlab.classroom.policy import Policy, host_of, normalize_ip
from netlab.classroom.report import aggregate, to_csv, to_text
from netlab.classroom.room import (
    ClassRoom,
    DrillSubmit,
    PasswordRefused,
    ProofRequest,
    Said,
)
from netlab.classroom.roster import RosterState
from netlab.classroom.secret import load_secret
from netlab.classroom.tokens import BadToken, Claims, make_token, parse_token, signature_ok
from netlab.classroom.verify import verify
from netlab.errors import NetlabError, UsageError

SECRET = b"k" * 32


# ------------------------------------------------------------------------------ tokens
def test_a_token_carries_its_claims_and_a_signature() -> None:
    claims = Claims("Zoë", "9", "192.168.1.23", 1_700_000_000)
    token = make_token(SECRET, claims)
    _, _, signature = token.partition(".")
    assert "=" not in token and "+" not in token and "/" not in token  # base64url, unpadded
    assert parse_token(token) == claims
    assert signature_ok(SECRET, token)
    assert not signature_ok(b"another secret" * 3, token)
    assert len(signature) == 43  # 32 bytes of HMAC-SHA256


def test_changing_any_claim_breaks_the_signature() -> None:
    token = make_token(SECRET, Claims("alice", "9", "10.0.0.2", 1_700_000_000))
    forged = make_token(b"guess" * 8, Claims("bob", "9", "10.0.0.3", 1_700_000_000))
    spliced = forged.split(".")[0] + "." + token.split(".")[1]
    assert parse_token(spliced).nick == "bob"
    assert not signature_ok(SECRET, spliced)


@pytest.mark.parametrize("text", ["", "abc", "a.b.c", "!!!.abc", "YWJj.abc", ".abc", "abc."])
def test_malformed_tokens_are_refused(text: str) -> None:
    with pytest.raises(BadToken):
        parse_token(text)


def test_a_field_with_the_separator_is_refused() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, Claims("a|b", "9", "10.0.0.2", 1))


# ------------------------------------------------------------------------------ policy
def test_deny_comes_first_then_allow() -> None:
    policy = Policy.parse(allow=["192.168.1.0/24"], deny=["192.168.1.66"])
    assert policy.refusal("192.168.1.23") is None
    assert policy.refusal("192.168.1.66") == (
        "not allowed from 192.168.1.66 (this class denies 192.168.1.66/32)")
    assert policy.refusal("10.0.0.1") == (
        "not allowed from 10.0.0.1 (this class admits only 192.168.1.0/24)")


def test_ipv4_clients_of_a_dual_stack_server_are_seen_as_ipv4() -> None:
    policy = Policy.parse(deny=["10.0.0.0/8"])
    assert normalize_ip("::ffff:10.1.2.3") == "10.1.2.3"
    assert policy.refusal("::ffff:10.1.2.3") is not None
    assert policy.refusal("fd00::5") is None  # other family: no rule applies
    assert host_of("[::ffff:10.1.2.3]:5555") == "10.1.2.3"
    assert host_of("127.0.0.1:80") == "127.0.0.1"
    assert host_of("[fe80::1%eth0]:80") == "fe80::1"


def test_no_rules_admit_everyone_and_host_bits_are_forgiven() -> None:
    assert Policy().refusal("203.0.113.9") is None
    assert str(Policy.parse(allow=["192.168.1.23/24"]).allow[0]) == "192.168.1.0/24"
    with pytest.raises(UsageError):
        Policy.parse(allow=["192.168.1.0/33"])


# ------------------------------------------------------------------------------ the room
def _join(room: ClassRoom, who: str, nick: str, password: str | None = None) -> list[object]:
    room.connect(who)
    actions = room.receive(who, nick.encode())
    if password is not None:
        assert actions == [Send(who, b"PASS\r\n")]
        actions = room.receive(who, password.encode())
    return actions


def test_pass_is_asked_after_a_valid_nickname_and_the_right_one_joins() -> None:
    room = ClassRoom(password="s3cret")
    room.connect("a")
    bad = room.receive("a", b"no way!")
    assert bad[-1] == Send("a", b"NICK\r\n")  # an invalid nickname is refused before PASS
    actions = _join(room, "a", "alice", "s3cret")
    assert isinstance(actions[0], Joined) and room.nick("a") == "alice"


def test_a_wrong_password_gets_a_line_and_a_close() -> None:
    room = ClassRoom(password="s3cret")
    actions = _join(room, "a", "alice", "guess")
    assert actions == [Send("a", b"! wrong password\r\n"), PasswordRefused("a", "alice"),
                       Close("a", "wrong password")]
    assert room.nick("a") is None and room.receive("a", b"more") == []


def test_proofs_and_drill_answers_become_requests_for_the_server() -> None:
    room = ClassRoom()
    _join(room, "a", "alice")
    assert room.receive("a", b"/prove 9") == [ProofRequest("a", "alice", "9", None)]
    assert room.receive("a", b"/prove 1 8080") == [ProofRequest("a", "alice", "1", 8080)]
    for bad in (b"/prove 1", b"/prove 1 99999", b"/prove 3", b"/drill", b"/nick bob"):
        (reply,) = room.receive("a", bad)
        assert isinstance(reply, Send) and reply.data.startswith(b"! "), bad
    assert room.receive("a", b"/drill  Wrong Port ") == [DrillSubmit("a", "alice", "Wrong Port")]
    assert b"/prove 9" in room.receive("a", b"/help")[0].data  # type: ignore[union-attr]


def test_chat_lines_are_counted_and_commands_are_not() -> None:
    room = ClassRoom()
    _join(room, "a", "alice")
    assert room.receive("a", b"hello")[-1] == Said("a", "alice")
    assert room.receive("a", b"/me waves")[-1] == Said("a", "alice")
    assert not any(isinstance(x, Said) for x in room.receive("a", b"/who"))
    assert not any(isinstance(x, Said) for x in room.receive("a", b""))


# ------------------------------------------------------------------------------ drills
def test_every_fault_is_named_by_its_name_and_aliases_only() -> None:
    assert set(drills.FAULTS) == {"loopback-only", "wrong-port", "backlog-full",
                                  "silent-handshake", "reset-after-join", "slow-broadcast"}
    for name, fault in drills.FAULTS.items():
        assert drills.grade(name, name.upper().replace("-", " ")).correct
        for alias in fault.aliases:
            assert drills.identify(alias) == name
    assert drills.grade("wrong-port", "loopback").named == "loopback-only"
    assert not drills.grade("wrong-port", "loopback").correct
    assert drills.grade("backlog-full", "the firewall").named is None


# ------------------------------------------------------------------------------ log and report
def _class_log() -> list[dict[str, object]]:
    token = make_token(SECRET, Claims("alice", "9", "10.0.0.2", 1_700_000_000))
    events = [
        event("start", host="::", port=55555),
        event("join", nick="alice", address="10.0.0.2", port=40000),
        event("message", nick="alice", address="10.0.0.2"),
        event("message", nick="alice", address="10.0.0.2"),
        event("proof", nick="alice", address="10.0.0.2", exercise="9", token=token,
              time=1_700_000_000),
        event("join", nick="bob", address="10.0.0.3", port=40001),
        event("drill_answer", nick="bob", address="10.0.0.3", round=1, fault="wrong-port",
              answer="port", named="wrong-port", correct=True, counted=True),
        event("drill_answer", nick="BOB", address="10.0.0.3", round=1, fault="wrong-port",
              answer="x", named=None, correct=False, counted=False),
        event("leave", nick="alice", address="10.0.0.2", reason="quit", messages=2, seconds=3),
        event("join", nick="Alice", address="10.0.0.9", port=40002),
    ]
    return [parse_lines([encode(ev)])[0][0] for ev in events]


def test_the_report_has_one_row_per_student() -> None:
    alice, bob = aggregate(_class_log())
    assert (alice.nick, alice.sessions, alice.messages, alice.exercises) == (
        "Alice", 2, 2, ["9"])
    assert alice.addresses == ["10.0.0.2", "10.0.0.9"]
    assert (bob.drills_answered, bob.drills_correct) == (1, 1)
    csv_text = to_csv([alice, bob])
    assert csv_text.splitlines()[0] == (
        "nick,addresses,sessions,first_seen,last_seen,messages,exercises,drills_answered,"
        "drills_correct")
    assert csv_text.splitlines()[1].startswith("Alice,10.0.0.2 10.0.0.9,2,")
    assert to_text([alice, bob]).splitlines()[0].split() == [
        "nick", "addresses", "sessions", "first_seen", "last_seen", "messages", "exercises",
        "drills_answered", "drills_correct"]


def test_a_torn_last_line_is_counted_not_fatal() -> None:
    lines = [encode(event("join", nick="a", address="1.2.3.4", port=1)), b'{"type": "jo']
    events, bad = parse_lines(lines)
    assert len(events) == 1 and bad == 1
    assert parse_lines([b'{"type": "nonsense"}', b"[1]", b"  "]) == ([], 2)


def test_the_log_writer_runs_callbacks_only_once_the_line_is_on_disk(tmp_path: Path) -> None:
    seen: list[str] = []
    log = EventLog(tmp_path / "sub" / "c.jsonl", sinks=[lambda ev: seen.append(ev["type"])])
    done = threading.Event()
    on_disk: list[bool] = []

    def then() -> None:
        on_disk.append(b'"proof"' in (tmp_path / "sub" / "c.jsonl").read_bytes())
        done.set()

    log.emit(event("join", nick="a", address="1.2.3.4", port=1))
    log.emit(event("proof", nick="a", address="1.2.3.4", exercise="9", token="t", time=1),
             then=then)
    assert done.wait(10)
    log.close()
    assert on_disk == [True] and seen == ["join", "proof"]
    events, bad = parse_lines((tmp_path / "sub" / "c.jsonl").read_bytes().splitlines())
    assert [e["type"] for e in events] == ["join", "proof"] and bad == 0


def test_an_unwritable_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NetlabError, match="cannot write the class log"):
        EventLog(tmp_path)  # a directory


def test_the_roster_follows_the_log() -> None:
    roster = RosterState()
    lines = [roster.apply(ev) for ev in _class_log()]
    assert "+ alice joined from 10.0.0.2" in lines
    assert "* alice proved exercise 9 from 10.0.0.2" in lines
    assert "- alice left (quit) after 2 messages" in lines
    assert "? BOB answered round 1: wrong (again; not counted)" in lines
    # bob never left; Alice came back from another address and keeps her exercise
    assert [(r.nick, r.address) for r in roster.online.values()] == [
        ("bob", "10.0.0.3"), ("Alice", "10.0.0.9")]
    assert roster.online["alice"].exercises == ["9"]
    assert roster.online["bob"].messages == 0


# ------------------------------------------------------------------------------ verify
def test_verify_agrees_with_signature_and_log() -> None:
    log = _class_log()
    token = str(log[4]["token"])
    assert verify(token, SECRET, log).ok
    assert verify(token, SECRET, log, nick="alice", address="::ffff:10.0.0.2").ok


def test_a_classmates_token_fails_on_nick_and_address() -> None:
    log = _class_log()
    token = str(log[4]["token"])
    v = verify(token, SECRET, log, nick="bob", address="10.0.0.3")
    assert not v.ok and v.signature and v.in_log
    assert "earned by alice, not bob" in " ".join(v.problems)
    assert "bob joined from 10.0.0.3, never from 10.0.0.2" in v.problems


def test_a_token_the_log_does_not_know_or_a_forged_one_fails() -> None:
    other = make_token(SECRET, Claims("carol", "1", "10.0.0.4", 1_700_000_100))
    v = verify(other, SECRET, _class_log())
    assert v.signature and not v.in_log and not v.ok
    forged = verify(make_token(b"x" * 32, Claims("carol", "1", "10.0.0.4", 1)), SECRET, [])
    assert not forged.signature and not forged.ok
    assert verify("garbage", SECRET, []).to_json()["claims"] is None
    assert verify(other, SECRET, None).to_json()["log"] == {"checked": False, "agrees": None}


# ------------------------------------------------------------------------------ secret
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_secret_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "config" / "class-secret"
    with pytest.raises(NetlabError, match="no class secret"):
        load_secret(path, create=False)
    first = load_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == first and len(first) == 32
    path.write_text("not hex")
    with pytest.raises(NetlabError, match="damaged"):
        load_secret(path)
