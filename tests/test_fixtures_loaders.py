"""Loading real messages: .eml directories, mbox files, Maildir++ trees; bad files are named."""

from __future__ import annotations

import mailbox
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from simulators.fixtures import FixtureError, FixtureFiles, FixtureSpec, load_eml_dir, load_maildir, load_mbox, populate
from simulators.fixtures.loaders import maildir_flags, maildir_folder_parts, parse_from_line_date, to_crlf
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

ONE = b"From: a@example.org\r\nSubject: one\r\nDate: Tue, 02 Mar 2021 05:06:09 +0100\r\n\r\nbody 1\r\n"
TWO = (
    b"Received: from mx (mx [192.0.2.1]) by imap; Wed, 03 Mar 2021 10:00:00 -0500\r\n"
    b"From: b@example.org\r\nSubject: two\r\nDate: Wed, 03 Mar 2021 09:59:00 -0500\r\n\r\nbody 2\r\n"
)
NO_DATE = b"From: c@example.org\r\nSubject: three\r\n\r\nbody 3 with\x00odd bytes \xff\r\n"
MTIME = datetime(2020, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def new_account():
    return Store().add_account("alice", "pw")


def write(path: Path, data: bytes, mtime: datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


# .eml ------------------------------------------------------------------------------------------


def test_eml_dir_keeps_bytes_and_dates_from_received_then_date_then_mtime(tmp_path):
    write(tmp_path / "b.eml", TWO)
    write(tmp_path / "a.EML", ONE)
    write(tmp_path / "c.eml", NO_DATE, MTIME)
    write(tmp_path / "notes.txt", b"not mail")
    account = new_account()
    items = load_eml_dir(account, tmp_path, ("Import", "Ärger"))
    assert [m.raw for m in items] == [ONE, TWO, NO_DATE]
    assert account.folder(("Import", "Ärger")).messages == items
    dates = [m.internaldate for m in items]
    assert dates[0] == datetime(2021, 3, 2, 5, 6, 9, tzinfo=timezone(timedelta(hours=1)))
    assert dates[1] == datetime(2021, 3, 3, 15, 0, 0, tzinfo=timezone.utc)  # Received, not Date
    assert dates[1].utcoffset() == timedelta(hours=-5)
    assert dates[2] == MTIME
    assert items[0].extra["fixture"] == {"case": "file", "source": str(tmp_path / "a.EML")}


def test_eml_errors_name_the_file(tmp_path):
    with pytest.raises(FixtureError, match="no .eml files"):
        load_eml_dir(new_account(), tmp_path, INBOX)
    bad = write(tmp_path / "bad.eml", b"\x89PNG\r\n\x1a\nbinary")
    with pytest.raises(FixtureError, match=r"bad\.eml: not an RFC 5322 message"):
        load_eml_dir(new_account(), tmp_path, INBOX)
    bad.unlink()
    (tmp_path / "dir.eml").mkdir()
    with pytest.raises(FixtureError, match="no .eml files"):
        load_eml_dir(new_account(), tmp_path, INBOX)
    with pytest.raises(FixtureError, match="not a directory"):
        load_eml_dir(new_account(), tmp_path / "missing", INBOX)


# mbox ------------------------------------------------------------------------------------------


def test_mbox_round_trip_with_flags_and_from_line_dates(tmp_path):
    first = b"From: a@example.org\nSubject: one\nStatus: RO\nX-Status: F\n\nbody 1\n>From here on, quoted\n"
    third = b"From: c@example.org\nSubject: no From_ date\nDate: Fri, 05 Mar 2021 01:02:03 +0900\n\nbody 3\n"
    path = write(
        tmp_path / "export.mbox",
        b"From a@example.org Tue Mar  2 04:06:30 2021\n" + first + b"\n"
        + b"From MAILER-DAEMON Thu Mar  4 12:00:00 2021 -0500\n" + TWO + b"\n"
        + b"From c@example.org\n" + third + b"\n",
    )  # fmt: skip
    account = new_account()
    items = load_mbox(account, path, ("Archiv", "2021"))
    # Served with CRLF like a server would; CRLF stays CRLF, >From stays (mboxo/mboxrd ambiguity).
    assert [m.raw for m in items] == [to_crlf(first), TWO, to_crlf(third)]
    assert b"\r\n>From here on, quoted\r\n" in items[0].raw
    raw_items = load_mbox(new_account(), path, INBOX, crlf=False)
    assert [m.raw for m in raw_items] == [first, TWO, third]
    assert account.folder(("Archiv", "2021")).messages == items
    assert [m.flags for m in items] == [{"\\Seen", "\\Flagged"}, set(), set()]
    assert items[0].internaldate == datetime(2021, 3, 2, 4, 6, 30, tzinfo=timezone.utc)
    assert items[1].internaldate == datetime(2021, 3, 4, 17, 0, 0, tzinfo=timezone.utc)
    assert items[1].internaldate.utcoffset() == timedelta(hours=-5)
    assert items[2].internaldate == datetime(2021, 3, 4, 16, 2, 3, tzinfo=timezone.utc)  # from Date


def test_mbox_written_by_the_stdlib_loads(tmp_path):
    box = mailbox.mbox(tmp_path / "py.mbox")
    message = mailbox.mboxMessage(ONE)
    message.set_flags("RA")
    box.add(message)
    box.close()
    (item,) = load_mbox(new_account(), tmp_path / "py.mbox", INBOX)
    assert item.flags == {"\\Seen", "\\Answered"}
    assert b"Subject: one" in item.raw


def test_mbox_errors(tmp_path):
    not_mbox = write(tmp_path / "x.mbox", b"Subject: hi\r\n\r\nbody\r\n")
    with pytest.raises(FixtureError, match=r"x\.mbox: not an mbox file"):
        load_mbox(new_account(), not_mbox, INBOX)
    with pytest.raises(FixtureError, match=r"missing\.mbox: cannot read"):
        load_mbox(new_account(), tmp_path / "missing.mbox", INBOX)
    empty = write(tmp_path / "empty.mbox", b"")
    assert load_mbox(new_account(), empty, INBOX) == []


@pytest.mark.parametrize(
    "line, expected",
    [
        ("From a@b Tue Mar  2 05:06:09 2021", datetime(2021, 3, 2, 5, 6, 9, tzinfo=timezone.utc)),
        ("a@b Tue Mar 12 05:06:09 2021 +0100", datetime(2021, 3, 12, 5, 6, 9, tzinfo=timezone(timedelta(hours=1)))),
        ("a@b Tue Mar 12 05:06:09 -0330 2021", datetime(2021, 3, 12, 5, 6, 9, tzinfo=timezone(-timedelta(hours=3.5)))),
        ("a@b Tue Mar 12 05:06 2021", datetime(2021, 3, 12, 5, 6, 0, tzinfo=timezone.utc)),
        ("a@b Tue Foo 12 05:06:09 2021", None),
        ("a@b Tue Feb 31 05:06:09 2021", None),
        ("MAILER-DAEMON", None),
        ("", None),
    ],
)
def test_from_line_dates(line, expected):
    assert parse_from_line_date(line) == expected


# Maildir ---------------------------------------------------------------------------------------


def make_maildir(root: Path) -> None:
    for folder in ("", ".Projekte", ".Projekte.&AMQ-rger", ".R&AOk-unions"):
        for sub in ("cur", "new", "tmp"):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
    write(root / "cur" / "1600000000.M1P1.host,S=100:2,FS", ONE, MTIME)
    write(root / "new" / "1600000001.M2P1.host", TWO, MTIME + timedelta(seconds=1))
    write(root / "tmp" / "1600000002.M3P1.host", b"half written")
    write(root / ".Projekte.&AMQ-rger" / "cur" / "1600000003.M4P1.host:2,RPTab", NO_DATE, MTIME)
    write(root / ".Projekte.&AMQ-rger" / "dovecot-keywords", b"0 $Label1\n1 Junk\n")
    write(root / ".R&AOk-unions" / "cur" / "1600000004.M5P1.host:2,D", ONE, MTIME)
    write(root / "dovecot-uidlist", b"3 V1 N5\n")


def test_maildir_round_trip_folders_flags_keywords_and_mtime(tmp_path):
    make_maildir(tmp_path)
    account = new_account()
    items = load_maildir(account, tmp_path)
    assert len(items) == 4
    assert set(account.folders) == {INBOX, ("Projekte",), ("Projekte", "Ärger"), ("Réunions",)}
    inbox = account.folder(INBOX).messages
    assert [m.raw for m in inbox] == [ONE, TWO]  # already CRLF: unchanged
    assert [m.flags for m in inbox] == [{"\\Flagged", "\\Seen"}, set()]
    assert inbox[0].internaldate == MTIME and inbox[0].internaldate.tzinfo == timezone.utc
    (nested,) = account.folder(("Projekte", "Ärger")).messages
    assert nested.raw == NO_DATE
    assert nested.flags == {"\\Answered", "$Forwarded", "\\Deleted", "$Label1", "Junk"}
    assert account.folder(("Réunions",)).messages[0].flags == {"\\Draft"}


def test_maildir_lf_files_become_crlf_unless_asked_not_to(tmp_path):
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    lf = b"Subject: lf\nX-Odd: a\r\n\nbody\n"
    write(tmp_path / "cur" / "1.host:2,S", lf, MTIME)
    (item,) = load_maildir(new_account(), tmp_path)
    assert item.raw == b"Subject: lf\r\nX-Odd: a\r\n\r\nbody\r\n"
    (kept,) = load_maildir(new_account(), tmp_path, crlf=False)
    assert kept.raw == lf


def test_maildir_under_a_root_folder(tmp_path):
    make_maildir(tmp_path)
    account = new_account()
    load_maildir(account, tmp_path, ("Import",))
    assert len(account.folder(("Import",)).messages) == 2
    assert len(account.folder(("Import", "Projekte", "Ärger")).messages) == 1
    assert not account.folder(INBOX).messages


def test_maildir_errors_and_name_helpers(tmp_path):
    with pytest.raises(FixtureError, match="not a Maildir"):
        load_maildir(new_account(), tmp_path)
    assert maildir_folder_parts(".Work.Q1 &- Q2") == ("Work", "Q1 & Q2")
    assert maildir_folder_parts(".&ZeVnLA-") == ("日本",)
    assert maildir_flags("123.host,S=5:2,") == set()
    assert maildir_flags("123.host") == set()
    assert maildir_flags("123.host:2,SRa", {"a": "$Forwarded"}) == {"\\Seen", "\\Answered", "$Forwarded"}


# populate + files ------------------------------------------------------------------------------


def test_populate_loads_files_relative_to_base_dir(tmp_path):
    write(tmp_path / "eml" / "one.eml", ONE)
    make_maildir(tmp_path / "md")
    spec = FixtureSpec.model_validate(
        {
            "messages": 3,
            "folders": 1,
            "files": [
                {"path": "eml", "format": "eml", "folder": ["Kunden", "Ärger"]},
                {"path": "md", "format": "maildir", "folder": ["Old"]},
            ],
        }
    )
    account = new_account()
    populate(account, spec, load_profile("generic"), base_dir=tmp_path)
    assert len(account.folder(INBOX).messages) == 3
    assert [m.raw for m in account.folder(("Kunden", "Ärger")).messages] == [ONE]
    assert len(account.folder(("Old", "Projekte", "Ärger")).messages) == 1

    spec.files = [FixtureFiles(path=Path("nowhere"), format="mbox")]
    with pytest.raises(FixtureError, match="nowhere"):
        populate(new_account(), spec, load_profile("generic"), base_dir=tmp_path)


def test_spec_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="mesages"):
        FixtureSpec.model_validate({"mesages": 3})
    with pytest.raises(ValueError):
        FixtureSpec(attachments=1.5)
    with pytest.raises(ValueError):
        FixtureFiles(path="x", format="pst")
