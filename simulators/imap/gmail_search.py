"""Gmail's search language for ``SEARCH X-GM-RAW "…"``: parse a query, test a message against it.

Pure: ``parse_query(text)`` gives a tree of ``Term`` nodes, ``Term.test(item, facts)`` tells
whether one message matches; ``facts`` carries what the message alone cannot say (its labels as
Gmail names them, and the clock for ``older_than``/``newer_than``). The IMAP side
(``simulators.imap.gmail``) binds the labels and turns ``GmailSearchError`` into Gmail's reply
``BAD Could not parse command`` (its wording for any command it cannot parse: gmvault#156,
node-imap#739, imapflow#128).

The subset understood (Gmail's own operator list, support.google.com/mail/answer/7190):

- ``from:`` ``to:`` ``cc:`` ``bcc:`` ``subject:`` ``rfc822msgid:`` — case-insensitive substring of
  the decoded header (Gmail matches words; a substring is a superset of that);
- ``in:inbox|sent|drafts|trash|spam|starred|anywhere|<label>``, ``label:<name>`` — by label;
  label names compare case-insensitively with blanks, ``/`` and ``-`` alike (``label:my-work``
  finds ``My Work``, ``label:parent-child`` finds ``Parent/Child``), as Gmail;
- ``is:unread|read|starred``, ``has:attachment``;
- ``after:``/``newer:`` (on or after), ``before:``/``older:`` (before) a date ``YYYY/MM/DD`` (or
  ``YYYY-MM-DD``), on INTERNALDATE's calendar date in its own zone (as ``simulators.imap.search``);
- ``older_than:``/``newer_than:`` ``<n>d|m|y`` (a month is 30 days, a year 365) before ``now``;
- ``larger:``/``smaller:`` ``<n>[K|M]``;
- bare words and ``"quoted phrases"`` — substrings of every header and the text parts;
- ``-term`` (not), ``a OR b``, ``{a b}`` (any of), ``( … )`` grouping; terms side by side AND.

An ``word:value`` whose operator is not one of these is searched as a bare word, as Gmail does.
Errors (``GmailSearchError``): an unbalanced quote, parenthesis or brace, an operator without a
value, an unknown ``in:``/``is:``/``has:`` value, a date or size that does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property

from simulators.imap import message
from simulators.store import MailItem

__all__ = ["GmailSearchError", "Facts", "Term", "parse_query", "label_key"]


class GmailSearchError(ValueError):
    """A query that cannot be parsed: the message names the query, the place and the cause."""


class Facts:
    """What a test needs besides the message: its labels (X-GM-LABELS names, system ones with
    their backslash, user ones decoded from modified UTF-7) and the current time. The labels
    come from a callable, asked at most once and only when a label term needs them (finding a
    message's labels means looking through every folder)."""

    def __init__(self, labels: Callable[[], Collection[str]], now: datetime):
        self._labels = labels
        self.now = now

    @cached_property
    def labels(self) -> frozenset[str]:
        return frozenset(self._labels())


class Term:
    """A node of a parsed query."""

    def test(self, item: MailItem, facts: Facts) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class AllOf(Term):
    terms: tuple[Term, ...]

    def test(self, item, facts):
        return all(t.test(item, facts) for t in self.terms)


@dataclass(frozen=True)
class AnyOf(Term):
    terms: tuple[Term, ...]

    def test(self, item, facts):
        return any(t.test(item, facts) for t in self.terms)


@dataclass(frozen=True)
class Negated(Term):
    term: Term

    def test(self, item, facts):
        return not self.term.test(item, facts)


@dataclass(frozen=True)
class HeaderHas(Term):
    field: str
    text: str

    def test(self, item, facts):
        needle = self.text.casefold()
        return any(needle in v.casefold() for v in message.header_values(item.raw, self.field))


@dataclass(frozen=True)
class TextHas(Term):
    text: str

    def test(self, item, facts):
        return self.text.casefold() in message.full_text(item.raw).casefold()


@dataclass(frozen=True)
class HasLabel(Term):
    key: str  # label_key() of the wanted label

    def test(self, item, facts):
        return any(label_key(label) == self.key for label in facts.labels)


@dataclass(frozen=True)
class Anywhere(Term):
    def test(self, item, facts):
        return True


@dataclass(frozen=True)
class FlagIs(Term):
    flag: str
    present: bool = True

    def test(self, item, facts):
        return (self.flag in item.flags) == self.present


@dataclass(frozen=True)
class HasAttachment(Term):
    def test(self, item, facts):
        return _has_attachment(message.parse(item.raw))


@dataclass(frozen=True)
class DayBound(Term):
    day: date
    before: bool  # True: strictly before the day; False: on or after it

    def test(self, item, facts):
        d = item.internaldate.date()
        return d < self.day if self.before else d >= self.day


@dataclass(frozen=True)
class AgeBound(Term):
    age: timedelta
    older: bool

    def test(self, item, facts):
        age = facts.now - item.internaldate
        return age > self.age if self.older else age <= self.age


@dataclass(frozen=True)
class SizeBound(Term):
    size: int
    larger: bool

    def test(self, item, facts):
        return item.size > self.size if self.larger else item.size < self.size


def label_key(name: str) -> str:
    """A label name as Gmail's search compares it: case-folded, blanks/``/``/``-`` alike."""
    return re.sub(r"[\s/\-]+", "-", name.strip().casefold())


# System labels by the names ``in:`` and ``label:`` accept for them.
_IN = {
    "inbox": "\\Inbox", "sent": "\\Sent", "drafts": "\\Draft", "draft": "\\Draft", "trash": "\\Trash",
    "spam": "\\Spam", "starred": "\\Starred", "important": "\\Important",
}
_HEADERS = {"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "subject": "Subject", "rfc822msgid": "Message-ID"}
_AGE_UNITS = {"d": 1, "m": 30, "y": 365}
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}
_DATE = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})")
# A token: a quoted phrase, a bracket, or a run of anything else (an operator's quoted value
# stays with its operator: subject:"two words").
_TOKEN = re.compile(r'"[^"]*"|[(){}]|[^\s(){}"]+(?:"[^"]*")?')


