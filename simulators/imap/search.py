"""IMAP SEARCH (RFC 3501 §6.4.4): parse the search program, evaluate it over a session's view.

Pure: ``parse_search(args)`` turns the engine's tokens into a tree of ``SearchKey`` objects and
``evaluate(key, view)`` returns the 0-based indexes of matching messages. Tokens are what the
engine's tokenizer yields: an atom is ``str``, a quoted string or literal is ``bytes``, a
parenthesised list is a Python ``list``.

Choices (where RFC 3501 leaves room, or where Dovecot differs):

- SINCE/BEFORE/ON compare the calendar date of INTERNALDATE *in its own zone* (RFC 3501:
  "disregarding time and timezone"). Dovecot instead converts to the server's zone first, so a
  message stamped 23:30 -05:00 may count as the next day there; the store keeps the original
  zone, so ours is the deterministic reading.
- SENTBEFORE/SENTON/SENTSINCE use the Date header's calendar date in its own zone; a missing or
  unparseable Date matches none of them (so ``NOT SENTON …`` matches it). Dovecot dates such
  a message 1 Jan 1970 instead, so it matches every SENTBEFORE there (pinned by the peer test).
- String keys are case-insensitive substrings of RFC 2047-decoded header values (FROM, TO, CC,
  BCC, SUBJECT, HEADER), of the decoded text parts (BODY), or of those and every header, MIME
  part headers included (TEXT), as Dovecot searches. Attachments (non-text parts) are not
  searched. An empty string matches every message that has the header (HEADER "X-Foo" "").
- CHARSET may be UTF-8 or US-ASCII; anything else raises ``SearchSyntaxError`` whose
  ``badcharset`` names the supported ones, for a ``NO [BADCHARSET (US-ASCII UTF-8)]`` reply.
- RECENT: the store keeps no session state, so the caller may pass the session's recent UIDs
  (``evaluate(..., recent=...)``); without them an item is recent when its flags include
  ``\\Recent``. NEW = RECENT and not \\Seen, OLD = not RECENT.
- Also understood: OLDER/YOUNGER n (RFC 5032, seconds before ``now``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from simulators.imap import message
from simulators.store import MailItem

__all__ = ["SearchSyntaxError", "SearchKey", "Extensions", "parse_search", "evaluate", "SUPPORTED_CHARSETS"]

SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")


class SearchSyntaxError(ValueError):
    """A search program that cannot be parsed; the message names the key and the cause.

    ``badcharset`` is set (to the supported charsets) when the only problem is the CHARSET, so
    the engine can answer ``NO [BADCHARSET (...)]`` rather than BAD. ``reply`` is set when an
    extension key's provider has its own words for the refusal (Gmail: ``BAD Could not parse
    command``); the engine then answers exactly that.
    """

    def __init__(self, msg: str, *, badcharset: tuple[str, ...] | None = None, reply: str | None = None):
        super().__init__(msg)
        self.badcharset = badcharset
        self.reply = reply


@dataclass(frozen=True)
class _Context:
    """What a key needs besides the message itself."""

    seq: int  # 1-based sequence number
    count: int  # messages in the view (the value of "*" in a sequence set)
    max_uid: int  # "*" in a UID set
    now: datetime
    recent: Collection[int] | None  # UIDs that are \Recent in this session, when the caller knows


class SearchKey:
    """Base of the parsed search program's nodes."""

    def matches(self, item: MailItem, ctx: _Context) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class All(SearchKey):
    def matches(self, item: MailItem, ctx: _Context) -> bool:
        return True


@dataclass(frozen=True)
class And(SearchKey):
    keys: tuple[SearchKey, ...]

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        return all(k.matches(item, ctx) for k in self.keys)


@dataclass(frozen=True)
class Or(SearchKey):
    left: SearchKey
    right: SearchKey

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        return self.left.matches(item, ctx) or self.right.matches(item, ctx)


@dataclass(frozen=True)
class Not(SearchKey):
    key: SearchKey

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        return not self.key.matches(item, ctx)


@dataclass(frozen=True)
class Flag(SearchKey):
    """A system flag or keyword, present or absent (flags compare case-insensitively)."""

    flag: str
    present: bool = True

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        wanted = self.flag.lower()
        return any(f.lower() == wanted for f in item.flags) == self.present


@dataclass(frozen=True)
class Header(SearchKey):
    field: str
    text: str

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        values = message.header_values(item.raw, self.field)
        needle = self.text.casefold()
        return any(needle in v.casefold() for v in values)


@dataclass(frozen=True)
class Text(SearchKey):
    """BODY (decoded text parts only) or TEXT (those and every header, MIME headers included)."""

    text: str
    with_header: bool

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        haystack = message.full_text(item.raw) if self.with_header else message.body_text(item.raw)
        return self.text.casefold() in haystack.casefold()


