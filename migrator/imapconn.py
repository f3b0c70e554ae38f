"""Opening an authenticated imapclient connection, with every failure as a typed error.

Shared by the IMAP source and sink: TLS (implicit, STARTTLS when advertised or required),
LOGIN or AUTHENTICATE XOAUTH2 (``?auth=xoauth2``: the secret is the access token, re-read at
every connect), ID when advertised (some providers refuse SELECT without it), and the
translation of socket / ssl / imaplib errors into ``migrator.errors`` naming the endpoint.
Capabilities are whatever the server says after login (imapclient drops the pre-login list at
login and reads the ``[CAPABILITY]`` code or asks again): capabilities-change-after-auth.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
import ssl
import time
from contextlib import contextmanager
from collections.abc import Iterator

import imapclient
from imapclient import exceptions as imap_exc
from imapclient.imapclient import seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

from migrator.backoff import retry_delay
from migrator.fetch_parser import parse_fetch
from migrator.errors import (
    AuthenticationFailed,
    CapReached,
    ConnectionFailed,
    MigratorError,
    OAuthTokenRejected,
    ProtocolError,
    TlsFailure,
    TooManyConnections,
)
from migrator.recording import imap_client_class
from migrator.replies import oauth_error, oauth_refusal
from migrator.timeline import Timeline
from migrator.timeouts import DEFAULT_BASE
from migrator.urls import Endpoint

TIMEOUT = DEFAULT_BASE  # seconds per socket read; a source raises it per folder (slow-large-folder)


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=endpoint.trusted_ca())
    if not endpoint.url.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def capability_set(client: imapclient.IMAPClient) -> set[str]:
    return {c.decode("ascii", "replace").upper() if isinstance(c, bytes) else str(c).upper() for c in client.capabilities()}


def capability_value(caps: set[str], name: str) -> int | None:
    """``APPENDLIMIT=35651584`` → 35651584 (None when absent or without a number)."""
    prefix = name.upper() + "="
    for c in caps:
        if c.startswith(prefix):
            value = c[len(prefix) :]
            # ASCII digits only: "APPENDLIMIT=-1" would make every message too large
            return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None
    return None


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Run protocol calls, re-raising transport failures as ConnectionFailed naming ``where``."""
    try:
        yield
    except ssl.SSLError as exc:
        raise TlsFailure(f"{where}: TLS failure: {tls_text(exc)}") from None
    except (imap_exc.IMAPClientAbortError, socket.timeout, OSError, EOFError) as exc:
        raise ConnectionFailed(f"{where}: connection lost: {exc or type(exc).__name__}") from None


