"""Length-keeping rewrites of markup: HTML bodies, vCard/iCalendar objects, XML (EWS SOAP, WebDAV).

Markup is structure and stays: tag and attribute names, entities, property names and parameters.
What people wrote (text nodes, attribute values such as ``href``, property values such as ``FN``
or ``SUMMARY``) is rewritten by ``anon_text``; values that are evidence (dates, sizes, response
codes, item classes) stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from transcripts import anon_text
from transcripts.pseudonyms import Pseudonyms

_ENTITY = re.compile(rb"&#?[A-Za-z0-9]+;")

# HTML --------------------------------------------------------------------------------------------

_HTML_TOKEN = re.compile(rb"<!--[\s\S]*?-->|<(style|script)\b[^>]*>[\s\S]*?</\1\s*>|<[^>]*>|&#?[A-Za-z0-9]+;", re.I)
_ATTRIBUTE = re.compile(rb"""(\s[\w:-]+\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""")
_HTML_KEEP_ATTRS = frozenset(
    b"charset http-equiv type style class align valign width height border color bgcolor face size dir lang "
    b"cellpadding cellspacing colspan rowspan target rel media".split()
)


def html(p: Pseudonyms, data: bytes) -> bytes:
    """Text and personal attribute values (href, src, alt, title ...) rewritten; tags, CSS kept."""
    out, last = bytearray(), 0
    for m in _HTML_TOKEN.finditer(data):
        out += anon_text.text(p, data[last:m.start()])
        token = m[0]
        if token.startswith(b"<!--"):
            token = token[:4] + anon_text.text(p, token[4:-3]) + token[-3:]
        elif token.startswith(b"<") and not m[1]:
            token = _ATTRIBUTE.sub(lambda a: _html_attribute(p, a), token)
        out += token
        last = m.end()
    out += anon_text.text(p, data[last:])
    return anon_text.same_length(data, bytes(out), "HTML")


def _html_attribute(p: Pseudonyms, m: re.Match) -> bytes:
    name = m[1].strip().rstrip(b"=").strip().lower()
    if name in _HTML_KEEP_ATTRS:
        return m[0]
    return m[1] + anon_text.without(m[2], _ENTITY, lambda v: anon_text.text(p, v))


# vCard / iCalendar -------------------------------------------------------------------------------

_FOLD = re.compile(rb"\r?\n[ \t]")
_CONTENT_LINE = re.compile(rb"^([A-Za-z0-9-]+)((?:;[^:\r\n]*)?):(.*?)(\r?\n|$)", re.M)
_PARAM = re.compile(rb';([A-Za-z0-9-]+)=("[^"]*"|[^;:,]*)')
_PIM_KEEP = frozenset(
    b"BEGIN END VERSION PRODID METHOD CALSCALE DTSTART DTEND DTSTAMP DUE CREATED LAST-MODIFIED RRULE EXRULE "
    b"EXDATE RDATE RECURRENCE-ID SEQUENCE STATUS CLASS TRANSP PRIORITY TZID TZNAME TZOFFSETFROM TZOFFSETTO "
    b"TZURL DURATION ACTION TRIGGER REPEAT REV KIND GENDER PERCENT-COMPLETE COMPLETED FREEBUSY ENCODING".split()
)
_PIM_PERSONAL_PARAMS = frozenset(b"CN SENT-BY DELEGATED-TO DELEGATED-FROM MEMBER DIR ALTREP EMAIL LABEL".split())
_PIM_IDENTITY = frozenset(b"FN N NICKNAME EMAIL ORGANIZER ATTENDEE CONTACT".split())


def pim(p: Pseudonyms, data: bytes) -> bytes:
    """vCard / iCalendar: names, addresses, summaries, notes rewritten; times, rules, IDs' shape kept."""
    return anon_text.without(data, _FOLD, lambda unfolded: _CONTENT_LINE.sub(lambda m: _pim_line(p, m), unfolded))


def _pim_line(p: Pseudonyms, m: re.Match) -> bytes:
    name = m[1].upper()
    params = _PARAM.sub(lambda q: _pim_param(p, q), m[2])
    value = m[3]
    if not (name in _PIM_KEEP or name.startswith(b"X-MICROSOFT") or name.startswith(b"X-WR-TIMEZONE")):
        value = anon_text.text(p, value, identity=name in _PIM_IDENTITY)
    return m[1] + params + b":" + value + m[4]


def _pim_param(p: Pseudonyms, m: re.Match) -> bytes:
    if m[1].upper() not in _PIM_PERSONAL_PARAMS:
        return m[0]
    return m[0][: m.start(2) - m.start(0)] + anon_text.text(p, m[2], identity=True)


# XML (EWS SOAP, WebDAV) --------------------------------------------------------------------------

_XML_TOKEN = re.compile(rb"<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<![^>]*>|<[^>]*>")
_XML_NAME = re.compile(rb"</?\s*(?:[\w.-]+:)?([\w.-]+)")
# Elements whose text is evidence, not content (EWS and DAV).
_XML_KEEP = frozenset(
    b"ResponseCode MessageText DescriptiveLinkKey DateTimeReceived DateTimeSent DateTimeCreated LastModifiedTime "
    b"Start End Size ItemClass FolderClass TotalCount ChildFolderCount UnreadCount IsRead HasAttachments Importance "
    b"Sensitivity BaseShape Value FieldURI MessageDisposition IncludeMimeContent ReminderIsSet IsAllDayEvent "
    b"LegacyFreeBusyStatus CalendarItemType Status PercentComplete RoutingType MailboxType BodyType Culture "
    b"ContentType IsInline Offset TotalItemsInView IncludesLastItemInRange IndexedPagingOffset "
    b"IncludesLastItemInRange ServerVersionInfo RequestServerVersion TimeZoneDefinition Duration Recurrence "
    b"getetag getcontenttype status resourcetype sync-token getlastmodified creationdate getcontentlength "
    b"supported-calendar-component-set".split()
)
_XML_FOLDER = frozenset(b"DisplayName displayname".split())
_XML_MESSAGE = frozenset(b"MimeContent".split())
_XML_PIM = frozenset(b"calendar-data address-data".split())
_VALUE_LIKE = re.compile(rb"\s*(?:-?[0-9.,:TZ+-]+|true|false|PT[0-9HMS.]+)?\s*", re.I)


def xml(p: Pseudonyms, data: bytes, message: Callable[[bytes], bytes]) -> bytes:
    """Text nodes rewritten by their element's name; MIME content (base64) through ``message``."""
    out, last = bytearray(), 0
    stack: list[bytes] = []
    for m in _XML_TOKEN.finditer(data):
        out += _xml_text(p, data[last:m.start()], stack[-1] if stack else b"", message)
        token = m[0]
        name = _XML_NAME.match(token)
        if token.startswith(b"<![CDATA["):
            token = token[:9] + _xml_text(p, token[9:-3], stack[-1] if stack else b"", message) + token[-3:]
        elif name and token.startswith(b"</"):
            while stack and stack.pop() != name[1]:
                pass
        elif name and not token.endswith(b"/>"):
            stack.append(name[1])
        if name and not token.startswith(b"</"):
            token = _ITEM_ID.sub(lambda a: a[1] + _item_id(p, a[2]) + b'"', token)
        out += token
        last = m.end()
    out += _xml_text(p, data[last:], b"", message)
    return anon_text.same_length(data, bytes(out), "XML")


_ITEM_ID = re.compile(rb'(\s(?:Id|RootItemId)=")([A-Za-z0-9+/=]{8,})"')


def _item_id(p: Pseudonyms, value: bytes) -> bytes:
    """EWS ids are base64 of bytes that may spell the mailbox owner: rewritten through the base64,
    the same way in requests and responses, so an id still finds its item on replay."""
    return anon_text.through_base64(value, lambda raw: anon_text.known(p, raw)) or value


def _xml_text(p: Pseudonyms, data: bytes, element: bytes, message: Callable[[bytes], bytes]) -> bytes:
    if not data or element in _XML_KEEP or _VALUE_LIKE.fullmatch(data):
        return data
    if element in _XML_MESSAGE:
        return anon_text.through_base64(data, message) or anon_text.scramble_base64(p, data)
    if element in _XML_PIM:
        return anon_text.without(data, _ENTITY, lambda d: pim(p, d))
    if element in _XML_FOLDER:
        return anon_text.without(data, _ENTITY, lambda d: p.folder_text(d.decode("utf-8", "surrogateescape"))
                                 .encode("utf-8", "surrogateescape"))
    return anon_text.without(data, _ENTITY, lambda d: anon_text.text(p, d))
