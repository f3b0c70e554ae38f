"""imapsync ``--debugimap`` logs into transcripts: the host1 and host2 sessions split apart.

imapsync logs Mail::IMAPClient's debug lines between its own. The lines read here:

    Sending: 2 LOGIN "test1" "secret1"        a line the client sent (CRLF added back)
    Sending literal: 5 APPEND INBOX {310}\\tthen: <first line of the literal>
    Read: * OK [CAPABILITY IMAP4rev1 ...] ready   a server line; each line after it that starts
      2 OK Logged in                               with blanks is one more line of the same read
                                                    (CRLF in the data became a newline and two
                                                    blanks; leading blanks of the data are lost)
    Sent 26 bytes / Connecting to ... / Connected to ...   bookkeeping (a new connection)

Everything else is imapsync's own output; of it only ``Host1:``/``Host2:`` matter: which side
imapsync is working on. ``Connected to`` opens a connection of the side named last. Each
Mail::IMAPClient connection numbers its commands 1, 2, 3 …: a ``Sending: N`` continues the
connection whose last tag was N − 1; when both sides could, the last ``Host1:``/``Host2:`` decides.
Reads belong to the connection that sent last. The log has no times: events are in log order,
all at t = 0 (``--pace recorded`` has nothing to reproduce). Labels are ``host1`` and ``host2``,
so a replay serves each on its own port. LOGIN passwords (imapsync shows them unless told not
to; Mail::IMAPClient may print X's) are masked, keeping their length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from transcripts import format as fmt
from transcripts.rawlog import Imported, RawlogError
from transcripts.redact import redact_transcript

_SENDING = re.compile(r"^Sending(?: literal)?: (.*)$")
_READ = re.compile(r"^Read: \t?(.*)$")
_HOST = re.compile(r"^(Host[12])\b", re.IGNORECASE)
_TAG = re.compile(r"^(\d+) ")
_CONTINUED = re.compile(r"^(?:  |\t)\s*(.*)$")
_BOOKKEEPING = re.compile(r"^(Sent \d+ bytes|Connecting to |Connected to )")


@dataclass
class _Connection:
    side: str  # host1 | host2
    number: int
    last_tag: int = 0
    events: list[fmt.Event] = field(default_factory=list)


def looks_like_log(path: Path) -> bool:
    """True when the file holds Mail::IMAPClient debug lines (a quick look at its start)."""
    try:
        with path.open("rb") as fp:
            head = fp.read(256 * 1024)
    except OSError:
        return False
    return b"\nSending: " in head and b"\nRead: " in head


def import_log(path: Path) -> Imported:
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise RawlogError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    connections: list[_Connection] = []
    side, current, last_kind = "host1", None, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if (host := _HOST.match(line)) is not None:
            side, last_kind = host.group(1).lower(), ""
            continue
        if (read := _READ.match(line)) is not None:
            if current is None:  # a log that starts after "Connected to"
                current = _Connection(side, len(connections) + 1)
                connections.append(current)
            current.events.append(_chunk(fmt.Sender.SERVER, read.group(1)))
            last_kind = "read"
            continue
        if (sending := _SENDING.match(line)) is not None:
            data = sending.group(1).replace("\tthen: ", "\r\n", 1)
            current = _sender(connections, data, side, path, number)
            current.events.append(_chunk(fmt.Sender.CLIENT, data))
            last_kind = "send"
            continue
        if (more := _CONTINUED.match(line)) is not None and last_kind and current is not None:
            sender = fmt.Sender.SERVER if last_kind == "read" else fmt.Sender.CLIENT
            current.events.append(_chunk(sender, more.group(1)))
            continue
        if line.startswith("Connected to "):  # the greeting that follows opens a connection
            current = _Connection(side, len(connections) + 1)
            connections.append(current)
        last_kind = "" if not _BOOKKEEPING.match(line) else last_kind
    out = Imported()
    for conn in connections:
        name = f"{path.name}#{conn.number}-{conn.side}"
        out.sessions.append((name, _transcript(conn, path)))
    if not connections:
        out.notes.append(f"{path.name}: no IMAP sessions found")
    return out


def _sender(connections: list[_Connection], data: str, side: str, path: Path, number: int) -> _Connection:
    tag = _TAG.match(data)
    if tag is None:
        candidates = [c for c in connections if c.side == side] or connections
        if not candidates:
            raise RawlogError(str(path), number, "a command before any connection")
        return candidates[-1]
    n = int(tag.group(1))
    fits = [c for c in connections if c.last_tag == n - 1]
    if not fits:
        raise RawlogError(str(path), number, f"tag {n} continues no connection (last tags: "
                                             f"{[c.last_tag for c in connections]})")
    chosen = next((c for c in reversed(fits) if c.side == side), fits[-1])
    chosen.last_tag = n
    return chosen


def _chunk(sender: fmt.Sender, text: str) -> fmt.Chunk:
    return fmt.Chunk(0.0, sender, text.encode("utf-8", "surrogateescape") + b"\r\n")


def _transcript(conn: _Connection, path: Path) -> fmt.Transcript:
    started = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    header = fmt.Header(fmt.Protocol.IMAP, server="", started=started, recorded_by="imapsync-log",
                        label=conn.side, extra={"source_files": [str(path)]})
    return redact_transcript(fmt.Transcript(header, conn.events))
