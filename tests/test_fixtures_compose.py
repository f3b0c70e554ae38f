"""Pure pieces of the generator: message rendering, exact sizes, folding, folder plans, bad dates."""

from __future__ import annotations

import email
import random
from datetime import datetime, timedelta, timezone
from email import policy
from email.utils import parsedate_to_datetime

import pytest

from simulators.fixtures import FixtureError
from simulators.fixtures.compose import Attachment, Draft, Hop, Person, fold, render, render_sized
from simulators.fixtures.folders import PlannedFolder, allocate, plan_folders
from simulators.fixtures.generator import UNPARSEABLE_DATES, bad_date
from simulators.profiles import load_profile

TOKYO = timezone(timedelta(hours=9))


def draft(**changes) -> Draft:
    base = dict(
        sender=Person("Jürgen Müller", "j@example.de"),
        to=[Person("山田 太郎", "yamada@example.jp"), Person("Bob", "bob@example.net")],
        subject="Réunion — 会議の件",
        date="Tue, 02 Mar 2021 05:06:09 +0900",
        message_id="<1@example.de>",
        text="Grüße,\n\nHallo.\n",
        boundary="=_test",
    )
    return Draft(**{**base, **changes})


def test_render_is_crlf_rfc2047_and_parses_back():
    d = draft(
        html=True,
        attachments=[Attachment("Übersicht.pdf", "application/pdf", b"%PDF-1.4\n\x00\xff")],
        received=[
            Hop("mx.example.org", "192.0.2.1", "imap.example.jp", "LMTP", "Q1", "yamada@example.jp",
                datetime(2021, 3, 2, 5, 7, tzinfo=TOKYO))
        ],  # fmt: skip
    )
    raw = render(d)
    assert raw == render(d)
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"") and head.isascii()
    assert b"From: =?utf-8?b?" in head and b"Subject: =?utf-8?" in head
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert str(msg["Subject"]) == "Réunion — 会議の件"
    assert msg["From"].addresses[0].display_name == "Jürgen Müller"
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_body(("plain",)).get_content() == "Grüße,\r\n\r\nHallo.\r\n"
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "Übersicht.pdf"
    assert attachment.get_content() == b"%PDF-1.4\n\x00\xff"
    assert "for <yamada@example.jp>; Tue, 02 Mar 2021 05:07:00 +0900" in str(msg["Received"])
    assert all(not part.defects for part in msg.walk())


@pytest.mark.parametrize("encoding", ["quoted-printable", "base64", "8bit"])
def test_text_encodings_decode_to_the_same_text(encoding):
    raw = render(draft(text_encoding=encoding))
    assert f"Content-Transfer-Encoding: {encoding}".encode() in raw
    assert email.message_from_bytes(raw, policy=policy.default).get_content() == "Grüße,\r\n\r\nHallo.\r\n"


def test_missing_date_and_message_id_are_left_out():
    head = render(draft(date=None, message_id=None)).split(b"\r\n\r\n")[0]
    assert b"\r\nDate:" not in head and b"Message-ID" not in head


@pytest.mark.parametrize("size", [*range(1200, 1232), 4097, 65_536, 1_000_003])
def test_render_sized_hits_every_size(size):
    d = draft(subject="big", text="Hello.\n", attachments=[Attachment("a.txt", "text/plain", b"x\n")])
    raw = render_sized(d, size, b"\x00\x01\x02 seed")
    assert len(raw) == size
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert all(not part.defects for part in msg.walk())


def test_render_sized_refuses_impossible_sizes():
    with pytest.raises(FixtureError, match="below the minimum"):
        render_sized(draft(text="x\n"), 100, b"seed")
    with pytest.raises(ValueError):
        render_sized(draft(text="Grüße\n"), 10_000, b"seed")


def test_fold_keeps_short_lines_and_folds_long_ones_at_spaces():
    assert fold("To", "a@b") == "To: a@b\r\n"
    value = " ".join(f"<id{i}@example.org>" for i in range(12))
    folded = fold("References", value)
    lines = folded.split("\r\n")[:-1]
    assert all(len(line) <= 78 for line in lines) and all(line.startswith(" ") for line in lines[1:])
    assert folded.replace("\r\n ", " ") == f"References: {value}\r\n"


def test_bad_dates():
    good = "Tue, 02 Mar 2021 05:06:09 +0100"
    rng = random.Random(1)
    assert bad_date("missing", good, rng) is None
    assert bad_date("unparseable", good, rng) in UNPARSEABLE_DATES
    assert bad_date("two-digit-year", good, rng) == "Tue, 02 Mar 21 05:06:09 +0100"
    assert bad_date("no-timezone", good, rng) == "Tue, 02 Mar 2021 05:06:09"
    assert parsedate_to_datetime(bad_date("future", good, rng)).year == 2096
    with pytest.raises(ValueError):
        bad_date("sideways", good, rng)
    for text in UNPARSEABLE_DATES:
        with pytest.raises((ValueError, TypeError)):
            parsedate_to_datetime(text)


# Folder plans -----------------------------------------------------------------------------------


def test_plan_for_the_generic_profile():
    generic = load_profile("generic")
    paths = [f.path for f in plan_folders(6, generic)]
    assert paths == [("INBOX",), ("Sent",), ("Drafts",), ("Trash",), ("Réunions",), ("Junk",)]
    big = plan_folders(40, generic)
    assert len(big) == 40 and len({f.path for f in big}) == 40
    parents = {f.path for f in big if f.role == "parent"}
    assert ("Projekte",) not in parents  # a user folder of its own, planned before its child
    assert ("Lists",) in parents
    assert plan_folders(1, generic) == [PlannedFolder(("INBOX",), None, "inbox")]


def test_allocate_is_exact_and_favours_inbox():
    plan = plan_folders(12, load_profile("generic"))
    for total in (0, 1, 5, 61, 1000):
        counts = allocate(total, plan)
        assert sum(counts.values()) == total
        assert counts[("INBOX",)] == max(counts.values())
