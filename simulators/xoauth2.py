"""SASL XOAUTH2, server side, for every front (IMAP AUTHENTICATE, POP3 AUTH, SMTP AUTH). Pure.

The client's response (Google's "OAuth 2.0 Mechanism" page,
https://developers.google.com/gmail/imap/xoauth2-protocol) is
``base64("user=" {User} "^Aauth=Bearer " {Access Token} "^A^A")``. On a bad token Gmail sends a
continuation holding base64 JSON (IMAP ``+ <b64>``, SMTP ``334 <b64>``) and the final refusal only
after the client's empty line (xoauth2-error-continuation).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any


class XOAuth2Error(ValueError):
    """An XOAUTH2 initial response that does not have the documented shape; says what is wrong."""


def parse_xoauth2(blob: bytes) -> tuple[str, str]:
    """``b"user=u\\x01auth=Bearer t\\x01\\x01"`` → ("u", "t")."""
    fields: dict[str, str] = {}
    for part in blob.decode("utf-8", "replace").split("\x01"):
        if part:
            key, eq, value = part.partition("=")
            if not eq:
                raise XOAuth2Error(f"XOAUTH2 field {key!r} has no '='")
            fields[key] = value
    scheme, _, token = fields.get("auth", "").partition(" ")
    if "user" not in fields or scheme.lower() != "bearer" or not token:
        raise XOAuth2Error("XOAUTH2 response needs user=... and auth=Bearer <token>")
    return fields["user"], token


def token_verdict(quirks: Iterable[Any], protocol: str, user: str, token: str, account: Any) -> bool | str:
    """Whether a bearer token logs ``account`` in, every quirk's ``oauth_check`` combined: the
    first refusal reply wins (an expired token), then a plain False, then a True (a token a quirk
    issued or names); when no quirk has a say, the account's password doubles as its token."""
    verdicts = [q.oauth_check(protocol, user, token, account) for q in quirks]
    refusal = next((v for v in verdicts if isinstance(v, str)), None)
    if refusal is not None:
        return refusal
    if any(v is False for v in verdicts):
        return False
    if any(v is True for v in verdicts):
        return account is not None
    return account is not None and account.password == token


def xoauth2_response(user: str, token: str) -> bytes:
    """The client's initial response, not yet base64 (for tests and clients)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def error_challenge(status: str = "401", schemes: str = "bearer mac", scope: str = "https://mail.google.com/") -> str:
    """The base64 JSON of Gmail's error challenge, byte for byte as Google documents it
    (compact JSON and a trailing newline: ``eyJzdGF0dXMiOiI0MDEi...In0K``)."""
    body = json.dumps({"status": status, "schemes": schemes, "scope": scope}, separators=(",", ":")) + "\n"
    return base64.b64encode(body.encode()).decode("ascii")
