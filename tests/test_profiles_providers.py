"""Provider profiles: each loads, its quirks build, and a loopback LIST shows its special folders."""

from __future__ import annotations

import imapclient
import pytest

from simulators.imap.engine import ImapSession
from simulators.imap.gmail import gmail_layout
from simulators.launcher import SimulatorWorld
from simulators.profiles import SPECIAL_USE, load_profile, profile_names
from simulators.quirks import build_all
from simulators.store import Store

PROVIDERS = ["gmail", "gmail-de", "m365", "yahoo", "aol", "icloud", "zimbra", "smartermail", "mailenable"]


def test_every_provider_profile_is_listed_and_its_quirks_build():
    assert set(PROVIDERS) <= set(profile_names())
    for name in PROVIDERS:
        profile = load_profile(name)
        assert profile.name == name and profile.imap.capabilities_before_auth
        for front in ("imap", "pop3"):
            build_all(profile.quirks, front)  # unknown names or bad parameters raise


def _caps(profile_name: str) -> tuple[list[str], list[str]]:
    store = Store()
    store.add_account("alice", "pw")
    profile = load_profile(profile_name)
    s = ImapSession(store, profile, build_all(profile.quirks, "imap"), tls_available=False)
    s.start()
    before = s.capabilities()
    s.receive_data(b"a LOGIN alice pw\r\n")
    return before, s.capabilities()


@pytest.mark.parametrize("name,appears", [
    ("gmail", {"UIDPLUS", "MOVE", "SPECIAL-USE", "APPENDLIMIT=35651584"}),
    ("m365", {"MOVE"}),
    ("zimbra", {"UIDPLUS", "MOVE", "MULTIAPPEND"}),
])
def test_capabilities_change_after_login_where_the_provider_does(name, appears):
    before, after = _caps(name)
    assert appears <= set(after) and not (appears & set(before))
    assert "X-GM-EXT-1" in after if name == "gmail" else "X-GM-EXT-1" not in after


def test_yahoo_drops_capabilities_after_login():
    before, after = _caps("yahoo")
    assert "CHILDREN" in before and "CHILDREN" not in after and "AUTH=PLAIN" not in after


@pytest.mark.parametrize("name", PROVIDERS)
def test_loopback_list_shows_special_folders(name):
    profile = load_profile(name)
    store = Store()
    account = store.add_account("alice", "pw")
    gmail_layout(account, profile)  # the special folders, parents \Noselect
    with SimulatorWorld(store, profile) as world:
        h = world.start_imap()
        with imapclient.IMAPClient(h.host, h.port, ssl=False, timeout=10) as c:
            greeting = c.welcome.decode()
            c.login("alice", "pw")
            listed = {folder: flags for flags, _d, folder in c.list_folders()}
    assert profile.imap.greeting.split("{")[0].split("]")[-1].strip()[:10] in greeting
    for key, parts in profile.special_folders.items():
        if key not in SPECIAL_USE:
            continue
        wire = profile.imap.delimiter.join(parts)
        assert wire in listed, (name, wire, sorted(listed))
        if "SPECIAL-USE" in profile.imap.capabilities_after_auth:
            assert SPECIAL_USE[key].encode() in listed[wire]
    if name.startswith("gmail"):
        assert b"\\Noselect" in listed["[Gmail]"]
    if name == "gmail-de":
        assert "[Gmail]/Papierkorb" in listed
