from datetime import datetime, timedelta, timezone

import pytest

from simulators.store import INBOX, FolderExists, NoSuchFolder, Store, normalise_path

CET = timezone(timedelta(hours=1))


def make_account():
    store = Store()
    return store, store.add_account("alice@example.com", "pw")


def test_append_assigns_increasing_uids_and_keeps_bytes_exactly():
    _, acct = make_account()
    raw = b"Subject: x\n\nbare LF\x00 and NUL \xff\r\n"
    first = acct.append(INBOX, raw, flags={"\\Seen"}, internaldate=datetime(2020, 1, 2, 3, 4, 5, tzinfo=CET))
    second = acct.append(INBOX, b"Subject: y\r\n\r\n")
    assert (first.uid, second.uid) == (1, 2)
    assert acct.folder(INBOX).uidnext == 3
    assert acct.folder(INBOX).by_uid(1).raw == raw
    assert first.internaldate.utcoffset() == timedelta(hours=1)


def test_internaldate_must_be_aware():
    _, acct = make_account()
    with pytest.raises(ValueError):
        acct.append(INBOX, b"x", internaldate=datetime(2020, 1, 1))


def test_expunge_removes_only_deleted_and_uids_are_not_reused():
    _, acct = make_account()
    for i in range(3):
        acct.append(INBOX, b"m%d" % i, flags={"\\Deleted"} if i != 1 else set())
    assert acct.expunge(INBOX, uids=[1]) == [1]
    assert acct.expunge(INBOX) == [3]
    assert acct.folder(INBOX).uids() == [2]
    assert acct.append(INBOX, b"new").uid == 4


def test_create_makes_parents_and_refuses_duplicates():
    _, acct = make_account()
    acct.create_folder(("Work", "2024"))
    assert acct.has_folder(("Work",))
    assert [f.path for f in acct.children(("Work",))] == [("Work", "2024")]
    with pytest.raises(FolderExists):
        acct.create_folder(("Work", "2024"))
    assert acct.create_folder(("Work", "2024"), exist_ok=True).path == ("Work", "2024")


def test_uidvalidity_differs_per_folder_and_changes_on_recreate():
    _, acct = make_account()
    a = acct.create_folder(("A",)).uidvalidity
    acct.delete_folder(("A",))
    assert acct.create_folder(("A",)).uidvalidity != a
    assert acct.folder(INBOX).uidvalidity != a


def test_rename_moves_subtree_and_inbox_rename_leaves_empty_inbox():
    _, acct = make_account()
    acct.create_folder(("Old", "Child"))
    acct.rename_folder(("Old",), ("New",))
    assert acct.has_folder(("New", "Child")) and not acct.has_folder(("Old",))
    acct.append(INBOX, b"m")
    acct.rename_folder(INBOX, ("Archive-2020",))
    assert len(acct.folder(("Archive-2020",)).messages) == 1
    assert acct.folder(INBOX).messages == []


def test_inbox_is_case_insensitive_and_bad_paths_are_refused():
    assert normalise_path(("inbox", "Sub")) == ("INBOX", "Sub")
    assert normalise_path("Inbox") == ("INBOX",)
    with pytest.raises(ValueError):
        normalise_path(("A", ""))
    _, acct = make_account()
    with pytest.raises(NoSuchFolder):
        acct.folder(("Missing",))


def test_listeners_hear_every_change():
    store, acct = make_account()
    heard = []
    store.subscribe(lambda account, folder: heard.append(folder.path if folder else None))
    acct.create_folder(("X",))
    acct.append(("X",), b"m", flags={"\\Deleted"})
    acct.expunge(("X",))
    acct.delete_folder(("X",))
    assert heard == [("X",), ("X",), ("X",), None]
