"""The EWS and PIM worlds of a scenario: an EWS source, a PIM destination, the EWS engine run.

- ``build_ews_side``: a simulator store (mail + contacts/events/tasks/notes) served by the EWS
  front (``SimulatorWorld.start_ews``); its mail truth is the store, like any simulated source.
- ``build_pim_side``: where contacts, calendars, tasks and notes go — a fresh user of one
  Radicale shared by the process (started on first use, like the runner's Dovecot), or an empty
  EWS-like simulator mailbox. ``PimSide.records()`` reads what it holds as parsed objects.
- ``run_ews_engine``: ``migrate_ews`` with the PIM destination and a ``sleep`` that really sleeps
  but records each wait, so a scenario can check that the engine obeyed BackOffMilliseconds.
- ``check_collab_scenario``: the source's PIM items (where and as what they should land) against
  the PIM destination (``verify_pim``), and ``expect.collab`` checked (``expectations_collab``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from migrator.errors import MigratorError
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.expectations import RunRecord
from scenarios.expectations_collab import check_collab
from scenarios.model import Scenario, ServerSpec
from scenarios.model_collab import PimDestinationSpec
from scenarios.pim_compare import PimRecord, read_dav, read_store
from scenarios.runner import Side, _new_user, _profile, _since
from scenarios.snapshot import MailboxSnapshot, snapshot_account
from scenarios.verify_pim import PimVerifyReport, by_content, check, count_cases, expected_records
from simulators.ews.folders import ensure_distinguished
from simulators.fixtures import populate


@dataclass
class EwsSide(Side):
    """An EWS source: the runner's ``Side`` plus the store account and profile behind it."""

    account: Any = None
    profile: Any = None


@dataclass
class PimSide:
    """A started PIM destination; ``radicale``/``user`` or ``account`` let tests reach into it."""

    endpoint: Endpoint
    dav: bool  # CardDAV/CalDAV (collections by name) or an EWS-like mailbox (folders by path)
    records: Callable[[], list[PimRecord]]
    radicale: Any = None
    user: str = ""
    account: Any = None


def build_ews_side(spec: ServerSpec, account, base_dir: Path, stack: ExitStack) -> EwsSide:
    from simulators.launcher import SimulatorWorld

    profile = _profile(spec, base_dir)
    if spec.fixture is not None:
        populate(account, spec.fixture, profile, base_dir=base_dir)
    # An Exchange mailbox always has its well-known folders; the EWS front would create the
    # missing ones at the first request, which the verifier would take for a changed source.
    ensure_distinguished(account, profile)
    world = stack.enter_context(SimulatorWorld(account._store, profile))
    handle = world.start_ews()
    user = account.username
    # Served over http today; should the front use TLS, the world's CA is what verifies it.
    endpoint = Endpoint(ServerURL.parse(handle.url(user)), Secret(account.password), cafile=world.cafile)
    return EwsSide(
        endpoint,
        lambda: one_verb(snapshot_account(account, label=handle.url(user))),
        lambda fixture: populate(account, fixture, profile, base_dir=base_dir),
        account=account,
        profile=profile,
    )


def one_verb(snapshot: MailboxSnapshot) -> MailboxSnapshot:
    """The mail as EWS can show it: Exchange keeps one "last verb executed" (PR_LAST_VERB_EXECUTED)
    per message, so a message both answered and forwarded shows as forwarded only."""
    for folder in snapshot.folders.values():
        folder.messages = [
            m.model_copy(update={"flags": m.flags - {"\\Answered"}}) if {"\\Answered", "$Forwarded"} <= m.flags else m
            for m in folder.messages
        ]
    return snapshot


def pim_unavailable(spec: PimDestinationSpec) -> str | None:
    """Why the PIM destination cannot run here (for a skipped result), or None."""
    if spec.server == "radicale":
        from scenarios.peers.radicale import availability

        reason = availability()
        return f"needs Radicale: {reason}" if reason else None
    return None


def build_pim_side(spec: PimDestinationSpec, stack: ExitStack) -> PimSide:
    user, password = _new_user("pim")
    if spec.server == "radicale":
        radicale = shared_radicale()
        radicale.add_user(user, password)
        url = radicale.url(user)
        return PimSide(Endpoint(ServerURL.parse(url), Secret(password)), True,
                       lambda: read_dav(url, password), radicale=radicale, user=user)
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile
    from simulators.store import Store

    account = Store().add_account(user, password)
    world = stack.enter_context(SimulatorWorld(account._store, load_profile(spec.profile)))
    handle = world.start_ews()
    return PimSide(Endpoint(ServerURL.parse(handle.url(user)), Secret(password), cafile=world.cafile), False,
                   lambda: by_content(read_store(account)), account=account)


def shared_radicale():
    """The process's Radicale, started on first use; users are per scenario, so it is never reset."""
    from scenarios.peers.process import shared
    from scenarios.peers.radicale import RadicaleServer

    return shared(RadicaleServer)


def run_ews_engine(n: int, source: Side, dest: Side, options: Any) -> RunRecord:
    """One run of our EWS flow; every wait it asks for is slept and recorded in the record."""
    from migrator.collab.flow import migrate_ews

    waits: list[float] = []
    wait_at: list[float] = []

    def sleep(seconds: float) -> None:
        wait_at.append(_since(started))
        waits.append(round(seconds, 3))
        time.sleep(seconds)

    pim = getattr(dest, "pim", None)
    started = time.monotonic()
    try:
        report = migrate_ews(source.endpoint, dest.endpoint, options,
                             pim_dest=pim.endpoint if pim else None, sleep=sleep)
    except MigratorError as exc:
        return RunRecord(run=n, exit_code=int(exc.exit_code), seconds=_since(started),
                         error=f"{type(exc).__name__}: {exc}", waits=waits, wait_at=wait_at)
    return RunRecord(run=n, exit_code=int(report.exit_code), seconds=_since(started), copied=report.copied,
                     report=report.model_dump(mode="json"), waits=waits, wait_at=wait_at)


def check_collab_scenario(scenario: Scenario, result, source: Side, dest: Side, options: Any) -> list[str]:
    """``expect.collab``'s failure sentences; the PIM comparison is kept in ``result.pim``."""
    pim = verify_collab(scenario, source, dest, options)
    result.pim = pim.model_dump() if pim is not None else None
    return check_collab(scenario.expect.collab, result.runs, pim)


def verify_collab(scenario: Scenario, source: Side, dest: Side, options: Any) -> PimVerifyReport | None:
    """The PIM comparison the scenario asks for (``expect.collab.pim``), else None."""
    collab = scenario.expect.collab
    pim = getattr(dest, "pim", None)
    if collab is None or collab.pim is None or pim is None or not isinstance(source, EwsSide):
        return None
    expected = expected_records(source.account, source.profile, options, dav=pim.dav)
    return check(expected, pim.records(), collab.pim, count_cases(source.account))
