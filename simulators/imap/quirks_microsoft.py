"""Microsoft-over-IMAP and flag quirks (Exchange 2013/2016, M365) hooked into ``simulators.imap.engine``.

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
Replies are reproduced byte for byte as users reported them; each docstring names the report.
"""

from __future__ import annotations

import functools
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from simulators.imap.engine import CommandFailed
from simulators.quirks import Quirk, register
from simulators.store import utcnow

EXCHANGE_BAD = "BAD Command Argument Error. 11"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _split(value):
    # On the command line (name:key=value) a list is written "\\Seen|$Forwarded".
    return value.split("|") if isinstance(value, str) else value


@register
class ExchangeFlaggedOnAppendLost(Quirk):
    """Exchange/Outlook: \\Flagged given in APPEND is dropped; the message is stored without it.

    The APPEND answers OK and every other flag is kept; a later STORE +FLAGS (\\Flagged) works
    (QUIRKS.md; imapsync's --syncflagsaftercopy exists for servers like this, FAQ.Flags.txt).
    """

    name = "exchange-flagged-on-append-lost"
    protocols = frozenset({"imap"})

    def imap_stored_flags(self, session, flags):
        return flags - {"\\Flagged"} if "\\Flagged" in flags else None


@register
class ExchangeAppendLimits(Quirk):
    """Exchange: `BAD Command Argument Error. 11` for a message with a line over ~9900 characters.

    Also for a message over ``bytes`` (imapsync#5: an 11 MB APPEND to Exchange 2010 got
    `BAD Command Argument Error. 11`, and `* BYE Connection closed. 14`; imapsync#389 and #161
    show the same reply for single messages). ``line_limit`` counts a line's bytes without CRLF.
    """

    name = "exchange-append-limits"
    protocols = frozenset({"imap"})

    class Params(_Params):
        line_limit: int = 9900
        bytes: int | None = None
        reply: str = EXCHANGE_BAD

    def imap_append_size(self, session, size):
        return self.params.reply if self.params.bytes is not None and size > self.params.bytes else None

    def imap_message_refused(self, session, raw):
        return self.params.reply if longest_line(raw) > self.params.line_limit else None


def longest_line(raw: bytes) -> int:
    """Bytes of the longest line, without its CRLF (or bare LF)."""
    return max((len(line.rstrip(b"\r")) for line in raw.split(b"\n")), default=0)


@register
class BrokenMove(Quirk):
    """Exchange 2013: MOVE is advertised but unreliable — OK without moving, or a copy left behind.

    ``mode``: ``ok-without-moving`` answers `OK MOVE completed.` and changes nothing;
    ``copy-without-expunge`` copies to the target and leaves the original in place. With
    ``advertise`` the quirk adds MOVE to the post-login capabilities (QUIRKS.md broken-move).
    """

    name = "broken-move"
    protocols = frozenset({"imap"})

    class Params(_Params):
        mode: Literal["ok-without-moving", "copy-without-expunge"] = "ok-without-moving"
        advertise: bool = True
        reply: str = "OK MOVE completed."

    def imap_capabilities(self, caps, authenticated):
        if authenticated and self.params.advertise and "MOVE" not in caps:
            return caps + ["MOVE"]
        return None

    def imap_command(self, session, command):
        if command.name not in ("MOVE", "UID MOVE"):
            return None
        if self.params.mode == "copy-without-expunge":
            copy = functools.partial(session.cmd_COPY, uid=command.name == "UID MOVE")
            try:
                with session.store.lock:
                    copy(command)
            except CommandFailed as exc:  # the copy itself was refused (no such mailbox ...)
                return exc.reply
        return self.params.reply


@register
class ExamineEmptyPermanentflags(Quirk):
    """M365: EXAMINE gives `[PERMANENTFLAGS ()]`; only a read-write SELECT lists the settable flags.

    In Exchange's wording (`* OK [PERMANENTFLAGS (...)] Permanent flags`, node-imap#602). RFC 3501
    allows an empty list for a read-only mailbox, and Dovecot does the same on EXAMINE: an engine
    that reads the allowed flags from EXAMINE drops every flag on the way to such a destination.
    """

    name = "examine-empty-permanentflags"
    protocols = frozenset({"imap"})

    def imap_permanent_flags(self, session, folder, read_only, flags):
        return ([] if read_only else flags), "Permanent flags"


