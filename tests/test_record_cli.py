"""``quirkmail run --record`` and ``quirkmail migrate --record DIR`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import html

from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from transcripts import format as tf

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Cli-S3cret-Wren-2290"

SCENARIO = """\
name: recorded
description: A small IMAP to IMAP copy whose engine sessions are recorded.
source: {server: simulator, profile: generic, fixture: {seed: 3, messages: 6, folders: 2}}
destination: {server: simulator, profile: generic}
expect:
  exit_code: 0
  identical: true
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.mark.slow
def test_run_record_lists_transcripts_in_report_json_and_links_them_from_report_html(tmp_path):
    scenario = tmp_path / "imap" / "recorded.yaml"
    scenario.parent.mkdir()
    scenario.write_text(SCENARIO)
    reports = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "scenarios", "run", str(scenario), "-n", "1", "--report-dir",
                           str(reports), "--record"], capture_output=True, text=True, cwd=tmp_path, env=_env(),
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = json.loads((reports / "report.json").read_text())["results"]
    listed = result["transcripts"]
    assert listed and all(p.startswith("transcripts/imap/recorded/") for p in listed), listed
    names = [Path(p).name for p in listed]
    assert names[0].startswith("001-source-imap-") and any("-destination-imap-" in n for n in names)
    assert names == sorted(names), "connect order"
    hrefs = html.parse(str(reports / "report.html")).xpath('//ul[@class="transcripts"]/li/a/@href')
    assert hrefs == listed
    for href in hrefs:  # relative links resolve next to report.html, and are transcripts
        transcript = tf.read(reports / href)
        assert transcript.header.label in ("source", "destination") and transcript.events


@pytest.mark.slow
def test_sigkilled_migrate_leaves_readable_transcripts(tmp_path):
    source, dest = Store(), Store()
    populate(source.add_account("ann", PASSWORD), FixtureSpec(seed=9, messages=300, folders=1), load_profile("generic"))
    dest.add_account("bob", PASSWORD)
    record = tmp_path / "rec"
    with SimulatorWorld(source, load_profile("generic")) as src, SimulatorWorld(dest, load_profile("generic")) as dst:
        args = ["--from", src.start_imap().url("ann"), "--to", dst.start_imap().url("bob"),
                "--from-password-env", "QM_PW", "--to-password-env", "QM_PW", "--from-cafile", str(src.cafile),
                "--to-cafile", str(dst.cafile), "--state", str(tmp_path / "state.sqlite"), "--batch-size", "10",
                "--connections", "1", "--record", str(record)]
        child = subprocess.Popen([sys.executable, "-m", "migrator", *args], env={**_env(), "QM_PW": PASSWORD},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _appending(record):
                assert child.poll() is None, child.communicate()
                time.sleep(0.01)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL
    files = sorted(record.iterdir())
    assert files
    transcripts = [tf.read(p) for p in files]  # every line readable: no torn JSON
    unfinished = [t for t in transcripts if not any(isinstance(e, tf.Mark) and e.kind == "close" for e in t.events)]
    assert unfinished, "the kill came mid-session: some session has no close mark"
    appended = b"".join(t.sent_by(tf.Sender.CLIENT) for t in transcripts if t.header.label == "destination")
    assert b" APPEND " in appended
    assert PASSWORD.encode() not in b"".join(p.read_bytes() for p in files)


def _appending(record: Path) -> bool:
    for path in record.glob("*-destination-*.jsonl"):
        if path.read_bytes().count(b" APPEND ") >= 2:
            return True
    return False


COMMAND_SCENARIO = """\
name: external-client
description: An external client (imaplib in a child process) logs in to the simulator; we record its side.
source: {server: simulator, profile: generic, fixture: {seed: 4, messages: 3, folders: 1}}
destination: {server: simulator, profile: generic}
migration:
  command: [%s, -c, "import imaplib; c = imaplib.IMAP4('{source_host}', {source_port}); c.login('{source_user}', '{source_password}'); c.select('INBOX'); c.logout()"]
expect:
  exit_code: 0
  identical: false
  missing: 3
"""


def test_an_external_command_is_recorded_from_the_simulators_side(tmp_path):
    from scenarios.model import load_scenario
    from scenarios.runner import run_scenario

    path = tmp_path / "clients" / "external-client.yaml"
    path.parent.mkdir()
    path.write_text(COMMAND_SCENARIO % sys.executable)
    result = run_scenario(load_scenario(path), record_dir=tmp_path / "rec")
    assert result.passed, result.failures
    [only] = result.transcripts
    assert Path(only).name.startswith("001-source-server-imap-127.0.0.1_")
    transcript = tf.read(only)
    sent = transcript.sent_by(tf.Sender.CLIENT)
    assert b" LOGIN " in sent and b" SELECT INBOX" in sent and transcript.header.redacted == 1
    assert transcript.sent_by(tf.Sender.SERVER).startswith(b"* OK")


def test_record_is_refused_with_batch(tmp_path, capsys):
    from scenarios.cli import main

    batch = tmp_path / "accounts.csv"
    batch.write_text("source,source_user,source_secret,dest,dest_user,dest_secret,id\n")
    assert main(["migrate", "--batch", str(batch), "--record", str(tmp_path / "rec")]) == 2
    assert "--record records one migration; it cannot be combined with --batch" in capsys.readouterr().err
    assert not (tmp_path / "rec").exists()


def test_run_record_refuses_to_take_a_scenario_folder_for_its_own(tmp_path, capsys):
    from scenarios.cli import main

    scenario = tmp_path / "imap" / "recorded.yaml"
    scenario.parent.mkdir()
    scenario.write_text(SCENARIO)
    assert main(["run", "--record", str(tmp_path / "imap"), "--report-dir", str(tmp_path / "r")]) == 2
    assert "holds scenario files, not transcripts; put --record after the scenario paths" in capsys.readouterr().err
    assert scenario.read_text() == SCENARIO
