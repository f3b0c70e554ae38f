"""Run a ``batch:`` scenario: N accounts on one source server and one destination server, the
batch file written the way a support engineer writes it (CSV, secrets as ``file:`` references),
``migrator.batch.run_batch`` run once per ``migration.runs``, then every account judged on its
own by the single scenario's ``expect:`` (``scenarios.expectations.check``) and the batch by its
caps. The result has one ``AccountCheck`` per account (report.json; junit.xml gives each its
testcase) and the scenario fails when any account or the batch does.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from scenarios.expectations import AccountCheck, RunRecord, check
from scenarios.model import Scenario, ServerSpec
from scenarios.runner import (
    ScenarioResult, Side, _create_special_folders, _delimiter, _profile, add_dovecot_user, dovecot_deliverer,
    shared_dovecot,
)
from scenarios.snapshot import snapshot_account, snapshot_imap
from scenarios.verify import VerifyScope, compare
from simulators.fixtures import populate


def run_batch_scenario(scenario: Scenario, options: Any, result: ScenarioResult, started: float,
                       after_migration: Callable[[Side, Side], None] | None = None) -> ScenarioResult:
    from migrator.batch.accounts import load_batch
    from migrator.batch.ledger import Ledger
    from migrator.batch.runner import BatchOptions, run_batch

    spec = scenario.batch
    base = scenario.file.parent if scenario.file else Path.cwd()
    refused = set(spec.wrong_password)
    with tempfile.TemporaryDirectory(prefix="quirkmail-batch-") as tmp, ExitStack() as stack:
        sources, source_ca = build_sides(scenario.source, "source", spec.accounts, base, stack)
        dests, dest_ca = build_sides(scenario.destination, "dest", spec.accounts, base, stack)
        batch_file = write_batch_file(Path(tmp), sources, dests, refused)
        outdir = Path(tmp) / "out"
        records: dict[str, list[RunRecord]] = {}
        befores = [None] * spec.accounts
        unchanged = VerifyScope(map_special_use=False)
        source_checks: list = [None] * spec.accounts
        for n in range(1, scenario.migration.runs + 1):
            if n > 1 and scenario.migration.new_mail_between_runs is not None:
                for i, side in enumerate(sources):
                    fixture = scenario.migration.new_mail_between_runs
                    side.deliver(fixture.model_copy(update={"seed": fixture.seed + i}))
            befores = [side.truth() for side in sources]
            t0 = time.monotonic()
            report = run_batch(load_batch(batch_file), BatchOptions(
                outdir=outdir, per_host=spec.per_host, per_dest_host=spec.per_dest_host,
                accounts_parallel=spec.accounts_parallel, again=n > 1, retry_after=0.5, migration=options,
                source_cafile=source_ca, dest_cafile=dest_ca), name=batch_file.name)
            result.runs.append(RunRecord(run=n, exit_code=report.exit_code, seconds=round(time.monotonic() - t0, 3),
                                         copied=sum(a.copied for a in report.accounts)))
            ledger = Ledger(outdir)
            for a in report.accounts:
                path = ledger.report_path(a.id)  # this run's MigrationReport, when the account got one
                full = json.loads(path.read_text(encoding="utf-8")) if path.exists() and a.finished else None
                records.setdefault(a.id, []).append(RunRecord(
                    run=n, exit_code=a.exit_code, seconds=a.seconds, copied=a.copied, error=a.error or "",
                    report=full))
            for i, side in enumerate(sources):
                changes = compare(befores[i], side.truth(), unchanged)
                if source_checks[i] is None or source_checks[i].exact:
                    source_checks[i] = changes
        result.batch = {"per_host": spec.per_host, "per_dest_host": spec.per_dest_host,
                        "peak_per_host": report.peak_per_host, "peak_per_dest_host": report.peak_per_dest_host,
                        "peak_running": report.peak_running, "exit_code": report.exit_code,
                        "not_started": report.not_started}
        scope = VerifyScope.from_options(options)
        by_id = {a.id: a for a in report.accounts}
        for i, (src, dst) in enumerate(zip(sources, dests)):
            account_id = account_name(i)
            got = by_id.get(account_id)
            if after_migration is not None:
                after_migration(src, dst)
            check_ = AccountCheck(id=account_id, outcome=got.outcome if got else "not-started",
                                  exit_code=got.exit_code if got else -1, copied=got.copied if got else 0)
            if got is None:
                check_.failures = ["never started"]
            elif i + 1 in refused:
                if got.outcome != "authentication":
                    check_.failures = [f"its wrong password should be refused (outcome authentication), "
                                       f"got {got.outcome}: {got.error or 'no error'}"]
            else:
                check_.verify = compare(befores[i], snapshot_imap(dst.endpoint, permanent_flags=True), scope)
                check_.failures = check(scenario, records[account_id], check_.verify, source_checks[i])
            check_.passed = not check_.failures
            result.accounts.append(check_)
    result.failures = cap_failures(result.batch)
    result.failures += [f"account {a.id}: {f}" for a in result.accounts for f in a.failures]
    result.passed = not result.failures
    result.seconds = round(time.monotonic() - started, 3)
    return result


def account_name(i: int) -> str:
    return f"account{i + 1}"


def cap_failures(batch: dict[str, Any]) -> list[str]:
    """The batch's caps against the peaks its scheduler recorded."""
    out = [f"source server {h} ran {n} accounts at once, cap {batch['per_host']}"
           for h, n in batch["peak_per_host"].items() if n > batch["per_host"]]
    if batch["per_dest_host"]:
        out += [f"destination server {h} ran {n} accounts at once, cap {batch['per_dest_host']}"
                for h, n in batch["peak_per_dest_host"].items() if n > batch["per_dest_host"]]
    if batch["not_started"]:
        out.append(f"accounts never started: {', '.join(batch['not_started'])}")
    return out


