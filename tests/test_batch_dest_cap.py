"""--per-dest-host: accounts sharing one destination server are capped there too.

Six accounts from two source servers into one destination simulator; the destination's logged-in
users are watched at the server (``PeakUsers`` in place of the factory's user counter), so the
cap is measured where it matters, not taken from our own bookkeeping alone.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from migrator.batch.accounts import BatchFileError, parse_batch
from migrator.batch.runner import BatchOptions, run_batch
from migrator.batch.schedule import pick
from migrator.engine import MigrationOptions
from tests.test_batch_run import PeakUsers, batch_text, servers, verified  # noqa: F401 (fixture)


def _options(tmp_path, per_dest_host):
    return BatchOptions(outdir=tmp_path / "out", per_host=3, per_dest_host=per_dest_host, accounts_parallel=6,
                        migration=MigrationOptions(connections=1, batch_size=3))


@pytest.mark.parametrize("per_dest_host", [2, None])
def test_destination_server_never_holds_more_accounts_than_its_cap(servers, tmp_path, per_dest_host):
    sources, dest, dest_handle = servers
    dest._factories[-1].users = watch = PeakUsers()
    report = run_batch(parse_batch(batch_text(sources, dest_handle, bad="")), _options(tmp_path, per_dest_host))
    assert [a.outcome for a in report.accounts] == ["ok"] * 6
    assert all(verified(sources, dest, a.destination.split("://")[1].split("@")[0]) for a in report.accounts)
    dest_key = f"127.0.0.1:{dest_handle.port}"
    if per_dest_host:
        assert watch.peak_users == report.peak_per_dest_host[dest_key] == 2  # reached, never passed
        assert report.per_dest_host == 2
    else:  # as before the option existed: only the source servers' cap (3 each) holds the accounts back
        assert watch.peak_users > 2 and report.peak_per_dest_host[dest_key] == watch.peak_users


def test_pick_holds_an_account_whose_destination_is_at_its_cap():
    accounts = parse_batch("a;u1;env:P;d;x1;env:P;\nb;u1;env:P;d;x2;env:P;\nc;u1;env:P;e;x3;env:P;\n").accounts
    assert accounts[0].dest_hosts == ("d:143",)
    running = Counter({"d:143": 1})
    assert pick(accounts[1:], Counter(), set(), per_host=4, running_dests=running, per_dest_host=1) == 1  # e, not d
    assert pick(accounts[1:], Counter(), set(), per_host=4, running_dests=running, per_dest_host=2) == 0
    assert pick(accounts[1:], Counter(), set(), per_host=4, running_dests=running) == 0  # no cap given: as before
    with pytest.raises(ValueError, match="per_dest_host"):  # a cap of 0 would hold every account forever
        BatchOptions(outdir=Path("out"), per_dest_host=0)


CSV = "source,source_secret,dest,dest_secret,pim,pim_user,pim_secret\n"


def test_pim_columns_give_an_ews_account_its_pim_destination():
    [a, b] = parse_batch(CSV + "ews+http://erin@127.0.0.1:8080,env:S,imap://finn@127.0.0.1:1143,env:D,"
                               "dav+http://127.0.0.1:5232,finn,\n"
                               "ews+http://gus@127.0.0.1:8080,env:S,imap://hal@127.0.0.1:1143,env:D,"
                               "ews+http://hal@127.0.0.1:9090,,env:P\n").accounts
    assert (a.pim.scheme, a.pim.user, a.pim_secret.kind) == ("dav+http", "finn", "none")
    assert a.dest_hosts == ("127.0.0.1:1143", "127.0.0.1:5232")
    assert (b.pim.scheme, str(b.pim_secret)) == ("ews+http", "env:P")


@pytest.mark.parametrize("line, problem", [
    ("imap://a@h,env:S,imap://b@d,env:D,dav+http://p:5232,b,",
     "line 2: pim: contacts, calendars, tasks and notes come from an ews source"),
    ("ews+http://a@h,env:S,imap://b@d,env:D,imap://p:143,b,env:P", "line 2: pim: imap:// takes no contacts"),
    ("ews+http://a@h,env:S,imap://b@d,env:D,,b,env:P", "line 2: pim_user/pim_secret without a pim destination"),
    ("ews+http://a@h,env:S,imap://b@d,env:D,ews+http://p:80,b,", "line 2: no pim secret"),
])
def test_bad_pim_columns_are_named(line, problem):
    with pytest.raises(BatchFileError) as caught:
        parse_batch(CSV + line + "\n")
    assert caught.value.problems[0].startswith(problem), caught.value.problems


@pytest.mark.slow
def test_per_dest_host_on_the_command_line(servers, tmp_path, capsys):
    import json

    from scenarios.cli import main

    sources, dest, dest_handle = servers
    batch = tmp_path / "accounts.txt"
    batch.write_text(batch_text(sources, dest_handle, bad=""))
    assert main(["migrate", "--batch", str(batch), "--per-dest-host", "0"]) == 2
    assert "--per-dest-host" in capsys.readouterr().err
    code = main(["migrate", "--batch", str(batch), "--per-dest-host", "1", "--connections", "1",
                 "--outdir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert code == 0 and summary["per_dest_host"] == 1
    assert summary["peak_per_dest_host"] == {f"127.0.0.1:{dest_handle.port}": 1} and summary["peak_running"] == 1
    assert "1 per destination server" in " ".join(out.split())  # the summary table's caption
