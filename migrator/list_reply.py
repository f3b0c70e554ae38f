"""LIST replies → ``ListEntry``, leniently. Pure: imaplib's untagged LIST data in, entries out.

imapclient parses all LIST lines at once and fails the whole listing on one bad line, and it
decodes every name as modified UTF-7 even when a server sends raw UTF-8 (``"Entwürfe"`` becomes
``EntwÃ¼rfe``: modified-utf7-names). Here each line is read on its own:

- a name is modified UTF-7 when it is ASCII (and valid), else raw UTF-8 (RFC 6855 style);
- a quoted name whose closing quote is missing runs to the end of the line (malformed-responses);
- a line that still makes no sense (no flags list, NIL for the name) is left out, and a
  ``ListProblem`` names the line and the cause, for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imapclient import imap_utf7

from migrator.folders import ListEntry

_FLAGS = re.compile(rb"\(([^)]*)\)\s*")
_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


@dataclass(frozen=True)
class ListProblem:
    """A LIST line read leniently or left out: the line as received, and what was wrong."""

    line: str
    cause: str
    name: str | None = None  # the folder it names, when one could be read

    def __str__(self) -> str:
        where = f"folder {self.name!r}" if self.name is not None else "a folder"
        return f"LIST reply for {where}: {self.cause} (line {self.line!r})"


def decode_name(raw: bytes) -> str:
    """A mailbox name as sent: modified UTF-7 when ASCII, else raw UTF-8 (some servers send it)."""
    if raw.isascii():
        try:
            return imap_utf7.decode(raw)
        except (UnicodeError, ValueError):
            return raw.decode("ascii")  # "a&b" is no valid mUTF-7: the name as it stands
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_list(data: list) -> tuple[list[ListEntry], list[ListProblem]]:
    """Entries from imaplib's LIST data (bytes lines after ``* LIST``, (line, literal) tuples)."""
    entries: list[ListEntry] = []
    problems: list[ListProblem] = []
    for element in data:
        if element is None or element == b"":
            continue
        line, literal = (element[0], element[1]) if isinstance(element, tuple) else (element, None)
        entry, problem = parse_line(line, literal)
        if entry is not None:
            entries.append(entry)
        if problem is not None:
            problems.append(problem)
    return entries, problems


def parse_line(line: bytes, literal: bytes | None = None) -> tuple[ListEntry | None, ListProblem | None]:
    """One LIST line (without ``* LIST ``); the name may come as a literal."""
    shown = line.decode("utf-8", "replace")
    m = _FLAGS.match(line)
    if m is None:
        return None, ListProblem(shown, "no attribute list: line left out")
    flags = frozenset(f.decode("utf-8", "replace") for f in m.group(1).split())
    rest = line[m.end():]
    delimiter, rest = _delimiter(rest)
    if delimiter is False:
        return None, ListProblem(shown, "no hierarchy delimiter: line left out")
    problem = None
    if literal is not None and _LITERAL.match(rest.strip()):
        raw = literal
    elif rest.startswith(b'"'):
        q = _QUOTED.match(rest)
        if q is not None:
            raw = re.sub(rb"\\(.)", rb"\1", q.group(1))
        else:
            raw = rest[1:].rstrip(b"\r\n")
            problem = "closing quote missing: the name taken to the end of the line"
    else:
        raw = rest.strip()
    if not raw or raw.upper() == b"NIL":
        return None, ListProblem(shown, "NIL or empty where a mailbox name is required: line left out")
    name = decode_name(raw)
    entry = ListEntry(name, flags, delimiter)
    return entry, (ListProblem(shown, problem, name) if problem else None)


def _delimiter(rest: bytes) -> tuple[str | None | bool, bytes]:
    """(delimiter or None for NIL, the rest); False when there is none."""
    if rest[:3].upper() == b"NIL":
        return None, rest[3:].lstrip(b" ")
    q = _QUOTED.match(rest)
    if q is None:
        return False, rest
    return re.sub(rb"\\(.)", rb"\1", q.group(1)).decode("utf-8", "replace"), rest[q.end():].lstrip(b" ")
