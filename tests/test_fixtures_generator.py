"""The seeded fixture generator: determinism, folders, realistic structure, the awkward extras."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from simulators.fixtures import FixtureSpec, populate
from simulators.fixtures.content import EPOCH, SPAN
from simulators.fixtures.generator import BAD_DATE_KINDS, UNPARSEABLE_DATES
from simulators.profiles import SPECIAL_USE, load_profile
from simulators.store import INBOX, Store

GENERIC = load_profile("generic")
REPO = Path(__file__).resolve().parents[1]
SPEC = FixtureSpec(seed=7, messages=150, folders=10, attachments=0.4)


def build(spec: FixtureSpec = SPEC, profile=GENERIC, user: str = "alice"):
    account = Store().add_account(user, "pw")
    populate(account, spec, profile)
    return account


def snapshot(account):
    return {
        path: (
            folder.special_use,
            [(m.raw, frozenset(m.flags), m.internaldate, m.internaldate.utcoffset()) for m in folder.messages],
        )
        for path, folder in account.folders.items()
    }


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def cases(account, case: str):
    return [(f, m) for f, m in account.iter_messages() if m.extra["fixture"]["case"] == case]


@pytest.fixture(scope="module")
def account():
    return build()


def test_same_spec_gives_the_same_bytes_flags_and_dates_and_another_seed_differs(account):
    again = build()
    assert list(account.folders) == list(again.folders)
    assert snapshot(account) == snapshot(again)
    other = build(SPEC.model_copy(update={"seed": 8}))
    assert list(other.folders) == list(account.folders)  # folders depend on count + profile only
    ours = {m.raw for _, m in account.iter_messages()}
    theirs = {m.raw for _, m in other.iter_messages()}
    assert not ours & theirs


DIGEST_SCRIPT = """
import hashlib
from simulators.fixtures import FixtureSpec, generate
from simulators.profiles import load_profile
spec = FixtureSpec(seed=7, messages=40, folders=8, bad_dates=5, large=[5000], duplicate_message_id=1)
digest = hashlib.sha256()
for m in generate(spec, load_profile("generic")):
    digest.update(repr((m.folder, sorted(m.flags), m.internaldate.isoformat(), m.case)).encode() + m.raw)
