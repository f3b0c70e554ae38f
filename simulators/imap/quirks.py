"""IMAP quirks: provider behaviours hooked into ``simulators.imap.engine`` (see QUIRKS.md).

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
Replies are reproduced byte for byte as users reported them.
"""

from __future__ import annotations

import re
import weakref
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, field_validator

from simulators.pop3.quirks import offer_sasl
from simulators.quirks import Quirk, register
from simulators.store import MailItem


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register
class CaseInsensitiveFolders(Quirk):
    """Exchange/M365: folder names differ only by case collide — `NO Mailbox already exists`.

    Creating ``trash`` when ``Trash`` exists is refused, and ``trash`` names ``Trash`` in every
    other command (SELECT, APPEND, STATUS ...).
    """

    name = "case-insensitive-folders"
    protocols = frozenset({"imap"})

    class Params(_Params):
        reply: str = "NO Mailbox already exists"

    def imap_resolve_folder(self, session, path):
        return _case_match(session.account.folders, path)

    def imap_create(self, session, path):
        if _case_match(session.account.folders, path) is not None:
            return self.params.reply
        return None


def _case_match(folders, path: tuple[str, ...]) -> tuple[str, ...] | None:
    wanted = tuple(p.casefold() for p in path)
    return next((p for p in folders if tuple(x.casefold() for x in p) == wanted), None)


@register
class M365ReservedFolders(Quirk):
    """M365: top-level names such as `Files` are refused — `NO Folder name is reserved`.

    ``names`` defaults to the profile's ``imap.reserved_names``; matching ignores case, so a
    root-level ``Inbox`` typed differently from INBOX is caught by listing it too.
    """

    name = "m365-reserved-folders"
    protocols = frozenset({"imap"})

    class Params(_Params):
        names: list[str] = []
        reply: str = "NO Folder name is reserved"

        @field_validator("names", mode="before")
        @classmethod
        def _split(cls, value):
            # On the command line (name:key=value) a list is written "Files|Inbox".
            return value.split("|") if isinstance(value, str) else value

    def imap_create(self, session, path):
        names = self.params.names or session.imap.reserved_names
        if len(path) == 1 and path[0].casefold() in {n.casefold() for n in names}:
            return self.params.reply
        return None


@register
class AppendLimit(Quirk):
    """APPENDLIMIT=<bytes> advertised after login; larger APPENDs are refused before the literal.

    Gmail advertises ``APPENDLIMIT=35651584``; Exchange answers `NO Maximum size of appendable
    message has been exceeded` (give it as ``reply``).
    """

    name = "appendlimit"
    protocols = frozenset({"imap"})

    class Params(_Params):
        bytes: int
        advertise: bool = True
        reply: str = "NO [TOOBIG] Mail size is larger than the maximum size allowed by server configuration"

    def imap_capabilities(self, caps, authenticated):
        if not (authenticated and self.params.advertise):
            return None
        kept = [c for c in caps if not c.upper().startswith("APPENDLIMIT")]
        return kept + [f"APPENDLIMIT={self.params.bytes}"]

    def imap_append_size(self, session, size):
        return self.params.reply if size > self.params.bytes else None


@register
class QuotaExceeded(Quirk):
    """Destination full: an APPEND that would pass ``bytes`` in the account gets `NO [OVERQUOTA]`."""

    name = "quota-exceeded"
    protocols = frozenset({"imap"})

    class Params(_Params):
        bytes: int
        reply: str = "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"

    def imap_append_size(self, session, size):
        used = sum(m.size for _folder, m in session.account.iter_messages())
        return self.params.reply if used + size > self.params.bytes else None


_DOVECOT_DONE = re.compile(r"^OK (\[[^\]]*\] )?([A-Za-z]+) completed(?: \([^)]*secs\))?\.?$")


@register
class ExchangeReplyText(Quirk):
    """Exchange wording for successful commands: `OK [READ-WRITE] SELECT completed.`

    Exchange wording for successful commands: `OK [READ-WRITE] SELECT completed.`,
    `OK LOGIN completed.` instead of Dovecot's `Select completed (0.001 + 0.000 secs).`.
    """

    name = "exchange-reply-text"
    protocols = frozenset({"imap"})

    def imap_reply(self, session, reply):
        if reply.startswith("OK ") and reply.endswith("Logged in"):
            return "OK LOGIN completed." if session.auth_command == "LOGIN" else "OK AUTHENTICATE completed."
        m = _DOVECOT_DONE.match(reply)
        if m is None:
            return None
        return f"OK {m.group(1) or ''}{m.group(2).upper()} completed."


