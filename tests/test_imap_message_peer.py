"""Peer check: our ENVELOPE / BODYSTRUCTURE / BODY[section] bytes equal a real Dovecot's.

The sample corpus is APPENDed to a throwaway Dovecot 2.3; each item is FETCHed over raw imaplib
and the value's exact bytes (quoted strings, literals, NILs) are compared with ours. Dovecot
stores bare-LF mail as CRLF, so bare-LF samples are compared in their CRLF form (our functions
report the bytes they are given; see the module docstring of simulators.imap.message).
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from scenarios.peers.dovecot import DovecotServer
from simulators.imap import message as m
from simulators.store import INBOX, MailItem, Store
from tests.test_imap_message_samples import SAMPLES

pytestmark = pytest.mark.peer

PEER_USER = "peer"
PEER_PASSWORD = "peer-pw-1"

# The sections the engine will be asked for most, and the awkward ones (parts of embedded
# messages, "part 1" of single-part bodies, nonexistent parts).
SECTIONS = [
    ((), None, ()),
    ((), "HEADER", ()),
    ((), "TEXT", ()),
    ((), "HEADER.FIELDS", ("SUBJECT", "FROM")),
    ((), "HEADER.FIELDS.NOT", ("Subject", "Date", "Message-ID")),
    ((1,), None, ()),
    ((1,), "MIME", ()),
    ((1,), "HEADER", ()),
    ((1,), "TEXT", ()),
    ((1, 1), None, ()),
    ((1, 1), "MIME", ()),
    ((1, 1, 1), None, ()),
    ((1, 2), "MIME", ()),
    ((2,), None, ()),
    ((2,), "MIME", ()),
    ((2,), "HEADER", ()),
    ((2,), "TEXT", ()),
    ((2,), "HEADER.FIELDS", ("subject",)),
    ((2, 1), None, ()),
    ((2, 2), "MIME", ()),
    ((3,), None, ()),
    ((9,), None, ()),
]


def as_stored(raw: bytes) -> bytes:
    """What Dovecot keeps: every line break as CRLF."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def as_sent(data: bytes) -> bytes:
    """Dovecot sends NUL bytes of a stored message as 0x80 (a literal may not hold NUL)."""
    return data.replace(b"\x00", b"\x80")


@contextmanager
def dovecot_inbox(items: list[MailItem]) -> Iterator[imaplib.IMAP4]:
    """A Dovecot whose INBOX holds ``items`` (UIDs 1..n in order), as a selected imaplib session."""
    reason = DovecotServer.availability()
    if reason:
        pytest.skip(reason)
    account = Store().add_account(PEER_USER, PEER_PASSWORD)
    for it in items:
        account.append(INBOX, it.raw, flags=it.flags, internaldate=it.internaldate)
    with DovecotServer() as server:
        server.load_account(account)
        conn = imaplib.IMAP4(server.host, server.imap_port)
        try:
            conn.login(PEER_USER, PEER_PASSWORD)
            conn.select("INBOX")
            yield conn
        finally:
            conn.logout()


def fetch_value(conn: imaplib.IMAP4, seq: int, item: str) -> bytes:
    """The exact bytes of one FETCH item's value (a literal keeps its ``{n}\\r\\n`` prefix)."""
    typ, data = conn.fetch(str(seq), f"({item})")
    assert typ == "OK", data
    response = b"".join(p[0] + b"\r\n" + p[1] if isinstance(p, tuple) else p for p in data if p is not None)
    if item.startswith("BODY.PEEK["):
        start = re.compile(rb"BODY\[[^\]]*\](?:<\d+>)? ").search(response).end()
    else:
        start = response.index(item.encode() + b" ") + len(item) + 1
    return response[start : _value_end(response, start)]


def _value_end(buf: bytes, pos: int) -> int:
    depth = 0
    while True:
        c = buf[pos : pos + 1]
        if c == b'"':
            pos += 1
            while buf[pos : pos + 1] != b'"':
                pos += 2 if buf[pos : pos + 1] == b"\\" else 1
            pos += 1
        elif c == b"{":
            close = buf.index(b"}\r\n", pos)
            pos = close + 3 + int(buf[pos + 1 : close])
        elif c == b"(":
            depth += 1
            pos += 1
        elif c == b")":
            depth -= 1
            pos += 1
        elif c == b" " and depth > 0:
            pos += 1
        else:  # an atom (NIL, a number)
            match = re.compile(rb"[^ ()]+").match(buf, pos)
            pos = match.end()
        if depth == 0:
            return pos


def decode_string(value: bytes) -> bytes:
    """The content of an IMAP nstring as the wire gave it (NIL → b"")."""
    if value == b"NIL":
        return b""
    if value.startswith(b"{"):
        return value[value.index(b"\r\n") + 2 :]
    return re.sub(rb"\\(.)", rb"\1", value[1:-1])


