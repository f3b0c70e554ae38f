"""Run a scenario whose source is a recording (``source: {replay: PATH}``): a customer's session as a test.

A ``ReplayServer`` plays the recorded source sessions back in place of a simulator; our engine
migrates from it to the scenario's destination (a simulator or Dovecot, built as usual). The
verdict has three parts, each failure one sentence:

- the run against ``expect:`` (exit code, copied, skipped with reasons, notes, error …:
  ``scenarios.expectations.check``; nothing that needs a live source);
- the replay itself: every recorded command matched, every recorded session played to its end —
  else the first divergence, naming the session file and the recorded step;
- the destination: each message the recording shows the source sending whole is there exactly
  once, byte-equal (by SHA-256), except as many as ``expect.skipped`` says were skipped; and
  nothing else arrived.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.expectations import check
from scenarios.model import Scenario
from scenarios.pop3_expect import check_pop3
from scenarios.replay_source import ReplaySource, load_replay_source
from scenarios.runner import ScenarioResult, Side, build_side, run_engine
from scenarios.snapshot import MailboxSnapshot, snapshot_imap
from scenarios.verify import VerifyReport

SETTLE = 2.0  # seconds for the engine's last connections to close, so every session is summed up


def run_replay_scenario(scenario: Scenario, options: Any, result: ScenarioResult, started: float,
                        after_migration: Callable[[Side, Side], None] | None = None) -> ScenarioResult:
    from simulators.replay.server import ReplayServer

    spec = scenario.source
    file = scenario.file or Path("<scenario>")
    replayed = load_replay_source(file, spec.replay or "")
    with tempfile.TemporaryDirectory(prefix="quirkmail-replay-") as tmp, ExitStack() as stack:
        server = ReplayServer(replayed.scripts, lenient=spec.lenient, pace=spec.pace)
        endpoints = server.start()
        stack.callback(server.stop)
        source = _source_side(replayed, endpoints[0], server.cafile)
        dest = build_side(scenario.destination, "dest", file.parent, stack)
        for n in range(1, scenario.migration.runs + 1):
            result.runs.append(run_engine(n, source, dest, options, Path(tmp) / "state.sqlite3"))
        _settle(server)
        summary = server.summary()
        if after_migration is not None:
            after_migration(source, dest)
        view = dest.view() if dest.view else snapshot_imap(dest.endpoint)
    verify = VerifyReport(source=f"replay {replayed.path.name}", destination=view.label,
                          dest_counts={key: len(f.messages) for key, f in view.folders.items()})
    result.verify = verify
    result.failures = check(scenario, result.runs, verify)
    result.failures += check_pop3(scenario.expect.pop3, result.runs, {}, verify)
    result.failures += replay_failures(summary, replayed.scripts)
    allowed = sum(s.count for s in scenario.expect.skipped or [])
    result.failures += destination_failures(replayed.messages(), view, allowed)
    result.passed = not result.failures
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _source_side(replayed: ReplaySource, endpoint, cafile: Path | None) -> Side:
    """The replay as the engine reaches it: the recorded user, a password as long as the recorded one."""
    user, password = replayed.login()
    tls = replayed.scripts[0].tls
    scheme = replayed.protocol + ("s" if tls == "implicit" else "")
    query = {"none": "?starttls=no", "starttls": "?starttls=required"}.get(tls, "")
    url = ServerURL.parse(f"{scheme}://{user}@{endpoint.host}:{endpoint.port}{query}")
    empty = MailboxSnapshot(label=f"replay {replayed.path.name}")
    return Side(Endpoint(url, Secret(password), cafile=cafile), lambda: empty, lambda fixture: None)


def _settle(server) -> None:
    deadline = time.monotonic() + SETTLE
    while not server.finished and time.monotonic() < deadline:
        time.sleep(0.05)


def replay_failures(summary, scripts: list) -> list[str]:
    """The replay's own verdict: the engine said what the recording says, and said all of it.

    Steps the client sent after the recorded server closed (a LOGOUT into a dead socket) cannot be
    reached in a replay, which closes there too: they are not counted as unplayed.
    """
    failures = []
    closed_at = {s.name: next((st.number for st in s.steps if st.reply.then_close), None) for s in scripts}
    if summary.divergences:
        first = summary.divergences[0]
        failures.append(f"the engine diverged from the recording {len(summary.divergences)} time(s); first: {first}")
    for name, steps in summary.unplayed.items():
        total = next(len(s.steps) for s in scripts if s.name == name)
        if closed_at.get(name) is not None and total - steps >= closed_at[name]:
            continue
        failures.append(f"recorded session {name}: {steps} recorded step(s) never reached")
    if summary.unused:
        failures.append(f"recorded session(s) never played: {', '.join(summary.unused)}")
    return failures


def destination_failures(sent: list[bytes], dest: MailboxSnapshot, allowed_missing: int) -> list[str]:
    """Each message the source sent once at the destination, byte-equal; ``allowed_missing`` skipped."""
    held = Counter(m.sha256 for f in dest.folders.values() for m in f.messages)
    wanted = {hashlib.sha256(raw).hexdigest(): raw for raw in sent}
    missing = [h for h in wanted if held[h] == 0]
    doubled = [h for h in wanted if held[h] > 1]
    others = sum(n for h, n in held.items() if h not in wanted)
    failures = []
    if len(missing) != allowed_missing:
        failures.append(f"{len(missing)} of the {len(wanted)} messages the recording sent are not at the "
                        f"destination byte-equal, expected {allowed_missing} (skipped)" + _first(missing, wanted))
    if doubled:
        failures.append(f"{len(doubled)} messages the recording sent are at the destination more than once"
                        + _first(doubled, wanted))
    if others:
        failures.append(f"{others} destination messages are none the recording sent whole")
    return failures


def _first(hashes: list[str], wanted: dict[str, bytes]) -> str:
    if not hashes:
        return ""
    head = wanted[hashes[0]].split(b"\r\n\r\n", 1)[0]
    subject = next((line for line in head.split(b"\r\n") if line.lower().startswith(b"subject:")), b"")
    return f" (e.g. {subject.decode('utf-8', 'replace') or 'sha256 ' + hashes[0][:12]})"
