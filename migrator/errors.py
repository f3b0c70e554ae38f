"""Typed errors of the migration engine and the exit codes the CLI maps them to.

    MigratorError                 base; ``exit_code`` says how the CLI ends
    ├── UsageError                bad URL, option or input file                   → 2
    ├── ConnectionFailed          TCP connect / socket failure, names the endpoint → 3
    │   ├── TlsFailure            handshake, certificate, STARTTLS refused         → 3
    │   └── TooManyConnections    LOGIN refused for the account's connection limit → 3
    ├── AuthenticationFailed      the server refused the credentials               → 4
    │   └── OAuthTokenRejected    an XOAUTH2 login refused: token expired or invalid → 4
    ├── ProtocolError             the server broke the protocol or refused a
    │                             command the migration cannot do without          → 3
    ├── ServerRefused             one item refused (NO); isolated, reported        → 1
    └── Aborted                   interrupted, error budget, quota; state saved    → 5
        ├── LoginDeferred         login refused for now (POP3 [LOGIN-DELAY], [IN-USE]) → 5
        └── CapReached            the provider's bandwidth budget is spent (Gmail)  → 5

Exit code 5 also ends a run that used up its error budget (``--max-item-errors``, default 50,
``migrator.error_budget``): the report's ``aborted`` starts "error budget exhausted", the checkpoint is
kept and a re-run resumes. Items are isolated until then; only temporary refusals are retried,
with jittered backoff (``migrator.backoff``).

Every message names the endpoint (URL without secret), folder and UID where known, and the cause.
Exception text never contains a password: endpoints are rendered by ``ServerURL.display``.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ITEMS_SKIPPED = 1  # finished, but some items were skipped or failed
    USAGE = 2
    CONNECTION = 3  # connection or TLS failure
    AUTHENTICATION = 4
    ABORTED = 5  # interrupted, over quota, error budget exhausted: state saved; a re-run resumes


class MigratorError(Exception):
    exit_code: ExitCode = ExitCode.CONNECTION


class UsageError(MigratorError):
    exit_code = ExitCode.USAGE


class ConnectionFailed(MigratorError):
    exit_code = ExitCode.CONNECTION


class TlsFailure(ConnectionFailed):
    pass


class TooManyConnections(ConnectionFailed):
    """The server refused one more connection (Gmail: 15, Dovecot: mail_max_userip_connections)."""


class AuthenticationFailed(MigratorError):
    exit_code = ExitCode.AUTHENTICATION


class OAuthTokenRejected(AuthenticationFailed):
    """An XOAUTH2 login was refused: the access token expired or is invalid. The message says
    "OAuth token expired or invalid" and carries the provider's decoded error JSON (status,
    schemes, scope), never the token. The token is re-read at every connect, so the fix is a
    fresh token in the file or variable it comes from."""


class ProtocolError(MigratorError):
    exit_code = ExitCode.CONNECTION


class ServerRefused(MigratorError):
    """The server answered NO (or BAD) for one item; the run continues without it."""

    exit_code = ExitCode.ITEMS_SKIPPED

    def __init__(self, item: str, server_text: str, *, reason: str = "refused"):
        super().__init__(f"{item}: server refused: {server_text}")
        self.item = item
        self.server_text = server_text
        self.reason = reason


class Aborted(MigratorError):
    exit_code = ExitCode.ABORTED


class LoginDeferred(Aborted):
    """The server refused the login for now, not the password: POP3 ``-ERR [LOGIN-DELAY]`` (too
    soon after the last login), ``[IN-USE]`` (the maildrop is locked by another session),
    ``[SYS/TEMP]``. ``code`` is that response code, ``wait`` the advertised delay in seconds when
    the server said one (CAPA ``LOGIN-DELAY n``). Nothing was changed: a later run resumes."""

    def __init__(self, message: str, *, code: str, wait: float | None = None):
        super().__init__(message)
        self.code = code
        self.wait = wait


class CapReached(Aborted):
    """The provider's bandwidth budget for the account is spent (gmail-bandwidth-cap): a re-login
    after ``* BYE Session expired, please login again`` is refused with `NO [OVERQUOTA] Account
    exceeded command or bandwidth limits.` until the window (Gmail: a day) has passed. Nothing is
    wrong with the password or the mail: a later run resumes from the checkpoint. ``role`` says
    whose budget: "source" (download) or "destination" (upload)."""

    def __init__(self, message: str, *, role: str = "source"):
        super().__init__(message)
        self.role = role
