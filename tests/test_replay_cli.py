"""`quirkmail replay ... --once`: endpoint printed, summary printed, exit 0 / 1 / 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import imapclient
import pytest

ROOT = Path(__file__).resolve().parents[1]
RAWLOG = ROOT / "tests" / "replay_data" / "dovecot-2.3.19"


def _start(*args: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "scenarios", "replay", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if found := re.search(r"imap:\s+imap://user@127\.0\.0\.1:(\d+)", line):
            return proc, int(found.group(1))
    raise AssertionError(f"no endpoint printed (exit {proc.wait()})")


@pytest.mark.parametrize("password, code", [("secret", 0), ("wrong-pw", 1)])
def test_once_serves_the_recording_then_prints_the_summary_and_exits(password, code):
    proc, port = _start(str(RAWLOG), "--once")
    client = imapclient.IMAPClient("127.0.0.1", port, ssl=False, timeout=10)
    try:
        client.login("alice", password)
    except imapclient.exceptions.LoginError as exc:
        assert "replay diverged: expected LOGIN alice ..., got LOGIN alice ... (a hidden secret differs" in str(exc)
        client.login("alice", "secret")  # the same recorded step is still expected
    client.append("INBOX", b"Subject: hi\r\n\r\nbody\r\n")
    client.select_folder("INBOX")
    client.fetch([1], ["FLAGS", "BODY.PEEK[]"])
    client.logout()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == code, out
    assert f"replay: 1 session played, 7 commands matched, {code} divergence" in out
    assert "wrong-pw" not in out  # a live password is never printed


def test_unreadable_input_is_a_usage_error(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"quirkmail_transcript": 9}\n')
    done = subprocess.run([sys.executable, "-m", "scenarios", "replay", str(tmp_path / "x.jsonl")], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "x.jsonl, line 1: not a quirkmail transcript of version 1" in done.stderr
