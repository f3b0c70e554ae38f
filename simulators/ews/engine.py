"""The EWS core: an HTTP request (method, path, headers, body bytes) → an HTTP response.

No sockets here (``server.py`` adapts it to twisted.web). Authentication: HTTP Basic with the
store account's username and password, or ``Authorization: Bearer <token>`` where the valid
token is the account's password (the simulator has no token issuer; ``X-AnchorMailbox`` picks
the account when several share a password). Anything else is a 401 with WWW-Authenticate.

A request that is not a SOAP envelope, or names an unknown operation, gets a SOAP Fault (HTTP
500) with Exchange's response codes; per-item problems are per-message errors inside a normal
response, as Exchange sends them.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field

from simulators.ews import folders, operations
from simulators.ews.soap import SoapFault, envelope, fault_body, parse_envelope
from simulators.profiles import Profile
from simulators.quirks import Quirk, build_all
from simulators.store import Account, Store

log = logging.getLogger(__name__)
EWS_PATH = "/EWS/Exchange.asmx"
_XML = ("Content-Type", "text/xml; charset=utf-8")


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes = b""


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class EwsContext:
    """What an operation may use: the authenticated account and the server's settings/quirks."""

    store: Store
    profile: Profile
    account: Account
    quirks: list[Quirk]

    @property
    def settings(self):
        return self.profile.ews


class EwsService:
    """One EWS endpoint over one store and profile; its quirk objects count across requests."""

    def __init__(self, store: Store, profile: Profile, quirks: list[Quirk] | None = None):
        self.store = store
        self.profile = profile
        self.quirks = build_all(profile.quirks, "ews") if quirks is None else quirks
        self._prepared: set[str] = set()

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path.split("?")[0].lower() != EWS_PATH.lower():
            return HttpResponse(404, [("Content-Type", "text/html")], b"<html><body>404 Not Found</body></html>")
        if request.method.upper() != "POST":
            return HttpResponse(405, [("Allow", "POST")], b"")
        account = self._authenticate(request.headers)
        if account is None:
            return HttpResponse(401, [("WWW-Authenticate", 'Basic realm="quirkmail"'),
                                      ("WWW-Authenticate", "Bearer")], b"")
        if account.username not in self._prepared:
            folders.ensure_distinguished(account, self.profile)
            self._prepared.add(account.username)
        ctx = EwsContext(self.store, self.profile, account, self.quirks)
        try:
            env = parse_envelope(request.body)
            for quirk in self.quirks:
                override = quirk.ews_request(ctx, env.name)
                if override is not None:
                    return override if isinstance(override, HttpResponse) else _fault(override)
            op = operations.OPERATIONS.get(env.name)
            if op is None:
                raise SoapFault("ErrorInvalidRequest", f"The request is invalid: unknown operation {env.name!r}.")
            body = op(ctx, env.operation)
        except SoapFault as fault:
            return _fault(fault)
        except Exception as exc:  # a simulator bug must not take the endpoint down: answer as Exchange would
            log.exception("EWS %s failed", request.path)
            text = f"An internal server error occurred. The operation failed., {type(exc).__name__}: {exc}"
            return _fault(SoapFault("ErrorInternalServerError", text))
        return HttpResponse(200, [_XML], envelope(body, self.profile.ews.server_version))

    def _authenticate(self, headers: dict[str, str]) -> Account | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeError):
                return None
            account = self.store.accounts.get(user)
            return account if account is not None and account.password == password else None
        if scheme == "bearer" and value:
            matches = [a for a in self.store.accounts.values() if a.password == value]
            anchor = headers.get("x-anchormailbox", "").lower()
            for a in matches:
                if a.username.lower() == anchor:
                    return a
            return matches[0] if len(matches) == 1 else None
        return None


def _fault(fault: SoapFault) -> HttpResponse:
    return HttpResponse(fault.status, [_XML], fault_body(fault))
