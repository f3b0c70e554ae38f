"""A minimal secret guard for imported logs: LOGIN/PASS passwords and SASL responses become ``*``.

Length-preserving (``*`` per byte), so literal counts stay true and a replay's ``*`` runs match
a live secret of the same length. It works line by line on the client's side, told the server's
lines in order when the log has them: a client line answering a SASL challenge (IMAP ``+``,
POP3 ``+ ``, SMTP ``334``, after AUTH/AUTHENTICATE) is masked whole. Without server order (an untimed log) the line after
an AUTH/AUTHENTICATE without an initial response is masked, two for the LOGIN mechanism.
"""

from __future__ import annotations

import re

_IMAP_LOGIN = re.compile(rb"^(\S+ LOGIN (?:\"(?:[^\"\\]|\\.)*\"|\S+) )(\"(?:[^\"\\]|\\.)*\"|\S+)", re.IGNORECASE)
_IMAP_AUTH = re.compile(rb"^\S+ AUTHENTICATE (\S+)( \S+)?", re.IGNORECASE)
_POP3_PASS = re.compile(rb"^(PASS )(.+?)(\r?\n)?$", re.IGNORECASE | re.DOTALL)
_POP3_APOP = re.compile(rb"^(APOP \S+ )(\S+)", re.IGNORECASE)
_AUTH = re.compile(rb"^AUTH (\S+)( \S+)?", re.IGNORECASE)
_CHALLENGE = {"imap": re.compile(rb"^\+"), "pop3": re.compile(rb"^\+ |^\+\r?$"), "smtp": re.compile(rb"^334[ \r\n]")}


def stars(data: bytes) -> bytes:
    return b"*" * len(data)


def _mask_group(line: bytes, match: re.Match | None, group: int) -> bytes:
    if match is None or match.group(group) is None:
        return line
    start, end = match.span(group)
    if line[start:end].startswith(b" "):
        start += 1
    value = line[start:end]
    if value.startswith(b'"') and value.endswith(b'"') and len(value) >= 2:
        start, end = start + 1, end - 1
    return line[:start] + stars(line[start:end]) + line[end:]


class SecretGuard:
    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.masked = 0
        self._answers = 0  # client lines still to mask (untimed logs)
        self._challenged = False
        self._in_auth = False  # an AUTH/AUTHENTICATE exchange is under way: "+" is a SASL challenge
        self.untimed = False  # no server lines will come: guess the SASL answers from the commands

    def server(self, line: bytes) -> None:
        pattern = _CHALLENGE.get(self.protocol)
        self._challenged = self._in_auth and bool(pattern and pattern.match(line))
        self._in_auth = self._challenged  # any other reply ends the exchange

    def client(self, line: bytes) -> bytes:
        """The line with any secret masked (``masked`` counts the lines that held one)."""
        if self._challenged or self._answers:
            self._challenged = False
            self._answers = max(0, self._answers - 1)
            body = line.rstrip(b"\r\n")
            if body and body != b"*":  # "*" cancels an IMAP AUTHENTICATE: no secret
                self.masked += 1
                return stars(body) + line[len(body):]
            return line
        masked = self._mask_command(line)
        self.masked += masked != line
        return masked

    def _mask_command(self, line: bytes) -> bytes:
        if self.protocol == "imap":
            if (m := _IMAP_LOGIN.match(line)) is not None:
                return _mask_group(line, m, 2)
            if (m := _IMAP_AUTH.match(line)) is not None:
                return self._auth(line, m)
        elif (m := _AUTH.match(line)) is not None:
            return self._auth(line, m)
        elif self.protocol == "pop3":
            if (m := _POP3_PASS.match(line)) is not None:
                return _mask_group(line, m, 2)
            if (m := _POP3_APOP.match(line)) is not None:
                return _mask_group(line, m, 2)
        return line

    def _auth(self, line: bytes, m: re.Match) -> bytes:
        self._in_auth = True
        if self.untimed and m.group(2) is None:
            self._answers = 2 if m.group(1).upper() == b"LOGIN" else 1
        return _mask_group(line, m, 2)
