"""Content a destination refuses: which rule a refused APPEND broke, and the one safe repair.

Pure: (the server's reply text, the message bytes) in, a stable reason code out. Servers word it
their own way — Cyrus `NO Message contains bare newlines` / `... NUL characters` / `... non-ASCII
characters in headers`. Exchange's bare `BAD Command Argument Error. 11` names no cause and is
left alone here: long lines are found before APPEND (``longlines``, mitigation line-length-check).

Only bare LF is repaired: CRLF is what RFC 3501/5322 require on the wire and what Dovecot hands
back anyway, so the message's meaning is untouched. NUL bytes, 8-bit headers and long lines are
skipped with their reason: changing them would change what the message says (a signed or encoded
part breaks), and a reported skip can be handled by hand (long lines: ``long_lines: rewrap``).
"""

from __future__ import annotations

import re

from migrator.longlines import longest_line

# LONG_LINES is the code the engine's up-front check (exchange-append-limits) reports too.
BARE_LF, NUL_BYTES, EIGHT_BIT_HEADERS, LONG_LINES = "bare-lf", "nul-bytes", "8bit-headers", "line-too-long"

_BARE_LF = re.compile(rb"(?<!\r)\n")
_WORDED = [
    (re.compile(r"bare newline|bare lf|bare linefeed", re.IGNORECASE), BARE_LF),
    (re.compile(r"\bNUL\b|null character", re.IGNORECASE), NUL_BYTES),
    (re.compile(r"non-ASCII characters in header|8-?bit (characters )?in header", re.IGNORECASE), EIGHT_BIT_HEADERS),
    (re.compile(r"line (is )?too long|line length|lines? longer", re.IGNORECASE), LONG_LINES),
]


def has_bare_lf(raw: bytes) -> bool:
    return _BARE_LF.search(raw) is not None


def refused_content(text: str, raw: bytes) -> str | None:
    """The content rule behind a refused APPEND, or None when the refusal is about something else."""
    for pattern, reason in _WORDED:
        if pattern.search(text):
            return reason
    return None


def repaired(reason: str, raw: bytes) -> bytes | None:
    """The message with the refused content fixed, when a fix keeps its meaning; else None."""
    if reason == BARE_LF and has_bare_lf(raw):
        return _BARE_LF.sub(b"\r\n", raw)
    return None


def describe(reason: str, raw: bytes) -> str:
    """What the message holds that the rule is about, for the report's detail."""
    if reason == LONG_LINES:
        return f"longest line {longest_line(raw)} characters"
    if reason == NUL_BYTES:
        return f"{raw.count(bytes(1))} NUL byte(s)"
    if reason == BARE_LF:
        return f"{len(_BARE_LF.findall(raw))} bare LF line ending(s)"
    if reason == EIGHT_BIT_HEADERS:
        header = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        names = [line.split(b":", 1)[0].decode("ascii", "replace") for line in header.splitlines()
                 if not line.isascii() and b":" in line and not line[:1].isspace()]
        return f"8-bit bytes in {', '.join(names) or 'a folded header line'}"
    return ""
