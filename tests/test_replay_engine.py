"""The proof that matters: a failing migration, recorded, becomes a reproducible test.

Our engine runs against a source simulator that drops the connection with ``* BYE`` in the
middle of a FETCH literal (fault bye-mid-fetch) and a destination simulator that refuses large
APPENDs (appendlimit, not advertised: ``NO [TOOBIG]``), recording every connection of both sides
as ``migrate --record`` does (``transcripts.tap.Recorder``, secrets redacted). Then the engine runs again, against ``quirkmail
replay``'s server instead of the simulators: the outcome must be the same — exit code, skipped
items with their reasons, copied count, the reconnect note — and every byte the engine sent
(each APPEND literal included) must match the recording, or the strict replay would have
answered BAD and counted a divergence.
"""

from __future__ import annotations

from datetime import datetime, timezone

from migrator.engine import MigrationOptions, migrate
from migrator.recording import recorded as recorded_by
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.cli_replay import load_scripts
from simulators.faults import FaultSpec
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.replay.server import ReplayServer
from simulators.store import Store
from transcripts.tap import Recorder

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
    recorder = Recorder(recordings)
    with SimulatorWorld(store, source_profile) as source, SimulatorWorld(store, dest_profile) as dest:
        s, d = source.start_imap(), dest.start_imap()
        recorded = migrate(recorded_by(_endpoint(s.port, "src"), recorder, "source"),
                           recorded_by(_endpoint(d.port, "dst"), recorder, "destination"),
                           MigrationOptions(state_path=tmp_path / "recorded.sqlite", **options))
    recorder.close()
    assert recorded.exit_code == 1 and [x.reason for x in recorded.skipped] == ["too-large", "too-large"]
    assert _outcome(recorded)["notes"], "the BYE mid-FETCH must have made the engine reconnect"

    scripts, notes = load_scripts([recordings])
    assert {s.label for s in scripts} == {"source", "destination"} and not notes
    assert all(s.redacted for s in scripts if any(st.unit.verb == "LOGIN" for st in s.steps))
    with ReplayServer(scripts) as replay:
        ports = {e.label: e.port for e in replay.start()}
        replayed = migrate(_endpoint(ports["source"], "src"), _endpoint(ports["destination"], "dst"),
                           MigrationOptions(state_path=tmp_path / "replayed.sqlite", **options))
        summary = replay.summary()
    assert summary.divergences == []
    assert summary.sessions == len(scripts) and not summary.unused
    assert _outcome(replayed) == _outcome(recorded)


def _pop3_store() -> Store:
    store = Store()
    src = store.add_account("src", PASSWORD)
    store.add_account("dst", PASSWORD)
    for n in range(6):
        src.append(("INBOX",), f"Subject: p{n}\r\nMessage-ID: <p{n}@x>\r\n\r\nbody {n}\r\n".encode(), internaldate=WHEN)
    return store


def test_a_recorded_pop3_source_that_keeps_dropping_replays_to_the_same_abort(tmp_path):
    profile = load_profile("generic").with_quirks(
        [QuirkSpec(name="pop3-drop-mid-retr", params={"after_bytes": 60, "message": 5, "times": 0})])
    recordings = tmp_path / "pop3"

    def run(source_port: int, dest_world: SimulatorWorld, state: str, recorder: Recorder | None = None):
        imap = dest_world.start_imap()
        source = Endpoint(ServerURL.parse(f"pop3://src@127.0.0.1:{source_port}?starttls=no"), Secret(PASSWORD))
        source = recorded_by(source, recorder, "source")
        return migrate(source, _endpoint(imap.port, "dst"),
                       MigrationOptions(state_path=tmp_path / state, batch_size=2))

    store = _pop3_store()
    recorder = Recorder(recordings)
    with SimulatorWorld(store, profile) as world:
        pop3 = world.start_pop3()
        recorded = run(pop3.port, world, "recorded.sqlite", recorder)
    recorder.close()
    assert recorded.exit_code == 5 and recorded.pop3.reconnects > 0

    scripts, _ = load_scripts([recordings])
    fresh = _pop3_store()
    with ReplayServer(scripts) as replay, SimulatorWorld(fresh, load_profile("generic")) as dest:
        [endpoint] = replay.start()
        replayed = run(endpoint.port, dest, "replayed.sqlite")
        summary = replay.summary()
    assert summary.divergences == [] and summary.sessions == len(scripts)
    assert (replayed.exit_code, replayed.copied, replayed.pop3.reconnects) == (
        recorded.exit_code, recorded.copied, recorded.pop3.reconnects)
    assert len(fresh.accounts["dst"].folders[("INBOX",)].messages) == recorded.copied