def write_batch_file(folder: Path, sources: list[Side], dests: list[Side], refused: set[int]) -> Path:
    """accounts.csv as an engineer writes it: URLs with the user, secrets in files beside it."""
    secrets = folder / "secrets"
    secrets.mkdir()
    lines = ["source,source_secret,dest,dest_secret,id"]
    for i, (src, dst) in enumerate(zip(sources, dests)):
        name = account_name(i)
        (secrets / f"{name}.src").write_text(("wrong-" if i + 1 in refused else "") + src.password)
        (secrets / f"{name}.dst").write_text(dst.password)
        lines.append(f"{_url(src)},file:secrets/{name}.src,{_url(dst)},file:secrets/{name}.dst,{name}")
    path = folder / "accounts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _url(side: Side) -> str:
    url = side.endpoint.url
    return f"{url.scheme}://{url.user}@{url.host}:{url.port}"


def build_sides(spec: ServerSpec, role: str, count: int, base_dir: Path,
                stack: ExitStack) -> tuple[list[Side], Path | None]:
    """``count`` accounts on one server of this side (fixture seed + i each); the server's CA."""
    from migrator.urls import Endpoint, Secret, ServerURL

    fixtures = [spec.fixture.model_copy(update={"seed": spec.fixture.seed + i}) if spec.fixture else None
                for i in range(count)]
    users = [(f"{spec.user}{i + 1}" if spec.server == "simulator" else f"b{role}{uuid.uuid4().hex[:10]}",
              uuid.uuid4().hex) for i in range(count)]
    if spec.server == "dovecot":
        dovecot = shared_dovecot()
        sides = []
        for (user, password), fixture in zip(users, fixtures):
            add_dovecot_user(dovecot, user, password)
            deliver = dovecot_deliverer(dovecot, user, password, base_dir)
            if fixture is not None:
                deliver(fixture)
            endpoint = Endpoint(ServerURL.parse(dovecot.url(user)), Secret(password))
            sides.append(Side(endpoint, lambda e=endpoint: snapshot_imap(e), deliver))
        return sides, None
    from simulators.launcher import SimulatorWorld
    from simulators.store import Store

    store = Store()
    profile = _profile(spec, base_dir)
    world = stack.enter_context(SimulatorWorld(store, profile))
    handle = world.start_imap()
    sides = []
    for (user, password), fixture in zip(users, fixtures):
        account = store.add_account(user, password)
        if fixture is not None:
            populate(account, fixture, profile, base_dir=base_dir)
        else:
            _create_special_folders(account, profile)
        endpoint = Endpoint(ServerURL.parse(handle.url(user)), Secret(password), cafile=world.cafile)
        sides.append(Side(
            endpoint,
            lambda a=account, u=user: snapshot_account(a, label=handle.url(u), delimiter=_delimiter(profile)),
            lambda f, a=account: populate(a, f, profile, base_dir=base_dir),
        ))
    return sides, world.cafile

