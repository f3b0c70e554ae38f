"""Customer logs into transcripts: Dovecot rawlogs (and, via ``transcripts.imapsync``, imapsync logs).

Dovecot (2.2.26+ ``rawlog_dir``, 2.3's pre-login ``imap-login -R DIR``, the legacy ``rawlog``
post-login script) writes one pair of files per connection, ``<time>.<pid>.<n>.in`` (what the
client sent) and ``.out`` (what the server sent). With timestamps (``rawlog_dir`` and ``-R``
always; the ``rawlog`` script with ``-t``) every line starts with ``<seconds>.<microseconds> ``;
the two files are merged by those times (a tie: the client's line first, the server answers).
Without them the order between the files is lost: the transcript then holds the server's lines,
then the client's, and says ``"interleaved": false`` in its header; the replay pairs them by the
protocol alone.

A login rawlog (``-R``) ends with the LOGIN command; the post-login rawlog of the same connection
(another process) starts with its reply. ``load`` joins such halves into one session: the
pre-login half whose last command's tag the post-login half answers (IMAP), else the latest
pre-login half before it. Connections where the client sent nothing (port probes) are left out
and noted. Secrets are masked as a recording masks them (``transcripts.redact``), keeping lengths;
in an untimed log a SASL exchange cannot see the server's replies between the client's lines.

    imported = load([Path("rawlogs/"), Path("login-rawlogs/")])
    for name, transcript in imported.sessions: ...
    imported.notes          # what was joined, left out or guessed
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from transcripts import format as fmt
from transcripts.redact import redact_transcript

_STAMP = re.compile(rb"^(\d{9,11})\.(\d{6}) ")


class RawlogError(ValueError):
    """A log that cannot be imported: names the file, the line and the cause."""

    def __init__(self, source: str, line: int, cause: str) -> None:
        super().__init__(f"{source}, line {line}: {cause}" if line else f"{source}: {cause}")
        self.source, self.line, self.cause = source, line, cause


@dataclass
class Imported:
    sessions: list[tuple[str, fmt.Transcript]] = field(default_factory=list)  # (name, transcript), in order
    notes: list[str] = field(default_factory=list)


@dataclass
class _Half:
    """One rawlog pair: its lines as (time or None, sender, bytes), in order."""

    name: str
    files: list[str]
    lines: list[tuple[float | None, fmt.Sender, bytes]]

    @property
    def timed(self) -> bool:
        return bool(self.lines) and self.lines[0][0] is not None

    def first(self, sender: fmt.Sender) -> bytes:
        return next((data for _, s, data in self.lines if s is sender), b"")

    @property
    def greets(self) -> bool:
        """Starts with the server's greeting (a login rawlog, or a whole session)."""
        head = self.first(fmt.Sender.SERVER)
        return bool(self.lines) and self.lines[0][1] is fmt.Sender.SERVER and (
            head.startswith((b"* OK", b"* PREAUTH", b"* BYE", b"+OK", b"-ERR")) or head[:3].isdigit())


