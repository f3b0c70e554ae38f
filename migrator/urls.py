"""Server URLs (``imap://user@host:port?starttls=…``) and secrets that never leak.

A password is never part of a URL or argv: it comes from an environment variable, a file or an
interactive prompt and lives in a ``Secret`` whose ``str``/``repr`` are ``***``. A secret from an
environment variable or a file is read again at every ``reveal()`` — every (re)connect — so an
OAuth access token that a refresher rewrites during a long run is picked up at the next login
(oauth-token-expiry).

TLS certificates are verified by default (implicit TLS and STARTTLS alike, every protocol):
``?ca=PATH`` trusts one more CA (e.g. a simulator's self-signed certificate) for that server,
``?verify=no`` (or ``tls_verify=no``; ``--insecure`` for both servers) skips verification, and
the report says so (``MigrationReport.tls_unverified``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from migrator.errors import UsageError

if TYPE_CHECKING:
    from transcripts.tap import LabelledRecorder

DEFAULT_PORTS = {"imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "lmtp": 24, "smtp": 25, "smtps": 465}
# EWS (SOAP endpoint /EWS/Exchange.asmx) and CardDAV/CalDAV; the +http forms are plain, for simulators.
DEFAULT_PORTS |= {"ews": 443, "ews+http": 80, "dav": 443, "dav+http": 80}
IMPLICIT_TLS_SCHEMES = ("imaps", "pop3s", "smtps", "ews", "dav")
AUTH_VALUES = ("auto", "user", "apop", "plain", "xoauth2")  # POP3 login method; xoauth2: the secret is the token
IMAP_AUTH_VALUES = ("auto", "xoauth2")  # IMAP: auto = LOGIN; xoauth2 = AUTHENTICATE XOAUTH2, the secret is the token
AUTH_VALUES += ("basic", "bearer")  # EWS: bearer = the secret is an OAuth access token
STARTTLS_VALUES = ("auto", "required", "no")


class Secret:
    """A password or token; only ``reveal()`` gives the value, so it cannot end up in logs by accident.

    ``load`` (given by ``resolve_secret`` for env and file secrets) re-reads the value at each
    ``reveal()``; an empty read keeps the last value (a refresher caught mid-write).
    """

    __slots__ = ("_value", "_load")

    def __init__(self, value: str, load: Callable[[], str] | None = None):
        self._value = value
        self._load = load

    def reveal(self) -> str:
        if self._load is not None:
            self._value = self._load() or self._value
        return self._value

    def __str__(self) -> str:
        return "***"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ServerURL:
    scheme: str
    host: str
    port: int
    user: str
    starttls: str = "auto"  # auto: use STARTTLS when advertised (imap:// only)
    tls_verify: bool = True
    auth: str = "auto"  # POP3: auto = APOP when offered, else SASL PLAIN, else USER/PASS; IMAP: LOGIN or xoauth2
    path: str = ""  # dav://: the home collection (default /<user>/)
    ca: str = ""  # ?ca=PATH: a CA certificate (PEM) to trust for this server

    @classmethod
    def parse(cls, text: str) -> ServerURL:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"bad server URL {text!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise UsageError(f"bad server URL {_safe(text)!r}: scheme must be one of {'/'.join(DEFAULT_PORTS)}, not {scheme!r}")
        if parts.password is not None:
            raise UsageError(
                f"bad server URL {_safe(text)!r}: a password in the URL is refused; "
                "use --…-password-env, --…-password-file or the prompt"
            )
        if not parts.hostname:
            raise UsageError(f"bad server URL {_safe(text)!r}: no host")
        if not parts.username:
            raise UsageError(f"bad server URL {_safe(text)!r}: no user (imap://user@host)")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"starttls", "tls_verify", "verify", "auth", "ca"}
        if unknown:
            raise UsageError(f"bad server URL {_safe(text)!r}: unknown parameter(s) {sorted(unknown)}")
        starttls = query.get("starttls", "auto").lower()
        if starttls not in STARTTLS_VALUES:
            raise UsageError(f"bad server URL {_safe(text)!r}: starttls must be required or no, not {starttls!r}")
        if scheme in IMPLICIT_TLS_SCHEMES and starttls == "required":
            raise UsageError(f"bad server URL {_safe(text)!r}: starttls=required makes no sense with {scheme}://")
        auth = query.get("auth", "auto").lower()
        allowed = IMAP_AUTH_VALUES if scheme in ("imap", "imaps") else AUTH_VALUES
        if auth not in allowed:
            raise UsageError(f"bad server URL {_safe(text)!r}: auth must be one of {', '.join(allowed)}, not {auth!r}")
        verify = query.get("verify", query.get("tls_verify", "yes")).lower()
        if verify not in ("yes", "no", "true", "false", "1", "0"):
            raise UsageError(f"bad server URL {_safe(text)!r}: verify (tls_verify) must be yes or no")
        if query.get("ca") == "":
            raise UsageError(f"bad server URL {_safe(text)!r}: ca= needs the path of a PEM file")
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port or DEFAULT_PORTS[scheme],
            user=unquote(parts.username),
            starttls=starttls,
            tls_verify=verify in ("yes", "true", "1"),
            auth=auth,
            path=parts.path if scheme.startswith("dav") else "",
            ca=unquote(query.get("ca", "")),
        )

    @property
    def implicit_tls(self) -> bool:
        return self.scheme in IMPLICIT_TLS_SCHEMES

    def display(self) -> str:
        """The URL as shown in reports and errors (it never held a secret)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = self.user.replace("%", "%25").replace("@", "%40")
        return f"{self.scheme}://{user}@{host}:{self.port}" + (self.path if self.path not in ("", "/") else "")

    def __str__(self) -> str:
        return self.display()