def _is(value: str) -> Term:
    if value == "unread":
        return FlagIs("\\Seen", present=False)
    if value == "read":
        return FlagIs("\\Seen")
    if value == "starred":
        return AnyOf((FlagIs("\\Flagged"), HasLabel(label_key("\\Starred"))))
    raise ValueError(f"is:{value} is not one of unread, read, starred")


def _in(value: str) -> Term:
    if value == "anywhere":
        return Anywhere()
    return HasLabel(label_key(_IN.get(value, value)))


def _has(value: str) -> Term:
    if value == "attachment":
        return HasAttachment()
    raise ValueError(f"has:{value} is not supported (only has:attachment)")


def _day(value: str) -> date:
    m = _DATE.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is not a date like 2024/03/01")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None


def _age(value: str) -> timedelta:
    m = re.fullmatch(r"(\d+)([dmy])", value)
    if not m:
        raise ValueError(f"{value!r} is not an age like 3d, 2m or 1y")
    return timedelta(days=int(m.group(1)) * _AGE_UNITS[m.group(2)])


def _size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([km]?)b?", value)
    if not m:
        raise ValueError(f"{value!r} is not a size like 10000, 20K or 5M")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


# operator → builder from its value (as written, quotes removed). Unknown operators are words.
_OPERATORS: dict[str, Callable[[str], Term]] = {
    **{op: (lambda field: lambda v: HeaderHas(field, v))(field) for op, field in _HEADERS.items()},
    "in": lambda v: _in(v.lower()),
    "label": lambda v: HasLabel(label_key(_IN.get(v.lower(), v))),
    "is": lambda v: _is(v.lower()),
    "has": lambda v: _has(v.lower()),
    "after": lambda v: DayBound(_day(v), before=False),
    "newer": lambda v: DayBound(_day(v), before=False),
    "before": lambda v: DayBound(_day(v), before=True),
    "older": lambda v: DayBound(_day(v), before=True),
    "older_than": lambda v: AgeBound(_age(v.lower()), older=True),
    "newer_than": lambda v: AgeBound(_age(v.lower()), older=False),
    "larger": lambda v: SizeBound(_size(v.lower()), larger=True),
    "smaller": lambda v: SizeBound(_size(v.lower()), larger=False),
}
_CLOSING = {"(": ")", "{": "}"}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        if text.count('"') % 2:
            raise self.error("unbalanced quote")
        self.tokens = _TOKEN.findall(text)
        self.pos = 0

    def error(self, cause: str) -> GmailSearchError:
        return GmailSearchError(f"X-GM-RAW {self.text!r}: {cause}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def terms(self, closing: str | None) -> list[Term]:
        """Terms up to ``closing`` (or the end), each possibly ``a OR b OR c``."""
        out: list[Term] = []
        while (token := self.peek()) is not None and token != closing:
            if token in (")", "}"):
                raise self.error(f"unbalanced {token!r}")
            if token == "OR":
                raise self.error("OR without a term before it")
            choices = [self.unary()]
            while self.peek() == "OR":
                self.take()
                if self.peek() in (None, ")", "}", "OR"):
                    raise self.error("OR without a term after it")
                choices.append(self.unary())
            out.append(choices[0] if len(choices) == 1 else AnyOf(tuple(choices)))
        if closing is not None:
            if self.peek() != closing:
                raise self.error(f"missing {closing!r}")
            self.take()
        return out

    def unary(self) -> Term:
        token = self.take()
        if token in _CLOSING:
            inner = self.terms(_CLOSING[token])
            if not inner:
                raise self.error(f"empty {token}{_CLOSING[token]}")
            return (AllOf if token == "(" else AnyOf)(tuple(inner))
        if token.startswith("-") and len(token) > 1:
            self.tokens[self.pos - 1] = token[1:]
            self.pos -= 1
            return Negated(self.unary())
        if token == "-":  # -( … ) / -{ … }: the tokenizer splits the bracket off
            if self.peek() not in _CLOSING:
                raise self.error("'-' without a term after it")
            return Negated(self.unary())
        if token.startswith('"'):
            return TextHas(token[1:-1])
        operator, colon, value = token.partition(":")
        build = _OPERATORS.get(operator.lower()) if colon else None
        if build is None:
            return TextHas(token)
        if value.startswith('"'):
            value = value[1:-1]
        if not value:
            raise self.error(f"{operator}: has no value")
        try:
            return build(value)
        except ValueError as exc:
            raise self.error(str(exc)) from None


def parse_query(text: str) -> Term:
    """Parse a Gmail search query; raises ``GmailSearchError`` naming the query and the cause."""
    parser = _Parser(text)
    terms = parser.terms(None)
    if not terms:
        raise parser.error("empty query")
    return terms[0] if len(terms) == 1 else AllOf(tuple(terms))


def _has_attachment(part: message.Part) -> bool:
    if part.multipart:
        return any(_has_attachment(c) for c in part.children)
    disposition = part.content(b"Content-Disposition")
    if disposition is not None and disposition.value.strip().lower().startswith(b"attachment"):
        return True
    return part.ctype is not None and part.ctype.lower() not in (b"text", b"multipart")
