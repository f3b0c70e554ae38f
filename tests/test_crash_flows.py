"""SIGKILL the POP3 and EWS flows (the engine as a child process) at seeded points, re-run, check
the destination: every source message exactly once, bytes and dates intact.

POP3 → IMAP and EWS → IMAP re-match what landed before a kill by identity: zero duplicates.
POP3 → LMTP cannot look into the mailbox it delivers to: a message delivered but not yet
checkpointed when the process dies is delivered again. Each message is checkpointed on its own
(the window is one message), a delivery is put on record before it starts, and the re-run reports
the message in doubt: the test pins that bound (one duplicate per kill) and that report.
"""

from __future__ import annotations

import collections
import json
import random
from datetime import timezone

import pytest

from migrator.identity import message_id_of
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Account, Store
from tests.crash_support import engine_env, kill_after_rows, run_engine
from tests.test_migrator_support import PASSWORD, dovecot, snapshot, user  # noqa: F401 (fixture)

SEED = 7022


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mail(account: Account, folders: list[tuple[str, ...]] | None = None) -> collections.Counter:
    """Multiset of (bytes with CRLF, INTERNALDATE instant) over the given folders (default: all)."""
    return collections.Counter(
        (crlf(m.raw), m.internaldate.astimezone(timezone.utc))
        for f in account.folders.values() if folders is None or f.path in folders for m in f.messages
    )


def kill_cycles(args: list[str], env: dict, state, *, commits: int, timed: int, total: int) -> int:
    """``commits`` kills inside a checkpoint write, then ``timed`` kills at growing row counts."""
    rng = random.Random(SEED)
    killed = 0
    for _ in range(commits):
        done = run_engine(args, env, at_commit=rng.randint(1, 3))
        assert done.returncode in (-9, 0), done.stderr
        killed += done.returncode == -9
    for rows in sorted(rng.sample(range(1, total), timed)):
        killed += kill_after_rows(args, env, state, rows, rng.uniform(0.0, 0.03))
    return killed


@pytest.mark.slow
def test_pop3_to_imap_killed_resumes_without_duplicates(tmp_path):
    src = Store().add_account("pat", PASSWORD)
    populate(src, FixtureSpec(seed=3, messages=40, folders=1, no_message_id=2, duplicate_message_id=1), load_profile("generic"))
    dst = Store().add_account("quinn", PASSWORD)
    total = len(src.folders[("INBOX",)].messages)
    state = tmp_path / "s.sqlite"
    with SimulatorWorld(src._store, load_profile("generic")) as sw, SimulatorWorld(dst._store, load_profile("generic")) as dw:
        args = ["--from", sw.start_pop3().url("pat"), "--to", dw.start_imap().url("quinn"), "--from-password-env", "QM_SRC",
                "--to-password-env", "QM_DST", "--from-cafile", str(sw.cafile), "--to-cafile", str(dw.cafile), "--state", str(state), "--batch-size", "3"]
        env = engine_env({"QM_SRC": PASSWORD, "QM_DST": PASSWORD})
        killed = kill_cycles(args, env, state, commits=2, timed=2, total=total)
        final = run_engine(args, env)
    assert final.returncode == 0, final.stdout + final.stderr
    assert killed >= 3
    got = collections.Counter(crlf(m.raw) for m in dst.folders[("INBOX",)].messages)
    assert got == collections.Counter(crlf(m.raw) for m in src.folders[("INBOX",)].messages)


@pytest.mark.slow
def test_ews_to_imap_killed_resumes_without_duplicates(tmp_path):
    profile = load_profile("exchange")
    src = Store().add_account("erin", PASSWORD)
    populate(src, FixtureSpec(seed=9, messages=36, folders=4), profile)
    dst = Store().add_account("finn", PASSWORD)
    total = sum(len(f.messages) for f in src.folders.values())
    state = tmp_path / "s.sqlite"
    with SimulatorWorld(src._store, profile) as sw, SimulatorWorld(dst._store, load_profile("generic")) as dw:
        args = ["--from", sw.start_ews().url("erin"), "--to", dw.start_imap().url("finn"), "--from-password-env", "QM_SRC",
                "--to-password-env", "QM_DST", "--to-cafile", str(dw.cafile), "--state", str(state), "--batch-size", "3",
                "--items", "mail", "--connections", "2"]
        env = engine_env({"QM_SRC": PASSWORD, "QM_DST": PASSWORD})
        killed = kill_cycles(args, env, state, commits=2, timed=1, total=total)
        final = run_engine(args, env)
    assert final.returncode == 0, final.stdout + final.stderr
    assert killed >= 2
    assert sum(mail(dst).values()) == total
    assert mail(dst) == mail(src)  # every message once: same bytes, same instant


@pytest.mark.peer
@pytest.mark.slow
def test_pop3_to_lmtp_duplicates_at_most_one_message_per_kill(dovecot, tmp_path):
    src = Store().add_account("lou", PASSWORD)
    populate(src, FixtureSpec(seed=4, messages=30, folders=1), load_profile("generic"))
    total = len(src.folders[("INBOX",)].messages)
    dst = user(dovecot)
    state = tmp_path / "s.sqlite"
    with SimulatorWorld(src._store, load_profile("generic")) as sw:
        args = ["--from", sw.start_pop3().url("lou"), "--to", f"lmtp://{dst}@{dovecot.host}:{dovecot.lmtp_port}",
                "--from-password-env", "QM_SRC", "--cafile", str(sw.cafile), "--state", str(state), "--batch-size", "5"]
        env = engine_env({"QM_SRC": PASSWORD})
        kills = 0
        for k in (2, 3):  # inside a checkpoint write: delivered, not recorded
            done = run_engine(args, env, at_commit=k)
            assert done.returncode == -9, done.stderr
            kills += 1
        final = run_engine(args + ["--report", str(tmp_path / "final.json")], env)
    assert final.returncode == 0, final.stdout + final.stderr
    # The last kill's message in doubt is said so: the report counts it and names its UIDL.
    report = json.loads((tmp_path / "final.json").read_text())
    assert report["pop3"]["possible_duplicates"] == 1
    assert any("may be at the destination twice" in n for n in report["notes"])
    # Dovecot adds its own Received line per delivery: count by Message-ID (each fixture message has one).
    got = collections.Counter(message_id_of(raw) for raw, _, _ in snapshot(dovecot, dst)["INBOX"])
    assert set(got) == {message_id_of(m.raw) for m in src.folders[("INBOX",)].messages}  # nothing lost
    assert sum(got.values()) - total == kills  # each kill duplicated its one in-flight message: the known gap
