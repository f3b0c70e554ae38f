"""``quirkmail migrate --batch``: the command line around run_batch, on simulators."""

from __future__ import annotations

import json
import socket

import pytest

from scenarios.cli import main
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
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
    from migrator.batch.accounts import parse_batch
    from migrator.batch.ledger import Ledger
    from migrator.batch.runner import BatchOptions, run_batch
    from migrator.errors import UsageError

    batch = parse_batch("h;u;env:P;d;u;env:P;\n")
    holder = Ledger(tmp_path / "out")
    holder.lock()
    try:
        with pytest.raises(UsageError, match="another batch is running with the output folder"):
            run_batch(batch, BatchOptions(outdir=tmp_path / "out"))
    finally:
        holder.unlock()


def test_rich_progress_shows_accounts_messages_and_each_outcome():
    import io

    from rich.console import Console

    from migrator.batch.progress import RichBatchProgress
    from migrator.batch.report import AccountResult

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
