"""pytest plugin for testing any migration tool against quirkmail's simulators.

Registered as the ``pytest11`` entry point ``quirkmail`` (or load it with ``-p scenarios.pytest_fixtures``
where that is not installed: one or the other, pytest refuses a module registered under two names).
Not to be confused with ``scenarios.plugin``, which collects scenario YAML files for ``quirkmail run``.

    @pytest.mark.quirkmail(profile="gmail", fixture={"seed": 3, "messages": 20, "folders": 3})
    def test_my_tool(imap_server, mail_servers, tmp_path):
        dest = mail_servers.imap(profile="generic")
        migrate(imap_server.endpoint, dest.endpoint, MigrationOptions(state_path=tmp_path / "state"))
        verify_migration(imap_server, dest).assert_identical()

(``migrate``/``MigrationOptions`` from ``migrator.engine``; run your own tool instead with
``imap_server.host``, ``.port``, ``.user``, ``.password``, ``.cafile``.)

Fixtures (function scope; 127.0.0.1, port 0; stopped at teardown), all configured by the test's
``@pytest.mark.quirkmail(profile=..., quirks=[...], faults=[...], fixture={...}, user=...)``:

- ``imap_server``, ``pop3_server``, ``smtp_server``, ``ews_server``: one front each
  (``scenarios.mailworld.MailServer``: host, port, user, password, url, endpoint, cafile, store,
  account). Asked for together, they serve the same mailbox.
- ``mail_world``: every front the profile supports (``MailWorld``: .imap/.pop3/.smtp/.ews, store,
  .world = the ``SimulatorWorld``), on that same mailbox.
- ``mail_servers``: more worlds in the same test, configured by arguments (a destination).

``verify_migration(source, destination)`` compares the two mailboxes (``scenarios.verify``) and
returns a ``MigrationCheck`` whose ``assert_*`` methods fail with the verifier's summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

# As a pytest11 plugin this module loads at the start of every pytest run where quirkmail is
# installed; the simulators and the verifier (about a second of imports) load when a fixture or
# verify_migration is first used.
if TYPE_CHECKING:
    from migrator.urls import Endpoint
    from scenarios.mailworld import MailServer, MailWorld, WorldConfig
    from scenarios.snapshot import MailboxSnapshot
    from scenarios.verify import VerifyReport

MARKER = "quirkmail"
MARKER_HELP = (
    "quirkmail(profile='generic', quirks=['name:key=value'], faults=[...], fixture={'seed': 1, 'messages': 20}, "
    "user='alice'): the simulator world of the quirkmail fixtures (imap_server, pop3_server, smtp_server, "
    "ews_server, mail_world)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


# Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def quirkmail_config(request: pytest.FixtureRequest) -> WorldConfig:
    """The test's ``@pytest.mark.quirkmail`` as a checked WorldConfig (defaults without the marker)."""
    marker = request.node.get_closest_marker(MARKER)
    kwargs = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        pytest.fail(f"@pytest.mark.{MARKER} takes keywords only, got {marker.args!r}", pytrace=False)
    return _config(**kwargs)


@pytest.fixture
def _quirkmail_world(quirkmail_config: WorldConfig) -> Iterator[MailWorld]:
    from scenarios.mailworld import open_world

    with open_world(quirkmail_config) as world:
        yield world


@pytest.fixture
def mail_world(_quirkmail_world: MailWorld) -> MailWorld:
    from scenarios.mailworld import supported_fronts

    for protocol in supported_fronts(_quirkmail_world.config.profile):
        _quirkmail_world.start(protocol)
    return _quirkmail_world


def _front_fixture(protocol: str):
    """The fixture ``<protocol>_server``: that front of the test's world, started on first use."""

    @pytest.fixture(name=f"{protocol}_server")
    def server(_quirkmail_world: MailWorld) -> MailServer:
        return _quirkmail_world.start(protocol)

    server.__doc__ = f"The {protocol.upper()} front of the test's quirkmail world (MailServer)."
    return server


imap_server = _front_fixture("imap")
pop3_server = _front_fixture("pop3")
smtp_server = _front_fixture("smtp")
ews_server = _front_fixture("ews")