@register
class ExchangeNonmailFoldersOverImap(Quirk):
    """Exchange/M365: non-mail folders list items whose BODY.PEEK[] is empty and BODY[] made up.

    Exchange/M365: Calendar, Contacts, Tasks, Notes ... are listed over IMAP and show their
    items as messages, but `UID FETCH n (BODY.PEEK[])` returns nothing (only `OK FETCH
    completed.`) and `BODY[]` returns a made-up message "Retrieval using the IMAP4 protocol
    failed for the following message: n".
    """

    name = "exchange-nonmail-folders-over-imap"
    protocols = frozenset({"imap"})

    def imap_folder_messages(self, session, folder):
        if folder.folder_class == "IPF.Note":
            return None
        return [_made_up(uid, item) for uid, item in enumerate(folder.items, start=1)]

    def imap_fetch_message(self, session, folder, item, atts):
        if folder.folder_class != "IPF.Note" and any(a.section and a.peek for a in atts):
            return b""
        return None


_MADE_UP_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _made_up(uid: int, item) -> MailItem:
    subject = f"Retrieval using the IMAP4 protocol failed for the following message: {uid}"
    raw = (
        f"From: Microsoft Exchange Server\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: text/plain; charset="us-ascii"\r\n\r\n'
        f"The server couldn't retrieve the following message:\r\n\r\nItem: {item.item_id}\r\n\r\n"
        "The message hasn't been deleted. You might be able to view it using either Outlook or "
        "Outlook Web App.\r\n"
    ).encode()
    return MailItem(raw=raw, internaldate=_MADE_UP_DATE, uid=uid)


# Authentication and session ---------------------------------------------------------------------


@register
class AppPasswordRequired(Quirk):
    """Gmail/Yahoo/iCloud/AOL: a normal password gets `NO [ALERT] Application-specific password required`.

    Gmail/Yahoo/iCloud/AOL: a wrong (normal) password gets `NO [ALERT] Application-specific
    password required: … (Failure)`, not AUTHENTICATIONFAILED. The account's password is the app
    password. POP3 gets Gmail's `-ERR [AUTH] Application-specific password required: …`.
    """

    name = "app-password-required"
    protocols = frozenset({"imap", "pop3"})

    class Params(_Params):
        reply: str = (
            "NO [ALERT] Application-specific password required: "
            "https://support.google.com/accounts/answer/185833 (Failure)"
        )
        # Gmail's POP3 words (as users quote them from pop.gmail.com, e.g. mailman/mailman#50).
        pop3_reply: str = "-ERR [AUTH] Application-specific password required: https://support.google.com/accounts/answer/185833"

    def imap_login(self, session, user, password):
        account = session.store.accounts.get(user)
        if account is not None and account.password != password:
            return self.params.reply
        return None

    def pop3_login(self, session, user, password, mechanism, valid):
        return self.params.pop3_reply if not valid and user in session.store.accounts else None


@register
class OAuthOnly(Quirk):
    """M365/Outlook.com, basic auth disabled: `NO LOGIN failed.` / `NO AUTHENTICATE failed.`

    M365/Outlook.com with basic auth disabled: `NO LOGIN failed.` / `NO AUTHENTICATE failed.`
    even for the right password, while `AUTH=XOAUTH2 SASL-IR` is advertised. AUTHENTICATE
    XOAUTH2 with the right bearer token logs in: the account's password, or ``token`` when given.
    POP3: `-ERR Logon failure: unknown user name or bad password.` for USER/PASS, `-ERR
    Authentication failure: ...` for AUTH; AUTH XOAUTH2 works there the same way.
    """

    name = "oauth-only"
    protocols = frozenset({"imap", "pop3"})

    class Params(_Params):
        token: str | None = None  # the valid bearer token; None = the account's password

    def imap_capabilities(self, caps, authenticated):
        extra = [c for c in ("AUTH=XOAUTH2", "SASL-IR") if c not in caps]
        return caps + extra if extra else None

    def imap_login(self, session, user, password):
        return None if session.auth_mechanism == "XOAUTH2" else f"NO {session.auth_command} failed."

    def imap_reply(self, session, reply):
        # A refused bearer token gets Microsoft's words too.
        return "NO AUTHENTICATE failed." if reply == "NO [AUTHENTICATIONFAILED] Authentication failed." else None

    def oauth_check(self, protocol, user, token, account):
        return None if self.params.token is None else token == self.params.token

    # POP3 (outlook.office365.com, as quoted in fdm#123 and email-oauth2-proxy#244): XOAUTH2 is
    # offered and works (the account's password is the bearer token); USER/PASS and the other
    # SASL mechanisms are refused with Microsoft's words even for the right password.
    def pop3_capabilities(self, caps, authenticated):
        return offer_sasl(caps, authenticated, "XOAUTH2")

    def pop3_login(self, session, user, password, mechanism, valid):
        if mechanism == "XOAUTH2" and valid:
            return None
        if mechanism in ("USER", "APOP"):
            return "-ERR Logon failure: unknown user name or bad password."
        return "-ERR Authentication failure: unknown user name or bad password."


