"""Shared set-up of the migrator's peer tests (no tests here).

One Dovecot per test module (per xdist worker); every test takes fresh users from a pool added up
front, because Dovecot re-reads its users file only when the file's mtime (whole seconds) moves.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from imapclient import IMAPClient

from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.peers.dovecot import DovecotServer

PASSWORD = "pw-engine-1"
POOL = 40


@pytest.fixture(scope="module")
def dovecot():
    reason = DovecotServer.availability()
    if reason:
        pytest.skip(reason)
    with DovecotServer() as server:
        for i in range(POOL):
            server.add_user(f"u{i}", PASSWORD)
        deadline = time.monotonic() + 5
        while True:  # wait until Dovecot has re-read the users file
            try:
                with IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=5) as c:
                    c.login(f"u{POOL - 1}", PASSWORD)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        server.pool = iter(f"u{i}" for i in range(POOL))
        yield server


def user(dovecot) -> str:
    return next(dovecot.pool)


def endpoint(dovecot, name: str, password: str = PASSWORD) -> Endpoint:
    return Endpoint(ServerURL.parse(dovecot.url(name)), Secret(password))


def snapshot(dovecot, name: str) -> dict[str, list[tuple[bytes, frozenset, datetime]]]:
    """Folder → sorted (bytes, flags, INTERNALDATE instant) as the server shows them."""
    out = {}
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as c:
        c.login(name, PASSWORD)
        c.normalise_times = False
        for flags, _, folder in c.list_folders():
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                continue
            c.select_folder(folder, readonly=True)
            data = c.fetch(c.search("ALL"), ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
            out[folder] = sorted(
                (v[b"BODY[]"], frozenset(f.decode() for f in v[b"FLAGS"] if f != b"\\Recent"),
                 v[b"INTERNALDATE"].astimezone(timezone.utc))
                for v in data.values()
            )
    return out
