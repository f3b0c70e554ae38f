"""The transcript file: one protocol session, as the bytes each side sent and when.

A transcript is JSON Lines so that a run killed mid-session still leaves every line written so
far readable, and so that a support engineer can read it with a pager. Line 1 is the header;
every further line is one event:

    {"quirkmail_transcript": 1, "protocol": "imap", "server": "imap.example.net:993", ...}
    {"t": 0.004, "from": "server", "text": "* OK [CAPABILITY IMAP4rev1 ...] ready\\r\\n"}
    {"t": 0.006, "from": "client", "text": "a1 LOGIN alice ********\\r\\n"}
    {"t": 0.010, "from": "server", "b64": "..."}        # bytes that are not UTF-8
    {"t": 0.011, "mark": "starttls"}                    # what the bytes alone do not say

``t`` is seconds since the session's start. Data goes in ``text`` when it decodes as UTF-8 (a
reader sees the protocol as it was) and in ``b64`` otherwise; either way the bytes round-trip
exactly. Chunks are as the socket gave them: a reader that wants lines or commands joins them.
Redaction keeps a secret's length (``*`` for each byte) so literal counts such as ``{8}`` stay
true; the header counts what was redacted.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

FORMAT_VERSION = 1
SUFFIX = ".jsonl"


class TranscriptError(ValueError):
    """A transcript file that cannot be read: names the file, the line and the cause."""

    def __init__(self, source: str, line: int, cause: str) -> None:
        super().__init__(f"{source}, line {line}: {cause}")
        self.source, self.line, self.cause = source, line, cause


class Sender(str, enum.Enum):
    CLIENT = "client"
    SERVER = "server"


class Protocol(str, enum.Enum):
    IMAP = "imap"
    POP3 = "pop3"
    SMTP = "smtp"
    LMTP = "lmtp"
    HTTP = "http"  # EWS, CardDAV, CalDAV: request and response bytes as sent


@dataclass(frozen=True)
class Chunk:
    """Bytes one side sent, ``at`` seconds after the session started."""

    at: float
    sender: Sender
    data: bytes


@dataclass(frozen=True)
class Mark:
    """Something the bytes do not show: ``starttls`` (TLS from here on), ``close`` (by ``detail``)."""

    at: float
    kind: str
    detail: str = ""


Event = Chunk | Mark


@dataclass
class Header:
    protocol: Protocol
    server: str  # host:port as the client dialled it
    started: datetime  # aware, UTC
    tls: str = "none"  # none | implicit | starttls
    recorded_by: str = "quirkmail"  # quirkmail | imapsync-log | dovecot-rawlog | ...
    label: str = ""  # what the session was for: "source", "destination", a scenario's name
    redacted: int = 0  # how many secrets were masked
    anonymised: bool = False
    extra: dict = field(default_factory=dict)  # fields a newer writer added; kept on rewrite

    def to_json(self) -> dict:
        return {
            "quirkmail_transcript": FORMAT_VERSION,
            "protocol": self.protocol.value,
            "server": self.server,
            "started": self.started.astimezone(timezone.utc).isoformat(),
            "tls": self.tls,
            "recorded_by": self.recorded_by,
            "label": self.label,
            "redacted": self.redacted,
            "anonymised": self.anonymised,
            **self.extra,
        }


_HEADER_KEYS = {"quirkmail_transcript", "protocol", "server", "started", "tls", "recorded_by",
                "label", "redacted", "anonymised"}


@dataclass
class Transcript:
    header: Header
    events: list[Event] = field(default_factory=list)

    def chunks(self, sender: Sender | None = None) -> Iterator[Chunk]:
        for event in self.events:
            if isinstance(event, Chunk) and (sender is None or event.sender is sender):
                yield event

    def sent_by(self, sender: Sender) -> bytes:
        """Everything one side sent, joined: the stream as the other side read it."""
        return b"".join(chunk.data for chunk in self.chunks(sender))


# writing ---------------------------------------------------------------------------------------


def event_to_json(event: Event) -> dict:
    if isinstance(event, Mark):
        out: dict = {"t": round(event.at, 6), "mark": event.kind}
        if event.detail:
            out["detail"] = event.detail
        return out
    out = {"t": round(event.at, 6), "from": event.sender.value}
    try:
        out["text"] = event.data.decode("utf-8")
    except UnicodeDecodeError:
        out["b64"] = base64.b64encode(event.data).decode("ascii")
    return out


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def dump(transcript: Transcript, fp: IO[str]) -> None:
    fp.write(_line(transcript.header.to_json()))
    for event in transcript.events:
        fp.write(_line(event_to_json(event)))


def write(transcript: Transcript, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fp:
        dump(transcript, fp)
    return path


class TranscriptWriter:
    """Appends events as they happen, one flushed line each, so a killed run keeps its transcript."""

    def __init__(self, path: str | Path, header: Header, *, header_room: int = 0) -> None:
        """``header_room``: spaces reserved after the header line's JSON, so ``rewrite_header``
        can update it in place later (a recorder's redaction count, TLS learnt mid-session)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fp = self.path.open("w", encoding="utf-8", newline="\n")
        first = _line(header.to_json())
        self._header_size = len(first.encode("utf-8")) + header_room
        self._fp.write(first[:-1] + " " * header_room + "\n")
        self._fp.flush()

    def rewrite_header(self, header: Header) -> bool:
        """Replace the header line in place (JSON allows the trailing blanks); False when the new
        one does not fit in the room reserved, or the file is closed."""
        first = _line(header.to_json())
        size = len(first.encode("utf-8"))
        if self._fp.closed or size > self._header_size:
            return False
        self._fp.seek(0)
        self._fp.write(first[:-1] + " " * (self._header_size - size) + "\n")
        self._fp.seek(0, 2)
        self._fp.flush()
        return True

    def add(self, event: Event) -> None:
        if self._fp.closed:
            return  # a late callback after close: the session is over
        self._fp.write(_line(event_to_json(event)))
        self._fp.flush()

    def close(self) -> None:
        if not self._fp.closed:
            self._fp.close()

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# reading ---------------------------------------------------------------------------------------


def _parse_header(obj: dict, source: str) -> Header:
    version = obj.get("quirkmail_transcript")
    if version != FORMAT_VERSION:
        raise TranscriptError(source, 1, f"not a quirkmail transcript of version {FORMAT_VERSION} "
                                         f"(quirkmail_transcript = {version!r})")
    try:
        protocol = Protocol(obj.get("protocol"))
    except ValueError:
        raise TranscriptError(source, 1, f"unknown protocol {obj.get('protocol')!r}; "
                                         f"expected one of {[p.value for p in Protocol]}") from None
    try:
        started = datetime.fromisoformat(str(obj.get("started")))
    except ValueError:
        raise TranscriptError(source, 1, f"'started' is not an ISO 8601 instant: {obj.get('started')!r}") from None
    if started.tzinfo is None:
        raise TranscriptError(source, 1, "'started' has no time zone")
    return Header(
        protocol=protocol,
        server=str(obj.get("server", "")),
        started=started,
        tls=str(obj.get("tls", "none")),
        recorded_by=str(obj.get("recorded_by", "quirkmail")),
        label=str(obj.get("label", "")),
        redacted=int(obj.get("redacted", 0)),
        anonymised=bool(obj.get("anonymised", False)),
        extra={k: v for k, v in obj.items() if k not in _HEADER_KEYS},
    )


def _parse_event(obj: dict, source: str, number: int) -> Event:
    at = obj.get("t")
    if not isinstance(at, (int, float)) or at < 0:
        raise TranscriptError(source, number, f"'t' must be seconds since the start, got {at!r}")
    if "mark" in obj:
        return Mark(float(at), str(obj["mark"]), str(obj.get("detail", "")))
    try:
        sender = Sender(obj.get("from"))
    except ValueError:
        raise TranscriptError(source, number, f"'from' must be 'client' or 'server', got {obj.get('from')!r}") from None
    if "text" in obj and isinstance(obj["text"], str):
        return Chunk(float(at), sender, obj["text"].encode("utf-8"))
    if "b64" in obj and isinstance(obj["b64"], str):
        try:
            return Chunk(float(at), sender, base64.b64decode(obj["b64"], validate=True))
        except binascii.Error as exc:
            raise TranscriptError(source, number, f"'b64' is not base64: {exc}") from None
    raise TranscriptError(source, number, "an event needs 'text', 'b64' or 'mark'")


def parse_lines(lines: Iterable[str], source: str = "<transcript>") -> Transcript:
    header: Header | None = None
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TranscriptError(source, number, f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise TranscriptError(source, number, "each line must be a JSON object")
        if header is None:
            header = _parse_header(obj, source)
        else:
            events.append(_parse_event(obj, source, number))
    if header is None:
        raise TranscriptError(source, 1, "empty file: no header line")
    return Transcript(header, events)


def read(path: str | Path) -> Transcript:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptError(str(path), 1, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_lines(text.splitlines(), str(path))


def looks_like_transcript(path: str | Path) -> bool:
    """True when the file's first line is a quirkmail transcript header (for input sniffing)."""
    try:
        with Path(path).open("rb") as fp:
            first = fp.readline(4096)
    except OSError:
        return False
    return first.lstrip().startswith(b"{") and b'"quirkmail_transcript"' in first