def read_lines(path: Path) -> list[tuple[float | None, bytes]]:
    """A rawlog file's lines with their time (None when the file has no timestamps)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RawlogError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    lines = data.splitlines(keepends=True)
    if not lines or not _STAMP.match(lines[0]):
        return [(None, line) for line in lines]
    out = []
    for number, line in enumerate(lines, start=1):
        stamp = _STAMP.match(line)
        if stamp is None:
            raise RawlogError(str(path), number, "no '<seconds>.<microseconds> ' timestamp although the "
                                                 "file's first line has one (a truncated or edited rawlog?)")
        out.append((int(stamp.group(1)) + int(stamp.group(2)) / 1e6, line[stamp.end():]))
    return out


def read_pair(in_path: Path, out_path: Path) -> _Half:
    client, server = read_lines(in_path), read_lines(out_path)
    if client and server and (client[0][0] is None) != (server[0][0] is None):
        raise RawlogError(str(in_path), 0, f"one of the pair has timestamps and {out_path.name} "
                                           "does not: both must come from the same rawlog")
    merged = [(t, 0, i, fmt.Sender.CLIENT, d) for i, (t, d) in enumerate(client)]
    merged += [(t, 1, i, fmt.Sender.SERVER, d) for i, (t, d) in enumerate(server)]
    if client[:1] and client[0][0] is None or server[:1] and server[0][0] is None:
        merged.sort(key=lambda r: (-r[1], r[2]))  # untimed: the server's lines, then the client's
    else:
        merged.sort(key=lambda r: (r[0], r[1], r[2]))
    name = in_path.name[: -len(".in")]
    return _Half(name, [str(in_path), str(out_path)], [(t, s, d) for t, _, _, s, d in merged])


def _pairs(paths: list[Path]) -> list[_Half]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.in")) if path.is_dir() else [path]
    halves, seen = [], set()
    for f in files:
        stem = str(f)[: -len(f.suffix)]  # "20261122-193807.27436.1": the name holds dots
        if stem in seen:
            continue
        seen.add(stem)
        in_path, out_path = Path(stem + ".in"), Path(stem + ".out")
        if not in_path.exists() or not out_path.exists():
            missing = in_path if not in_path.exists() else out_path
            raise RawlogError(str(f), 0, f"a Dovecot rawlog comes in pairs: {missing.name} is missing")
        halves.append(read_pair(in_path, out_path))
    return halves


def _protocol(lines: list[tuple[float | None, fmt.Sender, bytes]], name: str) -> fmt.Protocol:
    server = next((d for _, s, d in lines if s is fmt.Sender.SERVER), b"")
    client = next((d for _, s, d in lines if s is fmt.Sender.CLIENT), b"")
    if server.startswith((b"+OK", b"-ERR")):
        return fmt.Protocol.POP3
    if server[:3].isdigit():
        return fmt.Protocol.LMTP if client.upper().startswith(b"LHLO") else fmt.Protocol.SMTP
    if server.startswith(b"* ") or re.match(rb"^\S+ (OK|NO|BAD) ", server):
        return fmt.Protocol.IMAP
    raise RawlogError(name, 0, f"cannot tell the protocol from the server's first line {server[:40]!r}")


def _joins(pre: _Half, post: _Half) -> bool:
    """True when ``post`` (a post-login rawlog) continues ``pre`` (a login rawlog): ``pre`` ends
    with a client line nobody answered in it (the login, answered by the post-login process),
    ``post`` starts with the server's data no sooner, and for IMAP it answers that line's tag."""
    if not pre.lines or pre.lines[-1][1] is not fmt.Sender.CLIENT:
        return False
    if not post.lines or post.lines[0][1] is not fmt.Sender.SERVER:
        return False
    if pre.timed and post.timed and pre.lines[-1][0] > post.lines[0][0]:
        return False
    if _protocol(pre.lines, pre.name) is fmt.Protocol.IMAP:
        tag = pre.lines[-1][2].split(b" ", 1)[0]
        return any(s is fmt.Sender.SERVER and d.startswith(tag + b" ") for _, s, d in post.lines)
    return _protocol(post.lines, post.name) is _protocol(pre.lines, pre.name)


def _sessions(halves: list[_Half], notes: list[str]) -> list[list[_Half]]:
    halves = sorted(halves, key=lambda h: (h.lines[0][0] or 0.0) if h.lines else 0.0)
    sessions: list[list[_Half]] = []
    for half in halves:
        if not any(s is fmt.Sender.CLIENT for _, s, _ in half.lines):
            notes.append(f"{half.name}: left out, the client sent nothing (a connection probe)")
            continue
        # A POP3 post-login half starts "+OK Logged in." like a greeting: joining is tried first.
        open_ = [s for s in sessions if len(s) == 1 and _joins(s[0], half)]
        if open_:
            open_[-1].append(half)
            notes.append(f"{half.name}: joined to the login rawlog {open_[-1][0].name}")
            continue
        sessions.append([half])
        if not half.greets:
            notes.append(f"{half.name}: no greeting and no login rawlog to join: replayed as it is "
                         "(a client waits for a greeting; add the login rawlog, imap-login -R)")
    return sessions


def transcript_of(halves: list[_Half]) -> fmt.Transcript:
    lines = [line for half in halves for line in half.lines]
    protocol = _protocol(lines, halves[0].name)
    timed = all(h.timed for h in halves)
    t0 = lines[0][0] if timed else None
    events: list[fmt.Event] = [fmt.Chunk(round(t - t0, 6) if timed else 0.0, sender, data)
                               for t, sender, data in lines]
    started = datetime.fromtimestamp(t0, timezone.utc) if timed else _started_from_name(halves[0].name)
    extra = {"source_files": [f for h in halves for f in h.files]}
    if not timed:
        extra["interleaved"] = False
    header = fmt.Header(protocol, server="", started=started, recorded_by="dovecot-rawlog", extra=extra)
    return redact_transcript(fmt.Transcript(header, events))


def _started_from_name(name: str) -> datetime:
    try:  # "20261122-193807.27436.1": local time of the server, as Dovecot names the files
        return datetime.strptime(name[:15], "%Y%m%d-%H%M%S").astimezone(timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(0, timezone.utc)


def import_dovecot(paths: list[Path]) -> Imported:
    out = Imported()
    for halves in _sessions(_pairs(paths), out.notes):
        out.sessions.append(("+".join(h.name for h in halves), transcript_of(halves)))
    return out


def load(paths: list[Path]) -> Imported:
    """Transcripts (``*.jsonl``), Dovecot rawlogs (files or folders) and imapsync logs, in order."""
    from transcripts import imapsync  # its own format; kept apart

    out = Imported()
    rawlogs: list[Path] = []
    at = None  # where the rawlog sessions go: joined across folders, they keep the first one's place
    for path in paths:
        if at is None and (path.suffix in (".in", ".out") or path.is_dir() and any(path.glob("*.in"))):
            at = len(out.sessions)
        if not path.exists():
            raise RawlogError(str(path), 0, "no such file or folder")
        if path.is_dir():
            for f in sorted(path.glob(f"*{fmt.SUFFIX}")):
                out.sessions.append((f.name, fmt.read(f)))
            rawlogs += [path] if any(path.glob("*.in")) else []
        elif fmt.looks_like_transcript(path):
            out.sessions.append((path.name, fmt.read(path)))
        elif path.suffix in (".in", ".out"):
            rawlogs.append(path)
        elif imapsync.looks_like_log(path):
            found = imapsync.import_log(path)
            out.sessions += found.sessions
            out.notes += found.notes
        else:
            raise RawlogError(str(path), 0, "not a transcript, a Dovecot rawlog (.in/.out) or an imapsync "
                                            "--debugimap log")
    if rawlogs:
        found = import_dovecot(rawlogs)
        out.sessions[at:at] = found.sessions
        out.notes += found.notes
    return out
