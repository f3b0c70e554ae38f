"""SMTP / LMTP session anonymiser: both sides' streams in, the same number of bytes out.

The client side is read command by command: EHLO/HELO/LHLO names and MAIL FROM / RCPT TO paths
are rewritten (``ORCPT=rfc822;addr`` too), AUTH users rewritten and secrets masked, and the
message after DATA (dot-stuffed, up to the lone ``.``) or in BDAT chunks (their command lines are
layout between the pieces of one message) goes through ``anon_message``. Server replies keep their
codes and lose only host names, addresses and names known from elsewhere.
"""

from __future__ import annotations

import re

from transcripts import anon_message, anon_text
from transcripts.anon_imap import sasl
from transcripts.pseudonyms import Pseudonyms

_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
_PATH = re.compile(rb"<([^<>]*)>")
_ORCPT = re.compile(rb"(ORCPT=rfc822;)(\S+)", re.I)
_STUFFED = re.compile(rb"(?:^|(?<=\n))\.(?=\.)")
_BDAT = re.compile(rb"BDAT +(\d+)( +LAST)? *\r?\n", re.I)
_COMMANDS = frozenset(b"HELO EHLO LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH".split())


def session(p: Pseudonyms, client: bytes, server: bytes) -> tuple[bytes, bytes]:
    return _client(p, client), _server(p, server)


def _client(p: Pseudonyms, data: bytes) -> bytes:
    out = bytearray(data)
    pos, sasl_mech, step = 0, b"", 0
    bdat: list[tuple[int, int]] = []  # the pieces of the message being sent in BDAT chunks
    while pos < len(data):
        if (chunk := _BDAT.match(data, pos)) is not None:
            start = chunk.end()
            end = min(len(data), start + int(chunk[1]))
            bdat.append((start, end))
            pos = end
            if chunk[2]:
                _message_pieces(p, data, out, bdat)
                bdat = []
            continue
        m = _LINE.match(data, pos)
        line = m[0]
        body = line.rstrip(b"\r\n")
        verb = body.split(b" ")[0].upper()
        if sasl_mech and verb not in _COMMANDS:
            out[pos:pos + len(body)] = sasl(p, sasl_mech, body, step)
            step += 1
        else:
            sasl_mech = b""
            out[pos:pos + len(body)] = _command(p, body, verb)
            if verb == b"AUTH":
                words = body.split(b" ")
                sasl_mech, step = (words[1] if len(words) > 1 else b""), (1 if len(words) > 2 else 0)
        pos = m.end()
        if verb == b"DATA" and not sasl_mech:
            end = data.find(b"\n.\r\n", pos - 1)
            end = len(data) if end < 0 else end + 1
            out[pos:end] = anon_text.without(data[pos:end], _STUFFED, lambda msg: anon_message.message(p, msg))
            pos = end
    if bdat:  # a session cut before BDAT LAST
        _message_pieces(p, data, out, bdat)
    return anon_text.same_length(data, bytes(out), "SMTP client stream")


def _message_pieces(p: Pseudonyms, data: bytes, out: bytearray, pieces: list[tuple[int, int]]) -> None:
    joined = b"".join(data[s:e] for s, e in pieces)
    new = anon_message.message(p, joined)
    at = 0
    for s, e in pieces:
        out[s:e] = new[at:at + e - s]
        at += e - s


def _command(p: Pseudonyms, body: bytes, verb: bytes) -> bytes:
    if verb in (b"HELO", b"EHLO", b"LHLO"):
        head, _, name = body.partition(b" ")
        if not name or name.startswith(b"["):  # an address literal says where the test ran, not who
            return body
        return head + b" " + anon_text.text(p, name)
    if verb in (b"MAIL", b"RCPT", b"VRFY", b"EXPN"):
        new = _PATH.sub(lambda m: b"<" + p.address(m[1]) + b">" if m[1] else m[0], body)
        new = _ORCPT.sub(lambda m: m[1] + anon_text.text(p, m[2], identity=True), new)
        if verb in (b"VRFY", b"EXPN") and new == body:
            head, _, who = body.partition(b" ")
            new = head + b" " + anon_text.text(p, who, identity=True) if who else body
        return new
    if verb == b"AUTH":
        words = body.split(b" ")
        if len(words) > 2:
            words[2] = sasl(p, words[1], words[2], 0)
        return b" ".join(words)
    return body


def _server(p: Pseudonyms, data: bytes) -> bytes:
    out = bytearray()
    for m in _LINE.finditer(data):
        line = m[0]
        code, rest = line[:4], line[4:]
        if code[:3].isdigit() and code[:3] != b"334":  # 334: a SASL challenge, base64
            out += code + anon_text.known(p, rest)
        else:
            out += line
    return anon_text.same_length(data, bytes(out), "SMTP server stream")