class MailServers:
    """Worlds of their own within one test, e.g. a destination beside the marker's source."""

    def __init__(self, stack: ExitStack):
        self._stack = stack

    def world(self, fronts: tuple[str, ...] | None = None, **kwargs: Any) -> MailWorld:
        """A world configured like the marker (keywords); ``fronts`` default: all the profile supports."""
        from scenarios.mailworld import open_world, supported_fronts

        config = _config(**kwargs)
        return self._stack.enter_context(open_world(config, fronts or supported_fronts(config.profile)))

    def imap(self, **kwargs: Any) -> MailServer:
        return self.world(("imap",), **kwargs).imap

    def pop3(self, **kwargs: Any) -> MailServer:
        return self.world(("pop3",), **kwargs).pop3

    def smtp(self, **kwargs: Any) -> MailServer:
        return self.world(("smtp",), **kwargs).smtp

    def ews(self, **kwargs: Any) -> MailServer:
        return self.world(("ews",), **kwargs).ews


@pytest.fixture
def mail_servers() -> Iterator[MailServers]:
    with ExitStack() as stack:
        yield MailServers(stack)


def _config(**kwargs: Any) -> WorldConfig:
    from scenarios.mailworld import WorldConfig, WorldConfigError

    try:
        return WorldConfig.from_kwargs(**kwargs)
    except (TypeError, WorldConfigError) as exc:  # TypeError: an unknown keyword
        problem = str(exc)
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)  # outside except: no chained traceback


# Verification -----------------------------------------------------------------------------------


class MigrationCheck:
    """A ``VerifyReport`` (every attribute passes through) with assertions that explain themselves."""

    def __init__(self, report: VerifyReport):
        self.report = report

    def __getattr__(self, name: str) -> Any:
        return getattr(self.report, name)

    def __str__(self) -> str:
        return self.report.summary()

    def assert_identical(self) -> None:
        """Every source message once at the destination, same bytes, flags and INTERNALDATE."""
        if not self.report.identical:
            raise AssertionError(self.report.summary())

    def assert_exact(self) -> None:
        """Identical, and nothing else at the destination (no unexpected messages or folders)."""
        if not self.report.exact:
            raise AssertionError(self.report.summary())

    def assert_none(self, *problems: str) -> None:
        """None of these problems (``missing``, ``duplicated``, ``unexpected``, ``date_mismatches``,
        ``flag_mismatches``, ``byte_mismatches``), e.g. after a tool known to drop flags."""
        found = {p: self.report.total(p) for p in problems if self.report.total(p)}
        if found:
            counts = ", ".join(f"{p} {n}" for p, n in found.items())
            raise AssertionError(f"{counts}\n{self.report.summary()}")


def verify_migration(
    source: MailServer | Endpoint, destination: MailServer | Endpoint, *, options: Any = None
) -> MigrationCheck:
    """Compare a migration's source and destination (``options``: the engine's MigrationOptions or
    anything with target_root/include/exclude/map_special_use, for where folders should land).

    A simulated source is read from its store (its quirks cannot get in the way); a destination
    over IMAP, as any client would see it.
    """
    from scenarios.verify import VerifyScope, compare

    scope = VerifyScope.from_options(options) if options is not None else VerifyScope()
    return MigrationCheck(compare(_source_view(source), _dest_view(destination), scope))


def _source_view(side: MailServer | Endpoint) -> MailboxSnapshot:
    from scenarios.mailworld import MailServer
    from scenarios.snapshot import snapshot_imap

    return side.truth() if isinstance(side, MailServer) else snapshot_imap(side)


def _dest_view(side: MailServer | Endpoint) -> MailboxSnapshot:
    from scenarios.mailworld import MailServer
    from scenarios.snapshot import snapshot_imap

    if isinstance(side, MailServer) and side.protocol != "imap":
        raise ValueError(f"verify_migration reads a destination over IMAP; {side.url} is {side.protocol.upper()}")
    endpoint = side.endpoint if isinstance(side, MailServer) else side
    return snapshot_imap(endpoint, permanent_flags=True)
