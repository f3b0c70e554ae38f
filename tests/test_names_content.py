"""Refused content (migrator.content, pure) and NUL bytes kept byte for byte by a real Dovecot."""

from __future__ import annotations

import imaplib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from migrator.content import describe, refused_content, repaired
from migrator.engine import MigrationOptions, migrate
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, user  # noqa: F401 (fixture)

NUL_EML = Path(__file__).resolve().parent.parent / "scenarios/library/quirks/messages/nul-bytes/nul-bytes.eml"


@pytest.mark.parametrize("text, raw, reason", [
    ("Message contains bare newlines", b"a\nb", "bare-lf"),
    ("NO Message contains NUL characters", b"a\0b", "nul-bytes"),
    ("Message contains non-ASCII characters in headers", b"Subject: \xc3\xa4\r\n\r\n", "8bit-headers"),
    ("NO Line too long", b"x" * 10000, "line-too-long"),
    ("APPEND command error: BAD [Command Argument Error. 11]", b"x" * 10000, None),  # names no cause
    ("[OVERQUOTA] Quota exceeded", b"a\0b", None),
])
def test_refused_content_is_named_by_the_reply_and_the_bytes(text, raw, reason):
    assert refused_content(text, raw) == reason


def test_only_bare_lf_is_repaired_and_only_once():
    assert repaired("bare-lf", b"A: b\n\nc\r\nd\n") == b"A: b\r\n\r\nc\r\nd\r\n"
    assert repaired("bare-lf", b"A: b\r\n\r\nc\r\n") is None  # nothing left to repair: no loop
    assert repaired("nul-bytes", b"a\0b") is None and repaired("line-too-long", b"x" * 10000) is None
    assert describe("nul-bytes", b"a\0b\0") == "2 NUL byte(s)"
    assert describe("8bit-headers", "From: Jürgen\r\nTo: a\r\n\r\nü".encode()) == "8-bit bytes in From"


@pytest.mark.peer
def test_nul_bytes_reach_dovecot_intact_though_body_shows_them_as_0x80(dovecot, tmp_path):
    raw = NUL_EML.read_bytes()
    store = Store()
    store.add_account("alice", PASSWORD).append(("INBOX",), raw, internaldate=datetime(2018, 1, 5, tzinfo=timezone.utc))
    dst = user(dovecot)
    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap()
        src = Endpoint(ServerURL.parse(handle.url("alice")), Secret(PASSWORD), cafile=world.cafile)
        report = migrate(src, endpoint(dovecot, dst), MigrationOptions(state_path=tmp_path / "s.sqlite"))
    assert (report.copied, report.skipped_count, report.failed) == (1, 0, 0)
    c = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    try:
        c.login(dst, PASSWORD)
        c.select("INBOX", readonly=True)
        _, body = c.fetch(b"1", "(BODY.PEEK[])")
        _, binary = c.fetch(b"1", "(BINARY.PEEK[])")
    finally:
        c.logout()
    assert body[0][1] == raw.replace(b"\0", b"\x80")  # a literal cannot carry NUL
    assert binary[0][1] == raw  # stored byte for byte (RFC 3516 gives it back)


@pytest.mark.peer
def test_nul_bytes_read_from_a_dovecot_source_arrive_as_nul_not_0x80(dovecot, tmp_path):
    raw = NUL_EML.read_bytes()
    utf8 = b"Subject: x\r\nMessage-ID: <utf8@x>\r\n\r\nplain \xc3\x80 text\r\n"  # 0x80 of UTF-8 stays
    src_user = user(dovecot)
    c = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    try:
        c.login(src_user, PASSWORD)
        for message in (raw, utf8):
            c.append("INBOX", None, None, message)
    finally:
        c.logout()
    store = Store()
    dest = store.add_account("bob", PASSWORD)
    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap()
        dst = Endpoint(ServerURL.parse(handle.url("bob")), Secret(PASSWORD), cafile=world.cafile)
        report = migrate(endpoint(dovecot, src_user), dst, MigrationOptions(state_path=tmp_path / "s.sqlite"))
    assert (report.copied, report.failed) == (2, 0)
    assert sorted(m.raw for m in dest.folders[("INBOX",)].messages) == sorted([raw, utf8])
