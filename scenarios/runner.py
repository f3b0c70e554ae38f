"""Run one scenario: build both worlds, migrate (our engine or a command), verify, check.

    result = run_scenario(load_scenario("scenarios/library/imap/plain.yaml"))
    result.passed, result.failures      # failures are sentences, one per broken expectation

A simulator side is a fresh ``Store`` filled by ``simulators.fixtures.populate`` and served by a
``SimulatorWorld`` on 127.0.0.1 port 0; a Dovecot side is a fresh user of one ``DovecotServer``
shared by the whole process (started on first use, stopped at exit), which keeps a library run
fast. The source's truth for the verifier is its store when simulated (unaffected by the quirks
its front plays) and an IMAP read when it is Dovecot; the destination is always read over IMAP.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from migrator.errors import MigratorError
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.credentials import engine_endpoint
from scenarios.expectations import AccountCheck, RunRecord, check
from scenarios.pop3_expect import check_live, check_pop3
from scenarios.model import Scenario, ScenarioError, ServerSpec
from scenarios.snapshot import MailboxSnapshot, snapshot_account, snapshot_imap
from scenarios.verify import VerifyReport, VerifyScope, compare
from simulators.fixtures import FixtureSpec, populate

OUTPUT_TAIL = 2000  # characters of an external command's output kept in the result
LOGIN_WAIT = 5.0  # seconds for a new Dovecot user to become usable (it re-reads the users file)


class ScenarioResult(BaseModel):
    name: str
    area: str
    file: str
    passed: bool
    skipped: str | None = None  # why it did not run (a peer is missing)
    error: str | None = None  # it could not run: a bad scenario file, or a crash (not a failed expectation)
    failures: list[str] = []
    runs: list[RunRecord] = []
    verify: VerifyReport | None = None
    # The source after the migration against the source before it: a migration must not change it.
    source_check: VerifyReport | None = None
    pim: dict[str, Any] | None = None  # the PIM comparison (scenarios.verify_pim) when expect.collab.pim asks
    source_counts: dict[str, int] = {}  # source messages per folder after the last run
    live: dict[str, Any] | None = None  # migration.live_traffic's fate (scenarios.live.LiveRun.outcome)
    seconds: float = 0.0
    known_gap: str | None = None  # the scenario's known_gap, when it failed as that gap says
    # Protocol transcript files of the engine's sessions (``run --record``), in connect order;
    # relative to report.json's folder when written by ``quirkmail run``. report.html links them.
    transcripts: list[str] = []
    # A batch scenario (batch:): each account's verdict, and the batch's caps and recorded peaks.
    accounts: list[AccountCheck] = []
    batch: dict[str, Any] | None = None


def run_scenario(scenario: Scenario, *, after_migration: Callable[[Side, Side], None] | None = None,
                 record_dir: Path | None = None) -> ScenarioResult:
    """Run it; a broken expectation is a failure sentence, a broken scenario a ``ScenarioError``.

    ``after_migration(source, dest)`` runs between the last migration run and verification: the
    seam through which tests damage a destination to prove the scenario can fail.
    ``record_dir``: record every engine session of every run there (emptied first); the files
    are listed in ``result.transcripts``. External commands' sessions are not recorded.
    """
    started = time.monotonic()
    result = ScenarioResult(
        name=scenario.name, area=scenario.area, file=str(scenario.file or ""), passed=False
    )
    options = engine_options(scenario)  # before any server starts: a typo fails fast
    if scenario.needs_dovecot:
        from scenarios.peers.dovecot import DovecotServer

        reason = DovecotServer.availability()
        if reason:
            result.skipped = f"needs Dovecot: {reason}"
            return result
    if scenario.source.server == "replay":
        from scenarios.replay_scenario import run_replay_scenario

        return run_replay_scenario(scenario, options, result, started, after_migration, record_dir=record_dir)
    if scenario.batch is not None:
        from scenarios.batch_scenario import run_batch_scenario

        return run_batch_scenario(scenario, options, result, started, after_migration)
    if scenario.pim_destination is not None:
        from scenarios.sides_ews import pim_unavailable

        result.skipped = pim_unavailable(scenario.pim_destination)
        if result.skipped:
            return result
    with tempfile.TemporaryDirectory(prefix="quirkmail-scenario-") as tmp, ExitStack() as stack:
        base = scenario.file.parent if scenario.file else Path.cwd()
        source = build_side(scenario.source, "source", base, stack)
        dest = build_side(scenario.destination, "dest", base, stack)
        if scenario.pim_destination is not None:
            from scenarios.sides_ews import build_pim_side

            dest.pim = build_pim_side(scenario.pim_destination, stack)
        unchanged = VerifyScope(map_special_use=False)
        live = _start_live(scenario, source)
        befores: list[MailboxSnapshot] = []
        recorder = None
        for n in range(1, scenario.migration.runs + 1):
            if n > 1 and live is not None:
                live.finish()  # the delta run after cut-over sees all of the live mail
            if n > 1 and scenario.migration.new_mail_between_runs is not None:
                source.deliver(scenario.migration.new_mail_between_runs)
            before = source.truth()
            befores.append(before)
            run_options = source.prepare(options, before) if source.prepare else options
            if scenario.migration.command is not None:
                if recorder is None and record_dir is not None:  # no engine sessions: the simulators' side
                    recorder = open_recorder(record_dir)
                    record_servers(source, dest, recorder)
                result.runs.append(run_command(scenario, n, source, dest))
            else:
                recorder = recorder or open_recorder(record_dir)
                engine_source, engine_dest = recorded_sides(source, dest, recorder)
                result.runs.append(run_engine(n, engine_source, engine_dest, run_options, Path(tmp) / "state.sqlite3"))
            after = source.truth()
            seen = (live.without(before), live.without(after)) if live else (before, after)
            changes = compare(*seen, unchanged)
            if result.source_check is None or result.source_check.exact:
                result.source_check = changes  # keep the first run that changed the source
        if live is not None:
            live.finish()
        if recorder is not None:
            recorder.close()
            result.transcripts = [str(p) for p in recorder.paths]
        result.source_counts = {key: len(f.messages) for key, f in after.folders.items()}
        if after_migration is not None:
            after_migration(source, dest)
        collab: list[str] = []
        if scenario.expect.collab is not None:
            from scenarios.sides_ews import check_collab_scenario

            collab = check_collab_scenario(scenario, result, source, dest, options)
        scope = VerifyScope.from_options(options) if options is not None else VerifyScope()
        expected = source.expected(befores, options) if source.expected else before
        dest_view = dest.view() if dest.view else snapshot_imap(dest.endpoint, permanent_flags=True)
        result.verify = compare(expected, dest_view, scope)
        result.live = live.outcome(dest_view) if live is not None else None
    result.failures = check(scenario, result.runs, result.verify, result.source_check)
    result.failures += collab
    result.failures += check_pop3(scenario.expect.pop3, result.runs, result.source_counts, result.verify)
    result.failures += check_live(scenario.expect.live, result.live)
    result.passed = not result.failures
    result.seconds = round(time.monotonic() - started, 3)
    return result


def engine_options(scenario: Scenario) -> Any:
    """``migration.options`` as the engine's ``MigrationOptions`` (None for an external command)."""
    if scenario.migration.command is not None:
        return None
    from migrator.engine import MigrationOptions

    unknown = sorted(set(scenario.migration.options) - set(MigrationOptions.model_fields))
    if unknown:  # the engine's model ignores unknown keys; a typo here must not pass silently
        raise ScenarioError(
            scenario.file or "<scenario>",
            f"migration.options.{unknown[0]}",
            f"unknown option (known: {', '.join(MigrationOptions.model_fields)})",
        )
    try:
        return MigrationOptions(**scenario.migration.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(["migration", "options", *(str(p) for p in first["loc"])])
        raise ScenarioError(scenario.file or "<scenario>", field, first["msg"]) from None


# Worlds -----------------------------------------------------------------------------------------


@dataclass
class Side:
    """One started mailbox: how to reach it and how to read its truth."""

    endpoint: Endpoint
    truth: Callable[[], MailboxSnapshot]
    deliver: Callable[[FixtureSpec], None]  # new mail arriving (the cut-over delta)
    pim: Any = None  # a PIM destination beside this mail destination (scenarios.sides_ews.PimSide)
    # Protocol sides (scenarios.sides_pop3) say more; None = the IMAP behaviour.
    view: Callable[[], MailboxSnapshot] | None = None  # what the verifier reads (default: IMAP)
    # A source: what the destination must hold, from its snapshots before each run + the options.
    expected: Callable[[list[MailboxSnapshot], Any], MailboxSnapshot] | None = None
    prepare: Callable[[Any, MailboxSnapshot], Any] | None = None  # engine options for one run
    smtp: Callable[[], tuple[Any, Path]] | None = None  # start its SMTP front: (handle, cafile)
    # A simulator: record its side of new connections (a LabelledRecorder), for external commands.
    record_server: Callable[[Any], None] | None = None

    @property
    def password(self) -> str:
        return self.endpoint.password.reveal()

    @property
    def host(self) -> str:
        return self.endpoint.url.host

    @property
    def port(self) -> int:
        return self.endpoint.url.port

    @property
    def user(self) -> str:
        return self.endpoint.url.user


_user_numbers = itertools.count(1)


def _new_user(role: str) -> tuple[str, str]:
    # Unique per process and across xdist workers sharing nothing but the machine.
    return f"{role}{os.getpid()}x{next(_user_numbers)}", uuid.uuid4().hex


def build_side(spec: ServerSpec, role: str, base_dir: Path, stack: ExitStack) -> Side:
    from simulators.store import Store

    if spec.protocol in ("pop3", "lmtp", "smtp"):
        from scenarios.sides_pop3 import build_protocol_side

        return build_protocol_side(spec, role, base_dir, stack)
    user, password = _new_user(role)
    if spec.server == "simulator":
        user = spec.user  # its own store: no clash, and the fixture's addresses follow the name
    store = Store()
    account = store.add_account(user, password)
    if spec.server == "dovecot":
        dovecot = shared_dovecot()
        add_dovecot_user(dovecot, user, password)
        deliver = dovecot_deliverer(dovecot, user, password, base_dir)
        if spec.fixture is not None:
            deliver(spec.fixture)
        endpoint = Endpoint(ServerURL.parse(dovecot.url(user)), Secret(password))
        return Side(endpoint, lambda: snapshot_imap(endpoint), deliver)
    if spec.protocol == "ews":
        from scenarios.sides_ews import build_ews_side

        return build_ews_side(spec, account, base_dir, stack)
    from simulators.launcher import SimulatorWorld

    profile = _profile(spec, base_dir)
    if spec.fixture is not None:
        populate(account, spec.fixture, profile, base_dir=base_dir)
    else:
        _create_special_folders(account, profile)
    world = stack.enter_context(SimulatorWorld(store, profile))
    handle = world.start_imap()
    endpoint = engine_endpoint(spec, handle.url(user), password, world, stack)
    return Side(
        endpoint,
        lambda: snapshot_account(account, label=handle.url(user), delimiter=_delimiter(profile)),
        lambda fixture: populate(account, fixture, profile, base_dir=base_dir),  # the store is live
        smtp=lambda: (world.start_smtp(), world.cafile),  # live traffic into the source
        record_server=world.record,
    )


def _start_live(scenario: Scenario, source: Side):
    if scenario.migration.live_traffic is None:
        return None
    from scenarios.live import LiveRun

    return LiveRun(scenario.migration.live_traffic, source).start()


def dovecot_deliverer(dovecot, user: str, password: str, base_dir: Path) -> Callable[[FixtureSpec], None]:
    """New mail for a Dovecot user: generated into a scratch account of the same name, then APPENDed."""
    from simulators.profiles import load_profile
    from simulators.store import Store

    def deliver(fixture: FixtureSpec) -> None:
        scratch = Store().add_account(user, password)
        populate(scratch, fixture, load_profile("generic"), base_dir=base_dir)
        dovecot.load_account(scratch)

    return deliver


def _profile(spec: ServerSpec, base_dir: Path):
    from simulators.profiles import load_profile

    name = spec.profile
    if name.endswith((".yaml", ".yml")):  # a profile file next to the scenario
        name = str(base_dir / name)
    profile = load_profile(name)
    profile = profile.with_faults(spec.faults) if spec.faults else profile
    return profile.with_quirks(spec.quirks) if spec.quirks else profile


def _delimiter(profile) -> str:
    """The hierarchy delimiter the profile's IMAP front shows (a quirk may change it)."""
    from simulators.imap.names import names_for
    from simulators.quirks import build_all

    return names_for(profile.imap, build_all(profile.quirks, "imap")).delimiter


def _create_special_folders(account, profile) -> None:
    """An empty provider mailbox still has its special folders (Exchange's Sent Items ...)."""
    from simulators.profiles import SPECIAL_USE

    for key, parts in profile.special_folders.items():
        if key in SPECIAL_USE:  # not the non-mail keys (calendar, contacts ...: PIM_FOLDERS)
            account.create_folder(parts, special_use=SPECIAL_USE[key], exist_ok=True)


def add_dovecot_user(dovecot, user: str, password: str) -> None:
    """Add a user and wait until it can log in.

    Dovecot notices a rewritten users file only when its mtime has moved on to a new second, so a
    user added in the same second as the previous one is refused for up to a second.
    """
    import imapclient

    dovecot.add_user(user, password)
    deadline = time.monotonic() + LOGIN_WAIT
    while True:
        try:
            with imapclient.IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as c:
                c.login(user, password)
                return
        except imapclient.exceptions.LoginError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# One Dovecot per process ------------------------------------------------------------------------

def shared_dovecot():
    """The process's Dovecot, started on first use; users are per scenario, so it is never reset."""
    from scenarios.peers.dovecot import DovecotServer
    from scenarios.peers.process import shared

    return shared(DovecotServer)


# Migration runs ---------------------------------------------------------------------------------


def open_recorder(record_dir: Path | None):
    if record_dir is None:
        return None
    from transcripts.tap import Recorder

    shutil.rmtree(record_dir, ignore_errors=True)  # an earlier run's sessions must not mix in
    return Recorder(record_dir)


def record_servers(source: Side, dest: Side, recorder) -> None:
    """Simulator sides record the connections an external command makes to them."""
    for side, label in ((source, "source-server"), (dest, "destination-server")):
        if side.record_server is not None:
            side.record_server(recorder.labelled(label))


def recorded_sides(source: Side, dest: Side, recorder) -> tuple[Side, Side]:
    """The sides as the engine gets them: each endpoint recording under its label."""
    if recorder is None:
        return source, dest
    from migrator.recording import recorded

    pim = dest.pim
    if pim is not None:
        pim = replace(pim, endpoint=recorded(pim.endpoint, recorder, "pim"))
    return (replace(source, endpoint=recorded(source.endpoint, recorder, "source")),
            replace(dest, endpoint=recorded(dest.endpoint, recorder, "destination"), pim=pim))


def run_engine(n: int, source: Side, dest: Side, options: Any, state_path: Path) -> RunRecord:
    from migrator.engine import migrate

    if options.state_path is None:
        # Never the user's own ~/.local/state: each scenario starts with a clean checkpoint.
        options = options.model_copy(update={"state_path": state_path})
    if source.endpoint.url.scheme in ("ews", "ews+http"):
        from scenarios.sides_ews import run_ews_engine

        return run_ews_engine(n, source, dest, options)
    started = time.monotonic()
    try:
        report = migrate(source.endpoint, dest.endpoint, options)
    except MigratorError as exc:
        return RunRecord(
            run=n, exit_code=int(exc.exit_code), seconds=_since(started), error=f"{type(exc).__name__}: {exc}"
        )
    return RunRecord(
        run=n,
        exit_code=int(report.exit_code),
        seconds=_since(started),
        copied=report.copied,
        report=report.model_dump(mode="json"),
    )


def command_argv(scenario: Scenario, source: Side, dest: Side) -> list[str]:
    command = scenario.migration.command or []
    values: dict[str, Any] = {
        "source_host": source.host,
        "source_port": source.port,
        "source_user": source.user,
        "source_password": source.password,
        "dest_host": dest.host,
        "dest_port": dest.port,
        "dest_user": dest.user,
        "dest_password": dest.password,
    }
    if any("{dovecot_config}" in arg for arg in command):
        values["dovecot_config"] = shared_dovecot().config_path  # the reference engine's config
    return [arg.format(**values) for arg in command]


def run_command(scenario: Scenario, n: int, source: Side, dest: Side) -> RunRecord:
    argv = command_argv(scenario, source, dest)
    secrets = [source.password, dest.password]
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=scenario.migration.timeout)
    except FileNotFoundError:
        return RunRecord(run=n, exit_code=127, seconds=_since(started), error=f"command not found: {argv[0]}")
    except subprocess.TimeoutExpired:
        return RunRecord(
            run=n, exit_code=124, seconds=_since(started),
            error=f"command timed out after {scenario.migration.timeout:.0f} s",
        )
    output = (done.stdout + done.stderr)[-OUTPUT_TAIL:]
    for secret in secrets:  # a tool may echo its arguments; never keep a password
        output = output.replace(secret, "***")
    return RunRecord(run=n, exit_code=done.returncode, seconds=_since(started), error=output.strip())


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