@dataclass(frozen=True)
class DateKey(SearchKey):
    """BEFORE/ON/SINCE on INTERNALDATE, or on the Date header (``sent``)."""

    op: str  # "BEFORE" | "ON" | "SINCE"
    day: date
    sent: bool = False

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        when = message.sent_date(item.raw) if self.sent else item.internaldate
        if when is None:
            return False
        d = when.date()  # the calendar date in the timestamp's own zone
        if self.op == "BEFORE":
            return d < self.day
        if self.op == "ON":
            return d == self.day
        return d >= self.day


@dataclass(frozen=True)
class Age(SearchKey):
    """OLDER/YOUNGER n (RFC 5032): INTERNALDATE more / at most n seconds before now."""

    seconds: int
    older: bool

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        age = ctx.now - item.internaldate
        return age > timedelta(seconds=self.seconds) if self.older else age <= timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Size(SearchKey):
    larger: bool
    n: int

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        return item.size > self.n if self.larger else item.size < self.n


# One range of a sequence set; None stands for "*".
Range = tuple[int | None, int | None]


@dataclass(frozen=True)
class NumberSet(SearchKey):
    """A message sequence set, or a UID set (``uid=True``)."""

    ranges: tuple[Range, ...]
    uid: bool = False

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        if self.uid:
            number, star = item.uid, ctx.max_uid
        else:
            number, star = ctx.seq, ctx.count
        for lo, hi in self.ranges:
            a = star if lo is None else lo
            b = star if hi is None else hi
            if min(a, b) <= number <= max(a, b):
                return True
        return False


@dataclass(frozen=True)
class Recent(SearchKey):
    """RECENT / NEW / OLD: from the session's recent UIDs when given, else a ``\\Recent`` flag."""

    kind: str  # "RECENT" | "NEW" | "OLD"

    def matches(self, item: MailItem, ctx: _Context) -> bool:
        if ctx.recent is not None:
            recent = item.uid in ctx.recent
        else:
            recent = any(f.lower() == "\\recent" for f in item.flags)
        if self.kind == "RECENT":
            return recent
        if self.kind == "OLD":
            return not recent
        return recent and not any(f.lower() == "\\seen" for f in item.flags)


# ------------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------------

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = {"FROM": "From", "TO": "To", "CC": "Cc", "BCC": "Bcc", "SUBJECT": "Subject"}
_DATE_KEYS = {
    "BEFORE": ("BEFORE", False),
    "ON": ("ON", False),
    "SINCE": ("SINCE", False),
    "SENTBEFORE": ("BEFORE", True),
    "SENTON": ("ON", True),
    "SENTSINCE": ("SINCE", True),
}
_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
_DATE_RE = re.compile(r'"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?')
_SET_RE = re.compile(r"(?:\d+|\*)(?::(?:\d+|\*))?(?:,(?:\d+|\*)(?::(?:\d+|\*))?)*")
_ATOM_FLAG_RE = re.compile(r"[^\s(){%*\"\\\]\x00-\x1f\x7f]+")

Token = str | bytes | list
# Extension search keys (X-GM-RAW ...): key name → builder from the key's one string argument.
Extensions = Mapping[str, Callable[[str], SearchKey]]


class _Parser:
    def __init__(self, tokens: Sequence[Token], charset: str, extensions: Extensions):
        self.tokens = list(tokens)
        self.pos = 0
        self.charset = charset
        self.extensions = extensions

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def next(self, what: str) -> Token:
        if self.done():
            raise SearchSyntaxError(f"{what}: missing argument")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def astring(self, key: str) -> str:
        token = self.next(key)
        if isinstance(token, list):
            raise SearchSyntaxError(f"{key}: expected a string, got a list")
        if isinstance(token, str):
            return token
        try:
            return token.decode(self.charset)
        except UnicodeDecodeError:
            raise SearchSyntaxError(f"{key}: string is not valid {self.charset}") from None

    def atom(self, key: str) -> str:
        token = self.next(key)
        if isinstance(token, list):
            raise SearchSyntaxError(f"{key}: expected an atom, got a list")
        return token if isinstance(token, str) else token.decode("ascii", "replace")

    def number(self, key: str) -> int:
        text = self.atom(key)
        if not text.isdigit() or not text.isascii():
            raise SearchSyntaxError(f"{key}: {text!r} is not a number")
        return int(text)

    def day(self, key: str) -> date:
        text = self.atom(key)
        m = _DATE_RE.fullmatch(text)
        month = _MONTHS.get(m.group(2).upper()) if m else None
        if not m or month is None:
            raise SearchSyntaxError(f"{key}: {text!r} is not a date like 1-Feb-1994")
        try:
            return date(int(m.group(3)), month, int(m.group(1)))
        except ValueError:
            raise SearchSyntaxError(f"{key}: {text!r} is not a real date") from None

    def key(self) -> SearchKey:
        token = self.next("search key")
        if isinstance(token, list):
            if not token:
                raise SearchSyntaxError("empty parenthesised search key list")
            inner = _Parser(token, self.charset, self.extensions)
            keys = inner.keys()
            return keys[0] if len(keys) == 1 else And(tuple(keys))
        if isinstance(token, bytes):
            raise SearchSyntaxError(f"unexpected string {token[:40]!r} where a search key was expected")
        name = token.upper()
        if name in self.extensions:
            return self.extensions[name](self.astring(name))
        if name in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[name]
            return Flag(flag, present)
        if name in _HEADER_KEYS:
            return Header(_HEADER_KEYS[name], self.astring(name))
        if name in _DATE_KEYS:
            op, sent = _DATE_KEYS[name]
            return DateKey(op, self.day(name), sent)
        if name == "ALL":
            return All()
        if name in ("RECENT", "NEW", "OLD"):
            return Recent(name)
        if name in ("KEYWORD", "UNKEYWORD"):
            flag = self.atom(name)
            if not _ATOM_FLAG_RE.fullmatch(flag):
                raise SearchSyntaxError(f"{name}: {flag!r} is not a valid keyword")
            return Flag(flag, name == "KEYWORD")
        if name == "HEADER":
            field = self.astring(name)
            if not field or not all(33 <= ord(c) <= 126 and c != ":" for c in field):
                raise SearchSyntaxError(f"HEADER: {field!r} is not a header field name")
            return Header(field, self.astring(name))
        if name in ("BODY", "TEXT"):
            return Text(self.astring(name), with_header=name == "TEXT")
        if name in ("LARGER", "SMALLER"):
            return Size(name == "LARGER", self.number(name))
        if name in ("OLDER", "YOUNGER"):
            seconds = self.number(name)
            if seconds == 0:
                raise SearchSyntaxError(f"{name}: interval must be at least 1 second")
            return Age(seconds, older=name == "OLDER")
        if name == "NOT":
            return Not(self.key())
        if name == "OR":
            return Or(self.key(), self.key())
        if name == "UID":
            return NumberSet(_sequence_set(self.atom(name), "UID"), uid=True)
        if _SET_RE.fullmatch(token):
            return NumberSet(_sequence_set(token, "sequence set"))
        raise SearchSyntaxError(f"unknown search key {token!r}")

    def keys(self) -> list[SearchKey]:
        keys = [self.key()]
        while not self.done():
            keys.append(self.key())
        return keys