@register
class AuthenticatedButNotConnected(Quirk):
    """Exchange/M365: LOGIN succeeds, then `BAD User is authenticated but not connected.`

    Exchange/M365: LOGIN answers OK, then every command but LOGOUT gets
    `BAD User is authenticated but not connected.`
    """

    name = "authenticated-but-not-connected"
    protocols = frozenset({"imap"})

    def imap_command(self, session, command):
        if session.account is not None and command.name not in ("LOGOUT", "CAPABILITY"):
            return "BAD User is authenticated but not connected."
        return None


@register
class IdRequired(Quirk):
    """NetEase 163/126: SELECT before ID gets `NO SELECT Unsafe Login. Please contact kefu@188.com for help`.

    NetEase 163/126: SELECT before the client sent ID gets `NO SELECT Unsafe Login. Please
    contact kefu@188.com for help`.
    """

    name = "id-required"
    protocols = frozenset({"imap"})

    def imap_command(self, session, command):
        if command.name in ("SELECT", "EXAMINE") and not session.id_sent:
            return f"NO {command.name} Unsafe Login. Please contact kefu@188.com for help"
        return None


# Limits and throttling --------------------------------------------------------------------------


class _Counting(Quirk):
    """Counts matching commands per user across the server's connections (deterministic: by
    count, never by clock); after ``after`` of them the next ``times`` are refused."""

    class Params(_Params):
        after: int = 100
        times: int = 1

    def __init__(self, params):
        super().__init__(params)
        self._seen: dict[str, int] = {}

    def counts(self, command) -> bool:
        return True

    def refused(self, session, command) -> bool:
        if session.account is None or not self.counts(command):
            return False
        user = session.account.username
        n = self._seen[user] = self._seen.get(user, 0) + 1
        return self.params.after < n <= self.params.after + self.params.times


@register
class M365ThrottledBackoff(_Counting):
    """M365: `NO Request is throttled. Suggested Backoff Time: 299609 milliseconds` after N commands.

    M365: `NO Request is throttled. Suggested Backoff Time: 299609 milliseconds` after ``after``
    commands, for ``times`` commands.
    """

    name = "m365-throttled-backoff"
    protocols = frozenset({"imap"})

    class Params(_Counting.Params):
        backoff_ms: int = 299609

    def imap_command(self, session, command):
        if self.refused(session, command):
            return f"NO Request is throttled. Suggested Backoff Time: {self.params.backoff_ms} milliseconds"
        return None


@register
class YahooRateLimit(_Counting):
    """Yahoo: `NO [LIMIT] UID FETCH Rate limit hit.` after ``after`` UID FETCH commands."""

    name = "yahoo-rate-limit"
    protocols = frozenset({"imap"})

    class Params(_Counting.Params):
        after: int = 50

    def counts(self, command) -> bool:
        return command.name == "UID FETCH"

    def imap_command(self, session, command):
        return "NO [LIMIT] UID FETCH Rate limit hit." if self.refused(session, command) else None


@register
class GmailThrottledSuffix(_Counting):
    """Gmail: `[THROTTLED]` appended to the reply text (not a response code) once throttled.

    Gmail: once throttled, `[THROTTLED]` is appended to the end of the reply text (it is not a
    response code) of ``times`` tagged replies after ``after`` commands; the commands still run.
    """

    name = "gmail-throttled-suffix"
    protocols = frozenset({"imap"})

    def __init__(self, params):
        super().__init__(params)
        self._due: weakref.WeakSet = weakref.WeakSet()  # sessions whose next tagged reply gets it

    def imap_command(self, session, command):
        if self.refused(session, command):
            self._due.add(session)
        return None

    def imap_reply(self, session, reply):
        if session in self._due:
            self._due.discard(session)
            return reply + " [THROTTLED]"
        return None