def _safe(text: str) -> str:
    """The URL text with any password part masked, for error messages."""
    try:
        parts = urlsplit(text)
        if parts.password is not None:
            return text.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return text


def resolve_secret(*, env: str | None = None, file: Path | None = None, prompt: str | None = None) -> Secret:
    """The password from an environment variable, a file (trailing newline stripped) or a prompt;
    env and file secrets are re-read at every ``reveal()``."""
    if env:
        def load() -> str:
            value = os.environ.get(env)
            if value is None:
                raise UsageError(f"environment variable {env} is not set")
            return value

        return Secret(load(), load)
    if file:
        def load() -> str:
            try:
                return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise UsageError(f"cannot read password file {file}: {exc.strerror}") from None

        return Secret(load(), load)
    if prompt:
        return Secret(getpass.getpass(prompt))
    raise UsageError("no password source: give an environment variable, a file or allow the prompt")


@dataclass
class Endpoint:
    url: ServerURL
    password: Secret
    cafile: Path | None = None  # extra CA to trust (e.g. a simulator's self-signed certificate)
    # Extensions not to use although advertised (broken-move: MOVE that does not move), upper case.
    ignore_capabilities: frozenset[str] = frozenset()
    # Record this side's connections as transcripts (``--record``); None: not recorded.
    recorder: LabelledRecorder | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.cafile is None and self.url.ca:  # ?ca=PATH in the URL
            self.cafile = Path(self.url.ca)

    def trusted_ca(self) -> str | None:
        """The extra CA file to verify against (None: the system's store only), checked when TLS
        is about to be used: a missing file is a usage error, not an obscure ssl one."""
        if self.cafile is None or not self.url.tls_verify:
            return None
        if not Path(self.cafile).is_file():
            raise UsageError(f"{self.url.display()}: CA file {self.cafile} does not exist")
        return str(self.cafile)

    @property
    def tls_unverified(self) -> bool:
        """TLS (if any) to this server skips certificate verification: said in the report."""
        return not self.url.tls_verify

    def __str__(self) -> str:
        return self.url.display()