def section_item(part: tuple[int, ...], text: str | None, fields: tuple[str, ...]) -> str:
    spec = ".".join(map(str, part))
    if text:
        spec = f"{spec}.{text}" if spec else text
    if fields:
        spec += " (" + " ".join(fields) + ")"
    return f"BODY.PEEK[{spec}]"


NAMES = list(SAMPLES)


@pytest.fixture(scope="module")
def peer():
    when = datetime(2021, 6, 1, 12, tzinfo=timezone.utc)
    with dovecot_inbox([MailItem(raw=SAMPLES[n], internaldate=when) for n in NAMES]) as conn:
        yield conn


@pytest.mark.parametrize("name", NAMES)
def test_envelope_and_bodystructure_match_dovecot(peer, name):
    seq = NAMES.index(name) + 1
    raw = as_stored(SAMPLES[name])
    assert m.envelope(raw) == fetch_value(peer, seq, "ENVELOPE")
    assert m.bodystructure(raw) == fetch_value(peer, seq, "BODYSTRUCTURE")
    assert m.bodystructure(raw, extended=False) == fetch_value(peer, seq, "BODY")


@pytest.mark.parametrize("name", NAMES)
def test_body_sections_match_dovecot(peer, name):
    seq = NAMES.index(name) + 1
    raw = as_stored(SAMPLES[name])
    mismatches = []
    for part, text, fields in SECTIONS:
        item = section_item(part, text, fields)
        theirs = decode_string(fetch_value(peer, seq, item))
        ours = as_sent(m.body_section(raw, part, text, fields))
        if ours != theirs:
            mismatches.append((item, theirs[:120], ours[:120]))
    assert not mismatches


def test_bare_lf_is_served_as_stored_here(peer):
    # The one deliberate difference: Dovecot counts the CRLF form, we count the stored bytes.
    seq = NAMES.index("bare_lf") + 1
    assert m.bodystructure(SAMPLES["bare_lf"]) != fetch_value(peer, seq, "BODYSTRUCTURE")
    assert m.body_section(SAMPLES["bare_lf"], (1,), None) == b"line one\nline two"


def test_generated_fixture_matches_dovecot():
    """The seeded generator's realistic mail (threads, attachments, RFC 2047, bad dates)."""
    from simulators.fixtures import FixtureSpec, populate
    from simulators.profiles import load_profile

    account = Store().add_account("fixture", PEER_PASSWORD)
    spec = FixtureSpec(seed=11, messages=60, folders=2, attachments=0.5, no_message_id=2, bad_dates=5)
    populate(account, spec, load_profile("generic"))
    items = [it for _, it in account.iter_messages()]
    assert len(items) >= 60
    mismatches = []
    with dovecot_inbox(items) as conn:
        for seq, it in enumerate(items, 1):
            raw = as_stored(it.raw)
            for item, ours in (
                ("ENVELOPE", m.envelope(raw)),
                ("BODYSTRUCTURE", m.bodystructure(raw)),
                ("BODY.PEEK[1]", as_sent(m.body_section(raw, (1,), None))),
                ("BODY.PEEK[2.MIME]", as_sent(m.body_section(raw, (2,), "MIME"))),
            ):
                theirs = fetch_value(conn, seq, item)
                if item.startswith("BODY.PEEK"):
                    theirs = decode_string(theirs)
                if ours != theirs:
                    mismatches.append((seq, item, theirs[:150], ours[:150]))
    assert not mismatches


WIRE_ITEMS = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]", "BODY.PEEK[1]",
              "BODY.PEEK[1.MIME]", "BODY.PEEK[2.1]", "BODY.PEEK[2.HEADER]", "BODY.PEEK[TEXT]<3.40>"]


def test_simulator_wire_equals_dovecot_wire(peer):
    """Through the generic simulator's FETCH (engine + fetch rendering + this module), the value
    bytes of each item equal Dovecot's, for every CRLF sample without NUL bytes."""
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile

    names = [n for n in NAMES if b"\x00" not in SAMPLES[n] and as_stored(SAMPLES[n]) == SAMPLES[n]]
    store = Store()
    account = store.add_account(PEER_USER, PEER_PASSWORD)
    for n in names:
        account.append(INBOX, SAMPLES[n], internaldate=datetime(2021, 6, 1, 12, tzinfo=timezone.utc))
    mismatches = []
    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap()
        sim = imaplib.IMAP4(handle.host, handle.port)
        try:
            sim.login(PEER_USER, PEER_PASSWORD)
            sim.select("INBOX")
            for seq, n in enumerate(names, 1):
                dovecot_seq = NAMES.index(n) + 1
                for item in WIRE_ITEMS:
                    ours, theirs = fetch_value(sim, seq, item), fetch_value(peer, dovecot_seq, item)
                    if ours != theirs:
                        mismatches.append((n, item, theirs[:100], ours[:100]))
        finally:
            sim.logout()
    assert len(names) >= 20 and not mismatches
