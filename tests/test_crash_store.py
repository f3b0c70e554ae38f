"""Simulator stores on disk (``simulators.persist``, ``quirkmail serve --store-dir``): a restart,
or a SIGKILL in the middle of an APPEND, brings back exactly what was acknowledged."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from imapclient import IMAPClient

from simulators.fixtures import FixtureSpec, populate
from simulators.persist import StorePersistence
from simulators.profiles import load_profile
from simulators.store import ItemKind, PimItem, Store

PASSWORD = "store-pw-1"
BIG = 400_000  # bytes of the APPEND that is killed half way


def picture(store: Store) -> dict:
    """Everything a restart must keep, per account and folder."""
    return {
        (name, f.path): (f.uidvalidity, f.uidnext, f.special_use, f.folder_class,
                         [(m.uid, m.raw, m.internaldate, frozenset(m.flags), m.extra) for m in f.messages],
                         [(i.kind, i.item_id, i.payload) for i in f.items])
        for name, a in store.accounts.items() for f in a.folders.values()
    }


def test_round_trip_of_every_change(tmp_path):
    store = Store()
    account = store.add_account("sam", PASSWORD)
    populate(account, FixtureSpec(seed=8, messages=12, folders=4, contacts=2), load_profile("generic"))
    saved = StorePersistence(store, tmp_path)  # a store made before attaching is saved whole
    when = datetime(2021, 7, 8, 9, 10, 11, tzinfo=timezone(timedelta(hours=-4)))
    account.append(("INBOX",), b"Subject: late\r\n\r\nx\r\n", flags={"\\Seen", "$Label1"}, internaldate=when,
                   extra={"x-gm-msgid": 17})
    inbox = account.folder(("INBOX",))
    inbox.messages[0].flags.add("\\Deleted")
    account.expunge(("INBOX",))
    inbox.messages[0].flags.add("\\Flagged")
    store.notify(account, inbox)  # what the IMAP front does after a STORE
    account.create_folder(("Projects", "2026"))
    account.rename_folder(("Projects",), ("Work",))
    account.add_item(("INBOX",), PimItem(ItemKind.NOTE, "n1", "BEGIN:VJOURNAL\r\nEND:VJOURNAL\r\n"))
    saved.close()
    again = Store()
    StorePersistence(again, tmp_path).close()
    assert picture(again) == picture(store)
    assert again.account("sam").password == PASSWORD
    assert again.account("sam").folder(("INBOX",)).messages[-1].internaldate.utcoffset() == timedelta(hours=-4)
    newest = max(f.uidvalidity for f in again.account("sam").folders.values())
    assert again.account("sam").create_folder(("Fresh",)).uidvalidity > newest  # never reused
    assert oct((tmp_path / "store.sqlite").stat().st_mode & 0o777) == "0o600"


def serve(store_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    """``quirkmail serve`` (implicit TLS IMAP) in a child process: (process, port, its CA file)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), QM_PW=PASSWORD)
    proc = subprocess.Popen([sys.executable, "-u", "-m", "scenarios", "serve", "--profile", "generic", "--fixture",
                             "seed=5,messages=9,folders=3", "--user", "sam", "--password-env", "QM_PW", "--fronts",
                             "imap", "--implicit-tls", "--store-dir", str(store_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = cafile = None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.startswith("imap:"):
            port = int(line.rsplit(":", 1)[1])
        elif line.startswith("cafile:"):
            cafile = Path(line.split(":", 1)[1].strip())
        elif line.startswith("Ctrl-C stops") or time.monotonic() > deadline:
            break
    assert port and cafile, proc.stderr.read() if proc.poll() is not None else "no start-up lines"
    return proc, port, cafile


def mailbox(port: int, cafile: Path) -> dict:
    """Folder → (UIDVALIDITY, [(UID, bytes, INTERNALDATE instant, flags)])."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=ctx, timeout=30) as c:
        c.login("sam", PASSWORD)
        c.normalise_times = False
        out = {}
        for _, _, name in c.list_folders():
            info = c.select_folder(name, readonly=True)
            data = c.fetch(c.search("ALL"), ["BODY.PEEK[]", "INTERNALDATE", "FLAGS"]) if info[b"EXISTS"] else {}
            out[name] = (info[b"UIDVALIDITY"], sorted(  # imapclient fetches by UID: the keys are UIDs
                (uid, v[b"BODY[]"], v[b"INTERNALDATE"].astimezone(timezone.utc),
                 frozenset(f for f in v[b"FLAGS"] if f != b"\\Recent")) for uid, v in data.items()))
        return out


@pytest.mark.slow
def test_sigkill_during_a_large_append_leaves_no_partial_message(tmp_path):
    proc, port, cafile = serve(tmp_path / "store")
    try:
        ctx = ssl.create_default_context(cafile=str(cafile))
        with IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=ctx, timeout=30) as c:
            c.login("sam", PASSWORD)
            c.append("INBOX", b"Subject: whole\r\nMessage-ID: <whole@x>\r\n\r\nacknowledged\r\n", flags=[b"\\Flagged"],
                     msg_time=datetime(2020, 2, 29, 12, 0, tzinfo=timezone.utc))
            c.select_folder("INBOX")
            c.add_flags(c.search("ALL")[:1], [b"\\Answered"])
        before = mailbox(port, cafile)
        # A large APPEND whose literal arrives slowly: half of it, then the server is killed.
        raw = b"Subject: partial\r\nMessage-ID: <partial@x>\r\n\r\n" + b"y" * (BIG - 60) + b"\r\n"
        with socket.create_connection(("127.0.0.1", port)) as plain:
            s = ctx.wrap_socket(plain, server_hostname="127.0.0.1")
            s.recv(4096)  # greeting
            s.sendall(f"a LOGIN sam {PASSWORD}\r\n".encode())
            assert b"a OK" in s.recv(4096)
            s.sendall(f"b APPEND INBOX {{{len(raw)}}}\r\n".encode())
            assert s.recv(4096).startswith(b"+")
            for i in range(0, len(raw) // 2, 20_000):
                s.sendall(raw[i:i + 20_000])
                time.sleep(0.01)
            time.sleep(0.3)  # the server holds half a literal
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    proc, port, cafile = serve(tmp_path / "store")  # the same store directory: nothing is generated again
    try:
        after = mailbox(port, cafile)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert after == before  # UIDVALIDITY, UIDs, bytes, INTERNALDATE instants, flags: as acknowledged
    inbox = after["INBOX"][1]
    assert any(b"acknowledged" in m[1] and {b"\\Flagged"} <= m[3] for m in inbox)
    assert not any(b"<partial@x>" in m[1] for m in inbox)  # absent, never partial
    assert sum(len(v[1]) for v in after.values()) == 9 + 1
