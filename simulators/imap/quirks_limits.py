"""IMAP quirks of limits and size: bandwidth budgets, slow large folders, renumbered folders.

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
Everything is deterministic: budgets count bytes, latencies follow folder sizes, renumbering
follows the account's visits; time windows read the session's clock (the adapter's reactor, a
``twisted.internet.task.Clock`` in tests) and have a count-based alternative for scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from simulators.imap.engine import State
from simulators.imap.syntax import ImapSyntaxError, parse_fetch_atts
from simulators.quirks import Quirk, register

MB = 1024 * 1024


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Visits:
    """Which sessions of each account are open, so a login can tell a new visit (a login while none
    of the account's sessions is open: in a scenario, the next migration run) from one more
    connection of the same visit. A session that said LOGOUT counts as gone at once: its
    connection may close a moment after the client has moved on."""

    def __init__(self) -> None:
        self._open: dict[str, dict[int, object]] = {}
        self.count: dict[str, int] = {}

    def is_new(self, user: str) -> bool:
        return not any(s.state is not State.LOGOUT for s in self._open.get(user, {}).values())

    def opened(self, user: str, session) -> int:
        """Note a session logging in; returns the account's visit number."""
        if self.is_new(user):
            self.count[user] = self.count.get(user, 0) + 1
        self._open.setdefault(user, {})[id(session)] = session
        return self.count[user]

    def ended(self, session) -> None:
        for sessions in self._open.values():  # the login may have failed after we noted it
            sessions.pop(id(session), None)


def _valid_login(session, user: str, password: str) -> bool:
    account = session.store.accounts.get(user)
    return account is not None and account.password == password


# Bandwidth -------------------------------------------------------------------------------------


@dataclass
class _Budget:
    """One account's spending in the current window."""

    down: int = 0
    up: int = 0
    capped_at: float | None = None  # clock seconds when a budget was passed


@register
class GmailBandwidthCap(Quirk):
    """Gmail: past ~2500 MB/day down (500 MB up), `* BYE Session expired, please login again`.

    Gmail: IMAP download is capped at 2500 MB a day and upload at 500 MB per account, summed over
    all its connections (Google Workspace "Gmail bandwidth limits"; chatwoot#6082, imapsync's
    FAQ.Gmail). Past a budget, every connection of the account is ended with
    `* BYE Session expired, please login again` before its next command (``mode: bye``), or its
    FETCH responses trickle at ``trickle_bps`` bytes/s (``mode: trickle``); new logins get
    `NO [OVERQUOTA] Account exceeded command or bandwidth limits.` (as imapclient users quote it,
    ljmerza/ha-email-sensor#16) until ``reset_after_seconds`` have passed on the server's clock,
    or — deterministic, for scenarios — with ``reset_on_new_visit``, when a login comes while
    none of the account's sessions is open: every such visit (the next run) is a new window, and a
    client reconnecting within its run stays refused. Bytes count per FETCH response (down) and APPENDed message (up); the response
    that crosses the budget still goes out whole.
    """

    name = "gmail-bandwidth-cap"
    protocols = frozenset({"imap"})

    class Params(_Params):
        down_bytes: int = 2500 * MB
        up_bytes: int = 500 * MB
        mode: Literal["bye", "trickle"] = "bye"
        trickle_bps: int = 4096
        reset_after_seconds: float = 86400.0
        reset_on_new_visit: bool = False  # a login finding no open session of the account starts a new window
        bye_text: str = "Session expired, please login again"
        login_reply: str = "NO [OVERQUOTA] Account exceeded command or bandwidth limits."

    def __init__(self, params):
        super().__init__(params)
        self._budgets: dict[str, _Budget] = {}
        self._visits = _Visits()

    def _budget(self, user: str) -> _Budget:
        return self._budgets.setdefault(user, _Budget())

    def _capped(self, session) -> bool:
        return session.account is not None and self._budget(session.account.username).capped_at is not None

    def imap_transfer(self, session, direction, nbytes):
        if session.account is None:
            return
        b = self._budget(session.account.username)
        if direction == "down":
            b.down += nbytes
        else:
            b.up += nbytes
        if b.capped_at is None and (b.down >= self.params.down_bytes or b.up >= self.params.up_bytes):
            b.capped_at = session.clock.seconds()

    def imap_login(self, session, user, password):
        if not _valid_login(session, user, password):
            return None
        p = self.params
        b = self._budget(user)
        waited = b.capped_at is not None and session.clock.seconds() - b.capped_at >= p.reset_after_seconds
        if waited or (p.reset_on_new_visit and self._visits.is_new(user)):
            b = self._budgets[user] = _Budget()  # a new window
        if b.capped_at is not None:
            return p.login_reply
        self._visits.opened(user, session)
        return None

    def imap_session_end(self, session):
        self._visits.ended(session)

    def imap_bye(self, session, command):
        if self.params.mode == "bye" and command.name != "LOGOUT" and self._capped(session):
            return self.params.bye_text
        return None

    def imap_pace(self, session):
        return self.params.trickle_bps if self.params.mode == "trickle" and self._capped(session) else None

    def used(self, user: str) -> tuple[int, int]:
        """(bytes down, bytes up) of ``user`` in the current window (for tests and ``serve``)."""
        b = self._budget(user)
        return b.down, b.up


# Large folders ---------------------------------------------------------------------------------

_HEADER_ATTS = frozenset({"ENVELOPE", "RFC822.HEADER"})


@register
class SlowLargeFolder(Quirk):
    """Large folders answer slowly: SELECT/SEARCH/header FETCH take ``ms_per_1000`` per 1000 messages.

    Gmail, Exchange and Zimbra take minutes over SELECT, SEARCH and header FETCHes of folders of
    30k–150k messages (imapsync FAQ "--timeout", offlineimap#653 "seems to stall when syncing with
    gmail"). Here a folder of at least ``threshold`` messages holds back the reply of SELECT /
    EXAMINE and SEARCH by ``ms_per_1000`` per 1000 messages in the folder, and of a FETCH of
    header items (BODY[HEADER...], ENVELOPE, RFC822.HEADER) per 1000 messages fetched. The rest
    (STATUS, FETCH of sizes, flags and bodies) answers at once.
    """

    name = "slow-large-folder"
    protocols = frozenset({"imap"})

    class Params(_Params):
        ms_per_1000: float = 2000.0
        threshold: int = 1000

    def imap_delay(self, session, command):
        view = session.view
        if view is None or len(view) < self.params.threshold:
            return None
        base = command.name.removeprefix("UID ")
        if base in ("SELECT", "EXAMINE", "SEARCH"):
            return self._seconds(len(view))
        if base == "FETCH" and len(command.args) == 2 and _asks_headers(command.args[1]):
            try:
                count = len(view.resolve(command.args[0], uid=command.name.startswith("UID ")))
            except ImapSyntaxError:  # the command itself already failed on it
                return None
            return self._seconds(count)
        return None

    def _seconds(self, messages: int) -> float:
        return self.params.ms_per_1000 * messages / 1000 / 1000


def _asks_headers(items) -> bool:
    try:
        atts = parse_fetch_atts(items)
    except ImapSyntaxError:
        return False
    return any(a.name in _HEADER_ATTS or (a.section and (a.text or "").startswith("HEADER")) for a in atts)


# UIDVALIDITY -----------------------------------------------------------------------------------


@register
class UidvalidityChange(Quirk):
    """The server renumbers folders between visits: a new UIDVALIDITY and UIDs from 1 again.

    After a server move or a restore (and on some Courier set-ups), a folder comes back with a new
    UIDVALIDITY and new UIDs (RFC 3501 §2.3.1.1: the client must then forget every UID it
    remembered). Here the account's ``on_visit``-th visit — a login while none of its sessions is
    open, i.e. the next migration run — first renumbers ``folders`` ("/"-joined store paths; empty:
    every folder): UIDVALIDITY becomes a new value, the messages keep their order and get UIDs
    1..n. Once per visit number; nothing else changes.
    """

    name = "uidvalidity-change"
    protocols = frozenset({"imap"})

    class Params(_Params):
        on_visit: int = 2
        folders: list[str] = []

        @field_validator("folders", mode="before")
        @classmethod
        def _split(cls, value):
            return value.split("|") if isinstance(value, str) else value  # "INBOX|Sent" on the command line

    def __init__(self, params):
        super().__init__(params)
        self._visits = _Visits()
        self._done: set[str] = set()

    def imap_login(self, session, user, password):
        if not _valid_login(session, user, password):
            return None
        if self._visits.opened(user, session) == self.params.on_visit and user not in self._done:
            self._done.add(user)
            self._renumber(session.store, session.store.accounts[user])
        return None

    def imap_session_end(self, session):
        self._visits.ended(session)

    def _renumber(self, store, account) -> None:
        wanted = {tuple(f.split("/")) for f in self.params.folders}
        with store.lock:
            for path, folder in account.folders.items():
                if wanted and path not in wanted:
                    continue
                folder.uidvalidity = store.next_uidvalidity()
                for uid, item in enumerate(folder.messages, start=1):
                    item.uid = uid
                folder.uidnext = len(folder.messages) + 1
        store.notify(account, None)
