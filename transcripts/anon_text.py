"""Length-keeping rewrites of text and of the encodings text hides in (pure: bytes in, bytes out).

Every function here returns exactly as many bytes as it was given, with every byte that is not
part of a word (spaces, punctuation, CR, LF, NUL, ``=`` soft breaks, base64 line ends) where it was.
Encodings are rewritten *through*: the content is decoded unit by unit (a ``=C3`` is one unit, a
literal ``a`` another), the decoded bytes are rewritten, and each unit is written back in its own
form, so a quoted-printable line keeps its length and its soft breaks, and a base64 body its line
layout, while the decoded content keeps its size too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from transcripts.pseudonyms import Pseudonyms

Rewrite = Callable[[bytes], bytes]

_ADDRESS = re.compile(rb"[A-Za-z0-9\x80-\xff._%+=-]+@[A-Za-z0-9\x80-\xff-]+(?:\.[A-Za-z0-9\x80-\xff-]+)+")
_HOST = re.compile(rb"(?<![\w.@-])(?:[A-Za-z0-9\x80-\xff-]+\.)+[a-z]{2,6}\b(?![.@-]?\w)")
_WORDISH = re.compile(rb"(?:[A-Za-z0-9]|[\x80-\xff])+")
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
QP_ESCAPE = re.compile(rb"=\r?\n|=[0-9A-Fa-f]{2}")
PCT_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
_B64_CHARS = re.compile(rb"[A-Za-z0-9+/=]")


class LengthError(AssertionError):
    """A rewrite changed a length: a bug in the anonymiser, never the input's fault."""


def same_length(original: bytes, out: bytes, what: str) -> bytes:
    if len(out) != len(original):
        raise LengthError(f"{what}: {len(original)} bytes became {len(out)}")
    return out


# Free text -------------------------------------------------------------------------------------


def text(p: Pseudonyms, data: bytes, *, keep8bit: bool = False, identity: bool = False,
         keep: frozenset[str] = frozenset()) -> bytes:
    """Addresses and host names (kept consistent with headers and ENVELOPE), then every word."""

    def one(m: re.Match) -> bytes:
        token = m[0]
        if m.lastgroup == "address":
            return p.address(token, keep8bit=keep8bit)
        if m.lastgroup == "host":
            return p.domain(token, keep8bit=keep8bit)
        return p.word_bytes(token, keep8bit=keep8bit, identity=identity, keep=keep)

    return same_length(data, _TOKENS.sub(one, data), "text")


_TOKENS = re.compile(
    rb"(?P<address>" + _ADDRESS.pattern + rb")|(?P<host>" + _HOST.pattern + rb")|(?P<word>" + _WORDISH.pattern + rb")"
)


def known(p: Pseudonyms, data: bytes) -> bytes:
    """Server prose (``NO [TRYCREATE] Mailbox doesn't exist: Work``): only addresses, host names
    and words already known as somebody's or some folder's; the rest is evidence and stays."""

    def one(m: re.Match) -> bytes:
        token = m[0]
        if m.lastgroup == "address":
            return p.address(token)
        if m.lastgroup == "host" and p.is_tld(token.rpartition(b".")[2]):
            return p.domain(token)
        return _WORDISH.sub(known_word, token)  # a word, or a file name such as "imapsync.log"

    known_word = _known_word(p)
    return same_length(data, _TOKENS.sub(one, data), "reply text")


def known_words(p: Pseudonyms, data: bytes) -> bytes:
    """File names and paths: only words known as somebody's or some folder's (no host guessing:
    ``20261122-194809.2411.1.in`` is a rawlog, not a host in India)."""
    return same_length(data, _WORDISH.sub(_known_word(p), data), "file name")


def _known_word(p: Pseudonyms) -> Callable[[re.Match], bytes]:
    def one(m: re.Match) -> bytes:
        word = m[0].decode("utf-8", "surrogateescape")
        return p.word_bytes(m[0], keep8bit=True) if p.known(word) or not m[0].isascii() else m[0]

    return one


def header_text(p: Pseudonyms, data: bytes, *, identity: bool = False, keep: frozenset[str] = frozenset()) -> bytes:
    """An unstructured or address header value: RFC 2047 encoded-words rewritten through their
    encoding (to ASCII), raw 8-bit text kept 8-bit (the ``8bit-headers`` quirk stays)."""
    out = bytearray()
    last = 0
    for m in _ENCODED_WORD.finditer(data):
        out += text(p, data[last:m.start()], keep8bit=True, identity=identity, keep=keep)
        payload = m[3]
        inner: Rewrite = lambda b: text(p, b, identity=identity, keep=keep)  # noqa: E731
        if m[2] in b"Bb":
            payload = through_base64(payload, inner) or payload
        else:
            payload = through_units(payload, QP_ESCAPE, inner, underscore=True)
        out += data[m.start():m.start(3)] + payload + b"?="
        last = m.end()
    out += text(p, data[last:], keep8bit=True, identity=identity, keep=keep)
    return same_length(data, bytes(out), "header text")


# Through an encoding ---------------------------------------------------------------------------


