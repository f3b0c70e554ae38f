"""POP3 session anonymiser: both sides' streams in, the same number of bytes out.

Server replies are paired with the client's commands in order (POP3 answers in order, pipelined
or not), which says which replies are multi-line: RETR and TOP bring a message (dot-stuffed:
the stuffing is layout, the message inside is rewritten by ``anon_message``), LIST, UIDL and CAPA
bring numbers and names that stay. USER, APOP and AUTH users are rewritten as logins, PASS and
SASL secrets masked; status lines lose only names known from elsewhere.
"""

from __future__ import annotations

import re

from transcripts import anon_message, anon_text
from transcripts.anon_imap import sasl
from transcripts.pseudonyms import Pseudonyms

_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
_STUFFED = re.compile(rb"(?:^|(?<=\n))\.(?=\.)")
_COMMANDS = frozenset(b"USER PASS APOP AUTH STAT LIST RETR DELE NOOP RSET QUIT TOP UIDL CAPA STLS UTF8 LANG".split())


def session(p: Pseudonyms, client: bytes, server: bytes) -> tuple[bytes, bytes]:
    commands, new_client = _client(p, client)
    return new_client, _server(p, server, commands)


def _client(p: Pseudonyms, data: bytes) -> tuple[list[tuple[bytes, int]], bytes]:
    """The commands (verb, argument count) in order, and the client stream rewritten."""
    out, commands = bytearray(), []
    sasl_mech, step = b"", 0
    for m in _LINE.finditer(data):
        line = m[0]
        body = line.rstrip(b"\r\n")
        words = body.split(b" ")
        verb = words[0].upper()
        if sasl_mech and verb not in _COMMANDS:
            out += sasl(p, sasl_mech, body, step) + line[len(body):]
            step += 1
            continue
        sasl_mech = b""
        commands.append((verb, len(words) - 1))
        if verb in (b"USER", b"APOP") and len(words) > 1:
            words[1] = p.login(words[1])
        elif verb == b"PASS" and len(words) > 1:
            words[1:] = [p.mask(b" ".join(words[1:]))]
        elif verb == b"AUTH" and len(words) > 1:
            sasl_mech, step = words[1], 0
            if len(words) > 2:
                words[2] = sasl(p, sasl_mech, words[2], 0)
                step = 1
        out += b" ".join(words) + line[len(body):]
    return commands, anon_text.same_length(data, bytes(out), "POP3 client stream")


def _multiline(verb: bytes, args: int) -> bool:
    return verb in (b"RETR", b"TOP", b"CAPA") or (verb in (b"LIST", b"UIDL") and args == 0)


def _server(p: Pseudonyms, data: bytes, commands: list[tuple[bytes, int]]) -> bytes:
    lines = [m[0] for m in _LINE.finditer(data)]
    out: list[bytes] = []
    i = 0
    expected = [(b"", 0)] + commands  # the greeting answers no command
    for verb, args in expected:
        while i < len(lines) and lines[i].startswith(b"+ "):  # SASL challenges
            out.append(lines[i])
            i += 1
        if i >= len(lines):
            break
        status = lines[i]
        i += 1
        out.append(_status(p, status))
        if not (status.startswith(b"+OK") and _multiline(verb, args)):
            continue
        start = i
        while i < len(lines) and lines[i].rstrip(b"\r\n") != b".":
            i += 1
        block = b"".join(lines[start:i])
        if verb in (b"RETR", b"TOP"):
            block = anon_text.without(block, _STUFFED, lambda m: anon_message.message(p, m))
        out.append(block)
        if i < len(lines):
            out.append(lines[i])
            i += 1
    # Replies to nothing we saw (a cut transcript): status lines as prose, anything else as text.
    out.extend(_status(p, line) if line[:1] in (b"+", b"-") else anon_text.text(p, line) for line in lines[i:])
    return anon_text.same_length(data, b"".join(out), "POP3 server stream")


def _status(p: Pseudonyms, line: bytes) -> bytes:
    word, space, rest = line.partition(b" ")
    return word + space + anon_text.known(p, rest) if space else line
