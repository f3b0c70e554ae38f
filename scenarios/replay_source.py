"""A scenario's ``source: {replay: PATH}``: recorded source sessions, read once, as a replay needs them.

    source = load_replay_source(path, field="source.replay")   # ScenarioError naming file and field
    source.scripts        # the source-side recordings, for a ReplayServer
    source.protocol       # imap | pop3, from the recordings
    source.login()        # (user, password) the engine must send for the recorded LOGIN/USER/AUTH
    source.messages()     # each message the source sent whole (FETCH BODY[]/RFC822, POP3 RETR)

PATH is what ``quirkmail replay`` takes (a transcript, a ``--record`` folder, Dovecot rawlogs,
an imapsync log). A ``--record`` folder also holds the destination's sessions: only the source's
are played (label ``source``; an imapsync log's ``host1``; else every IMAP/POP3 session). The
messages are read from the recorded server bytes, so the destination can be judged without a
live source. Pure: nothing here opens a socket.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from scenarios.model import ScenarioError

SOURCE_LABELS = ("source", "host1")  # migrate --record's label; imapsync's source host
PROTOCOLS = ("imap", "pop3")  # what our engine reads from

# A whole message in an IMAP FETCH response: its literal, followed by more items or the ")".
_FETCH_LITERAL = re.compile(rb"(?:BODY\[\]|RFC822) \{(\d+)\}\r\n")
_IMAP_LOGIN = re.compile(rb"^\S+ LOGIN (\"(?:[^\"\\]|\\.)*\"|\S+) (\"[^\"]*\"|\S+)\r\n", re.I)
_POP3_USER = re.compile(rb"^USER (\S+)\r\n", re.I)
_POP3_PASS = re.compile(rb"^PASS (.*)\r\n", re.I)
_PLAIN = re.compile(rb"^AUTH PLAIN (\S+)\r\n", re.I)


@dataclass(frozen=True)
class ReplaySource:
    path: Path
    scripts: list  # simulators.replay.script.Script, source side only
    protocol: str

    def login(self) -> tuple[str, str]:
        """Credentials the engine sends so its login matches the recorded one.

        Redaction kept every secret's length as ``*`` runs, which match any value of that
        length: the password only has to be as long as the recorded one (and quoted alike).
        """
        for script in self.scripts:
            units = [step.unit.data for step in script.steps]
            for unit, after in zip(units, units[1:] + [b""]):
                found = _login_of(unit, after)
                if found:
                    return found
        return "user", "password"  # no login recorded (a pre-authenticated log): anything goes

    def messages(self) -> list[bytes]:
        """Every distinct message the recorded source sent in full, in the order it was sent."""
        seen: dict[bytes, None] = {}
        for script in self.scripts:
            for step in script.steps:
                data = step.reply.data
                found = _pop3_retr(step.unit.verb, data) if self.protocol == "pop3" else _fetch_literals(data)
                seen.update(dict.fromkeys(found))
        return list(seen)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scripts]


def _login_of(unit: bytes, after: bytes) -> tuple[str, str] | None:
    if m := _IMAP_LOGIN.match(unit):
        user, secret = (v.decode("utf-8", "replace") for v in m.groups())
        # imaplib quotes a password of "*" (a list wildcard); an unquoted recorded one was plain
        password = "*" * (len(secret) - 2) if secret.startswith('"') else "x" * len(secret)
        return user.strip('"'), password
    if m := _POP3_USER.match(unit):
        secret = _POP3_PASS.match(after)  # PASS is the next unit
        return m.group(1).decode("utf-8", "replace"), "x" * (len(secret.group(1)) if secret else 8)
    if m := _PLAIN.match(unit):
        # base64 of "\0user\0password": 4 characters per 3 bytes, any padding is masked too
        room = len(m.group(1)) * 3 // 4 - 3  # bytes left for the password after NULs and "u"
        return "u", "x" * max(room, 1)
    return None


def _fetch_literals(data: bytes) -> list[bytes]:
    out = []
    for m in _FETCH_LITERAL.finditer(data):
        start, size = m.end(), int(m.group(1))
        end = start + size
        if data[end:end + 1] in (b")", b" "):  # complete: a BYE mid-literal leaves it cut
            out.append(data[start:end])
    return out


def _pop3_retr(verb: str, data: bytes) -> list[bytes]:
    if verb != "RETR" or not data.startswith(b"+OK") or not data.endswith(b"\r\n.\r\n"):
        return []  # refused, or dropped mid-message
    body = data[data.index(b"\r\n") + 2:-3]
    return [re.sub(rb"(?m)^\.\.", b".", body)]  # undo dot-stuffing (RFC 1939 3)


def load_replay_source(scenario_file: Path, replay: str, field: str = "source.replay") -> ReplaySource:
    """The recordings ``replay`` names (relative to the scenario file), ready to serve."""
    from simulators.replay.script import ReplayError, build
    from transcripts.format import TranscriptError
    from transcripts.rawlog import RawlogError, load

    path = (scenario_file.parent / replay) if not Path(replay).is_absolute() else Path(replay)
    if not path.exists():
        raise ScenarioError(scenario_file, field, f"{replay}: no such transcript, folder or log")
    try:
        sessions = load([path]).sessions
        chosen = _source_sessions(sessions)
        scripts = [build(transcript, name) for name, transcript in chosen]
    except (TranscriptError, RawlogError, ReplayError) as exc:
        raise ScenarioError(scenario_file, field, f"unreadable recording: {exc}") from None
    if not scripts:
        raise ScenarioError(scenario_file, field, f"{replay}: no recorded IMAP or POP3 source session in it")
    protocols = {t.header.protocol.value for _, t in chosen}
    if len(protocols) > 1:
        raise ScenarioError(scenario_file, field, f"{replay}: source sessions of several protocols "
                            f"({', '.join(sorted(protocols))}); one scenario replays one source")
    return ReplaySource(path, scripts, protocols.pop())


def _source_sessions(sessions: list) -> list:
    readable = [(n, t) for n, t in sessions if t.header.protocol.value in PROTOCOLS]
    for label in SOURCE_LABELS:
        labelled = [(n, t) for n, t in readable if t.header.label == label]
        if labelled:
            return labelled
    return [(n, t) for n, t in readable if t.header.label not in ("destination", "host2")]
