"""Reading a source mailbox over POP3 (RFC 1939, CAPA RFC 2449, STLS RFC 2595, SASL RFC 5034).

Pure helpers (reply lines in, values out) plus ``Pop3Source``, a thin adapter over ``poplib``.

Why poplib with a subclass rather than a reader of our own: poplib already does the framing
(multi-line replies, dot-unstuffing), STLS and implicit TLS. Two things it cannot do are added
here: lines longer than poplib's 2048-byte limit (real mail has them: base64 without wrapping,
long HTML lines — poplib raises "line too long") and pipelining (RFC 2449 PIPELINING: several
RETR/TOP written at once and their replies read in order, one round trip per batch instead of one
per message). AUTH (PLAIN, XOAUTH2 in one or two steps) goes through poplib's command plumbing,
whose reply check accepts the "+ " continuation of a two-step SASL exchange.

POP3 has one folder (the inbox), no flags and no INTERNALDATE. Message numbers are valid for one
session only; a message is named across sessions by its UIDL (when the server has one) and by
its identity (``migrator.identity``, from the headers that TOP or RETR gives).
"""

from __future__ import annotations

import base64
import hashlib
import poplib
import re
import socket
import ssl
from dataclasses import dataclass

from migrator.errors import (
    AuthenticationFailed, ConnectionFailed, LoginDeferred, OAuthTokenRejected, ProtocolError, TlsFailure,
)
from migrator.imapconn import TIMEOUT, tls_context, tls_text, xoauth2_response
from migrator.recording import client_class
from migrator.replies import auth_hint, login_delay_of, oauth_error, oauth_refusal, temporary_login_code
from migrator.urls import Endpoint

MAX_LINE = 1 << 20  # longest reply line accepted (poplib's own limit is 2048 bytes)
_APOP_STAMP = re.compile(rb"<[^<>@\s]+@[^<>\s]+>")


# Pure protocol helpers -------------------------------------------------------------------------


def parse_capa(lines: list[bytes]) -> dict[str, list[str]]:
    """CAPA lines → upper-cased capability → its arguments (``SASL PLAIN XOAUTH2`` → ["PLAIN", "XOAUTH2"])."""
    out: dict[str, list[str]] = {}
    for line in lines:
        words = line.decode("ascii", "replace").split()
        if words:
            out[words[0].upper()] = [w.upper() for w in words[1:]]
    return out


def parse_listing(lines: list[bytes]) -> dict[int, str]:
    """``LIST`` or ``UIDL`` lines (``"3 1234"``) → message number → second word. A line that is
    not a message number (at most 10 digits: POP3 numbers are 32-bit) and a value is skipped."""
    out: dict[int, str] = {}
    for line in lines:
        words = line.decode("ascii", "replace").split(None, 1)
        if len(words) == 2 and words[0].isdigit() and len(words[0]) <= 10:
            out[int(words[0])] = words[1].strip()
    return out


_SCAN_LINE = re.compile(rb"\s*(\d{1,10})\s+(\d{1,18})(?:\s|$)")


def parse_sizes(lines: list[bytes]) -> dict[int, int]:
    """``LIST`` lines → message number → octets. Any other line is a ``ProtocolError`` naming it:
    skipping it would silently leave its message behind (RFC 1939 §5: "n size", more may follow)."""
    out: dict[int, int] = {}
    for line in lines:
        if not line.strip():
            continue
        m = _SCAN_LINE.match(line)
        if m is None:
            raise ProtocolError(f"malformed LIST line {line[:80]!r}")
        out[int(m.group(1))] = int(m.group(2))
    return out


def apop_stamp(banner: bytes) -> bytes | None:
    """The ``<process-ID.clock@hostname>`` of a greeting that offers APOP (RFC 1939 §7)."""
    m = _APOP_STAMP.search(banner)
    return m.group(0) if m else None


def apop_digest(stamp: bytes, password: str) -> str:
    return hashlib.md5(stamp + password.encode("utf-8")).hexdigest()


def sasl_plain(user: str, password: str) -> str:
    return base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")).decode("ascii")


def sasl_xoauth2(user: str, token: str) -> str:
    return base64.b64encode(xoauth2_response(user, token)).decode("ascii")


def join_lines(lines: list[bytes]) -> bytes:
    """poplib's unstuffed lines → the message as served (CRLF line ends)."""
    return b"\r\n".join([*lines, b""])  # one join: no per-line temporaries, no copy to add the last CRLF


def auth_error(where: str, text: str, *, oauth_offered: bool = False) -> AuthenticationFailed:
    """A refused login with the provider's reason spelled out (``migrator.replies.auth_hint``):
    app-password-required, basic-auth-disabled — the fix is on the account, not in the password."""
    return AuthenticationFailed(f"{where}: login refused: {text}{auth_hint(text, oauth_offered=oauth_offered)}")


