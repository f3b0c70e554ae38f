"""A batch into a real Dovecot: every mailbox verified over IMAP as a single run's is, and a
second pass (``again``) copies nothing."""

from __future__ import annotations

import pytest

from migrator.batch.accounts import parse_batch
from migrator.batch.runner import BatchOptions, run_batch
from migrator.engine import MigrationOptions
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.verify import verify
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, user  # noqa: F401 (fixture)


@pytest.mark.peer
@pytest.mark.slow  # ~4 s on a quiet machine, 13 s under load
def test_batch_from_two_simulators_into_dovecot(dovecot, tmp_path):
    profile = load_profile("generic")
    stores = [Store(), Store()]
    pairs = []  # (simulator index, source user, Dovecot user)
    for n in range(4):
        account = stores[n % 2].add_account(f"s{n}", PASSWORD)
        populate(account, FixtureSpec(seed=40 + n, messages=12, folders=3, no_message_id=1), profile)
        pairs.append((n % 2, f"s{n}", user(dovecot)))
    with SimulatorWorld(stores[0], profile) as w0, SimulatorWorld(stores[1], profile) as w1:
        ports = [w0.start_imap().port, w1.start_imap().port]
        csv = "source,source_user,source_secret,dest,dest_user,dest_secret\n" + "".join(
            f"imap://127.0.0.1:{ports[h]}?starttls=no,{s},{PASSWORD},{dovecot.url(d)},,{PASSWORD}\n"
            for h, s, d in pairs)
        batch = parse_batch(csv)
        options = BatchOptions(outdir=tmp_path / "out", per_host=1, accounts_parallel=4,
                               migration=MigrationOptions(connections=2, batch_size=5))
        report = run_batch(batch, options)
        assert [a.outcome for a in report.accounts] == ["ok"] * 4 and report.exit_code == 0
        assert report.peak_per_host == {f"127.0.0.1:{p}": 1 for p in ports}
        for h, s, d in pairs:
            source = Endpoint(ServerURL.parse(f"imap://{s}@127.0.0.1:{ports[h]}?starttls=no"), Secret(PASSWORD))
            result = verify(source, endpoint(dovecot, d))
            assert result.identical, result.summary()
        again = run_batch(batch, options.model_copy(update={"again": True}))
    assert sum(a.copied for a in again.accounts) == 0
    assert [a.already_present for a in again.accounts] == [a.copied for a in report.accounts]
