"""Delivering messages to a destination that only takes mail in: LMTP (RFC 2033) or SMTP.

This is fetchmail's path (POP3 in, SMTP/LMTP out) for destinations without IMAP access. It
loses what delivery cannot say: folders (everything lands where the server's delivery puts it,
normally the inbox), flags, and the original INTERNALDATE (the destination stamps the time of
delivery); the server also adds its own trace headers (Return-Path, Delivered-To, Received).
``LOSSES`` is that list, for the report.

One message is one transaction (MAIL FROM, RCPT TO the URL's user, DATA); LMTP answers DATA once
per recipient, so a refusal names this message alone. The envelope sender is the message's
Return-Path when it has one, else the null sender ``<>`` (a bounce of a migrated message must
not go back to its original author). What a refusal means (reconnect, retry later, stop, skip) is
``migrator.replies.classify_smtp``'s call, made by the caller on the result's text.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.utils import parseaddr

from migrator.dates import header_block, header_values
from migrator.errors import AuthenticationFailed, ConnectionFailed, OAuthTokenRejected, TlsFailure
from migrator.imapconn import TIMEOUT, tls_context, tls_text
from migrator.recording import client_class
from migrator.replies import auth_hint, oauth_error, oauth_refusal
from migrator.sinks.imap import AppendResult
from migrator.urls import Endpoint

LOSSES = [
    "folders: delivery puts every message where the destination's delivery rules do (the inbox), not in a chosen folder",
    "flags: delivered mail has none (read/answered state is lost)",
    "INTERNALDATE: the destination stamps the time of delivery, not the original arrival time",
    "the destination adds its own trace headers (Return-Path, Delivered-To, Received)",
]


def envelope_sender(raw: bytes) -> str:
    """The Return-Path address, or "" (the null sender)."""
    values = header_values(header_block(raw), "Return-Path")
    return parseaddr(values[-1])[1] if values else ""


def _reply_text(code: int, msg: bytes | str) -> str:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {text}"


class _Xoauth2:
    """smtplib's SASL callback for XOAUTH2: the initial response, then an empty line to a 334
    challenge — the provider's error JSON for a refused token, kept as ``error`` — so the server
    sends its 535 (smtp-xoauth2-error-continuation)."""

    def __init__(self, user: str, token: str):
        self._response = f"user={user}\x01auth=Bearer {token}\x01\x01"
        self.error: dict | None = None

    def __call__(self, challenge: bytes | None = None) -> str:
        if challenge is None:
            return self._response
        self.error = oauth_error(challenge)
        return ""

    def __repr__(self) -> str:  # never the token
        return "_Xoauth2(***)"


class DeliverySink:
    """One LMTP/SMTP connection delivering to ``endpoint.url.user``. Not thread-safe."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.where = f"destination {endpoint.url.display()}"
        self.recipient = endpoint.url.user
        self._oauth_error: dict | None = None
        self._connect()

    def _connect(self) -> None:
        url = self.endpoint.url
        self.tls = "implicit" if url.implicit_tls else "none"
        try:
            if url.scheme == "lmtp":
                cls = client_class(self.endpoint, smtplib.LMTP, "lmtp")
                self.client: smtplib.SMTP = cls(url.host, url.port, timeout=TIMEOUT)
            elif url.implicit_tls:
                cls = client_class(self.endpoint, smtplib.SMTP_SSL, "smtp")
                self.client = cls(url.host, url.port, timeout=TIMEOUT, context=tls_context(self.endpoint))
            else:
                self.client = client_class(self.endpoint, smtplib.SMTP, "smtp")(url.host, url.port, timeout=TIMEOUT)
            self.client.ehlo_or_helo_if_needed()
            self._secure_and_login()
        except ssl.SSLError as exc:
            raise TlsFailure(f"{self.where}: TLS failure: {tls_text(exc)}") from None
        except smtplib.SMTPAuthenticationError as exc:
            text = _reply_text(exc.smtp_code, exc.smtp_error)
            if url.auth == "xoauth2":
                raise OAuthTokenRejected(f"{self.where}: login refused: {oauth_refusal(text, self._oauth_error)}") from None
            raise AuthenticationFailed(f"{self.where}: login refused: {text}{auth_hint(text)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailed(f"{self.where}: cannot connect: {exc}") from None

    def _secure_and_login(self) -> None:
        url, client = self.endpoint.url, self.client
        if not url.implicit_tls and url.starttls != "no":
            if client.has_extn("starttls"):
                client.starttls(context=tls_context(self.endpoint))
                client.ehlo()
                self.tls = "starttls"
            elif url.starttls == "required":
                raise TlsFailure(f"{self.where}: STARTTLS required but not advertised")
        secret = self.endpoint.password.reveal()
        if secret and url.auth == "xoauth2":  # the secret is the token (SASL XOAUTH2, one step)
            answer = _Xoauth2(url.user, secret)
            try:
                client.auth("XOAUTH2", answer)
            finally:
                self._oauth_error = answer.error
        elif secret and client.has_extn("auth"):
            client.login(url.user, secret)

    def reconnect(self) -> None:
        """A new connection (after a 421, which closes the channel), logged in again."""
        self.client.close()
        self._connect()

    def deliver(self, raw: bytes) -> AppendResult:
        """One transaction; a refusal (4xx/5xx) is a failed result, a lost connection raises."""
        options = ["BODY=8BITMIME"] if self.client.has_extn("8bitmime") else []
        try:
            self.client.sendmail(envelope_sender(raw), [self.recipient], raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, msg = exc.recipients[self.recipient]
            return AppendResult(False, None, _reply_text(code, msg))
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            self._reset()
            return AppendResult(False, None, _reply_text(exc.smtp_code, exc.smtp_error))
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            raise ConnectionFailed(f"{self.where}: connection lost: {exc or type(exc).__name__}") from None
        return AppendResult(True, None, "delivered")

    def _reset(self) -> None:
        try:
            self.client.rset()
        except (smtplib.SMTPException, OSError):
            pass

    def close(self) -> None:
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            self.client.close()
