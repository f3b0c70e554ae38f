"""Over-long lines (exchange-append-limits): find them, and re-wrap a message when asked. Pure.

Exchange refuses an APPEND with a line over ~9900 characters (`BAD Command Argument Error. 11`).
The engine skips such a message by default; ``rewrap`` is the optional, reported repair: every
leaf part sent as 7bit/8bit/binary whose lines are too long is re-encoded quoted-printable (RFC
2045: lines of at most 76 characters, the decoded text unchanged). Only text/* parts: in other
parts line ends are data, and message/* may not be encoded at all. Headers are never touched: a
message whose header block has an over-long line cannot be repaired this way.
"""

from __future__ import annotations

import quopri
from email import message_from_bytes
from email.policy import compat32

EXCHANGE_LINE_LIMIT = 9900  # characters a line may have at Exchange/M365 (public reports: "~9900")
_RAW_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
_POLICY = compat32.clone(linesep="\r\n", max_line_length=0)  # 0: never re-fold a header


def longest_line(raw: bytes) -> int:
    """Bytes of the longest line, without its CRLF (or bare LF)."""
    return max((len(line.rstrip(b"\r")) for line in raw.split(b"\n")), default=0)


def rewrap(raw: bytes, limit: int) -> bytes | None:
    """The message with its over-long body lines re-encoded quoted-printable; None when that
    cannot bring every line under ``limit`` (a long header line, or an encoded part's own lines)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0 or longest_line(raw[:end]) > limit:
        return None
    msg = message_from_bytes(raw, policy=_POLICY)
    changed = False
    for part in msg.walk():
        if part.is_multipart():
            continue
        cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        body = part.get_payload(decode=True) or b""
        if cte not in _RAW_ENCODINGS or longest_line(body) <= limit:
            continue
        if part.get_content_maintype() != "text":
            return None  # line ends in binary data are data; message/* may not be encoded (RFC 2046)
        # CRLF line ends are text line breaks, kept as breaks (not =0D encoded).
        text = body.replace(b"\r\n", b"\n")
        encoded = quopri.encodestring(text).replace(b"\n", b"\r\n")
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(encoded.decode("ascii"))
        changed = True
    if not changed:
        return None
    out = msg.as_bytes(policy=_POLICY)
    return out if longest_line(out) <= limit else None
