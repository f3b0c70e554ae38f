"""Authentication quirks: XOAUTH2 errors, expiring tokens, capabilities that change at login.

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
XOAUTH2 itself is the fronts' (``simulators.imap.sasl``, ``simulators.pop3.engine``): by default
the account's password doubles as its bearer token; these quirks change what a token gets.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator

from simulators.pop3.quirks import offer_sasl
from simulators.quirks import Quirk, register
from simulators.xoauth2 import error_challenge

GMAIL_INVALID_CREDENTIALS = "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _names(value):
    # On the command line (name:key=value) a list is written "MOVE|UIDPLUS".
    return value.split("|") if isinstance(value, str) else value


def _offer_xoauth2(caps: list[str], authenticated: bool) -> list[str] | None:
    """``AUTH=XOAUTH2`` added to the pre-login capabilities when the profile lacks it."""
    return None if authenticated or "AUTH=XOAUTH2" in caps else caps + ["AUTH=XOAUTH2"]


@register
class Xoauth2ErrorContinuation(Quirk):
    """Gmail IMAP: a refused XOAUTH2 token gets `+ <base64 JSON>`; the NO only after the client's empty line.

    The continuation is the base64 of compact JSON such as
    ``{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`` (Google's "OAuth 2.0
    Mechanism" page, developers.google.com/gmail/imap/xoauth2-protocol); whatever the client sends
    then (it should be an empty line) is answered with
    `NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)` (as imapsync and offlineimap users
    quote imap.gmail.com). A right token logs in; LOGIN and the other mechanisms are unaffected.
    ``AUTH=XOAUTH2`` is advertised before login when the profile does not.
    """

    name = "xoauth2-error-continuation"
    protocols = frozenset({"imap"})

    class Params(_Params):
        status: str = "400"
        schemes: str = "Bearer"
        scope: str = "https://mail.google.com/"
        reply: str = GMAIL_INVALID_CREDENTIALS

    def imap_capabilities(self, caps, authenticated):
        return _offer_xoauth2(caps, authenticated)

    def imap_sasl_failure(self, session, mechanism, reply):
        if mechanism != "XOAUTH2":
            return None
        return error_challenge(self.params.status, self.params.schemes, self.params.scope), self.params.reply


@dataclass
class _Grant:
    """One bearer token: whose it is, how often it logged in, when it was first used."""

    user: str
    logins: int = 0
    first_used: float | None = None


@register
class OAuthTokenExpiry(Quirk):
    """Gmail/M365: an access token stops working after ~3600 s: `NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)`.

    A token is refused once ``after_seconds`` have passed since its first login, or once it has
    logged in ``after_logins`` times (deterministic, for tests). Tokens are the account's password
    (its first token) and any ``issue(user)`` handed out (the identity provider's refresh: a
    refresher writes the new one to the client's token file). Every other token is refused with
    the same words. IMAP: Gmail's reply (imapsync FAQ.XOAUTH2, offlineimap issues); POP3:
    Microsoft's `-ERR Authentication failure: unknown user name or bad password.` (fdm#123).
    ``watch(callback)`` is told ``(user, logins_left)`` after each XOAUTH2 login. XOAUTH2 is
    advertised (IMAP ``AUTH=XOAUTH2``, POP3 ``SASL ... XOAUTH2``) when the profile lacks it.
    """

    name = "oauth-token-expiry"
    protocols = frozenset({"imap", "pop3"})

    class Params(_Params):
        after_seconds: float | None = 3600.0
        after_logins: int | None = None
        reply: str = GMAIL_INVALID_CREDENTIALS
        pop3_reply: str = "-ERR Authentication failure: unknown user name or bad password."

    clock: Callable[[], float] = staticmethod(time.monotonic)  # tests put a fake clock on the instance

    def __init__(self, params):
        super().__init__(params)
        self._grants: dict[str, _Grant] = {}
        self._watchers: list[Callable[[str, int | None], None]] = []
        self._lock = threading.Lock()  # IMAP runs in the reactor, a refresher in the caller's thread

    def issue(self, user: str) -> str:
        """A new valid token for ``user`` (what the provider's token endpoint would hand out)."""
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self._grants[token] = _Grant(user)
        return token

    def watch(self, callback: Callable[[str, int | None], None]) -> None:
        self._watchers.append(callback)

    def imap_capabilities(self, caps, authenticated):
        return _offer_xoauth2(caps, authenticated)

    def pop3_capabilities(self, caps, authenticated):
        return offer_sasl(caps, authenticated, "XOAUTH2")

    def _expired(self, grant: _Grant) -> bool:
        p = self.params
        if p.after_logins is not None and grant.logins >= p.after_logins:
            return True
        return p.after_seconds is not None and grant.first_used is not None and self.clock() - grant.first_used >= p.after_seconds

    def oauth_check(self, protocol, user, token, account):
        with self._lock:
            grant = self._grants.get(token)
            if grant is None and account is not None and token == account.password:
                grant = self._grants[token] = _Grant(user)
            if grant is not None and grant.user == user and not self._expired(grant):
                return True
        return self.params.reply if protocol == "imap" else self.params.pop3_reply

    def oauth_logged_in(self, protocol, user, token):
        with self._lock:
            grant = self._grants.get(token)
            if grant is None:  # accepted on another quirk's word (oauth-only's own token)
                return
            grant.logins += 1
            if grant.first_used is None:
                grant.first_used = self.clock()
            left = None if self.params.after_logins is None else self.params.after_logins - grant.logins
        for callback in self._watchers:
            callback(user, left)


@register
class CapabilitiesChangeAfterAuth(Quirk):
    """M365/Gmail/some POP3: the post-login CAPABILITY differs from the pre-login one.

    After login, ``appear`` are added (M365: MOVE; Gmail: X-GM-EXT-1's companions, APPENDLIMIT)
    and ``disappear`` removed (as written, or by name: ``APPENDLIMIT`` removes ``APPENDLIMIT=35651584``). POP3:
    CAPA lines, matched by their first word (UIDL appearing after USER/PASS). A client must
    re-read capabilities after login and trust only the new list (QUIRKS.md
    capabilities-change-after-auth; MailKit#638 shows Outlook.com's two lists).
    """

    name = "capabilities-change-after-auth"
    protocols = frozenset({"imap", "pop3"})

    class Params(_Params):
        appear: list[str] = []
        disappear: list[str] = []

        _split = field_validator("appear", "disappear", mode="before")(_names)

    def _changed(self, caps: list[str], authenticated: bool, sep: str) -> list[str] | None:
        if not authenticated:
            return None
        gone = {c.upper() for c in self.params.disappear}
        kept = [c for c in caps if c.upper() not in gone and c.upper().partition(sep)[0] not in gone]
        present = {c.upper() for c in kept}
        return kept + [c for c in self.params.appear if c.upper() not in present]

    def imap_capabilities(self, caps, authenticated):
        return self._changed(caps, authenticated, "=")

    def pop3_capabilities(self, caps, authenticated):
        return self._changed(caps, authenticated, " ")