def _sequence_set(text: str, what: str) -> tuple[Range, ...]:
    if not _SET_RE.fullmatch(text):
        raise SearchSyntaxError(f"{what}: {text!r} is not a sequence set like 1:3,5,7:*")
    ranges: list[Range] = []
    for item in text.split(","):
        lo, _, hi = item.partition(":")
        bounds = [None if b == "*" else int(b) for b in (lo, hi or lo)]
        if 0 in bounds:
            raise SearchSyntaxError(f"{what}: {text!r} contains 0 (numbers start at 1)")
        ranges.append((bounds[0], bounds[1]))
    return tuple(ranges)


def _charset(args: list, charset: str | None) -> tuple[list, str]:
    # Accept the CHARSET prefix inside ``args`` too, so the engine may pass SEARCH's args whole.
    if args and isinstance(args[0], str) and args[0].upper() == "CHARSET":
        if len(args) < 2 or isinstance(args[1], list):
            raise SearchSyntaxError("CHARSET: missing charset name")
        given = args[1] if isinstance(args[1], str) else args[1].decode("ascii", "replace")
        if charset is not None and charset.upper() != given.upper():
            raise SearchSyntaxError(f"CHARSET given twice ({charset!r} and {given!r})")
        charset, args = given, args[2:]
    name = (charset or "US-ASCII").upper()
    if name not in SUPPORTED_CHARSETS:
        raise SearchSyntaxError(f"unsupported charset {charset!r}", badcharset=SUPPORTED_CHARSETS)
    # US-ASCII strings are decoded as UTF-8 too: clients send 8-bit without a CHARSET anyway.
    return args, "utf-8"


def parse_search(args: list, *, charset: str | None = None, extensions: Extensions | None = None) -> SearchKey:
    """Parse a SEARCH program (the tokens after ``SEARCH``/``UID SEARCH``) into a key tree.

    Several top-level keys are ANDed. ``extensions`` adds keys that take one string (a quirk's,
    e.g. Gmail's X-GM-RAW). Raises ``SearchSyntaxError`` naming the bad key.
    """
    args, codec = _charset(list(args), charset)
    if not args:
        raise SearchSyntaxError("no search criteria")
    keys = _Parser(args, codec, extensions or {}).keys()
    return keys[0] if len(keys) == 1 else And(tuple(keys))


def evaluate(
    key: SearchKey,
    view: list[MailItem],
    *,
    now: datetime | None = None,
    recent: Collection[int] | None = None,
) -> list[int]:
    """The 0-based indexes (ascending) of the messages in ``view`` that match ``key``.

    ``view`` is the session's messages in sequence order; ``now`` is for OLDER/YOUNGER;
    ``recent`` (optional) is the set of UIDs this session sees as \\Recent — without it RECENT,
    NEW and OLD look for a ``\\Recent`` flag on the item.
    """
    now = now or datetime.now(timezone.utc)
    max_uid = max((m.uid for m in view), default=0)
    count = len(view)
    return [
        i for i, item in enumerate(view) if key.matches(item, _Context(i + 1, count, max_uid, now, recent))
    ]
