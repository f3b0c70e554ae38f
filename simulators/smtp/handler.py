"""SmtpHandler: the SMTP front's behaviour, as an aiosmtpd handler object.

aiosmtpd parses commands and frames DATA; it calls ``handle_<VERB>`` hooks here and uses their
reply. This handler decides everything a provider differs in — the EHLO keywords, SIZE, who a
recipient is, AUTH outcomes, delivery into the store — and asks the profile's quirks
(``Quirk.smtp_*`` hooks) first. It never sleeps and never reads the wall clock itself: the
delivery instant (Received header, INTERNALDATE) and greylisting delays come from ``clock``.

SIZE is enforced here rather than by aiosmtpd (its ``data_size_limit`` is off) so the refusal
wording is the profile's, not aiosmtpd's.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from simulators.profiles import Profile
from simulators.quirks import Quirk, build_all, first_answer
from simulators.xoauth2 import XOAuth2Error, parse_xoauth2
from simulators.smtp.delivery import Trace, resolve_recipient, with_protocol
from simulators.store import INBOX, Account, Store, StoreError, utcnow

# Postfix's wording for the refusals every server makes.
UNKNOWN_USER = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
AUTH_FAILED = "535 5.7.8 Error: authentication failed: authentication failure"
BAD_BASE64 = "501 5.5.2 Can't decode base64"
BAD_XOAUTH2 = "501 5.5.2 Invalid XOAUTH2 initial response: {cause}"
DELIVERY_FAILED = "451 4.3.0 Error: delivery to {user} failed: {cause}"
OK = "250 2.0.0 Ok"
QUEUED = "250 2.0.0 Ok: queued as {queue_id}"


@dataclass
class Connection:
    """What the handler and the quirks know about one client connection."""

    peer_ip: str
    clock: Callable[[], datetime]
    messages: int = 0  # messages accepted on this connection
    user: str | None = None  # after a successful AUTH


class SmtpHandler:
    """One server instance's behaviour: a store, a profile (its ``smtp`` block and quirks), a clock."""

    def __init__(self, store: Store, profile: Profile, *, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.settings = profile.smtp
        self.quirks: list[Quirk] = build_all(profile.quirks, "smtp")
        self.clock = clock
        self._connections: weakref.WeakKeyDictionary[SMTP, Connection] = weakref.WeakKeyDictionary()
        self._queue_ids = itertools.count(1)

    def connection(self, server: SMTP) -> Connection:
        conn = self._connections.get(server)
        if conn is None:
            peer = server.session.peer if server.session else None
            conn = self._connections[server] = Connection(peer[0] if peer else "unknown", self.clock)
        return conn

    def _quirk_reply(self, hook: str, *args):
        return first_answer(self.quirks, hook, *args)

    # Session --------------------------------------------------------------------------------

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]):
        session.host_name = hostname  # aiosmtpd leaves this to a 5-argument EHLO hook
        # aiosmtpd ends with "HELP" (no provider says that) and writes a bare "AUTH" when the
        # profile offers no mechanism.
        keywords = [line[4:] for line in responses[1:] if line[4:].strip() not in ("HELP", "AUTH")]
        keywords.insert(0, f"SIZE {self.settings.max_message_size}")
        keywords = self._quirk_reply("smtp_ehlo", self.connection(server), keywords) or keywords
        lines = [responses[0][4:], *keywords]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]):
        size = _size_option(options)
        if size is not None and size > self.settings.max_message_size:
            return TOO_BIG
        reply = self._quirk_reply("smtp_mail", self.connection(server), address, size)
        if reply is not None:
            return _closing(server, reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return OK

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]):
        account = resolve_recipient(self.store, address)
        if account is None:
            return UNKNOWN_USER.format(address=address)
        reply = self._quirk_reply("smtp_rcpt", self.connection(server), envelope.mail_from, address, account)
        if reply is not None:
            return _closing(server, reply)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        raw: bytes = envelope.original_content or b""
        if len(raw) > self.settings.max_message_size:
            return TOO_BIG
        targets = self._targets(envelope.rcpt_tos)
        conn = self.connection(server)
        reply = self._quirk_reply("smtp_data", conn, [a for a, _ in targets], len(raw))
        if reply is not None:
            return _closing(server, reply)
        queue_id = f"{next(self._queue_ids):010X}"
        when = self.clock()
        protocol = with_protocol(
            extended=session.extended_smtp,
            tls=session.ssl is not None,
            authenticated=bool(session.authenticated),
            utf8=envelope.smtp_utf8,
        )
        for account, address in targets:
            trace = Trace(session.host_name or "unknown", conn.peer_ip, self.settings.hostname, protocol,
                          queue_id, address, when)
            try:
                account.create_folder(INBOX, exist_ok=True)
                account.append(INBOX, trace.header() + raw, internaldate=when)
            except (StoreError, ValueError) as exc:
                return DELIVERY_FAILED.format(user=account.username, cause=exc)
        conn.messages += 1
        return QUEUED.format(queue_id=queue_id)

    def _targets(self, recipients: list[str]) -> list[tuple[Account, str]]:
        """One (account, first address naming it) per mailbox: two addresses of one mailbox in
        one envelope deliver one copy, as Postfix's duplicate elimination does."""
        seen: dict[str, tuple[Account, str]] = {}
        for address in recipients:
            account = resolve_recipient(self.store, address)
            if account is not None and account.username not in seen:
                seen[account.username] = (account, address)
        return list(seen.values())

    # AUTH -------------------------------------------------------------------------------------

    def authenticator(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: LoginPassword):
        """aiosmtpd's authenticator for its built-in PLAIN and LOGIN."""
        user, password = (part.decode("utf-8", "replace") for part in data)
        outcome = self._decide(server, mechanism, user, password)
        if isinstance(outcome, tuple):  # a continuation needs XOAUTH2's exchange; give its verdict
            return AuthResult(success=False, handled=False, message=outcome[1])
        return outcome

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 [initial-response]; the account's password doubles as the bearer token."""
        if len(args) == 1:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message=BAD_BASE64)
        try:
            user, token = parse_xoauth2(blob)
        except XOAuth2Error as exc:
            return AuthResult(success=False, handled=False, message=BAD_XOAUTH2.format(cause=exc))
        outcome = self._decide(server, "XOAUTH2", user, token)
        if isinstance(outcome, tuple):
            challenge, final = outcome
            if await server.challenge_auth(challenge, encode_to_b64=False) is MISSING:
                return AuthResult(success=False, handled=True)  # the client aborted with "*"
            return AuthResult(success=False, handled=False, message=final)
        return outcome

    def _decide(self, server: SMTP, mechanism: str, user: str, secret: str) -> AuthResult | tuple[str, str]:
        account = self.store.accounts.get(user)
        ok = account is not None and account.password == secret
        conn = self.connection(server)
        reply = self._quirk_reply("smtp_auth", conn, mechanism, user, ok)
        if isinstance(reply, tuple):
            return reply
        if reply is not None:
            return AuthResult(success=False, handled=False, message=reply)
        if not ok:
            return AuthResult(success=False, handled=False, message=AUTH_FAILED)
        conn.user = user
        return AuthResult(success=True, auth_data=user)

    def excluded_mechanisms(self) -> list[str]:
        """aiosmtpd's and our mechanisms the profile does not offer."""
        offered = {m.upper() for m in self.settings.auth_mechanisms}
        return [m for m in ("PLAIN", "LOGIN", "XOAUTH2") if m not in offered]


def _size_option(options: list[str]) -> int | None:
    for option in options:
        key, _, value = option.partition("=")
        if key.upper() == "SIZE" and value.isdigit():
            return int(value)
    return None


def _closing(server: SMTP, reply: str) -> str:
    """A 421 reply means the server closes the channel (RFC 5321 §3.8): close once it is sent.
    (The reply is written before the callback runs: the hook returns to aiosmtpd's push without
    yielding to the loop.)"""
    if reply.startswith("421") and server.transport is not None:
        server.loop.call_soon(server.transport.close)
    return reply
