"""The anonymiser: a customer's session or mailbox made shareable, sizes and structure kept.

``Anonymiser`` holds one run's pseudonyms (``transcripts.pseudonyms``), so every file given to one
run maps the same address, name or folder the same way. A transcript is anonymised side by side:
each side's chunks are joined into the stream the other side read, the stream is rewritten with
the protocol's framing in mind (``anon_imap``, ``anon_pop3``, ``anon_smtp``, ``anon_http``), and the
result is cut again at the original chunk boundaries, which stay valid because every rewrite keeps
its length. Messages go through ``anon_message`` wherever they appear (APPEND and FETCH literals,
RETR, DATA, EWS MimeContent, .eml / mbox / Maildir files: ``anon_files``).

Module map (all pure, bytes in and bytes out; none imports anything of quirkmail outside
``transcripts``):

    pseudonyms.py   seeded word → pseudonym table, kept words, the mapping file's content
    anon_text.py    free text, server prose, RFC 2047 words, quoted-printable / base64 / %XX through
    anon_markup.py  HTML, vCard / iCalendar, XML (EWS SOAP, WebDAV)
    anon_message.py RFC 5322 / MIME messages, header blocks, headerless bodies
    anon_imap.py, anon_pop3.py, anon_smtp.py, anon_http.py   one session's two streams
    anon_files.py   .eml, mbox, Maildir, transcripts on disk
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from transcripts import anon_http, anon_imap, anon_message, anon_pop3, anon_smtp, anon_text
from transcripts.format import Chunk, Protocol, Sender, Transcript
from transcripts.pseudonyms import Pseudonyms

_SESSIONS = {
    Protocol.IMAP: anon_imap,
    Protocol.POP3: anon_pop3,
    Protocol.SMTP: anon_smtp,
    Protocol.LMTP: anon_smtp,
    Protocol.HTTP: anon_http,
}


class AnonymiseError(ValueError):
    """An input that cannot be anonymised: names the input and the cause."""

    def __init__(self, source: str, cause: str) -> None:
        super().__init__(f"{source}: {cause}")
        self.source, self.cause = source, cause


class Anonymiser:
    """One run: the same seed and the same inputs give the same bytes out.

    ``seed=None`` draws a random seed: nobody can then test a guessed original against the output.
    A run that also rewrites server prose (which only loses names known from elsewhere) should see
    every input once before writing any: ``anon_files.learn`` then ``anon_files.write``.
    """

    def __init__(self, seed: int | str | None = None) -> None:
        self.seed = secrets.token_hex(16) if seed is None else seed
        self.pseudonyms = Pseudonyms(self.seed)

    def message(self, raw: bytes) -> bytes:
        return anon_message.message(self.pseudonyms, raw)

    def transcript(self, transcript: Transcript) -> Transcript:
        session = _SESSIONS[transcript.header.protocol]
        client = transcript.sent_by(Sender.CLIENT)
        server = transcript.sent_by(Sender.SERVER)
        masked = self.pseudonyms.masked
        new_client, new_server = session.session(self.pseudonyms, client, server)
        streams = {
            Sender.CLIENT: iter(_cut(new_client, transcript, Sender.CLIENT)),
            Sender.SERVER: iter(_cut(new_server, transcript, Sender.SERVER)),
        }
        events = [replace(e, data=next(streams[e.sender])) if isinstance(e, Chunk) else e for e in transcript.events]
        header = replace(
            transcript.header,
            server=self._server(transcript.header.server),
            label=anon_text.known(self.pseudonyms, transcript.header.label.encode()).decode("utf-8", "replace"),
            anonymised=True,
            redacted=transcript.header.redacted + self.pseudonyms.masked - masked,
            extra={key: self._known(value) for key, value in transcript.header.extra.items()},
        )
        return Transcript(header, events)

    def _known(self, value):
        """Header fields a writer added (an importer's source file names ...) lose known names."""
        if isinstance(value, str):
            return anon_text.known_words(self.pseudonyms, value.encode("utf-8", "surrogateescape")).decode(
                "utf-8", "surrogateescape")
        if isinstance(value, list):
            return [self._known(v) for v in value]
        return value

    def _server(self, server: str) -> str:
        host, colon, port = server.rpartition(":")
        if not colon or not port.isdigit():
            host, colon, port = server, "", ""
        if host.replace(".", "").isdigit() or host.startswith("["):
            return server  # an IP address says where the test ran, not who
        return self.pseudonyms.domain(host.encode()).decode("utf-8", "replace") + colon + port

    def mapping(self) -> dict:
        return self.pseudonyms.mapping()


def _cut(stream: bytes, transcript: Transcript, sender: Sender) -> list[bytes]:
    """``stream`` cut where the original chunks of ``sender`` were cut."""
    pieces, at = [], 0
    for chunk in transcript.chunks(sender):
        pieces.append(stream[at:at + len(chunk.data)])
        at += len(chunk.data)
    if at != len(stream):
        raise anon_text.LengthError(f"{sender.value} stream: {at} bytes became {len(stream)}")
    return pieces