@register
class InvalidFlagsOnAppend(Quirk):
    """A destination that refuses the whole APPEND for one flag it cannot store: `NO APPEND Invalid flag list`.

    The reply is imapsync's FAQ.Flags.txt report (flags `\\Seen NonJunk`); Exchange answers
    `BAD Command Argument Error. 11` for a keyword it does not know (node-imap#602) and imapsync
    lists `\\Indexed`, `\\FORWARDED`, `\\ATTACHED` as system-looking flags servers refuse.
    ``permanent`` is what a read-write SELECT shows as PERMANENTFLAGS and the only flags accepted
    (default: the profile's; a keyword passes when it lists ``\\*``); ``max_keywords`` refuses
    more keywords than that on one message. STORE is refused the same way.
    """

    name = "invalid-flags-on-append"
    protocols = frozenset({"imap"})

    class Params(_Params):
        permanent: list[str] | None = None
        max_keywords: int | None = None
        reply: str = "NO {command} Invalid flag list"

        @field_validator("permanent", mode="before")
        @classmethod
        def _split_list(cls, value):
            return _split(value)

    def _permanent(self, session) -> list[str]:
        return self.params.permanent if self.params.permanent is not None else session.imap.permanent_flags

    def imap_flags_refused(self, session, command, flags):
        allowed = {f.lower() for f in self._permanent(session)}
        keywords = [f for f in flags if not f.startswith("\\")]
        bad = [f for f in flags if f.lower() not in allowed and (f.startswith("\\") or "\\*" not in allowed)]
        too_many = self.params.max_keywords is not None and len(keywords) > self.params.max_keywords
        if (bad and set(bad) != {"\\Recent"}) or too_many:
            return self.params.reply.format(command=command)
        return None

    def imap_permanent_flags(self, session, folder, read_only, flags):
        if read_only or self.params.permanent is None:
            return None
        return list(self.params.permanent), "Flags permitted."


@register
class MdnResend(Quirk):
    """Exchange: a copied read message asking for a receipt (Disposition-Notification-To) makes it send one.

    Each APPENDed message that is \\Seen, carries Disposition-Notification-To and lacks
    `$MDNSent` gets a read receipt (RFC 8098 multipart/report) "sent" to the requester; the
    simulator files a copy in ``folder`` (default: the account's \\Sent folder), where the
    verifier sees it as a message the source never had. imapsync's FAQ.Flags.txt: mail migrated
    into Exchange Online shows `$MDNSent` as a category.
    """

    name = "mdn-resend"
    protocols = frozenset({"imap"})

    class Params(_Params):
        folder: list[str] | None = None

    def imap_appended(self, session, folder, item):
        if "\\Seen" not in item.flags or "$MDNSent" in item.flags:
            return
        headers = BytesHeaderParser(policy=compat32).parsebytes(item.raw)
        requester = headers.get("Disposition-Notification-To")
        if not requester:
            return
        account = session.account
        target = tuple(self.params.folder) if self.params.folder else None
        sent = account.folders.get(target) if target else account.find_special("\\Sent")
        if sent is None:
            sent = account.create_folder(target or ("Sent Items",), special_use=None if target else "\\Sent", exist_ok=True)
        receipt = read_receipt(session.account.username, str(requester), str(headers.get("Message-ID", "")),
                               str(headers.get("Subject", "")))
        account.append(sent.path, receipt, flags={"\\Seen"}, internaldate=utcnow(), extra={"mdn-receipt": True})


def read_receipt(reader: str, requester: str, message_id: str, subject: str) -> bytes:
    """An RFC 8098 read receipt, in Exchange's shape (subject "Read: ...")."""
    boundary = "quirkmail-mdn"
    lines = [
        f"From: {reader}", f"To: {requester}", f"Subject: Read: {subject}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=disposition-notification; boundary="{boundary}"',
        "", f"--{boundary}", "Content-Type: text/plain; charset=us-ascii", "",
        "Your message was read.", "", f"--{boundary}", "Content-Type: message/disposition-notification", "",
        f"Final-Recipient: rfc822;{reader}", f"Original-Message-ID: {message_id}",
        "Disposition: automatic-action/MDN-sent-automatically; displayed", "", f"--{boundary}--", "",
    ]
    return "\r\n".join(lines).encode("utf-8", "replace")
