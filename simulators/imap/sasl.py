"""The server side of the SASL mechanisms AUTHENTICATE offers: PLAIN (RFC 4616) and LOGIN.

The engine sends ``challenge()`` after ``+ ``, feeds each decoded client response to ``feed``
until it returns True, then checks ``credentials()`` like a LOGIN command.
"""

from __future__ import annotations

import base64

MECHANISMS = ("PLAIN", "LOGIN")


class SaslExchange:
    """One AUTHENTICATE exchange: PLAIN (one response) or LOGIN (user name, then password)."""

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
        return self.mech == "PLAIN" or len(self.responses) == 2

    def credentials(self) -> tuple[str, str]:
        if self.mech == "LOGIN":
            return tuple(r.decode("utf-8", "replace") for r in self.responses)  # type: ignore[return-value]
        parts = self.responses[0].split(b"\0")
        if len(parts) != 3:
            return "", ""
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
