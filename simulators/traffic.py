"""Live mail during a migration: deterministic messages sent over real SMTP in a background thread.

During a cutover, new mail keeps landing on the old server until MX records have propagated; a
delta re-run must copy exactly that mail — no duplicates, nothing lost. ``LiveTraffic`` plays
that mail: it composes N messages from a seed (the fixture generator's people and text), sends
them with ``smtplib`` to a recipient at a given pace, and records what it sent (Message-ID, a
hash of the bytes) and how the server answered. ``check`` then judges a mailbox read afterwards:

    traffic = LiveTraffic(world.start_smtp(), "alice@example.net", TrafficSpec(seed=3, messages=20, interval=0.05))
    traffic.start(); ...migrate...; traffic.join()
    result = traffic.check(raw for raw in destination_messages)
    assert result.ok, result          # every accepted message exactly once, bytes unchanged
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from simulators.fixtures.compose import render
from simulators.fixtures.content import ContentMaker
from simulators.launcher import ServerHandle
from simulators.smtp.delivery import strip_received

# Date headers of live mail count from here (never the wall clock: same seed, same bytes).
LIVE_EPOCH = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class TrafficSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 1
    messages: int = Field(20, ge=0)
    interval: float = Field(0.0, ge=0.0)  # seconds between two messages (the pace)
    attachments: float = Field(0.2, ge=0.0, le=1.0)  # share of messages with attachments
    starttls: bool = False
    # A temporary refusal (4xx: greylisting, throttling) or a dropped connection is retried this
    # many times, ``retry_delay`` seconds apart, as a sending MTA would; 5xx is final.
    retries: int = Field(0, ge=0)
    retry_delay: float = Field(0.0, ge=0.0)


@dataclass(frozen=True)
class LiveMessage:
    index: int
    sender: str
    message_id: str
    raw: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class SentRecord:
    """One message's fate: ``accepted`` when DATA got a 2xx; ``reply`` is the server's last reply
    (``250 2.0.0 Ok: queued as …``, ``451 4.7.1 …``) or the client-side error."""

    index: int
    message_id: str
    sha256: str
    size: int
    accepted: bool
    reply: str
    sent_at: datetime  # wall clock, for relating a message to a cutover moment
    attempts: int = 1


@dataclass
class TrafficCheck:
    """What a mailbox holds of the traffic's accepted messages (other messages are ignored)."""

    expected: int
    found: int
    lost: list[str] = field(default_factory=list)  # accepted Message-IDs not in the mailbox
    duplicates: dict[str, int] = field(default_factory=dict)  # Message-ID → copies (> 1)
    altered: list[str] = field(default_factory=list)  # present, but bytes differ from what was sent

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.altered)


def compose_live(spec: TrafficSpec, recipient: str) -> list[LiveMessage]:
    """The spec's messages to ``recipient``, in sending order; pure and deterministic.

    They come from the fixture generator's ``ContentMaker`` (same people, languages, encodings,
    attachments) without its Received chain: the simulator's SMTP server adds the only hop.
    """
    maker = ContentMaker(spec.seed, recipient)
    out = []
    for index in range(spec.messages):
        sent = LIVE_EPOCH + timedelta(minutes=index)
        draft, _internaldate, contact = maker.incoming(
            sent, with_html=maker.rng.random() < 0.5, with_attachments=maker.rng.random() < spec.attachments
        )
        draft.received, draft.envelope_to = [], None
        out.append(LiveMessage(index, contact.person.address, draft.message_id or "", render(draft)))
    return out


class LiveTraffic:
    """Sends ``compose_live(spec, recipient)`` to an SMTP server, one connection per message (as
    independent senders do), in a daemon thread. ``start()`` / ``stop()`` / ``join()``."""

    def __init__(
        self,
        smtp_handle: ServerHandle,
        recipient: str,
        spec: TrafficSpec,
        *,
        cafile: Path | None = None,
        credentials: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ):
        self.handle = smtp_handle
        self.recipient = recipient
        self.spec = spec
        self.messages = compose_live(spec, recipient)
        self._cafile = cafile
        self._credentials = credentials
        self._timeout = timeout
        self._records: list[SentRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LiveTraffic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LiveTraffic:
        if self._thread is not None:
            raise RuntimeError("LiveTraffic already started")
        self._thread = threading.Thread(target=self._run, name="quirkmail-live-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Send no further message (one in flight finishes) and wait for the thread."""
        self._stopping.set()
        self.join()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every message was sent (or stop()); True when the thread has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def records(self) -> list[SentRecord]:
        with self._lock:
            return list(self._records)

    @property
    def accepted(self) -> list[SentRecord]:
        return [r for r in self.records if r.accepted]

    def check(self, raws: Iterable[bytes]) -> TrafficCheck:
        """Judge a mailbox's messages (raw bytes, as IMAP FETCH BODY[] or the store gives them)."""
        sent = {r.message_id: r.sha256 for r in self.accepted}
        copies: dict[str, int] = {}
        altered: list[str] = []
        for raw in raws:
            message_id = message_id_of(raw)
            if message_id not in sent:
                continue
            copies[message_id] = copies.get(message_id, 0) + 1
            if hashlib.sha256(strip_received(raw)).hexdigest() != sent[message_id]:
                altered.append(message_id)
        return TrafficCheck(
            expected=len(sent),
            found=sum(copies.values()),
            lost=[m for m in sent if m not in copies],
            duplicates={m: n for m, n in copies.items() if n > 1},
            altered=altered,
        )

    # The sending thread -----------------------------------------------------------------------

    def _run(self) -> None:
        for message in self.messages:
            if message.index and self._stopping.wait(self.spec.interval):
                break
            if self._stopping.is_set():
                break
            record = self._send_with_retries(message)
            with self._lock:
                self._records.append(record)

    def _send_with_retries(self, message: LiveMessage) -> SentRecord:
        record = self._send(message)
        attempts = 1
        while not record.accepted and attempts <= self.spec.retries and _temporary(record.reply):
            if self._stopping.wait(self.spec.retry_delay):
                break
            record = self._send(message)
            attempts += 1
        return replace(record, attempts=attempts)

    def _send(self, message: LiveMessage) -> SentRecord:
        def record(accepted: bool, reply: str) -> SentRecord:
            return SentRecord(message.index, message.message_id, message.sha256, len(message.raw), accepted, reply,
                              datetime.now(timezone.utc))

        try:
            with smtplib.SMTP(self.handle.host, self.handle.port, timeout=self._timeout) as client:
                client.ehlo()
                if self.spec.starttls:
                    client.starttls(context=ssl.create_default_context(cafile=self._cafile))
                    client.ehlo()
                if self._credentials is not None:
                    client.login(*self._credentials)
                options = [f"SIZE={len(message.raw)}"] if client.has_extn("size") else []
                for step in (lambda: client.mail(message.sender, options),
                             lambda: client.rcpt(self.recipient),
                             lambda: client.data(message.raw)):
                    code, text = step()
                    reply = f"{code} {text.decode('utf-8', 'replace')}"
                    if not 200 <= code < 300:
                        return record(False, reply)
                return record(True, reply)
        except (OSError, smtplib.SMTPException) as exc:
            return record(False, f"{type(exc).__name__}: {exc}")


def _temporary(reply: str) -> bool:
    """A 4xx reply, or a client-side error (no reply code): worth another attempt."""
    return reply.startswith("4") or not reply[:1].isdigit()


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID of a message's header (the first one), or None."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    m = _MESSAGE_ID.search(head)
    return m.group(1).decode("ascii", "replace") if m else None
