"""Scenario sides for the POP3 flow: a POP3 source, an LMTP or SMTP (delivery) destination.

    source: {server: simulator | dovecot, protocol: pop3, ...}   # the simulator's POP3 front, or Dovecot's
    destination: {server: dovecot, protocol: lmtp}               # Dovecot's LMTP, read back over its IMAP
    destination: {server: simulator, protocol: smtp, quirks: [smtp-greylist-451]}   # the SMTP front

What the destination should hold is not the source as IMAP shows it: POP3 carries the inbox only,
no flags and no INTERNALDATE. ``expected`` turns the source snapshots taken before each run into
that: the INBOX messages (every one seen before any run: mail deleted after confirm, or arrived
for the delta, is still due), in the destination folder, without flags, each dated by the
documented rule (``migrator.dates``: newest trustworthy Received, else Date — never the
migration time). A delivery destination adds trace headers (Dovecot's LMTP: Return-Path,
Delivered-To, Received; the SMTP front: its Received); its view drops exactly those, so bytes
still compare, and what delivery really loses (the date) shows as date mismatches.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import shutil
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from migrator import dates
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.credentials import WRONG_PASSWORD_SUFFIX, engine_endpoint
from scenarios.model import ScenarioError, ServerSpec
from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, snapshot_account, snapshot_imap
from simulators.fixtures import populate

INBOX = "INBOX"
_TRACE_NAMES = (b"return-path", b"delivered-to")


def strip_delivery_trace(raw: bytes) -> bytes:
    """``raw`` without the header fields an LMTP delivery put on top: Return-Path, Delivered-To
    and the delivering server's own Received (the first one, ``with LMTP``); the rest untouched."""
    rest = raw
    while True:
        end = _field_end(rest)
        field = rest[:end]
        name = field.split(b":", 1)[0].strip().lower()
        if name in _TRACE_NAMES:
            rest = rest[end:]
            continue
        if name == b"received" and re.search(rb"\swith\s+LMTP\b", field, re.IGNORECASE):
            return rest[end:]
        return rest


def _field_end(raw: bytes) -> int:
    """The end of the first header field (its continuation lines included)."""
    pos = 0
    while True:
        nl = raw.find(b"\n", pos)
        if nl < 0:
            return len(raw)
        pos = nl + 1
        if raw[pos : pos + 1] not in (b" ", b"\t"):
            return pos


def expected_at_destination(befores: list[MailboxSnapshot], instants: dict[str, Any], folder: str,
                            label: str) -> MailboxSnapshot:
    """What a POP3 run must leave in ``folder``: every source INBOX message seen before any run
    (as many copies as the fullest snapshot had), no flags, dated by ``instants`` (sha256 → the
    Received/Date instant; a message without one keeps its date, so the mismatch shows)."""
    best: dict[str, list] = {}
    for snap in befores:
        inbox = snap.folders.get(INBOX)
        if inbox is None:
            continue
        seen: dict[str, list] = {}
        for m in inbox.messages:
            seen.setdefault(m.sha256, []).append(m)
        for sha, copies in seen.items():
            if len(copies) > len(best.get(sha, [])):
                best[sha] = copies
    records = [
        m.model_copy(update={"flags": frozenset(), "internaldate": instants.get(m.sha256) or m.internaldate})
        for copies in best.values()
        for m in copies
    ]
    path = tuple(p for p in folder.split("/") if p) or (INBOX,)
    key = "/".join(path)
    return MailboxSnapshot(label=label, folders={key: FolderSnapshot(path=path, name=key, messages=records)})


class _Dates:
    """Notes the resolved instant of each INBOX message a snapshot passes (a ``Rewrite``)."""

    def __init__(self) -> None:
        self.instants: dict[str, Any] = {}

    def __call__(self, folder: str, raw: bytes) -> bytes:
        if folder == INBOX:
            sha = hashlib.sha256(raw).hexdigest()
            if sha not in self.instants:
                self.instants[sha] = dates.resolve(None, raw).instant
        return raw


def build_protocol_side(spec: ServerSpec, role: str, base_dir: Path, stack: ExitStack):
    """The ``Side`` for a pop3 source or an lmtp/smtp destination (``runner.build_side`` asks)."""
    if spec.protocol == "pop3":
        return _pop3_source(spec, base_dir, stack)
    if spec.protocol == "lmtp":
        return _lmtp_destination()
    if spec.protocol == "smtp":
        return _smtp_destination(spec, base_dir, stack)
    raise ScenarioError("<scenario>", f"{role}.protocol", f"no {spec.protocol} side here")


def _expected_fn(label: str, noted: _Dates):
    def expected(befores: list[MailboxSnapshot], options: Any) -> MailboxSnapshot:
        folder = getattr(options, "pop3_folder", INBOX) if options is not None else INBOX
        return expected_at_destination(befores, noted.instants, folder, label)

    return expected