@register
class ExchangeByeAfterErrors(Quirk):
    """Exchange: `* BYE Connection closed.` after ~10 failed commands in one connection.

    Exchange: after ``errors`` failed commands (NO or BAD) in one connection, `* BYE Connection
    closed.` and the connection is closed.
    """

    name = "exchange-bye-after-errors"
    protocols = frozenset({"imap"})

    class Params(_Params):
        errors: int = 10
        text: str = "Connection closed."

    def imap_error_limit(self):
        return self.params.errors, self.params.text, True


@register
class GmailTooManyConnections(Quirk):
    """Gmail: `NO [ALERT] Too many simultaneous connections. (Failure)` past 15 connections.

    Gmail: past 15 connections of one account, LOGIN gets
    `NO [ALERT] Too many simultaneous connections. (Failure)`.
    """

    name = "gmail-too-many-connections"
    protocols = frozenset({"imap"})

    class Params(_Params):
        limit: int = 15
        reply: str = "NO [ALERT] Too many simultaneous connections. (Failure)"

    def imap_connection_limit(self):
        return self.params.limit, self.params.reply


@register
class DovecotUseripLimit(Quirk):
    """Dovecot: `NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded` past a limit.

    Dovecot: `NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded
    (mail_max_userip_connections=10)` past ``limit`` connections of one user.
    """

    name = "dovecot-userip-limit"
    protocols = frozenset({"imap"})

    class Params(_Params):
        limit: int = 10

    def imap_connection_limit(self):
        return self.params.limit, (
            "NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded "
            f"(mail_max_userip_connections={self.params.limit})"
        )


# Folders and search -----------------------------------------------------------------------------


@register
class GmailSpecialFolders(Quirk):
    """Gmail: SELECT of \\Noselect `[Gmail]` gets `NO [NONEXISTENT] Unknown Mailbox: ... (Failure)`.

    Gmail: SELECT of a \\Noselect folder such as `[Gmail]` gets `NO [NONEXISTENT] Unknown
    Mailbox: [Gmail] (now in authenticated state) (Failure)`.
    """

    name = "gmail-special-folders"
    protocols = frozenset({"imap"})

    def imap_select(self, session, folder, read_only):
        if folder.selectable:
            return None
        wire = session.names.to_wire(folder.path).decode("ascii")
        return f"NO [NONEXISTENT] Unknown Mailbox: {wire} (now in authenticated state) (Failure)"


@register
class FolderNameRestrictions(Quirk):
    """Gmail: `NO [CANNOT] Folder contains excess whitespace (Failure)`; `^` refused.

    Gmail: `NO [CANNOT] Folder contains excess whitespace (Failure)` for names with leading,
    trailing or doubled blanks; names with a character of ``forbidden`` are refused too.
    """

    name = "folder-name-restrictions"
    protocols = frozenset({"imap"})

    class Params(_Params):
        forbidden: str = "^"
        whitespace_reply: str = "NO [CANNOT] Folder contains excess whitespace (Failure)"
        forbidden_reply: str = "NO [CANNOT] Folder name contains a forbidden character (Failure)"

    def imap_create(self, session, path):
        for part in path:
            if part != part.strip() or "  " in part:
                return self.params.whitespace_reply
            if any(c in part for c in self.params.forbidden):
                return self.params.forbidden_reply
        return None


_DATE_KEYS = frozenset({"SINCE", "BEFORE", "ON", "SENTSINCE", "SENTBEFORE", "SENTON"})


@register
class SearchUnreliable(Quirk):
    """SmarterMail/Domino/IceWarp: a SEARCH with a date key finds nothing (`* SEARCH` empty)."""

    name = "search-unreliable"
    protocols = frozenset({"imap"})

    def imap_command(self, session, command):
        if command.name in ("SEARCH", "UID SEARCH") and _has_date_key(command.args):
            return ["* SEARCH"], "OK SEARCH completed."
        return None


def _has_date_key(args) -> bool:
    return any(_has_date_key(a) if isinstance(a, list) else (isinstance(a, str) and a.upper() in _DATE_KEYS)
               for a in args)
