"""Provider refusals reach real clients intact (QUIRKS.md: m365-throttled-backoff,
gmail-throttled-suffix, gmail-too-many-connections, app-password-required).

What each client does with them, as measured here (mbsync 1.4.4, offlineimap3 8.0, imapclient 4.1):

- M365 throttling (a NO to one command): mbsync prints the reply, skips that one message and
  still exits 0 — and a re-run does not fetch it either: mbsync reads a NO to UID FETCH as "the
  message is gone" and records the UID as done. A silent loss for whoever migrates with it. offlineimap prints it (as a repr of bytes), abandons
  the message or the folder the refused command was for (which one depends on its threads) and
  exits 1. imapclient raises ``IMAP4.error("select failed: <server text>")``.
- Gmail's ``[THROTTLED]`` rides on OK replies: every client carries on and copies everything;
  the suffix is visible only in their protocol traces (and in imapclient's returned text).
- Too many connections and app passwords refuse the login: both CLI clients print the ALERT and
  exit 1 having copied nothing (offlineimap tries AUTHENTICATE PLAIN, then LOGIN: two refusals);
  imapclient raises ``LoginError`` whose text is ``str()`` of the server's bytes.
"""

from __future__ import annotations

import imaplib
from pathlib import Path

import imapclient
import pytest

from tests.clients_support import (
    CLIENTS, PASSWORD, USER, client_for, expected_folders, fixture_store, imap_client, pull, serve,
)

M365_THROTTLED = "Request is throttled. Suggested Backoff Time: 299609 milliseconds"
TOO_MANY = "[ALERT] Too many simultaneous connections. (Failure)"
APP_PASSWORD = (
    "[ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"
)
# How each CLI client shows a NO reply's text.
SHOWN = {
    "mbsync": "returned an error: NO {text}",
    "offlineimap": "[b'{text}']",
}


def _arrived(client, run, store, profile: str) -> int:
    return sum(len(m) for m in client.received(run, expected_folders(store, profile)).values())


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENTS)
def test_m365_throttling_reply_reaches_the_client(name: str, tmp_path: Path):
    store = fixture_store("m365")
    client = client_for(name, "m365")
    with serve(store, "m365", "m365-throttled-backoff:after=6") as (world, handle):
        run = client.run(handle, world.cafile, tmp_path)
        arrived = _arrived(client, run, store, "m365")
        assert SHOWN[name].format(text=M365_THROTTLED) in run.output, run.output
        if name == "mbsync":
            assert run.returncode == 0  # a refused FETCH is not a failed run for mbsync
            assert arrived == 11
            # Throttled once only (times=1), yet a re-run does not fetch it: mbsync took the NO
            # for a vanished message and its state has moved past that UID (MaxPulledUid).
            again = client.run(handle, world.cafile, tmp_path)
            assert again.returncode == 0, again.output
            assert _arrived(client, again, store, "m365") == 11
        else:
            assert run.returncode == 1
            assert arrived < 12


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENTS)
def test_gmail_throttled_suffix_is_carried_and_ignored(name: str, tmp_path: Path):
    trace = ("-Dn",) if name == "mbsync" else ("-d", "imap")  # protocol traces
    store, client, run = pull(name, "gmail", tmp_path, "gmail-throttled-suffix:after=4,times=3", extra=trace)
    throttled = [line for line in run.output.splitlines() if "[THROTTLED]" in line]
    assert run.returncode == 0  # (no run.output in messages: a trace may show the login)
    assert _arrived(client, run, store, "gmail") == 24
    # Three tagged OK replies carried the suffix at their very end, as Gmail puts it.
    ends = {"mbsync": " [THROTTLED]", "offlineimap": " [THROTTLED]\\r\\n'"}[name]
    assert sum(line.endswith(ends) for line in throttled) == 3, throttled


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENTS)
def test_gmail_too_many_connections_refuses_the_login(name: str, tmp_path: Path):
    store = fixture_store("gmail")
    client = client_for(name, "gmail")
    with serve(store, "gmail", "gmail-too-many-connections:limit=1") as (world, handle):
        with imap_client(world, handle) as busy:  # another client holds the account's only slot
            busy.login(USER, PASSWORD)
            run = client.run(handle, world.cafile, tmp_path)
    _assert_login_refused(name, run, TOO_MANY)
    assert _arrived(client, run, store, "gmail") == 0


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENTS)
def test_app_password_alert_reaches_the_client(name: str, tmp_path: Path):
    _store, _client, run = pull(name, "gmail", tmp_path, password="normal-password")
    _assert_login_refused(name, run, APP_PASSWORD)


def _assert_login_refused(name: str, run, text: str) -> None:
    assert run.returncode == 1, run.output
    if name == "mbsync":
        assert f"IMAP command 'LOGIN <user> <pass>' returned an error: NO {text}" in run.output
        assert f"*** IMAP ALERT *** {text.removeprefix('[ALERT] ')}" in run.output
    else:
        assert f"PLAIN authentication failed: b'{text}'" in run.output
        assert f"LOGIN authentication failed: b'{text}'" in run.output


def test_imapclient_gets_every_refusal_verbatim():
    with serve(fixture_store("m365"), "m365", "m365-throttled-backoff:after=0") as (world, handle):
        with imap_client(world, handle) as client:
            client.login(USER, PASSWORD)
            with pytest.raises(imaplib.IMAP4.error) as throttled:
                client.select_folder("INBOX")
            assert str(throttled.value) == f"select failed: {M365_THROTTLED}"
            assert client.select_folder("INBOX")[b"EXISTS"] == 6  # once only: the retry works
    quirks = ("gmail-throttled-suffix:after=0", "gmail-too-many-connections:limit=1")
    with serve(fixture_store("gmail"), "gmail", *quirks) as (world, handle):
        with imap_client(world, handle) as client:
            client.login(USER, PASSWORD)
            assert client.noop() == (b"NOOP completed (0.001 + 0.000 secs). [THROTTLED]", [])
            second = imap_client(world, handle)
            with pytest.raises(imapclient.exceptions.LoginError) as too_many:
                second.login(USER, PASSWORD)
            assert str(too_many.value) == str(TOO_MANY.encode())
            with pytest.raises(imapclient.exceptions.LoginError) as app_password:
                second.login(USER, "normal-password")
            assert str(app_password.value) == str(APP_PASSWORD.encode())
            second.shutdown()
