"""FETCH responses: one message's data items rendered as bytes, and the dates IMAP uses.

BODY[] and RFC822.SIZE come straight from the stored bytes (no parsing), so pulling a large
folder costs one small header per message plus the message itself. ENVELOPE, BODYSTRUCTURE and
sections other than the whole message are derived by ``simulators.imap.message``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from simulators.imap.syntax import LARGE_LITERAL, FetchAtt, ImapSyntaxError, literal, literal_pieces
from simulators.store import MailItem

# Dovecot's order for system flags; \Recent is per session, keywords follow.
_FLAG_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_TIME = re.compile(r"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


def format_flags(flags: set[str] | frozenset[str], recent: bool = False) -> bytes:
    ordered = [f for f in _FLAG_ORDER if f in flags]
    if recent:
        ordered.append("\\Recent")
    # Then system-looking flags a source server kept (\\Indexed, \\FORWARDED: imapsync FAQ.Flags), keywords.
    ordered += sorted(f for f in flags if f.startswith("\\") and f not in _FLAG_ORDER and f != "\\Recent")
    ordered += sorted(f for f in flags if not f.startswith("\\"))
    return ("(" + " ".join(ordered) + ")").encode("utf-8", "surrogateescape")


def format_internaldate(when: datetime) -> bytes:
    """``"dd-Mon-yyyy hh:mm:ss +zzzz"`` in the item's own zone."""
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return (
        f'"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} '
        f'{when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{hh:02d}{mm:02d}"'
    ).encode()


def looks_like_date_time(value) -> bool:
    return isinstance(value, bytes) and len(value) < 40 and _DATE_TIME.match(value.decode("latin-1")) is not None


def parse_date_time(value: bytes | str) -> datetime:
    """APPEND's date-time argument → aware datetime; ImapSyntaxError when malformed."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    m = _DATE_TIME.match(text)
    if m is None or m.group(2).title() not in _MONTHS:
        raise ImapSyntaxError(f"Invalid date-time: {text}")
    day, mon, year, hh, mi, ss, sign, zh, zm = m.groups()
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
    try:
        return datetime(
            int(year), _MONTHS.index(mon.title()) + 1, int(day), int(hh), int(mi), int(ss),
            tzinfo=timezone(offset),
        )
    except ValueError:
        raise ImapSyntaxError(f"Invalid date-time: {text}") from None


def streamable(atts: list[FetchAtt]) -> bool:
    """Items that cannot fail halfway (no MIME parsing), so the reply may be streamed."""
    return all(
        a.name in _FIRST or a.name == "RFC822" or (a.section and not a.part and a.text is None)
        for a in atts
    )


def sets_seen(atts: list[FetchAtt]) -> bool:
    """Does fetching these items mark the message \\Seen (RFC 3501 §6.4.5)?"""
    return any(
        (a.section and not a.peek) or a.name in ("RFC822", "RFC822.TEXT") for a in atts
    )


# Dovecot writes these index-level items first, in the order asked, then everything else in the
# order asked (``(BODY[TEXT] RFC822.SIZE)`` comes back as ``(RFC822.SIZE ... BODY[TEXT] ...)``).
_FIRST = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE"})


def reply_order(atts: list[FetchAtt]) -> list[FetchAtt]:
    return [a for a in atts if a.name in _FIRST] + [a for a in atts if a.name not in _FIRST]


def render(
    seq: int, item: MailItem, atts: list[FetchAtt], *, uid_first: bool, recent: bool, add_flags: bool,
    extensions: dict[str, bytes] | None = None,
) -> bytes:
    """``* seq FETCH (...)`` for one message, ``atts`` in ``reply_order``.

    ``add_flags``: \\Seen was just set and FLAGS was not asked for; Dovecot then shows FLAGS
    after the index-level items. ``extensions``: values of extension items (X-GM-MSGID ...).
    """
    return b"".join(render_pieces(seq, item, atts, uid_first=uid_first, recent=recent, add_flags=add_flags,
                                  extensions=extensions))


def render_pieces(
    seq: int, item: MailItem, atts: list[FetchAtt], *, uid_first: bool, recent: bool, add_flags: bool,
    extensions: dict[str, bytes] | None = None,
) -> list[bytes]:
    """``render``'s reply as pieces that add up to it: a literal of ``LARGE_LITERAL`` bytes or
    more is a piece of its own, never copied into the line (a 50 MB BODY[] is held once, as read
    from the store); everything around it is joined (one piece for a small message)."""
    out = [b"* %d FETCH (" % seq]
    if uid_first:
        out.append(b"UID %d " % item.uid)
    flags_at = sum(1 for a in atts if a.name in _FIRST)
    for n, att in enumerate(atts):
        if n == flags_at and add_flags:
            out.append(b"FLAGS " + format_flags(item.flags, recent) + b" ")
        if att.name == "UID" and uid_first:
            continue
        if extensions and att.name in extensions:
            out.append(att.name.encode() + b" " + extensions[att.name])
        elif att.section:
            out += (att.reply_name().encode("utf-8", "surrogateescape") + b" ", *_section(att, item.raw))
        elif att.name == "RFC822":
            out += (b"RFC822 ", *literal_pieces(item.raw))
        else:
            out.append(_item(att, item, recent))
        out.append(b" ")
    if add_flags and flags_at == len(atts):
        out.append(b"FLAGS " + format_flags(item.flags, recent) + b" ")
    out[-1] = b")\r\n" if out[-1] == b" " else out[-1].removesuffix(b" ") + b")\r\n"
    pieces, small = [], []
    for piece in out:
        if len(piece) >= LARGE_LITERAL:
            pieces += [b"".join(small), piece] if small else [piece]
            small = []
        else:
            small.append(piece)
    return pieces + [b"".join(small)] if small else pieces


def _item(att: FetchAtt, item: MailItem, recent: bool) -> bytes:
    name = att.name
    if name == "FLAGS":
        return b"FLAGS " + format_flags(item.flags, recent)
    if name == "UID":
        return b"UID %d" % item.uid
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + format_internaldate(item.internaldate)
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % item.size
    from simulators.imap import message  # the MIME-aware parts only when asked for

    if name == "RFC822.HEADER":
        return b"RFC822.HEADER " + literal(message.body_section(item.raw, (), "HEADER"))
    if name == "RFC822.TEXT":
        return b"RFC822.TEXT " + literal(message.body_section(item.raw, (), "TEXT"))
    if name == "ENVELOPE":
        return b"ENVELOPE " + item.derived("ENVELOPE", message.envelope)
    if name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + item.derived("BODYSTRUCTURE", _extended_structure)
    if name == "BODY":
        return b"BODY " + item.derived("BODY", _basic_structure)
    raise ImapSyntaxError(f"Unknown FETCH attribute: {name}")


def _section(att: FetchAtt, raw: bytes) -> list[bytes]:
    if att.part or att.text is not None:
        from simulators.imap import message

        data = message.body_section(raw, att.part, att.text, att.fields)
    else:
        data = raw
    if att.partial is not None:
        origin, length = att.partial
        data = data[origin : origin + length] if length is not None else data[origin:]
    return literal_pieces(data)


def _extended_structure(raw: bytes) -> bytes:
    from simulators.imap import message

    return message.bodystructure(raw, extended=True)


def _basic_structure(raw: bytes) -> bytes:
    from simulators.imap import message

    return message.bodystructure(raw, extended=False)
