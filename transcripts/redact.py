"""Masking secrets in protocol bytes, length-preserving, before they reach a transcript.

Every secret byte becomes ``*``, so a transcript keeps its sizes and its IMAP literal counts
(``{8}`` is followed by 8 bytes still). What is a secret, per protocol:

- IMAP: LOGIN's password (atom, quoted string or literal — the literal's bytes may come in a
  later chunk, after the server's ``+``); AUTHENTICATE's initial response (SASL-IR) and every
  continuation line the client sends until the server's tagged reply (for LOGIN the first
  response, the user name, is kept).
- POP3: PASS's argument (USER is kept), APOP's digest, AUTH's initial response and its
  continuation lines until ``+OK`` / ``-ERR``.
- SMTP / LMTP: AUTH's initial response (LOGIN's, the user name, is kept) and its continuation
  lines until a reply other than 334. DATA and BDAT content is skipped, never looked into.
- HTTP (EWS, CardDAV, CalDAV): the credentials of ``Authorization`` / ``Proxy-Authorization``
  (the scheme word — Basic, Bearer, NTLM — is kept), and the values of ``Cookie`` and
  ``Set-Cookie``. Bodies are skipped by Content-Length or chunked framing.

A ``Redactor`` is one session, both directions, fed chunk by chunk as the socket gave them: a
decision never needs bytes that have not arrived yet (the command word comes before its
password), so a chunk is masked as it passes and chunk boundaries stay as they were. It is
pure — bytes in, bytes out — and cheap on bulk data: literals, message data and bodies are
skipped by count or by a C-level search, not scanned byte by byte.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace

from transcripts.format import Chunk, Sender, Transcript

STAR = ord("*")
_LINE_END = re.compile(rb"\r?\n?\Z")
_LITERAL_AT_END = re.compile(rb"~?\{(\d{1,20})\+?\}\r?\n\Z")
MAX_LINE = 65536  # a longer line is not analysed further (no command we mask is that long)


class _Out:
    """The chunk being redacted: copied on its first mask only (most chunks have none)."""

    __slots__ = ("data", "buf")

    def __init__(self, data: bytes):
        self.data, self.buf = data, None

    def mask(self, start: int, end: int) -> None:
        if end > start:
            if self.buf is None:
                self.buf = bytearray(self.data)
            self.buf[start:end] = b"*" * (end - start)

    def result(self) -> bytes:
        return self.data if self.buf is None else bytes(self.buf)


def _content_end(line: bytes) -> int:
    """Where a line (or a line's prefix) ends before its CR/LF."""
    return _LINE_END.search(line).start()


# Line protocols: a line's secret span is decided on the prefix seen so far ----------------------


class _Lines:
    """One direction of a line protocol. Subclasses say which span of the current line (prefix
    so far) is secret; spans only ever grow as the line does, so each byte is decided once."""

    def __init__(self) -> None:
        self.line = bytearray()
        self.skip = 0  # bytes to pass untouched (a body or literal by count)
        self.count = 0
        self._counted = False  # the current line's secret is already counted

    def secret(self, prefix: bytes) -> tuple[int, int] | None:
        return None

    def line_done(self, line: bytes) -> None:
        pass

    def scan(self, data: bytes, i: int) -> int | None:
        """A mode that consumes bytes without lines (SMTP DATA, a body read to the close):
        returns the new position, or None when in line mode."""
        return None

    def feed(self, data: bytes) -> bytes:
        out = _Out(data)
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            moved = self.scan(data, i)
            if moved is not None:
                i = moved
                continue
            j = data.find(b"\n", i)
            end = n if j < 0 else j + 1
            before = len(self.line)
            if before < MAX_LINE:
                self.line += data[i:end]
                span = self.secret(bytes(self.line))
                if span is not None:
                    start, stop = max(span[0], before), min(span[1], len(self.line))
                    if stop > start:
                        out.mask(i + start - before, i + stop - before)
                        if not self._counted:
                            self.count += 1
                            self._counted = True
            i = end
            if j >= 0:
                line = bytes(self.line)
                self.line.clear()
                self._counted = False
                self.line_done(line)
        return out.result()


def _word_after(prefix: bytes, start: int) -> tuple[bytes, int] | None:
    """The space-delimited word at ``start`` and the index after its space (None: not ended yet)."""
    space = prefix.find(b" ", start)
    return None if space < 0 else (prefix[start:space], space + 1)


class _SaslLines(_Lines):
    """Client lines of a SASL exchange: masked whole, except LOGIN's user name and a cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.sasl = False
        self.keep_next = False  # the next response is AUTH LOGIN's user name

    def start_sasl(self, mechanism: bytes, initial_response: bool) -> None:
        self.sasl = True
        self.keep_next = mechanism.upper() == b"LOGIN" and not initial_response

    def sasl_secret(self, prefix: bytes) -> tuple[int, int] | None:
        return None if self.keep_next else (0, _content_end(prefix))

    def sasl_line_done(self) -> None:
        self.keep_next = False


class _Pop3Client(_SaslLines):
    def secret(self, prefix: bytes) -> tuple[int, int] | None:
        if self.sasl:
            return self.sasl_secret(prefix)
        first = _word_after(prefix, 0)
        if first is None:
            return None
        verb, at = first[0].upper(), first[1]
        end = _content_end(prefix)
        if verb == b"PASS":
            return (at, end)
        if verb in (b"APOP", b"AUTH"):
            second = _word_after(prefix, at)  # APOP name / AUTH mechanism
            if second is None:
                return None
            if verb == b"AUTH" and second[0].upper() == b"LOGIN":
                return None  # LOGIN's initial response is the user name
            return (second[1], end)
        return None

    def line_done(self, line: bytes) -> None:
        if self.sasl:
            self.sasl_line_done()
            return
        words = line[:_content_end(line)].split(b" ")
        if words[0].upper() == b"AUTH" and len(words) >= 2:
            self.start_sasl(words[1], len(words) > 2)


class _SmtpClient(_SaslLines):
    def __init__(self) -> None:
        super().__init__()
        self.data_pending = False  # DATA sent; the 354 decides whether message data follows
        self.in_data = False
        self._tail = b""

    def secret(self, prefix: bytes) -> tuple[int, int] | None:
        if self.sasl:
            return self.sasl_secret(prefix)
        first = _word_after(prefix, 0)
        if first is None or first[0].upper() != b"AUTH":
            return None
        second = _word_after(prefix, first[1])
        if second is None:
            return None
        end = _content_end(prefix)
        if second[0].upper() == b"LOGIN":
            return None
        return (second[1], end)

    def line_done(self, line: bytes) -> None:
        if self.sasl:
            self.sasl_line_done()
            return
        words = line[:_content_end(line)].split(b" ")
        verb = words[0].upper()
        if verb == b"AUTH" and len(words) >= 2:
            self.start_sasl(words[1], len(words) > 2)
        elif verb == b"DATA":
            self.data_pending = True
        elif verb == b"BDAT" and len(words) >= 2 and words[1].isdigit():
            self.skip = int(words[1])

    def begin_data(self) -> None:
        self.in_data, self._tail = True, b"\r\n"

    def scan(self, data: bytes, i: int) -> int | None:
        if not self.in_data:
            return None
        window = self._tail + data[i:]
        found = window.find(b"\r\n.\r\n")
        if found < 0:
            self._tail = window[-4:]
            return len(data)
        self.in_data = False
        return i + found + 5 - len(self._tail)


def _mask_line_bytes(out: _Out, data: bytes, start: int, stop: int) -> bool:
    """Mask ``data[start:stop]`` except CR and LF; whether anything was masked."""
    masked = False
    while start < stop:
        cut = stop
        for end_byte in (b"\r", b"\n"):
            found = data.find(end_byte, start, stop)
            if found >= 0:
                cut = min(cut, found)
        if cut > start:
            out.mask(start, cut)
            masked = True
        start = cut + 1
    return masked


class _ReplyWatch:
    """The server's side, looked at only while the client's side waits for something in it."""

    def __init__(self) -> None:
        self.line = bytearray()

    def lines(self, data: bytes):
        start = 0
        while True:
            j = data.find(b"\n", start)
            if j < 0:
                if len(self.line) < MAX_LINE:
                    self.line += data[start:]
                return
            self.line += data[start:j + 1]
            line = bytes(self.line)
            self.line.clear()
            yield line
            start = j + 1


# IMAP: literals inside LOGIN need a byte-level tokenizer ----------------------------------------


class _ImapClient:
    """The client's commands: LOGIN and AUTHENTICATE are tokenized byte by byte; any other
    command is skipped line by line, following its literals by count (APPEND's message)."""

    def __init__(self) -> None:
        self.count = 0
        self.state = "tag"  # tag | command | args | skip | sasl
        self.word = bytearray()
        self.tag = b""
        self.command = b""
        self.literal = 0
        self.literal_secret = False
        self.tail = b""  # the end of a skipped line so far: is it "{123}\r\n"?
        self.arg = 0
        self.token: str | None = None  # atom | quoted | escape | lithdr | litend
        self.token_secret = False
        self.digits = bytearray()
        self.mechanism = bytearray()
        self.keep_next = False  # AUTHENTICATE LOGIN: the first response is the user name
        self.sasl_mask: bool | None = None  # the current SASL line's decision (None: at line start)
        self.sasl_counted = False  # the current SASL line's mask is counted

    # the command's arguments ----------------------------------------------------------------

    def _secret_arg(self) -> bool:
        if self.arg != 1:
            return False
        return self.command == b"LOGIN" or bytes(self.mechanism).upper() != b"LOGIN"

    def _arg_byte(self, c: int, pos: int, out: _Out) -> None:
        token = self.token
        if token is None:
            if c in (0x20, 0x0D):
                return
            if c == 0x0A:
                self._end_command()
                return
            self.token_secret = self._secret_arg()
            if c == 0x22:  # "
                self.token = "quoted"
            elif c == 0x7B:  # {
                self.token, self.digits = "lithdr", bytearray()
                return
            else:
                self.token = "atom"
                if c == 0x3D and self.command == b"AUTHENTICATE":  # "=": an empty initial response
                    self.token_secret = False
                if self.arg == 0:
                    self.mechanism = bytearray([c])
                if self.token_secret:
                    out.mask(pos, pos + 1)
            if self.token_secret:
                self.count += 1
            return
        if token == "atom":
            if c in (0x20, 0x0D, 0x0A):
                self.token, self.arg = None, self.arg + 1
                self._arg_byte(c, pos, out)
                return
            if self.arg == 0:
                self.mechanism.append(c)
            if self.token_secret:
                out.mask(pos, pos + 1)
        elif token == "quoted":
            if c == 0x22:
                self.token, self.arg = None, self.arg + 1
                return
            if c == 0x5C:
                self.token = "escape"
            if self.token_secret:
                out.mask(pos, pos + 1)
        elif token == "escape":
            self.token = "quoted"
            if self.token_secret:
                out.mask(pos, pos + 1)
        elif token == "lithdr":
            if c == 0x7D:  # }
                self.token = "litend"
            else:
                self.digits.append(c)
        elif token == "litend":
            if c == 0x0A:
                digits = bytes(self.digits).rstrip(b"+")
                self.literal = int(digits) if digits.isdigit() else 0
                self.literal_secret = self.token_secret
                if self.token_secret and self.literal:
                    self.count += 1
                self.token, self.arg = None, self.arg + 1

    def _end_command(self) -> None:
        if self.command == b"AUTHENTICATE":
            self.state, self.sasl_mask = "sasl", None
            self.keep_next = bytes(self.mechanism).upper() == b"LOGIN" and self.arg < 2
        else:
            self.state = "tag"

    # the stream ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        out = _Out(data)
        i, n = 0, len(data)
        while i < n:
            if self.literal:
                k = min(self.literal, n - i)
                if self.literal_secret:
                    out.mask(i, i + k)
                self.literal -= k
                i += k
                continue
            if self.state == "skip":
                i = self._skip(data, i)
            elif self.state == "sasl":
                i = self._sasl(data, i, out)
            else:
                self._byte(data[i], i, out)
                i += 1
        return out.result()

    def _byte(self, c: int, pos: int, out: _Out) -> None:
        if self.state == "args":
            self._arg_byte(c, pos, out)
            return
        if c == 0x0A:  # a line without a command word (DONE, a stray CRLF)
            self.state, self.word = "tag", bytearray()
            return
        if c != 0x20:
            if c != 0x0D:
                self.word.append(c)
            return
        if self.state == "tag":
            self.tag, self.word, self.state = bytes(self.word), bytearray(), "command"
            return
        self.command, self.word = bytes(self.word).upper(), bytearray()
        if self.command in (b"LOGIN", b"AUTHENTICATE"):
            self.state, self.arg, self.token, self.mechanism = "args", 0, None, bytearray()
        else:
            self.state, self.tail = "skip", b""

    def _skip(self, data: bytes, i: int) -> int:
        j = data.find(b"\n", i)
        if j < 0:
            self.tail = (self.tail + data[max(i, len(data) - 32):])[-32:]
            return len(data)
        line_end = (self.tail + data[max(i, j - 31):j + 1])[-32:]
        self.tail = b""
        found = _LITERAL_AT_END.search(line_end)
        if found:
            self.literal, self.literal_secret = int(found.group(1)), False
        else:
            self.state, self.word = "tag", bytearray()
        return j + 1

    def _sasl(self, data: bytes, i: int, out: _Out) -> int:
        """A response line: masked byte by byte (CR/LF excepted) as it arrives, so a chunk cut
        anywhere gives the same bytes. A space means it was a command after all (a log without
        the server's tagged reply): its tag stays masked — the safe side — and it is parsed."""
        if self.sasl_mask is None:
            self.sasl_mask, self.sasl_counted, self.word = not self.keep_next, False, bytearray()
        j = data.find(b"\n", i)
        end = len(data) if j < 0 else j + 1
        space = data.find(b" ", i, end)
        stop = space if space >= 0 else end
        if self.sasl_mask and _mask_line_bytes(out, data, i, stop) and not self.sasl_counted:
            self.count += 1
            self.sasl_counted = True
        self.word += data[i:stop]
        if space >= 0:
            self.tag, self.word, self.state = bytes(self.word).strip(b"\r\n"), bytearray(), "command"
            self.sasl_mask, self.keep_next = None, False
            return space + 1
        if j >= 0:
            self.sasl_mask, self.keep_next = None, False
        return end

    def server_line(self, line: bytes) -> None:
        if self.state == "sasl" and line.startswith(self.tag + b" "):
            self.state, self.word = "tag", bytearray()


# HTTP -------------------------------------------------------------------------------------------

_AUTH_HEADERS = (b"authorization", b"proxy-authorization")
_COOKIE_HEADERS = (b"cookie", b"set-cookie")


def _header_secret(prefix: bytes) -> tuple[int, int] | None:
    colon = prefix.find(b":")
    if colon < 0:
        return None
    name = prefix[:colon].strip().lower()
    end = _content_end(prefix)
    value = colon + 1
    while value < end and prefix[value] in (0x20, 0x09):
        value += 1
    if name in _COOKIE_HEADERS:
        return (value, end)
    if name in _AUTH_HEADERS:
        space = prefix.find(b" ", value)
        return None if space < 0 else (space + 1, end)  # keep the scheme: Basic, Bearer, NTLM
    return None


class _HttpSide(_Lines):
    """One direction of HTTP/1.1: heads are lines, bodies skipped by length or chunk framing."""

    def __init__(self, owner: "_HttpRedactor", is_client: bool) -> None:
        super().__init__()
        self.owner, self.is_client = owner, is_client
        self.phase = "start"  # start | headers | chunk-size | chunk-end | trailer
        self.headers: dict[bytes, bytes] = {}
        self.first = b""
        self.to_close = False  # a response body without framing: everything up to the close

    def secret(self, prefix: bytes) -> tuple[int, int] | None:
        return _header_secret(prefix) if self.phase == "headers" else None

    def scan(self, data: bytes, i: int) -> int | None:
        return len(data) if self.to_close else None

    def line_done(self, line: bytes) -> None:
        content = line[:_content_end(line)]
        if self.phase == "start":
            if content:
                self.first, self.headers, self.phase = content, {}, "headers"
        elif self.phase == "headers":
            if content:
                name, _, value = content.partition(b":")
                self.headers[name.strip().lower()] = value.strip()
            else:
                self._head_done()
        elif self.phase == "chunk-size":
            size = content.split(b";")[0].strip()
            length = int(size, 16) if size and all(c in b"0123456789abcdefABCDEF" for c in size) else 0
            self.phase, self.skip = ("chunk-end", length) if length else ("trailer", 0)
        elif self.phase == "chunk-end":
            self.phase = "chunk-size"
        elif self.phase == "trailer" and not content:
            self.phase = "start"

    def _head_done(self) -> None:
        self.phase = "start"
        if self.is_client:
            self.owner.methods.append(self.first.split(b" ")[0].upper())
        else:
            parts = self.first.split(b" ")
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            if 100 <= status < 200:
                return  # an interim response: the real one follows
            method = self.owner.methods.popleft() if self.owner.methods else b""
            if method == b"HEAD" or status in (204, 304):
                return
        if b"chunked" in self.headers.get(b"transfer-encoding", b"").lower():
            self.phase = "chunk-size"
        elif self.headers.get(b"content-length", b"").isdigit():
            self.skip = int(self.headers[b"content-length"])
        elif not self.is_client:
            self.to_close = True


class _HttpRedactor:
    def __init__(self) -> None:
        self.methods: deque[bytes] = deque()
        self.sides = {Sender.CLIENT: _HttpSide(self, True), Sender.SERVER: _HttpSide(self, False)}

    def feed(self, sender: Sender, data: bytes) -> bytes:
        return self.sides[sender].feed(data)

    @property
    def count(self) -> int:
        return sum(side.count for side in self.sides.values())


# The session ------------------------------------------------------------------------------------


class Redactor:
    """One session's redaction, both directions, in the order the bytes travelled.

    ``protocol`` is a ``transcripts.format.Protocol`` value (imap, pop3, smtp, lmtp, http);
    ``count`` is how many secrets were masked so far (``Header.redacted``).
    """

    def __init__(self, protocol: str) -> None:
        self.protocol = str(getattr(protocol, "value", protocol))
        self._watch = _ReplyWatch()
        if self.protocol == "imap":
            self._client: object = _ImapClient()
        elif self.protocol == "pop3":
            self._client = _Pop3Client()
        elif self.protocol in ("smtp", "lmtp"):
            self._client = _SmtpClient()
        elif self.protocol == "http":
            self._http = _HttpRedactor()
        else:
            raise ValueError(f"no redaction rules for protocol {self.protocol!r}")

    @property
    def count(self) -> int:
        return self._http.count if self.protocol == "http" else self._client.count

    def client(self, data: bytes) -> bytes:
        return self.feed(Sender.CLIENT, data)

    def server(self, data: bytes) -> bytes:
        return self.feed(Sender.SERVER, data)

    def feed(self, sender: Sender, data: bytes) -> bytes:
        if self.protocol == "http":
            return self._http.feed(sender, data)
        if sender is Sender.CLIENT:
            return self._client.feed(data)
        if self._waiting():
            for line in self._watch.lines(data):
                self._server_line(line)
        return data  # servers of the line protocols send no secrets

    def _waiting(self) -> bool:
        """Whether the client side waits for a server reply (SASL's end, DATA's 354)."""
        client = self._client
        if isinstance(client, _ImapClient):
            waiting = client.state == "sasl"
        else:
            waiting = client.sasl or getattr(client, "data_pending", False)
        if not waiting:
            self._watch.line.clear()
        return waiting

    def _server_line(self, line: bytes) -> None:
        client = self._client
        if isinstance(client, _ImapClient):
            client.server_line(line)
        elif isinstance(client, _Pop3Client):
            if line.startswith((b"+OK", b"-ERR")):
                client.sasl = False
        elif line[3:4] != b"-":  # the last line of an SMTP reply
            code = line[:3]
            if client.sasl and code != b"334":
                client.sasl = False
            elif client.data_pending:
                client.data_pending = False
                if code == b"354":
                    client.begin_data()


def redact_transcript(transcript: Transcript) -> Transcript:
    """The transcript with every secret masked (an imported raw log, a hand-written one);
    ``header.redacted`` grows by what was masked here."""
    redactor = Redactor(transcript.header.protocol)
    events = [replace(e, data=redactor.feed(e.sender, e.data)) if isinstance(e, Chunk) else e
              for e in transcript.events]
    header = replace(transcript.header, redacted=transcript.header.redacted + redactor.count)
    return Transcript(header, events)
