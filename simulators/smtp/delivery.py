"""Delivery into the store: which account a recipient names, and the Received header it gets.

Pure functions (values in, values out); the handler calls them with the delivery instant from its
clock, so a test with a fixed clock gets the same bytes every time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime

from simulators.store import Account, Store

# A Received header as Trace.header() writes it (three lines, "(quirkmail)" in the by-clause), at
# the start of the message or of a header line: a later hop may have put its own lines above it.
_OUR_RECEIVED = re.compile(
    rb"(?:\A|(?<=\r\n))Received: from [^\r\n]*\r\n\tby [^\r\n]* \(quirkmail\) with [^\r\n]*\r\n\tfor [^\r\n]*\r\n"
)


def resolve_recipient(store: Store, address: str) -> Account | None:
    """The account a recipient address delivers to: the account named exactly by the address,
    else by its local part (``alice@example.net`` → ``alice``); None when there is none."""
    accounts = store.accounts
    if address in accounts:
        return accounts[address]
    local, at, _domain = address.rpartition("@")
    return accounts.get(local) if at and local else None


@dataclass(frozen=True)
class Trace:
    """What a Received header says about one delivery (RFC 5321 §4.4)."""

    helo: str  # what the client said in EHLO/HELO
    peer_ip: str
    by_host: str  # our hostname
    protocol: str  # RFC 3848 / RFC 6531 "with" keyword: ESMTP, ESMTPSA, UTF8SMTPS ...
    queue_id: str
    recipient: str
    when: datetime  # the delivery instant; written in UTC

    def header(self) -> bytes:
        when = self.when.astimezone(timezone.utc)
        text = (
            f"Received: from {self.helo} ([{self.peer_ip}])\r\n"
            f"\tby {self.by_host} (quirkmail) with {self.protocol} id {self.queue_id}\r\n"
            f"\tfor <{self.recipient}>; {format_datetime(when)}\r\n"
        )
        return text.encode("utf-8")  # an SMTPUTF8 recipient is UTF-8, as RFC 6532 allows


def with_protocol(*, extended: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """The Received "with" keyword (RFC 3848: ESMTP + S for TLS + A for AUTH; RFC 6531: UTF8SMTP)."""
    if not extended:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def strip_received(raw: bytes) -> bytes:
    """``raw`` without the Received header our delivery prepended (the first one in the header
    block); every other byte untouched. For the message as the client sent it."""
    head_end = raw.find(b"\r\n\r\n")
    head = raw if head_end < 0 else raw[: head_end + 2]
    return _OUR_RECEIVED.sub(b"", head, count=1) + raw[len(head):]