def login_refusal(where: str, text: str, caps: dict[str, list[str]], *, oauth_offered: bool = False
                  ) -> AuthenticationFailed | LoginDeferred:
    """A refused login as a typed error: ``LoginDeferred`` when its response code says "later"
    (RFC 2449 [LOGIN-DELAY], [IN-USE]; RFC 3206 [SYS/TEMP]), else ``AuthenticationFailed``."""
    code = temporary_login_code(text)
    if code is None:
        return auth_error(where, text, oauth_offered=oauth_offered)
    wait = login_delay_of(caps) if code == "LOGIN-DELAY" else None
    why = {
        "LOGIN-DELAY": f"the server allows one login every {wait:.0f} s" if wait else "the server wants a pause between logins",
        "IN-USE": "another session holds the mailbox lock",
        "SYS/TEMP": "a temporary server problem",
    }[code]
    return LoginDeferred(f"{where}: login deferred, not a wrong password ({why}): {text}; nothing was changed, "
                         "run again later to resume", code=code, wait=wait)


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


# I/O adapter -----------------------------------------------------------------------------------


class _Client(poplib.POP3):
    def _getline(self):  # poplib's, with a larger line limit
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _SslClient(poplib.POP3_SSL, _Client):
    """POP3_SSL's set-up with _Client's line reader (method resolution order)."""


@dataclass
class Pop3Listing:
    sizes: dict[int, int]  # message number → octets (LIST)
    uidls: dict[int, str] | None  # None when the server has no UIDL