print(digest.hexdigest())
"""


def test_output_does_not_depend_on_the_process():
    # Another interpreter with another hash seed (set order) and time zone must give the same bytes.
    runs = set()
    for hash_seed, tz in (("1", "UTC"), ("2", "Asia/Tokyo")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": tz}
        out = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT], env=env, cwd=REPO, capture_output=True, text=True, check=True
        )
        runs.add(out.stdout.strip())
    assert len(runs) == 1


def test_folders_counts_and_special_use_follow_the_spec_and_profile(account):
    assert len(account.folders) == SPEC.folders
    assert {"Réunions", "日本"} <= {f.path[0] for f in account.folders.values()}
    assert ("Projekte", "Ärger") in account.folders
    for key, parts in GENERIC.special_folders.items():
        if tuple(parts) in account.folders:
            assert account.folder(parts).special_use == SPECIAL_USE[key]
    special = {f.special_use for f in account.folders.values() if f.special_use}
    assert special == {"\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"}

    counts = {path: len(f.messages) for path, f in account.folders.items()}
    assert sum(counts.values()) == SPEC.messages
    assert counts[INBOX] == max(counts.values())
    assert counts[("Projekte",)] > 0 and counts[("Projekte", "Ärger")] > 0


def test_every_generated_message_parses_without_defects(account):
    structures = Counter()
    for _, m in account.iter_messages():
        assert b"\n" not in m.raw.replace(b"\r\n", b""), "bare LF"
        msg = parse(m.raw)
        for part in msg.walk():
            assert not part.defects, (m.uid, part.defects)
            if not part.is_multipart():
                part.get_content()  # decodes (base64, quoted-printable, 8bit) without error
        for name in msg.keys():
            assert not msg[name].defects, (name, msg[name].defects)
        assert msg["Message-ID"] and msg["Date"].datetime.tzinfo is not None
        structures[msg.get_content_type()] += 1
    assert structures["multipart/alternative"] and structures["multipart/mixed"] and structures["text/plain"]


def test_non_ascii_names_and_subjects_are_rfc2047_encoded(account):
    encoded = 0
    decoded = set()
    for _, m in account.iter_messages():
        head = m.raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()
        if b"=?utf-8?" in head:
            encoded += 1
            msg = parse(m.raw)
            decoded.add(str(msg["Subject"]) + " " + str(msg["From"]))
    assert encoded > len(list(account.iter_messages())) // 4
    text = " ".join(decoded)
    assert any(ch in text for ch in "äöüß") and any("\u3040" <= ch <= "\u9fff" for ch in text)


def test_received_chain_and_internaldate(account):
    for folder, m in account.iter_messages():
        msg = parse(m.raw)
        received = msg.get_all("Received") or []
        date = msg["Date"].datetime
        if folder.special_use in ("\\Sent", "\\Drafts"):
            assert not received  # written by the owner's client, never transported
            assert timedelta(0) < m.internaldate - date <= timedelta(seconds=5)
            continue
        assert 2 <= len(received) <= 4
        stamps = [parsedate_to_datetime(str(r).rpartition(";")[2]) for r in received]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        assert date < stamps[-1]
        assert m.internaldate == stamps[0] and m.internaldate.utcoffset() == stamps[0].utcoffset()
        assert EPOCH - SPAN < m.internaldate < EPOCH + timedelta(days=1)


def test_threads_reference_earlier_messages(account):
    ids = set()
    replies = 0
    for _, m in sorted(account.iter_messages(), key=lambda fm: fm[1].internaldate):
        msg = parse(m.raw)
        if msg["In-Reply-To"]:
            replies += 1
            assert msg["In-Reply-To"] in ids
            assert str(msg["References"]).split()[-1] == msg["In-Reply-To"]
        ids.add(msg["Message-ID"])
    assert replies >= 10


def test_flags_are_plausible_per_folder(account):
    seen = Counter()
    for folder, m in account.iter_messages():
        seen.update(m.flags)
        assert ("\\Draft" in m.flags) == (folder.special_use == "\\Drafts")
        if folder.special_use == "\\Sent":
            assert m.flags == {"\\Seen"}
    total = len(list(account.iter_messages()))
    assert seen["\\Seen"] > total / 2
    assert seen["\\Flagged"] and seen["\\Answered"] and seen["$Forwarded"]


def test_large_messages_have_exact_sizes():
    sizes = [3_000, 65_537, 1_048_576]
    account = build(FixtureSpec(seed=2, messages=0, large=sizes))
    large = cases(account, "large")
    assert [m.size for _, m in large] == sizes
    for _, m in large[1:]:
        payload = list(parse(m.raw).iter_attachments())[-1].get_content()
        assert len(payload) > m.size * 0.7  # the size is made of attachment, not of padding


def test_awkward_extras_are_recorded_and_keep_a_sane_internaldate():
    spec = FixtureSpec(seed=5, messages=10, no_message_id=2, duplicate_message_id=2, bad_dates=7)
    account = build(spec)
    assert len(list(account.iter_messages())) == 10 + 2 + 4 + 7

    for _, m in cases(account, "no-message-id"):
        assert parse(m.raw)["Message-ID"] is None

    pairs = {}
    for _, m in cases(account, "duplicate-message-id"):
        pairs.setdefault(m.extra["fixture"]["pair"], []).append(m)
    assert len(pairs) == 2
    for first, second in pairs.values():
        assert parse(first.raw)["Message-ID"] == parse(second.raw)["Message-ID"] is not None
        assert first.raw != second.raw

    bad = cases(account, "bad-date")
    assert [m.extra["fixture"]["kind"] for _, m in bad] == list(BAD_DATE_KINDS) + list(BAD_DATE_KINDS[:2])
    for _, m in bad:
        kind = m.extra["fixture"]["kind"]
        head = m.raw.split(b"\r\n\r\n", 1)[0].decode()
        date = next((line[6:] for line in head.split("\r\n") if line.startswith("Date: ")), None)
        if kind == "missing":
            assert date is None
        elif kind == "unparseable":
            assert date in UNPARSEABLE_DATES
        elif kind == "two-digit-year":
            assert date.split()[3].isdigit() and len(date.split()[3]) == 2
        elif kind == "no-timezone":
            assert date.split()[-1].count(":") == 2
        else:
            assert parsedate_to_datetime(date) > m.internaldate + timedelta(days=365 * 50)
        # INTERNALDATE is still the true arrival: the newest Received stamp.
        newest = parse(m.raw).get_all("Received")[0]
        assert m.internaldate == parsedate_to_datetime(str(newest).rpartition(";")[2])
        assert EPOCH - SPAN < m.internaldate < EPOCH + timedelta(days=1)


def test_a_prefixed_profile_with_nested_special_folders():
    profile = GENERIC.model_copy(
        update={
            "special_folders": {
                "sent": ["[Gmail]", "Sent Mail"],
                "all": ["[Gmail]", "All Mail"],
                "trash": ["[Gmail]", "Trash"],
            }
        }
    )
    account = build(FixtureSpec(seed=1, messages=40, folders=7), profile)
    assert list(account.folders)[:4] == [INBOX, ("[Gmail]",), ("[Gmail]", "Sent Mail"), ("[Gmail]", "Trash")]
    assert account.folder(["[Gmail]", "Sent Mail"]).special_use == "\\Sent"
    assert len(account.folders) == 7
    assert not account.folder(["[Gmail]"]).messages  # an implied parent holds no mail
    if account.has_folder(["[Gmail]", "All Mail"]):
        assert not account.folder(["[Gmail]", "All Mail"]).messages  # \All is a view


def test_two_thousand_messages_build_in_under_three_seconds():
    # CPU time of this process: other test workers on the machine must not make it flaky.
    start = time.process_time()
    account = build(FixtureSpec(seed=11, messages=2000, folders=12))
    assert time.process_time() - start < 3.0
    assert len(list(account.iter_messages())) == 2000