def _prepare_run(options: Any, before: MailboxSnapshot) -> Any:
    """Tell the engine the whole mailbox, so its report can say what POP3 leaves behind, and
    have it write the source-UIDL map (``expect.pop3.uidl_map`` reads it after the scenario)."""
    if options is None:
        return None
    update: dict[str, Any] = {}
    if options.uidl_map_path is None:
        update["uidl_map_path"] = _map_dir() / f"uidl-map-{uuid.uuid4().hex}.json"
    if options.source_total_messages is None:
        update["source_total_messages"] = sum(len(f.messages) for f in before.folders.values())
    if options.source_total_folders is None:
        update["source_total_folders"] = len(before.folders)
    return options.model_copy(update=update)


_MAP_DIR: list[Path] = []


def _map_dir() -> Path:
    """One folder per process for UIDL maps: they must outlive the scenario's own temporary
    folder (the expectations are checked after it is gone); removed at exit."""
    if not _MAP_DIR:
        _MAP_DIR.append(Path(tempfile.mkdtemp(prefix="quirkmail-uidl-maps-")))
        atexit.register(shutil.rmtree, _MAP_DIR[0], True)
    return _MAP_DIR[0]


def _pop3_source(spec: ServerSpec, base_dir: Path, stack: ExitStack):
    from scenarios import runner

    user, password = runner._new_user("source")
    given = password + WRONG_PASSWORD_SUFFIX if spec.wrong_password else password
    noted = _Dates()
    if spec.server == "dovecot":
        dovecot = runner.shared_dovecot()
        runner.add_dovecot_user(dovecot, user, password)
        imap = Endpoint(ServerURL.parse(dovecot.url(user)), Secret(password))
        deliver = runner.dovecot_deliverer(dovecot, user, password, base_dir)
        if spec.fixture is not None:
            deliver(spec.fixture)
        endpoint = Endpoint(ServerURL.parse(f"pop3://{user}@{dovecot.host}:{dovecot.pop3_port}"), Secret(given))
        return runner.Side(endpoint, lambda: snapshot_imap(imap, rewrite=noted), deliver,
                           expected=_expected_fn(endpoint.url.display(), noted), prepare=_prepare_run)
    user = spec.user
    account, profile, world = _simulated(spec, password, base_dir, stack)
    handle = world.start_pop3()
    endpoint = engine_endpoint(spec, handle.url(user), password, world, stack)
    return runner.Side(
        endpoint,
        lambda: snapshot_account(account, label=handle.url(user), rewrite=noted),
        lambda fixture: populate(account, fixture, profile, base_dir=base_dir),
        expected=_expected_fn(handle.url(user), noted),
        prepare=_prepare_run,
        smtp=lambda: (world.start_smtp(), world.cafile),
    )


def _lmtp_destination():
    from scenarios import runner

    user, password = runner._new_user("dest")
    dovecot = runner.shared_dovecot()
    runner.add_dovecot_user(dovecot, user, password)
    imap = Endpoint(ServerURL.parse(dovecot.url(user)), Secret(password))
    endpoint = Endpoint(ServerURL.parse(f"lmtp://{user}@{dovecot.host}:{dovecot.lmtp_port}"), Secret(""))
    return runner.Side(
        endpoint,
        lambda: snapshot_imap(imap),
        lambda fixture: None,
        view=lambda: snapshot_imap(imap, rewrite=lambda _folder, raw: strip_delivery_trace(raw)),
    )


def _smtp_destination(spec: ServerSpec, base_dir: Path, stack: ExitStack):
    from scenarios import runner
    from simulators.smtp.delivery import strip_received

    _, password = runner._new_user("dest")
    account, profile, world = _simulated(spec, password, base_dir, stack)
    handle = world.start_smtp()
    endpoint = engine_endpoint(spec, handle.url(spec.user), password, world, stack)
    return runner.Side(
        endpoint,
        lambda: snapshot_account(account),
        lambda fixture: populate(account, fixture, profile, base_dir=base_dir),
        view=lambda: snapshot_account(account, label=handle.url(spec.user),
                                      rewrite=lambda _folder, raw: strip_received(raw)),
    )


def _simulated(spec: ServerSpec, password: str, base_dir: Path, stack: ExitStack):
    """A simulator store account with its fixture (or an empty INBOX), served by a new world."""
    from scenarios import runner
    from simulators.launcher import SimulatorWorld
    from simulators.store import Store

    store = Store()
    account = store.add_account(spec.user, password)
    profile = runner._profile(spec, base_dir)
    if spec.fixture is not None:
        populate(account, spec.fixture, profile, base_dir=base_dir)
    else:
        account.create_folder((INBOX,), exist_ok=True)
    world = stack.enter_context(SimulatorWorld(store, profile))
    return account, profile, world