class Pop3Source:
    """One authenticated POP3 session (TRANSACTION state). Not thread-safe."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        url = endpoint.url
        self.where = f"source {url.display()}"
        self._sasl_error: dict | None = None  # an XOAUTH2 refusal's decoded report
        ctx = tls_context(endpoint) if url.implicit_tls or url.starttls != "no" else None
        try:
            if url.implicit_tls:
                cls = client_class(endpoint, _SslClient, "pop3")
                self.client: poplib.POP3 = cls(url.host, url.port, timeout=TIMEOUT, context=ctx)
            else:
                self.client = client_class(endpoint, _Client, "pop3")(url.host, url.port, timeout=TIMEOUT)
        except ssl.SSLError as exc:
            raise TlsFailure(f"{self.where}: TLS handshake failed: {tls_text(exc)}") from None
        except OSError as exc:
            raise ConnectionFailed(f"{self.where}: cannot connect: {exc}") from None
        except poplib.error_proto as exc:
            raise ConnectionFailed(f"{self.where}: cannot connect: {_text(exc)}") from None
        self.tls = "implicit" if url.implicit_tls else "none"
        self.banner: bytes = self.client.getwelcome()
        try:
            self.caps_before = self._capa()
            if not url.implicit_tls and url.starttls != "no":
                self._starttls(ctx)
            self.auth_method = self._login()
            self.caps = self._capa()  # capabilities-change-after-auth (UIDL, TOP may appear)
        except BaseException:
            self.abandon()
            raise

    # Session set-up ------------------------------------------------------------------------

    def _call(self, fn, *args):
        """Run a poplib call; transport failures become ConnectionFailed, -ERR a ProtocolError."""
        try:
            return fn(*args)
        except ssl.SSLError as exc:
            raise TlsFailure(f"{self.where}: TLS failure: {tls_text(exc)}") from None
        except (OSError, EOFError, socket.timeout) as exc:
            raise ConnectionFailed(f"{self.where}: connection lost: {exc or type(exc).__name__}") from None
        except poplib.error_proto as exc:
            text = _text(exc)
            if text.startswith("-ERR EOF") or text == "line too long":
                raise ConnectionFailed(f"{self.where}: connection lost: {text}") from None
            raise ProtocolError(f"{self.where}: {text}") from None

    def _capa(self) -> dict[str, list[str]]:
        try:
            resp, lines, _ = self._call(self.client._longcmd, "CAPA")
        except ProtocolError:
            return {}  # RFC 1939 servers without CAPA: USER/PASS, and try UIDL/TOP anyway
        return parse_capa(lines)

    def _starttls(self, ctx: ssl.SSLContext | None) -> None:
        if "STLS" not in self.caps_before:
            if self.endpoint.url.starttls == "required":
                raise TlsFailure(f"{self.where}: STLS required but not advertised")
            return
        try:
            self.client.stls(ctx)
        except ssl.SSLError as exc:
            raise TlsFailure(f"{self.where}: STLS failed: {tls_text(exc)}") from None
        except (poplib.error_proto, OSError) as exc:
            raise TlsFailure(f"{self.where}: STLS refused: {_text(exc)}") from None
        self.tls = "starttls"
        self.caps_before = self._capa()  # RFC 2595: forget what was said in the clear

    def _login(self) -> str:
        """Authenticate with the strongest method offered; returns its name."""
        url, secret = self.endpoint.url, self.endpoint.password.reveal()
        sasl = self.caps_before.get("SASL", [])
        want = url.auth
        stamp = apop_stamp(self.banner)
        try:
            if want == "xoauth2":
                self._sasl("XOAUTH2", sasl_xoauth2(url.user, secret))
                return "xoauth2"
            if want == "apop" or (want == "auto" and stamp):
                if not stamp:
                    raise ProtocolError(f"{self.where}: APOP asked for, but the greeting offers none")
                self._call(self.client._shortcmd, f"APOP {url.user} {apop_digest(stamp, secret)}")
                return "apop"
            if want == "plain" or (want == "auto" and "PLAIN" in sasl):
                self._sasl("PLAIN", sasl_plain(url.user, secret))
                return "plain"
            self._call(self.client.user, url.user)
            self._call(self.client.pass_, secret)
            return "user"
        except ProtocolError as exc:
            text = str(exc).removeprefix(f"{self.where}: ")
            refusal = login_refusal(self.where, text, self.caps_before,
                                    oauth_offered=want != "xoauth2" and "XOAUTH2" in sasl)
            if want == "xoauth2" and not isinstance(refusal, LoginDeferred):
                refusal = OAuthTokenRejected(f"{self.where}: login refused: {oauth_refusal(text, self._sasl_error)}")
            raise refusal from None

    def _sasl(self, mechanism: str, response: str) -> None:
        """SASL per RFC 5034. PLAIN sends its initial response with the command. XOAUTH2 goes in
        two steps (``AUTH XOAUTH2``, "+ ", then the token on its own line): Microsoft's POP3
        documents only that form (xoauth2-two-step-pop3) and RFC 5034 servers must accept it.
        A "+ " challenge after the response is an error report (XOAUTH2's JSON): answer with an
        empty line to end the exchange and read the -ERR."""
        if mechanism == "XOAUTH2":
            reply = self._call(self.client._shortcmd, f"AUTH {mechanism}")
            if reply.startswith(b"+ ") or reply == b"+":
                reply = self._call(self.client._shortcmd, response)
        else:
            reply = self._call(self.client._shortcmd, f"AUTH {mechanism} {response}")
        if reply.startswith(b"+ ") or reply == b"+":
            self._sasl_error = oauth_error(reply[2:])
            reply = self._call(self.client._shortcmd, "")
        if not reply.startswith(b"+OK"):
            raise ProtocolError(f"{self.where}: {reply.decode('utf-8', 'replace')}")

    # Transaction ---------------------------------------------------------------------------

    @property
    def has_top(self) -> bool:
        return "TOP" in self.caps or not self.caps

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.caps

    def listing(self) -> Pop3Listing:
        _, lines, _ = self._call(self.client._longcmd, "LIST")
        try:
            sizes = parse_sizes(lines)
        except ProtocolError as exc:
            raise ProtocolError(f"{self.where}: {exc}") from None
        uidls: dict[int, str] | None = None
        if "UIDL" in self.caps or not self.caps:
            try:
                _, lines, _ = self._call(self.client._longcmd, "UIDL")
                uidls = parse_listing(lines)
            except ProtocolError:
                uidls = None  # pop3-uidl-missing: "-ERR unknown command"
        return Pop3Listing(sizes, uidls)

    def headers(self, numbers: list[int]) -> dict[int, bytes]:
        """``TOP n 0`` per message (pipelined when the server allows): number → header bytes."""
        return self._many([f"TOP {n} 0" for n in numbers], numbers)

    def retrieve(self, numbers: list[int]) -> dict[int, bytes]:
        """``RETR`` per message: number → the message as served. RETR of a message the server
        refuses (-ERR) is left out; a dropped connection raises ``ConnectionFailed``."""
        return self._many([f"RETR {n}" for n in numbers], numbers)

    def _many(self, commands: list[str], numbers: list[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        if not self.pipelining:
            for cmd, n in zip(commands, numbers):
                try:
                    out[n] = join_lines(self._call(self.client._longcmd, cmd)[1])
                except ProtocolError:
                    continue
            return out
        self._call(self.client._putline, "\r\n".join(commands).encode("ascii"))
        for n in numbers:
            try:
                out[n] = join_lines(self._call(self.client._getlongresp)[1])
            except ProtocolError:
                continue
        return out

    def delete(self, numbers: list[int]) -> list[int]:
        """DELE each; returns those the server marked (deleted only by a successful ``quit``)."""
        done = []
        for n in numbers:
            try:
                self._call(self.client.dele, n)
                done.append(n)
            except ProtocolError:
                continue
        return done

    def reset(self) -> None:
        """RSET: unmark everything this session marked, including what a server marks by itself
        on RETR (pop3-delete-on-retrieve), so QUIT deletes only what we DELE afterwards."""
        self._call(self.client.rset)

    def quit(self) -> str:
        """QUIT: enters the UPDATE state, where marked messages are really removed. Raises when
        the server did not confirm (then nothing was deleted, RFC 1939 §6)."""
        try:
            reply = self._call(self.client.quit)
        finally:
            self.abandon()
        return reply.decode("utf-8", "replace")

    def abandon(self) -> None:
        """Drop the connection without QUIT: no DELE of this session takes effect."""
        try:
            self.client.close()
        except Exception:
            pass

