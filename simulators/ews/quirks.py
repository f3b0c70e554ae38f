"""EWS quirks: Exchange / Exchange Online behaviours hooked into ``simulators.ews`` (QUIRKS.md).

Imported by ``simulators.quirks._load_builtin_quirks``. Counting quirks count requests per user
across the server (deterministic by count, never by clock). Fault shapes and wording follow what
Exchange sends and what exchangelib parses (``_raise_soap_errors``, ``raise_response_errors``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from simulators.ews.engine import HttpResponse
from simulators.ews.paging import Page
from simulators.ews.soap import SoapFault, back_off_value, fault_body
from simulators.quirks import Quirk, register
from simulators.store import MailItem


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Counting(Quirk):
    """Counts requests per user; request number n is refused when ``after < n`` and, with
    ``every`` > 0, ``(n - after - 1) % every == 0``, otherwise for the ``times`` requests after ``after``."""

    protocols = frozenset({"ews"})

    class Params(_Params):
        after: int = 10
        times: int = 1
        every: int = 0

    def __init__(self, params):
        super().__init__(params)
        self._seen: dict[str, int] = {}

    def refused(self, ctx) -> int | None:
        """The refusal's index (0, 1, ...) when this request is refused, else None."""
        user = ctx.account.username
        n = self._seen[user] = self._seen.get(user, 0) + 1
        p = self.params
        k = n - p.after - 1
        if k < 0:
            return None
        if p.every > 0:
            return k // p.every if k % p.every == 0 else None
        return k if k < p.times else None


@register
class NonmailInDeletedItems(Quirk):
    """Exchange: Deleted Items (a mail folder) lists contacts, events and tasks with their real classes.

    FindItem / SyncFolderItems on ``deleteditems`` return every item of the folder — t:Contact,
    t:CalendarItem, t:Task and notes next to the mail — as Exchange does after a user deletes
    them in Outlook. Without the quirk a mail folder shows its mail only.
    """

    name = "nonmail-in-deleted-items"
    protocols = frozenset({"ews"})

    def ews_folder_items(self, ctx, folder, items):
        from simulators.ews import folders

        if folder.path != folders.distinguished_path(ctx.account, ctx.profile, "deleteditems"):
            return None
        with ctx.store.lock:
            return list(folder.messages) + list(folder.items)


@register
class EwsServerBusy(_Counting):
    """Exchange throttling: `ErrorServerBusy` SOAP fault with BackOffMilliseconds in MessageXml.

    HTTP 500, faultcode ``a:ErrorServerBusy``, "The server cannot service this request right now.
    Try again later.", ``<t:Value Name="BackOffMilliseconds">N</t:Value>``; after ``after``
    requests, for ``times`` requests (or every ``every``-th one).
    """

    name = "ews-server-busy"

    class Params(_Counting.Params):
        backoff_ms: int = 30000

    def ews_request(self, ctx, operation):
        if self.refused(ctx) is None:
            return None
        return SoapFault("ErrorServerBusy", "The server cannot service this request right now. Try again later.",
                         [back_off_value(self.params.backoff_ms)])


_DISGUISES = {
    "401": None,
    "503": None,
    "302": None,
    "ErrorTooManyObjectsOpened": "Too many concurrent connections opened.",
    "ErrorExceededConnectionCount": "You have exceeded the available concurrent connections for your account.  "
                                    "Try again once your other requests have completed.",
    "ErrorTimeoutExpired": "The request timed out.",
    "500": "An internal server error occurred. The operation failed.",
}


