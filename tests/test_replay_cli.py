"""`quirkmail replay ... --once`: endpoint printed, summary printed, exit 0 / 1 / 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import imapclient
import pytest

from scenarios.cli import main
from scenarios.cli_replay import format_summary

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


@pytest.mark.slow  # a quirkmail process: ~3 s of imports on a loaded machine
@pytest.mark.parametrize("password, code", [("wrong-pw", 1)])
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


def test_unreadable_input_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "x.jsonl").write_text('{"quirkmail_transcript": 9}\n')
    assert main(["replay", str(tmp_path / "x.jsonl")]) == 2
    assert "x.jsonl, line 1: not a quirkmail transcript of version 1" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    (tmp_path / "lmtp.jsonl").write_text('{"quirkmail_transcript": 1, "protocol": "lmtp", "server": "x", '
                                         '"started": "2026-01-01T00:00:00+00:00"}\n')
    assert main(["replay", str(tmp_path / "lmtp.jsonl")]) == 2
    assert "lmtp.jsonl: lmtp sessions cannot be replayed yet" in capsys.readouterr().err


def test_a_port_in_use_is_named(capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["replay", str(RAWLOG), "--port", str(port)]) == 2
    assert f"cannot listen for IMAP recordings (no label) on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_summary_names_divergences_skips_and_what_was_not_played():
    from simulators.replay.pool import PoolSummary
    from simulators.replay.session import Divergence, Skip

    text = format_summary(PoolSummary(1, 5, [Divergence("a.jsonl", 3, "NOOP", "CHECK")],
                                      [Skip("a.jsonl", ("IDLE", "DONE"))], {"a.jsonl": 2}, ["b.jsonl"]))
    assert text.splitlines() == [
        "replay: 1 session played, 5 commands matched, 1 divergence",
        "  diverged: a.jsonl, step 3: expected NOOP, got CHECK",
        "  skipped (lenient): a.jsonl: IDLE, DONE",
        "  not reached: a.jsonl: 2 recorded steps",
        "  not played: b.jsonl",
    ]
