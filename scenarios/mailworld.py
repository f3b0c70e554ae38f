"""Simulator worlds for other people's tests: a config (profile, quirks, faults, fixture) in, started
servers with everything a client needs out. ``scenarios.pytest_fixtures`` turns this into fixtures.

    config = WorldConfig.from_kwargs(profile="m365", quirks=["m365-throttled-backoff:after=5"])
    with open_world(config, fronts=("imap",)) as world:
        world.imap.host, world.imap.port, world.imap.password, world.imap.endpoint

The config is checked whole before anything starts (``WorldConfigError`` names the bad profile,
quirk, fault or fixture field), so a typo fails the test's set-up, not its first connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from migrator.urls import Endpoint, Secret, ServerURL
# The scenario runner's rules for a simulated side, shared rather than copied.
from scenarios.runner import _create_special_folders, _delimiter
from scenarios.snapshot import MailboxSnapshot, snapshot_account
from simulators.faults import FaultPlan
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import ServerHandle, SimulatorWorld
from simulators.profiles import Profile, ProfileError, load_profile
from simulators.quirks import QuirkError, QuirkSpec, build
from simulators.store import Account, Store

FRONTS = ("imap", "pop3", "smtp", "ews")


class WorldConfigError(ValueError):
    """A world that cannot be configured as asked; the message names the bad value and why."""


@dataclass(frozen=True)
class WorldConfig:
    """What one world serves: a profile with extra quirks and faults, one account, its mail."""

    profile: Profile
    fixture: FixtureSpec | None = None  # None: an empty mailbox (with the profile's special folders)
    user: str = "alice"

    @classmethod
    def from_kwargs(
        cls,
        *,
        profile: str = "generic",
        quirks: list[str | Mapping[str, Any]] = (),
        faults: list[str | Mapping[str, Any]] = (),
        fixture: Mapping[str, Any] | FixtureSpec | None = None,
        user: str = "alice",
    ) -> WorldConfig:
        """The marker's keywords; quirks and faults as ``"name:key=value,..."`` or ``{name, params}``."""
        try:
            base = load_profile(profile)
        except ProfileError as exc:
            raise WorldConfigError(f"profile {profile!r}: {exc}") from None
        quirk_specs = [_spec("quirk", q) for q in quirks]
        fault_specs = [_spec("fault", f) for f in faults]
        for spec in quirk_specs:
            try:
                build(spec)  # an unknown name or bad parameter, said now rather than at the first connection
            except QuirkError as exc:
                raise WorldConfigError(str(exc)) from None
        try:
            FaultPlan(fault_specs, clock=None)
        except QuirkError as exc:  # FaultError is one
            raise WorldConfigError(str(exc)) from None
        try:
            spec = fixture if fixture is None or isinstance(fixture, FixtureSpec) else FixtureSpec(**fixture)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WorldConfigError(f"fixture {where}: {first['msg']}") from None
        configured = base.with_quirks(quirk_specs).with_faults(fault_specs)
        return cls(profile=configured, fixture=spec, user=user)


def _spec(kind: str, value: str | Mapping[str, Any]) -> QuirkSpec:
    try:
        return QuirkSpec.parse(value) if isinstance(value, str) else QuirkSpec(**value)
    except (QuirkError, ValidationError, TypeError) as exc:
        raise WorldConfigError(f"{kind} {value!r}: {exc}") from None


@dataclass
class MailServer:
    """One started front of a world, with what a client (or our migrator) needs to use it."""

    protocol: str  # "imap", "pop3", "smtp", "ews"
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    url: str  # e.g. "imap://alice@127.0.0.1:40123": ``python -m migrator`` takes it as is
    cafile: Path  # trusts the world's self-signed certificate (STARTTLS / implicit TLS)
    store: Store  # direct inspection: the world's store (shared by its fronts)
    account: Account
    world: SimulatorWorld

    @property
    def endpoint(self) -> Endpoint:
        """For ``migrator.engine.migrate`` and ``verify_migration``."""
        return Endpoint(ServerURL.parse(self.url), Secret(self.password), cafile=self.cafile)

    def truth(self) -> MailboxSnapshot:
        """What the store holds, unaffected by the quirks its fronts play (throttling, BYE ...)."""
        return snapshot_account(self.account, label=self.url, delimiter=_delimiter(self.world.profile))


@dataclass
class MailWorld:
    """A started world: its fronts (None when not started), store, account and certificate."""

    world: SimulatorWorld
    config: WorldConfig
    account: Account
    password: str = field(repr=False)
    servers: dict[str, MailServer] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.world.store

    @property
    def cafile(self) -> Path:
        return self.world.cafile

    @property
    def user(self) -> str:
        return self.account.username

    imap = property(lambda self: self.servers.get("imap"))
    pop3 = property(lambda self: self.servers.get("pop3"))
    smtp = property(lambda self: self.servers.get("smtp"))
    ews = property(lambda self: self.servers.get("ews"))

    def quirks(self, name: str) -> list:
        """The live quirk objects of the started IMAP/POP3 servers (``SimulatorWorld.quirks``)."""
        return self.world.quirks(name)

    def start(self, protocol: str) -> MailServer:
        """The front ``protocol`` of this world, started on a free port the first time it is asked for."""
        if protocol not in self.servers:
            starters = {
                "imap": self.world.start_imap, "pop3": self.world.start_pop3,
                "smtp": self.world.start_smtp, "ews": self.world.start_ews,
            }
            if protocol not in starters:
                raise WorldConfigError(f"no front {protocol!r} (fronts: {', '.join(FRONTS)})")
            self.servers[protocol] = self._server(starters[protocol]())
        return self.servers[protocol]

    def _server(self, handle: ServerHandle) -> MailServer:
        return MailServer(
            protocol=handle.protocol, host=handle.host, port=handle.port, user=self.user, password=self.password,
            url=handle.url(self.user), cafile=self.cafile, store=self.store, account=self.account, world=self.world,
        )


def supported_fronts(profile: Profile) -> tuple[str, ...]:
    """IMAP, POP3 and SMTP always (their blocks have defaults); EWS when the profile describes it."""
    return FRONTS if "ews" in profile.model_fields_set else ("imap", "pop3", "smtp")


@contextmanager
def open_world(config: WorldConfig, fronts: tuple[str, ...] = ()) -> Iterator[MailWorld]:
    """A fresh store and account filled from the config's fixture, served with ``fronts`` started;
    every listener and connection is closed on exit."""
    store = Store()
    password = uuid.uuid4().hex
    account = store.add_account(config.user, password)
    if config.fixture is not None:
        populate(account, config.fixture, config.profile)
    else:
        _create_special_folders(account, config.profile)
    with SimulatorWorld(store, config.profile) as world:
        mail_world = MailWorld(world=world, config=config, account=account, password=password)
        for protocol in fronts:
            mail_world.start(protocol)
        yield mail_world
