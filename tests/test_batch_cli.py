"""``quirkmail migrate --batch``: the command line around run_batch, on simulators."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from migrator.batch.accounts import parse_batch
from migrator.batch.ledger import Ledger
from migrator.batch.progress import RichBatchProgress
from migrator.batch.report import AccountResult
from migrator.batch.runner import BatchOptions, run_batch
from migrator.errors import UsageError
from scenarios.cli import main
from scenarios.snapshot import snapshot_account
from scenarios.verify import compare
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

PASSWORD = "pw-batch-cli-7"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_batch_command_writes_summary_logs_and_exits_with_the_worst_class(tmp_path, monkeypatch, capsys):
    profile = load_profile("generic")
    src, dst = Store(), Store()
    populate(src.add_account("alice", PASSWORD), FixtureSpec(seed=3, messages=10, folders=2), profile)
    src.add_account("bob", PASSWORD)
    dst.add_account("alice", PASSWORD)
    dst.add_account("bob", PASSWORD)
    (tmp_path / "alice.pw").write_text(PASSWORD + "\n")
    monkeypatch.setenv("QM_DST_PW", PASSWORD)
    monkeypatch.delenv("QM_UNSET_PW", raising=False)
    with SimulatorWorld(src, profile) as s, SimulatorWorld(dst, profile) as d:
        a, b = s.start_imap(), d.start_imap()
        csv = tmp_path / "accounts.csv"
        csv.write_text(
            "source,source_user,source_secret,dest,dest_user,dest_secret\n"
            f"imap://127.0.0.1:{a.port}?starttls=no,alice,file:alice.pw,imap://127.0.0.1:{b.port}?starttls=no,alice,env:QM_DST_PW\n"
            f"imap://127.0.0.1:{a.port}?starttls=no,bob,env:QM_UNSET_PW,imap://127.0.0.1:{b.port}?starttls=no,bob,{PASSWORD}\n"
            f"imap://127.0.0.1:{closed_port()}?starttls=no,carol,env:QM_DST_PW,imap://127.0.0.1:{b.port},carol,env:QM_DST_PW\n"
        )
        code = main(["migrate", "--batch", str(csv), "--per-host", "1"])
        out, err = capsys.readouterr()
        assert main(["migrate", "--batch", str(csv), "--from", "imap://x@h"]) == 2  # one account's option
    assert code == 3  # the worst class of the three: carol's server is unreachable
    assert "plain password(s) in the batch file on line(s) 3" in err and PASSWORD not in out + err
    assert "not with --batch" in capsys.readouterr().err
    outdir = tmp_path / "accounts-batch"
    summary = json.loads((outdir / "summary.json").read_text())
    alice, bob, carol = summary["accounts"]
    assert (alice["outcome"], alice["copied"]) == ("ok", 10)
    assert (bob["outcome"], bob["exit_code"]) == ("bad-input", 2)
    assert "environment variable QM_UNSET_PW is not set" in bob["error"]
    assert (carol["outcome"], carol["exit_code"]) == ("connection", 3) and "ConnectionFailed" in carol["error"]
    assert summary["peak_per_host"][f"127.0.0.1:{a.port}"] == 1
    assert "alice@127.0.0.1" in out and "bad-input" in out  # the summary table
    events = [json.loads(line) for line in (outdir / "accounts" / f"{alice['id']}.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["start", "plan"] and kinds[-1] == "end" and kinds.count("folder") == 2
    assert sum(e["messages"] for e in events if e["event"] == "progress") == 10
    assert json.loads((outdir / "accounts" / f"{alice['id']}.report.json").read_text())["copied"] == 10
    assert (outdir / "state" / f"{alice['id']}.sqlite").exists()


def test_one_output_folder_serves_one_batch_at_a_time(tmp_path):
    batch = parse_batch("h;u;env:P;d;u;env:P;\n")
    holder = Ledger(tmp_path / "out")
    holder.lock()
    try:
        with pytest.raises(UsageError, match="another batch is running with the output folder"):
            run_batch(batch, BatchOptions(outdir=tmp_path / "out"))
    finally:
        holder.unlock()


def test_rich_progress_shows_accounts_messages_and_each_outcome():
    out = io.StringIO()
    progress = RichBatchProgress(Console(file=out, force_terminal=True, width=100, color_system=None))
    progress.begin(3, 1)
    progress.account_started("a@x")
    progress.account_plan("a@x", 10)
    progress.advance("a@x", 10)
    progress.account_done(AccountResult(id="a@x", line=2, source="s", destination="d", exit_code=0, outcome="ok",
                                        copied=10))
    progress.account_started("b@x")
    progress.account_deferred(AccountResult(id="b@x", line=3, source="s", destination="d", exit_code=3,
                                            outcome="connection", error="TooManyConnections: limit"), 60)
    progress.end()
    text = out.getvalue()
    assert "✓ a@x: ok, 10 copied, 0 present" in text
    assert "↻ b@x: TooManyConnections: limit — trying again in 60 s" in text
    accounts_bar = [line for line in text.splitlines() if "accounts" in line][-1]
    assert "2/3" in accounts_bar and "msg/s" not in accounts_bar and "10/10" in text


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_cleanly_and_the_same_command_resumes(tmp_path, monkeypatch):
    slow = load_profile("generic").with_faults([QuirkSpec.parse("latency:ms=15,times=0")])
    src, dst = Store(), Store()
    for n in range(4):
        populate(src.add_account(f"u{n}", PASSWORD), FixtureSpec(seed=60 + n, messages=20, folders=2), slow)
        dst.add_account(f"u{n}", PASSWORD)
    with SimulatorWorld(src, slow) as s, SimulatorWorld(dst, load_profile("generic")) as d:
        a, b = s.start_imap(), d.start_imap()
        csv = tmp_path / "accounts.csv"
        csv.write_text("source,source_user,source_secret,dest,dest_user,dest_secret\n" + "".join(
            f"imap://127.0.0.1:{a.port}?starttls=no,u{n},env:QM_PW,imap://127.0.0.1:{b.port}?starttls=no,u{n},env:QM_PW\n"
            for n in range(4)))
        argv = ["migrate", "--batch", str(csv), "--per-host", "2", "--connections", "1", "--batch-size", "3"]
        root = str(Path(__file__).resolve().parents[1])
        monkeypatch.setenv("QM_PW", PASSWORD)
        env = {**os.environ, "PYTHONPATH": root}
        proc = subprocess.Popen([sys.executable, "-m", "scenarios", *argv], env=env, cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        logs = tmp_path / "accounts-batch" / "accounts"
        deadline = time.monotonic() + 60
        while not any('"event": "progress"' in f.read_text() for f in logs.glob("*.jsonl")):
            assert time.monotonic() < deadline and proc.poll() is None, "the batch never started copying"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        proc.communicate(timeout=60)
        assert proc.returncode == 5
        first = json.loads((tmp_path / "accounts-batch" / "summary.json").read_text())
        assert first["stopped"] == "interrupted"
        assert first["not_started"] or any(x["outcome"] == "aborted" for x in first["accounts"])

        assert main(argv) == 0  # the same command again, in this process
    for n in range(4):
        assert compare(snapshot_account(src.accounts[f"u{n}"]), snapshot_account(dst.accounts[f"u{n}"])).identical
