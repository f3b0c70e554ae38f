"""The proof that matters: a failing migration, recorded, becomes a reproducible test.

Our engine runs against a source simulator that drops the connection with ``* BYE`` in the
middle of a FETCH literal (fault bye-mid-fetch) and a destination simulator that refuses large
APPENDs (appendlimit, not advertised: ``NO [TOOBIG]``). A recording relay writes every
connection of both sides as a transcript. Then the engine runs again, against ``quirkmail
replay``'s server instead of the simulators: the outcome must be the same — exit code, skipped
items with their reasons, copied count, the reconnect note — and every byte the engine sent
(each APPEND literal included) must match the recording, or the strict replay would have
answered BAD and counted a divergence.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from migrator.engine import MigrationOptions, migrate
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.cli_replay import load_scripts
from simulators.faults import FaultSpec
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.replay.server import ReplayServer
from simulators.store import Store
from tests.replay_support import RecordingRelay

PASSWORD = "secret-1"
WHEN = datetime(2022, 2, 2, tzinfo=timezone.utc)


def _endpoint(port: int, user: str) -> Endpoint:
    return Endpoint(ServerURL.parse(f"imap://{user}@127.0.0.1:{port}?starttls=no"), Secret(PASSWORD))


def _outcome(report) -> dict:
    return {
        "exit": report.exit_code,
        "copied": report.copied,
        "skipped": [(s.folder, s.uid, s.reason, s.detail) for s in report.skipped],
        "failed": report.failed,
        "notes": [n for n in report.notes if "reconnect" in n or "lost" in n],
    }


@pytest.mark.slow  # ~3 s: two migrations with a reconnect
def test_a_recorded_failing_migration_replays_to_the_same_outcome(tmp_path):
    store = Store()
    src = store.add_account("src", PASSWORD)
    store.add_account("dst", PASSWORD)
    for n, size in enumerate((300, 9000, 400, 20000, 500)):
        src.append(("INBOX",), f"Subject: s{n}\r\nMessage-ID: <s{n}@x>\r\n\r\n".encode() + b"x" * size,
                   internaldate=WHEN)
    source_profile = load_profile("generic").with_faults([FaultSpec.parse("bye-mid-fetch:first=3,cut=0.5")])
    dest_profile = load_profile("generic").with_quirks(
        [QuirkSpec(name="appendlimit", params={"bytes": 5000, "advertise": False})])
    options = dict(connections=1, batch_size=2)
    recordings = tmp_path / "transcripts"
    with SimulatorWorld(store, source_profile) as source, SimulatorWorld(store, dest_profile) as dest:
        s, d = source.start_imap(), dest.start_imap()
        relays = [RecordingRelay((s.host, s.port), recordings, label="source"),
                  RecordingRelay((d.host, d.port), recordings, label="destination")]
        recorded = migrate(_endpoint(relays[0].port, "src"), _endpoint(relays[1].port, "dst"),
                           MigrationOptions(state_path=tmp_path / "recorded.sqlite", **options))
        for relay in relays:
            relay.close()
    assert recorded.exit_code == 1 and [x.reason for x in recorded.skipped] == ["too-large", "too-large"]
    assert _outcome(recorded)["notes"], "the BYE mid-FETCH must have made the engine reconnect"

    scripts, notes = load_scripts([recordings])
    assert {s.label for s in scripts} == {"source", "destination"} and not notes
    with ReplayServer(scripts) as replay:
        ports = {e.label: e.port for e in replay.start()}
        replayed = migrate(_endpoint(ports["source"], "src"), _endpoint(ports["destination"], "dst"),
                           MigrationOptions(state_path=tmp_path / "replayed.sqlite", **options))
        summary = replay.summary()
    assert summary.divergences == []
    assert summary.sessions == len(scripts) and not summary.unused
    assert _outcome(replayed) == _outcome(recorded)
