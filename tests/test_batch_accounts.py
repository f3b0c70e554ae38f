"""The batch file parser (text in, accounts out) and the scheduling rule, without servers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from migrator.batch.accounts import BatchFileError, parse_batch
from migrator.batch.schedule import pick
from migrator.errors import ExitCode

CSV = """\
# accounts of the 2026 move
source,source_user,source_secret,dest,dest_user,dest_secret,id
imaps://imap.old.example,alice,env:ALICE_OLD,imap://new.example:1143,alice@new.example,file:secrets/alice,alice
old.example,bob,file:/run/bob,imap://bob%40corp@new.example?starttls=required,,env:BOB_NEW,
"""


def test_csv_with_secret_references():
    batch = parse_batch(CSV, base=Path("/etc/qm"))
    assert batch.format == "csv" and batch.warnings == []
    alice, bob = batch.accounts
    assert (alice.line, alice.id, alice.source.display(), alice.dest.display()) == (
        3, "alice", "imaps://alice@imap.old.example:993", "imap://alice%40new.example@new.example:1143")
    assert (str(alice.source_secret), str(alice.dest_secret)) == ("env:ALICE_OLD", "file:/etc/qm/secrets/alice")
    assert (bob.id, bob.source.display(), bob.host) == ("bob@old.example", "imap://bob@old.example:143", "old.example:143")
    assert (bob.dest.user, bob.dest.starttls, str(bob.source_secret)) == ("bob@corp", "required", "file:/run/bob")


def test_imapsync_lines_with_plain_passwords_and_options():
    text = ("old.example;alice;Secr3t!;new.example;alice;env:NEW;\n"
            "old.example;bob;file:bob.pw;new.example;bob;hunter2; --ssl1 --port2 1143 --notls2 --automap --justfolders\n")
    batch = parse_batch(text, base=Path("/b"))
    alice, bob = batch.accounts
    assert batch.format == "imapsync"
    assert (alice.source.display(), str(alice.source_secret), alice.source_secret.plain.reveal()) == (
        "imap://alice@old.example:143", "plain:***", "Secr3t!")
    assert (bob.source.display(), bob.dest.display(), bob.dest.starttls) == (
        "imaps://bob@old.example:993", "imap://bob@new.example:1143", "no")
    assert str(bob.source_secret) == "file:/b/bob.pw"
    assert batch.warnings[0] == "line 2: imapsync option(s) ignored: --automap --justfolders"
    assert batch.warnings[1].startswith("plain password(s) in the batch file on line(s) 1, 2:")
    assert "Secr3t" not in repr(batch) and "hunter2" not in repr(batch)


def test_ids_stay_unique_when_only_the_port_differs():
    text = "h:1430;u;env:P;d;a;env:P;\nh:1431;u;env:P;d;b;env:P;\nx;v;env:P;d;c;env:P;\nx;v;env:P;e;c;env:P;\n"
    assert [a.id for a in parse_batch(text).accounts] == ["u@h_1430", "u@h_1431", "v@x_143-line3", "v@x_143-line4"]


def test_a_given_id_may_not_repeat():
    with pytest.raises(BatchFileError) as caught:
        parse_batch("source,source_secret,dest,dest_secret,id\n"
                    "imap://a@h,env:A,imap://c@d,env:B,x\n"
                    "imap://b@h2,env:A,imap://c@d,env:B,x\n")
    assert caught.value.problems == ["line 3: id 'x' already used on line 2"]


def test_every_problem_is_listed_with_its_line_and_no_password():
    text = ("source,source_secret,dest,dest_secret\n"
            "ftp://a@h,env:A,imap://b@h,env:B\n"
            "imap://a@h,,imap://b@h,env:B\n"
            "imap://a@h,env:1A,imap://b@h,Sekrit\n"
            "imap://c@h,env:C,imap://d@h,env:D,extra\n"
            "imap://c@h,env:C,imap://d@h,env:D\n"
            "imap://c@h,env:C,imap://d@h,env:D\n")
    with pytest.raises(BatchFileError) as caught:
        parse_batch(text, name="accounts.csv")
    err = caught.value
    assert err.exit_code == ExitCode.USAGE and str(err).startswith("accounts.csv: 5 problem(s):")
    assert [p.split(":")[0] for p in err.problems] == ["line 2", "line 3", "line 4", "line 5", "line 7"]
    assert "no source secret" in err.problems[1] and "not an environment variable name" in err.problems[2]
    assert err.problems[3] == "line 5: 5 fields, the header names 4"
    assert err.problems[4] == "line 7: repeats line 6 (same source and destination)"
    assert "Sekrit" not in str(err)


@pytest.mark.parametrize("text, problem", [
    ("# only a comment\n\n", "no accounts (only blank or # comment lines)"),
    ("source,dest\n", "line 1: header: missing column(s) source_secret, dest_secret"),
    ("h;u;p\n", "line 1: 3 ';'-separated fields"),
    ("h;u;p;h2;u2;p2; --port1 x\n", "line 1: --port1 needs a port number"),
    ("imap://a@h;b;p;h2;u2;p2;\n", "line 1: source user given twice, differently ('a' in the URL, 'b')"),
])
def test_bad_files(text, problem):
    with pytest.raises(BatchFileError) as caught:
        parse_batch(text)
    assert caught.value.problems[0].startswith(problem)


def test_lmtp_destination_needs_no_secret():
    [account] = parse_batch("pop.example;a;env:P;lmtp://127.0.0.1:24;a;;\n").accounts
    assert (account.dest.scheme, account.dest_secret.kind) == ("lmtp", "none")


def test_pick_skips_servers_at_their_cap_and_accounts_already_running():
    accounts = parse_batch("a;u1;env:P;d;x1;env:P;\na;u2;env:P;d;x2;env:P;\nb;u1;env:P;d;x3;env:P;\n"
                           "b;u1;env:P;d;x4;env:P;\n").accounts
    assert pick(accounts, Counter(), set(), per_host=1) == 0
    assert pick(accounts, Counter({"a:143": 1}), set(), per_host=1) == 2
    assert pick(accounts[3:], Counter({"b:143": 1}), {("b:143", "u1")}, per_host=2) is None  # same source account
    assert pick(accounts, Counter({"a:143": 2, "b:143": 2}), set(), per_host=2) is None
    # an account put back for a retry waits for its time; the next one goes first meanwhile
    due = {accounts[0].id: 10.0}
    assert pick(accounts, Counter(), set(), per_host=2, due=due, now=9.0) == 1
    assert pick(accounts, Counter(), set(), per_host=2, due=due, now=10.0) == 0
