"""SMTP quirks: provider behaviours hooked into ``simulators.smtp.handler`` (see QUIRKS.md,
"smtp-quirks" and "xoauth2-error-continuation").

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
Replies are the providers' own words; each docstring says where they come from. Nothing here
sleeps or reads the wall clock: counts are per connection, delays use the handler's clock.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from simulators.quirks import Quirk, register
from simulators.xoauth2 import error_challenge


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register
class SmtpThrottle421(Quirk):
    """Gmail: `421 4.7.0 Try again later, closing connection.` after N messages on one connection.

    After ``after`` accepted messages on one connection the next MAIL FROM gets the reply and the
    connection is closed (a 421 closes, RFC 5321 §3.8); a new connection starts counting afresh.
    Wording: Google's "Gmail SMTP errors and codes" (support.google.com/a/answer/3726730).
    """

    name = "smtp-throttle-421"
    protocols = frozenset({"smtp"})

    class Params(_Params):
        after: int = 10
        reply: str = "421 4.7.0 Try again later, closing connection."

    def smtp_mail(self, conn, sender, size):
        return self.params.reply if conn.messages >= self.params.after else None


@register
class SmtpGreylist451(Quirk):
    """Greylisting: the first RCPT of a (sender, recipient) pair gets `451 4.7.1 Greylisting in action, please come back later`.

    A retry of the same pair before ``delay_seconds`` have passed (on the handler's clock) is
    deferred again; from then on the pair is accepted. ``deferred`` counts the 451 replies given.
    Wording: milter-greylist/Postgrey-style MTAs as seen in bounce logs (e.g. Broadcom KB 169944
    quotes "451 4.7.1 Greylisting in action, please come back later").
    """

    name = "smtp-greylist-451"
    protocols = frozenset({"smtp"})

    class Params(_Params):
        delay_seconds: float = 300
        reply: str = "451 4.7.1 Greylisting in action, please come back later"

    def __init__(self, params):
        super().__init__(params)
        self.first_seen: dict[tuple[str, str], object] = {}
        self.deferred = 0

    def smtp_rcpt(self, conn, sender, recipient, account):
        key = ((sender or "").lower(), recipient.lower())
        now = conn.clock()
        first = self.first_seen.setdefault(key, now)
        if (now - first).total_seconds() >= self.params.delay_seconds:
            return None
        self.deferred += 1
        return self.params.reply


_GMAIL_TOO_BIG = (
    "552-5.3.4 Your message exceeded Google's message size limits. Please visit\r\n"
    "552-5.3.4 https://support.google.com/mail/?p=MaxSizeError to view our size\r\n"
    "552 5.3.4 guidelines. - gsmtp"
)


@register
class SmtpSize552(Quirk):
    """Gmail: `552-5.3.4 Your message exceeded Google's message size limits.` above ``bytes``.

    Refused at MAIL FROM when the SIZE= parameter already says so, else after DATA. ``bytes``
    lies below the profile's advertised SIZE, as a provider whose real limit is lower than what
    it advertises (or counts encoded size). Wording: Gmail bounces as quoted by Suped's "What is
    the Google error message when an email exceeds size limits?".
    """

    name = "smtp-size-552"
    protocols = frozenset({"smtp"})

    class Params(_Params):
        bytes: int = 25 * 1024 * 1024
        reply: str = _GMAIL_TOO_BIG

    def smtp_mail(self, conn, sender, size):
        return self.params.reply if size is not None and size > self.params.bytes else None

    def smtp_data(self, conn, accounts, size):
        return self.params.reply if size > self.params.bytes else None


_GMAIL_OVER_QUOTA = (
    "452-4.2.2 The email account that you tried to reach is over quota. Please direct\r\n"
    "452-4.2.2 the recipient to\r\n"
    "452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp - gsmtp"
)


@register
class SmtpQuota452(Quirk):
    """Gmail: `452 4.2.2 The email account that you tried to reach is over quota.` for a full mailbox.

    A recipient whose mail already takes ``bytes`` is refused at RCPT; a message that would pass
    ``bytes`` is refused after DATA. Wording: Gmail bounces ("452 4.2.2 The email account that
    you tried to reach is over quota"), Google's SMTP error list, support.google.com/a/answer/3726730.
    """

    name = "smtp-quota-452"
    protocols = frozenset({"smtp"})

    class Params(_Params):
        bytes: int
        reply: str = _GMAIL_OVER_QUOTA

    def smtp_rcpt(self, conn, sender, recipient, account):
        return self.params.reply if _used(account) >= self.params.bytes else None

    def smtp_data(self, conn, accounts, size):
        return self.params.reply if any(_used(a) + size > self.params.bytes for a in accounts) else None


def _used(account) -> int:
    return sum(m.size for _folder, m in account.iter_messages())


@register
class SmtpAuthDisabled535(Quirk):
    """M365: `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.`

    Every AUTH is refused, right password or not, with Microsoft's words (Exchange Online's
    "SMTP AUTH disabled" reply, https://aka.ms/smtp_auth_disabled; QUIRKS.md "smtp-quirks").
    """

    name = "smtp-auth-disabled-535"
    protocols = frozenset({"smtp"})

    class Params(_Params):
        reply: str = (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
            "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
        )

    def smtp_auth(self, conn, mechanism, user, ok):
        return self.params.reply


@register
class GmailXoauth2ErrorContinuation(Quirk):
    """Gmail: a bad XOAUTH2 token gets `334 <base64 JSON>`; the 535 follows the client's empty line.

    The challenge is Google's documented error JSON
    (``{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}``, from
    developers.google.com/gmail/imap/xoauth2-protocol); the final reply is Gmail's
    `535-5.7.8 Username and Password not accepted.` (seen in SMTP transcripts of smtp.gmail.com).
    Only XOAUTH2 is affected; a right token logs in.
    """

    name = "smtp-xoauth2-error-continuation"
    protocols = frozenset({"smtp"})

    class Params(_Params):
        status: str = "401"
        reply: str = (
            "535-5.7.8 Username and Password not accepted. Learn more at\r\n"
            "535 5.7.8 https://support.google.com/mail/?p=BadCredentials - gsmtp"
        )

    def smtp_auth(self, conn, mechanism, user, ok):
        if mechanism != "XOAUTH2" or ok:
            return None
        return error_challenge(self.params.status), self.params.reply
