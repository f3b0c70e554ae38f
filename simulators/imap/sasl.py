"""The server side of the SASL mechanisms AUTHENTICATE offers: PLAIN (RFC 4616), LOGIN, XOAUTH2.

The engine sends ``challenge()`` after ``+ ``, feeds each decoded client response to ``feed``
until it returns True, then checks ``credentials()`` like a LOGIN command (for XOAUTH2 the
"password" is the bearer token; ``simulators.xoauth2`` reads the response).
"""

from __future__ import annotations

import base64

from simulators.xoauth2 import XOAuth2Error, parse_xoauth2

MECHANISMS = ("PLAIN", "LOGIN", "XOAUTH2")


class SaslExchange:
    """One AUTHENTICATE exchange: PLAIN or XOAUTH2 (one response), LOGIN (user name, then password)."""

    def __init__(self, tag: str, mech: str):
        self.tag = tag
        self.mech = mech
        self.responses: list[bytes] = []

    def challenge(self) -> bytes:
        if self.mech == "LOGIN":
            return base64.b64encode(b"Password:" if self.responses else b"Username:")
        return b""

    def feed(self, data: bytes) -> bool:
        self.responses.append(data)
        return self.mech != "LOGIN" or len(self.responses) == 2

    def credentials(self) -> tuple[str, str]:
        """(user, password or token); ("", "") when the response is malformed."""
        if self.mech == "LOGIN":
            return tuple(r.decode("utf-8", "replace") for r in self.responses)  # type: ignore[return-value]
        if self.mech == "XOAUTH2":
            try:
                return parse_xoauth2(self.responses[0])
            except XOAuth2Error:
                return "", ""
        parts = self.responses[0].split(b"\0")
        if len(parts) != 3:
            return "", ""
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
