"""`netlab class verify`: does a token's signature hold, and does the class log agree? Pure.

A token handed in by a classmate fails twice over: its nickname is not theirs, and the log
shows they never connected from the address in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.chat.protocol import nick_key
from netlab.classroom.events import Event
from netlab.classroom.policy import normalize_ip
from netlab.classroom.tokens import BadToken, Claims, parse_token, signature_ok


@dataclass
class Verdict:
    token: str
    claims: Claims | None = None
    signature: bool = False
    log_checked: bool = False
    in_log: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature and self.in_log and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"type": "verification", "ok": self.ok,
                "claims": self.claims.to_json() if self.claims else None,
                "signature_ok": self.signature,
                "log": ({"checked": True, "agrees": self.in_log} if self.log_checked
                        else {"checked": False, "agrees": None}),
                "problems": self.problems}


def verify(token: str, secret: bytes, events: list[Event] | None, *,
           nick: str | None = None, address: str | None = None) -> Verdict:
    """events None: no log to compare with. nick/address: who handed the token in."""
    v = Verdict(token.strip())
    try:
        v.claims = parse_token(v.token)
    except BadToken as exc:
        v.problems.append(f"not a netlab token: {exc}")
        return v
    c = v.claims
    v.signature = signature_ok(secret, v.token)
    if not v.signature:
        v.problems.append("the signature does not match: the token was changed, or another "
                          "class server (another secret) issued it")
    if nick is not None and nick_key(nick) != nick_key(c.nick):
        v.problems.append(f"the token was earned by {c.nick}, not {nick}")
    if address is not None and normalize_ip(address) != c.address:
        v.problems.append(f"the token was earned from {c.address}, not {normalize_ip(address)}")
    if events is None:
        v.problems.append("no class log to compare with")
        return v
    v.log_checked = True
    v.in_log = any(ev.get("type") == "proof" and ev.get("token") == v.token for ev in events)
    if not v.in_log:
        v.problems.append("the class log has no record of this token")
    if nick is not None:
        seen = {ev.get("address") for ev in events
                if ev.get("type") == "join" and nick_key(str(ev.get("nick", ""))) == nick_key(nick)}
        if seen and c.address not in seen:
            v.problems.append(f"{nick} joined from {', '.join(sorted(map(str, seen)))}, "
                              f"never from {c.address}")
    return v
