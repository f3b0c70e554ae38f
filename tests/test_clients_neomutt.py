"""neomutt, a real terminal mail client, opens the simulated mailbox in tmux: what a user sees.

The screen is read with ``tmux capture-pane`` (tests/clients_tui.py): the index lists the newest
messages of the fixture (sender address and subject, newest INTERNALDATE first), the status line
counts the folder's messages, a message opens on its body text, and ``c`` changes folder. A
throttled SELECT and Gmail's connection-limit ALERT reach the user as the server's own words, in
neomutt's error history (the message line shows them only for a moment before the next one).
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.utils import parseaddr

import pytest

from simulators.store import Store
from tests.clients_support import PASSWORD, USER, fixture_store, serve
from tests.clients_tui import STATUS, Tmux, neomutt_rc, start_neomutt

pytestmark = pytest.mark.peer

NEWEST = 3  # index lines checked, from the top


def index_line(number: int, raw: bytes) -> str:
    """The index line our ``index_format`` ("%4C|%-30.30a|%s") draws for a message."""
    msg = message_from_bytes(raw, policy=policy.default)
    address = parseaddr(str(msg["From"]))[1]
    subject = " ".join(str(msg["Subject"]).split())
    return f"{number:4}|{address[:30]:<30}|{subject}"


def newest_first(store: Store, folder: tuple[str, ...]) -> list[bytes]:
    messages = store.account(USER).folder(folder).messages
    return [m.raw for m in sorted(messages, key=lambda m: m.internaldate, reverse=True)]


def body_lines(raw: bytes, count: int = 3) -> list[str]:
    """The first non-empty lines of the message's text/plain body, as a reader sees them."""
    body = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    return [line.rstrip() for line in body.get_content().splitlines() if line.strip()][:count]


@pytest.fixture
def neomutt(tmp_path):
    """Start neomutt on a served world; the tmux server is killed at teardown, whatever happened."""
    started: list[Tmux] = []

    def start(handle, cafile, *, password: str = PASSWORD, extra: str = "") -> Tmux:
        rc = neomutt_rc(tmp_path, handle, cafile, password)
        if extra:
            rc.write_text(rc.read_text() + extra)
        started.append(start_neomutt(tmp_path, rc))
        return started[-1]

    yield start
    for tmux in started:
        tmux.close()


def test_index_status_message_and_folder_change(neomutt):
    store = fixture_store("generic", seed=3, messages=20)
    inbox, sent = newest_first(store, ("INBOX",)), newest_first(store, ("Sent",))
    assert len(inbox) > NEWEST and sent
    with serve(store, "generic") as (world, handle):
        tmux = neomutt(handle, world.cafile, extra="ignore *\nunignore from: subject:\n")
        status = STATUS.format(count=len(inbox))
        screen = tmux.wait_for(f"the INBOX index and {status}", lambda s: status in s and "|" in s)
        lines = screen.splitlines()
        for n, raw in enumerate(inbox[:NEWEST], start=1):
            assert lines[n - 1].rstrip() == index_line(n, raw)[: len(lines[n - 1].rstrip())]
            assert len(lines[n - 1].rstrip()) >= 40  # number, address and the subject's start, at least
        assert "[+INBOX]" in screen

        tmux.keys("=", "Enter")  # first entry (the newest), open it
        expected = body_lines(inbox[0])
        screen = tmux.wait_for("the newest message's body", lambda s: all(line in s for line in expected))
        assert "1/%d:" % len(inbox) in screen  # the pager's status: message 1 of the folder

        tmux.keys("q", "c")
        tmux.wait_for("the change-folder prompt", lambda s: "Open mailbox" in s)
        tmux.keys("C-u")  # clear the suggested name
        tmux.keys("=Sent", literal=True)
        tmux.keys("Enter")
        status = STATUS.format(count=len(sent))
        screen = tmux.wait_for(f"Sent with {status}", lambda s: "[+Sent]" in s and status in s)
        assert screen.splitlines()[0].rstrip() == index_line(1, sent[0])[: len(screen.splitlines()[0].rstrip())]


HISTORY = "bind index,pager,generic \\Ce error-history\n"


@pytest.mark.parametrize("quirk, password, said", [
    # m365-throttled-backoff: commands after the third of the session are refused: SELECT is.
    pytest.param("m365-throttled-backoff:after=3,times=50,backoff_ms=5000", PASSWORD,
                 "<E> Request is throttled. Suggested Backoff Time: 5000 milliseconds", id="m365-throttled"),
    # Refused logins: neomutt tries LOGIN, AUTHENTICATE PLAIN and LOGIN again, ~1 s apart.
    pytest.param("gmail-too-many-connections:limit=0", PASSWORD,
                 "<M> IMAP command failed: a0000 NO [ALERT] Too many simultaneous connections. (Failure)",
                 id="gmail-alert-connections", marks=pytest.mark.slow),
    pytest.param("app-password-required", "the-account-password",
                 "<M> IMAP command failed: a0000 NO [ALERT] Application-specific password required: "
                 "https://support.google.com/accounts/answer/185833 (Failure)",
                 id="gmail-alert-app-password", marks=pytest.mark.slow),
])
def test_refusal_reaches_the_user_in_the_servers_words(neomutt, quirk, password, said):
    with serve(fixture_store("generic", seed=3, messages=4), "generic", quirk) as (world, handle):
        tmux = neomutt(handle, world.cafile, password=password, extra=HISTORY)
        tmux.wait_for("that INBOX cannot be opened", lambda s: "Unable to open mailbox" in s)
        tmux.keys("C-e")
        screen = tmux.wait_for("the error history", lambda s: "<E> Unable to open mailbox" in s)
        assert said in screen.replace("\n+", "")  # a long line goes on in the next, after a "+"
        assert STATUS.format(count=0) in screen or "Msgs" not in screen  # nothing was opened
