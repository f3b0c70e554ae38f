"""A scenario's ``source: {replay: PATH}``: recorded source sessions, read once, as a replay needs them.

    source = load_replay_source(path, field="source.replay")   # ScenarioError naming file and field
    source.scripts        # the source-side recordings, for a ReplayServer
    source.protocol       # imap | pop3, from the recordings
    source.login()        # (user, password) the engine must send for the recorded LOGIN/USER/AUTH
    source.sent()         # each message the source sent whole (FETCH BODY[]/RFC822, POP3 RETR),
                          # with the FLAGS and INTERNALDATE it reported (IMAP; POP3 has neither)
    source.messages()     # their bytes

PATH is what ``quirkmail replay`` takes (a transcript, a ``--record`` folder, Dovecot rawlogs,
an imapsync log). A ``--record`` folder also holds the destination's sessions: only the source's
are played (label ``source``; an imapsync log's ``host1``; else every IMAP/POP3 session). The
messages are read from the recorded server bytes, so the destination can be judged without a
live source. A message fetched again (a retry, a second run) is one message: it is known by its
mailbox and UID (else its sequence number), not by its bytes, so two identical messages stay two.
Pure: nothing here opens a socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from migrator.fetch_parser import fetch_items

from scenarios.model import ScenarioError

SOURCE_LABELS = ("source", "host1")  # migrate --record's label; imapsync's source host
PROTOCOLS = ("imap", "pop3")  # what our engine reads from

_FETCH_START = re.compile(rb"\* (\d+) FETCH \(")
_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n$")
_WHOLE = re.compile(rb"(?:BODY\[\]|RFC822) $")  # the literal that is the whole message
_SELECT = re.compile(rb'^\S+ (?:SELECT|EXAMINE) ("(?:[^"\\]|\\.)*"|\S+)', re.I)
_IMAP_LOGIN = re.compile(rb"^\S+ LOGIN (\"(?:[^\"\\]|\\.)*\"|\S+) (\"[^\"]*\"|\S+)\r\n", re.I)
_POP3_USER = re.compile(rb"^USER (\S+)\r\n", re.I)
_POP3_PASS = re.compile(rb"^PASS (.*)\r\n", re.I)
_PLAIN = re.compile(rb"^AUTH PLAIN (\S+)\r\n", re.I)


@dataclass(frozen=True)
class SentMessage:
    """One message the recorded source sent whole, with what it said about it (None: not said)."""

    raw: bytes
    flags: frozenset[str] | None = None
    internaldate: datetime | None = None  # aware, as the server wrote it
    where: str = ""  # "INBOX UID 3", "RETR 5": names it in a failure


@dataclass
class _Fetched:
    """Attributes of one message the session's FETCH responses reported so far."""

    uid: int | None = None
    flags: frozenset[str] | None = None
    internaldate: datetime | None = None


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

    def sent(self) -> list[SentMessage]:
        """Every message the recorded source sent in full, once, in the order first sent."""
        seen: dict[tuple, SentMessage] = {}
        for script in self.scripts:
            found = _pop3_sent(script) if self.protocol == "pop3" else _imap_sent(script)
            for key, message in found:
                seen.setdefault(key, message)
        return list(seen.values())

    def messages(self) -> list[bytes]:
        """The bytes of each message of ``sent()`` (identical messages appear as often as sent)."""
        return [m.raw for m in self.sent()]

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


def _imap_sent(script) -> Iterator[tuple[tuple, SentMessage]]:
    """(identity, message) for each whole message a session's FETCH responses carry.

    FLAGS and INTERNALDATE are taken from any FETCH of the same message in the selected mailbox
    before or with its body (an engine may list them first, then fetch the bodies).
    """
    mailbox, known = "", {}
    for step in script.steps:
        if m := _SELECT.match(step.unit.data):
            mailbox, known = m.group(1).decode("utf-8", "replace").strip('"'), {}
        for seq, items, body in fetch_responses(step.reply.data):
            fetched = known.setdefault(seq, _Fetched())
            _update(fetched, items)
            if body is None:
                continue
            uid = fetched.uid
            where = f"{mailbox} UID {uid}" if uid is not None else f"{mailbox} message {seq}"
            key = (mailbox, "uid", uid) if uid is not None else (mailbox, "seq", seq)
            yield key, SentMessage(body, fetched.flags, fetched.internaldate, where)


def _update(fetched: _Fetched, text: bytes) -> None:
    items = fetch_items(text)  # the engine's own reader of FETCH items
    if b"FLAGS" in items:
        fetched.flags = frozenset(f.decode("utf-8", "replace") for f in items[b"FLAGS"])
    if b"UID" in items:
        fetched.uid = items[b"UID"]
    if b"INTERNALDATE" in items:
        fetched.internaldate = items[b"INTERNALDATE"]


def fetch_responses(data: bytes) -> Iterator[tuple[int, bytes, bytes | None]]:
    """Each untagged FETCH in a reply: (sequence number, its items outside literals, whole body).

    The body is the BODY[]/RFC822 literal, or None when there is none or it was cut (a BYE
    mid-literal leaves fewer bytes, or text that is no continuation of the response).
    """
    for start in _FETCH_START.finditer(data):
        pos, items, body = start.end(), b"", None
        while (eol := data.find(b"\r\n", pos)) >= 0:
            line = data[pos:eol + 2]
            literal = _LITERAL_AT_END.search(line)
            if literal is None:
                items += line
                break
            head, size = line[:literal.start()], int(literal.group(1))
            end = eol + 2 + size
            if end > len(data) or data[end:end + 1] not in (b")", b" "):
                body = None
                break  # cut: what follows is not this response
            if _WHOLE.search(head):
                body = data[eol + 2:end]
            items, pos = items + head, end
        yield int(start.group(1)), items, body


def _fetch_literals(data: bytes) -> list[bytes]:
    return [body for _, _, body in fetch_responses(data) if body is not None]


def _pop3_sent(script) -> Iterator[tuple[tuple, SentMessage]]:
    for step in script.steps:
        for raw in _pop3_retr(step.unit.verb, step.reply.data):
            number = step.unit.data.split()[1].decode("ascii", "replace")  # RETR n: the maildrop's n
            yield ("pop3", number), SentMessage(raw, where=f"RETR {number}")


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