@register
class EwsThrottleDisguised(_Counting):
    """Exchange throttling in disguise: a bare 401, 503, 302 to the error page, or HTTP 500 SOAP faults.

    ``kinds`` (joined by "|") are used in turn for successive refusals: ``401`` (no body),
    ``503``, ``302`` (Location ``/EWS/genericerrorpage.htm?aspxerrorpath=/EWS/Exchange.asmx``),
    ``500`` (ErrorInternalServerError as a SOAP fault), ``ErrorTooManyObjectsOpened``,
    ``ErrorExceededConnectionCount``, ``ErrorTimeoutExpired`` (SOAP faults, HTTP 500).
    """

    name = "ews-throttle-disguised"

    class Params(_Counting.Params):
        kinds: list[str] = ["401", "503", "ErrorTooManyObjectsOpened"]

        @field_validator("kinds", mode="before")
        @classmethod
        def _split(cls, value):
            # On the command line a list is written "401|503"; a lone "401" arrives as an int.
            value = str(value).split("|") if isinstance(value, (str, int)) else value
            return [str(v) for v in value]

        @field_validator("kinds")
        @classmethod
        def _known(cls, value):
            unknown = [k for k in value if k not in _DISGUISES]
            if unknown or not value:
                raise ValueError(f"kinds {unknown or value} not among {sorted(_DISGUISES)}")
            return value

    def ews_request(self, ctx, operation):
        index = self.refused(ctx)
        if index is None:
            return None
        kind = self.params.kinds[index % len(self.params.kinds)]
        if kind == "401":
            return HttpResponse(401, [("WWW-Authenticate", 'Basic realm="quirkmail"')], b"")
        if kind == "503":
            return HttpResponse(503, [("Content-Type", "text/html")], b"<html><body>Service Unavailable</body></html>")
        if kind == "302":
            return HttpResponse(302, [("Location", "/EWS/genericerrorpage.htm?aspxerrorpath=/EWS/Exchange.asmx")], b"")
        code = "ErrorInternalServerError" if kind == "500" else kind
        fault = SoapFault(code, _DISGUISES[kind])
        return HttpResponse(500, [("Content-Type", "text/xml; charset=utf-8")], fault_body(fault))


@register
class EwsPagingAnomalies(Quirk):
    """Exchange Online paging: contradicting paging values, a hard stop at 1000 items, offset drift.

    ``mode=contradict``: TotalItemsInView is off by ``delta`` and IncludesLastItemInRange is
    "true" on the first page although IndexedPagingOffset points further on. ``mode=stop``: no
    item past ``limit`` (1000) is ever returned, the last page claims IncludesLastItemInRange
    while TotalItemsInView keeps the real count. ``mode=drift``: IndexedPagingOffset is ``delta``
    lower than the items returned, so a client that trusts it sees items twice.
    """

    name = "ews-paging-anomalies"
    protocols = frozenset({"ews"})

    class Params(_Params):
        mode: Literal["contradict", "stop", "drift"] = "stop"
        limit: int = 1000
        delta: int = 5

    def ews_page(self, ctx, folder, page: Page) -> Page | None:
        p = self.params
        if p.mode == "contradict" and page.start == 0 and not page.includes_last:
            return dataclasses.replace(page, total=page.total + p.delta, includes_last=True)
        if p.mode == "stop" and page.stop > p.limit:
            stop = max(min(page.stop, p.limit), page.start)
            return dataclasses.replace(page, stop=stop, next_offset=stop, includes_last=True)
        if p.mode == "drift" and not page.includes_last:
            return dataclasses.replace(page, next_offset=max(page.next_offset - p.delta, page.start + 1))
        return None


@register
class EwsMimeConversionFailed(Quirk):
    """Exchange: `ErrorMimeContentConversionFailed` for chosen messages when MIME content is asked.

    Per item in the GetItem response ("Content conversion failed."); chooses the messages whose
    Subject contains ``subject`` (when given) or every ``every``-th message by UID.
    """

    name = "ews-mime-conversion-failed"
    protocols = frozenset({"ews"})

    class Params(_Params):
        subject: str = ""
        every: int = 0

    def ews_item_error(self, ctx, operation, folder, item, shape):
        if operation != "GetItem" or not shape.mime or not isinstance(item, MailItem):
            return None
        p = self.params
        chosen = (p.every > 0 and item.uid % p.every == 0) or (
            p.subject and p.subject.encode("utf-8").lower() in _subject(item.raw).lower()
        )
        return ("ErrorMimeContentConversionFailed", "Content conversion failed.") if chosen else None


def _subject(raw: bytes) -> bytes:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in head.splitlines():
        if line.lower().startswith(b"subject:"):
            return line[8:].strip()
    return b""
