"""Gmail label planning (migrator.gmail): X-GM-MSGIDs per folder in, UIDs to skip out."""

from __future__ import annotations

from migrator.fetch_parser import parse_fetch
from migrator.gmail import LabelFolder, plan_labels

# One account: m1 in INBOX + Work + All Mail, m2 in Work + All Mail, m3 archive-only,
# m4 in Sent + All Mail, m5 in Trash (Gmail keeps Trash out of All Mail).
FOLDERS = [
    LabelFolder("[Gmail]/All Mail", "\\All", {1: 101, 2: 102, 3: 103, 4: 104}),
    LabelFolder("Work", None, {7: 101, 8: 102}),
    LabelFolder("[Gmail]/Trash", "\\Trash", {1: 105}),
    LabelFolder("[Gmail]/Sent Mail", "\\Sent", {3: 104}),
    LabelFolder("INBOX", None, {5: 101}),
]


def test_once_copies_each_msgid_from_its_first_folder_and_all_mail_last():
    plan = plan_labels(FOLDERS, "once")
    assert plan.order == ["INBOX", "[Gmail]/Sent Mail", "Work", "[Gmail]/Trash", "[Gmail]/All Mail"]
    assert plan.skip["INBOX"] == {} and plan.skip["[Gmail]/Sent Mail"] == {} and plan.skip["[Gmail]/Trash"] == {}
    assert set(plan.skip["Work"]) == {7}  # m1 went from INBOX; m2 (Work only) stays
    assert "copied from 'INBOX'" in plan.skip["Work"][7]
    assert set(plan.skip["[Gmail]/All Mail"]) == {1, 2, 4}  # only m3 is archive-only
    assert (plan.messages, plan.archive_only, plan.collapsed) == (5, 1, 4)


def test_per_label_keeps_every_label_copy_but_only_archive_only_mail_from_all_mail():
    plan = plan_labels(FOLDERS, "per-label")
    assert plan.skip["Work"] == {} and plan.skip["INBOX"] == {}
    assert set(plan.skip["[Gmail]/All Mail"]) == {1, 2, 4}
    assert (plan.archive_only, plan.collapsed) == (1, 3)


def test_user_labels_are_ordered_by_name_whatever_the_listing_order():
    plan = plan_labels([LabelFolder("zeta", None, {1: 9}), LabelFolder("Alpha", None, {4: 9})], "once")
    assert plan.order == ["Alpha", "zeta"] and set(plan.skip["zeta"]) == {1}


def test_summary_names_the_mode_and_the_figures():
    text = plan_labels(FOLDERS, "once").summary()
    assert text.startswith("Gmail labels (once): 5 distinct messages by X-GM-MSGID; 4 further label copies")
    assert "1 archive-only" in text and text.endswith("Trash, All Mail")


def test_fast_fetch_reader_keeps_x_gm_msgid():
    data = [b"1 (UID 7 X-GM-MSGID 1700000000000000003)", b"2 (X-GM-MSGID 1700000000000000009 UID 9)"]
    assert parse_fetch(data) == {7: {b"UID": 7, b"X-GM-MSGID": 1700000000000000003},
                                 9: {b"UID": 9, b"X-GM-MSGID": 1700000000000000009}}
