"""SIGKILL an EWS → EWS mail migration (the engine as a child process) at seeded points, re-run,
check the destination mailbox: every source message exactly once, bytes and instants intact.

The window: CreateItem answered, the checkpoint row not yet committed. The re-run reads the
destination folder's identities (``sinks.ews.EwsSink.identities``) and matches instead of
creating again; with identity-dedup switched off the same kills leave duplicates behind — the
proof that the match, not luck, keeps the copies single.
"""

from __future__ import annotations

import collections
import random

import pytest

from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.crash_support import engine_env, run_engine
from tests.test_crash_flows import SEED, kill_cycles, mail
from tests.test_migrator_support import PASSWORD

SPEC = FixtureSpec(seed=11, messages=30, folders=6, no_message_id=1, duplicate_message_id=1)


def _worlds(dest_user: str = "finn"):
    profile = load_profile("exchange")
    src = Store().add_account("erin", PASSWORD)
    populate(src, SPEC, profile)
    dst = Store().add_account(dest_user, PASSWORD)
    return profile, src, dst


def _args(sw: SimulatorWorld, dw: SimulatorWorld, state, *extra: str) -> list[str]:
    return ["--from", sw.start_ews().url("erin"), "--to", dw.start_ews().url("finn"),
            "--from-password-env", "QM_SRC", "--to-password-env", "QM_DST", "--state", str(state),
            "--batch-size", "3", "--items", "mail", "--connections", "2", *extra]


@pytest.mark.slow
def test_ews_to_ews_killed_resumes_without_duplicates(tmp_path):
    profile, src, dst = _worlds()
    total = sum(len(f.messages) for f in src.folders.values())
    state = tmp_path / "s.sqlite"
    with SimulatorWorld(src._store, profile) as sw, SimulatorWorld(dst._store, profile) as dw:
        args = _args(sw, dw, state)
        env = engine_env({"QM_SRC": PASSWORD, "QM_DST": PASSWORD})
        killed = kill_cycles(args, env, state, commits=3, timed=2, total=total)
        final = run_engine(args, env)
    assert final.returncode == 0, final.stdout + final.stderr
    assert killed >= 3
    assert sum(mail(dst).values()) == total
    assert mail(dst) == mail(src)  # every message once: same bytes, same instant


@pytest.mark.slow
def test_ews_to_ews_without_identity_dedup_duplicates(tmp_path):
    """The same commit-window kills, identity-dedup off: each kill's uncommitted batch is created again."""
    profile, src, dst = _worlds()
    total = sum(len(f.messages) for f in src.folders.values())
    state = tmp_path / "s.sqlite"
    rng = random.Random(SEED)
    with SimulatorWorld(src._store, profile) as sw, SimulatorWorld(dst._store, profile) as dw:
        args = _args(sw, dw, state, "--disable", "identity-dedup")
        env = engine_env({"QM_SRC": PASSWORD, "QM_DST": PASSWORD})
        kills = [run_engine(args, env, at_commit=rng.randint(1, 3)).returncode for _ in range(2)]
        final = run_engine(args, env)
    assert kills == [-9, -9]
    assert final.returncode == 0, final.stdout + final.stderr
    got, want = mail(dst), mail(src)
    extra = sum((got - want).values())
    assert not want - got  # nothing lost either way
    assert extra >= 2  # at least one message of each killed batch was created twice
    assert sum(got.values()) == total + extra
    assert collections.Counter(k for k, n in got.items() if n > want[k])  # named duplicates, not strangers


