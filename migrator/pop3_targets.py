"""Where a POP3 source's messages go: one IMAP folder (APPEND) or a mailbox reached by delivery
(LMTP/SMTP). Both answer ``store(batch) -> [AppendResult]`` so the POP3 flow does not care which.

An IMAP target can also say what the folder already holds (identities, for merge matching); a
delivery target cannot read its mailbox, so there only the checkpoint prevents duplicates.
Each target also says what a refusal means (``verdict``: skip, retry later, stop the run). A
delivery target handles SMTP's 421 itself: it reconnects and sends the same message again.
"""

from __future__ import annotations

from datetime import datetime

from migrator.backoff import MAX_DELAY, backoff_delay, retry_delay
from migrator.errors import ConnectionFailed, MigratorError, UsageError
from migrator.folders import destination_name
from migrator.identity import IdentityIndex
from migrator.replies import RECONNECT, RETRY_LATER, SKIP, STOP_RUN, Verdict, classify_smtp
from migrator.sinks.imap import AppendInterrupted, AppendItem, AppendResult, ImapSink, refusal_reason
from migrator.sinks.lmtp import LOSSES as DELIVERY_LOSSES
from migrator.sinks.lmtp import DeliverySink
from migrator.timeline import FAILED, RESUMED, Timeline
from migrator.urls import Endpoint

DELIVERY_SCHEMES = ("lmtp", "smtp", "smtps")
IMAP_LOSSES = [
    "folders: POP3 shows the inbox only, so everything lands in one destination folder",
    "flags: POP3 has none (read/answered state is not available to copy)",
    "INTERNALDATE: POP3 has none; each copy carries its newest trustworthy Received date, else its Date",
]


class ImapTarget:
    via = "appended"
    reconnects = 0  # the IMAP path does not reconnect the destination

    def __init__(self, endpoint: Endpoint, folder_path: str, *, create: bool = True, timeline: Timeline | None = None):
        self.sink = ImapSink(endpoint, timeline=timeline)
        self.kind = "imap"
        entries, ns = self.sink.folders()
        parts = tuple(p for p in folder_path.split("/") if p) or ("INBOX",)
        if parts[0].upper() == "INBOX" and len(parts) == 1:
            parts = ("INBOX",)
        self.folder = destination_name(parts, ns)
        self.uidvalidity: int | None = None
        if self.folder not in {e.name for e in entries if e.selectable}:
            if not create:  # a dry run: nothing to look at yet
                self.exists = 0
                return
            self.sink.create(self.folder)
        _, self.exists = self.sink.select(self.folder)
        status = self.sink.ok(self.folder, self.sink.client.folder_status, self.folder, [b"UIDVALIDITY"])
        self.uidvalidity = int(status.get(b"UIDVALIDITY", 0)) or None

    @property
    def losses(self) -> list[str]:
        return IMAP_LOSSES

    def identities(self) -> IdentityIndex | None:
        return self.sink.identities(self.folder, self.exists) if self.exists else IdentityIndex()

    def store(self, batch: list[tuple[bytes, datetime | None]]) -> list[AppendResult]:
        """APPEND without flags, with the resolved date. A lost connection raises
        ``AppendInterrupted`` carrying the replies read before the loss."""
        return self.sink.append_batch(self.folder, [AppendItem(raw, [], when) for raw, when in batch])

    @staticmethod
    def verdict(text: str) -> Verdict:
        """A refused APPEND: [OVERQUOTA] stops the run, throttling is retried later, the rest skipped."""
        reason = refusal_reason(text)
        if reason == "over-quota":
            return Verdict(STOP_RUN, reason, None, None)
        wait = retry_delay(text, 0)
        if reason == "refused" and wait is not None:
            return Verdict(RETRY_LATER, "deferred", None, None, wait)
        return Verdict(SKIP, reason, None, None)

    def close(self) -> None:
        self.sink.close()


class DeliveryTarget:
    via = "delivered"
    uidvalidity = None
    reconnects = 0  # new connections after a 421

    def __init__(self, endpoint: Endpoint, *, timeline: Timeline | None = None):
        self.timeline = timeline or Timeline()  # tests pass one with a fake sleep: no real reconnect backoff
        self.sink = DeliverySink(endpoint)
        self.kind = "lmtp" if endpoint.url.scheme == "lmtp" else "smtp"
        self.folder = endpoint.url.user

    @property
    def losses(self) -> list[str]:
        return DELIVERY_LOSSES

    def identities(self) -> IdentityIndex | None:
        return None  # a delivery protocol cannot look into the mailbox

    verdict = staticmethod(classify_smtp)

    def store(self, batch: list[tuple[bytes, datetime | None]]) -> list[AppendResult]:
        """Deliver each message; stops early after a reply that stops the run (over quota): the
        rest would be refused too. A lost connection raises ``AppendInterrupted``."""
        results: list[AppendResult] = []
        for raw, _ in batch:  # the destination stamps delivery time: the date cannot be passed
            try:
                results.append(self._deliver(raw))
            except ConnectionFailed as exc:
                raise AppendInterrupted(str(exc), results) from None
            if not results[-1].ok and classify_smtp(results[-1].text).action == STOP_RUN:
                break
        return results

    def _deliver(self, raw: bytes) -> AppendResult:
        """One message; after a 421 (the server closed the channel without taking it) the same
        message again on a new connection, with a growing pause, a bounded number of times."""
        attempt = 0
        while True:
            res = self.sink.deliver(raw)
            said = None if res.ok else classify_smtp(res.text)
            if said is None or said.action != RECONNECT:
                return res
            wait = backoff_delay(attempt)
            if wait is None:
                raise ConnectionFailed(f"{self.sink.where}: closed the connection {attempt + 1} times: {res.text}")
            self.timeline.backoff(min(said.delay, MAX_DELAY) if said.delay else wait, res.text, where=self.sink.where,
                                  attempt=attempt + 1)
            try:
                self.sink.reconnect()
            except MigratorError as exc:
                self.timeline.reconnect(str(exc), where=self.sink.where, outcome=FAILED)
                raise
            self.timeline.reconnect(res.text, where=self.sink.where, outcome=RESUMED)
            self.reconnects += 1
            attempt += 1

    def close(self) -> None:
        self.sink.close()


def open_target(endpoint: Endpoint, folder_path: str, *, dry_run: bool,
                timeline: Timeline | None = None) -> ImapTarget | DeliveryTarget:
    if endpoint.url.scheme not in DELIVERY_SCHEMES + ("imap", "imaps"):
        raise UsageError(f"a POP3 source goes to imap://, imaps://, lmtp:// or smtp://, not {endpoint.url.scheme}://")
    if endpoint.url.scheme in DELIVERY_SCHEMES:
        return DeliveryTarget(endpoint, timeline=timeline)
    return ImapTarget(endpoint, folder_path, create=not dry_run, timeline=timeline)