def quiet_protocol_log(client: imapclient.IMAPClient) -> None:
    """imapclient sets imaplib's debug level to 5, so imaplib formats ``repr()`` of every reply line
    and every literal for the ``imapclient.imaplib`` logger even when that logger is off: a second
    copy of each fetched message (100 MB of text for a 50 MB one) and most of a core for the repr.
    Keep the protocol trace only when someone listens."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def connect(endpoint: Endpoint, *, role: str, timeout: float = TIMEOUT) -> tuple[imapclient.IMAPClient, str]:
    """Open, secure and log in; returns the client and how TLS was done ("implicit", "starttls", "none").
    ``timeout``: seconds to wait for any reply (a source raises it per folder, ``migrator.timeouts``)."""
    url = endpoint.url
    where = f"{role} {url.display()}"
    # Building a context loads the system CA store (~30 ms): only when TLS is actually used.
    ctx = tls_context(endpoint) if url.implicit_tls else None
    try:
        client = imap_client_class(endpoint)(
            url.host, port=url.port, ssl=url.implicit_tls, ssl_context=ctx, timeout=timeout
        )
    except ssl.SSLError as exc:
        raise TlsFailure(f"{where}: TLS handshake failed: {tls_text(exc)}") from None
    except (OSError, imap_exc.IMAPClientError) as exc:
        raise ConnectionFailed(f"{where}: cannot connect: {exc}") from None
    client.normalise_times = False  # keep INTERNALDATE aware, in the server's zone
    quiet_protocol_log(client)
    tls = "implicit" if url.implicit_tls else "none"
    try:
        with translated(where):
            if not url.implicit_tls and url.starttls != "no":
                if "STARTTLS" in capability_set(client):
                    try:
                        client.starttls(ctx or tls_context(endpoint))
                    except ssl.SSLError as exc:
                        raise TlsFailure(f"{where}: STARTTLS failed: {tls_text(exc)}") from None
                    except imap_exc.IMAPClientError as exc:
                        raise TlsFailure(f"{where}: STARTTLS refused: {exc}") from None
                    tls = "starttls"
                elif url.starttls == "required":
                    raise TlsFailure(f"{where}: STARTTLS required but not advertised")
            xoauth2 = Xoauth2(url.user, endpoint.password.reveal()) if url.auth == "xoauth2" else None
            if xoauth2 is not None and "AUTH=XOAUTH2" not in capability_set(client):
                offered = " ".join(sorted(c for c in capability_set(client) if c.startswith("AUTH="))) or "none"
                raise AuthenticationFailed(f"{where}: ?auth=xoauth2 asked for, but the server does not offer "
                                           f"AUTH=XOAUTH2 (it offers {offered})")
            try:
                if xoauth2 is not None:
                    client._command_and_check("authenticate", "XOAUTH2", xoauth2)
                else:
                    client.login(url.user, endpoint.password.reveal())
            except imap_exc.IMAPClientError as exc:
                if xoauth2 is not None:
                    raise OAuthTokenRejected(f"{where}: login refused: {oauth_refusal(server_text(exc), xoauth2.error)}") from None
                raise login_error(where, server_text(exc), capability_set(client)) from None
            if "ID" in capability_set(client):
                try:
                    client.id_({"name": "quirkmail"})
                except imap_exc.IMAPClientError:
                    pass  # ID is a courtesy; a server refusing it still works
            if endpoint.ignore_capabilities:
                hide_capabilities(client, endpoint.ignore_capabilities)
    except BaseException:
        close_quietly(client)
        raise
    return client, tls


def hide_capabilities(client: imapclient.IMAPClient, names: frozenset[str]) -> None:
    """Make the logged-in client (and everything asking it) forget extensions it must not use."""
    kept = tuple(c for c in client.capabilities() if c.decode("ascii", "replace").upper().split("=")[0] not in names)
    client._cached_capabilities = kept  # imapclient's post-login cache: has_capability() reads it


def xoauth2_response(user: str, token: str) -> bytes:
    """XOAUTH2's client response before base64 (IMAP AUTHENTICATE and POP3 AUTH alike)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode("utf-8")


class Xoauth2:
    """imaplib's authobject for AUTHENTICATE XOAUTH2 (Google's format: ``user=U^Aauth=Bearer T^A^A``).

    The first challenge gets the response. A second one is the provider's error report (Gmail:
    base64 JSON, decoded by imaplib): it is kept as ``error`` and answered with an empty line, as
    Google asks, so the server sends its tagged NO (xoauth2-error-continuation).
    """

    def __init__(self, user: str, token: str):
        self._response: bytes | None = xoauth2_response(user, token)
        self.error: dict | None = None

    def __call__(self, challenge: bytes) -> bytes:
        response, self._response = self._response, None
        if response is not None:
            return response
        self.error = oauth_error(challenge)
        return b""

    def __repr__(self) -> str:  # never the token
        return "Xoauth2(***)"


_CONNECTION_LIMIT = re.compile(r"too many simultaneous connections|maximum number of connections", re.IGNORECASE)
_APP_PASSWORD = re.compile(r"application-specific password|app password", re.IGNORECASE)
_BANDWIDTH = re.compile(r"exceeded command or bandwidth limits|bandwidth limit", re.IGNORECASE)


def login_error(where: str, text: str, caps: set[str]) -> MigratorError:
    """Classify a refused LOGIN: a connection limit or a spent bandwidth budget is not a wrong
    password, and a provider that wants an app password or OAuth should say so
    (app-password-required, oauth-only)."""
    if _CONNECTION_LIMIT.search(text):
        return TooManyConnections(f"{where}: connection limit reached: {text}")
    if _BANDWIDTH.search(text):  # gmail-bandwidth-cap: the password is fine, the day's budget is not
        return CapReached(f"{where}: login refused for now: {text} (the account's bandwidth budget is "
                          "spent; a later run resumes)", role=where.split(" ", 1)[0])
    hint = ""
    if _APP_PASSWORD.search(text):
        hint = " (the provider wants an application-specific password, not the account password)"
    elif "AUTH=XOAUTH2" in caps or "AUTH=OAUTHBEARER" in caps:
        hint = " (the server offers OAuth: password logins may be disabled for this account or tenant)"
    return AuthenticationFailed(f"{where}: login refused: {text}{hint}")