def through_units(data: bytes, escape: re.Pattern, rewrite: Rewrite, *, underscore: bool = False) -> bytes:
    """Quoted-printable (``=XX``) or percent-encoded (``%XX``) text, rewritten as decoded bytes.

    ``escape`` finds the escapes (``QP_ESCAPE``, ``PCT_ESCAPE``); a soft line break (``=`` CRLF)
    is layout, not content. ``underscore``: RFC 2047 Q, where ``_`` is a space. Runs of literal
    bytes between escapes are taken whole (a body is mostly literal).
    """
    pieces: list[bytes] = []  # decoded content, piece by piece: a literal run or one escaped byte
    kinds: list[bytes] = []  # b"" for a literal run, else the escape (a soft line break decodes to nothing)
    last = 0
    space = (lambda run: run.replace(b"_", b" ")) if underscore else (lambda run: run)  # noqa: E731
    for m in escape.finditer(data):
        if m.start() > last:
            pieces.append(space(data[last:m.start()]))
            kinds.append(b"")
        token = m[0]
        if token[1:2] in (b"\r", b"\n"):
            pieces.append(b"")
            kinds.append(token)
        else:
            pieces.append(bytes([int(token[1:], 16)]))
            kinds.append(token)
        last = m.end()
    if last < len(data):
        pieces.append(space(data[last:]))
        kinds.append(b"")
    new = rewrite(b"".join(pieces))
    out, at = bytearray(), 0
    for piece, kind in zip(pieces, kinds):
        chunk = new[at:at + len(piece)]
        at += len(piece)
        if not kind:
            out += chunk.replace(b" ", b"_") if underscore else chunk  # spaces are not words: still in place
        elif not piece:
            out += kind  # a soft line break
        else:  # an escaped byte stays escaped, in the original's hex case
            hexed = b"%02X" % chunk[0] if not kind[1:].islower() else b"%02x" % chunk[0]
            out += kind[:1] + hexed
    return same_length(data, bytes(out), "encoded text")


def through_base64(data: bytes, rewrite: Rewrite | None) -> bytes | None:
    """Base64 with its line layout kept: decoded, rewritten (``None``: the same size of random-
    looking bytes is up to the caller's ``rewrite``), encoded into the same character positions.
    None when it is not valid base64 (the caller scrambles it instead)."""
    lines = _B64_LINE.findall(data)
    if all(_B64_ONLY.fullmatch(content) for content, _ in lines):  # the usual layout: one run per line
        chars = b"".join(content for content, _ in lines)
        encoded = _rewrite_base64(chars, rewrite)
        if encoded is None:
            return None
        out, at = bytearray(), 0
        for content, end in lines:
            out += encoded[at:at + len(content)] + end
            at += len(content)
        return bytes(out)
    positions = [m.start() for m in _B64_CHARS.finditer(data)]  # spaces or junk inside lines
    encoded = _rewrite_base64(bytes(data[i] for i in positions), rewrite)
    if encoded is None:
        return None
    out = bytearray(data)
    for i, c in zip(positions, encoded):
        out[i] = c
    return bytes(out)


_B64_LINE = re.compile(rb"([^\r\n]*)(\r\n|\n|\r|$)")  # (content, line end); a last empty match adds nothing
_B64_ONLY = re.compile(rb"[A-Za-z0-9+/=]*")


def _rewrite_base64(chars: bytes, rewrite: Rewrite | None) -> bytes | None:
    if not chars or rewrite is None:
        return chars
    try:
        decoded = base64.b64decode(chars, validate=True)
    except (binascii.Error, ValueError):
        return None
    encoded = base64.b64encode(rewrite(decoded))
    return encoded if len(encoded) == len(chars) else None  # unpadded or over-padded: not ours to re-lay


def scramble_base64(p: Pseudonyms, data: bytes) -> bytes:
    """Broken base64 (``ews-mime-conversion-failed``): each base64 character replaced, ``=`` and
    layout kept, so the breakage stays where it was and the content is gone."""
    noise = p.random_bytes(len(data), data)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return bytes(alphabet[n % 64] if c in alphabet else c for c, n in zip(data, noise))


def binary_base64(p: Pseudonyms, data: bytes) -> bytes:
    """An attachment's base64: random content of the decoded size, in the original's line layout."""
    out = through_base64(data, lambda d: p.random_bytes(len(d), d))
    return out if out is not None else scramble_base64(p, data)


def without(data: bytes, layout: re.Pattern, rewrite: Rewrite) -> bytes:
    """Rewrite ``data`` as if the ``layout`` matches (folds, dot-stuffing, chunk framing, XML
    entities) were not there, then put them back where they were."""
    pieces, kept, last = [], [], 0
    for m in layout.finditer(data):
        pieces.append(data[last:m.start()])
        kept.append(m[0])
        last = m.end()
    pieces.append(data[last:])
    new = rewrite(b"".join(pieces))
    out, at = bytearray(), 0
    for piece, k in zip(pieces, kept + [b""]):
        out += new[at:at + len(piece)] + k
        at += len(piece)
    return same_length(data, bytes(out), "text around layout")