@pytest.mark.parametrize("dedup", [True, False])
def test_ews_to_ews_merge_matches_copies_already_there(tmp_path, dedup):
    """A destination holding copies (another tool's, or a killed run's) in a distinguished and in a
    user folder: a fresh checkpoint matches them all by identity; identity-dedup off copies them again."""
    from migrator.engine import MigrationOptions, migrate
    from migrator.urls import Endpoint, Secret, ServerURL

    profile, src, dst = _worlds("erin")  # the same user in another store: fixtures address mail to it
    populate(dst, SPEC, profile)  # the same bytes, folders and instants
    total = sum(len(f.messages) for f in src.folders.values())
    opts = MigrationOptions(items=["mail"], state_path=tmp_path / "s.sqlite", connections=2,
                            disable=[] if dedup else ["identity-dedup"])
    with SimulatorWorld(src._store, profile) as sw, SimulatorWorld(dst._store, profile) as dw:
        report = migrate(Endpoint(ServerURL.parse(sw.start_ews().url("erin")), Secret(PASSWORD)),
                         Endpoint(ServerURL.parse(dw.start_ews().url("erin")), Secret(PASSWORD)), opts)
    assert (report.failed, report.aborted) == (0, None), report.errors[:3]
    assert ("Réunions",) in dst.folders  # a user folder found by path, read like the distinguished ones
    if dedup:
        assert (report.copied, report.already_present) == (0, total)
        assert mail(dst) == mail(src)
    else:
        assert (report.copied, report.already_present) == (total, 0)
        assert report.mitigations_off == ["identity-dedup"]
        assert sum(mail(dst).values()) == 2 * total


def test_lazy_index_reads_only_the_message_ids_asked_and_discounts_recorded_copies():
    from migrator.identity import Identity, LazyIdentityIndex

    reads = []

    def load(items):
        reads.append(list(items))
        return [Identity(f"{mid}/h{n}", 100) for mid, n in items]

    a1, a2, b1 = ("a@x", 1), ("a@x", 2), ("b@x", 1)
    index = LazyIdentityIndex({"a@x": [a1, a2], "b@x": [b1]}, load, discount=[Identity("a@x/h1", 100)])
    assert not index.take(Identity("c@x/h1", 100)) and reads == []  # no candidates: nothing read
    assert not index.take(Identity("a@x/h1", 100))  # our recorded copy: discounted
    assert index.take(Identity("a@x/h2", 120)) and not index.take(Identity("a@x/h2", 100))  # one copy, taken once
    assert reads == [[a1, a2]]  # b@x never asked, never read


def test_resume_reads_only_the_unrecorded_copies(tmp_path, monkeypatch):
    """A run whose last 3 checkpoint rows were lost (killed before the commit): the re-run finds
    those 3 by identity, reading the content of the few items sharing their Message-IDs only."""
    import sqlite3

    from migrator.engine import MigrationOptions, migrate
    from migrator.sinks.ews import EwsSink
    from migrator.urls import Endpoint, Secret, ServerURL

    profile, src, dst = _worlds()
    total = sum(len(f.messages) for f in src.folders.values())
    opts = MigrationOptions(items=["mail"], state_path=tmp_path / "s.sqlite", connections=2)
    read = []
    original = EwsSink._read_identities
    monkeypatch.setattr(EwsSink, "_read_identities", lambda self, items: read.extend(items) or original(self, items))
    with SimulatorWorld(src._store, profile) as sw, SimulatorWorld(dst._store, profile) as dw:
        ends = (Endpoint(ServerURL.parse(sw.start_ews().url("erin")), Secret(PASSWORD)),
                Endpoint(ServerURL.parse(dw.start_ews().url("finn")), Secret(PASSWORD)))
        first = migrate(*ends, opts)
        assert (first.copied, read) == (total, [])  # fresh folders: nothing to match, nothing read
        db = sqlite3.connect(tmp_path / "s.sqlite")
        with db:
            db.execute("DELETE FROM ews_copied WHERE rowid IN (SELECT rowid FROM ews_copied WHERE dest='Inbox' "
                       "ORDER BY rowid DESC LIMIT 3)")
        db.close()
        again = migrate(*ends, opts)
    assert (again.copied, again.already_present, again.failed) == (0, total, 0)
    assert mail(dst) == mail(src)
    assert 3 <= len(read) <= 5  # the 3 lost rows' Message-IDs (a shared Message-ID may add one), not the folder