def tls_text(exc: ssl.SSLError) -> str:
    verify = getattr(exc, "verify_message", None)
    if verify:
        return (f"certificate verify failed: {verify} (trust its CA with --ca-file PEM or ?ca=PEM, "
                "or skip verification with --insecure / ?verify=no)")
    return str(exc.reason or exc)


def server_text(exc: Exception) -> str:
    """An imaplib error's text without the b'...' wrapping imaplib leaves around server replies."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"""b(['"])(.*?)\1""", r"\2", text)


def close_quietly(client: imapclient.IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def expect_ok(where: str, call, *args, timeline: Timeline | None = None, **kwargs):
    """Call an imapclient method; a NO/BAD becomes ProtocolError naming ``where``. Throttling
    replies (``backoff.retry_delay``) are waited out and the command is sent again; a run's
    ``timeline`` records each wait with the reply that asked for it."""
    for attempt in itertools.count():
        try:
            with translated(where):
                return call(*args, **kwargs)
        except imap_exc.IMAPClientError as exc:
            text = server_text(exc)
            if "authenticated but not connected" in text.lower():
                # Exchange/M365: LOGIN said OK but the mailbox is not reachable for this user.
                raise AuthenticationFailed(f"{where}: logged in but refused: {text}") from None
            delay = retry_delay(text, attempt)
            if delay is None:
                raise ProtocolError(f"{where}: {text}") from None
            if timeline is None:
                time.sleep(delay)
            else:
                timeline.backoff(delay, text, where=where, attempt=attempt + 1)


class Commands:
    """What the source and the destination connection share: commands checked by ``expect_ok``
    with the run's timeline, and the BYE a lost connection heard."""

    client: imapclient.IMAPClient
    timeline: Timeline | None = None  # set by the run's connection pool

    def where(self, folder: str | None = None) -> str:
        raise NotImplementedError

    def ok(self, folder: str | None, call, *args, **kwargs):
        return expect_ok(self.where(folder), call, *args, timeline=self.timeline, **kwargs)

    def heard_bye(self) -> str | None:
        """The text of the server's last untagged BYE on this connection, if it sent one (imaplib
        keeps it among the untagged replies; the exception it raises may only say "EOF")."""
        byes = self.client._imap.untagged_responses.get("BYE") or [None]
        last = byes[-1]
        return last.decode("utf-8", "replace") if isinstance(last, bytes) else None


def list_raw(client: imapclient.IMAPClient) -> list:
    """``LIST "" *`` as imaplib's untagged data, unparsed: ``migrator.list_reply`` reads each line
    on its own (imapclient fails the whole listing on one malformed line, and reads raw UTF-8
    names as Latin-1)."""
    typ, data = client._imap._simple_command("LIST", '""', '"*"')
    client._checkok("list", typ, data)
    return client._imap._untagged_response(typ, data, "LIST")[1]


_BINARY_HEAD = re.compile(rb"\bUID (\d+)\b.*\bBINARY\[\] ~?\{\d+\}$")


def uid_fetch_binary(client: imapclient.IMAPClient, uids: str) -> dict[int, bytes]:
    """``UID FETCH <set> (UID BINARY.PEEK[])`` (RFC 3516): the stored bytes, NUL included, which
    a BODY[] literal cannot carry (Dovecot shows NUL there as 0x80). UID → bytes; a reply of
    another shape is left out (the caller keeps what BODY[] gave)."""
    tag = client._imap._command("UID", "FETCH", uids, "(UID BINARY.PEEK[])")
    typ, data = client._imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    data = client._imap._untagged_response(typ, data, "FETCH")[1]
    return {int(m.group(1)): e[1] for e in data if isinstance(e, tuple) and (m := _BINARY_HEAD.search(e[0]))}


def uid_fetch(client: imapclient.IMAPClient, uids: str, items: list[str]) -> dict[int, dict]:
    """``UID FETCH <set> (items)`` with a sequence-set string such as ``1:*`` or ``4:9,12``.

    imapclient's ``fetch`` keeps only replies whose UID was listed as an int, so ranges (the only
    compact way to ask for a whole folder or a batch) would come back empty.
    """
    tag = client._imap._command("UID", "FETCH", uids, seq_to_parenstr_upper(items))
    typ, data = client._imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    typ, data = client._imap._untagged_response(typ, data, "FETCH")
    fast = parse_fetch(data)
    return fast if fast is not None else parse_fetch_response(data, client.normalise_times, True)
