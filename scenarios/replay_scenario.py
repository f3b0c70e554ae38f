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
  nothing else arrived. Messages are counted, not deduplicated: two identical source messages
  need two copies. Each also keeps the INTERNALDATE instant and FLAGS the source reported next to
  its body (IMAP only: POP3 reports neither), judged by the verifier's rules
  (``scenarios.verify.check_pair``: \\Recent, flags the destination cannot store, $MDNSent on a
  read receipt request are not failures).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.expectations import check
from scenarios.model import Scenario
from scenarios.pop3_expect import check_pop3
from scenarios.replay_source import ReplaySource, SentMessage, load_replay_source
from scenarios.runner import ScenarioResult, Side, build_side, open_recorder, recorded_sides, run_engine
from scenarios.snapshot import MailboxSnapshot, MessageRecord, record_of, snapshot_imap
from scenarios.verify import FolderDiff, VerifyReport, check_pair

SETTLE = 2.0  # seconds for the engine's last connections to close, so every session is summed up


def run_replay_scenario(scenario: Scenario, options: Any, result: ScenarioResult, started: float,
                        after_migration: Callable[[Side, Side], None] | None = None, *,
                        record_dir: Path | None = None) -> ScenarioResult:
    """``record_dir``: record the engine's sessions against the replay, as ``run_scenario`` does."""
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
        recorder = open_recorder(record_dir)
        engine_source, engine_dest = recorded_sides(source, dest, recorder)
        for n in range(1, scenario.migration.runs + 1):
            result.runs.append(run_engine(n, engine_source, engine_dest, options, Path(tmp) / "state.sqlite3"))
        if recorder is not None:
            recorder.close()
            result.transcripts = [str(p) for p in recorder.paths]
        _settle(server)
        summary = server.summary()
        if after_migration is not None:
            after_migration(source, dest)
        view = dest.view() if dest.view else snapshot_imap(dest.endpoint, permanent_flags=True)
    verify = VerifyReport(source=f"replay {replayed.path.name}", destination=view.label,
                          dest_counts={key: len(f.messages) for key, f in view.folders.items()})
    result.verify = verify
    result.failures = check(scenario, result.runs, verify)
    result.failures += check_pop3(scenario.expect.pop3, result.runs, {}, verify)
    result.failures += replay_failures(summary, replayed.scripts)
    allowed = sum(s.count for s in scenario.expect.skipped or [])
    result.failures += destination_failures(replayed.sent(), view, allowed)
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


def destination_failures(sent: list[SentMessage | bytes], dest: MailboxSnapshot, allowed_missing: int) -> list[str]:
    """Each message the source sent once at the destination, byte-equal, with its date and flags.

    ``allowed_missing`` may be absent (skipped). Byte-equal copies pair first with one whose date
    and flags match too, so a changed copy is reported as changed, naming it, not as missing.
    """
    wanted = [s if isinstance(s, SentMessage) else SentMessage(s) for s in sent]
    pool: dict[str, list[tuple[MessageRecord, list[str] | None]]] = {}
    for folder in dest.folders.values():
        for record in folder.messages:
            pool.setdefault(record.sha256, []).append((record, folder.permanent_flags))
    hashes = [hashlib.sha256(m.raw).hexdigest() for m in wanted]
    changed: list[tuple[SentMessage, list[str]]] = []
    left = list(range(len(wanted)))
    for exact in (True, False):
        unpaired = []
        for i in left:
            copies = pool.get(hashes[i], [])
            copy = next((c for c in copies if not exact or not _differences(wanted[i], *c)), None)
            if copy is None:
                unpaired.append(i)
                continue
            copies.remove(copy)
            if not exact:
                changed.append((wanted[i], _differences(wanted[i], *copy)))
        left = unpaired
    missing = [wanted[i] for i in left]
    doubled = [wanted[hashes.index(h)] for h, copies in pool.items() if copies and h in hashes]
    others = sum(len(copies) for h, copies in pool.items() if h not in hashes)
    failures = []
    if len(missing) != allowed_missing:
        failures.append(f"{len(missing)} of the {len(wanted)} messages the recording sent are not at the "
                        f"destination byte-equal, expected {allowed_missing} (skipped)" + _first(missing))
    if doubled:
        failures.append(f"{len(doubled)} messages the recording sent are at the destination more than once"
                        + _first(doubled))
    for message, details in changed:
        failures.append(f"{_name(message)} is at the destination changed: {'; '.join(details)}")
    if others:
        failures.append(f"{others} destination messages are none the recording sent whole")
    return failures


def _differences(sent: SentMessage, copy: MessageRecord, permanent: list[str] | None) -> list[str]:
    """The verifier's verdict on date and flags; what the recording did not report is not judged."""
    flags = copy.flags if sent.flags is None else sent.flags
    source = record_of(copy.uid, sent.raw, flags, sent.internaldate or copy.internaldate)
    diff = FolderDiff(source="", destination="", source_count=1, dest_count=1)
    check_pair(source, copy, diff, permanent)
    return [ref.detail for ref in diff.date_mismatches + diff.flag_mismatches]


def _first(messages: list[SentMessage]) -> str:
    return f" (e.g. {_name(messages[0])})" if messages else ""


def _name(message: SentMessage) -> str:
    """The message's place in the recording and its Subject line, else a short digest."""
    head = message.raw.split(b"\r\n\r\n", 1)[0]
    subject = next((line for line in head.split(b"\r\n") if line.lower().startswith(b"subject:")), b"")
    text = subject.decode("utf-8", "replace") or "sha256 " + hashlib.sha256(message.raw).hexdigest()[:12]
    return f"{message.where}, {text}" if message.where else text
