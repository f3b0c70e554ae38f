"""Read receipts (mdn-resend): which copies would make Exchange send a receipt again. Pure.

Exchange/M365 sends a read receipt (RFC 8098) for a stored message that is \\Seen, carries
Disposition-Notification-To and lacks the `$MDNSent` keyword — also for one APPENDed by a
migration, although the receipt went out when the user read the original. Adding `$MDNSent`
(``mdn-neutralise``) records that truth and stops the second receipt.
"""

from __future__ import annotations

import re

MDN_SENT = "$MDNSent"
_DNT = re.compile(rb"^Disposition-Notification-To:", re.IGNORECASE | re.MULTILINE)


def asks_receipt(raw: bytes, flags: list[str]) -> bool:
    """A read message whose header asks for a read receipt and that is not marked as answered."""
    if "\\Seen" not in flags or any(f.lower() == MDN_SENT.lower() for f in flags):
        return False
    end = raw.find(b"\r\n\r\n")
    return _DNT.search(raw[: end if end >= 0 else len(raw)]) is not None
