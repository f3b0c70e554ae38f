"""POP3 quirks: provider behaviours hooked into ``simulators.pop3.engine`` (see QUIRKS.md).

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
``app-password-required`` and ``oauth-only`` are the IMAP quirks of those names, which cover POP3
too (``simulators.imap.quirks``), as do ``oauth-token-expiry`` and ``capabilities-change-after-auth``
(``simulators.imap.quirks_auth``). Quirk objects belong to one server and are shared by its
connections, so counting quirks count per server, as a provider does.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulators.quirks import Quirk, register


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def offer_sasl(caps: list[str], authenticated: bool, mechanism: str) -> list[str] | None:
    """CAPA lines with ``mechanism`` on the SASL line before login (None: already offered)."""
    sasl = next((c for c in caps if c.upper().startswith("SASL")), None)
    if authenticated or (sasl is not None and mechanism in sasl.upper().split()):
        return None
    if sasl is None:
        return caps + [f"SASL {mechanism}"]
    return [f"{c} {mechanism}" if c is sasl else c for c in caps]  # in place: CAPA order is kept


def _without(caps: list[str], name: str) -> list[str] | None:
    kept = [c for c in caps if c.split(" ")[0].upper() != name]
    return kept if len(kept) != len(caps) else None


@register
class UidlMissing(Quirk):
    """No UIDL: not in CAPA, and the command is unknown (`-ERR Unknown command: UIDL`).

    Old or minimal servers (RFC 1939 makes UIDL optional); a client must fall back to a content
    hash to know what it already has.
    """

    name = "pop3-uidl-missing"
    protocols = frozenset({"pop3"})

    def pop3_capabilities(self, caps, authenticated):
        return _without(caps, "UIDL")


@register
class UidlDuplicated(Quirk):
    """Several messages share one UIDL: the ``messages`` listed all get the first one's.

    ``messages`` are message numbers (1-based, as the session numbers them); on the command line
    ``pop3-uidl-duplicated:messages=1|2|5``. Reported for servers that derive UIDLs from a
    Message-ID or a truncated hash; RFC 1939 forbids it.
    """

    name = "pop3-uidl-duplicated"
    protocols = frozenset({"pop3"})

    class Params(_Params):
        messages: list[int] = Field(default=[1, 2], min_length=2)

        @field_validator("messages", mode="before")
        @classmethod
        def _split(cls, value):
            return [int(v) for v in value.split("|")] if isinstance(value, str) else value

    def pop3_uidl(self, session, number, item, uidl):
        shared = [n for n in self.params.messages if n <= len(session.maildrop)]
        if number in shared and number != shared[0]:
            return session.maildrop.entry(shared[0]).uidl
        return None


@register
class TopUnsupported(Quirk):
    """TOP is not implemented: not in CAPA, and `-ERR Unknown command: TOP`.

    The reply is Dovecot's for an unknown command; give the provider's own as ``reply``.
    """

    name = "pop3-top-unsupported"
    protocols = frozenset({"pop3"})

    class Params(_Params):
        reply: str = "-ERR Unknown command: TOP"

    def pop3_capabilities(self, caps, authenticated):
        return _without(caps, "TOP")

    def pop3_command(self, session, name, args):
        return self.params.reply if name == "TOP" and session.account is not None else None


@register
class DeleteOnRetrieve(Quirk):
    """A message sent whole by RETR is deleted at QUIT even without DELE.

    A provider's "delete after download" setting (e.g. Gmail's "delete Gmail's copy" for POP). A
    dropped connection still deletes nothing: there is no UPDATE state without QUIT.
    """

    name = "pop3-delete-on-retrieve"
    protocols = frozenset({"pop3"})

    def pop3_retrieved(self, session, number):
        session.mark_deleted(number)


@register
class LoginDelay(Quirk):
    """`LOGIN-DELAY n` in CAPA; a re-login within n seconds gets `-ERR [LOGIN-DELAY] ...`.

    RFC 2449 §6.8. The full reply is `-ERR [LOGIN-DELAY] Attempt to log in within the minimum
    login delay interval`, wording from GNU Mailutils pop3d (its manual, "Login delay"); like it, the refusal comes only
    after a valid password, so it cannot be used to probe accounts. Time comes from the
    session's clock (injectable), never from sleeping.
    """

    name = "pop3-login-delay"
    protocols = frozenset({"pop3"})

    class Params(_Params):
        seconds: int = Field(default=900, ge=1)
        reply: str = "-ERR [LOGIN-DELAY] Attempt to log in within the minimum login delay interval"

    def __init__(self, params):
        super().__init__(params)
        self._last_login: dict[str, float] = {}

    def pop3_capabilities(self, caps, authenticated):
        return (_without(caps, "LOGIN-DELAY") or caps) + [f"LOGIN-DELAY {self.params.seconds}"]

    def pop3_login(self, session, user, password, mechanism, valid):
        last = self._last_login.get(user)
        if valid and last is not None and session.clock() - last < self.params.seconds:
            return self.params.reply
        return None

    def pop3_logged_in(self, session):
        self._last_login[session.user] = session.clock()


@register
class DropMidRetr(Quirk):
    """The connection closes after ``after_bytes`` bytes of a RETR reply (status line included).

    Deterministic by count: it happens to the first ``times`` RETRs of the server (0 = every
    one), of message ``message`` only when given; a reply shorter than ``after_bytes`` goes out
    whole but still counts. Nothing is deleted: the session never reaches the UPDATE state.
    """

    name = "pop3-drop-mid-retr"
    protocols = frozenset({"pop3"})

    class Params(_Params):
        after_bytes: int = Field(default=100, ge=0)
        message: int | None = None
        times: int = Field(default=1, ge=0)

    def __init__(self, params):
        super().__init__(params)
        self._cuts = 0

    def pop3_retr_cut(self, session, number):
        if self.params.message is not None and number != self.params.message:
            return None
        if self.params.times and self._cuts >= self.params.times:
            return None
        self._cuts += 1
        return self.params.after_bytes


@register
class SessionLock(Quirk):
    """One POP3 session per mailbox: a second login gets `-ERR [IN-USE] Mailbox is locked ...`.

    Dovecot's words with ``pop3_lock_session = yes`` (its default, like the generic profile's,
    is no lock). Dovecot first waits for the lock (up to
    2 minutes with Maildir); this answers at once. The lock is per server and is released when
    the holding session ends in any way.
    """

    name = "pop3-session-lock"
    protocols = frozenset({"pop3"})

    class Params(_Params):
        reply: str = "-ERR [IN-USE] Mailbox is locked by another POP3 session."

    def __init__(self, params):
        super().__init__(params)
        self._holders: dict[str, object] = {}

    def pop3_login(self, session, user, password, mechanism, valid):
        holder = self._holders.get(user)
        return self.params.reply if valid and holder is not None and holder is not session else None

    def pop3_logged_in(self, session):
        self._holders[session.user] = session

    def pop3_session_end(self, session):
        if session.user is not None and self._holders.get(session.user) is session:
            del self._holders[session.user]


@register
class Xoauth2TwoStepPop3(Quirk):
    """M365 POP3: XOAUTH2 in two steps — `AUTH XOAUTH2`, `+ `, then the base64 token on its own line.

    Microsoft's "Authenticate an IMAP, POP or SMTP connection using OAuth" (learn.microsoft.com)
    shows POP3 only in this form, and RFC 5034 servers must accept it. ``SASL XOAUTH2`` is
    offered in CAPA; the account's password doubles as the token. With ``initial_response:
    false`` the one-line form (``AUTH XOAUTH2 <base64>``) is refused with ``reply`` — the
    simulator's own words, no transcript of Microsoft's is public — so a test can prove a client
    takes the two steps.
    """

    name = "xoauth2-two-step-pop3"
    protocols = frozenset({"pop3"})

    class Params(_Params):
        initial_response: bool = False
        reply: str = "-ERR [AUTH] XOAUTH2 takes no initial response: send AUTH XOAUTH2, then the token."

    def pop3_capabilities(self, caps, authenticated):
        return offer_sasl(caps, authenticated, "XOAUTH2")

    def pop3_command(self, session, name, args):
        mech, _, initial = args.strip().partition(" ")
        if name == "AUTH" and mech.upper() == "XOAUTH2" and initial and not self.params.initial_response:
            return self.params.reply
        return None
