"""A clean pull by real clients (mbsync, offlineimap3, imapclient) from the gmail and m365 profiles.

Every message of the fixture must arrive in every selectable folder, byte for byte once each
client's documented rewrites are undone (tests/clients_support.py). Against Gmail both clients
store each label folder's copy on its own, All Mail included (so one message lands two or three
times, as their Gmail users see), and neither makes a mailbox of the \\Noselect ``[Gmail]``:
offlineimap drops \\Noselect folders from its folder list (repository/IMAP.py ``getfolders``),
mbsync only makes ``[Gmail]`` the parent directory of the nested Maildirs. offlineimap's own
Gmail label sync (``synclabels``) writes each copy's X-GM-LABELS into an ``X-Keywords`` line.
"""

from __future__ import annotations

from pathlib import Path

import imapclient
import pytest

from simulators.imap.gmail import SYSTEM_LABELS
from simulators.imap.names import Names
from simulators.store import INBOX
from tests.clients_support import (
    CLIENTS,
    OfflineImapGmailLabels,
    PASSWORD,
    USER,
    expected_folders,
    fixture_store,
    imap_client,
    pull,
    serve,
)

PROFILES = ("gmail", "m365")
NOSELECT = rb"\Noselect"  # as imapclient gives LIST flags


@pytest.mark.peer
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", CLIENTS)
def test_clean_pull_brings_every_message(name: str, profile: str, tmp_path: Path):
    store, client, run = pull(name, profile, tmp_path)
    want = expected_folders(store, profile)
    assert run.returncode == 0, run.output
    got = client.received(run, want)
    assert got == want
    # The fixture's 12 messages; on Gmail each also in All Mail, some in a user label too.
    assert sum(len(m) for m in want.values()) == (24 if profile == "gmail" else 12)
    if profile == "gmail":
        _assert_gmail_layout(name, client, run, store, got)


def _assert_gmail_layout(name: str, client, run, store, got: dict[str, list[bytes]]) -> None:
    """Each label folder's copy stored on its own; no mailbox for the \\Noselect ``[Gmail]``."""
    account = store.account(USER)
    distinct = {m.extra["gm_msgid"] for f in account.folders.values() for m in f.messages}
    assert len(got["[Gmail]/All Mail"]) == len(distinct) == 12
    assert len(got["INBOX"]) + len(got["[Gmail]/All Mail"]) > len(distinct)  # INBOX mail twice
    gmail_dir = client.local_box(run.root, "[Gmail]")
    assert not (gmail_dir / "cur").exists()
    if name == "offlineimap":
        assert not gmail_dir.exists()
        created = [line.removeprefix("Creating folder ") for line in run.output.splitlines()
                   if line.startswith("Creating folder ")]
        assert "[Gmail].All Mail[local]" in created and not any(c.startswith("[Gmail][") for c in created)
    else:
        assert (gmail_dir / "All Mail" / "cur").is_dir()


@pytest.mark.peer
def test_offlineimap_label_sync_writes_each_messages_labels(tmp_path: Path):
    client = OfflineImapGmailLabels()
    store, _client, run = pull(client, "gmail", tmp_path)
    assert run.returncode == 0, run.output
    want = expected_folders(store, "gmail")
    assert client.received(run, want) == want  # the X-Keywords line is its only change
    # Each copy carries its message's labels: every folder but All Mail holding it, as Gmail names them.
    names, account = Names("/"), store.account(USER)
    labels: dict[bytes, set[str]] = {}
    for path, folder in account.folders.items():
        if folder.special_use == "\\All":
            continue
        name = "\\Inbox" if path == INBOX else SYSTEM_LABELS.get(folder.special_use, names.to_wire(path).decode())
        for m in folder.messages:
            labels.setdefault(m.raw.split(b"Message-ID: ")[1].split(b"\r\n")[0], set()).add(name)
    all_mail = client.local_box(run.root, "[Gmail]/All Mail")
    seen = {}
    for f in [*(all_mail / "cur").iterdir(), *(all_mail / "new").iterdir()]:
        data = f.read_bytes()
        seen[data.split(b"Message-ID: ")[1].split(b"\n")[0]] = client.labels(data)
    assert len(seen) == 12
    assert seen == {mid: labels.get(mid, set()) for mid in seen}
    assert sum(lb == {"\\Inbox", "R&AOk-unions"} for lb in seen.values()) == 1  # mUTF-7, as sent


@pytest.mark.parametrize("profile", PROFILES)
def test_imapclient_reads_every_message_verbatim(profile: str):
    store = fixture_store(profile)
    account = store.account(USER)
    with serve(store, profile) as (world, handle), imap_client(world, handle) as client:
        client.login(USER, PASSWORD)
        listed = client.list_folders()
        got = {}
        for flags, _delim, name in listed:
            if NOSELECT in flags:
                with pytest.raises(imapclient.exceptions.IMAPClientError) as refused:
                    client.select_folder(name, readonly=True)
                continue
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            got[name] = sorted(v[b"BODY[]"] for v in fetched.values())
    want = {
        "/".join(path): sorted(m.raw for m in folder.messages)
        for path, folder in account.folders.items()
        if folder.selectable
    }
    assert got == want  # CRLF and all: imapclient changes nothing
    if profile == "gmail":
        assert str(refused.value) == (
            "select failed: [NONEXISTENT] Unknown Mailbox: [Gmail] (now in authenticated state) (Failure)"
        )
