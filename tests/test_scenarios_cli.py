"""The ``quirkmail`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "scenarios" / "library" / "imap"


def quirkmail(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "scenarios", *args], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=timeout
    )


def test_help_lists_every_command():
    done = quirkmail("--help")
    assert done.returncode == 0
    for command in ("run", "serve", "migrate", "verify", "profiles"):
        assert command in done.stdout


def test_profiles_lists_the_builtin_profiles_with_descriptions():
    done = quirkmail("profiles")
    assert done.returncode == 0, done.stderr
    assert "generic: A standards-following server" in done.stdout
    assert "delimiter '/'" in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: {server: dovecot}\nexpect: {identicle: true}\n", "expect.identicle: Extra inputs are not permitted"),
        ("source: {server: dovecot}\nmigration: {options: {mdoe: replace}}\n", "migration.options.mdoe: unknown option"),
    ],
)
def test_run_refuses_a_bad_file_with_exit_2_naming_file_and_field(tmp_path, text, message):
    bad = tmp_path / "imap" / "typo.yaml"
    bad.parent.mkdir()
    bad.write_text(text, encoding="utf-8")
    done = quirkmail("run", str(bad), "--report-dir", str(tmp_path / "reports"))
    assert done.returncode == 2
    assert f"{bad}: {message}" in done.stderr
    assert not (tmp_path / "reports" / "report.json").exists()


def test_run_missing_path_is_a_usage_error(tmp_path):
    assert quirkmail("run", str(tmp_path / "nothing.yaml")).returncode == 2


def test_run_refuses_an_invalid_keyword_expression_before_starting_workers(tmp_path):
    done = quirkmail("run", "scenarios/library/quirks", "-k", "gmail- dedup", "--report-dir", str(tmp_path))
    assert done.returncode == 2
    assert "-k 'gmail- dedup': expected end of input" in done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert not (tmp_path / "report.json").exists()


def test_verify_without_password_source_is_a_usage_error():
    done = quirkmail("verify", "--source", "imap://a@127.0.0.1:1", "--dest", "imap://b@127.0.0.1:1")
    assert done.returncode == 2
    assert "no password" in done.stderr


@pytest.mark.peer
@pytest.mark.slow
def test_run_library_files_on_two_workers_writes_reports_and_passes(tmp_path):
    from scenarios.peers.dovecot import availability

    if availability():
        pytest.skip(availability())
    report_dir = tmp_path / "reports"
    files = [str(LIBRARY / "rerun-copies-nothing.yaml"), str(LIBRARY / "include-exclude.yaml")]
    # Two xdist workers: the results travel to the controller in user_properties.
    done = quirkmail("run", *files, "-n", "2", "--report-dir", str(report_dir), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rerun-copies-nothing" in done.stdout and "2 passed, 0 failed" in done.stdout
    data = json.loads((report_dir / "report.json").read_text())
    assert data["totals"]["passed"] == 2 and data["totals"]["total"] == 2
    by_name = {r["name"]: r for r in data["results"]}
    assert [run["copied"] for run in by_name["rerun-copies-nothing"]["runs"]] == [35, 0]
    cases = ET.parse(report_dir / "junit.xml").getroot().findall("testsuite/testcase")
    assert sorted((c.get("classname"), c.get("name")) for c in cases) == [
        ("imap", "include-exclude"),
        ("imap", "rerun-copies-nothing"),
    ]


@pytest.mark.peer
@pytest.mark.slow
def test_run_with_a_failing_scenario_exits_1_and_names_the_failure(tmp_path):
    from scenarios.peers.dovecot import availability

    if availability():
        pytest.skip(availability())
    wrong = tmp_path / "imap" / "wrong-count.yaml"
    wrong.parent.mkdir()
    wrong.write_text(
        "source: {server: simulator, fixture: {seed: 2, messages: 5, folders: 2}}\n"
        "expect: {folders: {INBOX: 99}}\n",
        encoding="utf-8",
    )
    done = quirkmail("run", str(wrong), "-n", "1", "--report-dir", str(tmp_path / "reports"))
    assert done.returncode == 1
    assert "failed" in done.stdout and "expected 99" in done.stdout


@pytest.mark.peer
@pytest.mark.slow
def test_verify_exit_code_follows_identity(monkeypatch):
    import imapclient

    from scenarios.peers.dovecot import availability
    from scenarios.runner import shared_dovecot
    from tests.test_scenarios_verify import _loaded

    if availability():
        pytest.skip(availability())
    dovecot = shared_dovecot()
    _, source = _loaded(dovecot, "clisource")
    _, dest = _loaded(dovecot, "clidest")
    monkeypatch.setenv("SRC_PW", source.password.reveal())
    monkeypatch.setenv("DST_PW", dest.password.reveal())
    args = ["verify", "--source", source.url.display(), "--source-password-env", "SRC_PW",
            "--dest", dest.url.display(), "--dest-password-env", "DST_PW"]
    same = quirkmail(*args)
    with imapclient.IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as c:
        c.login(dest.url.user, dest.password.reveal())
        c.select_folder("Sent")
        c.delete_messages(c.search("ALL"))
        c.expunge()
    differs = quirkmail(*args)
    wrong_pw = quirkmail(*args[:-1], "SRC_PW")
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.rstrip().splitlines()[-1].startswith("IDENTICAL: 4 folders")
    assert differs.returncode == 1
    assert "FAIL Sent → Sent: 1 → 0" in differs.stdout and "missing: 1: uid 1 <m10@example.org>" in differs.stdout
    assert wrong_pw.returncode == 4 and "login refused" in wrong_pw.stderr
    assert source.password.reveal() not in same.stdout + differs.stdout + wrong_pw.stderr


def test_serve_prints_url_and_cafile_serves_the_fixture_and_stops_on_ctrl_c(tmp_path):
    import poplib
    import re
    import signal
    import smtplib
    import ssl

    import imapclient

    env = {**os.environ, "PYTHONPATH": str(ROOT), "SERVE_PW": "s3cret-for-test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenarios", "serve", "--profile", "courier", "--fixture", "seed=3,messages=12,folders=4",
         "--user", "bob", "--password-env", "SERVE_PW", "--record", str(tmp_path / "rec")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("Ctrl-C stops"):
            lines.append(proc.stdout.readline())
            assert lines[-1], "serve exited before it was ready: " + proc.stderr.read()
        text = "".join(lines)
        assert "s3cret" not in text
        port = int(re.search(r"imap:\s+imap://bob@127\.0\.0\.1:(\d+)", text).group(1))
        pop3_port = int(re.search(r"pop3:\s+pop3://bob@127\.0\.0\.1:(\d+)", text).group(1))
        smtp_port = int(re.search(r"smtp:\s+smtp://bob@127\.0\.0\.1:(\d+)", text).group(1))
        assert re.search(r"ews:\s+ews\+http://bob@", text)
        cafile = re.search(r"cafile: (\S+)", text).group(1)
        with imapclient.IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as c:
            c.starttls(ssl.create_default_context(cafile=cafile))
            c.login("bob", "s3cret-for-test")
            names = [name for _, _, name in c.list_folders()]
            assert "INBOX" in names and all(n == "INBOX" or n.startswith("INBOX.") for n in names)
            total = sum(c.folder_status(n, ["MESSAGES"])[b"MESSAGES"] for n in names)
            inbox = c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"]
        assert total == 12
        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)  # the same store through the POP3 front
        pop.user("bob")
        pop.pass_("s3cret-for-test")
        assert pop.stat()[0] == inbox
        pop.quit()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            smtp.login("bob", "s3cret-for-test")
            smtp.sendmail("a@example.org", ["bob"], b"Subject: rec\r\n\r\nrecorded\r\n")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    # --record: the simulator's side of both sessions, the password masked
    from transcripts import format as tf

    files = sorted((tmp_path / "rec").iterdir())
    assert [f.name.split("-")[:3] for f in files] == [
        ["001", "simulator", "imap"], ["002", "simulator", "pop3"], ["003", "simulator", "smtp"]]
    assert [tf.read(f).header.tls for f in files] == ["starttls", "none", "starttls"]
    assert all(b"s3cret" not in f.read_bytes() for f in files)
    assert b"PASS ***************\r\n" in tf.read(files[1]).sent_by(tf.Sender.CLIENT)
    assert b"\r\nrecorded\r\n.\r\n" in tf.read(files[2]).sent_by(tf.Sender.CLIENT)


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--fault", "nope:x=1"], "unknown fault 'nope'"),
        (["--fault", "drop-after-bytes:bytes=soon"], "fault 'drop-after-bytes'"),
        (["--quirk", "no-such-quirk"], "unknown quirk 'no-such-quirk'"),
        (["--fronts", "imap,fax"], "--fronts: unknown fax"),
    ],
)
def test_serve_refuses_bad_faults_quirks_and_fronts_before_serving(extra, says, capsys):
    from scenarios.cli import main

    assert main(["serve", "--profile", "generic", *extra]) == 2
    assert says in capsys.readouterr().err
